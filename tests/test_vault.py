"""Encryption at rest: what is stored gives nothing away, and every fault is one clear line."""

import base64
import os
from pathlib import Path

import pytest

from exchange import vault
from exchange.errors import ConfigError, InputError, LocalFileError
from exchange.files import sha256_file
from exchange.vault import (
    KeyRing,
    KeySource,
    check_ring,
    encrypt_to,
    is_encrypted,
    load_key_ring,
    new_key,
    read_plain,
    stored_key_id,
)

pytestmark = pytest.mark.reliability("audit and archive")

# A made-up child: nothing here is a real person.
SAMPLE = (b"PID|LAST_NAME|FIRST_NAME|DOB|NIC\n"
          b"9000001|Quibblestone|Marigold|2011-04-17|M123456789\n")
KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))


@pytest.fixture
def ring_a() -> KeyRing:
    return KeyRing("2026-06", KEY_A)


@pytest.fixture
def ring_b_reads_a() -> KeyRing:
    """After the rotation: key B is current, key A is kept for reading old files."""
    return KeyRing("2026-12", KEY_B, {"2026-06": KEY_A})


@pytest.fixture
def answer(tmp_path: Path) -> Path:
    path = tmp_path / "Dfps-missing-person-results.txt"
    path.write_bytes(SAMPLE)
    return path


@pytest.fixture
def sealed_a(answer: Path, ring_a: KeyRing, tmp_path: Path) -> Path:
    target = tmp_path / "archive" / "run1_Dfps-missing-person-results.txt.enc"
    encrypt_to(answer, target, ring_a)
    return target


def with_byte_flipped(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def header_length(key_id: str) -> int:
    return 8 + 1 + len(key_id) + 12


def test_round_trip(answer, ring_a, tmp_path):
    target = tmp_path / "archive" / "answer.enc"
    plain_sha, stored_sha = encrypt_to(answer, target, ring_a)
    assert read_plain(target, ring_a) == SAMPLE
    assert plain_sha == sha256_file(answer)
    assert stored_sha == sha256_file(target)
    assert plain_sha != stored_sha


def test_the_stored_bytes_hold_no_plain_text(sealed_a):
    stored = sealed_a.read_bytes()
    for secret in (b"Quibblestone", b"Marigold", b"2011-04-17", b"M123456789", b"PID|"):
        assert secret not in stored
    assert len(stored) == header_length("2026-06") + len(SAMPLE) + 16


def test_two_encryptions_of_one_file_differ(answer, ring_a, tmp_path):
    """A fresh random nonce each time: equal files do not show as equal in the archive."""
    _, first = encrypt_to(answer, tmp_path / "one.enc", ring_a)
    _, second = encrypt_to(answer, tmp_path / "two.enc", ring_a)
    assert first != second


def test_the_header_names_the_key(sealed_a):
    data = sealed_a.read_bytes()
    assert data[:16] == b"DPSXENC1\x072026-06"
    assert is_encrypted(sealed_a)
    assert stored_key_id(sealed_a) == "2026-06"


def test_a_wrong_key_is_one_line(sealed_a):
    impostor = KeyRing("2026-06", KEY_B)
    with pytest.raises(InputError) as error:
        read_plain(sealed_a, impostor)
    assert str(error.value) == (f"{sealed_a}: cannot be decrypted with key '2026-06' (wrong key, "
                                f"or the file was changed or damaged)")


def test_after_a_rotation_old_files_read_with_the_old_key(sealed_a, answer, ring_b_reads_a,
                                                          tmp_path):
    assert read_plain(sealed_a, ring_b_reads_a) == SAMPLE
    new_file = tmp_path / "archive" / "run2.enc"
    encrypt_to(answer, new_file, ring_b_reads_a)
    assert stored_key_id(new_file) == "2026-12"
    assert read_plain(new_file, KeyRing("2026-12", KEY_B)) == SAMPLE


def test_a_key_no_longer_in_the_ring_is_named(sealed_a):
    only_b = KeyRing("2026-12", KEY_B, {"2025-12": KEY_A})
    with pytest.raises(InputError) as error:
        read_plain(sealed_a, only_b)
    assert str(error.value) == (f"{sealed_a}: encrypted with key '2026-06', which is not in the "
                                f"key ring (keys: 2026-12, 2025-12)")


def test_an_encrypted_file_without_a_ring_is_one_line(sealed_a):
    with pytest.raises(InputError) as error:
        read_plain(sealed_a, None)
    assert str(error.value) == (f"{sealed_a}: encrypted with key '2026-06', but no key ring "
                                f"is configured")


def test_a_flipped_byte_in_the_ciphertext_is_found(sealed_a, ring_a):
    with_byte_flipped(sealed_a, header_length("2026-06") + 10)
    with pytest.raises(InputError, match=r"cannot be decrypted with key '2026-06' \(wrong key, "
                                         r"or the file was changed or damaged\)$"):
        read_plain(sealed_a, ring_a)


def test_a_flipped_byte_in_the_tag_is_found(sealed_a, ring_a):
    with_byte_flipped(sealed_a, len(sealed_a.read_bytes()) - 1)
    with pytest.raises(InputError, match="cannot be decrypted with key '2026-06'"):
        read_plain(sealed_a, ring_a)


@pytest.mark.parametrize(("offset", "message"), [
    (0, "the header of the encrypted file is damaged"),            # magic: D -> E
    (8, "encrypted with key '2026-0', which is not in the key ring (keys: 2026-06)"),
    # ^ the key id's length 7 -> 6: a shorter id, which the ring does not have
    (9, "encrypted with key '3026-06', which is not in the key ring (keys: 2026-06)"),
    (16, "cannot be decrypted with key '2026-06' (wrong key, or the file was changed or "
         "damaged)"),                                               # first nonce byte
    (27, "cannot be decrypted with key '2026-06' (wrong key, or the file was changed or "
         "damaged)"),                                               # last nonce byte
])
def test_a_flipped_byte_in_the_header_is_found(sealed_a, ring_a, offset, message):
    with_byte_flipped(sealed_a, offset)
    with pytest.raises(InputError) as error:
        read_plain(sealed_a, ring_a)
    assert str(error.value) == f"{sealed_a}: {message}"


def test_a_changed_key_id_fails_even_when_the_ring_has_that_key(sealed_a):
    """The header is authenticated: relabelling a file with another key's id is found."""
    data = sealed_a.read_bytes().replace(b"2026-06", b"2026-07", 1)
    sealed_a.write_bytes(data)
    both = KeyRing("2026-07", KEY_A, {"2026-06": KEY_B})
    with pytest.raises(InputError, match="cannot be decrypted with key '2026-07'"):
        read_plain(sealed_a, both)


def test_a_file_cut_inside_its_header_is_damaged(sealed_a, ring_a):
    sealed_a.write_bytes(sealed_a.read_bytes()[:12])
    with pytest.raises(InputError) as error:
        read_plain(sealed_a, ring_a)
    assert str(error.value) == f"{sealed_a}: the header of the encrypted file is damaged"
    with pytest.raises(InputError):
        stored_key_id(sealed_a)


def test_a_plain_file_is_read_as_it_is(answer, ring_a):
    assert read_plain(answer, ring_a) == SAMPLE
    assert read_plain(answer, None) == SAMPLE
    assert not is_encrypted(answer)
    assert stored_key_id(answer) is None


def test_an_empty_plain_file_is_read_as_it_is(tmp_path, ring_a):
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert read_plain(empty, ring_a) == b""


def test_a_missing_file_is_one_line(tmp_path, ring_a):
    with pytest.raises(InputError) as error:
        read_plain(tmp_path / "gone.enc", ring_a)
    assert str(error.value) == f"{tmp_path / 'gone.enc'}: cannot read (No such file or directory)"


def test_an_encrypted_file_is_not_encrypted_twice(sealed_a, ring_a, tmp_path):
    with pytest.raises(InputError) as error:
        encrypt_to(sealed_a, tmp_path / "twice.enc", ring_a)
    assert str(error.value) == f"{sealed_a}: is already encrypted; archive it as it is"


def test_a_copy_that_does_not_decrypt_fails_the_archiving(answer, ring_a, tmp_path, monkeypatch):
    real_write = vault.atomic_write_bytes

    def write_damaged(path: Path, data: bytes, mode: int = 0o600) -> None:
        real_write(path, data[:-1] + bytes([data[-1] ^ 1]), mode)

    monkeypatch.setattr(vault, "atomic_write_bytes", write_damaged)
    target = tmp_path / "bad.enc"
    with pytest.raises(LocalFileError) as error:
        encrypt_to(answer, target, ring_a)
    assert str(error.value) == (f"{target}: the encrypted copy of {answer.name} does not decrypt "
                                f"to the same bytes (disk or memory fault?); do not rely on it")


def test_encrypted_files_are_private_whatever_the_umask(answer, ring_a, tmp_path):
    old_umask = os.umask(0o022)
    try:
        encrypt_to(answer, tmp_path / "default.enc", ring_a)
        encrypt_to(answer, tmp_path / "chosen.enc", ring_a, mode=0o640)
    finally:
        os.umask(old_umask)
    assert (tmp_path / "default.enc").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "chosen.enc").stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "archive-2026-12.key"
    path.parent.mkdir()
    path.write_text(f"  {KEY_B.hex()}\n")
    path.chmod(0o600)
    return path


def test_a_key_ring_from_a_file_and_an_environment_variable(key_file, monkeypatch):
    monkeypatch.setenv("DPS_OLD_KEY", KEY_A.hex().upper())
    ring = load_key_ring(KeySource("2026-12", file=key_file),
                         [KeySource("2026-06", env="DPS_OLD_KEY")])
    assert ring == KeyRing("2026-12", KEY_B, {"2026-06": KEY_A})
    check_ring(ring)


def test_base64_key_material_is_accepted(monkeypatch):
    monkeypatch.setenv("DPS_KEY", base64.b64encode(KEY_A).decode() + "\n")
    assert load_key_ring(KeySource("k1", env="DPS_KEY"), []).current_key == KEY_A


def test_new_key_makes_a_usable_key(monkeypatch):
    material = new_key()
    assert len(material) == 64 and int(material, 16) >= 0
    monkeypatch.setenv("DPS_KEY", material)
    check_ring(load_key_ring(KeySource("fresh", env="DPS_KEY"), []))
    assert new_key() != material


def test_the_key_ring_never_shows_its_keys(ring_b_reads_a):
    text = repr(ring_b_reads_a)
    assert text == "KeyRing(current_id='2026-12')"
    assert KEY_B.hex() not in text and KEY_A.hex() not in text


def key_fault(current: KeySource, older: list[KeySource] | None = None) -> str:
    with pytest.raises(ConfigError) as error:
        load_key_ring(current, older or [])
    message = str(error.value)
    assert "\n" not in message
    assert KEY_A.hex() not in message and KEY_B.hex() not in message
    return message


def test_a_missing_key_file_is_one_line(tmp_path):
    missing = tmp_path / "nowhere.key"
    assert key_fault(KeySource("2026-12", file=missing)) == (
        f"key '2026-12' (file {missing}): the key file does not exist")


def test_an_unreadable_key_file_is_one_line(tmp_path):
    folder = tmp_path / "a-folder"   # unreadable as a file even for root
    folder.mkdir()
    assert key_fault(KeySource("2026-12", file=folder)) == (
        f"key '2026-12' (file {folder}): cannot read the key file (Is a directory)")


def test_a_key_file_that_is_not_text_is_one_line(tmp_path):
    binary = tmp_path / "raw.key"
    binary.write_bytes(KEY_B)
    assert key_fault(KeySource("2026-12", file=binary)) == (
        f"key '2026-12' (file {binary}): the key file is not plain ASCII text (64 hex "
        f"characters or base64 of 32 bytes)")


def test_an_unset_environment_variable_is_one_line(monkeypatch):
    monkeypatch.delenv("DPS_ARCHIVE_KEY", raising=False)
    assert key_fault(KeySource("2026-12", env="DPS_ARCHIVE_KEY")) == (
        "key '2026-12' (environment variable DPS_ARCHIVE_KEY): the environment variable is "
        "not set")


def test_an_empty_environment_variable_is_one_line(monkeypatch):
    monkeypatch.setenv("DPS_ARCHIVE_KEY", "  \n")
    assert key_fault(KeySource("2026-12", env="DPS_ARCHIVE_KEY")) == (
        "key '2026-12' (environment variable DPS_ARCHIVE_KEY): is empty")


@pytest.mark.parametrize(("material", "length"), [
    (KEY_B.hex()[:-1], 63),                                   # one hex character short
    (KEY_B.hex() + "00", 66),                                 # one byte too long
    (base64.b64encode(KEY_B[:16]).decode(), 24),              # base64 of 16 bytes: AES-128
    ("g" * 64, 64),                                           # not hex, and base64 of 48 bytes
    (KEY_B.hex()[:60] + "!@#$", 64),                          # bad characters
])
def test_key_material_of_the_wrong_length_or_characters_is_one_line(monkeypatch, material,
                                                                     length):
    monkeypatch.setenv("DPS_ARCHIVE_KEY", material)
    assert key_fault(KeySource("2026-12", env="DPS_ARCHIVE_KEY")) == (
        f"key '2026-12' (environment variable DPS_ARCHIVE_KEY): not a key: expected 64 hex "
        f"characters or base64 of 32 bytes, found {length} characters")


def test_a_repeated_key_id_is_one_line(key_file, monkeypatch):
    monkeypatch.setenv("DPS_OLD_KEY", KEY_A.hex())
    assert key_fault(KeySource("2026-12", file=key_file),
                     [KeySource("2026-12", env="DPS_OLD_KEY")]) == (
        f"key '2026-12' (environment variable DPS_OLD_KEY): the key id is also given to "
        f"key '2026-12' (file {key_file}); each key needs its own id")


@pytest.mark.parametrize("key_id", ["", "2026/12", "key id", "ключ", "k" * 65])
def test_a_key_id_with_bad_characters_is_one_line(key_file, key_id):
    assert key_fault(KeySource(key_id, file=key_file)) == (
        f"key {key_id!r} (file {key_file}): the key id may only have ASCII letters, digits, "
        f"- and _ (1 to 64 characters)")


@pytest.mark.parametrize("source", [
    KeySource("2026-12"),
    KeySource("2026-12", file=Path("/k"), env="DPS_ARCHIVE_KEY"),
])
def test_a_source_must_be_a_file_or_a_variable(source):
    assert key_fault(source) == (
        "key '2026-12': give either a key file or an environment variable, not both or neither")


def test_a_short_key_cannot_make_a_ring():
    with pytest.raises(ValueError, match="must be 32 bytes"):
        KeyRing("2026-12", KEY_B[:16])
