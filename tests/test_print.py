"""Readable on paper (docs/data-contract.md §10.6, issue 19): every report sheet's print area
passes the width rule, printed columns come first, headers wrap in Calibri, columns are sized
to their data, rows that need action stand out, charts sit below their table with their axes
shown, Exceptions keep numeric keys as numbers and print once, share paths are links.
LibreOffice's own reading of the demo's pages is tests/print_check.py (see README "Printing")."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from xml.etree import ElementTree

import openpyxl
from openpyxl.utils import column_index_from_string, get_column_letter

from exchange.excel import Sheet, print_width_inches, write_workbook
from exchange.followup import trend_grid
from exchange.printing import as_key, lay_out_reports, lay_out_sheet
from exchange.reports import EXCEPTIONS, REPORTS, report, totals_sheet, trend_sheet
from exchange.summary import link
from tests.scenario import report_file, report_files, scenario_answer
from tests.test_reading_aids import history_of, reconciled

AS_OF = ("--as-of", "2025-06-20")
MAX_PRINT_INCHES = 13.3
REPORT_FILES = report_files()
EXCEPTION_COLUMNS = list(EXCEPTIONS[1])
QUARTERLY = report("impact").sheet("IMPACT not in DPS")
IMPACT_COLUMNS = list(QUARTERLY.columns)
LONG_TEXT = "Wolfeschlegelsteinhausenbergerdorff de la Santísima Trinidad Hernández"


def printed_widths(sheet) -> list[float]:
    """The widths of the columns in the sheet's print area, as written in the file."""
    area = sheet.print_area.split("!")[-1].replace("$", "")
    first, last = (re.match(r"[A-Z]+", part).group() for part in area.split(":"))
    return [sheet.column_dimensions[get_column_letter(i)].width
            for i in range(column_index_from_string(first), column_index_from_string(last) + 1)]


def headers(sheet) -> list[str]:
    return [cell.value for cell in next(sheet.iter_rows(max_row=1))]


def written(tmp_path, *sheets: Sheet, marking: str | None = None):
    path = tmp_path / "t.xlsx"
    write_workbook(path, list(sheets), marking=marking)
    return openpyxl.load_workbook(path), path


def test_every_sheet_of_every_report_passes_the_width_rule_and_prints_letter_landscape(
        workspace):
    assert workspace.send(*AS_OF) == 0
    results, counts = scenario_answer()
    results += b"1001|M00000000X|PENA|ZOE||F|W|EMJ|TX2270000|20250311|20250311|\r\n"  # bad NIC
    workspace.put_answer(results, counts.replace(b"RESULT_RECORDS|5", b"RESULT_RECORDS|6"))
    assert workspace.receive(*AS_OF) == 0
    for name in REPORT_FILES:
        workbook = openpyxl.load_workbook(workspace.folder("share") / name)
        for sheet in workbook.worksheets:
            where = f"{name} / {sheet.title}"
            assert print_width_inches(printed_widths(sheet)) <= MAX_PRINT_INCHES, where
            assert (sheet.page_setup.orientation, sheet.page_setup.paperSize) == \
                ("landscape", 1), where
            assert max(sheet.page_margins.left, sheet.page_margins.right) <= 0.5, where
            assert sheet.oddFooter.left.text == "&A", where
            header = next(sheet.iter_rows(max_row=1))
            assert {(c.font.name, c.font.bold, c.alignment.wrap_text) for c in header} == \
                {("Calibri", True, True)}, where
        exceptions = workbook["Exceptions"]
        assert exceptions.max_row == 2, name                                 # the bad NIC
        printed_rows = 2 if name == report_file("totals") else 1             # printed once
        assert exceptions.print_area.endswith(f"$G${printed_rows}"), name


def test_the_widest_values_of_each_report_sheet_still_pass_the_width_rule(tmp_path):
    # every text column at its longest: wrapped columns stop at their cap, the rest are short
    # every table sheet of the registry, with every optional column (caseworker, agency) on
    specs = [sheet for spec in REPORTS for sheet in spec.sheets]
    sheets = [Sheet(spec.title, list(spec.columns), [worst_row(list(spec.columns))],
                    max_width=spec.max_width) for spec in specs]
    sheets += [Sheet("Exceptions", EXCEPTION_COLUMNS, [worst_row(EXCEPTION_COLUMNS)],
                     max_width=36),
               Sheet("Read me", ["ITEM", "EXPLANATION"], [[LONG_TEXT, LONG_TEXT * 3]],
                     max_width=100)]
    printed = {spec.title: list(spec.printed) for spec in specs}
    for sheet in sheets:
        lay_out_sheet(sheet, printed.get(sheet.title))
    workbook, _ = written(tmp_path, *sheets)
    inches = {s.title: round(print_width_inches(printed_widths(s)), 2)
              for s in workbook.worksheets}
    assert {t: w for t, w in inches.items() if w > MAX_PRINT_INCHES} == {}, inches


def worst_row(columns: list[str]) -> list:
    values = {"REGION": "8-San Antonio", "NIC": "M123456789", "NEAREST_NIC": "M123456789",
              "ORI": "TX2270000", "MKE": "EMJ", "STILL_MISSING": "Y", "IN_IMPACT": "Y",
              "KIND": "row left out", "WHO_ACTS": "IMPACT data", "KEY": "M123456789",
              "IN_CARE": "N", "PHONE": "(512) 555-0199"}
    row = []
    for name in columns:
        if name in values:
            row.append(values[name])
        elif name.endswith("DATE") or name in ("DOB", "DLC", "NEAREST_DLC"):
            row.append(dt.date(2025, 12, 31))
        elif name.endswith("_ID") or name in ("PID", "LINE"):
            row.append(1234567890)
        elif name.startswith(("DAYS", "AGE")):
            row.append(9999)
        else:
            row.append(LONG_TEXT)
    return row


def test_printed_columns_come_first_in_their_order_and_the_print_area_is_theirs(tmp_path):
    printed = list(QUARTERLY.printed)
    columns = [c for c in IMPACT_COLUMNS if c not in ("CASEWORKER", "UNIT", "SUPERVISOR")]
    sheet = Sheet("IMPACT not in DPS", columns, [worst_row(columns)])
    lay_out_sheet(sheet, printed)
    assert sheet.columns[:len(printed)] == printed
    assert sheet.columns[len(printed):] == ["DOB", "AGE_AT_RUNAWAY", "NEAREST_DLC",
                                            "DAYS_OUTSIDE_WINDOW"]   # on screen, in order
    assert sheet.columns[6:8] == ["STILL_MISSING", "DAYS_MISSING"]  # next to the name
    workbook, _ = written(tmp_path, sheet)
    page = workbook["IMPACT not in DPS"]
    assert page.print_area == f"'IMPACT not in DPS'!$A$1:${get_column_letter(len(printed))}$2"
    assert headers(page) == sheet.columns


def test_a_sheet_not_listed_prints_every_column_in_its_order(tmp_path):
    sheet = Sheet("Totals by region", ["REGION", "TOTAL"], [["1-Lubbock", 3]])
    lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, sheet)
    assert headers(workbook.active) == ["REGION", "TOTAL"]
    assert workbook.active.print_area == "'Totals by region'!$A$1:$B$2"


def test_columns_are_sized_to_their_data_and_the_header_wraps(tmp_path):
    sheet = Sheet("Hints", ["DAYS_OUTSIDE_WINDOW", "NEAREST_NIC"],
                  [[17, "M303373194"], [3, None]])
    lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, sheet)
    page = workbook.active
    assert page.column_dimensions["A"].width == 9     # 2 digits; the 19-letter header wraps
    assert page["A1"].alignment.wrap_text is True
    assert page.row_dimensions[1].height == 45        # three header lines
    # the text right of a number column is indented: "17" never runs into "M303373194"
    assert (page["A2"].alignment.indent, page["B2"].alignment.indent) == (0, 1)
    assert page["B2"].alignment.horizontal == "left"       # an indent needs left alignment


def test_text_beside_a_blank_number_cell_is_not_indented(tmp_path):
    sheet = Sheet("Records", ["CLEAR_DATE", "IN_IMPACT"],
                  [[dt.date(2025, 5, 1), "Y"], [None, "N"]])
    lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, sheet)
    assert [workbook.active[f"B{r}"].alignment.indent for r in (2, 3)] == [1, 0]


def test_text_after_a_column_of_mixed_keys_is_indented(tmp_path):
    sheet = Sheet("Exceptions", ["KEY", "KIND"], [["M000000001", "warning"], [504, "row left out"]])
    lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, sheet)
    assert [workbook.active[f"B{r}"].alignment.indent for r in (2, 3)] == [1, 1]


def test_a_long_name_wraps_within_its_cap_and_its_row_is_tall_and_top_aligned(tmp_path):
    sheet = Sheet("DPS not in IMPACT", ["PID", "LAST_NAME"],
                  [[1001, "CAVAZOS-GARCIA DE LA SANTISIMA TRINIDAD"], [1002, "PENA"]])
    lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, sheet)
    page = workbook.active
    assert page.column_dimensions["B"].width == 16
    assert page["B2"].alignment.wrap_text is True
    assert (page.row_dimensions[2].height, page["A2"].alignment.vertical) == (60, "top")
    assert page.row_dimensions[3].height is None          # one line: the default height


def cell_style_ids(path, sheet_xml: str = "xl/worksheets/sheet1.xml") -> dict[str, str]:
    """Each written cell's format number as stored ("" when it has none: the first one)."""
    cells = ElementTree.fromstring(zipfile.ZipFile(path).read(sheet_xml)).iter(
        "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}c")
    return {cell.get("r"): cell.get("s", "") for cell in cells}


def test_a_tall_row_reads_level_at_the_top_with_only_the_wrapped_cell_and_date_styled(tmp_path):
    sheet = Sheet("DPS not in IMPACT", ["LAST_NAME", "PID", "DLC"],
                  [["CAVAZOS-GARCIA DE LA SANTISIMA TRINIDAD", 1001, dt.date(2025, 5, 7)],
                   ["PENA", 1002, dt.date(2025, 5, 8)]])
    lay_out_sheet(sheet)
    workbook, path = written(tmp_path, sheet)
    page = workbook.active
    # every cell sits at the top: the plain ones through the workbook's default look, which
    # Excel takes from the first cell format and LibreOffice from the "Normal" style
    assert [page[c].alignment.vertical for c in ("A2", "B2", "C2", "A3", "B3")] == ["top"] * 5
    assert workbook._named_styles["Normal"].alignment.vertical == "top"
    styled = cell_style_ids(path)
    # in the tall row the wrapped name and the date carry a style; the PID does not
    assert (styled["A2"] != "", styled["B2"], styled["C2"] != "") == (True, "", True)
    # a one-line row writes plain cells (its date carries only its date format)
    assert (styled["A3"], styled["B3"]) == ("", "")
    assert page["A2"].alignment.wrap_text is True and not page["A3"].alignment.wrap_text


def test_a_column_outside_the_print_area_keeps_its_text_on_one_line(tmp_path):
    """AGENCY is read on screen on Records (it does not print): it is not wrapped nor capped
    at its printed width, so it makes no row tall; printed, on DPS not in IMPACT, it wraps."""
    agency = "Dallas County Sheriff's Office"
    records = Sheet("Records", ["PID", "NIC", "AGENCY"], [[1001, "M000000001", agency]])
    lay_out_sheet(records, ["PID", "NIC"])
    workbook, _ = written(tmp_path, records)
    page = workbook.active
    assert (records.wrapped_columns, page.print_area) == ((), "'Records'!$A$1:$B$2")
    assert page.column_dimensions["C"].width == len(agency) + 2      # whole, capitals wider
    assert page.row_dimensions[2].height is None                    # one line
    printed = Sheet("DPS not in IMPACT", ["PID", "AGENCY"], [[1001, agency]])
    lay_out_sheet(printed, ["PID", "AGENCY"])
    assert printed.wrapped_columns == ("AGENCY",)


def test_still_missing_rows_are_filled_and_statewide_is_bold(tmp_path):
    impact = Sheet("IMPACT not in DPS", ["PID", "STILL_MISSING"], [[1, "Y"], [2, "N"]])
    totals = Sheet("Totals by region", ["REGION", "TOTAL", "MATCH_PCT"],
                   [["1-Lubbock", 3, 66.7], ["STATEWIDE", 3, 66.7]])
    for sheet in (impact, totals):
        lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, impact, totals)
    filled = workbook["IMPACT not in DPS"]
    assert [filled[f"A{r}"].fill.fgColor.rgb for r in (2, 3)] == ["00FCE4D6", "00000000"]
    grid = workbook["Totals by region"]
    assert [grid[f"A{r}"].font.b for r in (2, 3)] == [False, True]
    assert grid["C3"].font.name == "Calibri"
    assert (grid["C2"].number_format, grid["C2"].value) == ('0.0"%"', 66.7)   # shows 66.7%


def test_the_read_me_wraps_its_explanations_and_its_headings_are_bold(tmp_path):
    read_me = Sheet("Read me", ["ITEM", "EXPLANATION"],
                    [["What this is", "x " * 150], [None, None], ["Columns", None],
                     ["PID", "IMPACT person id of the child"]], max_width=100)
    lay_out_sheet(read_me)
    workbook, _ = written(tmp_path, read_me)
    page = workbook.active
    assert page.column_dimensions["B"].width <= 100
    assert page["B2"].alignment.wrap_text is True
    assert [page[f"A{r}"].font.b for r in (2, 4, 5)] == [False, True, False]


def test_exceptions_keep_numeric_keys_as_numbers_and_a_long_pid_as_its_digits(tmp_path):
    assert [as_key(v) for v in ("504", "0504", "M000000001", None, 1005)] == \
        [504, "0504", "M000000001", None, 1005]
    long_pid = 10 ** 24 + 7                       # 25 digits: Excel would show 1E+24
    sheet = Sheet("Exceptions", EXCEPTION_COLUMNS,
                  [["results.txt", 4, long_pid, "504", "row left out", "PID too long", "DPS"]])
    lay_out_sheet(sheet)
    workbook, _ = written(tmp_path, sheet)
    row = [cell for cell in next(workbook.active.iter_rows(min_row=2))]
    assert (row[2].value, row[2].data_type) == ("1000000000000000000000007", "s")
    assert (row[3].value, row[3].data_type) == (504, "n")


def test_the_exceptions_print_once_in_the_totals_workbook(tmp_path):
    shared = Sheet("Exceptions", EXCEPTION_COLUMNS,
                   [["results.txt", 4, 1001, "M000000001", "row left out", "bad DLC", "DPS"]])
    sheets = {"impact": [shared], "totals": [shared]}      # one Sheet in every workbook
    lay_out_reports(sheets, "totals", "DPS_total_runaway_events_FY2025_Q3.xlsx", {})
    impact, _ = written(tmp_path, *sheets["impact"], marking="CONFIDENTIAL")
    assert impact.active.print_area == "'Exceptions'!$A$1:$G$1"   # the header row only
    assert impact.active.oddHeader.center.text == (
        "CONFIDENTIAL \N{EM DASH} Exceptions: the rows print in "
        "DPS_total_runaway_events_FY2025_Q3.xlsx")
    assert impact.active["A2"].value == "results.txt"               # the rows are there
    totals, _ = written(tmp_path, *sheets["totals"], marking="CONFIDENTIAL")
    assert totals.active.print_area == "'Exceptions'!$A$1:$G$2"
    assert totals.active.oddHeader.center.text == "CONFIDENTIAL"


CHART = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
DRAWING = "{http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing}"


def chart_values(path, element: str) -> list[str]:
    """The `val` of every <c:element> in the workbook's one chart (xl/charts/chart1.xml)."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("xl/charts/chart1.xml"))
    return [found.get("val") for found in root.iter(f"{CHART}{element}")]


def axis_label_points(path) -> list[float]:
    """The size of each axis's labels (<c:txPr>'s default run size), in points."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("xl/charts/chart1.xml"))
    text = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
    return [int(run.get("sz")) / 100 for axis in (*root.iter(f"{CHART}catAx"),
                                                    *root.iter(f"{CHART}valAx"))
            for run in axis.find(f"{CHART}txPr").iter(f"{text}defRPr")]


def drawing_anchor_row(path) -> int:
    """The 0-based row of the chart's top-left corner (the drawing's <from><row>)."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("xl/drawings/drawing1.xml"))
    return int(root.find(f".//{DRAWING}from/{DRAWING}row").text)


def test_the_totals_chart_sits_below_its_table_with_both_axes_shown(tmp_path):
    recon = reconciled()
    workbook, path = written(tmp_path, totals_sheet(recon))
    table_rows = len(recon.totals) + 1
    assert drawing_anchor_row(path) >= table_rows            # 0-based: below the last row
    assert chart_values(path, "delete") == ["0", "0"]        # both axes shown in Excel
    assert axis_label_points(path) == [10.0, 10.0]
    area = workbook.active.print_area
    assert int(re.search(r"\$(\d+)$", area).group(1)) > table_rows   # the chart prints too


def test_the_trend_chart_has_straight_marked_lines_from_zero_and_shown_axes(tmp_path):
    history = history_of(("FY2025Q2", (5, 1), (60, 15)), ("FY2025Q3", (8, 1), (80, 8)))
    _, path = written(tmp_path, trend_sheet(*trend_grid(history, "FY2025Q3")))
    assert chart_values(path, "delete") == ["0", "0"]
    assert axis_label_points(path) == [10.0, 10.0]            # LibreOffice's default: 6.3 pt
    assert (chart_values(path, "smooth"), chart_values(path, "symbol")) == (["0"], ["circle"])
    assert chart_values(path, "min") == ["0"]                 # the y-axis starts at 0


def test_share_paths_in_the_mail_are_file_links():
    assert link(r"\\fs01\DPS Share\FY2025") == (
        "<a href='file://fs01/DPS%20Share/FY2025'>\\\\fs01\\DPS Share\\FY2025</a>")
    assert link("/srv/share/I.xlsx") == "<a href='file:///srv/share/I.xlsx'>/srv/share/I.xlsx</a>"
    assert link("https://x.sharepoint.com/a") == (
        "<a href='https://x.sharepoint.com/a'>https://x.sharepoint.com/a</a>")
    assert link("not a path") == "not a path"
