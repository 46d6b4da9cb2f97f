"""The audit trail as a hash chain: every kind of tampering is found, with its line number."""

import fcntl
import hashlib
import json
import multiprocessing
import os
from pathlib import Path

import pytest

from exchange.audit import (
    TAIL_BLOCK,
    ZERO_HASH,
    append_audit_line,
    head_sha256,
    verify_chain,
    verify_records,
)
from exchange.errors import LocalFileError

pytestmark = pytest.mark.reliability("audit and archive")

BROKEN_LINK = "does not follow line {} (edited, deleted, inserted or reordered)"


def line_hash(line: bytes) -> str:
    return hashlib.sha256(line.rstrip(b"\n")).hexdigest()


def run_record(number: int) -> dict:
    return {"run_id": f"run-{number}", "step": "send", "outcome": "uploaded", "rows": number}


@pytest.fixture
def audit_file(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "audit.jsonl"


@pytest.fixture
def chain_of_six(audit_file: Path) -> list[dict]:
    """Six chained lines; returns the six run records, each with its audit_sha256, as the
    product keeps them."""
    records = []
    for number in range(1, 7):
        record = run_record(number)
        records.append(dict(record, audit_sha256=append_audit_line(audit_file, record)))
    return records


def read_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def old_style_line(record: dict) -> bytes:
    """How the product wrote audit lines before the chain."""
    return (json.dumps(record, sort_keys=True, default=str, separators=(",", ":")) + "\n"
            ).encode()


def breaks(path: Path) -> list[str]:
    return [str(found) for found in verify_chain(path).breaks]


def test_an_untouched_chain_has_no_breaks(audit_file, chain_of_six):
    report = verify_chain(audit_file)
    lines = read_lines(audit_file)
    assert report.breaks == ()
    assert report.ok
    assert (report.lines_before_chain, report.chained_lines) == (0, 6)
    assert report.head_sha256 == line_hash(lines[-1]) == chain_of_six[-1]["audit_sha256"]
    assert report.runs["run-3"] == (3, line_hash(lines[2]))
    assert verify_records(report, chain_of_six) == []


def test_each_line_carries_the_hash_of_the_line_before(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    assert json.loads(lines[0])["prev_sha256"] == ZERO_HASH
    assert json.loads(lines[4])["prev_sha256"] == line_hash(lines[3])
    assert json.loads(lines[4]) == dict(run_record(5), prev_sha256=line_hash(lines[3]))
    assert [record["audit_sha256"] for record in chain_of_six] == [line_hash(x) for x in lines]


def test_lines_written_before_the_chain_are_not_breaks(audit_file):
    audit_file.parent.mkdir()
    write_lines(audit_file, [old_style_line(run_record(n)) for n in (1, 2, 3)])
    append_audit_line(audit_file, run_record(4))
    append_audit_line(audit_file, run_record(5))
    report = verify_chain(audit_file)
    lines = read_lines(audit_file)
    assert report.breaks == ()
    assert (report.lines_before_chain, report.chained_lines) == (3, 2)
    assert json.loads(lines[3])["prev_sha256"] == line_hash(lines[2])
    assert report.runs["run-1"] == (1, line_hash(lines[0]))
    assert report.summary().endswith(f"2 chained lines, 3 before the chain began; unbroken; "
                                     f"head {line_hash(lines[4])[:16]}")


def test_an_edited_line_breaks_the_link_of_the_next_line(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    lines[2] = lines[2].replace(b'"rows":3', b'"rows":4')
    write_lines(audit_file, lines)
    assert breaks(audit_file) == ["line 4: " + BROKEN_LINK.format(3)]


def test_a_deleted_line_is_found(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    del lines[2]
    write_lines(audit_file, lines)
    assert breaks(audit_file) == ["line 3: " + BROKEN_LINK.format(2)]
    assert verify_records(verify_chain(audit_file), chain_of_six) == [
        "run run-3: its audit line is missing (deleted from the end?)"]


def test_a_deleted_first_line_is_found(audit_file, chain_of_six):
    write_lines(audit_file, read_lines(audit_file)[1:])
    assert breaks(audit_file) == [
        "line 1: does not follow the start of the file (lines deleted before it?)"]


def test_an_inserted_line_is_found_even_with_a_forged_link(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    forged = json.dumps(dict(run_record(99), prev_sha256=line_hash(lines[1])),
                        sort_keys=True, separators=(",", ":")).encode() + b"\n"
    lines.insert(2, forged)
    write_lines(audit_file, lines)
    assert breaks(audit_file) == ["line 4: " + BROKEN_LINK.format(3)]


def test_an_inserted_line_without_a_link_is_found(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    lines.insert(2, old_style_line(run_record(99)))
    write_lines(audit_file, lines)
    assert breaks(audit_file) == [
        "line 3: carries no prev_sha256 after the chain began (inserted, or written by an old "
        "version)",
        "line 4: " + BROKEN_LINK.format(3)]


def test_two_swapped_lines_are_found(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(audit_file, lines)
    assert breaks(audit_file) == ["line 3: " + BROKEN_LINK.format(2),
                                  "line 4: " + BROKEN_LINK.format(3),
                                  "line 5: " + BROKEN_LINK.format(4)]


def test_a_last_line_cut_midway_is_found(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    lines[-1] = lines[-1][:20]
    write_lines(audit_file, lines)
    report = verify_chain(audit_file)
    assert [str(found) for found in report.breaks] == [
        "line 6: not a complete JSON line (truncated)"]
    assert verify_records(report, chain_of_six) == [
        "run run-6: its audit line is missing (deleted from the end?)"]


def test_a_last_line_without_its_newline_is_found(audit_file, chain_of_six):
    audit_file.write_bytes(audit_file.read_bytes()[:-1])
    assert breaks(audit_file) == ["line 6: has no newline at its end (truncated write)"]


def test_an_edit_of_the_last_line_is_found_only_by_the_run_records(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    lines[-1] = lines[-1].replace(b'"outcome":"uploaded"', b'"outcome":"failed"')
    write_lines(audit_file, lines)
    report = verify_chain(audit_file)
    assert report.breaks == ()
    assert verify_records(report, chain_of_six) == [
        "run run-6: its audit line was changed (line 6)"]


def test_a_line_deleted_from_the_end_is_found_by_the_run_records(audit_file, chain_of_six):
    write_lines(audit_file, read_lines(audit_file)[:-1])
    report = verify_chain(audit_file)
    assert report.breaks == ()
    assert verify_records(report, chain_of_six) == [
        "run run-6: its audit line is missing (deleted from the end?)"]


def test_run_records_from_before_the_chain_are_skipped(audit_file, chain_of_six):
    records = [run_record(1), run_record(42), *chain_of_six]   # no audit_sha256 in the first two
    assert verify_records(verify_chain(audit_file), records) == []
    orphan = {"audit_sha256": ZERO_HASH}
    assert verify_records(verify_chain(audit_file), [orphan]) == [
        "a run record carries audit_sha256 but no run_id"]


def test_a_torn_last_line_is_not_glued_to_and_is_reported(audit_file, chain_of_six):
    lines = read_lines(audit_file)
    torn = lines[-1][:25]
    write_lines(audit_file, [*lines[:-1], torn])
    written = append_audit_line(audit_file, run_record(7))
    after = read_lines(audit_file)
    assert len(after) == 7
    assert after[5] == torn + b"\n"
    assert json.loads(after[6])["prev_sha256"] == hashlib.sha256(torn).hexdigest()
    report = verify_chain(audit_file)
    assert [str(found) for found in report.breaks] == [
        "line 6: not a complete JSON line (truncated)"]
    assert report.chained_lines == 7
    assert report.runs["run-7"] == (7, written)


def _append_many(path: str, first: int, count: int, start: multiprocessing.Barrier) -> None:
    start.wait()
    for number in range(first, first + count):
        append_audit_line(Path(path), run_record(number))


def test_two_processes_appending_at_once_give_one_unbroken_chain(audit_file):
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    workers = [context.Process(target=_append_many, args=(str(audit_file), first, 50, start))
               for first in (1, 101)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    report = verify_chain(audit_file)
    assert report.breaks == ()
    assert (report.lines_before_chain, report.chained_lines) == (0, 100)
    assert len(report.runs) == 100


def test_a_last_line_longer_than_one_tail_block_is_hashed_whole(audit_file):
    append_audit_line(audit_file, run_record(1))
    append_audit_line(audit_file, dict(run_record(2), note="x" * (3 * TAIL_BLOCK)))
    append_audit_line(audit_file, run_record(3))
    assert breaks(audit_file) == []


def test_a_missing_file_is_an_empty_chain(audit_file):
    report = verify_chain(audit_file)
    assert (report.breaks, report.chained_lines, report.head_sha256) == ((), 0, ZERO_HASH)
    assert head_sha256(audit_file) == ZERO_HASH


def test_head_sha256_is_the_hash_of_the_last_line(audit_file, chain_of_six):
    assert head_sha256(audit_file) == chain_of_six[-1]["audit_sha256"]
    assert head_sha256(audit_file) == verify_chain(audit_file).head_sha256


def test_the_audit_file_is_private_and_locked_through_a_sibling(audit_file, chain_of_six):
    assert audit_file.stat().st_mode & 0o777 == 0o600
    assert (audit_file.parent / "audit.jsonl.lock").exists()


def test_a_record_may_not_bring_its_own_link(audit_file):
    with pytest.raises(ValueError, match="already has a prev_sha256"):
        append_audit_line(audit_file, {"run_id": "x", "prev_sha256": ZERO_HASH})


def test_a_held_lock_times_out_with_one_line(audit_file):
    audit_file.parent.mkdir()
    # flock belongs to an open file, so a second open of the lock file conflicts with it
    holder = os.open(audit_file.parent / "audit.jsonl.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        with pytest.raises(LocalFileError) as error:
            append_audit_line(audit_file, run_record(1), lock_timeout=0.2)
    finally:
        os.close(holder)
    assert str(error.value) == (f"{audit_file}.lock: held by another process for 0.2 s; "
                                f"audit line not written")
    assert not audit_file.exists()
