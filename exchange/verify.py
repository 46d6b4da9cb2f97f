"""--verify-audit: is the record of what was exchanged intact?

Checks the audit trail's hash chain (a line edited, deleted, inserted, reordered or cut
short), the run records against it (lines cut from the end, records edited), and every
archived file against the SHA-256 its run's AUDIT LINE carries: the stored bytes always, the
plain content when the archive's keys are at hand. Every fact checked comes from the chained
audit lines, never from the run records (which anyone with write access edits unnoticed): a
file is purged only when a purge line names it. A check that cannot be made (an unreadable
record, a run without its audit line, a file no line names) is a finding, not a silent OK.
Runs from before the chain began can only be checked against their own records: that is said
on a line of its own. Prints one line per problem and returns 1 on any, else 0.

What it protects against: a change to the audit trail, the run records or the archive by
someone who cannot rewrite all of them together *and* the copies of the chain's head that left
the machine (the summary mail, the health pings). What it does not: someone who can rewrite
the whole chain, every run record and those outside copies at once; and it cannot bring back
what was deleted, only say that it is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.archive import Archive, check_stored
from exchange.audit import ChainReport, verify_chain, verify_records
from exchange.errors import EXIT_FAILED, EXIT_OK
from exchange.records import RECEIVE, SEND, manifest_dir

FROM_LINE = "its audit line"
NOT_PURGED = "missing (no purge line in the audit trail names it)"


@dataclass
class RunRecords:
    """The run records as found on disk: the readable ones, oldest first, and the others."""

    records: list[dict[str, Any]] = field(default_factory=list)
    unreadable: list[Path] = field(default_factory=list)


@dataclass
class ChainFacts:
    """What the chained audit lines say of the archive: each archived file's checksums (with
    the run whose line names it) and each purged file's checksums."""

    archived: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    purged: dict[str, dict[str, str]] = field(default_factory=dict)


def verify_audit(audit_file: Path, state_dir: Path, archive: Archive,
                 archive_dir: Path | None = None, expect_head: str | None = None) -> int:
    """Print what is wrong, one line each; 1 when anything is, else 0."""
    report = verify_chain(audit_file)
    print(f"audit trail {report.summary()}")
    found = read_run_records(state_dir)
    facts = chain_facts(report)
    problems = [str(b) for b in report.breaks]
    problems += [f"run record {path}: unreadable, not checked" for path in found.unreadable]
    problems += verify_records(report, found.records)
    problems += records_without_lines(report, found.records)
    problems += lines_without_records(report, found.records)
    if expect_head is not None:
        problems += expected_head_problems(report, expect_head)
    problems += records_differing_from_lines(report, found.records)
    problems += archive_problems(facts, archive, archive_dir)
    older = records_before_the_chain(report, found.records)
    problems += older_archive_problems(older, archive, archive_dir)
    if archive_dir is not None:
        problems += unnamed_files(archive_dir, facts, older)
    encrypted = encrypted_count(facts, older, archive_dir)
    if encrypted and archive.ring is None:
        problems.append(f"{encrypted} archived file(s) are encrypted but the archive's keys are "
                        "not available: their content was not checked (archive.key_file / "
                        "archive.key_env)")
    notes = [f"run {r.get('run_id')}: cannot be proven: the checksums of its archived files "
             f"come only from its editable run record (it ran before the audit trail's chain "
             f"began)" for r in older if r.get("archive_checksums")]
    notes += [f"run {r.get('run_id')}: running now (pid {r.get('pid')}); its audit line comes "
              f"when it ends" for r in found.records
              if r.get("run_id") not in report.runs and running_now(r)]
    for line in problems + notes:
        print(f"  {line}")
    print(f"archived files: {len(facts.archived)} named with checksums by the audit trail, "
          f"{len(facts.purged)} purged by the retention schedule; "
          f"{content_summary(encrypted, archive)}")
    print("OK: nothing wrong found" if not problems else f"FAILED: {len(problems)} problem(s)")
    return EXIT_FAILED if problems else EXIT_OK


def read_run_records(state_dir: Path) -> RunRecords:
    """Every run record of both steps; one that cannot be read is kept as a path (a finding)."""
    found = RunRecords()
    for step in (SEND, RECEIVE):
        folder = manifest_dir(state_dir, step)
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                record = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                found.unreadable.append(path)
                continue
            if isinstance(record, dict):
                found.records.append(record)
            else:
                found.unreadable.append(path)
    found.records.sort(key=lambda r: (str(r.get("started_at", "")), str(r.get("run_id", ""))))
    return found


def chain_facts(report: ChainReport) -> ChainFacts:
    """The archive as the chained audit lines describe it."""
    facts = ChainFacts()
    for entry in report.chained_entries():
        record = entry.record
        run_id = str(record.get("run_id"))
        for path, checksums in (record.get("archive_checksums") or {}).items():
            if isinstance(checksums, dict):
                facts.archived[path] = (run_id, checksums)
        if record.get("step") == "purge":
            for item in record.get("purged") or []:
                if isinstance(item, dict) and "path" in item:
                    facts.purged[str(item["path"])] = item
    return facts


def records_without_lines(report: ChainReport, records: list[dict[str, Any]]) -> list[str]:
    """A run that started after the chain began but has neither its line nor the line's hash:
    killed before its line was written, or its line and the hash were removed."""
    began = report.chain_started_at()
    if began is None:
        return []
    return [f"run {r.get('run_id')}: no audit line and no audit_sha256 in its record, though "
            f"it started after the chain began (killed, or its line was removed)"
            for r in records if "audit_sha256" not in r and r.get("run_id") not in report.runs
            and str(r.get("started_at", "")) >= began and not running_now(r)]


def running_now(record: dict[str, Any]) -> bool:
    """A run that has not ended and whose process is alive: its line is still to come."""
    from exchange.recovery import process_alive

    return "finished_at" not in record and process_alive(record.get("pid"))


def lines_without_records(report: ChainReport, records: list[dict[str, Any]]) -> list[str]:
    """A chained run line with no run record: a line forged (and chained with a recomputed
    hash), or a record deleted. Purge lines have no record; they stand alone."""
    have = {str(r.get("run_id")) for r in records}
    return [f"run {e.record.get('run_id')}: its audit line (line {e.line}) has no run record "
            f"(forged, or the record was deleted)" for e in report.chained_entries()
            if e.record.get("step") != "purge" and str(e.record.get("run_id")) not in have]


def expected_head_problems(report: ChainReport, expected: str) -> list[str]:
    """The head a mail, an alert or a ping carried must still be a line of the trail; what
    follows it is printed (lines after it are later runs, each checked like the others)."""
    wanted = expected.strip().lower()
    total = report.entries[-1].line if report.entries else 0
    if len(wanted) < 16:
        return [f"expected head {expected}: give at least 16 hexadecimal characters"]
    for entry in report.entries:
        if entry.sha256.startswith(wanted):
            after = total - entry.line
            tail = "nothing after it" if after == 0 else f"{after} line(s) after it"
            print(f"expected head {wanted[:16]}: line {entry.line} of {total}, {tail}")
            return []
    return [f"expected head {expected}: no line of the audit trail has this hash (lines were "
            f"cut or rewritten after it)"]


def records_before_the_chain(report: ChainReport, records: list[dict[str, Any]]
                             ) -> list[dict[str, Any]]:
    """Runs with no chained line that started before the chain began (an older installation):
    their records are all there is to check them against."""
    began = report.chain_started_at()
    chained_runs = {str(e.record.get("run_id")) for e in report.chained_entries()}
    return [r for r in records if str(r.get("run_id")) not in chained_runs
            and "audit_sha256" not in r
            and (began is None or str(r.get("started_at", "")) < began)]


def records_differing_from_lines(report: ChainReport, records: list[dict[str, Any]]
                                 ) -> list[str]:
    """A record whose archive checksums are not those of its own audit line was edited."""
    lines = {str(e.record.get("run_id")): e.record for e in report.chained_entries()}
    problems = []
    for record in records:
        line = lines.get(str(record.get("run_id")))
        if line is None:
            continue
        in_line = line.get("archive_checksums") or {}
        for path, checksums in (record.get("archive_checksums") or {}).items():
            if in_line.get(path) != checksums:
                problems.append(f"run {record.get('run_id')}: its run record's checksums of "
                                f"{path} differ from its audit line (the record was edited)")
    return problems


def content_summary(encrypted: int, archive: Archive) -> str:
    if not encrypted:
        return "stored plain, content checked against the records"
    if archive.ring is None:
        return f"content of {encrypted} encrypted file(s) not checked (no key)"
    return f"content of {encrypted} encrypted file(s) checked with the keys"


def located(path: Path, archive_dir: Path | None) -> Path:
    """The archived file where it was recorded, else at the same place under archive_dir (an
    installation that moved keeps its archive's layout: <archive>/<step>/<period>/<file>)."""
    if path.is_file() or archive_dir is None or len(path.parts) < 4:
        return path
    moved = archive_dir.joinpath(*path.parts[-3:])
    return moved if moved.is_file() else path


def encrypted_count(facts: ChainFacts, older: list[dict[str, Any]],
                    archive_dir: Path | None) -> int:
    """How many archived files (not purged) are stored encrypted."""
    from exchange.vault import is_encrypted

    named = [p for p in facts.archived if p not in facts.purged]
    named += [p for r in older for p in (r.get("archive_checksums") or {})
              if p not in r.get("purged", {})]
    paths = {located(Path(p), archive_dir) for p in named}
    return sum(1 for path in paths if path.is_file() and is_encrypted(path))


def archive_problems(facts: ChainFacts, archive: Archive,
                     archive_dir: Path | None = None) -> list[str]:
    """Each file an audit line names: there and unchanged, or named by a purge line with the
    same checksum."""
    problems = []
    for path, (run_id, checksums) in facts.archived.items():
        purge = facts.purged.get(path)
        if purge is not None:
            if purge.get("sha256") not in (None, checksums.get("sha256")):
                problems.append(f"run {run_id}: archived file {path}: the purge line's "
                                f"checksum differs from the run's audit line")
            continue
        wrong = check_stored(located(Path(path), archive_dir), checksums, archive, FROM_LINE)
        if wrong:
            problems.append(f"run {run_id}: archived file {path}: "
                            f"{NOT_PURGED if wrong == 'missing' else wrong}")
    return problems


def older_archive_problems(older: list[dict[str, Any]], archive: Archive,
                           archive_dir: Path | None = None) -> list[str]:
    """Runs from before the chain: their files against their own records (damage is found,
    a deliberate change with its record is not)."""
    problems = []
    for record in older:
        purged = record.get("purged", {})
        for path, checksums in (record.get("archive_checksums") or {}).items():
            if path in purged:
                continue
            wrong = check_stored(located(Path(path), archive_dir), checksums, archive)
            if wrong:
                problems.append(f"run {record.get('run_id')}: archived file {path}: {wrong}")
    return problems


def unnamed_files(archive_dir: Path, facts: ChainFacts, older: list[dict[str, Any]]
                  ) -> list[str]:
    """Files in the archive that no audit line (nor an older run's record) names: an archive
    whose records and trail are gone, or a file put there by hand."""
    named = set(facts.archived) | set(facts.purged)
    for record in older:
        named |= set(record.get("archive_checksums") or {})
    where = {located(Path(p), archive_dir) for p in named}
    files = sorted(p for p in archive_dir.rglob("*") if p.is_file()
                   and not p.name.startswith(".key-check")) if archive_dir.is_dir() else []
    return [f"archived file {p}: no audit line or run record names it" for p in files
            if p not in where]
