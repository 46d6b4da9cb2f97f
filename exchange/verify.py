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


def verify_audit(audit_file: Path, state_dir: Path, archive: Archive) -> int:
    """Print what is wrong, one line each; 1 when anything is, else 0."""
    report = verify_chain(audit_file)
    print(f"audit trail {report.summary()}")
    records = read_manifests(state_dir, SEND) + read_manifests(state_dir, RECEIVE)
    problems = [str(b) for b in report.breaks] + verify_records(report, records)
    problems += archive_problems(records, archive)
    for problem in problems:
        print(f"  {problem}")
    purged = sum(len(r.get("purged", {})) for r in records)
    checked = sum(len(r.get("archive_checksums", {})) for r in records)
    content = "checked with the keys" if archive.ring else "not checked (no key)"
    print(f"archived files: {checked} recorded with checksums, {purged} purged by the "
          f"retention schedule; content {content}")
    print("OK: nothing wrong found" if not problems else f"FAILED: {len(problems)} problem(s)")
    return EXIT_FAILED if problems else EXIT_OK


def archive_problems(records: list[dict[str, Any]], archive: Archive) -> list[str]:
    """Each archived file with a recorded checksum: there and unchanged (or purged)."""
    problems = []
    for record in records:
        purged = record.get("purged", {})
        for path, recorded in record.get("archive_checksums", {}).items():
            if path in purged:
                continue
            wrong = check_stored(Path(path), recorded, archive)
            if wrong:
                problems.append(f"run {record.get('run_id')}: archived file {path}: {wrong}")
    return problems
