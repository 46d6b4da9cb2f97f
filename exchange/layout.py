"""Where everything lives on this machine, built from the `folders` settings: every path a run
reads or writes is answered here, so a folder's name is spelled once (README "Folders")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.periods import Period
from exchange.settings import FolderSettings

QUEUE, DRY_RUN = "reports", "dry-run"   # the outbox's report folders


@dataclass(frozen=True)
class Layout:
    folders: FolderSettings

    @classmethod
    def from_config(cls, config: Any) -> Layout:
        return cls(config.folders)

    # --- the outbox: files waiting to go out ------------------------------------------------
    def outbox_for(self, step: str) -> Path:
        """What a send wrote and has not yet archived (outbox/send)."""
        return self.folders.outbox / step

    @property
    def queue(self) -> Path:
        """Reports waiting for delivery, one folder per period (outbox/reports)."""
        return self.folders.outbox / QUEUE

    def reports_for(self, period: Period, dry_run: bool = False) -> Path:
        """Where a receive writes a period's reports: the queue, or the dry-run folder."""
        return self.folders.outbox / (DRY_RUN if dry_run else QUEUE) / period.file_label

    # --- staging, archive, state ------------------------------------------------------------
    def staging_for(self, run_id: str) -> Path:
        return self.folders.staging / run_id

    def archive_root(self, step: str) -> Path:
        return self.folders.archive / step

    def archive_for(self, step: str, period: Period) -> Path:
        return self.archive_root(step) / period.file_label

    @property
    def trend_file(self) -> Path:
        """The trend history (§8): per period and region, the reports' counts."""
        return self.folders.state / "trend.csv"

    @property
    def share(self) -> Path:
        return self.folders.share
