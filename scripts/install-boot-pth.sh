#!/usr/bin/env bash
# Puts server_state-boot.pth into a venv's site-packages. A wheel install
# carries it (setup.py); an editable install (`pip install -e`) does not, and
# without it a tab that reconnects to a restarted server is not run until a
# click (see _server_state_boot.py). Usage: scripts/install-boot-pth.sh .venv
set -euo pipefail
venv="$1"
cd "$(dirname "$0")/.."
purelib="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
cp server_state-boot.pth "$purelib/server_state-boot.pth"
