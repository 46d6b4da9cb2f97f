"""--verify-audit: is the record of what was exchanged intact?

Checks the audit trail's hash chain (a line edited, deleted, inserted, reordered or cut
short), the run records against it (lines cut from the end), and every archived file against
the SHA-256 its run recorded: the stored bytes always, the plain content when the archive's
keys are at hand. Prints one line per problem and returns 1 on any, else 0.

What it protects against: a change to the audit trail, the run records or the archive by
someone who cannot rewrite all of them together *and* the copies of the chain's head that left
the machine (the summary mail, the health pings). What it does not: someone who can rewrite
the whole chain, every run record and those outside copies at once; and it cannot bring back
what was deleted, only say that it is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exchange.archive import Archive, check_stored
from exchange.audit import verify_chain, verify_records
from exchange.errors import EXIT_FAILED, EXIT_OK
from exchange.records import RECEIVE, SEND, read_manifests


def verify_audit(audit_file: Path, state_dir: Path, archive: Archive,
                 archive_dir: Path | None = None) -> int:
    """Print what is wrong, one line each; 1 when anything is, else 0. Archived files are
    looked for where the run recorded them, else under `archive_dir` (an installation that
    moved keeps its archive's layout: <archive>/<step>/<period>/<file>)."""
    report = verify_chain(audit_file)
    print(f"audit trail {report.summary()}")
    records = read_manifests(state_dir, SEND) + read_manifests(state_dir, RECEIVE)
    problems = [str(b) for b in report.breaks] + verify_records(report, records)
    problems += archive_problems(records, archive, archive_dir)
    encrypted = encrypted_count(records, archive_dir)
    if encrypted and archive.ring is None:
        problems.append(f"{encrypted} archived file(s) are encrypted but the archive's keys are "
                        "not available: their content was not checked (archive.key_file / "
                        "archive.key_env)")
    for problem in problems:
        print(f"  {problem}")
    purged = sum(len(r.get("purged", {})) for r in records)
    checked = sum(len(r.get("archive_checksums", {})) for r in records)
    print(f"archived files: {checked} recorded with checksums, {purged} purged by the "
          f"retention schedule; {content_summary(encrypted, archive)}")
    print("OK: nothing wrong found" if not problems else f"FAILED: {len(problems)} problem(s)")
    return EXIT_FAILED if problems else EXIT_OK


def content_summary(encrypted: int, archive: Archive) -> str:
    if not encrypted:
        return "stored plain, content checked against the records"
    if archive.ring is None:
        return f"content of {encrypted} encrypted file(s) not checked (no key)"
    return f"content of {encrypted} encrypted file(s) checked with the keys"


def located(path: Path, archive_dir: Path | None) -> Path:
    """The archived file where it was recorded, else at the same place under archive_dir."""
    if path.is_file() or archive_dir is None or len(path.parts) < 4:
        return path
    moved = archive_dir.joinpath(*path.parts[-3:])
    return moved if moved.is_file() else path


def encrypted_count(records: list[dict[str, Any]], archive_dir: Path | None) -> int:
    from exchange.vault import is_encrypted

    paths = {located(Path(path), archive_dir) for record in records
             for path in record.get("archive_checksums", {})
             if path not in record.get("purged", {})}
    return sum(1 for path in paths if path.is_file() and is_encrypted(path))


def archive_problems(records: list[dict[str, Any]], archive: Archive,
                     archive_dir: Path | None = None) -> list[str]:
    """Each archived file with a recorded checksum: there and unchanged (or purged)."""
    problems = []
    for record in records:
        purged = record.get("purged", {})
        for path, recorded in record.get("archive_checksums", {}).items():
            if path in purged:
                continue
            wrong = check_stored(located(Path(path), archive_dir), recorded, archive)
            if wrong:
                problems.append(f"run {record.get('run_id')}: archived file {path}: {wrong}")
    return problems
