"""DPS's answer on the SFTP server: waiting until it is complete, fetching it whole, and
moving or deleting it once the reports are published (§4)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.answer import MAX_COUNTS_BYTES, parse_counts
from exchange.archive import Archive, ArchivedFile
from exchange.config import DpsFileSettings, ReceiveSettings, SftpSettings
from exchange.errors import FileChangedError, InputError, NotReadyError, WaitExpiredError
from exchange.periods import Period
from exchange.records import ReceiveRecord, SendRecord
from exchange.sftp import RemoteFile, SftpSession, connect_sftp, join_remote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnswerPlace:
    """Where DPS's answer to one exchange is: the server, its folder, the two file names."""

    sftp: SftpSettings
    files: DpsFileSettings
    names: tuple[str, str]           # (results file, counts file)

    @property
    def folder(self) -> str:
        return self.sftp.answer_folder


def remote_names(file_config: DpsFileSettings, period: Period, today: dt.date
                 ) -> tuple[str, str]:
    """The answer's file names, with {period} (FY2025_Q3) and {date} (the run date) filled."""
    values = {"period": period.file_label, "date": today.strftime("%Y%m%d")}
    return (file_config.results_name.format(**values),
            file_config.counts_name.format(**values))


@dataclass
class Look:
    files: dict[str, RemoteFile | None]
    at: float
    records_received: int | None = None
    counts_error: str | None = None      # why the counts file could not be read, if so

    def signature(self) -> tuple[Any, ...]:
        return tuple((f.size, f.mtime) if f else None for f in self.files.values())

    def present(self) -> dict[str, RemoteFile]:
        """The files of a look that found both (a complete answer)."""
        missing = [name for name, f in self.files.items() if f is None]
        if missing:
            raise InputError(f"{missing[0]}: no longer on the server")
        return {name: f for name, f in self.files.items() if f is not None}


def look_at_answer(session: SftpSession, place: AnswerPlace) -> Look:
    names = place.names
    files = {name: session.stat_file(join_remote(place.folder, name)) for name in names}
    look = Look(files, time.monotonic())
    counts_file = files[names[1]]
    if counts_file is not None and counts_file.size >= MAX_COUNTS_BYTES:
        look.counts_error = f"{names[1]}: {counts_file.size} bytes, too large for a counts file"
    elif counts_file is not None:
        try:
            counts = parse_counts(session.read_bytes(counts_file.path), names[1], place.files)
            look.records_received = counts["records_received"]
        except InputError as exc:
            look.counts_error = str(exc)   # still being written, or broken: judged by settling
    return look


def answer_state(look: Look, upload: SendRecord) -> str:
    """'' when this look could be the complete answer, else why not (for the progress line)."""
    missing = [name for name, f in look.files.items() if f is None]
    if missing:
        return "waiting for " + " and ".join(missing)
    older = [name for name, f in look.files.items() if f and f.mtime < upload.remote_mtime]
    if older:
        return "only an older answer is there (" + ", ".join(older) + ")"
    if look.counts_error:
        return f"counts file not readable yet ({look.counts_error})"
    if look.records_received != upload.rows_sent:
        return (f"counts file says RECORDS_RECEIVED={look.records_received}, "
                f"we sent {upload.rows_sent}")
    return ""


def wait_for_answer(place: AnswerPlace, receive: ReceiveSettings, upload: SendRecord,
                    no_wait: bool) -> Look:
    """Poll until both files are there, newer than our upload, RECORDS_RECEIVED matches, and
    size and mtime are unchanged across two looks settle_seconds apart (§4)."""
    started = time.monotonic()
    deadline = started + receive.max_wait_hours * 3600
    previous: Look | None = None
    polls = 0
    while True:
        polls += 1
        with connect_sftp(place.sftp) as session:
            look = look_at_answer(session, place)
        state = answer_state(look, upload)
        unchanged = (previous is not None and previous.signature() == look.signature()
                     and look.at - previous.at >= receive.settle_seconds - 0.01)
        if unchanged and not state and not answer_state(previous, upload):
            log.info("answer complete after %d look(s), %.0f s", polls, time.monotonic() - started)
            check_answer_size(look, receive.max_answer_mib)
            return look
        if unchanged and look.counts_error and state.startswith("counts file not readable"):
            # Written completely (it stopped changing) and still unreadable: a broken answer.
            raise InputError(f"{look.counts_error}; nothing published")
        log.info("poll %d: %s (waited %.1f of %.0f min)", polls,
                 state or "answer there; checking it has stopped changing",
                 (time.monotonic() - started) / 60, receive.max_wait_hours * 60)
        pause = next_pause(receive, state, no_wait, polls, place.folder)
        if time.monotonic() + pause > deadline:
            raise WaitExpiredError(f"DPS answer not complete after {receive.max_wait_hours:g} h "
                                   f"in {place.folder}: {state or 'still changing'}")
        previous = look
        time.sleep(pause)


def check_answer_size(look: Look, max_mib: int) -> None:
    """DPS's files on the server must not be larger than receive.max_answer_mib: a larger one
    is refused before it is fetched (parsing it would take gigabytes of memory)."""
    for name, remote in look.files.items():
        if remote is not None and remote.size > max_mib * 1024 * 1024:
            raise InputError(f"{name}: {remote.size} bytes, more than receive.max_answer_mib="
                             f"{max_mib} MiB; refused before it was fetched, nothing published "
                             f"(DPS's files stay on the server)")


def check_local_answer_size(path: Path, max_mib: int) -> None:
    """The same limit on a local copy (fetched, or read back from the archive), before it is
    read into memory and parsed."""
    size = path.stat().st_size
    if size > max_mib * 1024 * 1024:
        raise InputError(f"{path.name}: {size} bytes, more than receive.max_answer_mib="
                         f"{max_mib} MiB; refused before it was parsed, nothing published")


def next_pause(receive: ReceiveSettings, state: str, no_wait: bool, polls: int,
               folder: str) -> float:
    """Seconds until the next look; with --no-wait, the second look is the last."""
    if no_wait and polls >= 2:
        raise NotReadyError(f"DPS answer not complete yet in {folder}: "
                            f"{state or 'still changing'} (--no-wait)")
    return receive.settle_seconds if (not state or no_wait) else receive.poll_seconds


def answer_still_on_server(place: AnswerPlace, upload: SendRecord) -> Look | None:
    """DPS's files when they are still in TO_DFPS (to clean them up after an interrupted run)."""
    with connect_sftp(place.sftp) as session:
        look = look_at_answer(session, place)
    present = all(f is not None and f.mtime >= upload.remote_mtime for f in look.files.values())
    return look if present else None


def fetch_answer(place: AnswerPlace, look: Look, staging: Path) -> dict[str, Path]:
    """Download both files to staging; a file changing during the fetch is fetched once more,
    then it is a whole-file fault."""
    fetched = {}
    with connect_sftp(place.sftp) as session:
        for name, remote in look.present().items():
            fetched[name] = fetch_one(session, place.sftp, name, remote, staging)
            log.info("fetched %s (%d bytes)", name, fetched[name].stat().st_size)
    return fetched


def fetch_one(session: SftpSession, sftp: SftpSettings, name: str, remote: RemoteFile,
              staging: Path) -> Path:
    try:
        return download(session, sftp, remote, staging)
    except FileChangedError as exc:
        log.warning("%s changed while it was fetched; fetching it once more", name)
        again = session.stat_file(remote.path)
        if again is None:
            raise InputError(f"{name}: disappeared during the fetch") from exc
        try:
            return download(session, sftp, again, staging)
        except FileChangedError as exc_again:
            raise InputError(f"{name}: changed while it was fetched, twice in a row; nothing "
                             f"published") from exc_again


def download(session: SftpSession, sftp: SftpSettings, remote: RemoteFile, staging: Path
             ) -> Path:
    return session.download(remote, staging, sftp.download_prefetch,
                            sftp.max_concurrent_prefetch_requests, sftp.download_request_kib)


def archived_answer(reported: ReceiveRecord, archive: Archive, staging: Path
                    ) -> tuple[Path, Path]:
    """(results, counts) as an earlier run archived them, as plain working copies in staging
    (the archive may be encrypted). By their role in the record, not their names: names with
    {date} differ from one run date to the next."""
    purged = reported.purged
    copies = []
    for stored in reported.archived_answer():
        name = stored.name.split("_", 1)[1]
        if str(stored) in purged:
            raise InputError(f"{stored}: archived DPS file {name} was purged on "
                             f"{purged[str(stored)]} (archive.retention_years); this period "
                             f"can no longer be regenerated")
        if not stored.is_file():
            raise InputError(f"{stored}: archived DPS file {name} is missing")
        copies.append(archive.copy_out(stored, staging / name))
    if len(copies) != 2:
        raise InputError(f"run {reported.run_id}: its archived DPS files are not recorded")
    return copies[0], copies[1]


def keep_refused_answer(archive: Archive, archive_folder: Path, run_id: str,
                        files: list[Path]) -> list[ArchivedFile]:
    """A refused answer is evidence for DPS: keep a copy before DPS overwrites it."""
    kept = archive.store_all(files, archive_folder, f"{run_id}_refused")
    log.info("kept the refused answer in %s", archive_folder)
    return kept


def clean_up_remote(sftp: SftpSettings, look: Look, run_id: str) -> None:
    """Only after the reports are published: move, delete or keep DPS's files remote-side."""
    if sftp.after_processing == "keep":
        return
    with connect_sftp(sftp) as session:
        for name, remote in look.present().items():
            if sftp.after_processing == "delete":
                session.remove(remote.path)
                log.info("removed %s from the server", remote.path)
            else:
                target = session.move(remote.path, sftp.processed_folder, f"{run_id}_{name}")
                log.info("moved %s to %s on the server", remote.path, target)
