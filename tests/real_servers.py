"""Production-shaped servers the tests start and stop themselves, like sshd in demo/local_sftp.py:

* ProFTPD's mod_sftp: a second SFTP server implementation (authorized keys in RFC 4716 form).
* PostgreSQL 15: a typed server database (TIMESTAMP with a time of day, DATE, BIGINT), the
  nearest stand-in for Oracle's types on this machine.

Both run as separate processes on a free 127.0.0.1 port and are stopped by PID / pg_ctl.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess  # nosec B404 - the tests start real servers
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from demo.local_sftp import (
    HOST,
    LocalSftpServer,
    current_username,
    ensure_keys,
    find_free_port,
    known_hosts_line,
    public_key_line,
)

log = logging.getLogger(__name__)

PROFTPD = Path("/usr/sbin/proftpd")
PROFTPD_MODULES = Path("/usr/lib/proftpd")
POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 15.0


# ------------------------------------------------------------------------------ ProFTPD


def proftpd_available() -> bool:
    return PROFTPD.exists() and (PROFTPD_MODULES / "mod_sftp.so").exists()


def rfc4716_key(public_key_file: Path) -> str:
    """The public key in RFC 4716 form (what mod_sftp's SFTPAuthorizedUserKeys reads)."""
    done = subprocess.run(["ssh-keygen", "-e", "-f", str(public_key_file)],  # nosec B603 B607
                          capture_output=True, text=True, check=True)
    return done.stdout


def proftpd_config_text(root: Path, state: Path, port: int, host_key: Path,
                        authorized_keys: Path, allow_overwrite: bool, allow_delete: bool) -> str:
    """A minimal mod_sftp-only configuration, chrooted to root (relative paths start there)."""
    running_as_root = os.geteuid() == 0
    lines = [
        f"ModulePath {PROFTPD_MODULES}",
        "LoadModule mod_sftp.c",
        'ServerName "dps-test"',
        "ServerType standalone",
        f"Port {port}",
        f"DefaultAddress {HOST}",
        "SocketBindTight on",
        f"PidFile {state / 'proftpd.pid'}",
        f"ScoreboardFile {state / 'proftpd.scoreboard'}",
        "DelayTable none",
        "WtmpLog off",
        "UseIPv6 off",
        "RequireValidShell off",
        f"DefaultRoot {root}",
        "Umask 077",
        f"SystemLog {state / 'proftpd.log'}",
        "SFTPEngine on",
        f"SFTPLog {state / 'sftp.log'}",
        f"SFTPHostKey {host_key}",
        f"SFTPAuthorizedUserKeys file:{authorized_keys}",
        "SFTPAuthMethods publickey",
        "<Directory />",
        f"  AllowOverwrite {'on' if allow_overwrite else 'off'}",
        *([] if allow_delete else ["  <Limit DELE>", "    DenyAll", "  </Limit>"]),
        "</Directory>",
    ]
    if running_as_root:
        lines += ["User root", "Group root", "RootLogin on", "UseFtpUsers off"]
    return "\n".join(lines) + "\n"


def start_proftpd(root: Path, state: Path, *, allow_overwrite: bool = True,
                  allow_delete: bool = True) -> LocalSftpServer:
    """Start `proftpd -n -c FILE` serving root over SFTP on a free port; wait for its banner."""
    state.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    host_key, client_key = ensure_keys(state)
    authorized = state / "authorized_keys.rfc4716"
    authorized.write_text(rfc4716_key(client_key.with_name(client_key.name + ".pub")))
    port = find_free_port()
    config = state / "proftpd.conf"
    config.write_text(proftpd_config_text(root.resolve(), state.resolve(), port, host_key,
                                          authorized, allow_overwrite, allow_delete))
    subprocess.run([str(PROFTPD), "-t", "-c", str(config)], capture_output=True,  # nosec B603
                   check=True)
    console = state / "console.log"
    with console.open("wb") as out:
        process = subprocess.Popen([str(PROFTPD), "-n", "-q", "-c", str(config)],  # nosec B603
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                   start_new_session=True)
    _wait_for_banner(port, process, console)
    host_public_key = public_key_line(host_key)
    known_hosts = state / "known_hosts"
    known_hosts.write_text(known_hosts_line(HOST, port, host_public_key) + "\n")
    return LocalSftpServer(kind="proftpd", host=HOST, port=port, username=current_username(),
                           root=root.resolve(), client_key=client_key, known_hosts=known_hosts,
                           host_public_key=host_public_key, pid=process.pid,
                           log_file=state / "sftp.log", _process=process)


def _wait_for_banner(port: int, process: subprocess.Popen[bytes], console: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: "
                               f"{console.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((HOST, port), timeout=1) as conn:
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"no SSH banner on port {port} within {START_TIMEOUT_S:.0f} s")


# --------------------------------------------------------------------------- PostgreSQL


def postgres_available() -> bool:
    return (POSTGRES_BIN / "initdb").exists() and (POSTGRES_BIN / "pg_ctl").exists()


@dataclass
class PostgresServer:
    """A running PostgreSQL cluster in a private folder; stop() ends it and removes the folder."""

    folder: Path
    port: int
    pid: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{database}"

    def stop(self) -> None:
        """A fast shutdown (SIGINT to the postmaster, by its PID), then the folder goes."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and Path(f"/proc/{self.pid}").exists():
            time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)


def _run_postgres_tool(run_as: str | None, tool: str, *args: str) -> None:
    command = [str(POSTGRES_BIN / tool), *args]
    if run_as:
        command = ["runuser", "-u", run_as, "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60,  # nosec B603
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip()}")


def start_postgres() -> PostgresServer:
    """initdb + pg_ctl start on a free loopback port, trust authentication on 127.0.0.1 only.

    Run as root, the server runs as the postgres user (initdb refuses root), in its own folder
    under the system temp folder (pytest's folder is private to root, and pytest resets its
    mode when another session starts)."""
    run_as = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="dps-postgres-"))
    data_dir = folder / "data"
    socket_dir = folder / "socket"
    data_dir.mkdir()
    socket_dir.mkdir()
    if run_as:
        for path in (folder, data_dir, socket_dir):
            shutil.chown(path, run_as)
    _run_postgres_tool(run_as, "initdb", "-D", str(data_dir), "-A", "trust", "-U", "postgres",
                       "-E", "UTF8", "--locale", "C")
    port = find_free_port()
    _run_postgres_tool(run_as, "pg_ctl", "-D", str(data_dir), "-w", "-t", "30",
                       "-l", str(folder / "server.log"), "-o",
                       f"-p {port} -k {socket_dir} -c listen_addresses={HOST}", "start")
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    log.info("PostgreSQL pid %d on %s:%d (%s)", pid, HOST, port, data_dir)
    return PostgresServer(folder, port, pid)


# ------------------------------------------------- copying a SQLite database into typed tables

TIME_OF_DAY = dt.time(14, 35)   # Oracle DATEs carry a time of day; the copy gives them one


def postgres_type(column: str, sqlite_type: str) -> str:
    """The typed column by name convention: birth_date DATE, other *_date TIMESTAMP,
    *_id / *_code BIGINT; otherwise by SQLite's declared type."""
    name = column.lower()
    if name == "birth_date":
        return "DATE"
    if name.endswith("_date"):
        return "TIMESTAMP"
    if name.endswith(("_id", "_code")):
        return "BIGINT"
    declared = sqlite_type.upper()
    if "INT" in declared:
        return "BIGINT"
    if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        return "DOUBLE PRECISION"
    return "TEXT"


def fitting_type(column_type: str, values: list[object]) -> str:
    """BIGINT only when every value is a whole number (an *_code column of text, such as a
    unit code "U12" in a table added later, stays TEXT rather than failing the copy)."""
    if column_type != "BIGINT":
        return column_type
    whole = all(v is None or isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit())
                for v in values)
    return column_type if whole else "TEXT"


def typed_value(value: object, column_type: str) -> object:
    """SQLite's text as the typed value; an impossible date (2010-02-30) becomes NULL."""
    if value is None or column_type not in ("DATE", "TIMESTAMP"):
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if column_type == "DATE":
        return parsed.date()
    if parsed.time() == dt.time(0, 0):
        return dt.datetime.combine(parsed.date(), TIME_OF_DAY)
    return parsed


def sqlite_tables(sqlite_path: Path) -> dict[str, list[tuple[str, str]]]:
    """Every user table of the SQLite file with its (column, declared type) pairs."""
    with contextlib.closing(sqlite3.connect(sqlite_path)) as source:
        names = [row[0] for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {name: [(row[1], row[2]) for row in
                       source.execute(f'PRAGMA table_info("{name}")')]  # nosec B608
                for name in names}


def copy_sqlite_to_postgres(sqlite_path: Path, server: PostgresServer, database: str) -> None:
    """Create `database` on the server and copy every table of the SQLite file into it with
    typed columns (see postgres_type); dates gain TIME_OF_DAY."""
    import psycopg
    from psycopg import sql

    admin = f"host={HOST} port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    tables = sqlite_tables(sqlite_path)
    target = f"host={HOST} port={server.port} user=postgres dbname={database}"
    with psycopg.connect(target) as connection, \
            contextlib.closing(sqlite3.connect(sqlite_path)) as source:
        for table, columns in tables.items():
            raw = list(source.execute(f'SELECT * FROM "{table}"'))  # nosec B608
            types = [fitting_type(postgres_type(name, declared), [row[i] for row in raw])
                     for i, (name, declared) in enumerate(columns)]
            connection.execute(sql.SQL("CREATE TABLE {} ({})").format(
                sql.Identifier(table),
                sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                                   for (name, _), kind in zip(columns, types, strict=True))))
            rows = [tuple(typed_value(value, kind) for value, kind in zip(row, types, strict=True))
                    for row in raw]
            insert = sql.SQL("INSERT INTO {} VALUES ({})").format(
                sql.Identifier(table), sql.SQL(", ").join(sql.Placeholder() * len(columns)))
            with connection.cursor() as cursor:
                cursor.executemany(insert, rows)
        connection.commit()
