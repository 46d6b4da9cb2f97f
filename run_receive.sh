#!/bin/sh
# What cron calls for the receive step. Works in cron's bare environment: absolute paths, the
# project's own virtualenv, and a lock so two receives never overlap (exit 75 when one runs).
# Arguments pass through to receivedps.py; the exit code is the script's.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${DPS_PYTHON:-$HERE/.venv/bin/python}
LOCK=${DPS_RECEIVE_LOCK:-$HERE/var/run_receive.lock}
if [ ! -x "$PYTHON" ]; then
  echo "run_receive.sh: $PYTHON not found; set up first: bash $HERE/demo/setup_venv.sh" >&2
  exit 2
fi
mkdir -p "$(dirname "$LOCK")"
FLOCK=$(command -v flock || echo /usr/bin/flock)
"$FLOCK" -n -E 75 "$LOCK" "$PYTHON" "$HERE/receivedps.py" "$@"
rc=$?
if [ "$rc" -eq 75 ]; then
  echo "run_receive.sh: another receive run holds $LOCK; not starting" >&2
fi
exit "$rc"
