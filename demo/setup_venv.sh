#!/usr/bin/env bash
# Create the project's virtualenv in .venv and install the requirements (once; re-run is cheap).
#   bash demo/setup_venv.sh        runtime packages (requirements.txt)
#   bash demo/setup_venv.sh dev    and the test tools (requirements-dev.txt)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
REQUIREMENTS="$REPO/requirements.txt"
[ "${1:-}" = "dev" ] && REQUIREMENTS="$REPO/requirements-dev.txt"
PYTHON=${PYTHON:-python3}
if [ ! -x "$REPO/.venv/bin/python" ]; then
  echo "setting up $REPO/.venv with $($PYTHON --version)"
  "$PYTHON" -m venv "$REPO/.venv"
fi
STAMP="$REPO/.venv/.installed-$(basename "$REQUIREMENTS")"
if [ ! -f "$STAMP" ] || [ "$REQUIREMENTS" -nt "$STAMP" ] || [ "$REPO/requirements.txt" -nt "$STAMP" ]; then
  "$REPO/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  touch "$STAMP"
fi
