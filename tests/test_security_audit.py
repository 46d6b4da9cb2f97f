"""Issue 20, items 2, 5 and 6: --verify-audit takes every fact it checks from the hash-chained
audit lines, never from the run records anyone can edit; a purge is proven by its audit line
alone; and a check that cannot be made is a finding, not a silent "OK"."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.scenario import archived_files, archived_name, scenario_answer

security = pytest.mark.reliability("security")
AS_OF = ("--as-of", "2025-06-20")


def exchange(space) -> None:
    assert space.send(*AS_OF) == 0
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0


def record_files(space, step: str) -> list[Path]:
    return sorted((space.folder("state") / "manifests" / step).glob("*.json"))


def edit_record(path: Path, change) -> None:
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record, indent=2, sort_keys=True))


def verify(space, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = space.send("--verify-audit")
    return code, capsys.readouterr().out.splitlines()


@security
def test_a_swapped_archived_file_with_its_record_updated_is_found(workspace, capsys):
    exchange(workspace)
    path = record_files(workspace, "send")[-1]
    target = Path(json.loads(path.read_text())["archived"][0])
    target.write_bytes(b"someone else's file\n")
    new = hashlib.sha256(target.read_bytes()).hexdigest()
    edit_record(path, lambda r: r["archive_checksums"].update(
        {str(target): {"sha256": new, "stored_sha256": new}}))
    code, out = verify(workspace, capsys)
    assert code == 1
    run_id = json.loads(path.read_text())["run_id"]
    assert f"  run {run_id}: archived file {target}: changed (stored bytes differ from its " \
           f"audit line)" in out
    assert f"  run {run_id}: its run record's checksums of {target} differ from its audit " \
           f"line (the record was edited)" in out
    assert out[-1].startswith("FAILED: ")


@security
def test_a_deleted_archived_file_marked_purged_in_its_record_is_found(workspace, capsys):
    exchange(workspace)
    path = record_files(workspace, "send")[-1]
    target = Path(json.loads(path.read_text())["archived"][0])
    target.unlink()
    edit_record(path, lambda r: r.setdefault("purged", {}).update({str(target): "2026-06-01"}))
    code, out = verify(workspace, capsys)
    assert code == 1
    run_id = json.loads(path.read_text())["run_id"]
    assert f"  run {run_id}: archived file {target}: missing (no purge line in the audit " \
           f"trail names it)" in out


@security
def test_a_purge_with_its_audit_line_deleted_is_found(workspace, capsys):
    workspace.configure(archive={"retention_years": 1})
    exchange(workspace)
    assert workspace.send("--purge-archive", "--as-of", "2026-06-01") == 0
    assert verify(workspace, capsys)[0] == 0
    audit = workspace.folder("logs") / "audit.jsonl"
    audit.write_text("".join(audit.read_text().splitlines(keepends=True)[:-1]))
    code, out = verify(workspace, capsys)
    assert code == 1
    assert any(line.endswith("missing (no purge line in the audit trail names it)")
               for line in out)


@security
def test_an_unreadable_run_record_is_a_finding(workspace, capsys):
    exchange(workspace)
    path = record_files(workspace, "receive")[-1]
    path.write_text("{ not json")
    code, out = verify(workspace, capsys)
    assert code == 1
    assert f"  run record {path}: unreadable, not checked" in out


@security
def test_a_run_record_without_its_audit_hash_after_the_chain_began_is_a_finding(workspace,
                                                                                 capsys):
    exchange(workspace)
    audit = workspace.folder("logs") / "audit.jsonl"
    audit.write_text("".join(audit.read_text().splitlines(keepends=True)[:-1]))
    path = record_files(workspace, "receive")[-1]
    edit_record(path, lambda r: r.pop("audit_sha256"))
    code, out = verify(workspace, capsys)
    assert code == 1
    run_id = json.loads(path.read_text())["run_id"]
    assert f"  run {run_id}: no audit line and no audit_sha256 in its record, though it " \
           f"started after the chain began (killed, or its line was removed)" in out


@security
def test_empty_state_and_audit_beside_a_non_empty_archive_is_a_finding(workspace, capsys):
    exchange(workspace)
    for path in record_files(workspace, "send") + record_files(workspace, "receive"):
        path.unlink()
    (workspace.folder("logs") / "audit.jsonl").unlink()
    code, out = verify(workspace, capsys)
    assert code == 1
    unnamed = ": no audit line or run record names it"
    stray = [line.removeprefix("  archived file ").removesuffix(unnamed) for line in out
             if line.endswith(unnamed)]
    assert sorted(archived_name(path) for path in stray) == archived_files()   # every file


@security
def test_an_installation_from_before_the_chain_says_what_cannot_be_proven(workspace, capsys):
    exchange(workspace)
    (workspace.folder("logs") / "audit.jsonl").unlink()   # as before the audit trail existed
    for path in record_files(workspace, "send") + record_files(workspace, "receive"):
        edit_record(path, lambda r: r.pop("audit_sha256"))
    code, out = verify(workspace, capsys)
    assert code == 0
    notes = [line for line in out if "cannot be proven" in line]
    assert len(notes) == 2
    assert all(line.endswith("the checksums of its archived files come only from its "
                             "editable run record (it ran before the audit trail's chain "
                             "began)") for line in notes)
    assert out[-1] == "OK: nothing wrong found"


@security
def test_a_killed_run_is_a_finding_until_the_next_run_of_its_step_closes_it(workspace, capsys):
    import os
    import signal

    from exchange.records import FAULT_KILL_AFTER_ENV

    assert workspace.send(*AS_OF) == 0                  # the chain begins
    env = dict(os.environ, **{FAULT_KILL_AFTER_ENV: "upload"})
    assert workspace.cli("send2dps.py", *AS_OF, "--force", env=env).returncode == \
        -signal.SIGKILL
    killed = workspace.manifests("send")[-1]["run_id"]
    code, out = verify(workspace, capsys)
    assert code == 1
    assert f"  run {killed}: no audit line and no audit_sha256 in its record, though it " \
           f"started after the chain began (killed, or its line was removed)" in out
    assert workspace.send(*AS_OF) == 0                  # completes the archive, closes it
    lines = [json.loads(x) for x in
             (workspace.folder("logs") / "audit.jsonl").read_text().splitlines()]
    closing = next(x for x in lines if x["run_id"] == killed)
    assert closing["ended"] == "crashed (closed by a later run)"
    assert closing["closed_by"] == workspace.manifests("send")[-1]["run_id"]
    assert len(closing["archive_checksums"]) == 4       # the archive the later run completed
    assert verify(workspace, capsys)[0] == 0


@security
def test_a_run_still_running_is_a_note_not_a_finding(workspace, capsys):
    import datetime as dt
    import os

    from exchange.records import write_manifest

    assert workspace.send(*AS_OF) == 0
    running = {"step": "receive", "run_id": "20991231T000000Z-receive-0a0a", "pid": os.getpid(),
               "outcome": "running", "steps": {},
               "started_at": dt.datetime.now(dt.UTC).isoformat()}
    write_manifest(workspace.folder("state"), running)
    code, out = verify(workspace, capsys)
    assert code == 0
    assert (f"  run {running['run_id']}: running now (pid {os.getpid()}); its audit line comes "
            f"when it ends") in out
