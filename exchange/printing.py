"""What each report sheet prints (docs/data-contract.md §10.6): the columns a reader acts on,
first and in order (the others follow them on screen, outside the print area), the columns
that wrap, number formats, which rows stand out, and where the shared Exceptions print.
Pure logic over excel.Sheet; exchange/excel.py does the page set-up."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from exchange.excel import Sheet

# Text columns that wrap, and how wide they may get (in characters).
WRAPPED_WIDTHS = {"COUNTY_NAME": 12, "LAST_NAME": 16, "FIRST_NAME": 12, "NOTE": 26,
                  "CASEWORKER": 14, "UNIT": 14, "SUPERVISOR": 14, "AGENCY": 18,
                  "FILE": 32, "REASON": 40, "ITEM": 30, "EXPLANATION": 90}
PERCENT_COLUMNS = ("MATCH_PCT", "ON_TIME_PCT")         # values 0-100, shown with a % sign
PERCENT_FORMAT = '0.0"%"'
STATEWIDE = "STATEWIDE"
EXCEPTIONS_TITLE = "Exceptions"
EXCEPTIONS_NUMBER_COLUMNS = ("PID", "KEY")     # numeric keys stored as numbers
EXCEL_DIGITS = 15                              # longer whole numbers lose digits in Excel
READ_ME_TITLE = "Read me"


def lay_out_reports(sheets: dict[str, list[Sheet]], exceptions_report: str,
                    exceptions_file: str, printed: dict[str, list[str]]) -> None:
    """Every sheet of every report ready to print; `printed`: sheet title -> the columns a
    reader acts on, printed first (the report registry's SheetSpec.printed; a sheet not
    listed prints every column). The Exceptions print only in `exceptions_report` (the same
    rows in every workbook), the others point to its file."""
    laid_out: set[int] = set()   # one Sheet may sit in several reports (the Exceptions)
    for report, report_sheets in sheets.items():
        for index, sheet in enumerate(report_sheets):
            if id(sheet) not in laid_out:
                lay_out_sheet(sheet, printed.get(sheet.title))
                laid_out.add(id(sheet))
            if sheet.title == EXCEPTIONS_TITLE and report != exceptions_report:
                report_sheets[index] = replace(
                    sheet, print_note=f"Exceptions: the rows print in {exceptions_file}")


def lay_out_sheet(sheet: Sheet, printed: list[str] | None = None) -> None:
    """Printed columns first, wraps, formats and row looks for one sheet."""
    if sheet.title == EXCEPTIONS_TITLE:
        sheet.rows = [exception_row(sheet.columns, row) for row in sheet.rows]
    put_printed_columns_first(sheet, printed)
    sheet.wrapped_columns = tuple(c for c in on_paper(sheet) if c in WRAPPED_WIDTHS)
    sheet.column_max_widths = {c: WRAPPED_WIDTHS[c] for c in sheet.wrapped_columns}
    sheet.column_formats = {c: PERCENT_FORMAT for c in sheet.columns if c in PERCENT_COLUMNS}
    sheet.row_look = row_look_for(sheet)
    sheet.indent_after_numbers = True


def put_printed_columns_first(sheet: Sheet, printed: list[str] | None) -> None:
    """Reorder the sheet's columns (and rows) so `printed` come first, in that order; the
    print area is those columns. None: every column prints, in its order."""
    if printed is None:
        sheet.printed_columns = None
        return
    first = [c for c in printed if c in sheet.columns]
    order = [*first, *[c for c in sheet.columns if c not in first]]
    positions = [sheet.columns.index(c) for c in order]
    sheet.columns = order
    sheet.rows = [[row[i] for i in positions] for row in sheet.rows]
    sheet.printed_columns = len(first)


def on_paper(sheet: Sheet) -> list[str]:
    """The columns in the print area. Only they wrap: a column read on screen only keeps its
    text on one line (up to the sheet's widest column), so a row is not made tall, on paper
    or on screen, by a column that never prints."""
    count = len(sheet.columns) if sheet.printed_columns is None else sheet.printed_columns
    return sheet.columns[:count]


def row_look_for(sheet: Sheet) -> Any:
    """The function giving a row's look: STILL_MISSING = Y filled, STATEWIDE bold, a Read me
    section heading (text in its first cell only) bold; None when no row stands out."""
    if "STILL_MISSING" in sheet.columns:
        index = sheet.columns.index("STILL_MISSING")
        return lambda row: "fill" if row[index] == "Y" else ""
    if sheet.title == READ_ME_TITLE:
        return lambda row: "bold" if row and row[0] is not None and \
            all(v is None for v in row[1:]) else ""
    if sheet.columns and sheet.columns[0] == "REGION" and \
            any(row and row[0] == STATEWIDE for row in sheet.rows):
        return lambda row: "bold" if row and row[0] == STATEWIDE else ""
    return None


def exception_row(columns: list[str], row: list[Any]) -> list[Any]:
    """An Exceptions row with its numeric keys as numbers (an EPISODE_ID "504" as 504), and
    whole numbers Excel cannot hold exactly as their digits (a 25-digit PID, never 1e+25)."""
    return [as_key(value) if name in EXCEPTIONS_NUMBER_COLUMNS else value
            for name, value in zip(columns, row, strict=True)]


def as_key(value: Any) -> Any:
    """A whole-number key as a number when Excel keeps every digit; else its digits as text.
    Leading zeros and other text stay as given."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if len(str(abs(value))) <= EXCEL_DIGITS else str(value)
    if isinstance(value, str) and value.isdigit() and value.isascii() and \
            len(value) <= EXCEL_DIGITS and (value == "0" or not value.startswith("0")):
        return int(value)
    return value
