#!/usr/bin/env bash
# Creates (or reuses) a venv with another CPython, the project and its test
# extras: `scripts/python-venv.sh 3.13 .venv-py3.13`. The interpreter is
# pythonX.Y on PATH if it runs (a pyenv shim for a version that is not
# selected is on PATH but does not run), else pyenv's newest X.Y.
# Exit 3 when no such Python is on the machine (the caller skips it).
# Reused as it is when it was made for the same pyproject.toml.
set -euo pipefail
version="$1"
venv="$2"

cd "$(dirname "$0")/.."
python=""
if command -v "python$version" >/dev/null && "python$version" -c '' 2>/dev/null; then
    python="$(command -v "python$version")"
else
    root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"
    for candidate in "$root"/versions/"$version".*/bin/"python$version"; do
        [ -x "$candidate" ] && python="$candidate"
    done
fi
[ -n "$python" ] || exit 3

stamp="$venv/.installed"
want="$("$python" -c 'import platform; print(platform.python_version())')
$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "Creating $venv with $python..."
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
"$venv/bin/python" -m pip install --quiet -e '.[test]'
printf '%s' "$want" > "$stamp"
