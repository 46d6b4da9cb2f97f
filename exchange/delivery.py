"""Delivering the reports to every target (the network share, a SharePoint library): from the
outbox queue, verified, then archived. Each target is delivered and recorded on its own: what
a target did not get stays queued, and the next run delivers only what is missing.

The queue is outbox/reports/<period>/: the workbooks, and `.delivered.json`, which says which
target holds which workbook (by SHA-256). A workbook leaves the queue, into the archive, once
every target holds it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from exchange.archive import Archive, ArchivedFile
from exchange.config import Config, SharePointSettings, secret_from_env
from exchange.errors import DeliveryError, LocalFileError
from exchange.files import atomic_write_bytes, copy_verified, describe_os_error, sha256_file
from exchange.layout import Layout
from exchange.periods import parse_period

log = logging.getLogger(__name__)

STATE_NAME = ".delivered.json"


@dataclass
class Delivery:
    """What one run delivered: per target, where each file now is, and the proofs."""

    locations: dict[str, dict[str, str]] = field(default_factory=dict)  # target -> file -> where
    proofs: list[dict[str, Any]] = field(default_factory=list)          # SharePoint's replies
    failures: dict[str, str] = field(default_factory=dict)             # target -> one line
    archived: list[ArchivedFile] = field(default_factory=list)         # reports all targets hold
    places: list[str] = field(default_factory=list)    # each target's place, as its label says
    labels: dict[str, str] = field(default_factory=dict)   # target name -> its label

    def where(self, target: str, name: str, location: str) -> None:
        self.locations.setdefault(target, {})[name] = location

    def every_location(self) -> list[str]:
        return [where for files in self.locations.values() for where in files.values()]

    def check(self) -> None:
        """One line naming every target that failed (DeliveryError); nothing if none did."""
        if self.failures:
            raise DeliveryError("; ".join(self.failures.values()))


class Target(Protocol):
    """A place reports go to. Each target says its own name (as in reports.deliver_to) and
    where it delivers (for the run record, --status and the alert)."""

    name: str
    label: str      # how --status names it ("the share")

    @property
    def place(self) -> str: ...

    def deliver(self, report: Path) -> tuple[str, dict[str, Any] | None]: ...

    def close(self) -> None: ...


class ShareTarget:
    """The network share: a temp name, rename, size and SHA-256 checked. Never created."""

    name = "share"
    label = "the share"

    def __init__(self, config: Config) -> None:
        self.folder = config.folders.share
        self.mode = int(config.reports.share_file_mode, 8)
        self.queue = Layout.from_config(config).queue

    @property
    def place(self) -> str:
        return str(self.folder)

    def deliver(self, report: Path) -> tuple[str, dict[str, Any] | None]:
        if not self.folder.is_dir():
            raise DeliveryError(f"share {self.folder}: not reachable (no such folder); reports "
                                f"stay queued in {self.queue}")
        target = self.folder / report.name
        try:
            copy_verified(report, target, self.mode)
        except LocalFileError as exc:
            reason = describe_os_error(exc.__cause__) \
                if isinstance(exc.__cause__, OSError) else str(exc)
            raise DeliveryError(f"share {target}: cannot write ({reason}); reports stay "
                                f"queued in {report.parent}") from exc
        return str(target), None

    def close(self) -> None:
        return None


class SharePointTarget:
    """A SharePoint document library through Microsoft Graph; signs in on first use."""

    name = "sharepoint"
    label = "SharePoint"

    def __init__(self, settings: SharePointSettings) -> None:
        self.settings = settings
        self.client: Any = None

    @property
    def place(self) -> str:
        settings = self.settings
        return f"SharePoint {settings.site_host}{settings.site_path} ({settings.library})"

    def deliver(self, report: Path) -> tuple[str, dict[str, Any] | None]:
        from exchange.graph import connect

        if self.client is None:
            self.client = connect(graph_settings(self.settings))
        period = parse_period(report.parent.name)
        folder = self.settings.folder.format(fiscal_year=f"FY{period.fiscal_year}",
                                             quarter=f"Q{period.quarter}",
                                             period=period.file_label)
        item = self.client.upload(report, folder)
        if item.office_rewritten:
            log.info("sharepoint stored %s with library metadata (size/hash changed, as "
                     "SharePoint does for Office files)", report.name)
        return item.web_url, {"file": report.name, "item_id": item.item_id,
                              "size": item.size, "local_quick_xor": item.local_quick_xor,
                              "remote_quick_xor": item.remote_quick_xor,
                              "office_rewritten": item.office_rewritten}

    def close(self) -> None:
        if self.client is not None:
            self.client.close()


def graph_settings(settings: SharePointSettings) -> Any:
    """The Graph client's settings, secrets read from the environment variables named."""
    from exchange.graph_auth import FRAGMENT_UNIT, GraphSettings

    return GraphSettings(
        tenant_id=settings.tenant_id, client_id=settings.client_id,
        login_host=settings.login_host, graph_host=settings.graph_host,
        certificate_file=settings.certificate_file, private_key_file=settings.private_key_file,
        private_key_passphrase=secret_from_env(settings.private_key_passphrase_env,
                                               "sharepoint.private_key_passphrase_env"),
        client_secret=secret_from_env(settings.client_secret_env, "sharepoint.client_secret_env"),
        ca_file=settings.ca_file, site_host=settings.site_host, site_path=settings.site_path,
        library=settings.library, timeout_seconds=settings.timeout_seconds,
        max_tries=settings.max_tries,
        chunk_bytes=settings.fragment_kib * 1024 // FRAGMENT_UNIT * FRAGMENT_UNIT)


def make_targets(config: Config) -> list[Target]:
    """The configured targets, in the order reports.deliver_to lists them."""
    makers = {ShareTarget.name: lambda: ShareTarget(config),
              SharePointTarget.name: lambda: SharePointTarget(config.sharepoint)}
    return [makers[name]() for name in dict.fromkeys(config.reports.deliver_to)]


# ---------------------------------------------------------------------------
# The queue
# ---------------------------------------------------------------------------


def queued_reports(queue: Path) -> list[Path]:
    """The reports waiting in the queue (Layout.queue), one folder per period."""
    return sorted(queue.glob("*/*.xlsx")) if queue.is_dir() else []


def read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        log.warning("%s is unreadable; every target gets the reports again", path)
        return {}


def write_state(folder: Path, state: dict[str, Any]) -> None:
    data = json.dumps(state, indent=2, sort_keys=True).encode("utf-8")
    atomic_write_bytes(folder / STATE_NAME, data)


def deliver_reports(config: Config, archive: Archive, archive_dir: Path, run_id: str,
                    targets: list[Target] | None = None) -> Delivery:
    """Deliver every queued report to every target that does not hold it yet; archive a report
    (in archive_dir/<period>) and take it off the queue once all targets hold it. A target
    that fails is skipped for the rest of the run and named in `failures` (the caller raises
    with Delivery.check once it has recorded what was delivered)."""
    targets = make_targets(config) if targets is None else targets
    delivery = Delivery(places=[target.place for target in targets],
                        labels={target.name: target.label for target in targets})
    try:
        for report in queued_reports(Layout.from_config(config).queue):
            deliver_one(report, targets, delivery)
            delivery.archived += finish_if_complete(report, [t.name for t in targets], archive,
                                                    archive_dir, run_id)
    finally:
        for target in targets:
            target.close()
    return delivery


def deliver_one(report: Path, targets: list[Target], delivery: Delivery) -> None:
    state = read_state(report.parent)
    checksum = sha256_file(report)
    entry = state.get(report.name, {})
    if entry.get("sha256") != checksum:
        entry = {"sha256": checksum, "targets": {}}
    for target in targets:
        if target.name in delivery.failures:
            continue
        if target.name not in entry["targets"]:
            try:
                location, proof = target.deliver(report)
            except DeliveryError as exc:
                delivery.failures[target.name] = str(exc)
                continue
            entry["targets"][target.name] = location
            state[report.name] = entry
            write_state(report.parent, state)
            delivery.proofs += [proof] if proof else []
            log.info("delivered %s to %s", report.name, target.name)
        delivery.where(target.name, report.name, entry["targets"][target.name])


def finish_if_complete(report: Path, names: list[str], archive: Archive, archive_dir: Path,
                       run_id: str) -> list[ArchivedFile]:
    """Archive a report every target holds and take it off the queue."""
    state = read_state(report.parent)
    held = state.get(report.name, {}).get("targets", {})
    if any(name not in held for name in names):
        return []
    stored = archive.store(report, archive_dir / report.parent.name, run_id)
    report.unlink()
    state.pop(report.name, None)
    if state:
        write_state(report.parent, state)
    else:
        (report.parent / STATE_NAME).unlink(missing_ok=True)
    return [stored]
