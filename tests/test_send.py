"""The send step end to end, against a real sshd and a real SQLite file
(docs/data-contract.md §1-§3)."""

import fcntl
import re
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

import util
from exchange.errors import ConfigError, TransferError
from tests.scenario import DOBS, NAMES, scenario_answer

AS_OF = ("--as-of", "2025-06-20")

security = pytest.mark.reliability("security")
EXPECTED_FILE = (
    b"PID|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|DOB|SEX|RACE\r\n"
    b"1001|PENA|ZOE|||20090401|F|W\r\n"
    b"1002|O'BRIEN|SEAN|PATRICK|JR|20080115|M|W\r\n"
    b"1004|NGUYEN|THI LAN|||20100720|F|A\r\n"
    b"1005|SMITH-JONES|AMELIA|ROSE||20090909|F|B\r\n"
    b"1006|WASHINGTON|TYRONE||III|20081212|M|B\r\n"
    b"1007|QUINONEZ|DULCE|MARIA||20080303|F|W\r\n")


def test_send_uploads_the_file_byte_for_byte(workspace):
    assert workspace.send(*AS_OF) == 0
    assert list((workspace.folder("outbox") / "send").iterdir()) == []   # issue 20: no copy
    archived = Path(workspace.manifests("send")[-1]["archived"][0])
    assert archived.name.endswith("_End_txt_file.txt")
    assert archived.read_bytes() == EXPECTED_FILE
    assert (workspace.upload_dir / "End_txt_file.txt").read_bytes() == EXPECTED_FILE
    assert sorted(p.name for p in workspace.upload_dir.iterdir()) == ["End_txt_file.txt"]
    [manifest] = workspace.manifests("send")
    assert manifest["outcome"] == "uploaded"
    assert (manifest["period"], manifest["rows_sent"], manifest["rows_excluded"]) == \
        ("FY2025Q3", 6, 1)
    assert manifest["sha256"] == util.sha256_bytes(EXPECTED_FILE)
    assert manifest["remote_size"] == len(EXPECTED_FILE)
    assert manifest["remote_path"] == f"{workspace.remote_prefix}/FROM_DFPS/End_txt_file.txt"
    assert manifest["remote_mtime"] == int((workspace.upload_dir / "End_txt_file.txt")
                                           .stat().st_mtime)
    assert set(manifest["steps"]) == {"query", "wrangle", "text_file", "workbook", "upload",
                                      "archive"}
    assert all(step["status"] == "done" for step in manifest["steps"].values())


def test_send_archives_both_files_private(workspace):
    assert workspace.send(*AS_OF) == 0
    [manifest] = workspace.manifests("send")
    folder = workspace.folder("archive") / "send" / "FY2025_Q3"
    names = sorted(p.name for p in folder.iterdir())
    run_id = manifest["run_id"]
    assert names == [f"{run_id}_End_txt_file.txt", f"{run_id}_end_export.xlsx",
                     f"{run_id}_excluded_index.csv", f"{run_id}_sent_index.csv"]
    assert (folder / f"{run_id}_excluded_index.csv").read_text() == \
        "PID,REASONS,DISCHARGE_DATE\n1003,no usable DOB,\n"   # §10.5: open removal, blank
    assert (folder / f"{run_id}_sent_index.csv").read_text() == (
        "PID,COUNTY_CODE,DISCHARGE_DATE\n1001,101,\n1002,227,\n1004,71,\n1005,161,\n"
        "1006,101,\n1007,101,\n")
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert (folder / f"{run_id}_End_txt_file.txt").read_bytes() == EXPECTED_FILE


def test_identical_file_is_not_uploaded_again(workspace):
    assert workspace.send(*AS_OF) == 0
    remote = workspace.upload_dir / "End_txt_file.txt"
    first_mtime = remote.stat().st_mtime_ns
    workspace.put_answer(*scenario_answer())        # answered: no exchange in flight
    assert workspace.receive(*AS_OF) == 0
    time.sleep(0.05)
    assert workspace.send(*AS_OF) == 0
    first, second = workspace.manifests("send")
    assert second["outcome"] == "skipped as identical"
    assert second["same_as_run"] == first["run_id"]
    assert second["where"] == first["where"]        # --status: the file on the server
    assert remote.stat().st_mtime_ns == first_mtime


def add_child(db_path, pid):
    with sqlite3.connect(db_path) as connection:
        connection.execute("INSERT INTO person VALUES (?, 'New', 'Kid', NULL, NULL, "
                           "'2010-01-01', 'M', 'Anglo')", (pid,))
        connection.execute("INSERT INTO removal VALUES (?, ?, '2025-01-01', NULL, 101)",
                           (pid, pid))


def test_no_second_upload_while_the_first_is_unanswered(workspace):
    workspace.configure(receive={"max_wait_hours": 1})   # in flight for this whole test
    assert workspace.send(*AS_OF) == 0
    add_child(workspace.db_path, 2001)
    assert workspace.send(*AS_OF) == 1
    refused = workspace.manifests("send")[-1]
    assert refused["outcome"] == "refused: previous send unanswered"
    assert "is still unanswered; one exchange at a time (use --force" in refused["error"]
    assert (workspace.upload_dir / "End_txt_file.txt").read_bytes() == EXPECTED_FILE
    assert workspace.send(*AS_OF, "--force") == 0
    assert workspace.manifests("send")[-1]["outcome"] == "uploaded"
    assert b"2001|NEW|KID" in (workspace.upload_dir / "End_txt_file.txt").read_bytes()


def files_with_times(*folders):
    """Every file under the folders: path -> (bytes, modification time in ns)."""
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for folder in folders
            for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_refused_send_queries_nothing_and_changes_no_file(workspace):
    """Issue 21 §3.3: a send while the last upload is unanswered is refused before it queries
    IMPACT (the database here is no database: a query would fail with another line). The dry
    run's files in the outbox, the last send's archived files and the file on the server stay
    byte for byte, with their times; the run record says what it waited for."""
    workspace.configure(receive={"max_wait_hours": 1})
    assert workspace.send(*AS_OF) == 0
    assert workspace.send(*AS_OF, "--dry-run") == 0
    uploaded = workspace.manifests("send")[0]
    kept = [workspace.folder("outbox"), workspace.folder("archive"), workspace.upload_dir]
    before = files_with_times(*kept)
    assert len(before) == 4 + 4 + 1     # the dry run's files, the upload's archive, the upload
    workspace.db_path.write_bytes(b"not a database\n" * 100)
    result = workspace.cli("send2dps.py", *AS_OF)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"send2dps.py: error: upload {uploaded['run_id']} (FY2025Q3) at "
        f"{uploaded['uploaded_at']} is still unanswered; one exchange at a time (use --force "
        f"to send anyway)")
    assert files_with_times(*kept) == before
    refused = workspace.manifests("send")[-1]
    assert (refused["outcome"], refused["exit_code"], refused["unanswered_upload"],
            refused["steps"], refused["where"]) == (
        "refused: previous send unanswered", 1, uploaded["run_id"], {}, "nothing written")
    log = (workspace.folder("logs") / f"send_{refused['run_id']}.log").read_text()
    assert "send_children" not in log and "removed" not in log


def test_the_rerun_of_a_send_killed_after_its_upload_finishes_it_or_is_refused(workspace):
    """The rerun an alert asks for after a send that uploaded but did not finish is not
    refused before its query: the same file is "skipped as identical" (its archive
    completed); with IMPACT changed in between, the other file is refused, after the query,
    and nothing more goes up."""
    import os

    from exchange.records import FAULT_KILL_AFTER_ENV

    workspace.configure(receive={"max_wait_hours": 1})
    env = dict(os.environ, **{FAULT_KILL_AFTER_ENV: "upload"})
    assert workspace.cli("send2dps.py", *AS_OF, env=env).returncode == -9
    killed = workspace.manifests("send")[0]
    add_child(workspace.db_path, 2001)
    assert workspace.send(*AS_OF) == 1
    refused = workspace.manifests("send")[-1]
    assert (refused["outcome"], refused["unanswered_upload"]) == \
        ("refused: previous send unanswered", killed["run_id"])
    assert "query" in refused["steps"]
    assert len(workspace.manifests("send")[0]["archived"]) == 4     # archived first
    assert (workspace.upload_dir / "End_txt_file.txt").read_bytes() == EXPECTED_FILE
    with sqlite3.connect(workspace.db_path) as db:
        db.execute("DELETE FROM removal WHERE person_id = 2001")
    assert workspace.send(*AS_OF) == 0
    assert workspace.manifests("send")[-1]["outcome"] == "skipped as identical"


def test_status_after_the_answer_does_not_show_a_refused_send_as_failed(workspace, capsys):
    """Issue 21 §3.3: the refused send has its own outcome; --status names the upload it
    waited for, and once that upload's answer is processed says the next send uploads (exit 0
    before and after: the exchange in flight is the receive's to watch)."""
    workspace.configure(receive={"max_wait_hours": 1})
    assert workspace.send(*AS_OF) == 0
    assert workspace.send(*AS_OF) == 1
    upload, refused = workspace.manifests("send")
    capsys.readouterr()
    assert workspace.send("--status") == 0
    assert capsys.readouterr().out.splitlines()[-2:] == [
        f"latest send: refused: previous send unanswered (exit 1); upload {upload['run_id']} "
        f"is still unanswered: the receive processes DPS's answer to that upload; then send "
        f"again (--force sends at once)",
        "latest receive: none recorded"]
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    capsys.readouterr()
    assert workspace.send("--status") == 0
    out = capsys.readouterr().out
    assert re.search(rf"\n  send     {refused['run_id']} +FY2025Q3 .* refused: previous send "
                     rf"unanswered +1  -; nothing written\n", out)
    assert out.splitlines()[-2:] == [
        f"latest send: refused: previous send unanswered (exit 1); upload {upload['run_id']} "
        f"has been answered since: the next send uploads",
        "latest receive: ok (exit 0)"]
    assert workspace.send(*AS_OF) == 0           # and it does: identical, so not re-sent
    capsys.readouterr()
    assert workspace.send("--status") == 0
    assert capsys.readouterr().out.splitlines()[-2] == "latest send: ok (exit 0)"


def test_dry_run_writes_files_and_connects_nowhere(scenario):
    assert scenario.send(*AS_OF, "--dry-run") == 0   # its SFTP port has no server: not needed
    assert (scenario.folder("outbox") / "send" / "End_txt_file.txt").read_bytes() == \
        EXPECTED_FILE
    assert (scenario.folder("outbox") / "send" / "end_export.xlsx").is_file()
    assert scenario.manifests("send")[-1]["outcome"] == "dry run"
    assert not (scenario.folder("archive") / "send").exists()


def test_the_sent_sheet_carries_the_discharge_date_of_the_chosen_removal(scenario):
    # §10.5: end_export.xlsx's Sent sheet shows DISCHARGE_DATE (blank while the removal is
    # open). In FY2025Q2 child 1008 was still in care until 2025-01-31; child 1001's older
    # removal ended in 2020, but the chosen one (the latest) is open.
    import datetime as dt

    import openpyxl

    assert scenario.send(*AS_OF, "--period", "FY2025Q2", "--dry-run") == 0
    workbook = openpyxl.load_workbook(scenario.folder("outbox") / "send" / "end_export.xlsx")
    header, *rows = workbook["Sent"].iter_rows(values_only=True)
    assert header[-3:] == ("COUNTY_CODE", "REMOVAL_DATE", "DISCHARGE_DATE")
    shown = {row[0]: row[-1] for row in rows}
    assert (shown[1001], shown[1008]) == (None, dt.datetime(2025, 1, 31))


def test_sanity_limit_stops_the_upload_unless_forced(workspace):
    workspace.configure(sanity={"min_rows": 10})
    assert workspace.send(*AS_OF) == 1
    assert "End_txt_file.txt: 6 rows, fewer than sanity.min_rows=10; nothing uploaded" in \
        workspace.manifests("send")[-1]["error"]
    assert not workspace.upload_dir.exists()
    assert workspace.send(*AS_OF, "--force") == 0
    assert (workspace.upload_dir / "End_txt_file.txt").read_bytes() == EXPECTED_FILE


@security
def test_unknown_host_key_is_refused(workspace):
    empty = workspace.root / "empty_known_hosts"
    empty.write_text("")
    workspace.configure(sftp={"known_hosts_file": str(empty)})
    result = workspace.cli("send2dps.py", *AS_OF)
    assert result.returncode == 1
    assert f"host key is unknown (not in {empty}); refusing to connect" in \
        result.stderr.splitlines()[-1]
    assert not workspace.upload_dir.exists()


@security
def test_changed_host_key_is_refused(workspace, tmp_path):
    from demo.local_sftp import ensure_keys, public_key_line

    other_host_key, _ = ensure_keys(tmp_path / "other_keys")
    wrong = workspace.root / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{workspace.server.port} {public_key_line(other_host_key)}\n")
    workspace.configure(sftp={"known_hosts_file": str(wrong)})
    assert workspace.send(*AS_OF) == 1
    assert workspace.manifests("send")[-1]["error"] == (
        f"sftp 127.0.0.1:{workspace.server.port}: host key does not match the one pinned in "
        f"{wrong}; refusing to connect")
    assert not workspace.upload_dir.exists()


@security
def test_refused_client_key_is_one_line(workspace, tmp_path):
    from demo.local_sftp import ensure_keys

    _, stranger_key = ensure_keys(tmp_path / "stranger")
    workspace.configure(sftp={"key_file": str(stranger_key)})
    assert workspace.send(*AS_OF) == 1
    assert workspace.manifests("send")[-1]["error"] == (
        f"sftp 127.0.0.1:{workspace.server.port}: the server refused the key {stranger_key}")


def test_unreachable_host_is_retried_then_fails(workspace):
    workspace.configure(sftp={"port": 1, "retries": 2, "retry_backoff_seconds": 0.01})
    assert workspace.send(*AS_OF) == 1
    error = workspace.manifests("send")[-1]["error"]
    assert error == ("sftp 127.0.0.1:1: cannot connect after 3 attempt(s): nothing answers "
                     "there (connection refused; is the server up, the port right?)")
    assert workspace.log_text().count("connection fault") == 2


def test_interrupted_upload_leaves_nothing_under_the_final_name(workspace, tmp_path):
    """Kill the server's connection processes while a large file is being uploaded."""
    big = tmp_path / "End_txt_file.txt"
    big.write_bytes(b"x" * (200 * 1024 * 1024))
    config = util.load_config(workspace.config_path)
    failures = []

    def upload():
        try:
            with util.connect_sftp(config.sftp) as session:
                session.upload(big, config.sftp.upload_folder, big.name)
        except TransferError as exc:
            failures.append(str(exc))

    worker = threading.Thread(target=upload)
    worker.start()
    part = workspace.upload_dir / "End_txt_file.txt.part"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (part.exists() and part.stat().st_size > 1 << 20):
        time.sleep(0.01)
    before = set(workspace.server.connection_pids())
    assert before, "no connection process to kill"
    for pid in before:
        try:
            import os
            import signal
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    worker.join(60)
    assert failures and "upload of End_txt_file.txt" in failures[0]
    assert not (workspace.upload_dir / "End_txt_file.txt").exists()


def test_config_error_names_the_key_in_one_line(scenario):
    scenario.configure(sftp={"port": "twenty-two"})
    result = scenario.cli("send2dps.py", *AS_OF)
    assert result.returncode == 2
    assert result.stderr == (f"send2dps.py: error: config {scenario.config_path}: sftp.port: "
                             f"expected int, got str\n")


@pytest.mark.parametrize("section, values, message", [
    ("sftp", {"colour": "blue"}, "unknown key 'sftp.colour'"),
    ("sftp", {"key_file": "/nonexistent/key"}, "sftp.key_file: file not found: /nonexistent/key"),
    ("mail", {"password": "hunter2"}, "mail.password: secrets must not be written in the YAML; "
                                      "put the name of an environment variable in "
                                      "mail.password_env instead"),
    ("matching", {"match_window_days": "3 days"}, "matching.match_window_days: expected int"),
])
def test_config_errors(scenario, section, values, message):
    scenario.configure(**{section: values})
    with pytest.raises(ConfigError) as caught:
        util.load_config(scenario.config_path)
    assert message in str(caught.value)
    assert str(scenario.config_path) in str(caught.value)


def test_environment_variables_fill_config_values(scenario, monkeypatch):
    scenario.configure(sftp={"username": "${TEST_SFTP_USER}", "host": "${NO_SUCH_VAR:-127.0.0.1}"})
    monkeypatch.setenv("TEST_SFTP_USER", "alice")
    config = util.load_config(scenario.config_path)
    assert (config.sftp.username, config.sftp.host) == ("alice", "127.0.0.1")
    monkeypatch.delenv("TEST_SFTP_USER")
    with pytest.raises(ConfigError, match="sftp.username: environment variable "
                                               "TEST_SFTP_USER is not set"):
        util.load_config(scenario.config_path)


def test_future_period_is_a_usage_error(scenario):
    result = scenario.cli("send2dps.py", "--period", "FY2026Q1", *AS_OF)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        "period FY2026Q1 starts 2025-09-01, after the run date 2025-06-20: it has not "
        "started yet")


def test_missing_database_file_is_one_line(scenario):
    scenario.configure(database={"url": f"sqlite:///{scenario.root}/nope.sqlite"})
    assert scenario.send(*AS_OF) == 1
    assert scenario.manifests("send")[-1]["error"] == \
        f"database {scenario.root}/nope.sqlite: file not found"


def test_second_run_while_one_holds_the_lock_exits_75(workspace):
    lock_path = workspace.folder("state") / "send.lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        result = workspace.cli("send2dps.py", *AS_OF)
    assert result.returncode == 75
    assert result.stderr.splitlines()[-1].endswith(f"another send run holds {lock_path}; "
                                                   f"not starting")


@security
def test_log_and_manifest_carry_no_names_or_dates_of_birth(workspace):
    assert workspace.send(*AS_OF, "-v") == 0
    text = workspace.log_text() + "".join(
        p.read_text() for p in (workspace.folder("state") / "manifests").rglob("*.json"))
    found = [value for value in NAMES + DOBS if value in text]
    assert found == []


def test_relative_paths_resolve_against_the_config_folder(workspace, tmp_path, monkeypatch):
    workspace.configure(database={"url": "sqlite:///impact.sqlite"},
                        folders={"outbox": "out"})
    monkeypatch.chdir("/")
    config = util.load_config(workspace.config_path)
    assert config.database.url == f"sqlite:///{workspace.root}/impact.sqlite"
    assert config.folders.outbox == workspace.root / "out"
    assert workspace.send(*AS_OF, "--dry-run") == 0
    assert (workspace.root / "out" / "send" / "End_txt_file.txt").read_bytes() == EXPECTED_FILE
