"""Issue 6: what cron, an analyst and ops get: status, health pings, logs, alerts, help."""

import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import receivedps
import send2dps
import util
from exchange import __version__
from exchange.harness import safe_traceback
from exchange.records import FAULT_KILL_AFTER_ENV
from exchange.reports import REPORTS
from tests.scenario import DOBS, NAMES, scenario_answer

REPO = Path(__file__).resolve().parent.parent
AS_OF = ("--as-of", "2025-06-20")
# The scenario's rows per report, as --status and the log count them (a report added to the
# registry is on the same line, in the registry's order, with its run record's count).
SCENARIO_COUNTS = {"impact": "3 IMPACT not in DPS", "dps": "2 DPS not in IMPACT",
                   "totals": "5 DPS events", "returned": "1 returned still active"}


def test_status_after_a_full_exchange(workspace, capsys):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    capsys.readouterr()
    assert workspace.send("--status") == 0
    out = capsys.readouterr().out
    send_run, receive_run = workspace.manifests("send")[0], workspace.manifests("receive")[0]
    assert re.search(r"outcome +exit  counts; where", out)   # the columns are labelled
    assert re.search(rf"  send     {send_run['run_id']} +FY2025Q3 .* uploaded +0  6 sent, "
                     rf"1 excluded; {workspace.remote_prefix}/FROM_DFPS/End_txt_file.txt", out)
    counts = {spec.key: f"{receive_run[spec.record_field]} {spec.status_label}"
              for spec in REPORTS}
    assert {key: counts[key] for key in SCENARIO_COUNTS} == SCENARIO_COUNTS
    assert re.search(rf"  receive  {receive_run['run_id']} +FY2025Q3 .* reported +0  "
                     rf"{re.escape(', '.join(counts.values()))}; "
                     rf"{workspace.folder('share')}", out)
    assert (f"FY2025Q3: sent (upload {send_run['run_id']}, 6 rows, "
            f"{send_run['uploaded_at'][:16]}), answered, reported ({len(REPORTS)} files), "
            f"delivered ({len(REPORTS)} to the share), not mailed (mail off)") in out
    assert out.rstrip().endswith("latest send: ok (exit 0)\nlatest receive: ok (exit 0)")


def test_status_follows_the_real_exchange_not_a_later_dry_run(workspace, capsys):
    """A dry run of another quarter after a real exchange: "where the period stands" is still
    the real exchange's quarter (dry runs never count as the latest run)."""
    assert workspace.send(*AS_OF) == 0
    assert workspace.send("--as-of", "2025-09-20", "--dry-run") == 0    # FY2025Q4, dry
    capsys.readouterr()
    assert workspace.send("--status") == 0
    out = capsys.readouterr().out
    assert re.search(r"\nFY2025Q3: sent \(upload ", out)
    assert "\nFY2025Q4:" not in out


def test_status_counts_a_late_dps_as_waiting_not_failing(workspace, capsys):
    assert workspace.send(*AS_OF) == 0
    assert workspace.receive(*AS_OF, "--no-wait") == 3
    capsys.readouterr()
    assert workspace.receive("--status", "--period", "FY2025Q3") == 0
    out = capsys.readouterr().out
    assert "FY2025Q3: sent (upload" in out and "not answered yet (not ready)" in out
    assert "latest receive: waiting for DPS's answer (exit 3, not yet there)" in out


def test_status_exit_code_says_the_maximum_wait_passed(workspace, capsys):
    workspace.configure(receive={"max_wait_hours": 0.0002, "poll_seconds": 0.2})
    assert workspace.send(*AS_OF) == 0
    assert workspace.receive(*AS_OF) == 3
    capsys.readouterr()
    assert workspace.receive("--status") == 1
    out = capsys.readouterr().out
    assert "wait expired" in out
    assert "latest receive: FAILED (exit 3): DPS answer not complete after 0.0002 h" in out


def test_status_needs_no_secrets_or_key_files(workspace, capsys):
    assert workspace.send(*AS_OF) == 0
    workspace.configure(database={"url": "oracle+oracledb://${NO_SUCH_USER}@db:1/?service_name=X",
                                  "password_env": "NO_SUCH_PASSWORD"},
                        sftp={"key_file": "${NO_SUCH_KEY}"})
    capsys.readouterr()
    assert workspace.send("--status") == 0
    assert "latest send: ok (exit 0)" in capsys.readouterr().out


def test_status_shows_a_crashed_run(workspace, capsys):
    env = dict(os.environ, **{FAULT_KILL_AFTER_ENV: "wrangle"})
    assert workspace.cli("send2dps.py", *AS_OF, env=env).returncode == -9
    assert workspace.send("--status") == 1
    out = capsys.readouterr().out
    assert "crashed (rerun it)" in out
    assert "latest send: CRASHED: it stopped without recording an outcome; rerun it" in out


def test_status_with_a_bad_period_is_one_line(scenario):
    result = scenario.cli("receivedps.py", "--status", "--period", "Q3")
    assert (result.returncode, result.stderr) == (
        2, "receivedps.py: error: --period 'Q3': expected a fiscal quarter like FY2025Q3\n")


class PingServer:
    def __init__(self) -> None:
        self.paths: list[str] = []
        handler = self._handler()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ping/abc"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                outer.paths.append(self.path.split("?")[0])
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        return Handler


@pytest.fixture
def pings():
    server = PingServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_health_pings_on_start_success_and_failure(workspace, pings):
    workspace.configure(health={"url": pings.url})
    assert workspace.send(*AS_OF) == 0
    assert pings.paths == ["/ping/abc/start", "/ping/abc"]
    assert workspace.receive(*AS_OF, "--no-wait") == 3
    assert pings.paths[2:] == ["/ping/abc/start", "/ping/abc/fail"]


def test_a_health_url_that_hangs_never_fails_the_run(workspace):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as hang:      # accepts, never answers
        workspace.configure(health={"url": f"http://127.0.0.1:{hang.getsockname()[1]}/x",
                                    "timeout_seconds": 0.5})
        started = time.monotonic()
        assert workspace.send(*AS_OF) == 0
        assert time.monotonic() - started < 10
    assert "health ping start failed" in workspace.log_text()


def test_log_lines_carry_run_id_step_and_elapsed_time(workspace):
    assert workspace.send(*AS_OF) == 0
    run_id = workspace.manifests("send")[0]["run_id"]
    [log_file] = workspace.folder("logs").glob("*.log")
    assert log_file.name == f"send_{run_id}.log"
    for line in log_file.read_text().splitlines():
        if line.startswith("20"):
            assert re.match(rf"^\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d,\d{{3}} {run_id} send "
                            rf"\+\d+\.\ds (DEBUG|INFO|WARNING|ERROR) ", line), line


def test_one_json_audit_line_per_run(workspace):
    assert workspace.send(*AS_OF) == 0
    assert workspace.receive(*AS_OF, "--no-wait") == 3
    lines = (workspace.folder("logs") / "audit.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["step"], r["outcome"], r["exit_code"]) for r in records] == [
        ("send", "uploaded", 0), ("receive", "not ready", 3)]
    assert records[0]["sha256"] == workspace.manifests("send")[0]["sha256"]
    assert [v for v in NAMES + DOBS if v in "".join(lines)] == []


def test_retention_removes_old_logs_and_staging_but_never_archives(workspace):
    workspace.configure(logs={"retention_days": 30})
    assert workspace.send(*AS_OF) == 0
    old = time.time() - 40 * 86400
    old_log = workspace.folder("logs") / "send_20240101T000000Z-send-aaaa.log"
    old_log.write_text("old")
    leftover = workspace.folder("staging") / "20240101T000000Z-receive-bbbb"
    leftover.mkdir(parents=True)
    (leftover / "Dfps-missing-person-results.txt.part").write_text("x")
    archived = Path(workspace.manifests("send")[0]["archived"][0])
    for path in (old_log, leftover, archived):
        os.utime(path, (old, old))
    assert workspace.send(*AS_OF, "--dry-run") == 0     # any run: the upload is unanswered
    assert not old_log.exists() and not leftover.exists()
    assert archived.exists()
    assert "retention: removed 2 log file(s) and staging leftover(s) older than 30 days" in \
        workspace.log_text()


def test_send_failure_alert_says_what_failed_what_was_kept_and_how_to_rerun(workspace,
                                                                            smtp_server):
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["ops@dfps.example"]},
                        sanity={"min_rows": 100})
    assert workspace.send(*AS_OF) == 1
    [alert] = mailbox.messages
    assert alert["Subject"] == "[DPS exchange] send FAILED FY2025Q3"
    body = mailbox.bodies()[0]
    assert "Reason: End_txt_file.txt: 6 rows, fewer than sanity.min_rows=100" in body
    assert (f"Kept: nothing was uploaded; no copy of the files is kept in "
            f"{workspace.folder('outbox') / 'send'} (the rerun builds them again; --dry-run "
            f"writes them to look at)") in body
    assert (f"To rerun once the cause is fixed: {REPO}/run_send.sh --config "
            f"{workspace.config_path} --period FY2025Q3 --as-of 2025-06-20\r\n") in body
    assert [v for v in NAMES + DOBS if v in body] == []


def test_a_send_refused_while_an_upload_is_unanswered_alerts_as_refused(workspace,
                                                                       smtp_server):
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["ops@dfps.example"]})
    assert workspace.send(*AS_OF) == 0
    assert workspace.send(*AS_OF) == 1
    upload = workspace.manifests("send")[0]["run_id"]
    alert = mailbox.messages[-1]
    assert alert["Subject"] == "[DPS exchange] send REFUSED FY2025Q3"
    body = mailbox.bodies()[-1]
    assert "The DPS exchange send step REFUSED (send2dps.py)." in body
    assert (f"Kept: nothing was uploaded; upload {upload} is the one DPS has yet to answer; "
            f"earlier uploads stay in {workspace.folder('archive') / 'send'}") in body


def test_the_alert_s_rerun_command_keeps_force_and_as_of(workspace, smtp_server):
    """Issue 21 §3.7: the command in the alert is the one that failed, flags and all."""
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["ops@dfps.example"]},
                        sftp={"port": 1, "retries": 0})
    assert workspace.send(*AS_OF, "--force") == 1
    body = mailbox.bodies()[0]
    assert (f"To rerun once the cause is fixed: {REPO}/run_send.sh --config "
            f"{workspace.config_path} --period FY2025Q3 --as-of 2025-06-20 --force\r\n") in body


@pytest.mark.parametrize("script", ["send2dps.py", "receivedps.py"])
def test_version(script):
    result = subprocess.run([sys.executable, str(REPO / script), "--version"],
                            capture_output=True, text=True, check=True)
    assert result.stdout == f"{script} {__version__}\n"


@pytest.mark.parametrize("parser", [send2dps.build_parser(), receivedps.build_parser()])
def test_every_flag_in_help_is_documented_in_the_readme(parser):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    flags = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", parser.format_help())))
    assert "--period" in flags
    assert [flag for flag in flags if f"`{flag}" not in readme] == []


@pytest.mark.reliability("security")
def test_tracebacks_in_the_log_withhold_other_libraries_messages():
    try:
        try:
            int("PEÑA 20090401")
        except ValueError as cause:
            raise util.InputError("End_txt_file.txt: a value cannot be written (row 3)") from cause
    except util.InputError as exc:
        text = safe_traceback(exc)
    assert "PEÑA" not in text and "20090401" not in text
    assert "exchange.errors.InputError: End_txt_file.txt: a value cannot be written (row 3)" in text
    assert "builtins.ValueError: (message withheld: it may quote data)" in text
    assert 'test_operations.py", line' in text
