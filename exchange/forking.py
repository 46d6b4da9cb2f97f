"""Independent pieces of work shared between this process and forked copies of it, the way
R's `parallel::mclapply` does it: each copy starts with everything already in memory, works
through its share, and sends its results back through a pipe.

Used by the receive (README "Performance"): the reports' workbooks are independent, and
building one is pure Python work on one core; IMPACT's queries do not need DPS's answer, so
they run while it is checked. Nothing a forked copy makes touches the disk; the results come
back as values, and the calling process writes them as before.

A copy ignores Ctrl-C and dies quietly on SIGTERM: the calling process handles both, and kills
its copies before the error goes on. Where fork does not exist (Windows), where a fork
fails, or with one worker, the work runs here, one piece after the other.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from exchange.errors import DpsError

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1     # Linux prctl: a signal for this process when its parent dies


class CopyLostError(DpsError):
    """A forked copy of the run ended without sending its results (killed, out of memory)."""


def share_out(weights: Sequence[float], workers: int) -> list[list[int]]:
    """Piece indexes per worker, heaviest first to the lightest-loaded worker (worker 0 is the
    calling process). Each share keeps its pieces in their original order."""
    loads = [0.0] * max(1, workers)
    shares: list[list[int]] = [[] for _ in loads]
    for index in sorted(range(len(weights)), key=lambda i: -weights[i]):
        lightest = loads.index(min(loads))
        shares[lightest].append(index)
        loads[lightest] += weights[index]
    return [sorted(share) for share in shares]


def fork_available() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def usable_cores() -> int:
    """The cores this process may run on (a container or taskset may allow fewer than the
    machine has)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:     # not on Linux
        return os.cpu_count() or 1


def map_in_forks(work: Callable[[Any], Any], pieces: Sequence[Any], workers: int,
                 weights: Sequence[float] | None = None) -> list[Any]:
    """[work(piece) for piece in pieces], shared between this process and up to workers - 1
    forked copies. An error raised by `work` is raised here: one in this process's own share
    first, else the first copy's, with that copy's code frames as its note."""
    workers = min(workers, len(pieces))
    if workers <= 1 or not fork_available():
        return [work(piece) for piece in pieces]
    shares = share_out(weights or [1.0] * len(pieces), workers)
    results: dict[int, Any] = {}
    copies: list[ForkedShare] = []
    try:
        for share in shares[1:]:
            copy = ForkedShare.start(work, pieces, share) if share else None
            if copy is None:
                shares[0] += share          # no copy (fork failed): done here, in turn
            else:
                copies.append(copy)
        for index in sorted(shares[0]):
            results[index] = work(pieces[index])
        for copy in copies:
            results.update(copy.results())
    finally:
        for copy in copies:
            copy.stop()
    return [results[index] for index in range(len(pieces))]


class ForkedShare:
    """One forked copy working through its share of the pieces."""

    def __init__(self, work: Callable[[Any], Any], pieces: Sequence[Any],
                 share: list[int]) -> None:
        import gc

        context = multiprocessing.get_context("fork")
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(target=work_in_copy,
                                       args=(work, pieces, share, sender, self.receiver,
                                             os.getpid()),
                                       daemon=True)
        gc.freeze()      # the copy's collector then leaves the inherited objects' pages shared
        try:
            self.process.start()
        finally:
            gc.unfreeze()
            sender.close()   # the copy holds the only sending end: its exit ends the pipe

    @classmethod
    def start(cls, work: Callable[[Any], Any], pieces: Sequence[Any],
              share: list[int]) -> ForkedShare | None:
        """A copy working on `share`, or None when none can be started (fork failed: out of
        memory, too many processes); the caller then does the work itself."""
        try:
            return cls(work, pieces, share)
        except OSError as error:
            log.warning("could not start a forked copy of the run (%s); working in one "
                        "process", type(error).__name__)
            return None

    def results(self) -> dict[int, Any]:
        try:
            outcome, payload, frames = self.receiver.recv()
        except EOFError:
            self.process.join()
            raise CopyLostError(f"a forked copy of the run ended without its results "
                                f"({ended_how(self.process.exitcode)}); with run.processes: "
                                f"1 the run works in one process") from None
        if outcome == "error":
            payload.add_note(f"in a forked copy of the run:\n{frames}")
            raise payload
        return payload

    def stop(self) -> None:
        """Kill the copy if it still runs (it holds nothing but results in memory; a SIGTERM
        landing before it set its own handlers could be caught by the run's handler, which it
        inherited)."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.receiver.close()


def ended_how(exit_code: int | None) -> str:
    """'killed by SIGKILL' or 'exit code 3'."""
    if exit_code is not None and exit_code < 0:
        try:
            return f"killed by {signal.Signals(-exit_code).name}"
        except ValueError:
            pass
    return f"exit code {exit_code}"


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGKILL this copy when the run dies (a SIGKILL or the OOM killer would
    otherwise leave it running, holding the run's lock); elsewhere, check once."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:      # the run died before the request took effect
        os._exit(1)


def work_in_copy(work: Callable[[Any], Any], pieces: Sequence[Any], share: list[int],
                 sender: Any, receiver: Any, parent_pid: int) -> None:
    """In the forked copy: do the share, send back {index: result} or the first error (with
    its code frames only: a message may hold data). The copy closes its own reading end, dies
    with the run, and always ends through os._exit: nothing of it reaches stderr."""
    code = 1
    try:
        receiver.close()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)
        die_with_parent(parent_pid)
        try:
            sender.send(("ok", {index: work(pieces[index]) for index in share}, ""))
            code = 0
        except Exception as error:  # noqa: BLE001 - sent back and raised in the run
            frames = "".join(traceback.format_tb(error.__traceback__))
            sender.send(("error", sendable(error), frames))
    except BaseException:  # noqa: BLE001, S110 - the run is gone or stopping: nobody to tell
        pass
    finally:
        os._exit(code)


def sendable(error: Exception) -> Exception:
    """The error itself when it survives pickling, else a CopyLostError naming its class
    (not its message, which may hold data)."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301  # nosec B301 - our own bytes, just now
    except Exception:  # noqa: BLE001 - any failure means: not sendable as it is
        return CopyLostError(f"a forked copy of the run failed with {type(error).__name__}, "
                             f"which it could not send back (details withheld)")
    return error


class Ahead:
    """`work()` started now in a forked copy, while this process goes on with something else;
    `result()` waits for it (its error is raised there). Without fork, or with
    `enabled=False`, or on one usable core, `result()` does the work itself, then. Use it in
    a `with` block: leaving the block kills a copy whose result was not taken (a failure or a
    SIGTERM on the way)."""

    def __init__(self, work: Callable[[], Any], enabled: bool = True) -> None:
        self.work = work
        self.copy = ForkedShare.start(lambda _: work(), [None], [0]) \
            if enabled and fork_available() and usable_cores() > 1 else None

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *_: object) -> None:
        if self.copy is not None:
            self.copy.stop()

    def result(self) -> Any:
        if self.copy is None:
            return self.work()
        try:
            return self.copy.results()[0]
        finally:
            self.copy.stop()
            self.copy = None
