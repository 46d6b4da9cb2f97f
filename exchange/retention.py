"""--purge-archive: the archive's retention schedule (archive.retention_years).

A period's archived files (the files sent, DPS's answers, refused answers, the reports) are
removed once the run date is more than `retention_years` after the period's end. Only this
explicit command removes them, never a run; `--dry-run` lists what would go. Each purge is an
audit line naming the files and their checksums, and each run record notes what of it was
purged and when, so --verify-audit reports those files as purged, not missing, and
regenerating a purged period fails with one clear line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from exchange.audit import append_audit_line
from exchange.errors import EXIT_OK
from exchange.periods import parse_period
from exchange.records import RECEIVE, SEND, new_run_id, read_manifests, write_manifest

FILE_LISTS = ("archived", "archived_reports", "refused_answer")


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:              # 29 February
        return day.replace(year=day.year + years, day=28)


def expired_files(state_dir: Path, years: int, today: dt.date
                  ) -> dict[str, list[dict[str, Any]]]:
    """Every archived file whose period ended more than `years` ago, with the run records that
    list it (a regeneration lists the answer an earlier run archived), oldest record first."""
    found: dict[str, list[dict[str, Any]]] = {}
    for record in read_manifests(state_dir, SEND) + read_manifests(state_dir, RECEIVE):
        period = record.get("period")
        if not period or add_years(parse_period(period).end, years) >= today:
            continue
        for name in FILE_LISTS:
            for path in record.get(name) or []:
                if path not in record.get("purged", {}) and Path(path).is_file():
                    found.setdefault(path, []).append(record)
    return found


def purge_archive(state_dir: Path, audit_file: Path, years: int, today: dt.date,
                  dry_run: bool) -> int:
    """Remove (or, dry run, list) the archived files past the retention schedule."""
    if years <= 0:
        print("archive.retention_years is 0: the archive is kept; nothing to purge")
        return EXIT_OK
    expired = expired_files(state_dir, years, today)
    verb = "would remove" if dry_run else "removing"
    for path, records in expired.items():
        print(f"{verb} {path} (period {records[0]['period']}, run {records[0]['run_id']})")
    if not expired:
        print(f"nothing is older than {years} year(s) after its period's end")
    if dry_run and expired:
        print(dry_run_total(expired))
    if dry_run or not expired:
        return EXIT_OK
    removed = [remove(path, records, today, state_dir) for path, records in expired.items()]
    append_audit_line(audit_file, {"step": "purge", "run_id": new_run_id("purge"),
                                   "started_at": dt.datetime.now(dt.UTC).isoformat(),
                                   "retention_years": years, "run_date": today.isoformat(),
                                   "purged": removed, "outcome": "purged"})
    print(f"purged {len(removed)} file(s); the audit trail names them")
    return EXIT_OK


def dry_run_total(expired: dict[str, list[dict[str, Any]]]) -> str:
    """The last line of a dry run: how many files of how many periods, and their size."""
    periods = sorted({records[0]["period"] for records in expired.values()})
    size = sum(Path(path).stat().st_size for path in expired)
    return (f"would remove {len(expired)} file(s) of {len(periods)} period(s) "
            f"({', '.join(periods)}), {size / 1_048_576:.1f} MiB; nothing was removed "
            "(without --dry-run they go)")


def remove(path: str, records: list[dict[str, Any]], today: dt.date, state_dir: Path
           ) -> dict[str, str]:
    """Delete one archived file and note it in every run record that lists it; what the
    audit line says of it."""
    checksums = next((r["archive_checksums"][path] for r in records
                      if path in r.get("archive_checksums", {})), {})
    Path(path).unlink()
    for record in records:
        record.setdefault("purged", {})[path] = today.isoformat()
        write_manifest(state_dir, record)
    return {"path": path, "run_id": records[0]["run_id"], **checksums}
