"""Work shared with forked copies (exchange/forking.py): the reports' workbooks are built two at
a time, and nothing about the result may depend on it."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import signal
import time
import zipfile
from pathlib import Path

import pytest

from exchange.errors import InputError
from exchange.excel import Sheet, write_workbooks
from exchange.forking import CopyLostError, map_in_forks, share_out


def square_and_pid(number: int) -> tuple[int, int]:
    return number * number, os.getpid()


def test_the_heaviest_pieces_are_shared_out_first_to_the_lightest_worker() -> None:
    assert share_out([5, 1, 4, 2], workers=2) == [[0, 1], [2, 3]]
    assert share_out([1, 1, 1], workers=1) == [[0, 1, 2]]


def test_results_come_back_in_piece_order_and_some_were_made_in_another_process() -> None:
    results = map_in_forks(square_and_pid, [1, 2, 3, 4], workers=2)
    assert [square for square, _ in results] == [1, 4, 9, 16]
    assert {pid for _, pid in results} - {os.getpid()}, "no piece was built in a forked copy"


def test_one_worker_does_every_piece_here_in_turn() -> None:
    results = map_in_forks(square_and_pid, [1, 2, 3], workers=1)
    assert results == [(1, os.getpid()), (4, os.getpid()), (9, os.getpid())]


def fail_on_three(number: int) -> int:
    if number == 3:
        raise InputError("piece 3: refused")
    return number


def test_an_error_in_a_forked_copy_is_raised_here_with_its_class_and_message() -> None:
    with pytest.raises(InputError) as raised:
        map_in_forks(fail_on_three, [1, 2, 3], workers=2, weights=[5, 1, 1])
    assert str(raised.value) == "piece 3: refused"   # the user's one line: the note is not in it
    assert any("in a forked copy of the run" in note for note in raised.value.__notes__)
    assert multiprocessing.active_children() == []


def die_on_two(number: int) -> int:
    if number == 2:
        os._exit(9)
    return number


def test_a_copy_that_dies_without_its_results_is_a_clear_error() -> None:
    with pytest.raises(CopyLostError) as raised:
        map_in_forks(die_on_two, [1, 2], workers=2, weights=[5, 1])
    assert str(raised.value) == ("a forked copy of the run ended without its results (exit "
                                 "code 9); with run.processes: 1 the run works in one process")


def kill_myself_on_two(number: int) -> int:
    if number == 2:
        os.kill(os.getpid(), signal.SIGKILL)   # as the OOM killer would
    return number


def test_a_copy_killed_by_a_signal_is_named_by_it() -> None:
    with pytest.raises(CopyLostError, match=r"\(killed by SIGKILL\);"):
        map_in_forks(kill_myself_on_two, [1, 2], workers=2, weights=[5, 1])


def test_when_no_copy_can_be_started_the_work_is_done_here_with_a_warning(monkeypatch, caplog):
    def refuse(self) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(multiprocessing.get_context("fork").Process, "start", refuse)
    results = map_in_forks(square_and_pid, [1, 2, 3], workers=2)
    assert results == [(1, os.getpid()), (4, os.getpid()), (9, os.getpid())]
    assert [r.getMessage() for r in caplog.records] == [
        "could not start a forked copy of the run (OSError); working in one process"]


def slow_in_copy_fail_here(number: int) -> int:
    if number == 1:
        raise KeyboardInterrupt   # as a SIGTERM's Terminated would, in the calling process
    time.sleep(30)
    return number


def test_an_interrupted_caller_stops_its_copies_before_the_error_goes_on() -> None:
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        map_in_forks(slow_in_copy_fail_here, [1, 2], workers=2, weights=[5, 1])
    assert multiprocessing.active_children() == []
    assert time.monotonic() - started < 10


def workbook_parts(path: Path) -> dict[str, bytes]:
    """Every part of an .xlsx but its creation time."""
    with zipfile.ZipFile(path) as book:
        return {name: book.read(name) for name in book.namelist()
                if name != "docProps/core.xml"}


def test_workbooks_built_two_at_a_time_are_the_ones_built_in_turn(tmp_path: Path) -> None:
    books = [[Sheet("Records", ["PID", "NAME", "DLC"],
                    [[n, f"=name {n}", dt.date(2025, 4, 1 + n % 28)] for n in range(size)],
                    wrapped_columns=("NAME",), indent_after_numbers=True)]
             for size in (40, 3, 25)]
    written: list[str] = []
    for writers in (1, 2):
        folder = tmp_path / f"writers_{writers}"
        folder.mkdir()
        write_workbooks([(folder / f"book{n}.xlsx", sheets) for n, sheets in enumerate(books)],
                        1_048_576, "CONFIDENTIAL", writers,
                        written=lambda path: written.append(path.relative_to(tmp_path).as_posix()))
    assert written == [f"writers_{w}/book{n}.xlsx" for w in (1, 2) for n in range(3)]
    for n in range(3):
        assert workbook_parts(tmp_path / "writers_2" / f"book{n}.xlsx") == \
            workbook_parts(tmp_path / "writers_1" / f"book{n}.xlsx")


def sigterm_here_sleep_in_copy(number: int) -> int:
    if number == 1:
        os.kill(os.getpid(), signal.SIGTERM)   # cron's kill reaches the run, not its copies
    time.sleep(30)
    return number


def test_a_sigterm_while_the_reports_are_built_stops_the_copies_and_ends_the_run() -> None:
    from exchange.harness import Terminated, sigterm_as_failure

    started = time.monotonic()
    with pytest.raises(Terminated), sigterm_as_failure():
        map_in_forks(sigterm_here_sleep_in_copy, [1, 2], workers=2, weights=[5, 1])
    assert multiprocessing.active_children() == []
    assert time.monotonic() - started < 10


def results_too_big_for_a_pipe(_: int) -> bytes:
    return b"x" * 1_000_000


def test_a_copy_whose_run_was_killed_ends_instead_of_waiting_for_a_reader(tmp_path) -> None:
    """The run SIGKILLed while its copy works (a crash, or the tests' fault injection): the
    copy's result has no reader left, and the copy must end, not hold the run's stdout open."""
    script = tmp_path / "killed_run.py"
    script.write_text(
        "import os, signal, sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})\n"
        "from exchange.forking import ForkedShare\n"
        "from tests.test_forking import results_too_big_for_a_pipe\n"
        "copy = ForkedShare(lambda _: (time.sleep(30), results_too_big_for_a_pipe(0))[1],\n"
        "                   [None], [0])\n"
        "print(copy.process.pid, flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n", encoding="utf-8")
    import subprocess
    import sys

    started = time.monotonic()
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 10      # the copy died with the run (stdout closed)
