"""No plain copy of children's data outside the archive and the share when a run ends.

Each run of a step writes working copies: the send step its files in outbox/send (the text
file for DPS, end_export.xlsx, the two indexes), the receive step DPS's answer in
staging/<run id> and the reports in the outbox's delivery queue. When the run ends, however it
ends (success, nothing new, dry run, failure, Ctrl-C or SIGTERM), `plain_copies_cleared`
removes what is no longer needed:

- outbox/send: removed, except after a dry run (its files are what the operator asked to
  look at; they stay until a send writes its own files there: a send refused before its
  query, or one whose database is down, leaves them), and except when a send uploaded its
  file but did not archive it ("uploaded, archive pending", exchange/recovery.py): those
  files are what reached DPS, and the next send archives them first, whatever IMPACT holds by
  then. They wait encrypted when `archive.encrypt` is on. Any other failed send keeps
  nothing: the rerun builds the files from IMPACT again.
- staging: removed (DPS's answer stays on the server until the reports are out, and in the
  archive once archived).
- the delivery queue (outbox/reports): undelivered reports are what a failure keeps to
  resume; with `archive.encrypt` on they are encrypted in place with the archive's current key
  and decrypted again by the next receive run before it delivers them.

A run killed outright (kill -9, power loss) cannot clean up: the next run of the same step
does it first, under the step's lock. The receive step's dry-run reports (outbox/dry-run)
are its product and stay, 0600 in a private folder, until the next dry run replaces them.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from exchange.config import Config
from exchange.errors import ConfigError, DpsError, InputError
from exchange.files import atomic_write_bytes
from exchange.layout import Layout

log = logging.getLogger(__name__)

SEND, RECEIVE = "send", "receive"
# staging/<run id> of a receive run (records.new_run_id): only these are ever removed from
# staging, in case folders.staging is set to a folder that holds anything else
RECEIVE_RUN_FOLDER = re.compile(r"[0-9]{8}T[0-9]{6}Z-receive-[0-9a-f]+")


@contextmanager
def plain_copies_cleared(config: Config, step: str, manifest: dict[str, Any]) -> Iterator[None]:
    """Around a run's steps: a killed run's leftovers go first; the run's own when it ends."""
    clear_leftovers(config, step, at_start=True)
    try:
        yield
    finally:
        try:
            clear_leftovers(config, step, at_start=False,
                            dry_run=bool(manifest.get("dry_run")))
        except (DpsError, OSError) as exc:
            log.warning("plain working copies not cleared (%s); the next %s run clears them",
                        exc, step)


def clear_leftovers(config: Config, step: str, at_start: bool, dry_run: bool = False) -> None:
    """The working copies of `step` that must not outlive a run (see the module's text)."""
    folders = config.folders
    if step == SEND and upload_awaits_its_archive(config):
        files = sorted(p for p in (folders.outbox / SEND).glob("*") if p.is_file())
        if at_start:
            open_queue(config, files)     # the send archives them first
        else:
            seal_queue(config, files)
    elif step == SEND and not (dry_run and not at_start) and not dry_run_files_stay(config):
        removed = remove_contents(folders.outbox / SEND)
        if removed and at_start:
            log.info("removed %d file(s) an earlier send run left in %s", removed,
                     folders.outbox / SEND)
    if step == RECEIVE:
        removed = remove_contents(folders.staging, RECEIVE_RUN_FOLDER)
        if removed and at_start:
            log.info("removed %d leftover(s) of an earlier receive run in %s", removed,
                     folders.staging)
        queue = sorted(Layout(folders).queue.glob("*/*.xlsx"))
        if at_start:
            open_queue(config, queue)
        else:
            seal_queue(config, queue)


def upload_awaits_its_archive(config: Config) -> bool:
    """Whether a send uploaded its file but never archived it (its files must wait)."""
    from exchange.records import sends
    from exchange.recovery import archive_pending

    return any(archive_pending(run) and not run.archive_lost
               for run in sends(config.folders.state))


def dry_run_files_stay(config: Config) -> bool:
    """Whether outbox/send holds a dry run's files: the latest send run that began writing
    there (`writes_outbox` in its record) is a dry run that ended. A run killed while writing
    has no exit code: its leftovers go."""
    from exchange.records import sends

    writers = [run for run in sends(config.folders.state) if run.writes_outbox]
    return bool(writers) and writers[-1].dry_run and writers[-1].exit_code is not None


def remove_contents(folder: Path, names: re.Pattern[str] | None = None) -> int:
    """Remove every file and folder inside `folder` (not the folder) whose name matches
    `names` (all when None); how many went."""
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        if names is not None and not names.fullmatch(path.name):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed += 1
    return removed


def seal_queue(config: Config, queue: list[Path]) -> None:
    """Encrypt the files a failure keeps to resume (undelivered reports, an upload's files
    awaiting their archive) in place when the archive is encrypted."""
    from exchange.vault import is_encrypted, seal

    if not config.archive.encrypt or not queue:
        return
    ring = archive_keys(config)
    for path in queue:
        if not is_encrypted(path):
            atomic_write_bytes(path, seal(path.read_bytes(), ring.current_id, ring.current_key))
    log.info("%d file(s) kept encrypted in %s until the next run", len(queue),
             queue[0].parent)


def open_queue(config: Config, queue: list[Path]) -> None:
    """Decrypt what an earlier run left encrypted, so it can be delivered or archived. One
    that cannot be decrypted stops the run (never deliver ciphertext as a workbook)."""
    from exchange.vault import is_encrypted, read_plain

    sealed = [path for path in queue if is_encrypted(path)]
    if not sealed:
        return
    ring = archive_keys(config)
    for path in sealed:
        try:
            atomic_write_bytes(path, read_plain(path, ring))
        except InputError as exc:
            raise ConfigError(f"{path} (kept by an earlier run) is encrypted and does not "
                              f"open with the archive's keys ({exc}); check archive.key_file / "
                              f"archive.key_env / archive.old_keys") from exc


def archive_keys(config: Config) -> Any:
    from exchange.archive import key_ring

    return key_ring(config.archive, config.folder)
