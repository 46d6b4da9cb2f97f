"""A local SFTP server on 127.0.0.1 for the demo and the test suite.

Two kinds of server serve one folder (the "SFTP root") as the start directory, so
relative remote paths such as ``FROM_DFPS/x.txt`` land inside it:

* ``openssh``: the system's ``/usr/sbin/sshd`` with a private config in a state folder,
  key-only login for the current user, SFTP only (``ForceCommand internal-sftp``).
* ``paramiko``: a pure-Python fallback (``python -m demo.local_sftp serve``) that
  refuses every path outside the root.

Both run as a separate process owned by whoever runs this (no system install, no
changes under /etc), are stopped by PID, and pin one ed25519 host key that is kept in
the state folder, so a demo run and the next one see the same key.

Command line::

    python -m demo.local_sftp start --root R --state-dir S [--port P] [--kind K]
    python -m demo.local_sftp stop --state-dir S
    python -m demo.local_sftp serve --root R --port P --host-key K --authorized-keys A
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import errno
import faulthandler
import functools
import getpass
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess  # nosec B404
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import paramiko

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
SSHD = Path("/usr/sbin/sshd")  # sshd refuses to re-exec unless started by absolute path
KINDS = ("auto", "openssh", "paramiko")
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 3

HOST_KEY_NAME = "ssh_host_ed25519_key"
CLIENT_KEY_NAME = "client_ed25519_key"
SSHD_CONFIG_NAME = "sshd_config"
SSHD_PID_NAME = "sshd.pid"
AUTHORIZED_KEYS_NAME = "authorized_keys"
KNOWN_HOSTS_NAME = "known_hosts"
SERVER_PID_NAME = "server.pid"
LOG_NAME = "server.log"

# sshd_config splits on blanks, and internal-sftp re-splits its arguments on spaces
# and expands %-tokens, so these characters cannot be passed through safely.
_UNSAFE_SSHD_PATH = re.compile(r"[\s%\"'\\#]")
_PROJECT_ROOT = Path(__file__).resolve().parent.parent

_T = TypeVar("_T")


# --------------------------------------------------------------------------- ports


def settings_for_local_server(server: LocalSftpServer, root: Path, db_path: Path,
                              remote_prefix: str) -> dict[str, Any]:
    """The shipped dps_config.yml pointed at this server, a SQLite file and folders under root,
    with its remote folders under remote_prefix (tests and the benchmark share one server).
    Callers then set their own timeouts and polling."""
    import yaml

    settings = yaml.safe_load((_PROJECT_ROOT / "dps_config.yml").read_text(encoding="utf-8"))
    settings["database"].update(url=f"sqlite:///{db_path}", sql_folder=str(_PROJECT_ROOT / "sql"))
    directory = settings["reports"].get("ori_directory")
    if directory:   # the shipped demo directory, wherever this config is written
        settings["reports"]["ori_directory"] = str(_PROJECT_ROOT / directory)
    settings["sftp"].update(
        host=server.host, port=server.port, username=server.username,
        key_file=str(server.client_key), known_hosts_file=str(server.known_hosts),
        upload_folder=f"{remote_prefix}/FROM_DFPS", answer_folder=f"{remote_prefix}/TO_DFPS",
        processed_folder=f"{remote_prefix}/TO_DFPS/processed")
    settings["folders"] = {name: str(root / name) for name in
                           ("outbox", "staging", "archive", "state", "logs", "share")}
    return settings


def find_free_port(host: str = HOST) -> int:
    """Return a TCP port on ``host`` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _read_ssh_banner(host: str, port: int, timeout: float = 1.0) -> bytes:
    """Connect and return the first bytes the server sends (b"" when refused)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            return conn.recv(256)
    except OSError:
        return b""


# ---------------------------------------------------------------------------- keys


def ensure_keys(state_dir: Path) -> tuple[Path, Path]:
    """Return (host_key, client_key) in ``state_dir``, creating them on first use.

    Both are ed25519 private keys in OpenSSH format without passphrase, mode 0600.
    Existing keys are reused, so the pinned host key stays the same across runs.
    """
    state_dir = _prepare_state_dir(state_dir)
    host_key = _ensure_ed25519_key(state_dir / HOST_KEY_NAME, "local-sftp host key")
    client_key = _ensure_ed25519_key(state_dir / CLIENT_KEY_NAME, "local-sftp client key")
    return host_key, client_key


def _prepare_state_dir(state_dir: Path) -> Path:
    state_dir = Path(state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return state_dir


def _ensure_ed25519_key(path: Path, comment: str) -> Path:
    if path.exists():
        path.chmod(0o600)
        return path
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".keygen-") as tmp:
        fresh = Path(tmp) / "key"
        if shutil.which("ssh-keygen"):
            _generate_key_with_ssh_keygen(fresh, comment)
        else:
            _generate_key_with_cryptography(fresh, comment)
        fresh.chmod(0o600)
        os.replace(fresh.with_suffix(".pub"), path.with_name(path.name + ".pub"))
        os.replace(fresh, path)
    LOG.info("created ed25519 key %s", path)
    return path


def _generate_key_with_ssh_keygen(path: Path, comment: str) -> None:
    command = [
        shutil.which("ssh-keygen") or "ssh-keygen",
        "-q",
        "-t",
        "ed25519",
        "-N",
        "",
        "-C",
        comment,
        "-f",
        str(path),
    ]
    subprocess.run(command, check=True, capture_output=True)  # nosec B603


def _generate_key_with_cryptography(path: Path, comment: str) -> None:
    """paramiko cannot generate ed25519 keys; ``cryptography`` (its dependency) can."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private)
    path.with_suffix(".pub").write_bytes(public + b" " + comment.encode() + b"\n")


def public_key_line(private_key: Path) -> str:
    """Return ``"<type> <base64>"`` for a private key file (e.g. ``ssh-ed25519 AAAA...``)."""
    key = paramiko.PKey.from_path(private_key)
    return f"{key.get_name()} {key.get_base64()}"


def known_hosts_line(host: str, port: int, public_key: str) -> str:
    """The known_hosts line pinning ``public_key`` for ``host:port``."""
    name = host if port == 22 else f"[{host}]:{port}"
    return f"{name} {public_key}"


def current_username() -> str:
    """The login name of the effective user (what sshd authenticates).

    Prefers the password database over ``getpass.getuser()``, whose $USER/$LOGNAME
    can be stale after ``su`` or ``setpriv``.
    """
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return getpass.getuser()


def _write_private_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 (replacing any older file)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


# -------------------------------------------------------------------- the handle


@dataclass
class LocalSftpServer:
    """A running local SFTP server; ``stop()`` (or leaving ``with``) ends it."""

    kind: str
    host: str
    port: int
    username: str
    root: Path
    client_key: Path
    known_hosts: Path
    host_public_key: str
    pid: int
    log_file: Path
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    _stopped: bool = field(default=False, repr=False, compare=False)

    def connection_pids(self) -> list[int]:
        """PIDs of the per-connection processes under the listener (children, grandchildren).

        OpenSSH forks one process tree per connection; killing these ends a transfer
        mid-way. The paramiko server uses threads, so it has none and this is ``[]``.
        """
        if self._stopped:
            return []
        return _descendant_pids(self.pid)

    def stop(self) -> None:
        """Terminate the listener and its connection processes by PID; idempotent."""
        if self._stopped:
            return
        pids = [self.pid, *self.connection_pids()]
        _terminate_pids(pids, self._process)
        self._stopped = True
        _forget_recorded_pid(self.log_file.parent, self.pid)
        LOG.info("stopped %s SFTP server pid %d on port %d", self.kind, self.pid, self.port)

    def __enter__(self) -> LocalSftpServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


# ----------------------------------------------------------------------- processes


def _read_parent_pids() -> dict[int, int]:
    """Map pid -> parent pid for every process visible in /proc."""
    parents: dict[int, int] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat_file.read_text()
        except OSError:
            continue  # the process ended while we looked
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        fields = text.rpartition(")")[2].split()
        if len(fields) >= 2:
            parents[int(stat_file.parent.name)] = int(fields[1])
    return parents


def _descendant_pids(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _read_parent_pids().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    pending = list(children.get(pid, []))
    while pending:
        current = pending.pop()
        found.append(current)
        pending.extend(children.get(current, []))
    return sorted(found)


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = text.rpartition(")")[2].split()
    return bool(fields) and fields[0] not in ("Z", "X")


def _signal_pids(pids: Iterable[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _wait_until_gone(
    pids: list[int], process: subprocess.Popen[bytes] | None, timeout: float
) -> list[int]:
    """Wait until the PIDs are gone; return the ones still alive at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None:
            process.poll()  # reap our own child so it does not linger as a zombie
        alive = [pid for pid in pids if _pid_alive(pid)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _terminate_pids(pids: list[int], process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, wait, then SIGKILL whatever survived."""
    _signal_pids(pids, signal.SIGTERM)
    survivors = _wait_until_gone(pids, process, STOP_TIMEOUT_S)
    if survivors:
        LOG.warning("SIGKILL to pids %s that ignored SIGTERM", survivors)
        _signal_pids(survivors, signal.SIGKILL)
        _wait_until_gone(survivors, process, STOP_TIMEOUT_S)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)


def _read_log(log_file: Path) -> str:
    try:
        return log_file.read_text(errors="replace")
    except OSError:
        return ""


def _log_tail(log_file: Path, lines: int = 20) -> str:
    return "\n".join(_read_log(log_file).splitlines()[-lines:]) or "(log is empty)"


def _listening_marker(kind: str, port: int) -> str:
    """The log line by which our own server (not another one on the port) says it is up."""
    if kind == "openssh":
        return f"Server listening on {HOST} port {port}."
    return f"paramiko SFTP server listening on {HOST}:{port}"


def _wait_until_serving(
    kind: str, port: int, process: subprocess.Popen[bytes], log_file: Path, timeout: float
) -> bool:
    """Wait until our process logged that it listens and the port sends an ``SSH-`` banner.

    False if the process exits or the deadline passes first.
    """
    marker = _listening_marker(kind, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if marker in _read_log(log_file) and _read_ssh_banner(HOST, port).startswith(b"SSH-"):
            return True
        time.sleep(0.05)
    return False


# ------------------------------------------------------------------------ starting


def resolve_kind(kind: str) -> str:
    """Turn ``auto`` into ``openssh`` or ``paramiko``; check that ``openssh`` can run."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    if kind == "auto":
        return "openssh" if SSHD.exists() else "paramiko"
    if kind == "openssh" and not SSHD.exists():
        raise RuntimeError(
            f"kind='openssh' needs OpenSSH's server at {SSHD}, which is missing; "
            "install it (Debian/Ubuntu: apt-get install openssh-server) "
            "or use kind='paramiko'"
        )
    return kind


def _parse_umask(umask: str) -> int:
    try:
        value = int(umask, 8)
    except ValueError:
        raise ValueError(f"umask must be octal like '0077', not {umask!r}") from None
    if not 0 <= value <= 0o777:
        raise ValueError(f"umask out of range: {umask!r}")
    return value


def start_local_sftp_server(
    root: Path,
    state_dir: Path,
    *,
    port: int | None = None,
    kind: str = "auto",
    host_key: Path | None = None,
    umask: str = "0077",
) -> LocalSftpServer:
    """Start an SFTP server on 127.0.0.1 serving ``root`` as its start directory.

    ``state_dir`` holds keys, config, authorized_keys, known_hosts, pid file and log.
    A server still recorded in ``state_dir`` is stopped first. Raises RuntimeError
    (naming the log file and quoting its end) if the server does not come up.
    """
    chosen_kind = resolve_kind(kind)
    umask_value = _parse_umask(umask)
    state_dir = _prepare_state_dir(state_dir)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    stop_recorded_server(state_dir)
    default_host_key, client_key = ensure_keys(state_dir)
    host_key = Path(host_key).resolve() if host_key is not None else default_host_key
    authorized_keys = state_dir / AUTHORIZED_KEYS_NAME
    _write_private_text(authorized_keys, public_key_line(client_key) + "\n")
    attempts = 1 if port is not None else PORT_ATTEMPTS
    for attempt in range(1, attempts + 1):
        chosen_port = port if port is not None else find_free_port(HOST)
        try:
            return _start_once(
                chosen_kind,
                root,
                state_dir,
                chosen_port,
                host_key,
                client_key,
                authorized_keys,
                umask_value,
            )
        except _PortTaken:
            if attempt == attempts:
                raise
            LOG.info("port %d was taken meanwhile; trying another", chosen_port)
    raise AssertionError("unreachable")  # pragma: no cover


class _PortTaken(RuntimeError):
    """The server could not bind its port (someone took it after we picked it)."""


def _start_once(
    kind: str,
    root: Path,
    state_dir: Path,
    port: int,
    host_key: Path,
    client_key: Path,
    authorized_keys: Path,
    umask: int,
) -> LocalSftpServer:
    log_file = state_dir / LOG_NAME
    if kind == "openssh":
        command = _openssh_command(root, state_dir, port, host_key, authorized_keys, umask)
    else:
        command = _paramiko_command(root, port, host_key, authorized_keys, umask)
    started = time.monotonic()
    process = _launch(command, log_file)
    if not _wait_until_serving(kind, port, process, log_file, START_TIMEOUT_S):
        _terminate_pids([process.pid], process)
        _raise_start_failure(kind, port, log_file)
    (state_dir / SERVER_PID_NAME).write_text(f"{process.pid}\n")
    host_public_key = public_key_line(host_key)
    known_hosts = state_dir / KNOWN_HOSTS_NAME
    known_hosts.write_text(known_hosts_line(HOST, port, host_public_key) + "\n")
    LOG.info(
        "%s SFTP server pid %d on %s:%d serving %s (up in %.2f s, log %s)",
        kind,
        process.pid,
        HOST,
        port,
        root,
        time.monotonic() - started,
        log_file,
    )
    return LocalSftpServer(
        kind=kind,
        host=HOST,
        port=port,
        username=current_username(),
        root=root,
        client_key=client_key,
        known_hosts=known_hosts,
        host_public_key=host_public_key,
        pid=process.pid,
        log_file=log_file,
        _process=process,
    )


def _launch(command: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    """Start ``command`` in its own session with stderr (and stdout) to ``log_file``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    with log_file.open("wb") as log:
        return subprocess.Popen(  # nosec B603
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            env=env,
        )


def _raise_start_failure(kind: str, port: int, log_file: Path) -> None:
    tail = _log_tail(log_file)
    message = (
        f"the {kind} SFTP server did not answer on {HOST}:{port} within "
        f"{START_TIMEOUT_S:.0f} s; see {log_file}. Last lines:\n{tail}"
    )
    if "Address already in use" in tail:
        raise _PortTaken(message)
    raise RuntimeError(message)


# ------------------------------------------------------------------------- OpenSSH


def _check_sshd_path(path: Path, what: str) -> None:
    if _UNSAFE_SSHD_PATH.search(str(path)):
        raise ValueError(
            f"OpenSSH cannot use {what} {str(path)!r}: it contains a blank or one of "
            "% \" ' \\ #; choose another folder or use kind='paramiko'"
        )


def sshd_config_text(
    *,
    port: int,
    host_key: Path,
    pid_file: Path,
    authorized_keys: Path,
    username: str,
    root: Path,
    umask: int,
) -> str:
    """A minimal sshd_config: key-only login for one user, SFTP only, start dir ``root``."""
    sftp = f"internal-sftp -d {root} -u {umask:04o}"
    lines = [
        f"Port {port}",
        f"ListenAddress {HOST}",
        f"HostKey {host_key}",
        f"PidFile {pid_file}",
        f"AuthorizedKeysFile {authorized_keys}",
        f"AllowUsers {username}",
        "AuthenticationMethods publickey",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "StrictModes no",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "X11Forwarding no",
        "PermitTTY no",
        "PermitTunnel no",
        "PrintMotd no",
        "LogLevel VERBOSE",
        f"Subsystem sftp {sftp}",
        f"ForceCommand {sftp}",
    ]
    return "\n".join(lines) + "\n"


def _openssh_command(
    root: Path,
    state_dir: Path,
    port: int,
    host_key: Path,
    authorized_keys: Path,
    umask: int,
) -> list[str]:
    for path, what in (
        (root, "the SFTP root"),
        (state_dir, "the state folder"),
        (host_key, "the host key"),
    ):
        _check_sshd_path(path, what)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privsep dir
    config = state_dir / SSHD_CONFIG_NAME
    config.write_text(
        sshd_config_text(
            port=port,
            host_key=host_key,
            pid_file=state_dir / SSHD_PID_NAME,
            authorized_keys=authorized_keys,
            username=current_username(),
            root=root,
            umask=umask,
        )
    )
    _check_sshd_config(config)
    return [str(SSHD), "-D", "-e", "-f", str(config)]


def _check_sshd_config(config: Path) -> None:
    result = subprocess.run(  # nosec B603
        [str(SSHD), "-t", "-f", str(config)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"sshd rejected {config} (sshd -t exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )


# ------------------------------------------------------------- paramiko launcher


def _paramiko_command(
    root: Path, port: int, host_key: Path, authorized_keys: Path, umask: int
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "demo.local_sftp",
        "serve",
        "--root",
        str(root),
        "--host",
        HOST,
        "--port",
        str(port),
        "--host-key",
        str(host_key),
        "--authorized-keys",
        str(authorized_keys),
        "--umask",
        f"{umask:04o}",
    ]


# ---------------------------------------------------------- stopping by pid file


def stop_recorded_server(state_dir: Path) -> bool:
    """Stop the server whose PID is recorded in ``state_dir``; True if one was running.

    The PID is only signalled if that process's command line names ``state_dir``
    (sshd's config or the fallback's authorized_keys live there), so a stale pid file
    never kills an unrelated process that reused the number.
    """
    state_dir = Path(state_dir).resolve()
    pid_file = state_dir / SERVER_PID_NAME
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return False
    running = _pid_alive(pid) and f"{state_dir}/" in _command_line(pid)
    if running:
        _terminate_pids([pid, *_descendant_pids(pid)], None)
        LOG.info("stopped SFTP server pid %d recorded in %s", pid, pid_file)
    pid_file.unlink(missing_ok=True)
    return running


def _forget_recorded_pid(state_dir: Path, pid: int) -> None:
    """Remove ``state_dir``'s pid file if it still records ``pid``."""
    pid_file = state_dir / SERVER_PID_NAME
    with contextlib.suppress(OSError, ValueError):
        if int(pid_file.read_text().strip()) == pid:
            pid_file.unlink()


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


# =================================================== the pure-Python SFTP server


class PathEscapesRoot(PermissionError):
    """A client asked for a path outside the SFTP root."""

    def __init__(self, remote_path: str) -> None:
        super().__init__(errno.EACCES, "path escapes the SFTP root", remote_path)


def _sftp_errors(method: Callable[..., _T]) -> Callable[..., _T | int]:
    """Turn OSError (including PathEscapesRoot) into the matching SFTP status code."""

    @functools.wraps(method)
    def wrapper(*args: Any) -> _T | int:
        try:
            return method(*args)
        except OSError as exc:
            LOG.info("%s%r refused: %s", method.__name__, args[1:], exc)
            return int(paramiko.SFTPServer.convert_errno(exc.errno))

    return wrapper


def _apply_attributes(target: int | str, attr: paramiko.SFTPAttributes) -> None:
    """Apply SFTP SETSTAT attributes to a path or an open file descriptor."""
    flags = attr._flags  # paramiko exposes which fields were sent only here
    if flags & attr.FLAG_PERMISSIONS:
        os.chmod(target, attr.st_mode & 0o7777)
    if flags & attr.FLAG_UIDGID:
        os.chown(target, attr.st_uid, attr.st_gid)
    if flags & attr.FLAG_AMTIME:
        os.utime(target, (attr.st_atime, attr.st_mtime))
    if flags & attr.FLAG_SIZE:
        os.truncate(target, attr.st_size)


class _FileHandle(paramiko.SFTPHandle):
    """An open file served with positional reads and writes (byte-exact at any offset)."""

    def __init__(self, fd: int, flags: int) -> None:
        super().__init__(flags)
        self._fd: int | None = fd

    def _require_fd(self) -> int:
        if self._fd is None:
            raise OSError(errno.EBADF, "handle is closed")
        return self._fd

    def read(self, offset: int, length: int) -> bytes | int:
        try:
            return os.pread(self._require_fd(), length, offset)
        except OSError as exc:
            return int(paramiko.SFTPServer.convert_errno(exc.errno))

    def write(self, offset: int, data: bytes) -> int:
        try:
            fd = self._require_fd()
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, offset)
                view = view[written:]
                offset += written
        except OSError as exc:
            return int(paramiko.SFTPServer.convert_errno(exc.errno))
        return paramiko.SFTP_OK

    def stat(self) -> paramiko.SFTPAttributes | int:
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self._require_fd()))
        except OSError as exc:
            return int(paramiko.SFTPServer.convert_errno(exc.errno))

    def chattr(self, attr: paramiko.SFTPAttributes) -> int:
        try:
            _apply_attributes(self._require_fd(), attr)
        except OSError as exc:
            return int(paramiko.SFTPServer.convert_errno(exc.errno))
        return paramiko.SFTP_OK

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class RootedSftpInterface(paramiko.SFTPServerInterface):
    """SFTP operations confined to one folder.

    Paths are the real paths on disk, like OpenSSH's ``internal-sftp -d ROOT``:
    relative paths start at the root and ``normalize('.')`` returns it. Any path that
    resolves outside the root (``..``, absolute paths, symlinks) is refused.
    """

    def __init__(self, server: paramiko.ServerInterface, *, root: str) -> None:
        super().__init__(server)
        self.root = Path(os.path.realpath(root))

    def confine(self, remote_path: str, *, follow: bool) -> Path:
        """Map a remote path to a local one inside the root, or raise PathEscapesRoot.

        ``follow=False`` keeps a final symlink itself (for lstat, remove, rename).
        """
        lexical = os.path.normpath(os.path.join(self.root, remote_path or "."))
        parent, name = os.path.split(lexical)
        local = Path(os.path.realpath(parent)) / name if name else Path(lexical)
        if follow:
            local = Path(os.path.realpath(local))
        if local != self.root and self.root not in local.parents:
            raise PathEscapesRoot(remote_path)
        return local

    def canonicalize(self, path: str) -> str:
        return str(self.confine(path, follow=True))

    @_sftp_errors
    def open(self, path: str, flags: int, attr: paramiko.SFTPAttributes) -> _FileHandle:
        local = self.confine(path, follow=True)
        requested = getattr(attr, "st_mode", None)
        mode = requested & 0o7777 if requested is not None else 0o666  # umask applies
        fd = os.open(local, flags | os.O_CLOEXEC, mode)
        return _FileHandle(fd, flags)

    @_sftp_errors
    def list_folder(self, path: str) -> list[paramiko.SFTPAttributes]:
        local = self.confine(path, follow=True)
        return [
            paramiko.SFTPAttributes.from_stat(os.lstat(local / name), filename=name)
            for name in sorted(os.listdir(local))
        ]

    @_sftp_errors
    def stat(self, path: str) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.stat(self.confine(path, follow=True)))

    @_sftp_errors
    def lstat(self, path: str) -> paramiko.SFTPAttributes:
        return paramiko.SFTPAttributes.from_stat(os.lstat(self.confine(path, follow=False)))

    @_sftp_errors
    def remove(self, path: str) -> int:
        os.remove(self.confine(path, follow=False))
        return paramiko.SFTP_OK

    @_sftp_errors
    def rename(self, oldpath: str, newpath: str) -> int:
        """Plain SFTP rename never replaces an existing target (as on OpenSSH)."""
        source = self.confine(oldpath, follow=False)
        target = self.confine(newpath, follow=False)
        if os.path.lexists(target):
            return paramiko.SFTP_FAILURE
        os.rename(source, target)
        return paramiko.SFTP_OK

    @_sftp_errors
    def posix_rename(self, oldpath: str, newpath: str) -> int:
        """posix-rename@openssh.com: atomically replaces an existing target."""
        os.replace(self.confine(oldpath, follow=False), self.confine(newpath, follow=False))
        return paramiko.SFTP_OK

    @_sftp_errors
    def mkdir(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        requested = getattr(attr, "st_mode", None)
        mode = requested & 0o7777 if requested is not None else 0o777  # umask applies
        os.mkdir(self.confine(path, follow=False), mode)
        return paramiko.SFTP_OK

    @_sftp_errors
    def rmdir(self, path: str) -> int:
        os.rmdir(self.confine(path, follow=False))
        return paramiko.SFTP_OK

    @_sftp_errors
    def chattr(self, path: str, attr: paramiko.SFTPAttributes) -> int:
        _apply_attributes(str(self.confine(path, follow=True)), attr)
        return paramiko.SFTP_OK

    @_sftp_errors
    def readlink(self, path: str) -> str:
        local = self.confine(path, follow=False)
        target = os.readlink(local)
        self.confine(str(local), follow=True)  # refuse links that point out of the root
        return target


class _ConfinedSftpServer(paramiko.SFTPServer):
    """paramiko's SFTP subsystem, plus: posix-rename advertised, escapes → denied."""

    def _send_server_version(self) -> int:
        # Same as paramiko's, plus the posix-rename extension so that clients such
        # as OpenSSH's sftp know they may use it.
        kind, data = self._read_packet()
        if kind != paramiko.sftp.CMD_INIT:
            raise paramiko.SFTPError("Incompatible sftp protocol")
        version = int.from_bytes(data[:4], "big")
        msg = paramiko.Message()
        msg.add_int(paramiko.sftp._VERSION)
        msg.add("check-file", "md5,sha1", "posix-rename@openssh.com", "1")
        self._send_packet(paramiko.sftp.CMD_VERSION, msg)
        return version

    def _process(self, t: int, request_number: int, msg: paramiko.Message) -> None:
        # canonicalize() must return a string, so it can only refuse by raising.
        try:
            super()._process(t, request_number, msg)
        except PathEscapesRoot as exc:
            LOG.info("refused path outside the root: %s", exc.filename)
            self._send_status(request_number, paramiko.SFTP_PERMISSION_DENIED)


class _KeyOnlyServer(paramiko.ServerInterface):
    """Public-key login for one user and key set; session channels for SFTP only."""

    def __init__(self, username: str, authorized: list[paramiko.PKey]) -> None:
        self.username = username
        self.authorized = authorized

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        if username == self.username and any(key == known for known in self.authorized):
            return paramiko.AUTH_SUCCESSFUL
        LOG.info("refused key %s for user %r", key.fingerprint, username)
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_subsystem_request(self, channel: paramiko.Channel, name: str) -> bool:
        return name == "sftp" and super().check_channel_subsystem_request(channel, name)


def read_authorized_keys(path: Path) -> list[paramiko.PKey]:
    """Public keys from an authorized_keys file (options before the key are skipped)."""
    keys: list[paramiko.PKey] = []
    for line in path.read_text().splitlines():
        tokens = line.split()
        if not tokens or tokens[0].startswith("#"):
            continue
        for index, token in enumerate(tokens[:-1]):
            try:
                blob = base64.b64decode(tokens[index + 1], validate=True)
                keys.append(paramiko.PKey.from_type_string(token, blob))
                break
            except (binascii.Error, ValueError, paramiko.SSHException):
                continue
    return keys


def _serve_connection(
    conn: socket.socket,
    peer: tuple[str, int],
    host_key: paramiko.PKey,
    server: _KeyOnlyServer,
    root: Path,
) -> None:
    # Without TCP_NODELAY each 32 KiB SFTP reply (split into a full SSH packet plus a
    # 13-byte tail) waits for the client's delayed ACK: 40 ms per read, ~0.8 MiB/s,
    # whenever paramiko's client falls back from prefetch to one read at a time.
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport = paramiko.Transport(conn)
    try:
        transport.add_server_key(host_key)
        transport.set_subsystem_handler(
            "sftp", _ConfinedSftpServer, RootedSftpInterface, root=str(root)
        )
        transport.start_server(server=server)
        transport.join()  # the subsystem thread does the work until the client leaves
    except (paramiko.SSHException, EOFError, OSError) as exc:
        LOG.info("connection from %s:%d ended: %s", peer[0], peer[1], exc)
    finally:
        transport.close()


def serve_sftp(
    root: Path,
    host: str,
    port: int,
    host_key_file: Path,
    authorized_keys: Path,
    username: str,
    umask: int = 0o077,
) -> None:
    """Run the pure-Python SFTP server until killed (one thread per connection)."""
    os.umask(umask)
    root = Path(root).resolve()
    host_key = paramiko.PKey.from_path(host_key_file)
    server = _KeyOnlyServer(username, read_authorized_keys(authorized_keys))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(16)
        LOG.info(
            "paramiko SFTP server listening on %s:%d (pid %d) serving %s for %s",
            host,
            port,
            os.getpid(),
            root,
            username,
        )
        while True:
            conn, peer = listener.accept()
            threading.Thread(
                target=_serve_connection,
                args=(conn, peer, host_key, server, root),
                name=f"sftp-{peer[0]}:{peer[1]}",
                daemon=True,
            ).start()


# ----------------------------------------------------------------------------- CLI


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo.local_sftp",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    start = commands.add_parser("start", help="start a server in the background")
    start.add_argument("--root", type=Path, required=True)
    start.add_argument("--state-dir", type=Path, required=True)
    start.add_argument("--port", type=int)
    start.add_argument("--kind", choices=KINDS, default="auto")
    start.add_argument("--umask", default="0077")

    stop = commands.add_parser("stop", help="stop the server recorded in --state-dir")
    stop.add_argument("--state-dir", type=Path, required=True)

    serve = commands.add_parser("serve", help="run the pure-Python server (foreground)")
    serve.add_argument("--root", type=Path, required=True)
    serve.add_argument("--host", default=HOST)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--host-key", type=Path, required=True)
    serve.add_argument("--authorized-keys", type=Path, required=True)
    serve.add_argument("--username", default=None, help="default: the current user")
    serve.add_argument("--umask", default="0077")
    return parser


def _run_start(args: argparse.Namespace) -> int:
    try:
        server = start_local_sftp_server(
            args.root, args.state_dir, port=args.port, kind=args.kind, umask=args.umask
        )
    except (RuntimeError, ValueError) as exc:
        LOG.error("%s", exc)
        return 1
    print(
        server.host, server.port, server.username, server.client_key, server.known_hosts, server.pid
    )
    return 0


def _run_stop(args: argparse.Namespace) -> int:
    if not stop_recorded_server(args.state_dir):
        LOG.warning("no running SFTP server recorded in %s", args.state_dir)
    return 0


def _run_serve(args: argparse.Namespace) -> int:
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # kill -USR1 PID: stacks to log
    # paramiko logs every readiness probe (connect, read banner, close) as an ERROR
    # with a traceback; _serve_connection logs the one-line reason instead.
    logging.getLogger("paramiko").setLevel(logging.WARNING)
    logging.getLogger("paramiko.transport").setLevel(logging.CRITICAL)
    logging.getLogger("paramiko.transport.sftp").setLevel(logging.WARNING)
    try:
        serve_sftp(
            args.root,
            args.host,
            args.port,
            args.host_key,
            args.authorized_keys,
            args.username or current_username(),
            _parse_umask(args.umask),
        )
    except KeyboardInterrupt:
        return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    runners = {"start": _run_start, "stop": _run_stop, "serve": _run_serve}
    return runners[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
