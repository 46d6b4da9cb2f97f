"""Issue 4: it survives. Transfer faults against the real sshd, local faults, bad source rows,
crash and resume. Every case: nothing under a final name, nothing lost, a non-zero exit with
one line, and a rerun that completes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest

import util
from demo.build_demo_db import build_demo_database
from demo.local_sftp import find_free_port
from exchange.errors import ConfigError
from exchange.records import FAULT_KILL_AFTER_ENV
from tests.scenario import RESULTS_HEADER, report_file, report_files, results_line, scenario_answer

AS_OF = ("--as-of", "2025-06-20")
REPORTS = report_files()   # every report of the registry, as the share lists them
OFFSETS = [round(0.03 + i * 0.047, 3) for i in range(20)]   # 20 points through the transfer

transfer = pytest.mark.reliability("transfer faults")
local = pytest.mark.reliability("local faults")
source_rows = pytest.mark.reliability("bad source rows")
crash = pytest.mark.reliability("crash and resume")
security = pytest.mark.reliability("security")
inbound = pytest.mark.reliability("bad inbound corpus")


def require_root() -> None:
    """Mounts need root: CI runs as root; elsewhere these cases skip (never in CI)."""
    if os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("the mount-based fault cases need root in CI")
        pytest.skip("needs root for mount")


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    require_root()
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
                   check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


# ---------------------------------------------------------------------------
# A TCP relay in front of the real sshd that, at an exact byte offset of one connection,
# kills the server's connection processes (or stops them), then cuts the connection.
# ---------------------------------------------------------------------------


class FaultRelay:
    def __init__(self, server, direction: str, cut_at: int, action: str = "kill") -> None:
        self.server, self.direction, self.cut_at, self.action = server, direction, cut_at, action
        self.port = find_free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.fired = threading.Event()
        self.stopped_pids: list[int] = []
        self.threads: list[threading.Thread] = []
        self.sockets: list[socket.socket] = []
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def known_hosts(self, folder: Path) -> Path:
        path = folder / f"relay_known_hosts_{self.port}"
        path.write_text(f"[127.0.0.1]:{self.port} {self.server.host_public_key}\n")
        return path

    def _accept(self) -> None:
        while self.running:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.server.port))
            self.sockets += [client, upstream]
            counter = {"bytes": 0}
            for source, target, direction in ((client, upstream, "up"),
                                              (upstream, client, "down")):
                thread = threading.Thread(target=self._pipe, daemon=True,
                                          args=(source, target, direction, counter, client,
                                                upstream))
                thread.start()
                self.threads.append(thread)

    def _pipe(self, source, target, direction, counter, client, upstream) -> None:
        try:
            while True:
                data = source.recv(16384)
                if not data:
                    break
                if direction == self.direction and not self.fired.is_set():
                    room = self.cut_at - counter["bytes"]
                    if len(data) >= room:
                        target.sendall(data[:max(room, 0)])
                        self._fire(client, upstream)
                        return
                    counter["bytes"] += len(data)
                target.sendall(data)
        except OSError:
            pass
        finally:
            if self.action == "kill" or not self.fired.is_set():
                for sock in (client, upstream):
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def _fire(self, client, upstream) -> None:
        self.fired.set()
        pids = self.server.connection_pids()
        if self.action == "kill":
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for sock in (client, upstream):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        else:   # "stop": the server freezes; the client must time out
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            self.stopped_pids = pids

    def close(self) -> None:
        self.running = False
        for pid in self.stopped_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                os.kill(pid, signal.SIGCONT)
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self.threads:
            thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture(scope="module")
def big_db(tmp_path_factory) -> Path:
    """About 5,000 children a year: an End_txt_file.txt of a few hundred KB."""
    path = tmp_path_factory.mktemp("big") / "impact.sqlite"
    build_demo_database(path, scale=0.1)
    return path


def through_relay(workspace, relay: FaultRelay) -> None:
    workspace.configure(sftp={"port": relay.port, "known_hosts_file":
                              str(relay.known_hosts(workspace.root))})


def direct(workspace) -> None:
    workspace.configure(sftp={"port": workspace.server.port,
                              "known_hosts_file": str(workspace.server.known_hosts)})


def one_line_error(workspace, step: str) -> str:
    error = workspace.manifests(step)[-1]["error"]
    assert "\n" not in error
    return error


def archived_text_file(workspace) -> Path:
    """The text file the latest upload archived (the outbox keeps no copy: issue 20)."""
    uploads = [m for m in workspace.manifests("send") if m["outcome"] == "uploaded"]
    return Path(uploads[-1]["archived"][0])


def big_answer(pids: list[int], records: int) -> tuple[bytes, bytes]:
    lines = [results_line(pids[i % len(pids)], f"M{i:09d}", "20240101") for i in range(records)]
    results = ("\r\n".join([RESULTS_HEADER, *lines]) + "\r\n").encode()
    counts = (f"RECORDS_RECEIVED|6\r\nPERSONS_WITH_RECORDS|{min(len(pids), records)}\r\n"
              f"RESULT_RECORDS|{records}\r\n").encode()
    return results, counts


SCENARIO_PIDS = [1001, 1002, 1004, 1005, 1006, 1007]


# ---------------------------------------------------------------------------
# Transfer faults
# ---------------------------------------------------------------------------


@transfer
@pytest.mark.parametrize("fraction", OFFSETS)
def test_server_connection_killed_mid_upload(workspace, big_db, fraction):
    workspace.configure(database={"url": f"sqlite:///{big_db}"})
    assert workspace.send(*AS_OF, "--dry-run") == 0
    size = (workspace.folder("outbox") / "send" / "End_txt_file.txt").stat().st_size
    relay = FaultRelay(workspace.server, "up", 6000 + int(size * fraction))
    try:
        through_relay(workspace, relay)
        assert workspace.send(*AS_OF) == 1
    finally:
        relay.close()
    assert relay.fired.is_set()
    assert one_line_error(workspace, "send").startswith(f"sftp 127.0.0.1:{relay.port}: ")
    assert not (workspace.upload_dir / "End_txt_file.txt").exists()
    direct(workspace)
    assert workspace.send(*AS_OF) == 0
    assert (workspace.upload_dir / "End_txt_file.txt").read_bytes() == \
        archived_text_file(workspace).read_bytes()
    assert [m.get("upload_transferred") for m in workspace.manifests("send")
            if m["outcome"] == "uploaded"] == [True]


@transfer
@pytest.mark.parametrize("fraction", OFFSETS)
def test_server_connection_killed_mid_download(workspace, fraction):
    assert workspace.send(*AS_OF) == 0
    results, counts = big_answer(SCENARIO_PIDS, 12000)
    workspace.put_answer(results, counts)
    relay = FaultRelay(workspace.server, "down", 20000 + int(len(results) * fraction))
    try:
        through_relay(workspace, relay)
        assert workspace.receive(*AS_OF) == 1
    finally:
        relay.close()
    assert relay.fired.is_set()
    error = one_line_error(workspace, "receive")
    assert f"sftp 127.0.0.1:{relay.port}" in error
    run_id = workspace.manifests("receive")[-1]["run_id"]
    staging = workspace.folder("staging") / run_id
    assert not (staging / "Dfps-missing-person-results.txt").exists()
    assert not (staging / "Dfps-missing-person-results.txt.part").exists()
    assert list(workspace.folder("share").iterdir()) == []
    assert (workspace.answer_dir / "Dfps-missing-person-results.txt").read_bytes() == results
    direct(workspace)
    assert workspace.receive(*AS_OF) == 0
    assert sorted(p.name for p in workspace.folder("share").iterdir()) == REPORTS


@transfer
@pytest.mark.parametrize("direction", ["up", "down"])
def test_server_stopped_mid_transfer_the_client_times_out(workspace, big_db, direction):
    workspace.configure(sftp={"channel_timeout_seconds": 2})
    if direction == "up":
        workspace.configure(database={"url": f"sqlite:///{big_db}"})
    else:
        assert workspace.send(*AS_OF) == 0
        workspace.put_answer(*big_answer(SCENARIO_PIDS, 12000))
    relay = FaultRelay(workspace.server, direction, 60000, action="stop")
    try:
        through_relay(workspace, relay)
        step = workspace.send if direction == "up" else workspace.receive
        assert step(*AS_OF) == 1
    finally:
        relay.close()
    assert relay.fired.is_set()
    one_line_error(workspace, "send" if direction == "up" else "receive")
    assert not (workspace.upload_dir / "End_txt_file.txt").exists() or direction == "down"
    direct(workspace)
    rerun = workspace.send if direction == "up" else workspace.receive
    assert rerun(*AS_OF) == 0


@transfer
def test_stopped_server_connect_times_out_and_retries(workspace, tmp_path):
    from demo.local_sftp import start_local_sftp_server

    server = start_local_sftp_server(tmp_path / "root", tmp_path / "state", kind="openssh")
    try:
        workspace.configure(sftp={"port": server.port, "known_hosts_file": str(server.known_hosts),
                                  "key_file": str(server.client_key),
                                  "banner_timeout_seconds": 1, "connect_timeout_seconds": 1,
                                  "retries": 1, "retry_backoff_seconds": 0.1})
        os.kill(server.pid, signal.SIGSTOP)
        try:
            assert workspace.send(*AS_OF) == 1
        finally:
            os.kill(server.pid, signal.SIGCONT)
        assert one_line_error(workspace, "send").startswith(
            f"sftp 127.0.0.1:{server.port}: cannot connect after 2 attempt(s):")
        assert workspace.send(*AS_OF) == 0
        assert (server.root / workspace.remote_prefix / "FROM_DFPS" / "End_txt_file.txt").exists()
    finally:
        server.stop()


@transfer
def test_server_file_size_limit_fails_the_upload_cleanly(workspace, big_db, tmp_path):
    import resource

    from demo.local_sftp import start_local_sftp_server

    server = start_local_sftp_server(tmp_path / "root", tmp_path / "state", kind="openssh")
    try:
        workspace.configure(database={"url": f"sqlite:///{big_db}"},
                            sftp={"port": server.port, "known_hosts_file": str(server.known_hosts),
                                  "key_file": str(server.client_key)})
        unlimited = resource.RLIM_INFINITY      # lower the soft limit only: it can go back up
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (50_000, unlimited))
        assert workspace.send(*AS_OF) == 1
        one_line_error(workspace, "send")
        final = server.root / workspace.remote_prefix / "FROM_DFPS" / "End_txt_file.txt"
        assert not final.exists()
        resource.prlimit(server.pid, resource.RLIMIT_FSIZE, (unlimited, unlimited))
        assert workspace.send(*AS_OF) == 0
        assert final.read_bytes() == \
            archived_text_file(workspace).read_bytes()
    finally:
        server.stop()


@transfer
def test_server_disk_full_fails_the_upload_cleanly(workspace, big_db):
    workspace.configure(database={"url": f"sqlite:///{big_db}"})
    with small_tmpfs(workspace.upload_dir, "64k"):
        assert workspace.send(*AS_OF) == 1
        one_line_error(workspace, "send")
        assert not (workspace.upload_dir / "End_txt_file.txt").exists()
    assert workspace.send(*AS_OF) == 0
    assert (workspace.upload_dir / "End_txt_file.txt").stat().st_size > 64 * 1024


@transfer
def test_client_file_size_limit_fails_the_download_cleanly(workspace):
    import resource

    assert workspace.send(*AS_OF) == 0
    results, counts = big_answer(SCENARIO_PIDS, 12000)
    workspace.put_answer(results, counts)

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (300_000, 300_000))

    result = subprocess.run(
        [os.sys.executable, str(Path(__file__).parent.parent / "receivedps.py"), "--config",
         str(workspace.config_path), *AS_OF], capture_output=True, text=True, timeout=120,
        preexec_fn=limit_file_size, check=False)
    assert result.returncode == 1
    assert "download of" in result.stderr.splitlines()[-1]
    assert "File too large" in result.stderr.splitlines()[-1]
    assert list(workspace.folder("share").iterdir()) == []
    assert (workspace.answer_dir / "Dfps-missing-person-results.txt").read_bytes() == results
    assert workspace.receive(*AS_OF) == 0


# ---------------------------------------------------------------------------
# Local faults
# ---------------------------------------------------------------------------


@local
def test_outbox_disk_full_uploads_nothing(workspace):
    outbox = workspace.folder("outbox") / "send"
    with small_tmpfs(outbox, "12k"):  # room for the text file and both indexes, not the workbook
        assert workspace.send(*AS_OF) == 1
        assert one_line_error(workspace, "send") == \
            f"{outbox / 'end_export.xlsx'}: cannot write (no space left on device)"
        assert list(outbox.iterdir()) == []   # issue 20: a failed send keeps no plain copy
    assert not workspace.upload_dir.exists()
    assert workspace.send(*AS_OF) == 0
    assert (workspace.upload_dir / "End_txt_file.txt").exists()


@local
def test_archive_disk_full_then_the_next_run_catches_up(workspace):
    archive = workspace.folder("archive") / "send" / "FY2025_Q3"
    with small_tmpfs(archive, "4k"):
        assert workspace.send(*AS_OF) == 1
        assert "cannot write (no space left on device)" in one_line_error(workspace, "send")
    assert workspace.send(*AS_OF) == 0
    first, second = workspace.manifests("send")
    assert second["outcome"] == "skipped as identical"
    assert len(first["archived"]) == 4 and all(Path(p).is_file() for p in first["archived"])


@local
def test_share_disk_full_keeps_the_reports_queued(workspace):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    with small_tmpfs(workspace.folder("share"), "8k"):
        assert workspace.receive(*AS_OF) == 1
        error = one_line_error(workspace, "receive")
        assert "cannot write (no space left on device); reports stay queued in" in error
        delivered = sorted(p.name for p in workspace.folder("share").iterdir())
        for name in delivered:    # what did reach the share is whole
            openpyxl.load_workbook(workspace.folder("share") / name)
    queued = workspace.folder("outbox") / "reports" / "FY2025_Q3"
    assert sorted(delivered + [p.name for p in queued.iterdir()]) == REPORTS
    assert len(delivered) < 3
    assert workspace.receive(*AS_OF) == 0
    assert sorted(p.name for p in workspace.folder("share").iterdir()) == REPORTS


@local
def test_read_only_share_keeps_the_reports_queued(workspace):
    require_root()
    share = workspace.folder("share")
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    subprocess.run(["mount", "--bind", str(share), str(share)], check=True)
    subprocess.run(["mount", "-o", "remount,bind,ro", str(share)], check=True)
    try:
        assert workspace.receive(*AS_OF) == 1
        assert "cannot write (permission denied or read-only)" in \
            one_line_error(workspace, "receive")
    finally:
        subprocess.run(["umount", str(share)], check=True)
    assert workspace.receive(*AS_OF) == 0
    assert sorted(p.name for p in share.iterdir()) == REPORTS


@local
def test_unreachable_database_url_is_one_line_without_the_password(workspace, monkeypatch):
    monkeypatch.setenv("TEST_DB_PASSWORD", "s3cr3tpw")
    workspace.configure(database={"url": "oracle+oracledb://impact@127.0.0.1:1/"
                                         "?service_name=IMPACT",
                                  "password_env": "TEST_DB_PASSWORD"})
    assert workspace.send(*AS_OF) == 1
    error = one_line_error(workspace, "send")
    assert error.startswith("database oracle+oracledb://impact:***@127.0.0.1:1/")
    assert "s3cr3tpw" not in error + workspace.log_text()


@local
def test_a_database_host_that_does_not_resolve_is_one_line(workspace):
    workspace.configure(database={"url": "oracle+oracledb://impact@impact-db.invalid:1521/"
                                         "?service_name=IMPACT"})
    assert workspace.send(*AS_OF) == 1
    error = one_line_error(workspace, "send")
    assert error.startswith("database oracle+oracledb://impact@impact-db.invalid:1521/"
                            "?service_name=IMPACT: query send_children: ")
    assert "internal error" not in error


@security
def test_a_password_in_the_database_url_is_refused_and_password_env_needs_no_escaping(
        workspace, monkeypatch):
    workspace.configure(database={"url": "oracle+oracledb://impact:hunter2@db:1521/"})
    with pytest.raises(ConfigError, match="database.url: a password is written into the "
                                               "URL; name an environment variable in "
                                               "database.password_env instead"):
        util.load_config(workspace.config_path)
    monkeypatch.setenv("TEST_DB_PASSWORD", "p@ss/w:rd")
    workspace.configure(database={"url": "oracle+oracledb://impact@db:1521/?service_name=X",
                                  "password_env": "TEST_DB_PASSWORD"})
    config = util.load_config(workspace.config_path)
    engine = util.open_configured_database(config.database)
    assert engine.url.password == "p@ss/w:rd"
    assert engine.url.host == "db" and engine.url.query == {"service_name": "X"}
    assert "p@ss" not in engine.url.render_as_string(hide_password=True)


@local
def test_locked_sqlite_file_is_one_line_and_the_next_run_works(workspace):
    holder = sqlite3.connect(workspace.db_path)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert workspace.send(*AS_OF) == 1
        assert one_line_error(workspace, "send").endswith(
            "query send_children: database is locked")
    finally:
        holder.rollback()
        holder.close()
    assert workspace.send(*AS_OF) == 0


# ---------------------------------------------------------------------------
# Odd names in TO_DFPS (the listing side of the bad inbound corpus)
# ---------------------------------------------------------------------------


@inbound
@pytest.mark.parametrize("kind", ["folder", "symlink"])
def test_a_folder_or_link_under_the_answer_name_is_a_whole_file_fault(workspace, kind):
    assert workspace.send(*AS_OF) == 0
    results, counts = scenario_answer()
    workspace.put_answer(results, counts)
    target = workspace.answer_dir / "Dfps-missing-person-results.txt"
    target.unlink()
    if kind == "folder":
        target.mkdir()
    else:
        (workspace.root / "elsewhere.txt").write_bytes(results)
        target.symlink_to(workspace.root / "elsewhere.txt")
    assert workspace.receive(*AS_OF) == 1
    assert one_line_error(workspace, "receive") == \
        f"{workspace.remote_prefix}/TO_DFPS/Dfps-missing-person-results.txt: not a regular " \
        f"file on the server"
    assert list(workspace.folder("share").iterdir()) == []


@inbound
@pytest.mark.parametrize("name", ["../results.txt", "sub/results.txt", ".."])
def test_answer_names_with_folders_are_refused_in_the_config(workspace, name):
    workspace.configure(dps_file={"results_name": name})
    with pytest.raises(ConfigError, match="dps_file.results_name: a file name, not a path"):
        util.load_config(workspace.config_path)


@inbound
def test_other_files_in_the_answer_folder_are_left_alone(workspace):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    (workspace.answer_dir / "subfolder").mkdir()
    (workspace.answer_dir / "..odd name..txt").write_text("x")
    assert workspace.receive(*AS_OF) == 0
    assert sorted(os.listdir(workspace.answer_dir)) == ["..odd name..txt", "processed",
                                                        "subfolder"]


# ---------------------------------------------------------------------------
# Bad source rows (docs/data-contract.md §3, §5, §7): only a missing DOB, last or first name
# excludes
# ---------------------------------------------------------------------------

NORMAL = (3001, "Doe", "Jane", None, None, "2009-01-02", "Female", "Anglo")


def one_child_db(workspace, person, removals=None, episodes=()) -> None:
    with sqlite3.connect(workspace.db_path) as db:
        for table in ("runaway_episode", "removal", "person"):
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
        db.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?,?)", [NORMAL, person])
        db.execute("INSERT INTO removal VALUES (1, 3001, '2024-01-01', NULL, 101)")
        db.executemany("INSERT INTO removal VALUES (?,?,?,?,?)",
                       removals or [(2, person[0], "2024-01-01", None, 227)])
        db.executemany("INSERT INTO runaway_episode VALUES (?,?,?,?,?,?)", episodes)


def sent_and_excluded(workspace) -> tuple[list[list], list[list]]:
    workbook = openpyxl.load_workbook(workspace.folder("outbox") / "send" / "end_export.xlsx")
    sent = [list(r) for r in workbook["Sent"].iter_rows(min_row=2, values_only=True)]
    excluded = [list(r) for r in workbook["Excluded"].iter_rows(min_row=2, values_only=True)]
    return sent, excluded


def text_lines(workspace) -> list[str]:
    data = (workspace.folder("outbox") / "send" / "End_txt_file.txt").read_bytes()
    return data.decode("ascii").split("\r\n")[1:-1]


P = 4001


@source_rows
@pytest.mark.parametrize("person, line, reasons", [
    ((P, "Ng", "Al", None, None, None, "M", "Asian"), None, "no usable DOB"),
    ((P, "Ng", "Al", None, None, "2030-01-01", "M", "Asian"), None, "no usable DOB"),
    ((P, "Ng", "Al", None, None, "2011-02-30", "M", "Asian"), None, "no usable DOB"),
    ((P, None, "Al", None, None, "2010-01-01", "M", "Asian"), None, "no last name"),
    ((P, "Ng", None, None, None, "2010-01-01", "M", "Asian"), None, "no first name"),
    ((P, "Ng", "李小龍", None, None, "2010-01-01", "M", "Asian"), None, "no first name"),
    ((P, "Иванов", "Анна", None, None, "2010-01-01", "F", "Other"), None,
     "no last name; no first name"),
    ((P, "Ng", "Al😀", None, None, "2010-01-01", "M", "Asian"), "4001|NG|AL|||20100101|M|A", ""),
    ((P, "N" * 200, "A" * 200, "M" * 200, "J" * 200, "2010-01-01", "M", "Asian"),
     f"4001|{'N' * 30}|{'A' * 20}|{'M' * 20}|{'J' * 10}|20100101|M|A", ""),
    ((P, "Ng", "Al", None, None, "2010-01-01", "Nonbinary", "Asian"),
     "4001|NG|AL|||20100101|U|A", ""),
    ((P, "Ng", "Al", None, None, "2010-01-01", "M", "Pacific Islander"),
     "4001|NG|AL|||20100101|M|U", ""),
    ((P, "Ng", "Al", None, None, "2024-06-01", "M", "Asian"),     # DOB after the removal
     "4001|NG|AL|||20240601|M|A", ""),
])
def test_bad_person_rows(workspace, person, line, reasons):
    one_child_db(workspace, person)
    assert workspace.send(*AS_OF, "--dry-run") == 0
    lines = text_lines(workspace)
    assert lines[0] == "3001|DOE|JANE|||20090102|F|W"
    if line:
        assert lines[1:] == [line]
    else:
        assert lines[1:] == []
        _, excluded = sent_and_excluded(workspace)
        assert [(row[0], row[-1]) for row in excluded] == [(P, reasons)]


@source_rows
def test_null_county_is_sent_with_no_county(workspace):
    one_child_db(workspace, (P, "Ng", "Al", None, None, "2010-01-01", "M", "Asian"),
                 removals=[(2, P, "2024-01-01", None, None)])
    assert workspace.send(*AS_OF, "--dry-run") == 0
    sent, _ = sent_and_excluded(workspace)
    assert [row[0] for row in sent] == [3001, P] and sent[1][8] is None


@source_rows
def test_duplicate_person_rows_from_two_removals_become_one_line(workspace):
    one_child_db(workspace, (P, "Ng", "Al", None, None, "2010-01-01", "M", "Asian"),
                 removals=[(2, P, "2024-01-01", None, 15), (3, P, "2024-01-01", None, 15)])
    assert workspace.send(*AS_OF, "--dry-run") == 0
    assert text_lines(workspace) == ["3001|DOE|JANE|||20090102|F|W", "4001|NG|AL|||20100101|M|A"]


@source_rows
def test_two_latest_removals_on_the_same_day_take_the_highest_removal_id(workspace):
    one_child_db(workspace, (P, "Ng", "Al", None, None, "2010-01-01", "M", "Asian"),
                 removals=[(7, P, "2024-05-05", None, 71), (5, P, "2024-05-05", None, 15)])
    assert workspace.send(*AS_OF, "--dry-run") == 0
    sent, _ = sent_and_excluded(workspace)
    assert sent[1][0] == P and sent[1][8] == 71


@source_rows
def test_a_removal_ending_before_it_starts_is_no_crash(workspace):
    one_child_db(workspace, (P, "Ng", "Al", None, None, "2010-01-01", "M", "Asian"),
                 removals=[(2, P, "2025-04-01", "2025-03-15", 15)])
    assert workspace.send(*AS_OF, "--dry-run") == 0
    assert text_lines(workspace)[1:] == ["4001|NG|AL|||20100101|M|A"]


def receive_scenario_with(workspace, episodes) -> list[list]:
    with sqlite3.connect(workspace.db_path) as db:
        db.executemany("INSERT INTO runaway_episode VALUES (?,?,?,?,?,?)", episodes)
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    workbook = openpyxl.load_workbook(workspace.folder("share") / report_file("impact"))
    return [list(r) for r in workbook["Exceptions"].iter_rows(min_row=2, values_only=True)]


@source_rows
def test_sa98_missing_runaway_date_is_left_out(workspace):
    exceptions = receive_scenario_with(workspace, [(601, 1005, 6, "", None, 161)])
    # query rows are numbered in the query's order (by PID): 1001-1004, then 1005 on row 5
    assert exceptions == [["sa_98 query", 5, 1005, 601, "row left out",
                           "column RUNAWAY_DATE: missing", "IMPACT data"]]


@source_rows
def test_sa98_return_before_runaway_is_open_with_a_warning(workspace):
    exceptions = receive_scenario_with(workspace, [(601, 1005, 6, "2025-04-10", "2024-04-12",
                                                    161)])
    assert exceptions == [["sa_98 query", 5, 1005, 601, "warning",
                           "RETURN_DATE before RUNAWAY_DATE; episode treated as open",
                           "IMPACT data"]]
    # open: DPS's record for 1005 (DLC 2025-04-15) now matches it
    workbook = openpyxl.load_workbook(workspace.folder("share") / report_file("dps"))
    rows = list(workbook["DPS not in IMPACT"].iter_rows(min_row=2, values_only=True))
    assert [r[2] for r in rows] == [1007]


@source_rows
def test_sa98_repeated_episode_id_in_an_extract_is_left_out(workspace):
    extract = workspace.root / "sa98.csv"
    extract.write_text("EPISODE_ID,PID,LAST_NAME,FIRST_NAME,DOB,RUNAWAY_DATE,RETURN_DATE,"
                       "COUNTY_CODE\n504,1004,N,T,2010-07-20,2025-05-20,2025-05-25,71\n"
                       "504,1004,N,T,2010-07-20,2025-05-21,2025-05-25,71\n"
                       ",1004,N,T,2010-07-20,2025-05-21,2025-05-25,71\n")
    workspace.configure(sa_98={"source": "file", "extract_file": str(extract)})
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    workbook = openpyxl.load_workbook(workspace.folder("share") / report_file("impact"))
    assert [list(r) for r in workbook["Exceptions"].iter_rows(min_row=2, values_only=True)] == [
        ["sa98.csv", 3, 1004, 504, "row left out", "EPISODE_ID repeated (first on line 2)",
         "IMPACT data"],
        ["sa98.csv", 4, 1004, None, "row left out", "column EPISODE_ID: missing",
         "IMPACT data"]]


# ---------------------------------------------------------------------------
# Crash and resume: killed right after each step, the rerun finishes without a duplicate
# upload, report or mail.
# ---------------------------------------------------------------------------


def killed_after(workspace, script: str, step: str) -> None:
    env = dict(os.environ, **{FAULT_KILL_AFTER_ENV: step})
    result = workspace.cli(script, *AS_OF, env=env)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]


@crash
@pytest.mark.parametrize("step", ["query", "wrangle", "text_file", "workbook", "upload",
                                  "archive"])
def test_send_killed_after_each_step_resumes_without_a_second_upload(workspace, step):
    killed_after(workspace, "send2dps.py", step)
    assert workspace.send(*AS_OF) == 0
    uploads = [m for m in workspace.manifests("send") if m["outcome"] == "uploaded"]
    transferred = [m for m in uploads if m.get("upload_transferred")]
    assert len(uploads) == 1 and len(transferred) == 1
    assert len(uploads[0]["archived"]) == 4
    assert all(Path(p).is_file() for p in uploads[0]["archived"])
    assert (workspace.upload_dir / "End_txt_file.txt").read_bytes() == \
        archived_text_file(workspace).read_bytes()


@crash
def test_send_killed_between_upload_and_record_checks_the_remote_file(workspace):
    """Killed after the bytes went up but before the outcome was recorded: the rerun compares
    the server's file (size and SHA-256) with ours and does not upload it again."""
    killed_after(workspace, "send2dps.py", "upload")
    manifest = workspace.manifests("send")[-1]
    manifest["outcome"] = "running"              # as if killed one instruction earlier
    util.write_manifest(workspace.folder("state"), manifest)
    mtime = (workspace.upload_dir / "End_txt_file.txt").stat().st_mtime_ns
    assert workspace.send(*AS_OF) == 0
    latest = workspace.manifests("send")[-1]
    assert (latest["outcome"], latest["upload_transferred"]) == ("uploaded", False)
    assert latest["resumes_run"] == manifest["run_id"]
    assert (workspace.upload_dir / "End_txt_file.txt").stat().st_mtime_ns == mtime


@crash
@pytest.mark.parametrize("step", ["wait", "fetch", "checks", "sources", "reconcile", "reports",
                                  "archive", "deliver", "mail", "remote_cleanup"])
def test_receive_killed_after_each_step_resumes_without_a_second_report_or_mail(
        workspace, smtp_server, step):
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["analyst@dfps.example"]})
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    killed_after(workspace, "receivedps.py", step)
    assert workspace.receive(*AS_OF) == 0
    assert sorted(p.name for p in workspace.folder("share").iterdir()) == REPORTS
    assert [m["Subject"] for m in mailbox.messages] == \
        ["[DPS exchange] reports for FY2025Q3 are ready"]
    assert sorted(os.listdir(workspace.answer_dir)) == ["processed"]
    assert len(os.listdir(workspace.answer_dir / "processed")) == 2
    assert list((workspace.folder("outbox") / "reports" / "FY2025_Q3").iterdir()) == []
    # The mail goes out after the run's audit line: killed after it, the run had ended.
    ended = step == "mail"
    assert workspace.manifests("receive")[-1]["outcome"] == \
        ("nothing new" if ended else "reported")
    assert workspace.receive(*AS_OF) == 0
    assert workspace.manifests("receive")[-1]["outcome"] == "nothing new"
    assert len(mailbox.messages) == 1


# ---------------------------------------------------------------------------
# Security
# ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


@security
def test_no_auto_add_policy_anywhere():
    offenders = []
    for path in REPO.rglob("*.py"):
        if ".venv" in path.parts or path.name == Path(__file__).name:
            continue
        text = path.read_text(encoding="utf-8")
        if "AutoAddPolicy" in text or "WarningPolicy" in text:
            offenders.append(str(path))
    assert offenders == []


@security
def test_bandit_finds_no_medium_or_high_issue():
    bandit = Path(os.sys.executable).parent / "bandit"
    if not bandit.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("bandit is missing in CI")
        pytest.skip("bandit not installed in this environment")
    result = subprocess.run([str(bandit), "-q", "-ll", "-r", "util.py", "send2dps.py",
                             "receivedps.py", "demo"], cwd=REPO, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout


@security
def test_created_files_are_private_and_the_share_mode_is_configurable(workspace):
    workspace.configure(reports={"share_file_mode": "0644"})
    workspace.folder("logs").mkdir(mode=0o755)     # as a git checkout leaves logs/
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    for folder in ("outbox", "archive", "state", "logs", "staging"):
        assert workspace.folder(folder).stat().st_mode & 0o777 == 0o700, folder
        for path in workspace.folder(folder).rglob("*"):
            mode = path.stat().st_mode & 0o777
            assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    for path in workspace.folder("share").iterdir():
        assert path.stat().st_mode & 0o777 == 0o644


@security
def test_a_password_written_into_the_yaml_is_refused(workspace):
    workspace.configure(sftp={"key_passphrase": "hunter2"})
    result = workspace.cli("send2dps.py", *AS_OF)
    assert result.returncode == 2
    assert result.stderr == (
        f"send2dps.py: error: config {workspace.config_path}: sftp.key_passphrase: secrets must "
        f"not be written in the YAML; put the name of an environment variable in "
        f"sftp.key_passphrase_env instead\n")


# ---------------------------------------------------------------------------
# Where an interrupted run stands (exchange/recovery.py): each state and its next action
# ---------------------------------------------------------------------------


@crash
def test_killed_between_upload_and_archive_is_named_and_the_receive_says_to_send(
        workspace, smtp_server, capsys):
    """The upload reached DPS, the archive did not happen: --status names the state and the
    action; a receive refuses in one line and its alert says to rerun the send."""
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["ops@dfps.example"]})
    killed_after(workspace, "send2dps.py", "upload")
    assert workspace.send("--status") == 1
    status = capsys.readouterr().out
    assert "uploaded, archive pending" in status
    assert "latest send: UPLOADED, ARCHIVE PENDING: the file reached DPS but was not archived" \
        in status
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 1
    assert "reached DPS but its files were never archived" in capsys.readouterr().err
    alert = mailbox.messages[-1].get_content()
    assert "To rerun once the cause is fixed:" in alert and "run_send.sh" in alert \
        and "run_receive.sh" not in alert


@crash
def test_the_next_send_archives_a_killed_upload_even_when_impact_changed(workspace):
    """Killed between upload and archive, then IMPACT changes: the next send archives the
    uploaded files under the killed run's id first, then sends the new data."""
    killed_after(workspace, "send2dps.py", "upload")
    killed = workspace.manifests("send")[-1]
    with sqlite3.connect(workspace.db_path) as db:
        db.execute("UPDATE person SET last_name = 'Changed' WHERE person_id = 1001")
    workspace.configure(sanity={"max_change_pct": 100})
    assert workspace.send(*AS_OF, "--force") == 0
    archived = next(m for m in workspace.manifests("send") if m["run_id"] == killed["run_id"])
    assert len(archived["archived"]) == 4
    assert archived["steps"]["archive"] == {"status": "done", "completed_by_later_run": True}
    text = next(Path(p) for p in archived["archived"] if p.endswith("End_txt_file.txt"))
    assert hashlib.sha256(text.read_bytes()).hexdigest() == killed["sha256"]
    assert workspace.manifests("send")[-1]["sha256"] != killed["sha256"]


@crash
def test_recovery_states_and_their_next_actions():
    """One case per row of the table in exchange/recovery.py."""
    from exchange.records import SendRecord
    from exchange.recovery import state_of

    dead = 2 ** 22 + 12345      # no such process
    cases = {
        "running": {"outcome": "running", "pid": os.getpid()},
        "crashed": {"outcome": "running", "pid": dead, "steps": {"query": {"status": "done"}}},
        "upload interrupted": {"outcome": "running", "pid": dead,
                               "steps": {"upload": {"status": "started"}}},
        "uploaded, archive pending": {"outcome": "uploaded", "pid": dead,
                                      "steps": {"upload": {"status": "done"}}},
        "waiting for DPS": {"outcome": "not ready", "exit_code": 3},
        "refused: previous send unanswered": {"outcome": "refused: previous send unanswered",
                                              "exit_code": 1, "error": "x"},
        "failed": {"outcome": "failed", "exit_code": 1, "error": "x"},
        "ok": {"outcome": "uploaded", "exit_code": 0, "archived": ["a"],
               "steps": {"archive": {"status": "done"}}},
    }
    runs = {name: SendRecord.of({"step": "send", **run}) for name, run in cases.items()}
    assert {name: state_of(run).name for name, run in runs.items()} == \
        {name: name for name in cases}
    assert [name for name, run in runs.items() if state_of(run).healthy] == \
        ["running", "waiting for DPS", "refused: previous send unanswered", "ok"]
