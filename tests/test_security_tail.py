"""Issue 20, item 4: the chain's tail. The head a run pings out, puts in its failure alert and
in its summary mail is the hash of the run's OWN audit line (the summary mail goes out after
that line; when it fails, a "mail failed" line follows), so `--verify-audit --expect-head HASH`
proves nothing was cut after it; a forged line appended with a recomputed hash, but without a
run record, is a finding."""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import urllib.parse

import pytest

from tests.scenario import scenario_answer

security = pytest.mark.reliability("security")
AS_OF = ("--as-of", "2025-06-20")


class PingServer:
    """A health-check stand-in that keeps every query's audit= value."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                path, _, query = self.path.partition("?")
                outer.calls.append((path, urllib.parse.parse_qs(query)["audit"][0]))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/ping"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def pings():
    server = PingServer()
    yield server
    server.server.shutdown()
    server.server.server_close()


class RefusingMailbox:
    """A mail server that takes the connection and the envelope, then refuses every mail."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        return "554 5.0.0 refused by the test"


@pytest.fixture
def refusing_smtp_server():
    from aiosmtpd.controller import Controller

    from demo.local_sftp import find_free_port

    port = find_free_port()
    controller = Controller(RefusingMailbox(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port
    controller.stop()


def mail_to(space, port: int) -> None:
    space.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                          "recipients": ["analyst@dfps.example"]})


def mailed_heads(mailbox) -> list[str]:
    """The audit chain head in each body (plain text and HTML) of every mail received."""
    return [head for body in mailbox.bodies()
            for head in re.findall(r"Audit chain head: ([0-9a-f]{64})\.", body)]


def audit_lines(space) -> list[dict]:
    return [json.loads(line) for line in
            (space.folder("logs") / "audit.jsonl").read_text().splitlines()]


def line_hashes(space) -> list[str]:
    data = (space.folder("logs") / "audit.jsonl").read_bytes()
    return [hashlib.sha256(line).hexdigest() for line in data.splitlines()]


def verify(space, capsys, *args) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = space.send("--verify-audit", *args)
    return code, capsys.readouterr().out.splitlines()


@security
def test_the_final_ping_carries_the_hash_of_the_runs_own_line(workspace, pings):
    workspace.configure(health={"url": pings.url})
    assert workspace.send(*AS_OF) == 0
    assert workspace.receive(*AS_OF, "--no-wait") == 3
    hashes = line_hashes(workspace)
    assert [path for path, _ in pings.calls] == ["/ping/start", "/ping", "/ping/start",
                                                 "/ping/fail"]
    assert [head for path, head in pings.calls if path != "/ping/start"] == hashes
    assert workspace.manifests("receive")[-1]["audit_sha256"] == hashes[-1]


@security
def test_the_failure_alert_carries_the_hash_of_the_runs_own_line(workspace, smtp_server):
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["ops@dfps.example"]}, sanity={"min_rows": 100})
    assert workspace.send(*AS_OF) == 1
    assert f"Audit chain head (this run's line): {line_hashes(workspace)[-1]}" in \
        mailbox.bodies()[0]


@security
def test_expect_head_finds_lines_cut_after_a_mailed_or_pinged_head(workspace, capsys):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    head = line_hashes(workspace)[-1]
    code, out = verify(workspace, capsys, "--expect-head", head)
    assert code == 0
    assert f"expected head {head[:16]}: line 2 of 2, nothing after it" in out
    audit = workspace.folder("logs") / "audit.jsonl"
    audit.write_text(audit.read_text().splitlines(keepends=True)[0])   # cut the last line
    record = sorted((workspace.folder("state") / "manifests" / "receive").glob("*.json"))[-1]
    record.unlink()                                                      # and its record
    code, out = verify(workspace, capsys, "--expect-head", head)
    assert code == 1
    assert (f"  expected head {head}: no line of the audit trail has this hash (lines were cut "
            f"or rewritten after it)") in out


@security
def test_a_forged_line_appended_with_a_recomputed_hash_is_found(workspace, capsys):
    assert workspace.send(*AS_OF) == 0
    audit = workspace.folder("logs") / "audit.jsonl"
    last = audit.read_bytes().splitlines()[-1]
    forged = {"step": "send", "run_id": "20261203T000000Z-send-f0f0", "outcome": "uploaded",
              "prev_sha256": hashlib.sha256(last).hexdigest()}
    with audit.open("a") as handle:
        handle.write(json.dumps(forged, sort_keys=True, separators=(",", ":")) + "\n")
    code, out = verify(workspace, capsys)
    assert code == 1
    assert ("  run 20261203T000000Z-send-f0f0: its audit line (line 2) has no run record "
            "(forged, or the record was deleted)") in out


@security
def test_the_summary_mail_carries_the_hash_of_the_runs_own_line(workspace, smtp_server,
                                                                capsys):
    port, mailbox = smtp_server
    mail_to(workspace, port)
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF) == 0
    record = workspace.manifests("receive")[-1]
    hashes = line_hashes(workspace)
    [send_line, receive_line] = audit_lines(workspace)
    assert receive_line["run_id"] == record["run_id"]
    assert (receive_line["outcome"], receive_line["exit_code"]) == ("reported", 0)
    assert [m["Subject"] for m in mailbox.messages] == \
        ["[DPS exchange] reports for FY2025Q3 are ready"]
    assert mailed_heads(mailbox) == [hashes[1], hashes[1]]        # plain text and HTML
    assert record["audit_sha256"] == hashes[1]
    assert (record["mailed"], record["pending_mail"]) == (True, None)
    head = mailed_heads(mailbox)[0]
    code, out = verify(workspace, capsys, "--expect-head", head)
    assert (code, out[-1]) == (0, "OK: nothing wrong found")
    assert f"expected head {head[:16]}: line 2 of 2, nothing after it" in out
    audit = workspace.folder("logs") / "audit.jsonl"
    audit.write_text(audit.read_text().splitlines(keepends=True)[0])   # cut the run's line
    (workspace.folder("state") / "manifests" / "receive" / f"{record['run_id']}.json").unlink()
    code, out = verify(workspace, capsys, "--expect-head", head)
    assert code == 1
    assert (f"  expected head {head}: no line of the audit trail has this hash (lines were cut "
            f"or rewritten after it)") in out


@security
def test_a_failing_mail_server_leaves_a_mail_failed_line_after_the_runs_line(
        workspace, refusing_smtp_server, smtp_server, capsys):
    port, mailbox = smtp_server
    mail_to(workspace, refusing_smtp_server)
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    capsys.readouterr()
    assert workspace.receive(*AS_OF) == 1
    error = (f"mail 127.0.0.1:{refusing_smtp_server}: cannot send: SMTPDataError: (554, "
             f"b'5.0.0 refused by the test')")
    message = f"reports delivered, but the summary mail was not sent: {error}; rerun to send it"
    assert capsys.readouterr().err.splitlines()[-1] == f"receivedps.py: error: {message}"
    record = workspace.manifests("receive")[-1]
    hashes = line_hashes(workspace)
    [_, run_line, failed_line] = audit_lines(workspace)
    assert {run_line["run_id"], failed_line["run_id"]} == {record["run_id"]}
    assert (run_line["outcome"], run_line["exit_code"], "event" in run_line) == \
        ("reported", 0, False)
    assert (failed_line["event"], failed_line["outcome"], failed_line["exit_code"],
            failed_line["error"], failed_line["mail_error"]) == \
        ("mail failed", "reported", 1, message, error)
    assert (failed_line["prev_sha256"], failed_line["audit_sha256"]) == (hashes[1], hashes[1])
    assert (record["event"], record["exit_code"], record["error"], record["audit_sha256"]) == \
        ("mail failed", 1, message, hashes[2])
    code, out = verify(workspace, capsys, "--expect-head", hashes[2])
    assert (code, out[-1]) == (0, "OK: nothing wrong found")

    mail_to(workspace, port)                   # the mail server works again: the rerun sends it
    assert workspace.receive(*AS_OF) == 0
    rerun = workspace.manifests("receive")[-1]
    hashes = line_hashes(workspace)
    assert (rerun["outcome"], rerun["resends_mail_of"], rerun["audit_sha256"]) == \
        ("nothing new", record["run_id"], hashes[3])
    assert [m["Subject"] for m in mailbox.messages] == \
        ["[DPS exchange] reports for FY2025Q3 are ready"]
    assert mailed_heads(mailbox) == [hashes[3], hashes[3]]      # the resending run's own line
    first = workspace.manifests("receive")[0]
    assert (first["mailed"], first["pending_mail"], first["mail_error"], first["mail_sent_by"]) \
        == (True, None, None, rerun["run_id"])
    code, out = verify(workspace, capsys, "--expect-head", hashes[3])
    assert (code, out[-1]) == (0, "OK: nothing wrong found")
