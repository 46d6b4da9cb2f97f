#!/bin/sh
# What cron calls for the receive step. Works in cron's bare environment: absolute paths, the
# project's own virtualenv, and a lock so two receives never overlap (exit 75 when one runs).
# Arguments pass through to receivedps.py; the exit code is the script's.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
PYTHON=${DPS_PYTHON:-$HERE/.venv/bin/python}
# The lock belongs to the config file in use, so two installations (say test and production)
# that share this code never block each other: beside --config's file, else in var/.
CONFIG_DIR=$HERE/var
prev=""
for arg in "$@"; do
  config=""
  case "$arg" in
    --config=*) config=${arg#--config=} ;;
    *) [ "$prev" = "--config" ] && config=$arg ;;
  esac
  if [ -n "$config" ]; then
    dir=$(cd "$(dirname "$config")" 2>/dev/null && pwd) && CONFIG_DIR=$dir
  fi
  prev=$arg
done
LOCK=${DPS_RECEIVE_LOCK:-$CONFIG_DIR/.run_receive.lock}
if [ ! -x "$PYTHON" ]; then
  echo "run_receive.sh: $PYTHON not found; set up first: bash $HERE/demo/setup_venv.sh" >&2
  exit 2
fi
mkdir -p "$(dirname "$LOCK")"
FLOCK=$(command -v flock || echo /usr/bin/flock)
# flock's own "held" code differs from the script's 75 (a lock the script itself found
# held, which it names): only the wrapper's lock is named here.
"$FLOCK" -n -E 200 "$LOCK" "$PYTHON" "$HERE/receivedps.py" "$@"
rc=$?
if [ "$rc" -eq 200 ]; then
  echo "run_receive.sh: another receive run holds $LOCK; not starting" >&2
  rc=75
fi
exit "$rc"
