"""Excel workbooks with openpyxl's write-only mode (its fastest): styled frozen header,
autofilter, column widths from the data, real dates, sheets continued past the row limit, and
print-ready pages (landscape, one page wide, header row repeated, a marking line on top and
the file name and "Page N of M" at the bottom)."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.files import atomic_write_with

log = logging.getLogger(__name__)

UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")   # what no workbook cell can hold


def frame_rows(frame: Any) -> list[list[Any]]:
    """DataFrame rows as lists of plain Python values for a workbook: dates as datetime.date,
    and missing values and empty text as None (a blank cell). Column by column, for speed."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series.dt.date.to_numpy(dtype=object, copy=True)
        else:
            values = series.to_numpy(dtype=object, copy=True)
        blank = series.isna().to_numpy(copy=True)
        if not pd.api.types.is_numeric_dtype(series) and not \
                pd.api.types.is_datetime64_any_dtype(series):
            blank |= series.eq("").fillna(False).to_numpy(dtype=bool)
        values[blank] = None
        columns.append(values)
    return [list(row) for row in zip(*columns, strict=True)] if columns else \
        [[] for _ in range(len(frame))]


@dataclass
class Sheet:
    """One logical sheet of a report: a title, column names and rows (lists of cell values;
    datetime.date values become real Excel dates)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: Any = None          # an openpyxl chart, anchored right of the data
    chart_anchor: str = "H2"
    unfiltered_last_rows: int = 0   # rows at the end kept out of the autofilter (a total)
    chart_on_own_page: bool = False  # a page break before the chart's row when printed
    max_width: int = 60             # widest column, in characters


def sheet_titles(title: str, row_count: int, max_rows_per_sheet: int) -> list[str]:
    """Titles for a sheet continued past the row limit: Records, Records (2), Records (3)..."""
    per_sheet = max(1, max_rows_per_sheet - 1)  # the header takes a row
    pieces = max(1, -(-row_count // per_sheet))
    titles = [title[:31]]
    for number in range(2, pieces + 1):
        suffix = f" ({number})"
        titles.append(title[:31 - len(suffix)] + suffix)  # Excel allows 31 characters
    return titles


def write_workbook(path: Path, sheets: list[Sheet], max_rows_per_sheet: int = 1_048_576,
                   mode: int = 0o600, marking: str | None = None) -> None:
    """Write an .xlsx atomically (see workbook_bytes); `marking` heads every printed page."""
    data = workbook_bytes(sheets, max_rows_per_sheet, marking)
    atomic_write_with(path, lambda temp: temp.write_bytes(data), mode)


def workbook_bytes(sheets: list[Sheet], max_rows_per_sheet: int,
                   marking: str | None = None) -> bytes:
    """The workbook as bytes. openpyxl zips into memory, so a full disk fails our own plain
    write of these bytes, never openpyxl's zip file (which would be left open and fail again
    when Python cleans it up)."""
    import io

    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    for sheet in sheets:
        _write_sheet_pieces(workbook, sheet, max_rows_per_sheet, marking)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _write_sheet_pieces(workbook: Any, sheet: Sheet, max_rows_per_sheet: int,
                        marking: str | None) -> None:
    from openpyxl.utils import get_column_letter

    per_sheet = max(1, max_rows_per_sheet - 1)
    widths = _column_widths(sheet.columns, sheet.rows, sheet.max_width)
    titles = sheet_titles(sheet.title, len(sheet.rows), max_rows_per_sheet)
    for index, title in enumerate(titles):
        worksheet = workbook.create_sheet(title)
        chunk = sheet.rows[index * per_sheet:(index + 1) * per_sheet]
        worksheet.freeze_panes = "A2"  # must be set before the first row in write-only mode
        for number, width in enumerate(widths, start=1):
            worksheet.column_dimensions[get_column_letter(number)].width = width
        set_up_printing(worksheet, marking)
        worksheet.append(header_cells(worksheet, sheet.columns))
        for row in chunk:
            worksheet.append(text_safe_row(worksheet, row))
        last_column = get_column_letter(max(1, len(sheet.columns)))
        filtered = len(chunk) - (sheet.unfiltered_last_rows if index == len(titles) - 1 else 0)
        worksheet.auto_filter.ref = f"A1:{last_column}{max(0, filtered) + 1}"
        if sheet.chart is not None and index == 0:
            add_chart(worksheet, sheet)


def text_safe_row(worksheet: Any, row: list[Any]) -> list[Any]:
    """The row with every text value openpyxl would store as a formula ("=...") or an error
    ("#N/A") made a text cell: values come from DPS's files, IMPACT and the config, and a
    spreadsheet must never run them. Other text ("+1", "@x", "-1") is stored as text already;
    the value is kept exactly (no quote added), except a control character no workbook can
    hold, which becomes U+FFFD (see writable_text)."""
    if not any(needs_text_cell(value) for value in row):
        return row
    return [text_cell(worksheet, value) if needs_text_cell(value) else value for value in row]


def needs_text_cell(value: Any) -> bool:
    return isinstance(value, str) and (value[:1] in ("=", "#") or
                                       UNWRITABLE.search(value) is not None)


def writable_text(value: str) -> str:
    """`value` with each control character a workbook cannot hold (openpyxl raises
    IllegalCharacterError) replaced by U+FFFD, so a bad byte in a source never stops a run."""
    if UNWRITABLE.search(value) is None:
        return value
    log.warning("a text value with a control character was written with U+FFFD in its place")
    return UNWRITABLE.sub("\ufffd", value)


def text_cell(worksheet: Any, value: Any) -> Any:
    """A write-only cell holding `value` as text, whatever it starts with."""
    from openpyxl.cell import WriteOnlyCell

    if not isinstance(value, str):
        return WriteOnlyCell(worksheet, value=value)
    cell = WriteOnlyCell(worksheet, value=writable_text(value))
    cell.data_type = "s"
    return cell


def header_cells(worksheet: Any, columns: list[str]) -> list[Any]:
    from openpyxl.styles import Alignment, Font, PatternFill

    cells = []
    for name in columns:
        cell = text_cell(worksheet, name)
        cell.font = Font(bold=True, color="FFFFFF")
        cell.fill = PatternFill("solid", fgColor="1F4E78")
        cell.alignment = Alignment(vertical="center")
        cells.append(cell)
    return cells


def set_up_printing(worksheet: Any, marking: str | None) -> None:
    """Landscape, one page wide, the header row on every page, the marking line on top, the
    file name and page N of M at the bottom."""
    worksheet.page_setup.orientation = "landscape"
    worksheet.page_setup.fitToWidth = 1
    worksheet.page_setup.fitToHeight = 0
    worksheet.sheet_properties.pageSetUpPr.fitToPage = True
    worksheet.print_title_rows = "1:1"
    if marking:
        worksheet.oddHeader.center.text = marking.replace("&", "&&")
        worksheet.oddHeader.center.size = 12
    worksheet.oddFooter.left.text = "&F"
    worksheet.oddFooter.right.text = "Page &P of &N"


def add_chart(worksheet: Any, sheet: Sheet) -> None:
    worksheet.add_chart(sheet.chart, sheet.chart_anchor)
    if sheet.chart_on_own_page:
        from openpyxl.utils.cell import coordinate_from_string
        from openpyxl.worksheet.pagebreak import Break

        _, row = coordinate_from_string(sheet.chart_anchor)
        worksheet.row_breaks.append(Break(id=row - 1))


def _column_widths(columns: list[str], rows: list[list[Any]], max_width: int = 60,
                   sample: int = 2000) -> list[float]:
    widths = [len(str(c)) + 4 for c in columns]
    for row in rows[:sample]:
        for i, value in enumerate(row[:len(widths)]):
            if value is None:
                continue
            length = 11 if isinstance(value, dt.date) else len(str(value))
            widths[i] = max(widths[i], length + 2)
    return [min(w, max_width) for w in widths]

