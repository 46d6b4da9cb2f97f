"""Delivering the reports: from the outbox queue to the network share, verified, then
archived. What fails stays queued, and the next run delivers it."""

from __future__ import annotations

import logging
from pathlib import Path

from exchange.config import Config
from exchange.errors import DeliveryError, LocalFileError
from exchange.files import archive_file, copy_verified, describe_os_error

log = logging.getLogger(__name__)

def queued_reports(outbox: Path) -> list[Path]:
    folder = outbox / "reports"
    return sorted(folder.glob("*/*.xlsx")) if folder.is_dir() else []


def deliver_reports(config: Config, archive_dir: Path, run_id: str) -> list[str]:
    """Copy every queued report to the share (temp name, rename, size and SHA-256 checked),
    then archive it in archive_dir/<period> and take it off the queue. A failure leaves the
    queue as it is."""
    share = config.folders.share
    mode = int(config.reports.share_file_mode, 8)
    delivered = []
    if not share.is_dir():
        raise DeliveryError(f"share {share}: not reachable (no such folder); reports stay "
                            f"queued in {config.folders.outbox / 'reports'}")
    for report in queued_reports(config.folders.outbox):
        target = share / report.name
        try:
            copy_verified(report, target, mode)
        except LocalFileError as exc:
            reason = describe_os_error(exc.__cause__) \
                if isinstance(exc.__cause__, OSError) else str(exc)
            raise DeliveryError(f"share {target}: cannot write ({reason}); reports stay "
                                f"queued in {report.parent}") from exc
        archive_file(report, archive_dir / report.parent.name, run_id)
        report.unlink()
        delivered.append(str(target))
        log.info("delivered %s", target)
    return delivered

