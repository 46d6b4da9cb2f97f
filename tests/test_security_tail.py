"""Issue 20, item 4: the chain's tail. The head a run pings out (and puts in its failure
alert) is the hash of the run's OWN audit line, so `--verify-audit --expect-head HASH` proves
nothing was cut after it; a forged line appended with a recomputed hash, but without a run
record, is a finding."""

from __future__ import annotations

import hashlib
import http.server
import json
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
