"""Issue 20, item 3: when a run ends (success, nothing new, dry run, failure, interruption), no
plain copy of children's data is left outside the archive and the share, except what a
failure must keep to resume (the undelivered reports), and that is encrypted when the archive
is; the next run of the same step removes a killed run's leftovers first.

A dry run's own product (the send's files in outbox/send, the receive's reports in
outbox/dry-run) is what the operator asked to look at: it stays, until the next run of the
step."""

from __future__ import annotations

import os
from pathlib import Path

import openpyxl
import pytest

from exchange.vault import is_encrypted, new_key
from tests.scenario import SEND_FILES, in_clear, report_files, scenario_answer

security = pytest.mark.reliability("security")
AS_OF = ("--as-of", "2025-06-20")


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) \
        if folder.is_dir() else []


def plain_child_data(folder: Path) -> list[str]:
    """Files under `folder` holding a child's name or DOB in the clear."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if in_clear(data) or path.suffix == ".xlsx" \
                    and data.startswith(b"PK"):
                found.append(str(path.relative_to(folder)))
    return sorted(found)


def encrypt(space) -> None:
    key = space.root / "archive.key"
    key.write_text(new_key() + "\n")
    key.chmod(0o600)
    space.configure(archive={"encrypt": True, "key_id": "2026-12", "key_file": str(key)})


@security
def test_a_successful_send_leaves_no_plain_copy_in_the_outbox(workspace):
    assert workspace.send(*AS_OF) == 0
    assert files_under(workspace.folder("outbox") / "send") == []
    assert (workspace.upload_dir / "End_txt_file.txt").is_file()
    assert len(workspace.manifests("send")[-1]["archived"]) == 4


@security
def test_a_failed_send_leaves_no_plain_copy_in_the_outbox(workspace):
    workspace.configure(sanity={"min_rows": 100})
    assert workspace.send(*AS_OF) == 1
    assert files_under(workspace.folder("outbox") / "send") == []


@security
def test_a_send_dry_run_keeps_its_files_until_the_next_send(scenario):
    assert scenario.send(*AS_OF, "--dry-run") == 0
    outbox = scenario.folder("outbox") / "send"
    assert files_under(outbox) == SEND_FILES
    scenario.configure(sanity={"min_rows": 100})
    assert scenario.send(*AS_OF) == 1                # a real run, failing: it clears them
    assert files_under(outbox) == []


@security
def test_a_receive_leaves_no_staging_copy_when_nothing_is_new_or_a_dry_run(workspace):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    assert workspace.receive(*AS_OF, "--dry-run") == 0
    assert files_under(workspace.folder("staging")) == []
    assert files_under(workspace.folder("outbox") / "dry-run") == [   # its product
        f"FY2025_Q3/{name}" for name in report_files()]
    assert workspace.receive(*AS_OF) == 0
    assert workspace.receive(*AS_OF, "--period", "FY2025Q3") == 0
    assert workspace.manifests("receive")[-1]["outcome"] == "nothing new"
    assert files_under(workspace.folder("staging")) == []


@security
def test_a_refused_answer_leaves_no_staging_copy_and_is_kept_in_the_archive(workspace):
    assert workspace.send(*AS_OF) == 0
    results, counts = scenario_answer()
    workspace.put_answer(results, counts.replace(b"RESULT_RECORDS|5", b"RESULT_RECORDS|4"))
    assert workspace.receive(*AS_OF) == 1
    assert files_under(workspace.folder("staging")) == []
    refused = workspace.manifests("receive")[-1]["refused_answer"]
    assert [Path(p).read_bytes() for p in refused] == [results, counts.replace(
        b"RESULT_RECORDS|5", b"RESULT_RECORDS|4")]


@security
def test_a_killed_receives_staging_is_removed_by_the_next_receive_first(workspace):
    assert workspace.send(*AS_OF) == 0
    leftover = workspace.folder("staging") / "20261203T000000Z-receive-dead"
    leftover.mkdir(parents=True)
    (leftover / "Dfps-missing-person-results.txt").write_bytes(scenario_answer()[0])
    other = workspace.folder("staging") / "not-ours.txt"     # staging set to a shared folder
    other.write_text("kept")
    assert workspace.receive(*AS_OF, "--no-wait") == 3   # nothing there yet: not ready
    assert not leftover.exists()
    assert other.read_text() == "kept"
    assert "removed 1 leftover(s) of an earlier receive run" in workspace.log_text()


@security
def test_undelivered_reports_are_kept_encrypted_and_delivered_plain_later(workspace):
    encrypt(workspace)
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    workspace.folder("share").rmdir()
    assert workspace.receive(*AS_OF) == 1
    queued = workspace.folder("outbox") / "reports" / "FY2025_Q3"
    workbooks = sorted(queued.glob("*.xlsx"))
    assert [p.name for p in workbooks] == report_files()
    assert all(is_encrypted(p) for p in workbooks)
    for name in ("outbox", "staging"):
        assert plain_child_data(workspace.folder(name)) == [], name
    workspace.folder("share").mkdir()
    assert workspace.receive(*AS_OF) == 0
    delivered = sorted(workspace.folder("share").glob("*.xlsx"))
    assert [p.name for p in delivered] == [p.name for p in workbooks]
    for path in delivered:
        openpyxl.load_workbook(path)           # plain workbooks on the share
    assert files_under(queued) == []


@security
def test_without_encryption_undelivered_reports_stay_as_they_are(workspace):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    workspace.folder("share").rmdir()
    assert workspace.receive(*AS_OF) == 1
    queued = sorted((workspace.folder("outbox") / "reports" / "FY2025_Q3").glob("*.xlsx"))
    assert [p.name for p in queued] == report_files()
    assert not any(is_encrypted(p) for p in queued)
    assert all(os.stat(p).st_mode & 0o077 == 0 for p in queued)
