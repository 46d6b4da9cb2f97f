"""Where everything lives on this machine, built from the `folders` settings: every path a run
reads or writes is answered here, so a folder's name is spelled once (README "Folders")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.periods import Period
from exchange.settings import FolderSettings

QUEUE, DRY_RUN = "reports", "dry-run"   # the outbox's report folders
AUDIT_FILE_NAME = "audit.jsonl"         # in the logs folder


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

    def manifests(self, step: str) -> Path:
        """The run records of a step (state/manifests/<step>)."""
        from exchange.records import manifest_dir

        return manifest_dir(self.folders.state, step)

    def lock_file(self, step: str) -> Path:
        """Held by a run of the step for its whole length (state/<step>.lock)."""
        return self.folders.state / f"{step}.lock"

    # --- logs -----------------------------------------------------------------------------
    def log_file(self, step: str, run_id: str) -> Path:
        """One run's log (logs/<step>_<run id>.log)."""
        return self.folders.logs / f"{step}_{run_id}.log"

    @property
    def audit_file(self) -> Path:
        """The hash-chained audit trail (logs/audit.jsonl)."""
        return self.folders.logs / AUDIT_FILE_NAME

    @property
    def share(self) -> Path:
        return self.folders.share
