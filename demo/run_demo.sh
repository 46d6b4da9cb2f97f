#!/usr/bin/env bash
# The README's first command: set up .venv, then run send -> simulated DPS -> receive on the
# embedded defaults (demo database, a local SFTP server, the DPS simulator).
# Options go to demo/run_demo.py (--help lists them).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
bash "$REPO/demo/setup_venv.sh"
cd "$REPO"
exec "$REPO/.venv/bin/python" -m demo.run_demo "$@"
