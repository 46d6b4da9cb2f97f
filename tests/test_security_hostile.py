"""Issue 20, items 8 and 9: a hostile answer from DPS (control characters, huge numbers, an
oversized file) is a row fault on Exceptions, a blanked field with a warning, or a whole-file
fault with one line: never an internal error; the answer is kept (archived, or left on the
server when it was refused before it was fetched). The formula cases are in
test_security_formulas.py."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import openpyxl
import pytest
import yaml

from exchange.answer import parse_counts
from exchange.config import DpsFileSettings
from exchange.errors import InputError
from exchange.excel import Sheet, write_workbook
from tests.scenario import (
    RESULTS_HEADER,
    SENT_PIDS,
    parsed_both_ways,
    results_line,
    scenario_answer,
)

security = pytest.mark.reliability("security")
REPO = Path(__file__).resolve().parent.parent
FILE_CONFIG = DpsFileSettings(**yaml.safe_load((REPO / "dps_config.yml").read_text(
    encoding="utf-8"))["dps_file"])
RESULTS = "Dfps-missing-person-results.txt"
COUNTS = "Dfps-missing-person-counts.txt"
AS_OF = ("--as-of", "2025-06-20")
HUGE = "9" * 5000


def results_file(*lines: str, header: str = RESULTS_HEADER) -> bytes:
    return ("\r\n".join([header, *lines]) + "\r\n").encode()


def parse(data: bytes):
    return parsed_both_ways(data, RESULTS, FILE_CONFIG, dt.date(2025, 6, 20), set(SENT_PIDS))


def problems(parsed) -> list[tuple[int, str, str]]:
    return [(p.line, p.kind, p.reason) for p in parsed.problems]


@security
@pytest.mark.parametrize("column, field", [("LAST_NAME", "last"), ("FIRST_NAME", "first")])
def test_a_control_character_in_a_name_blanks_it_with_a_warning(column, field):
    parsed = parse(results_file(results_line(1001, "M000000001", "20250311",
                                             **{field: "PE\x0bNA"})))
    assert problems(parsed) == [(2, "warning", f"column {column}: control character; blanked")]
    assert parsed.records[column].tolist() == [""]
    assert parsed.records["PID"].tolist() == [1001]       # the record still counts


@security
def test_a_control_character_in_the_header_is_a_whole_file_fault():
    with pytest.raises(InputError) as caught:
        parse(results_file(header=RESULTS_HEADER + "|EX\x01TRA"))
    assert str(caught.value) == f"{RESULTS}: control character in the header on line 1"


@security
def test_a_5000_digit_pid_is_a_row_fault():
    parsed = parse(results_file(results_line(1001, "M000000001", "20250311"),
                                results_line(HUGE, "M000000002", "20250311")))  # type: ignore[arg-type]
    assert problems(parsed) == [(3, "row left out", "column PID: more than 18 digits")]
    assert parsed.records["PID"].tolist() == [1001]
    assert parsed.distinct_pids == 2


@security
def test_a_5000_digit_count_is_a_whole_file_fault():
    data = f"RECORDS_RECEIVED|{HUGE}\r\nPERSONS_WITH_RECORDS|1\r\nRESULT_RECORDS|1\r\n".encode()
    with pytest.raises(InputError) as caught:
        parse_counts(data, COUNTS, FILE_CONFIG)
    assert str(caught.value) == (f"{COUNTS}: line 1: value of RECORDS_RECEIVED has more than "
                                 f"18 digits")


@security
def test_the_writer_never_fails_on_a_control_character_from_any_source(tmp_path):
    path = tmp_path / "w.xlsx"
    write_workbook(path, [Sheet("Records", ["NAME\x01"], [["A\x0bB"], ["ok"]])])
    rows = list(openpyxl.load_workbook(path)["Records"].iter_rows(values_only=True))
    assert rows == [("NAME\ufffd",), ("A\ufffdB",), ("ok",)]


# ---------------------------------------------------------------------------
# End to end: real sshd
# ---------------------------------------------------------------------------


def hostile_rows_answer() -> tuple[bytes, bytes]:
    lines = [results_line(1001, "M000000001", "20250311", last="PE\x0bNA", first="ZOE"),
             results_line(1002, "M000000002", "20250420", last="O'BRIEN", first="SE\x01AN"),
             results_line(1005, "M000000005", "20250415", last="SMITH-JONES"),
             results_line(HUGE, "M000000009", "20250415"),   # type: ignore[arg-type]
             results_line(1007, "M000000007", "20250507", last="QUINONEZ")]
    counts = (f"RECORDS_RECEIVED|{len(SENT_PIDS)}\r\nPERSONS_WITH_RECORDS|5\r\n"
              "RESULT_RECORDS|5\r\n")
    return results_file(*lines), counts.encode()


@security
def test_control_characters_and_a_huge_pid_publish_with_exceptions(workspace):
    assert workspace.send(*AS_OF) == 0
    results, counts = hostile_rows_answer()
    workspace.put_answer(results, counts)
    assert workspace.receive(*AS_OF) == 0
    record = workspace.manifests("receive")[-1]
    assert record["outcome"] == "reported"
    [archived_results] = [p for p in record["archived"] if p.endswith("-results.txt")]
    assert Path(archived_results).read_bytes() == results          # the answer is kept
    share = workspace.folder("share")
    workbook = openpyxl.load_workbook(next(share.glob("IMPACT_not_in_DPS_*.xlsx")))
    exceptions = [row[4:6] for row in workbook["Exceptions"].iter_rows(values_only=True)
                  if row[0] == RESULTS]
    assert sorted(exceptions) == sorted([
        ("warning", "column LAST_NAME: control character; blanked"),
        ("warning", "column FIRST_NAME: control character; blanked"),
        ("row left out", "column PID: more than 18 digits")])


@security
def test_a_5000_digit_count_is_one_line_and_the_answer_stays_on_the_server(workspace):
    assert workspace.send(*AS_OF) == 0
    results, _ = scenario_answer()
    counts = f"RECORDS_RECEIVED|{HUGE}\r\nPERSONS_WITH_RECORDS|5\r\nRESULT_RECORDS|5\r\n"
    workspace.put_answer(results, counts.encode())
    result = workspace.cli("receivedps.py", *AS_OF)
    assert result.returncode in (1, 3)
    last = result.stderr.splitlines()[-1]
    assert "internal error" not in last
    assert "value of RECORDS_RECEIVED has more than 18 digits" in last
    assert sorted(os.listdir(workspace.answer_dir)) == [COUNTS, RESULTS]


@security
def test_an_oversized_answer_is_refused_before_it_is_fetched(workspace):
    workspace.configure(receive={"max_answer_mib": 1})
    assert workspace.send(*AS_OF) == 0
    results, counts = scenario_answer()
    padding = results_line(1001, "M000000001", "20250311", last="X" * 100) + "\r\n"
    oversized = results + padding.encode() * (1024 * 1024 // len(padding) + 1)
    workspace.put_answer(oversized, counts)
    result = workspace.cli("receivedps.py", *AS_OF)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        f"receivedps.py: error: {RESULTS}: {len(oversized)} bytes, more than "
        f"receive.max_answer_mib=1 MiB; refused before it was fetched, nothing published "
        f"(DPS's files stay on the server)")
    assert sorted(os.listdir(workspace.answer_dir)) == [COUNTS, RESULTS]
    assert [p for p in workspace.folder("staging").rglob("*") if p.is_file()] == []
    assert list(workspace.folder("share").iterdir()) == []
