"""Run records: one JSON manifest per run in state/manifests/<step>/<run-id>.json.

A manifest says what a run achieved (its outcome), how it ended (exit code and error), and
what it did on the way (steps with their status and seconds, files, counts, checksums; never
a field value). The queries here ("the latest upload", "the sends already answered") are the
only places that read other runs' records.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from exchange.errors import RunStateError, UsageError
from exchange.files import atomic_write_bytes

log = logging.getLogger(__name__)

SEND, RECEIVE = "send", "receive"

# Outcomes: what a run achieved. A failure after an achievement keeps the achievement as the
# outcome; the error and exit code say how the run ended.
RUNNING = "running"
FAILED = "failed"
NOT_READY = "not ready"
WAIT_EXPIRED = "wait expired"
DRY_RUN = "dry run"
UPLOADED = "uploaded"
SKIPPED_IDENTICAL = "skipped as identical"
REPORTED = "reported"
NOTHING_NEW = "nothing new"
REFUSED_UNANSWERED = "refused: previous send unanswered"   # one exchange at a time (§4)
REFUSALS = (REFUSED_UNANSWERED,)   # outcomes of a run refused by design, not a failure
ANSWERED = (REPORTED, NOTHING_NEW)

# What each archived file is, by role (new records keep `archived_roles`; older ones are read
# by the roles' old spelling: send files by their name's ending, DPS's files by their order).
SEND_ROLES = {"dps_text": None, "export": None, "sent_index": "_sent_index.csv",
              "excluded_index": "_excluded_index.csv"}
RECEIVE_ROLES = ("results", "counts")

# The reliability suite sets this to a step name to have the run killed (SIGKILL) right after
# that step is recorded as done: the crash-and-resume tests. Never set it in production.
FAULT_KILL_AFTER_ENV = "DPS_FAULT_KILL_AFTER"


def manifest_dir(state_dir: Path, step: str) -> Path:
    return state_dir / "manifests" / step


def write_manifest(state_dir: Path, manifest: dict[str, Any]) -> Path:
    folder = manifest_dir(state_dir, manifest["step"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{manifest['run_id']}.json"
    data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode("utf-8")
    atomic_write_bytes(path, data)
    return path


def read_manifests(state_dir: Path, step: str) -> list[dict[str, Any]]:
    """All manifests of a step, oldest first (run ids start with a UTC timestamp)."""
    folder = manifest_dir(state_dir, step)
    manifests = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifests.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            log.warning("manifest %s is unreadable; ignored", path)
    manifests.sort(key=lambda m: (m.get("started_at", ""), m.get("run_id", "")))
    return manifests


def read_manifest(state_dir: Path, step: str, run_id: str) -> dict[str, Any]:
    """One earlier run's record."""
    path = manifest_dir(state_dir, step) / f"{run_id}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def update_manifest(state_dir: Path, step: str, run_id: str, **fields: Any) -> None:
    """Record something in an earlier run's record (a later run completed its step)."""
    manifest = read_manifest(state_dir, step, run_id)
    manifest.update(fields)
    write_manifest(state_dir, manifest)


# ---------------------------------------------------------------------------
# Earlier runs, typed: what the queries return (the JSON on disk is unchanged, so records of
# every version load; a key a version did not write reads as its default)
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PastRun:
    """What every run record says."""

    step: str = ""
    run_id: str = ""
    outcome: str = ""
    period: str = ""
    run_date: str = ""
    started_at: str = ""
    finished_at: str = ""
    exit_code: int | None = None
    error: str = ""
    pid: int | None = None
    dry_run: bool = False
    steps: dict = field(default_factory=dict)
    archived: list = field(default_factory=list)          # archived files, every role
    archived_roles: dict = field(default_factory=dict)    # role -> archived file (new records)
    archive_checksums: dict = field(default_factory=dict)
    purged: dict = field(default_factory=dict)            # archived file -> purge date
    summary: str = ""                                     # counts, for --status
    where: str = ""                                       # where its files went

    @classmethod
    def of(cls, manifest: dict[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in manifest.items() if k in known and v is not None})

    def done(self, step: str) -> bool:
        return self.steps.get(step, {}).get("status") == "done"


@dataclass(frozen=True)
class SendRecord(PastRun):
    rows_queried: int = 0
    rows_sent: int = 0
    rows_excluded: int = 0
    sha256: str = ""
    uploaded_at: str = ""
    remote_path: str = ""
    remote_size: int = 0
    remote_mtime: int = 0
    archive_lost: str = ""
    writes_outbox: bool = False          # began writing its files to the outbox
    unanswered_upload: str = ""          # refused: the upload still waiting for its answer

    def archived_as(self, role: str) -> Path | None:
        """The archived file of a role (SEND_ROLES); older records by the file's ending."""
        if role in self.archived_roles:
            return Path(self.archived_roles[role])
        ending = SEND_ROLES[role]
        return next((Path(p) for p in self.archived if ending and p.endswith(ending)), None)


@dataclass(frozen=True)
class ReceiveRecord(PastRun):
    send_run_id: str = ""
    inputs: dict = field(default_factory=dict)
    report_settings: dict = field(default_factory=dict)
    sa_98_range: list = field(default_factory=list)        # [from, to] fetched (ISO dates)
    sa_98_key: str = ""                                    # values_checksum of those rows
    reports: list = field(default_factory=list)
    delivered: list = field(default_factory=list)          # older records: share paths
    delivered_to: dict | None = None                       # target -> file -> where
    delivery_labels: dict = field(default_factory=dict)    # target -> its label
    archived_reports: list = field(default_factory=list)
    mailed: bool = False
    mail_error: str = ""
    pending_mail: dict = field(default_factory=dict)

    def archived_answer(self) -> list[Path]:
        """DPS's files as archived, results then counts (older records: by their order)."""
        if all(role in self.archived_roles for role in RECEIVE_ROLES):
            return [Path(self.archived_roles[role]) for role in RECEIVE_ROLES]
        return [Path(p) for p in self.archived[:len(RECEIVE_ROLES)]]


def sends(state_dir: Path) -> list[SendRecord]:
    return [SendRecord.of(m) for m in read_manifests(state_dir, SEND)]


def receives(state_dir: Path) -> list[ReceiveRecord]:
    return [ReceiveRecord.of(m) for m in read_manifests(state_dir, RECEIVE)]


# ---------------------------------------------------------------------------
# Queries over earlier runs
# ---------------------------------------------------------------------------


def uploads(state_dir: Path) -> list[SendRecord]:
    """The sends that uploaded a file, oldest first."""
    return [m for m in sends(state_dir) if m.outcome == UPLOADED]


def latest_upload(state_dir: Path) -> SendRecord | None:
    found = uploads(state_dir)
    return found[-1] if found else None


def last_upload_for_period(state_dir: Path, period_label: str) -> SendRecord | None:
    matching = [m for m in uploads(state_dir) if m.period == period_label]
    return matching[-1] if matching else None


def answered_send_runs(state_dir: Path) -> set[str]:
    """Run ids of the sends whose answer a receive has reported (or found nothing new in)."""
    return {m.send_run_id for m in receives(state_dir) if m.outcome in ANSWERED}


def receives_of(state_dir: Path, send_run_id: str) -> list[ReceiveRecord]:
    return [m for m in receives(state_dir) if m.send_run_id == send_run_id]


def last_report_for(state_dir: Path, period_label: str) -> ReceiveRecord | None:
    done = [m for m in receives(state_dir) if m.outcome == REPORTED and m.period == period_label]
    return done[-1] if done else None


def send_runs_by_id(state_dir: Path) -> dict[str, SendRecord]:
    return {m.run_id: m for m in sends(state_dir)}


def step_done(run: PastRun | None, step: str) -> bool:
    return run is not None and run.done(step)


# ---------------------------------------------------------------------------
# This run's record
# ---------------------------------------------------------------------------


def new_run_id(step: str, now: dt.datetime | None = None) -> str:
    import secrets

    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{step}-{secrets.token_hex(2)}"


class RunRecord:
    """This run's manifest, saved as the run goes: each step's intent before it and its
    completion after it, so a later run knows where an interrupted one stopped."""

    def __init__(self, step: str, run_id: str) -> None:
        self.manifest: dict[str, Any] = {
            "step": step, "run_id": run_id, "outcome": RUNNING, "pid": os.getpid(),
            "started_at": dt.datetime.now(dt.UTC).isoformat(), "steps": {}}
        self.state_dir: Path | None = None   # set once the lock is held

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    @property
    def outcome(self) -> str:
        return self.manifest["outcome"]

    def update(self, **fields: Any) -> None:
        self.manifest.update(fields)

    def save(self) -> None:
        if self.state_dir is not None:
            write_manifest(self.state_dir, self.manifest)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Record the intent (started) before the step and its completion after it."""
        entry = {"status": "started"}
        self.manifest["steps"][name] = entry
        self.save()
        started = time.monotonic()
        try:
            yield
        except BaseException:
            entry["status"] = "failed"
            raise
        else:
            entry["status"] = "done"
        finally:
            entry["seconds"] = round(time.monotonic() - started, 3)
            self.save()
        if os.environ.get(FAULT_KILL_AFTER_ENV) == name:
            os.kill(os.getpid(), signal.SIGKILL)

    def finish(self, code: int, outcome: str | None = None) -> int:
        """Record how the run ended (and, if given, what it achieved); returns the exit code."""
        if outcome is not None:
            self.manifest["outcome"] = outcome
        self.manifest["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
        self.manifest["exit_code"] = code
        self.save()
        log.info("outcome: %s", self.manifest["outcome"])
        return code

    def fail(self, message: str, code: int, ended_as: str) -> None:
        """Record a failure. What the run achieved stays its outcome (a file that reached DPS
        stays "uploaded"); only a run that achieved nothing takes `ended_as` as its outcome."""
        if self.manifest["outcome"] == RUNNING:
            self.manifest["outcome"] = ended_as
        self.manifest.update(error=message, exit_code=code,
                             finished_at=dt.datetime.now(dt.UTC).isoformat())
        self.save()


def choose_upload(state_dir: Path, period_label: str | None, missing_ok: bool = False
                  ) -> tuple[SendRecord | None, ReceiveRecord | None]:
    """(the send whose answer a receive processes, the last receive that reported it or None).

    The default is the latest upload. An earlier period can be named only when it was
    answered before: its archived DPS files are reprocessed.
    """
    latest = latest_upload(state_dir)
    if latest is None:
        if missing_ok:
            return None, None
        raise RunStateError("no upload recorded in the send manifests; run send2dps.py first")
    wanted = period_label or latest.period
    reported = last_report_for(state_dir, wanted)
    if wanted == latest.period:
        if reported and reported.send_run_id != latest.run_id:
            reported = None
        return latest, reported
    if reported is None:
        raise UsageError(f"--period {wanted}: the latest upload is {latest.period} "
                         f"(run {latest.run_id}) and {wanted} has no earlier answer in "
                         f"the archive")
    return send_runs_by_id(state_dir)[reported.send_run_id], reported


def interrupted_receive(state_dir: Path, send_run_id: str, run_id: str
                        ) -> ReceiveRecord | None:
    """The latest earlier receive of this upload when it archived DPS's answer but never
    finished (killed, or failed later, e.g. at delivery): a rerun goes on from its files."""
    attempts = [m for m in receives_of(state_dir, send_run_id) if m.run_id != run_id]
    if not attempts:
        return None
    latest = attempts[-1]
    unfinished = latest.outcome not in (*ANSWERED, DRY_RUN)
    if latest.done("archive") and unfinished and latest.archived:
        return latest
    return None
