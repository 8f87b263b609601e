#!/usr/bin/env bash
# Creates (or reuses) a venv with one Streamlit release, the project and its
# test extras: `scripts/streamlit-venv.sh '1.50.*' .venv-st-1.50`.
# Reused as it is when it was made for the same release spec, pyproject.toml
# and constraints; otherwise brought up to date in place. The constraints
# (scripts/streamlit-constraints.py) pin third-party packages whose newest
# releases deprecate what an old Streamlit calls (the tests turn warnings into
# errors).
set -euo pipefail
spec="$1"
venv="$2"
python="${PYTHON:-python3}"

cd "$(dirname "$0")/.."
constraints="$("$python" scripts/streamlit-constraints.py "$spec")"
stamp="$venv/.installed"
want="streamlit==$spec
$(sha256sum pyproject.toml server_state-boot.pth | cut -d' ' -f1)
$constraints"

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    echo "Reusing $venv (Streamlit $("$venv/bin/python" -c 'import streamlit; print(streamlit.__version__)'))"
    exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
    echo "Creating $venv for Streamlit $spec..."
    "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
printf '%s\n' "$constraints" > "$venv/constraints.txt"
"$venv/bin/python" -m pip install --quiet -c "$venv/constraints.txt" "streamlit==$spec" -e '.[test,bench]'
bash scripts/install-boot-pth.sh "$venv"
installed="$("$venv/bin/python" -c 'import streamlit; print(streamlit.__version__)')"
echo "$venv: Streamlit $installed${constraints:+, with $(echo $constraints)}"
printf '%s' "$want" > "$stamp"
