#!/usr/bin/env bash
# The test command (README and .ci/run): set up .venv with the test tools, make sure the real
# servers the tests start are installed (sshd, PostgreSQL, ProFTPD), lint, then run the suite.
# Extra arguments go to pytest, e.g.  bash tests/run_tests.sh -k receive
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
bash demo/setup_venv.sh dev
# Real servers the tests start themselves: OpenSSH's sshd, PostgreSQL 15 (a typed database, the
# stand-in for Oracle's types) and ProFTPD's mod_sftp (a second SFTP implementation). As root with
# apt (CI) a missing one is installed; otherwise the command says what to install. With CI=true a
# test whose server is missing fails instead of skipping (tests/conftest.py).
need_package() {  # need_package FILE PACKAGE...
  local file=$1; shift
  [ -e "$file" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing $* (the tests start their own servers on 127.0.0.1)"
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  else
    echo "tests: $file is missing; install it: sudo apt-get install $*" >&2
    [ "${CI:-}" = true ] && exit 2
    return 0
  fi
}
need_package /usr/sbin/sshd openssh-server
need_package /usr/lib/postgresql/15/bin/initdb postgresql
need_package /usr/lib/proftpd/mod_sftp.so proftpd-core proftpd-mod-crypto
if [ ! -x /usr/sbin/sshd ]; then
  echo "tests: /usr/sbin/sshd is missing; install it: sudo apt-get install openssh-server" >&2
  exit 2
fi
echo "== ruff"
.venv/bin/ruff check .
echo "== bandit (medium and high findings fail)"
.venv/bin/bandit -q -ll -r util.py send2dps.py receivedps.py exchange demo bench
echo "== pytest"
exec .venv/bin/python -m pytest tests "$@"
