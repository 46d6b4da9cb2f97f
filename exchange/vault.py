"""Encryption at rest for archived files: AES-256-GCM, one key current, older keys for reading.

The archive keeps DPS's answers (TCIC/NCIC criminal-justice information) with children's
names and dates of birth for years; a copy of the disk or a backup tape must not give them
away. Each archived file is encrypted as a whole with the current key, and carries in its
header the id of that key, so after a key rotation old files are still read with the old key
(kept "for reading" in the key ring) while new files are written with the new one.

File format (all of it is authenticated: the header is the GCM "associated data", so a changed
key id, nonce or byte of ciphertext makes decryption fail instead of giving wrong bytes):

    offset  length  content
    0       8       magic b"DPSXENC1" (format version 1)
    8       1       n, the length of the key id (1 to 64)
    9       n       key id, ASCII letters, digits, '-' and '_' (e.g. b"2026-12")
    9+n     12      nonce, random for every file
    21+n    rest    ciphertext followed by GCM's 16-byte tag

Key material, in a file or an environment variable: 64 hexadecimal characters (what
`new_key()` makes, e.g. `python -c "from exchange.vault import new_key; print(new_key())"`)
or the standard base64 of 32 bytes (44 characters); surrounding whitespace is ignored.
The key id is given beside the source in the config, never inside the key material.

No message, log line or repr ever carries key material or a file's contents.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exchange.errors import ConfigError, InputError, LocalFileError
from exchange.files import atomic_write_bytes, describe_os_error, sha256_bytes

log = logging.getLogger(__name__)

MAGIC = b"DPSXENC1"
KEY_BYTES = 32           # AES-256
NONCE_BYTES = 12         # GCM's standard nonce size
TAG_BYTES = 16
MAX_KEY_ID = 64
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
PROBE = b"DPS exchange key ring self-test"


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeySource:
    """Where one key comes from: a file or an environment variable (exactly one), with the key
    id the config gives it. Holds no key material itself."""

    key_id: str
    file: Path | None = None
    env: str | None = None

    def describe(self) -> str:
        """How messages name the key: by id and source, never by value."""
        where = f"file {self.file}" if self.file is not None else f"environment variable {self.env}"
        return f"key {self.key_id!r} ({where})"


@dataclass(frozen=True)
class KeyRing:
    """The current key (used to write) and older keys kept only for reading old files.
    The key bytes are left out of repr(), so a traceback or a log line cannot show them."""

    current_id: str
    current_key: bytes = field(repr=False)
    older: Mapping[str, bytes] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for key_id, key in [(self.current_id, self.current_key), *self.older.items()]:
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise ValueError(f"key id {key_id!r}: only ASCII letters, digits, - and _")
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r}: must be {KEY_BYTES} bytes (AES-256)")
        if self.current_id in self.older:
            raise ValueError(f"key id {self.current_id!r} is both current and older")

    def key_for(self, key_id: str) -> bytes | None:
        """The key with this id (current or older), or None when the ring does not have it."""
        if key_id == self.current_id:
            return self.current_key
        return self.older.get(key_id)

    def key_ids(self) -> list[str]:
        return [self.current_id, *self.older]


def new_key() -> str:
    """Fresh key material: 64 hex characters from the system's random source."""
    return secrets.token_hex(KEY_BYTES)


def load_key_ring(current: KeySource, older: list[KeySource]) -> KeyRing:
    """Read every key; any fault is one ConfigError line naming the source (never the key)."""
    keys: dict[str, bytes] = {}
    seen: dict[str, KeySource] = {}
    for source in [current, *older]:
        key = load_key(source)
        if source.key_id in seen:
            raise ConfigError(f"{source.describe()}: the key id is also given to "
                              f"{seen[source.key_id].describe()}; each key needs its own id")
        seen[source.key_id] = source
        keys[source.key_id] = key
    current_key = keys.pop(current.key_id)
    return KeyRing(current.key_id, current_key, keys)


def load_key(source: KeySource) -> bytes:
    """The 32 key bytes of one source, checked."""
    if not KEY_ID_PATTERN.fullmatch(source.key_id):
        raise ConfigError(f"{source.describe()}: the key id may only have ASCII letters, "
                          f"digits, - and _ (1 to {MAX_KEY_ID} characters)")
    if (source.file is None) == (source.env is None):
        raise ConfigError(f"key {source.key_id!r}: give either a key file or an environment "
                          f"variable, not both or neither")
    text = _read_key_text(source)
    return _parse_key_material(source, text)


def _read_key_text(source: KeySource) -> str:
    if source.file is None:
        value = os.environ.get(source.env or "")
        if value is None:
            raise ConfigError(f"{source.describe()}: the environment variable is not set")
        return value
    return _read_key_file(source, source.file)


def _read_key_file(source: KeySource, path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{source.describe()}: the key file does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"{source.describe()}: cannot read the key file "
                          f"({describe_os_error(exc)})") from exc
    _refuse_if_shared(source, path)
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise ConfigError(f"{source.describe()}: the key file is not plain ASCII text "
                          f"(64 hex characters or base64 of 32 bytes)") from None


def _refuse_if_shared(source: KeySource, path: Path) -> None:
    """A key file that group or others can read is refused: anyone who can read it can read
    the archive."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError as exc:
        raise ConfigError(f"{source.describe()}: cannot check the key file's mode "
                          f"({describe_os_error(exc)})") from exc
    if mode & 0o077:
        raise ConfigError(f"{source.describe()}: the key file can be read by group or others "
                          f"(mode {mode:04o}); chmod 600 it")


def _parse_key_material(source: KeySource, text: str) -> bytes:
    """64 hex characters, or base64 of 32 bytes; whitespace around it ignored. Hex is tried
    first: every hex string is also valid base64 (of 48 bytes)."""
    material = text.strip()
    if not material:
        raise ConfigError(f"{source.describe()}: is empty")
    if re.fullmatch(r"[0-9A-Fa-f]{64}", material):
        return bytes.fromhex(material)
    try:
        key = base64.b64decode(material, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) == KEY_BYTES:
        return key
    raise ConfigError(f"{source.describe()}: not a key: expected 64 hex characters or base64 "
                      f"of 32 bytes, found {len(material)} characters")


def check_ring(ring: KeyRing) -> None:
    """Prove the current key works (encrypt and decrypt a probe) before anything is uploaded
    or fetched, so a broken key stops the run before DPS's data arrives."""
    try:
        sealed = seal(PROBE, ring.current_id, ring.current_key)
        works = open_sealed(sealed, Path("(self-test)"), ring) == PROBE
    except InputError:
        works = False
    if not works:
        raise ConfigError(f"key {ring.current_id!r}: failed its self-test (encrypt and "
                          f"decrypt a probe)")


# ---------------------------------------------------------------------------
# The file format
# ---------------------------------------------------------------------------


def seal(plain: bytes, key_id: str, key: bytes) -> bytes:
    """Header + AES-256-GCM ciphertext and tag, with the header as associated data."""
    header = _header(key_id, os.urandom(NONCE_BYTES))
    nonce = header[-NONCE_BYTES:]
    return header + AESGCM(key).encrypt(nonce, plain, header)


def _header(key_id: str, nonce: bytes) -> bytes:
    encoded = key_id.encode("ascii")
    return MAGIC + bytes([len(encoded)]) + encoded + nonce


def _split_header(data: bytes, path: Path) -> tuple[bytes, str, bytes]:
    """(header, key id, nonce) of an encrypted file; InputError if the header is damaged."""
    damaged = InputError(f"{path}: the header of the encrypted file is damaged")
    if len(data) < len(MAGIC) + 1:
        raise damaged
    id_length = data[len(MAGIC)]
    id_end = len(MAGIC) + 1 + id_length
    header_end = id_end + NONCE_BYTES
    if not 1 <= id_length <= MAX_KEY_ID or len(data) < header_end + TAG_BYTES:
        raise damaged
    key_id = data[len(MAGIC) + 1:id_end].decode("ascii", errors="replace")
    if not KEY_ID_PATTERN.fullmatch(key_id):
        raise damaged
    return data[:header_end], key_id, data[id_end:header_end]


def _looks_like_damaged_magic(head: bytes) -> bool:
    """True when the first 8 bytes are the magic with 1 to 3 bytes changed. Such a file is an
    encrypted file with a damaged header, not a plain file: no file the product archives (DPS
    text files, CSV, xlsx) starts like that. Without this, one flipped bit in the magic would
    hand ciphertext back as if it were plain."""
    if len(head) < len(MAGIC):
        return False
    differences = sum(a != b for a, b in zip(head[:len(MAGIC)], MAGIC, strict=True))
    return 1 <= differences <= 3


def open_sealed(data: bytes, path: Path, ring: KeyRing | None) -> bytes:
    """Decrypt an encrypted file's bytes with the key its header names; `path` is for messages."""
    header, key_id, nonce = _split_header(data, path)
    if ring is None:
        raise InputError(f"{path}: encrypted with key {key_id!r}, but no key ring is configured")
    key = ring.key_for(key_id)
    if key is None:
        raise InputError(f"{path}: encrypted with key {key_id!r}, which is not in the key ring "
                         f"(keys: {', '.join(ring.key_ids())})")
    try:
        return AESGCM(key).decrypt(nonce, data[len(header):], header)
    except InvalidTag:
        raise InputError(f"{path}: cannot be decrypted with key {key_id!r} (wrong key, or the "
                         f"file was changed or damaged)") from None


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def encrypt_to(source: Path, target: Path, ring: KeyRing, mode: int = 0o600) -> tuple[str, str]:
    """Write an encrypted copy of `source` to `target` (atomically, with `mode`), check it
    decrypts to the same bytes, and return (SHA-256 of the plain bytes, SHA-256 of the stored
    bytes)."""
    plain = _read(source)
    if plain.startswith(MAGIC):
        raise InputError(f"{source}: is already encrypted; archive it as it is")
    atomic_write_bytes(target, seal(plain, ring.current_id, ring.current_key), mode)
    stored = _read(target)
    try:
        same = open_sealed(stored, target, ring) == plain
    except InputError:
        same = False
    if not same:
        raise LocalFileError(f"{target}: the encrypted copy of {source.name} does not decrypt "
                             f"to the same bytes (disk or memory fault?); do not rely on it")
    log.debug("%s: encrypted with key %s", target, ring.current_id)
    return sha256_bytes(plain), sha256_bytes(stored)


def read_plain(path: Path, ring: KeyRing | None) -> bytes:
    """The file's plain bytes: an encrypted file is decrypted with the key its header names
    (current or older); a plain file (archived before encryption) is returned as it is."""
    data = _read(path)
    if data.startswith(MAGIC):
        return open_sealed(data, path, ring)
    if _looks_like_damaged_magic(data):
        raise InputError(f"{path}: the header of the encrypted file is damaged")
    return data


def is_encrypted(path: Path) -> bool:
    """True when the file starts with this format's magic bytes."""
    return _read_head(path, len(MAGIC)) == MAGIC


def stored_key_id(path: Path) -> str | None:
    """The id of the key an encrypted file was written with; None for a plain file."""
    # the longest header plus a tag: enough for _split_header to check any header
    head = _read_head(path, len(MAGIC) + 1 + MAX_KEY_ID + NONCE_BYTES + TAG_BYTES)
    if not head.startswith(MAGIC):
        return None
    return _split_header(head, path)[1]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({describe_os_error(exc)})") from exc


def _read_head(path: Path, size: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({describe_os_error(exc)})") from exc
