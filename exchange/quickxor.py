"""Microsoft's QuickXorHash: the checksum OneDrive and SharePoint report for a stored file.

Graph returns it as `file.hashes.quickXorHash`: the base64 text of 20 bytes. Computing it
for the local file lets the upload check that SharePoint stored exactly the bytes we sent.

How it works (Microsoft's published C# reference, restated): keep a 160-bit register. Byte
number k of the file is XORed into the register at bit position 11*k, wrapping around the
160 bits (a rotation, not a shift). At the end the register is written as 20 little-endian
bytes and the file's length, as 8 little-endian bytes, is XORed into the last 8 of them.

Why it is fast in pure Python: 11*160 is a multiple of 160, so bytes 160 apart land on the
same bit position. A block of data is therefore first "folded": the XOR of all its 160-byte
slices, done on one big Python integer (halving it repeatedly). Only the 160 folded bytes
are then rotated into place one by one. No per-byte or per-bit Python loop runs.
"""

from __future__ import annotations

import base64
from pathlib import Path

WIDTH_BITS = 160
WIDTH_BYTES = WIDTH_BITS // 8
SHIFT_BITS = 11
SLICE_BITS = WIDTH_BITS * 8  # one 160-byte slice as bits of a Python integer
REGISTER_MASK = (1 << WIDTH_BITS) - 1
READ_BYTES = WIDTH_BITS * 8192  # 1.25 MiB a read: a whole number of 160-byte slices


class QuickXorHash:
    """Streaming QuickXorHash: `update()` with the bytes in order, then `base64()`."""

    def __init__(self) -> None:
        self._register = 0
        self._length = 0

    def update(self, data: bytes) -> None:
        """Add the next bytes of the file (any length, including zero)."""
        if not data:
            return
        slices = -(-len(data) // WIDTH_BITS)  # ceiling: the last slice is zero-padded
        folded = fold_slices(int.from_bytes(data, "little"), slices)
        self._register ^= rotate_folded_bytes(folded, self._length % WIDTH_BITS)
        self._length += len(data)

    def digest(self) -> bytes:
        """The 20 bytes of the hash of everything added so far."""
        register = self._register ^ (self._length << (WIDTH_BITS - 64))
        return (register & REGISTER_MASK).to_bytes(WIDTH_BYTES, "little")

    def base64(self) -> str:
        """The hash as Graph writes it in `file.hashes.quickXorHash`."""
        return base64.b64encode(self.digest()).decode("ascii")


def fold_slices(value: int, slices: int) -> int:
    """XOR together the 160-byte slices of `value` (given as an integer of `slices` slices).

    The result holds 160 bytes: byte i is the XOR of every input byte at a position i + 160*n.
    """
    while slices > 1:
        low_slices = (slices + 1) // 2
        low_bits = low_slices * SLICE_BITS
        value = (value & ((1 << low_bits) - 1)) ^ (value >> low_bits)
        slices = low_slices
    return value


def rotate_folded_bytes(folded: int, first_index: int) -> int:
    """Place folded byte i at bit 11*(first_index + i), rotating within 160 bits."""
    spread = 0
    for index in range(WIDTH_BITS):
        byte = (folded >> (8 * index)) & 0xFF
        if byte:
            spread ^= byte << ((SHIFT_BITS * (first_index + index)) % WIDTH_BITS)
    return (spread & REGISTER_MASK) ^ (spread >> WIDTH_BITS)


def quickxor_bytes(data: bytes) -> str:
    """QuickXorHash (base64) of bytes held in memory."""
    hasher = QuickXorHash()
    hasher.update(data)
    return hasher.base64()


def quickxor_file(path: Path, read_bytes: int = READ_BYTES) -> str:
    """QuickXorHash (base64) of a file, read in blocks so memory stays small."""
    hasher = QuickXorHash()
    with path.open("rb") as stream:
        while block := stream.read(read_bytes):
            hasher.update(block)
    return hasher.base64()
