#!/usr/bin/env bash
# The test command (README and .ci/run): set up .venv with the test tools, make sure OpenSSH's
# sshd is installed (the SFTP tests run a real one), lint, then run the whole suite.
# Extra arguments go to pytest, e.g.  bash tests/run_tests.sh -k receive
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
bash demo/setup_venv.sh dev
if [ ! -x /usr/sbin/sshd ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing openssh-server (the tests start their own sshd on 127.0.0.1)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null
  else
    echo "tests: /usr/sbin/sshd is missing; install it: sudo apt-get install openssh-server" >&2
    exit 2
  fi
fi
echo "== ruff"
.venv/bin/ruff check .
echo "== bandit (medium and high findings fail)"
.venv/bin/bandit -q -ll -r util.py send2dps.py receivedps.py exchange demo bench
echo "== pytest"
exec .venv/bin/python -m pytest tests "$@"
