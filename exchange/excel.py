"""Excel workbooks with openpyxl's write-only mode (its fastest): styled frozen header,
autofilter, column widths from the data, real dates, sheets continued past the row limit, and
print-ready pages (docs/data-contract.md §10.6: Letter landscape, narrow side margins, one page
wide, a print area of the leading columns, wrapped header cells, the header row repeated, a
marking line on top and the sheet, the file name and "Page N of M" at the bottom)."""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exchange.files import atomic_write_bytes

log = logging.getLogger(__name__)

UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")   # what no workbook cell can hold
RISKY_TEXT = re.compile(r"^[=#]|[\x00-\x08\x0b\x0c\x0e-\x1f]", re.MULTILINE)

FONT_NAME = "Calibri"         # named on every styled cell, so no reader falls back to a serif
SIDE_MARGIN_INCHES = 0.4      # §10.6: at most 0.5 in
HEADER_LINE_POINTS = 15.0     # one line of the 11-pt font
HEADER_MAX_LINES = 3          # a header wraps to at most this many lines
UPPER_CASE_WIDTH = 1.2        # a capital is about 1.2 digit widths (Excel's width unit)
WIDE_FONT = 1.1               # LibreOffice without Calibri prints text wider than Excel does:
#                               wrapped lines are counted with it, so no reader's row is too short
ONE_LINE_HEADER = 8           # a header this short never wraps (PID, REGION, FY2025Q3)
DEFAULT_WIDTH = 8.43          # Excel's width of a column not sized here
NUMBER_GAP = 2                # width units after a column's widest number or date
TEXT_GAP = 1                  # width units after a column's widest text
INDENT_AFTER_NUMBER = 1       # text after a number column is indented, so they never touch
ROW_FILL_COLOR = "FCE4D6"     # a row that needs action first (e.g. STILL_MISSING = Y)


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
    datetime.date values become real Excel dates), and how it prints."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: Any = None          # an openpyxl chart, at chart_anchor (default: below the table)
    chart_anchor: str | None = None
    unfiltered_last_rows: int = 0   # rows at the end kept out of the autofilter (a total)
    chart_on_own_page: bool = False  # a page break before the chart's row when printed
    max_width: int = 60             # widest column, in characters
    column_max_widths: dict[str, int] = field(default_factory=dict)  # header -> narrower cap
    printed_columns: int | None = None   # the print area: this many leading columns (all: None)
    column_formats: dict[str, str] = field(default_factory=dict)  # header -> number format
    wrapped_columns: tuple[str, ...] = ()   # columns whose text wraps within max_width
    row_look: Callable[[list[Any]], str] | None = None   # a row -> "bold", "fill" or ""
    print_note: str | None = None   # prints only the header row and this note (rows elsewhere)
    header_on_every_page: bool = True    # a table's header row repeats on every printed page
    row_formats: dict[int, str] = field(default_factory=dict)  # row index -> number format of
    #   its numbers (a grid whose blocks differ: counts, then percentages)
    indent_after_numbers: bool = False   # a report laid out for print (exchange/printing.py):
    #   text after a number column is indented, so they never touch on paper (styled cells
    #   cost time: a sheet that is not printed, e.g. end_export's, writes plain values)


@dataclass(frozen=True)
class ColumnLook:
    """How one column's cells are styled (None: a plain cell, the fastest)."""

    number_format: str | None = None
    wrap: bool = False
    indent: int = 0

    @property
    def plain(self) -> bool:
        return self.number_format is None and not self.wrap and not self.indent

    @property
    def indent_only(self) -> bool:
        """Only indented: a cell of it needs the indent only beside a number (not a blank)."""
        return self.indent > 0 and self.number_format is None and not self.wrap

    @property
    def wrap_only(self) -> bool:
        """Only wrapped: a cell of it is styled only when its text takes more than a line."""
        return self.wrap and self.number_format is None and not self.indent


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
    atomic_write_bytes(path, workbook_bytes(sheets, max_rows_per_sheet, marking), mode)


def write_workbooks(books: list[tuple[Path, list[Sheet]]], max_rows_per_sheet: int,
                    marking: str | None = None, writers: int = 1,
                    written: Callable[[Path], None] | None = None) -> None:
    """Write several workbooks, up to `writers` of them at the same time (exchange/forking.py:
    each is built in a forked copy of this process and comes back as bytes); each file is then
    written here, atomically and in the order given, and `written(path)` is called after it.
    Never more at a time than the cores this process may use."""
    from exchange.forking import map_in_forks, usable_cores

    def build(sheets: list[Sheet]) -> bytes:
        return workbook_bytes(sheets, max_rows_per_sheet, marking)

    weights = [sum(len(s.rows) * len(s.columns) for s in sheets) + 1 for _, sheets in books]
    built = map_in_forks(build, [sheets for _, sheets in books],
                         min(writers, usable_cores()), weights)
    for (path, _), data in zip(books, built, strict=True):
        atomic_write_bytes(path, data)
        if written is not None:
            written(path)


def workbook_bytes(sheets: list[Sheet], max_rows_per_sheet: int,
                   marking: str | None = None) -> bytes:
    """The workbook as bytes. openpyxl zips into memory, so a full disk fails our own plain
    write of these bytes, never openpyxl's zip file (which would be left open and fail again
    when Python cleans it up)."""
    import io

    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    set_default_look(workbook)
    for sheet in sheets:
        _write_sheet_pieces(workbook, sheet, max_rows_per_sheet, marking)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def set_default_look(workbook: Any) -> None:
    """Every cell sits at the top of its row unless styled otherwise, so a row made tall by
    one wrapped cell reads level without styling each of its cells (styled cells are the
    slow part of writing). Excel reads this from the first cell format, LibreOffice from the
    "Normal" cell style: both are set. openpyxl has no public call for either."""
    from openpyxl.styles import Alignment
    from openpyxl.styles.cell_style import StyleArray
    from openpyxl.utils.indexed_list import IndexedList

    top = Alignment(vertical="top")
    default = StyleArray()
    default.alignmentId = workbook._alignments.add(top)       # noqa: SLF001
    workbook._cell_styles = IndexedList([default])             # noqa: SLF001
    workbook._named_styles["Normal"].alignment = top           # noqa: SLF001


def size_column(worksheet: Any, letter: str, width: float) -> None:
    """A column's width, keeping the default look (a column's own format is what LibreOffice
    shows for its plain cells)."""
    from openpyxl.styles import Alignment

    dimension = worksheet.column_dimensions[letter]
    dimension.width = width
    dimension.alignment = Alignment(vertical="top")


def size_row(worksheet: Any, number: int, height: float) -> None:
    """A row's height (set before the row is written), keeping the default look: the
    workbook's first cell format, given whole (cheaper than an Alignment per tall row)."""
    from openpyxl.worksheet.dimensions import RowDimension

    default_look = worksheet.parent._cell_styles[0]            # noqa: SLF001
    worksheet.row_dimensions[number] = RowDimension(worksheet, index=number, ht=height,
                                                    s=default_look)


def _write_sheet_pieces(workbook: Any, sheet: Sheet, max_rows_per_sheet: int,
                        marking: str | None) -> None:
    from openpyxl.utils import get_column_letter

    per_sheet = max(1, max_rows_per_sheet - 1)
    widths = column_widths(sheet.columns, sheet.rows, sheet.max_width, sheet.column_max_widths)
    if sheet.chart is not None:   # columns under a chart wider than its table, sized too
        widths += [DEFAULT_WIDTH] * max(0, chart_columns(sheet, widths) - len(widths))
    wrapped = [i for i, name in enumerate(sheet.columns) if name in sheet.wrapped_columns]
    looks = column_looks(sheet)
    plain = all(look is None for look in looks) and sheet.row_look is None and not wrapped \
        and not sheet.row_formats
    risky = risky_columns(sheet.rows, max([len(sheet.columns), *map(len, sheet.rows)]))
    titles = sheet_titles(sheet.title, len(sheet.rows), max_rows_per_sheet)
    for index, title in enumerate(titles):
        worksheet = workbook.create_sheet(title)
        chunk = sheet.rows[index * per_sheet:(index + 1) * per_sheet]
        worksheet.freeze_panes = "A2"  # must be set before the first row in write-only mode
        for number, width in enumerate(widths, start=1):
            size_column(worksheet, get_column_letter(number), width)
        size_row(worksheet, 1, header_height(sheet.columns, widths[:len(sheet.columns)]))
        set_up_printing(worksheet, marking, sheet.header_on_every_page)
        set_print_area(worksheet, sheet, len(chunk), widths)
        worksheet.append(header_cells(worksheet, sheet.columns))
        styles: dict[tuple[Any, ...], Any] = {}
        for number, row in enumerate(chunk, start=2):
            if plain:             # the fast path: nothing styled, most columns plain text
                worksheet.append(text_safe_row(worksheet, row, risky) if risky else row)
                continue
            lines = cell_lines(row, wrapped, widths)
            tall = max(lines.values(), default=1)
            if tall > 1:   # a row height must be set before its row is written
                size_row(worksheet, number, HEADER_LINE_POINTS * tall)
            worksheet.append(styled_row(worksheet, row, looks, sheet.row_look, lines,
                                        styles, risky,
                                        sheet.row_formats.get(index * per_sheet + number - 2)))
        last_column = get_column_letter(max(1, len(sheet.columns)))
        filtered = len(chunk) - (sheet.unfiltered_last_rows if index == len(titles) - 1 else 0)
        worksheet.auto_filter.ref = f"A1:{last_column}{max(0, filtered) + 1}"
        if sheet.chart is not None and index == 0:
            add_chart(worksheet, sheet)


def risky_columns(rows: list[list[Any]], width: int) -> set[int]:
    """The columns holding any text that needs a text cell (see needs_text_cell), found once
    per sheet with one search per column; the rows of a clean column are written as they are.
    A value with a line break may be counted risky when it is not (its cells then take the
    slower, equally correct path)."""
    risky = set()
    for i in range(width):
        texts = [row[i] for row in rows if i < len(row) and isinstance(row[i], str)]
        if texts and RISKY_TEXT.search("\n".join(texts)):
            risky.add(i)
    return risky


def text_safe_row(worksheet: Any, row: list[Any], risky: set[int] | None = None
                  ) -> list[Any]:
    """The row with every text value openpyxl would store as a formula ("=...") or an error
    ("#N/A") made a text cell: values come from DPS's files, IMPACT and the config, and a
    spreadsheet must never run them. Other text ("+1", "@x", "-1") is stored as text already;
    the value is kept exactly (no quote added), except a control character no workbook can
    hold, which becomes U+FFFD (see writable_text)."""
    columns = range(len(row)) if risky is None else risky
    if not any(i < len(row) and needs_text_cell(row[i]) for i in columns):
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
    """White bold Calibri on dark blue, wrapped (columns are sized to their data); the
    header is text whatever it says (a column named "=..." in DPS's file is no formula)."""
    from openpyxl.styles import Alignment, Font, PatternFill

    font = Font(name=FONT_NAME, size=11, bold=True, color="FFFFFF")
    fill = PatternFill("solid", fgColor="1F4E78")
    alignment = Alignment(vertical="center", wrap_text=True)
    cells = []
    for name in columns:
        cell = text_cell(worksheet, name)
        cell.font, cell.fill, cell.alignment = font, fill, alignment
        cells.append(cell)
    return cells


def header_lines(name: str, width: float) -> int:
    """Lines a wrapped header of `width` takes (bold capitals, in the wider fallback font)."""
    return text_lines(name, width)


def text_lines(text: str, width: float, char_width: float = WIDE_FONT) -> int:
    """Lines `text` wraps to in a column of `width` units (each line break starts one): one
    when the column was sized to hold it, else counted in the wider font."""
    per_line = max(1.0, width - 0.5)
    return sum(1 if value_width(part) <= width else
               max(1, math.ceil(value_width(part) * char_width / per_line))
               for part in text.split("\n"))


def cell_lines(row: list[Any], wrapped: list[int], widths: list[float]) -> dict[int, int]:
    """The wrapped cells of the row that take more than one line: column -> lines."""
    lines = {}
    for i in wrapped:
        if i < len(row) and row[i] is not None:
            text = str(row[i])
            if len(text) * UPPER_CASE_WIDTH + 1 > widths[i] or "\n" in text:   # may not fit
                count = text_lines(text, widths[i])
                if count > 1:
                    lines[i] = count
    return lines


def header_height(columns: list[str], widths: list[float]) -> float:
    lines = max([header_lines(str(name), width)
                 for name, width in zip(columns, widths, strict=True)] or [1])
    return HEADER_LINE_POINTS * lines


def column_looks(sheet: Sheet) -> list[ColumnLook | None]:
    """Per column: its number format, wrap, and an indent when it holds text right after a
    column holding numbers or dates (a right-aligned number never touches the next text)."""
    kinds = [_value_kinds([row[i] for row in sheet.rows[:2000] if i < len(row)])
             for i in range(len(sheet.columns))]
    looks: list[ColumnLook | None] = []
    for i, name in enumerate(sheet.columns):
        indent = INDENT_AFTER_NUMBER if sheet.indent_after_numbers and i > 0 and \
            "text" in kinds[i] and "number" in kinds[i - 1] else 0
        look = ColumnLook(sheet.column_formats.get(name), name in sheet.wrapped_columns, indent)
        looks.append(None if look.plain else look)
    return looks


def _value_kinds(values: list[Any]) -> set[str]:
    """{"number"} (numbers and dates, right-aligned), {"text"}, both, or none (all blank)."""
    return {"number" if isinstance(v, int | float | dt.date) and not isinstance(v, bool)
            else "text" for v in values if v is not None}


def styled_row(worksheet: Any, row: list[Any], looks: list[ColumnLook | None],
               row_look: Callable[[list[Any]], str] | None,
               lines: dict[int, int] | None = None,
               styles: dict[tuple[Any, ...], Any] | None = None,
               risky: set[int] | None = None, row_format: str | None = None) -> list[Any]:
    """The row as appended: plain values where nothing is styled (fast), styled cells where
    the column (number format, indent), the cell (its text wraps: `lines`, from cell_lines),
    the row's look (bold, fill) or its number format (`row_format`, for its numbers) asks
    for it. Plain cells sit at the top (see set_default_look); a date in a tall row is
    styled to sit there too. `styles` keeps each combination's finished style, copied onto
    the next cell like it (styling each cell anew is slow)."""
    look = row_look(row) if row_look else ""
    lines = lines or {}
    tall = bool(lines)
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles.cell_style import StyleArray

    styles = {} if styles is None else styles
    cells: list[Any] = []
    for i, value in enumerate(row):
        column = looks[i] if i < len(looks) else None
        safe = (risky is None or i in risky) and needs_text_cell(value)
        wrap = i in lines
        date = tall and isinstance(value, dt.date)
        number = row_format is not None and isinstance(value, int | float) and \
            not isinstance(value, bool)
        if not look and not wrap and not date and not number and (
                value is None or column is None or column.wrap_only or
                column.indent_only and (i == 0 or row[i - 1] is None)):   # nothing to touch
            cells.append(text_cell(worksheet, value) if safe else value)
            continue
        cell = text_cell(worksheet, value) if safe else WriteOnlyCell(worksheet, value=value)
        key = (i, look, wrap, type(value) if isinstance(value, dt.date) else None,
               row_format if number else None)
        if key in styles:
            cell._style = StyleArray(styles[key])   # noqa: SLF001 (openpyxl's style indexes)
        else:
            _apply_looks(cell, column, look, wrap, row_format if number else None)
            styles[key] = StyleArray(cell._style)   # noqa: SLF001
        cells.append(cell)
    return cells


def _apply_looks(cell: Any, column: ColumnLook | None, row_look: str, wrap: bool,
                 row_format: str | None = None) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill

    indent = column.indent if column is not None else 0
    if row_format or column is not None and column.number_format:
        cell.number_format = row_format or column.number_format
    cell.alignment = Alignment(wrap_text=wrap or None, indent=indent,
                               horizontal="left" if indent else None,   # indent needs it
                               vertical="top")                          # as every cell
    if row_look == "bold":
        cell.font = Font(name=FONT_NAME, size=11, bold=True)
    elif row_look == "fill":
        cell.fill = PatternFill("solid", fgColor=ROW_FILL_COLOR)


def set_up_printing(worksheet: Any, marking: str | None, header_on_every_page: bool = True
                    ) -> None:
    """Letter landscape with narrow side margins, one page wide, the header row on every
    page (a table's), the marking line on top, the sheet, the file name and page N of M at
    the bottom."""
    from openpyxl.worksheet.page import PageMargins

    worksheet.page_setup.orientation = "landscape"
    worksheet.page_setup.paperSize = "1"   # US Letter
    worksheet.page_setup.fitToWidth = 1
    worksheet.page_setup.fitToHeight = 0
    worksheet.sheet_properties.pageSetUpPr.fitToPage = True
    worksheet.page_margins = PageMargins(left=SIDE_MARGIN_INCHES, right=SIDE_MARGIN_INCHES,
                                         top=0.75, bottom=0.75, header=0.3, footer=0.3)
    if header_on_every_page:
        worksheet.print_title_rows = "1:1"
    if marking:
        worksheet.oddHeader.center.text = marking.replace("&", "&&")
        worksheet.oddHeader.center.size = 12
    worksheet.oddFooter.left.text = "&A"
    worksheet.oddFooter.center.text = "&F"
    worksheet.oddFooter.right.text = "Page &P of &N"


def set_print_area(worksheet: Any, sheet: Sheet, row_count: int, widths: list[float]) -> None:
    """The leading `printed_columns` (all when None) and a chart below the table; with a
    print note, the header row only, and the note heads the page (after the marking)."""
    from openpyxl.utils import get_column_letter

    count = len(sheet.columns) if sheet.printed_columns is None else sheet.printed_columns
    count = max(1, min(count, len(sheet.columns)))
    rows = 1 if sheet.print_note else row_count + 1
    if sheet.chart is not None and sheet.print_note is None:
        rows += chart_rows(sheet)
        count = max(count, chart_columns(sheet, widths))
    worksheet.print_area = f"A1:{get_column_letter(count)}{rows}"
    if sheet.print_note:   # after the marking, where a reader looks first
        marking = worksheet.oddHeader.center.text
        note = sheet.print_note.replace("&", "&&")
        worksheet.oddHeader.center.text = f"{marking} \N{EM DASH} {note}" if marking else note


def chart_rows(sheet: Sheet) -> int:
    """Rows from the table's end to the chart's bottom (15-pt rows, the chart in cm)."""
    from openpyxl.utils.cell import coordinate_from_string

    _, top = coordinate_from_string(chart_anchor(sheet))
    height_rows = math.ceil(sheet.chart.height / 2.54 * 72 / HEADER_LINE_POINTS)
    return max(0, top - 1 - len(sheet.rows)) + height_rows


def chart_columns(sheet: Sheet, widths: list[float]) -> int:
    """Columns the chart spans from column A (by §10.6's 7 px per unit + 5 px a column)."""
    needed = sheet.chart.width / 2.54 * 96
    covered, count = 0.0, 0
    while covered < needed:
        covered += 7 * (widths[count] if count < len(widths) else DEFAULT_WIDTH) + 5
        count += 1
    return count


def chart_anchor(sheet: Sheet) -> str:
    """The chart's top-left cell: as given, else below the table with a blank row between."""
    return sheet.chart_anchor or f"A{len(sheet.rows) + 3}"


def add_chart(worksheet: Any, sheet: Sheet) -> None:
    anchor = chart_anchor(sheet)
    worksheet.add_chart(sheet.chart, anchor)
    if sheet.chart_on_own_page:
        from openpyxl.utils.cell import coordinate_from_string
        from openpyxl.worksheet.pagebreak import Break

        _, row = coordinate_from_string(anchor)
        worksheet.row_breaks.append(Break(id=row - 1))


def column_widths(columns: list[str], rows: list[list[Any]], max_width: int = 60,
                  column_max_widths: dict[str, int] | None = None,
                  sample: int = 2000) -> list[float]:
    """Each column as wide as its widest value plus a gap (a header wraps, to at most
    HEADER_MAX_LINES lines), at most max_width or the column's own cap (wrapped columns
    wrap there; other text longer than that is cut on paper, whole on screen)."""
    caps = column_max_widths or {}
    widths = [header_min_width(str(c)) for c in columns]
    for row in rows[:sample]:
        start = 1 if is_label_row(row) else 0   # a label alone in its row runs into the next
        for i, value in enumerate(row[start:len(widths)], start=start):
            if value is not None:
                widths[i] = max(widths[i], value_width(value) + gap_after(value))
    return [float(min(w, max_width, caps.get(str(name), max_width)))
            for name, w in zip(columns, widths, strict=True)]


def gap_after(value: Any) -> int:
    """Numbers and dates are right-aligned: they keep a wider gap to the next column."""
    return NUMBER_GAP if isinstance(value, int | float | dt.date) else TEXT_GAP


def is_label_row(row: list[Any]) -> bool:
    """Text in the first cell only (a section heading, a grid's title)."""
    return len(row) > 1 and isinstance(row[0], str) and all(v is None for v in row[1:])


def header_min_width(name: str) -> int:
    """The narrowest width that keeps a short `name` on one line and wraps a longer one to at
    most HEADER_MAX_LINES lines."""
    lines = 1 if len(name) <= ONE_LINE_HEADER else HEADER_MAX_LINES
    return max(5, math.ceil(len(name) * UPPER_CASE_WIDTH / lines) + 1)


def value_width(value: Any) -> float:
    """Width units a value needs: digits are one unit each, dates 10, text a little more
    than one unit a character (capitals are wider)."""
    if isinstance(value, dt.date):
        return 10
    if isinstance(value, int | float) and not isinstance(value, bool):
        return len(str(value))
    text = str(value)
    capitals = sum(map(str.isupper, text))
    return math.ceil(round(len(text) + (UPPER_CASE_WIDTH - 1) * capitals, 6))


def print_width_inches(widths: list[float]) -> float:
    """§10.6's measure of a print area: Excel's 7 px per width unit plus 5 px per column, at
    96 px per inch."""
    return sum(7 * w + 5 for w in widths) / 96
