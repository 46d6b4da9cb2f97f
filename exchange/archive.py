"""The archive: everything sent and received, per period and run, kept for years.

With `archive.encrypt` on, every file is stored encrypted (AES-256-GCM, exchange/vault.py)
under the current key, whose id each file's header names, so keys rotate without
re-encrypting: older keys stay in `archive.old_keys` for reading. Reading is transparent
(plain files of before still read). Each stored file is recorded with the SHA-256 of its plain
content and of the bytes on disk, so --verify-audit can check storage without the key and
content with it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.config import ArchiveSettings, Config
from exchange.errors import ConfigError, InputError
from exchange.files import copy_verified, sha256_file
from exchange.vault import KeyRing, KeySource, check_ring, encrypt_to, load_key_ring, read_plain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ArchivedFile:
    path: str
    sha256: str           # of the plain content
    stored_sha256: str    # of the bytes on disk (the same when not encrypted)


@dataclass(frozen=True)
class Archive:
    """Stores files into the archive and reads them back, encrypted when configured."""

    ring: KeyRing | None      # None: files are stored plain
    store_plain: bool = False  # a ring for reading files encrypted before, while encrypt is off

    def store(self, source: Path, folder: Path, run_id: str) -> ArchivedFile:
        """Copy `source` to folder/<run_id>_<name>, verified, 0600 (encrypted with the ring)."""
        target = folder / f"{run_id}_{source.name}"
        if self.ring is None or self.store_plain:
            checksum = copy_verified(source, target, 0o600)
            return ArchivedFile(str(target), checksum, checksum)
        plain, stored = encrypt_to(source, target, self.ring)
        return ArchivedFile(str(target), plain, stored)

    def store_all(self, sources: list[Path], folder: Path, run_id: str) -> list[ArchivedFile]:
        return [self.store(source, folder, run_id) for source in sources]

    def read(self, path: Path) -> bytes:
        """The plain content of an archived file (encrypted or not)."""
        return read_plain(path, self.ring)

    def copy_out(self, path: Path, target: Path) -> Path:
        """A plain working copy of an archived file (staging is short-lived and plain)."""
        from exchange.files import atomic_write_bytes

        atomic_write_bytes(target, self.read(path))
        return target


def key_source(key_id: str, file: Any, env: Any, setting: str) -> KeySource:
    if not key_id or (bool(file) == bool(env)):
        raise ConfigError(f"{setting}: give a key id and exactly one of a key file or an "
                          f"environment variable")
    return KeySource(str(key_id), Path(file) if file else None, str(env) if env else None)


def key_ring(settings: ArchiveSettings, folder: Path) -> KeyRing:
    """The current key and the older ones, from the files or variables the config names."""
    current = key_source(settings.key_id, settings.key_file, settings.key_env,
                         "archive.key_id/key_file/key_env")
    older = []
    for number, entry in enumerate(settings.old_keys, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"archive.old_keys item {number}: expected {{id, file or env}}")
        file = entry.get("file")
        older.append(key_source(entry.get("id", ""), (folder / file).resolve() if file else None,
                                entry.get("env"), f"archive.old_keys item {number}"))
    ring = load_key_ring(current, older)
    log.info("key ring: current key %s, %d older key(s); new archive files are stored %s",
             ring.current_id, len(ring.older),
             "encrypted" if settings.encrypt else "plain (the keys read files archived encrypted)")
    return ring


KEY_CHECK = b"dps-exchange archive key check"


def open_archive(config: Config) -> Archive:
    """The archive as configured; with encryption on, the keys are loaded and proved first (a
    wrong or missing key: one line, exit 2, nothing written)."""
    if not config.archive.encrypt:
        return plain_archive_reading_old_keys(config)
    ring = key_ring(config.archive, config.folder)
    check_ring(ring)
    check_keys_match_the_archive(ring, config.folders.archive, config.path)
    log.info("archive encryption on, key %s", ring.current_id)
    return Archive(ring)


def plain_archive_reading_old_keys(config: Config) -> Archive:
    """Encryption off: files are stored plain, but the configured key (if it loads) still
    reads what was archived encrypted before, so such a period can be regenerated (the same
    keys --verify-audit uses)."""
    if not config.archive.key_id:
        return Archive(None)
    try:
        return Archive(key_ring(config.archive, config.folder), store_plain=True)
    except ConfigError as exc:
        log.debug("archive stored plain; its keys do not load (%s)", exc)
        return Archive(None)


def check_keys_match_the_archive(ring: KeyRing, folder: Path,
                                 config_path: Path | str = "<config file>") -> None:
    """Each key id gets a small sealed probe in the archive the first time it is used; later
    a key under the same id must open it, so a wrong key is refused before anything runs."""
    from exchange.files import atomic_write_bytes
    from exchange.vault import seal

    folder.mkdir(parents=True, exist_ok=True)
    for key_id in ring.key_ids():
        probe = key_check_path(folder, key_id)
        if not probe.is_file():
            if first_file_with_key(folder, key_id) is not None:
                raise ConfigError(
                    f"archive key {key_id!r}: its check file {probe} is missing, but the "
                    f"archive holds files written under this key id; if archive.key_file / "
                    f"archive.key_env is the right key, re-create the check file with: "
                    f"{RECREATE_COMMAND} --config {config_path}")
            if key_id == ring.current_id:
                atomic_write_bytes(probe, seal(KEY_CHECK, key_id, ring.current_key))
            continue
        try:
            ok = read_plain(probe, ring) == KEY_CHECK
        except InputError:
            ok = False
        if not ok:
            raise ConfigError(f"archive key {key_id!r} is not the key the archive was written "
                              f"with ({probe} does not open); check archive.key_file / "
                              f"archive.key_env")


RECREATE_COMMAND = ".venv/bin/python -m exchange.archive --recreate-key-check"


def key_check_path(folder: Path, key_id: str) -> Path:
    return folder / f".key-check-{key_id}"


def first_file_with_key(folder: Path, key_id: str) -> Path | None:
    """An archived file written under `key_id` (None when there is none): a missing check file
    is only a first use when no file needs the key yet."""
    from exchange.vault import stored_key_id

    for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
        if path.is_file() and not path.name.startswith(".key-check"):
            try:
                if stored_key_id(path) == key_id:
                    return path
            except InputError:
                continue
    return None


def recreate_key_check(config: Config) -> str:
    """Write the current key's check file again, deliberately: only after the key has opened
    an archived file written under its id (AES-GCM authenticates, so a wrong key cannot)."""
    from exchange.files import atomic_write_bytes
    from exchange.vault import seal

    ring = key_ring(config.archive, config.folder)
    folder, key_id = config.folders.archive, ring.current_id
    probe = key_check_path(folder, key_id)
    sample = first_file_with_key(folder, key_id)
    if sample is None:
        raise ConfigError(f"archive key {key_id!r}: no archived file is written under this key "
                          f"id; the next run creates {probe} itself")
    try:
        read_plain(sample, ring)
    except InputError as exc:
        raise ConfigError(f"archive key {key_id!r} does not open {sample}, an archived file "
                          f"written under this key id: it is not the right key; "
                          f"{probe} not re-created") from exc
    atomic_write_bytes(probe, seal(KEY_CHECK, key_id, ring.current_key))
    return f"re-created {probe}: key {key_id!r} opened an archived file written with it"


def main(argv: list[str] | None = None) -> int:
    """python -m exchange.archive --recreate-key-check --config FILE"""
    import argparse
    import sys

    from exchange.config import load_config
    from exchange.errors import DpsError

    parser = argparse.ArgumentParser(prog="python -m exchange.archive",
                                     description=recreate_key_check.__doc__)
    parser.add_argument("--recreate-key-check", action="store_true", required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        print(recreate_key_check(load_config(args.config)))
    except DpsError as exc:
        print(f"python -m exchange.archive: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def open_archive_for_reading(config: Config) -> Archive:
    """For --verify-audit: the keys when they can be had, else storage is checked alone."""
    try:
        return Archive(key_ring(config.archive, config.folder)) \
            if config.archive.encrypt or config.archive.key_id else Archive(None)
    except ConfigError as exc:
        log.warning("archive keys not available (%s): content not checked", exc)
        return Archive(None)


def checksums(files: list[ArchivedFile]) -> dict[str, dict[str, str]]:
    """For the run record: path -> the plain and the stored SHA-256."""
    return {f.path: {"sha256": f.sha256, "stored_sha256": f.stored_sha256} for f in files}


def check_stored(path: Path, recorded: dict[str, str], archive: Archive,
                 source: str = "the record") -> str:
    """'' when the file is as recorded; else what is wrong (storage without a key, content
    with one). `source` names where `recorded` comes from, for the message."""
    if not path.is_file():
        return "missing"
    if sha256_file(path) != recorded.get("stored_sha256", recorded.get("sha256")):
        return f"changed (stored bytes differ from {source})"
    try:
        plain = archive.read(path)
    except InputError as exc:
        return "" if archive.ring is None else f"cannot be read ({exc})"
    import hashlib

    if hashlib.sha256(plain).hexdigest() != recorded.get("sha256"):
        return f"content differs from {source}"
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
