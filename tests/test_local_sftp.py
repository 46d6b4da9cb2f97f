"""Tests for demo.local_sftp: the local SFTP server used by the demo and the test suite."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paramiko
import pytest

from demo import local_sftp
from demo.local_sftp import (
    LocalSftpServer,
    ensure_keys,
    find_free_port,
    start_local_sftp_server,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI") == "true"
KINDS = ["openssh", "paramiko"]
MIB = 1024 * 1024


def require_kind(kind: str) -> None:
    """OpenSSH may be skipped on a laptop without sshd, never in CI."""
    if kind == "openssh" and not local_sftp.SSHD.exists():
        message = f"{local_sftp.SSHD} is missing (apt-get install openssh-server)"
        if IN_CI:
            pytest.fail(f"CI=true but {message}; the OpenSSH tests must run in CI")
        pytest.skip(message)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    require_kind(request.param)
    return str(request.param)


@pytest.fixture
def server(kind: str, tmp_path: Path) -> Iterator[LocalSftpServer]:
    with start_local_sftp_server(tmp_path / "sftp-root", tmp_path / "state", kind=kind) as srv:
        yield srv


def connect(
    srv: LocalSftpServer,
    *,
    known_hosts: Path | None = None,
    client_key: Path | None = None,
    pin: bool = True,
) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    if pin:
        client.load_host_keys(str(known_hosts or srv.known_hosts))
    try:
        client.connect(
            srv.host,
            srv.port,
            username=srv.username,
            key_filename=str(client_key or srv.client_key),
            look_for_keys=False,
            allow_agent=False,
            timeout=10,
            banner_timeout=10,
            auth_timeout=10,
            channel_timeout=10,
        )
    except BaseException:
        client.close()
        raise
    return client


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def other_ed25519_key(directory: Path) -> Path:
    """A second, unrelated ed25519 key pair (its own state dir)."""
    _host_key, client_key = ensure_keys(directory)
    return client_key


def _run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run(
        [sys.executable, "-m", "demo.local_sftp", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=60,
        env=env,
        cwd=PROJECT_ROOT,
    )


def _parent_chain_contains(pid: int, ancestor: int) -> bool:
    parents = local_sftp._read_parent_pids()
    current = parents.get(pid)
    while current not in (None, 0, 1):
        if current == ancestor:
            return True
        current = parents.get(current)
    return False


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


# ------------------------------------------------------------------ file transfer


def test_put_read_back_posix_rename_and_list(server: LocalSftpServer) -> None:
    with connect(server) as client, client.open_sftp() as sftp:
        assert sftp.normalize(".") == str(server.root)
        sftp.mkdir("FROM_DFPS")
        sftp.putfo(io.BytesIO(b"first\n"), "FROM_DFPS/x.txt")
        sftp.putfo(io.BytesIO(b"second\x00\xff\n"), "FROM_DFPS/x.txt.part")
        with sftp.open("FROM_DFPS/x.txt", "rb") as remote:
            assert remote.read() == b"first\n"

        sftp.posix_rename("FROM_DFPS/x.txt.part", "FROM_DFPS/x.txt")

        assert sftp.listdir("FROM_DFPS") == ["x.txt"]
        assert sorted(sftp.listdir(".")) == ["FROM_DFPS"]
        with sftp.open("FROM_DFPS/x.txt", "rb") as remote:
            assert remote.read() == b"second\x00\xff\n"

    on_disk = server.root / "FROM_DFPS" / "x.txt"
    assert on_disk.read_bytes() == b"second\x00\xff\n"
    assert stat.S_IMODE(on_disk.stat().st_mode) == 0o600
    assert sorted(p.name for p in server.root.iterdir()) == ["FROM_DFPS"]


def test_plain_rename_onto_existing_file_fails_like_openssh(server: LocalSftpServer) -> None:
    with connect(server) as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(b"old"), "a.txt")
        sftp.putfo(io.BytesIO(b"new"), "b.txt")
        with pytest.raises(OSError) as raised:
            sftp.rename("b.txt", "a.txt")
        assert raised.value.args == ("Failure",)
        sftp.rename("b.txt", "c.txt")
        assert sorted(sftp.listdir(".")) == ["a.txt", "c.txt"]
    assert (server.root / "a.txt").read_bytes() == b"old"


def test_twenty_mib_round_trip_is_byte_exact(server: LocalSftpServer, tmp_path: Path) -> None:
    payload = os.urandom(20 * MIB)
    source = tmp_path / "source.bin"
    back = tmp_path / "back.bin"
    source.write_bytes(payload)
    with connect(server) as client, client.open_sftp() as sftp:
        sftp.mkdir("TO_DFPS")
        attrs = sftp.put(str(source), "TO_DFPS/big.bin")
        sftp.get("TO_DFPS/big.bin", str(back))
    assert attrs.st_size == 20 * MIB
    assert hashlib.sha256(back.read_bytes()).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert (server.root / "TO_DFPS" / "big.bin").read_bytes() == payload


def test_chmod_and_utime_are_applied(server: LocalSftpServer) -> None:
    with connect(server) as client, client.open_sftp() as sftp:
        sftp.putfo(io.BytesIO(b"abc"), "t.txt")
        sftp.utime("t.txt", (1_600_000_000, 1_700_000_000))
        sftp.chmod("t.txt", 0o640)
        attrs = sftp.stat("t.txt")
    assert (attrs.st_size, attrs.st_mtime, stat.S_IMODE(attrs.st_mode)) == (3, 1_700_000_000, 0o640)
    on_disk = (server.root / "t.txt").stat()
    assert (int(on_disk.st_mtime), stat.S_IMODE(on_disk.st_mode)) == (1_700_000_000, 0o640)


def test_remove_and_rmdir(server: LocalSftpServer) -> None:
    with connect(server) as client, client.open_sftp() as sftp:
        sftp.mkdir("FROM_DFPS")
        sftp.putfo(io.BytesIO(b"x"), "FROM_DFPS/gone.txt")
        sftp.remove("FROM_DFPS/gone.txt")
        sftp.rmdir("FROM_DFPS")
        with pytest.raises(FileNotFoundError):
            sftp.stat("FROM_DFPS")
    assert list(server.root.iterdir()) == []


# ------------------------------------------------------------------ host key pinning


def test_client_without_known_hosts_is_refused(server: LocalSftpServer) -> None:
    with pytest.raises(paramiko.SSHException) as raised:
        connect(server, pin=False)
    assert type(raised.value) is paramiko.SSHException
    assert str(raised.value) == f"Server '[127.0.0.1]:{server.port}' not found in known_hosts"


def test_client_with_a_different_pinned_key_gets_bad_host_key(
    server: LocalSftpServer, tmp_path: Path
) -> None:
    impostor = local_sftp.public_key_line(other_ed25519_key(tmp_path / "other"))
    wrong_known_hosts = tmp_path / "wrong_known_hosts"
    wrong_known_hosts.write_text(f"[127.0.0.1]:{server.port} {impostor}\n")

    with pytest.raises(paramiko.BadHostKeyException) as raised:
        connect(server, known_hosts=wrong_known_hosts)

    assert f"{raised.value.key.get_name()} {raised.value.key.get_base64()}" == (
        server.host_public_key
    )
    assert raised.value.expected_key.get_base64() == impostor.split()[1]


def test_known_hosts_holds_exactly_the_pinned_line(server: LocalSftpServer) -> None:
    assert server.known_hosts.read_text() == (
        f"[127.0.0.1]:{server.port} {server.host_public_key}\n"
    )
    assert server.host_public_key.startswith("ssh-ed25519 AAAA")
    assert len(server.host_public_key.split()) == 2


def test_unknown_client_key_is_refused(server: LocalSftpServer, tmp_path: Path) -> None:
    with pytest.raises(paramiko.AuthenticationException):
        connect(server, client_key=other_ed25519_key(tmp_path / "other"))


def test_only_sftp_is_allowed(server: LocalSftpServer) -> None:
    with connect(server) as client:
        transport = client.get_transport()
        assert transport is not None
        with pytest.raises(paramiko.ChannelException) as raised:
            transport.open_channel("direct-tcpip", ("127.0.0.1", server.port), ("127.0.0.1", 1))
        assert raised.value.code == paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

        if server.kind == "openssh":
            # ForceCommand internal-sftp answers every exec with this refusal.
            _stdin, stdout, stderr = client.exec_command("echo pwned", timeout=10)
            assert stdout.read() == b"This service allows sftp connections only.\n"
            assert stderr.read() == b""
            assert stdout.channel.recv_exit_status() == 1
        else:
            with pytest.raises(paramiko.SSHException) as exec_refused:
                client.exec_command("echo pwned", timeout=10)
            assert str(exec_refused.value) == "Channel closed."


# ------------------------------------------------------------------ process control


def test_server_runs_as_current_user_and_records_pid(server: LocalSftpServer) -> None:
    assert server.username == local_sftp.current_username()
    assert server.host == "127.0.0.1"
    state_dir = server.log_file.parent
    assert (state_dir / "server.pid").read_text() == f"{server.pid}\n"
    assert Path(f"/proc/{server.pid}").exists()


def test_stop_closes_port_and_is_idempotent(server: LocalSftpServer) -> None:
    assert port_accepts(server.host, server.port)
    server.stop()
    assert not port_accepts(server.host, server.port)
    assert not Path(f"/proc/{server.pid}").exists()
    assert not (server.log_file.parent / "server.pid").exists()
    server.stop()
    assert server.connection_pids() == []


def test_stop_ends_open_connections(server: LocalSftpServer) -> None:
    client = connect(server)
    sftp = client.open_sftp()
    try:
        pids = server.connection_pids()
        if server.kind == "openssh":
            assert len(pids) >= 1
            assert all(_parent_chain_contains(pid, server.pid) for pid in pids)
        else:
            assert pids == []  # one thread per connection, no processes
        server.stop()
        assert [pid for pid in pids if local_sftp._pid_alive(pid)] == []
        with pytest.raises((OSError, EOFError, paramiko.SSHException)):
            sftp.listdir(".")
    finally:
        client.close()


def test_killing_openssh_connection_processes_breaks_a_transfer(tmp_path: Path) -> None:
    """connection_pids() is what fault-injection tests kill (paramiko has no such pids)."""
    require_kind("openssh")
    kind = "openssh"
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(64 * MIB))
    errors: list[BaseException] = []
    with start_local_sftp_server(tmp_path / "root", tmp_path / "state", kind=kind) as srv:
        client = connect(srv)
        sftp = client.open_sftp()

        def upload() -> None:
            try:
                sftp.put(str(source), "big.bin")
            except (EOFError, OSError, paramiko.SSHException) as exc:
                errors.append(exc)

        uploader = threading.Thread(target=upload)
        uploader.start()
        _wait_for(lambda: (srv.root / "big.bin").exists())
        for pid in srv.connection_pids():
            os.kill(pid, 9)
        uploader.join(30)
        client.close()
        assert not uploader.is_alive()
        assert len(errors) == 1
        assert (srv.root / "big.bin").stat().st_size < 64 * MIB
        assert port_accepts(srv.host, srv.port)  # the listener survives


def test_start_fails_with_log_when_port_is_taken(kind: str, tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        with pytest.raises(RuntimeError) as raised:
            start_local_sftp_server(tmp_path / "root", tmp_path / "state", port=port, kind=kind)
    message = str(raised.value)
    assert str(tmp_path / "state" / "server.log") in message
    assert "Address already in use" in message


def test_openssh_kind_without_sshd_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    missing = tmp_path / "no-sshd"
    monkeypatch.setattr(local_sftp, "SSHD", missing)
    with pytest.raises(RuntimeError) as raised:
        start_local_sftp_server(tmp_path / "root", tmp_path / "state", kind="openssh")
    assert f"kind='openssh' needs OpenSSH's server at {missing}" in str(raised.value)
    assert local_sftp.resolve_kind("auto") == "paramiko"


def test_auto_prefers_openssh_when_present() -> None:
    expected = "openssh" if local_sftp.SSHD.exists() else "paramiko"
    assert local_sftp.resolve_kind("auto") == expected


def test_openssh_refuses_root_with_a_blank(tmp_path: Path) -> None:
    require_kind("openssh")
    with pytest.raises(ValueError, match="cannot use the SFTP root"):
        start_local_sftp_server(tmp_path / "my root", tmp_path / "state", kind="openssh")


def test_find_free_port_is_bindable() -> None:
    port = find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
    assert 1024 < port < 65536


# ------------------------------------------------------------------ keys


def test_ensure_keys_creates_once_and_reuses(tmp_path: Path) -> None:
    host_key, client_key = ensure_keys(tmp_path / "state")
    first = (host_key.read_bytes(), client_key.read_bytes())
    assert ensure_keys(tmp_path / "state") == (host_key, client_key)
    assert (host_key.read_bytes(), client_key.read_bytes()) == first
    assert host_key != client_key and first[0] != first[1]
    for key in (host_key, client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert local_sftp.public_key_line(key).startswith("ssh-ed25519 AAAA")


def test_same_host_key_across_restarts(tmp_path: Path) -> None:
    kind = "openssh" if local_sftp.SSHD.exists() else "paramiko"
    with start_local_sftp_server(tmp_path / "root", tmp_path / "state", kind=kind) as first:
        first_key = first.host_public_key
    with start_local_sftp_server(tmp_path / "root", tmp_path / "state", kind=kind) as second:
        assert second.host_public_key == first_key
        with connect(second) as client, client.open_sftp() as sftp:
            assert sftp.listdir(".") == []


def test_keys_without_ssh_keygen_use_cryptography(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(local_sftp.shutil, "which", lambda _name: None)
    host_key, client_key = ensure_keys(tmp_path / "state")
    for key in (host_key, client_key):
        assert key.read_text().startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        pub_file = key.with_name(key.name + ".pub")
        assert pub_file.read_text().split()[:2] == local_sftp.public_key_line(key).split()
    monkeypatch.undo()
    keygen = shutil.which("ssh-keygen")
    if keygen is not None:  # OpenSSH itself accepts the key
        derived = subprocess.run(
            [keygen, "-y", "-f", str(client_key)], capture_output=True, text=True, check=True
        )
        assert derived.stdout.split()[:2] == local_sftp.public_key_line(client_key).split()


def test_custom_host_key_is_served(kind: str, tmp_path: Path) -> None:
    custom_host_key, _unused = ensure_keys(tmp_path / "custom")
    with start_local_sftp_server(
        tmp_path / "root", tmp_path / "state", kind=kind, host_key=custom_host_key
    ) as srv:
        assert srv.host_public_key == local_sftp.public_key_line(custom_host_key)
        with connect(srv) as client, client.open_sftp() as sftp:
            assert sftp.listdir(".") == []


# ------------------------------------------------------------------ paramiko confinement


@pytest.fixture
def paramiko_server(tmp_path: Path) -> Iterator[LocalSftpServer]:
    with start_local_sftp_server(
        tmp_path / "sftp-root", tmp_path / "state", kind="paramiko"
    ) as srv:
        yield srv


def test_paramiko_server_refuses_paths_escaping_root(
    paramiko_server: LocalSftpServer, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside_dir = tmp_path / "outside-dir"
    outside_dir.mkdir()
    (outside_dir / "secret.txt").write_text("secret")
    (paramiko_server.root / "link-out").symlink_to(outside_dir)
    with connect(paramiko_server) as client, client.open_sftp() as sftp:
        refusals = {
            "put ../outside.txt": lambda: sftp.putfo(io.BytesIO(b"x"), "../outside.txt"),
            "open absolute": lambda: sftp.open(str(outside), "wb"),
            "stat /etc/hostname": lambda: sftp.stat("/etc/hostname"),
            "listdir ..": lambda: sftp.listdir(".."),
            "listdir symlink out": lambda: sftp.listdir("link-out"),
            "read via symlink": lambda: sftp.open("link-out/secret.txt", "rb"),
            "normalize ..": lambda: sftp.normalize(".."),
            "mkdir ../x": lambda: sftp.mkdir("../x"),
            "rename out": lambda: sftp.posix_rename("link-out", "../moved"),
        }
        for label, attempt in refusals.items():
            with pytest.raises(PermissionError) as raised:
                attempt()
            assert raised.value.errno == errno.EACCES, label
        # the symlink itself lies inside the root: lstat and listing show it
        assert stat.S_ISLNK(sftp.lstat("link-out").st_mode)
        assert sorted(sftp.listdir(".")) == ["link-out"]
        # ".." that stays inside the root is fine
        sftp.mkdir("FROM_DFPS")
        sftp.putfo(io.BytesIO(b"ok"), "FROM_DFPS/../FROM_DFPS/in.txt")
    assert not outside.exists()
    assert not (tmp_path / "x").exists()
    assert (paramiko_server.root / "FROM_DFPS" / "in.txt").read_bytes() == b"ok"
    assert (outside_dir / "secret.txt").read_text() == "secret"


def test_paramiko_server_serves_several_clients_at_once(
    paramiko_server: LocalSftpServer,
) -> None:
    clients = [connect(paramiko_server) for _ in range(3)]
    try:
        sessions = [c.open_sftp() for c in clients]
        for number, sftp in enumerate(sessions):
            sftp.putfo(io.BytesIO(f"client {number}".encode()), f"c{number}.txt")
        assert sorted(sessions[0].listdir(".")) == ["c0.txt", "c1.txt", "c2.txt"]
    finally:
        for c in clients:
            c.close()


# ------------------------------------------------------------------ command line


def test_cli_start_prints_one_line_and_stop_ends_server(kind: str, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    root = tmp_path / "root"
    started = _run_cli("start", "--root", str(root), "--state-dir", str(state_dir), "--kind", kind)
    fields = started.stdout.split()
    assert len(started.stdout.splitlines()) == 1
    assert len(fields) == 6
    host, port, username, client_key, known_hosts, pid = fields
    srv = LocalSftpServer(
        kind=kind,
        host=host,
        port=int(port),
        username=username,
        root=root.resolve(),
        client_key=Path(client_key),
        known_hosts=Path(known_hosts),
        host_public_key=local_sftp.public_key_line(state_dir / "ssh_host_ed25519_key"),
        pid=int(pid),
        log_file=state_dir / "server.log",
    )
    try:
        assert (host, username) == ("127.0.0.1", local_sftp.current_username())
        with connect(srv) as client, client.open_sftp() as sftp:
            sftp.putfo(io.BytesIO(b"cli"), "cli.txt")
        assert (root / "cli.txt").read_bytes() == b"cli"

        _run_cli("stop", "--state-dir", str(state_dir))
        assert not local_sftp._pid_alive(int(pid))
        assert not port_accepts(host, int(port))
        assert not (state_dir / "server.pid").exists()
        again = _run_cli("stop", "--state-dir", str(state_dir))
        assert again.stdout == ""
    finally:
        srv.stop()


def test_stop_recorded_server_ignores_unrelated_pid(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "server.pid").write_text(f"{os.getpid()}\n")  # pytest itself
    assert local_sftp.stop_recorded_server(state_dir) is False
    assert not (state_dir / "server.pid").exists()


def test_cli_start_failure_exits_1_with_reason(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        result = _run_cli(
            "start",
            "--root",
            str(tmp_path / "r"),
            "--state-dir",
            str(tmp_path / "s"),
            "--port",
            str(port),
            "--kind",
            "paramiko",
            check=False,
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert str(tmp_path / "s" / "server.log") in result.stderr
    assert "Address already in use" in result.stderr


def test_openssh_sftp_client_can_use_the_server(server: LocalSftpServer, tmp_path: Path) -> None:
    """OpenSSH's own client: pinned key, batch upload, rename onto an existing file."""
    sftp_binary = shutil.which("sftp")
    if sftp_binary is None:
        pytest.skip("OpenSSH's sftp client is not installed")
    (tmp_path / "a.txt").write_bytes(b"A")
    (tmp_path / "b.txt").write_bytes(b"B")
    batch = tmp_path / "batch"
    batch.write_text(
        "mkdir FROM_DFPS\n"
        f"put {tmp_path / 'a.txt'} FROM_DFPS/a.txt\n"
        f"put {tmp_path / 'b.txt'} FROM_DFPS/b.txt\n"
        "rename FROM_DFPS/b.txt FROM_DFPS/a.txt\n"
        "ls -1 FROM_DFPS\n"
    )
    result = subprocess.run(
        [
            sftp_binary,
            "-F",
            "/dev/null",
            "-b",
            str(batch),
            "-P",
            str(server.port),
            "-i",
            str(server.client_key),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={server.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            f"{server.username}@{server.host}",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "FROM_DFPS/a.txt"
    assert (server.root / "FROM_DFPS" / "a.txt").read_bytes() == b"B"
    assert sorted(p.name for p in (server.root / "FROM_DFPS").iterdir()) == ["a.txt"]
