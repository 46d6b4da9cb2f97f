"""Local files: written whole or not at all, checked by SHA-256, archived.

Every file under a final name is written through a temp file in the same folder, fsynced, and
renamed: a crash leaves at most a `.tmp` file, never half a file under the final name.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from exchange.errors import DeliveryError, LocalFileError

log = logging.getLogger(__name__)


def make_private_folder(folder: Path) -> None:
    """Create the folder if needed and make it the owner's only (0700): it holds personal
    data. A folder we do not own (a shared mount) is left as it is."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        if folder.stat().st_uid == os.geteuid():
            folder.chmod(0o700)
    except OSError as exc:
        log.warning("%s: could not make it private (%s)", folder, describe_os_error(exc))


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_with(path: Path, write: Callable[[Path], None], mode: int = 0o600) -> None:
    """Write through a temp file in the same folder, fsync, then rename onto path.

    `write` receives the temp path. A crash leaves at most a .tmp file, never a half file
    under the final name.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temp)
        os.chmod(temp, mode)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_folder(path.parent)
    except OSError as exc:
        _remove_quietly(temp)
        raise LocalFileError(f"{path}: cannot write ({describe_os_error(exc)})") from exc
    except BaseException:
        _remove_quietly(temp)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        log.debug("could not remove %s", path)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    atomic_write_with(path, lambda temp: temp.write_bytes(data), mode)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_verified(source: Path, target: Path, mode: int = 0o600) -> str:
    """Copy through a temp file and rename; check the copy's size and SHA-256 match."""

    expected = sha256_file(source)

    def write(temp: Path) -> None:
        with open(source, "rb") as src, open(temp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    atomic_write_with(target, write, mode)
    if target.stat().st_size != source.stat().st_size or sha256_file(target) != expected:
        raise DeliveryError(f"{target}: copy does not match {source.name} (size or SHA-256)")
    return expected


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EFBIG:
        return "file too large (file-size limit)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied or read-only"
    return exc.strerror or type(exc).__name__

