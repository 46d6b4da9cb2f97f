"""The audit trail logs/audit.jsonl as a hash chain: a removed or changed line shows.

Each run appends one JSON line, its run record (and a second, marked `"event": "mail
failed"`, when the mail it sends after that line fails). Every line written here also
carries `prev_sha256`: the SHA-256 (hex) of the line before it, as bytes, without its
newline; the first line of an empty file carries 64 zeros. Changing, removing, adding or
moving a line therefore breaks the link of the line after it, and `verify_chain` names that
line. The hash of a run's own line is returned by `append_audit_line`; the run record keeps it as
`audit_sha256`, so `verify_records` also finds a change to, or the removal of, the LAST lines,
which no later line vouches for.

Lines written before the chain existed (no `prev_sha256`) are counted as "before the chain
began", never as breaks. The first chained line carries the hash of the last of them, so
that one is protected from then on; the ones before it are not.

What this protects against: an edit, deletion, insertion, reordering or truncation of any
line by someone, or something, that does not also rewrite every line after it; with the
run records' `audit_sha256`, also an edit or removal of the last lines and of the whole file.

What it does not protect against: someone with write access to the audit file AND the run
records (var/state/manifests) AND the outside anchors (the mail archive, the health-check
service's history, anywhere a hash was copied to) who rewrites all of them together: the
hash is not keyed, so anyone can recompute a chain. It keeps nothing secret either: the
lines are plain JSON (run records carry counts, paths and checksums, never a name).
Copying the head hash (`head_sha256`) out of the machine, in the summary mail or the health
ping, is what makes rewriting the chain unnoticed need access to those places too.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.errors import LocalFileError
from exchange.files import describe_os_error, fsync_folder, sha256_bytes

log = logging.getLogger(__name__)

ZERO_HASH = "0" * 64          # what the first line of an empty file points back to
TAIL_BLOCK = 64 * 1024        # how much of the file's end is read at a time to find its last line
LOCK_TIMEOUT_SECONDS = 30.0   # a lock held longer than this is someone stuck, not a busy writer

NOT_FOLLOWING = "does not follow line {before} (edited, deleted, inserted or reordered)"
NOT_FIRST = "does not follow the start of the file (lines deleted before it?)"
TRUNCATED = "not a complete JSON line (truncated)"
NO_NEWLINE = "has no newline at its end (truncated write)"
EMPTY = "empty line (inserted or damaged)"
UNCHAINED = "carries no prev_sha256 after the chain began (inserted, or written by an old version)"


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def audit_line_bytes(record: dict[str, Any], prev_sha256: str) -> bytes:
    """The line for `record` (without its newline): sorted keys, no spaces, ASCII only, so it
    can never contain a newline itself."""
    if "prev_sha256" in record:
        raise ValueError("the record already has a prev_sha256 field; the chain sets it")
    chained = dict(record, prev_sha256=prev_sha256)
    return json.dumps(chained, sort_keys=True, default=str, separators=(",", ":")).encode("ascii")


def append_audit_line(path: Path, record: dict[str, Any], *,
                      lock_timeout: float = LOCK_TIMEOUT_SECONDS) -> str:
    """Append `record` as one chained line and return the SHA-256 of that line.

    Holds an exclusive lock (`<name>.lock` beside the file) from reading the last line to the
    fsync, so the send and the receive step can append at the same moment without breaking the
    chain. A last line without a newline (a crash mid-write) is left as it is, for
    `verify_chain` to report, and the new line starts on a line of its own.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(_lock_path(path), lock_timeout):
            return _append_locked(path, record)
    except OSError as exc:
        raise LocalFileError(f"{path}: audit line not written ({describe_os_error(exc)})"
                             ) from exc


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _append_locked(path: Path, record: dict[str, Any]) -> str:
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(fd).st_size
        last_line, ends_with_newline = _read_last_line(fd, size)
        prev = ZERO_HASH if last_line is None else sha256_bytes(last_line)
        line = audit_line_bytes(record, prev)
        start = b"" if size == 0 or ends_with_newline else b"\n"
        data = start + line + b"\n"
        written = os.write(fd, data)
        if written != len(data):
            raise LocalFileError(f"{path}: only {written} of {len(data)} bytes of the audit "
                                 f"line written (disk full?); the next append starts a new line")
        os.fsync(fd)
    finally:
        os.close(fd)
    if size == 0:
        fsync_folder(path.parent)   # a new file: make its name durable too
    if start:
        log.warning("%s: the last line had no newline (a write was cut short); "
                    "it stays for verify_chain to report", path)
    return sha256_bytes(line)


def _read_last_line(fd: int, size: int) -> tuple[bytes | None, bool]:
    """The file's last line (without its newline; None for an empty file) and whether the file
    ends with a newline. Reads backwards from the end, a block at a time, never the whole file
    unless the file is one line."""
    if size == 0:
        return None, False
    tail = body = b""
    ends_with_newline = False
    position = size
    while position > 0:
        step = min(TAIL_BLOCK, position)
        position -= step
        tail = os.pread(fd, step, position) + tail
        ends_with_newline = tail.endswith(b"\n")
        body = tail[:-1] if ends_with_newline else tail
        cut = body.rfind(b"\n")
        if cut >= 0:
            return body[cut + 1:], ends_with_newline
    return body, ends_with_newline


def head_sha256(path: Path) -> str:
    """The hash of the file's last line (64 zeros for a missing or empty file): the value the
    next line will carry as prev_sha256. Cheap; meant to be copied out of the machine (mail,
    health ping) as an outside anchor."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return ZERO_HASH
    except OSError as exc:
        raise LocalFileError(f"{path}: cannot read ({describe_os_error(exc)})") from exc
    try:
        last_line, _ = _read_last_line(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return ZERO_HASH if last_line is None else sha256_bytes(last_line)


@contextmanager
def _exclusive_lock(lock_file: Path, timeout: float) -> Iterator[None]:
    """flock on a lock file, waiting at most `timeout` seconds. The lock file is never removed
    (removing it would let two writers lock two different files)."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise LocalFileError(f"{lock_file}: held by another process for {timeout:g} s;"
                                     f" audit line not written")
            time.sleep(0.01)
        yield
    finally:
        os.close(fd)   # closing the descriptor releases the lock


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


# ---------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """One fault in the file: its 1-based line number and what is wrong, in plain words."""

    line: int
    problem: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.problem}"


@dataclass(frozen=True)
class AuditEntry:
    """One readable line: its 1-based number, its JSON object, and whether it is chained."""

    line: int
    record: dict[str, Any]
    chained: bool
    sha256: str = ""     # the line's own hash (what the next line carries as prev_sha256)


@dataclass(frozen=True)
class ChainReport:
    """What verify_chain found. `runs` maps each run id to (line number, line hash); a run id
    found on more than one line maps to its last line."""

    path: Path
    breaks: tuple[ChainBreak, ...]
    lines_before_chain: int
    chained_lines: int
    head_sha256: str
    runs: dict[str, tuple[int, str]] = field(default_factory=dict)
    entries: tuple[AuditEntry, ...] = ()   # every readable line, in order

    def chained_entries(self) -> list[AuditEntry]:
        """The lines written after the chain began: the facts --verify-audit trusts."""
        return [entry for entry in self.entries if entry.chained]

    def chain_started_at(self) -> str | None:
        """The started_at of the first chained line (None: the chain has not begun)."""
        return next((str(e.record.get("started_at", "")) for e in self.chained_entries()), None)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def summary(self) -> str:
        """One line for a status screen or a log."""
        verdict = "unbroken" if self.ok else f"{len(self.breaks)} break(s), first: {self.breaks[0]}"
        return (f"{self.path}: {self.chained_lines} chained lines, {self.lines_before_chain} "
                f"before the chain began; {verdict}; head {self.head_sha256[:16]}")


class _ChainWalk:
    """What verify_chain has seen so far; fed one raw line (with its newline, if any) at a time."""

    def __init__(self) -> None:
        self.breaks: list[ChainBreak] = []
        self.lines_before_chain = 0
        self.chained_lines = 0
        self.previous_hash = ZERO_HASH   # the hash of the line before the current one
        self.runs: dict[str, tuple[int, str]] = {}
        self.entries: list[AuditEntry] = []

    def add(self, number: int, raw: bytes) -> None:
        has_newline = raw.endswith(b"\n")
        body = raw[:-1] if has_newline else raw
        record = _parse_record(body)
        if record is None:
            self._count(chained=self.chained_lines > 0)
            self._break(number, EMPTY if body == b"" else TRUNCATED)
        else:
            self._check_record(number, record)
            self.entries.append(AuditEntry(number, record, "prev_sha256" in record,
                                           sha256_bytes(body)))
            if not has_newline:
                self._break(number, NO_NEWLINE)
        line_hash = sha256_bytes(body)
        if record is not None and isinstance(record.get("run_id"), str):
            self.runs[record["run_id"]] = (number, line_hash)
        self.previous_hash = line_hash

    def _check_record(self, number: int, record: dict[str, Any]) -> None:
        if "prev_sha256" not in record:
            self._count(chained=self.chained_lines > 0)
            if self.chained_lines > 0:
                self._break(number, UNCHAINED)
            return
        self._count(chained=True)
        if record["prev_sha256"] != self.previous_hash:
            problem = NOT_FIRST if number == 1 else NOT_FOLLOWING.format(before=number - 1)
            self._break(number, problem)

    def _count(self, chained: bool) -> None:
        if chained:
            self.chained_lines += 1
        else:
            self.lines_before_chain += 1

    def _break(self, number: int, problem: str) -> None:
        self.breaks.append(ChainBreak(number, problem))


def _parse_record(body: bytes) -> dict[str, Any] | None:
    """The line as a JSON object, or None when it is not one (cut short, damaged, empty)."""
    try:
        value = json.loads(body)
    except ValueError:   # also UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


def verify_chain(path: Path) -> ChainReport:
    """Read the whole file, line by line, and report every break in the chain.

    A missing file is an empty chain (verify_records then reports every run as missing)."""
    walk = _ChainWalk()
    try:
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                walk.add(number, raw)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise LocalFileError(f"{path}: cannot read the audit trail ({describe_os_error(exc)})"
                             ) from exc
    return ChainReport(path=path, breaks=tuple(walk.breaks),
                       lines_before_chain=walk.lines_before_chain,
                       chained_lines=walk.chained_lines, head_sha256=walk.previous_hash,
                       runs=walk.runs, entries=tuple(walk.entries))


def verify_records(report: ChainReport, records: list[dict[str, Any]]) -> list[str]:
    """Check each run record's `audit_sha256` against its line in the chain.

    This is what finds an edited or deleted LAST line, which no later line vouches for.
    Records without `audit_sha256` (written before the chain, or by a run that crashed between
    its audit line and its record) are skipped."""
    problems: list[str] = []
    for record in records:
        expected = record.get("audit_sha256")
        if expected is None:
            continue
        run_id = record.get("run_id")
        if not isinstance(run_id, str):
            problems.append("a run record carries audit_sha256 but no run_id")
            continue
        found = report.runs.get(run_id)
        if found is None:
            problems.append(f"run {run_id}: its audit line is missing (deleted from the end?)")
        elif found[1] != expected:
            problems.append(f"run {run_id}: its audit line was changed (line {found[0]})")
    return problems
