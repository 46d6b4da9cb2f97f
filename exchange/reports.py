"""The reports, declared once (docs/data-contract.md §6, §8, §9): one `ReportSpec` per report.

A spec says everything about its report: the file stem, its sheets with their ordered columns
and where their rows come from, what the report is and what to do with a row (the Read me),
how the summary mail defines and counts it, and the name its count has in the run record and
the trend history. File names, sheets, the Read me, the summary mail, the run record's counts,
`--help` and the table in docs/data-contract.md all iterate `REPORTS`; a column's meaning is
in `COLUMNS` below. Adding a column DPS or IMPACT already gives is one line in a spec and one
in `COLUMNS`; adding a report is one spec here and one rule (a function giving its rows) in
exchange/reconcile.py, plus its tests.

Pure logic: the caller writes the workbooks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exchange.answer import Problem
from exchange.closure import timeliness_trend_counts
from exchange.excel import Sheet, frame_rows
from exchange.periods import Period
from exchange.printing import PERCENT_FORMAT, lay_out_reports
from exchange.readme import READ_ME_COLUMNS, ReadmeContext, readme_rows
from exchange.reconcile import STATEWIDE, Reconciliation, counts_by_region

PRINT_WIDTH = 36   # widest column of a main sheet: keeps a printed page (one page wide) legible
# Shown only when their setting is on (database.caseworker_query, reports.ori_directory):
WHO_ACTS = ("CASEWORKER", "UNIT", "SUPERVISOR", "AGENCY", "PHONE")
TOTALS_TITLE = "Totals by region"
EXCEPTIONS = ("Exceptions", ("FILE", "LINE", "PID", "KEY", "KIND", "REASON", "WHO_ACTS"))
EPISODES_COUNT = "EPISODES"   # the trend's denominator: the period's episodes per region
EXCEPTIONS_PRINTED_IN = "totals"   # the one report whose Exceptions sheet prints (§10.6)


@dataclass(frozen=True)
class ReportInputs:
    """What every report's sheets are built from."""

    recon: Reconciliation
    trend: tuple   # followup.trend_grid's periods, counts, shares; then on_time_shares
    context: ReadmeContext
    problems: list[Problem]


@dataclass(frozen=True)
class SheetSpec:
    """One sheet of a report: a table of `columns` from the rows `frame` gives, or (for the
    grids) a `build` function that makes the whole Sheet."""

    title: str
    columns: tuple[str, ...] = ()
    frame: Callable[[Reconciliation], Any] | None = None
    build: Callable[[ReportInputs], Sheet] | None = None
    max_width: int = 60
    empty_note: str = ""       # said in one line under the header when there are no rows
    printed: tuple[str, ...] = ()   # §10.6: the columns a reader acts on, printed first and in
    #                                 this order (the others follow on screen); () prints all

    def table(self, recon: Reconciliation) -> Any:
        """The rows this sheet shows, as a DataFrame of its columns in order (a column of
        WHO_ACTS only when its setting is on, i.e. the rule added it)."""
        if self.frame is None:
            raise TypeError(f"sheet {self.title}: a grid, not a table")
        frame = self.frame(recon)
        return frame[[c for c in self.columns if c not in WHO_ACTS or c in frame.columns]]

    def sheet(self, inputs: ReportInputs) -> Sheet:
        if self.build is not None:
            return self.build(inputs)
        table = self.table(inputs.recon)
        rows = frame_rows(table)
        if not rows and self.empty_note:
            rows = [[self.empty_note, *[None] * (len(table.columns) - 1)]]
        return Sheet(self.title, list(table.columns), rows, max_width=self.max_width)


@dataclass(frozen=True)
class ReportSpec:
    """One report: its file, its sheets (Exceptions and Read me follow them), its texts."""

    key: str                   # short name in run records and queues, e.g. "impact"
    stem: str                  # the file name before _FY2025_Q3.xlsx
    sheets: tuple[SheetSpec, ...]
    what: str                  # Read me: what the report is
    action: str                # Read me: what to do with a row
    definition: str            # the summary mail's one-line definition
    rows: Callable[[Reconciliation], Any]    # the rows counted (a DataFrame with REGION)
    record_field: str          # its count's key in the run record
    status_label: str          # its count in the run summary and the log, e.g. "DPS events"
    mail_column: str           # its column in the summary mail's region table
    count_column: str          # its count's column in the trend history (followup.py)
    compare_previous: bool = False   # the mail shows the previous period's count beside it
    mail_line: str = ""        # the mail's line counting it ("" = none), then its split:
    mail_split: Callable[[Any], list[tuple[str, int]]] = field(default=lambda rows: [])
    mail_lead: Callable[[Reconciliation, Period], list[tuple[str, Any]]] = \
        field(default=lambda recon, period: [])   # lines that open the mail
    mail_regions: Callable[[Reconciliation, Period], dict[str, dict[str, int]]] = \
        field(default=lambda recon, period: {})   # region table columns: title -> region -> n

    def file_name(self, period: Period) -> str:
        return f"{self.stem}_{period.file_label}.xlsx"

    def sheet(self, title: str) -> SheetSpec:
        """The report's sheet of this title."""
        return next(sheet for sheet in self.sheets if sheet.title == title)

    def count(self, recon: Reconciliation) -> int:
        return len(self.rows(recon))


def report(key: str) -> ReportSpec:
    """The spec of the report with this key ("impact", "dps", "totals", "returned")."""
    return next(spec for spec in REPORTS if spec.key == key)


def every_report_sheets(inputs: ReportInputs, period: Period) -> dict[str, list[Sheet]]:
    """Report key -> its sheets, laid out for print (§10.6): printed-first columns, wraps,
    formats; the Exceptions (the same rows in every workbook) print only in the report
    EXCEPTIONS_PRINTED_IN, the others' copy points to its file."""
    title, columns = EXCEPTIONS
    exceptions = Sheet(title, list(columns), [p.as_row() for p in inputs.problems])
    sheets = {spec.key: report_sheets(spec, inputs, exceptions) for spec in REPORTS}
    printed = {sheet.title: list(sheet.printed) for spec in REPORTS for sheet in spec.sheets
               if sheet.printed}
    lay_out_reports(sheets, EXCEPTIONS_PRINTED_IN,
                    report(EXCEPTIONS_PRINTED_IN).file_name(period), printed)
    return sheets


def report_sheets(spec: ReportSpec, inputs: ReportInputs, exceptions: Sheet) -> list[Sheet]:
    """The report's own sheets, then Exceptions, then the Read me (last)."""
    first = [sheet.sheet(inputs) for sheet in spec.sheets]
    shown = [name for sheet in [*first, exceptions] for name in sheet.columns]
    explained = [(name, explain_column(name)) for name in dict.fromkeys(shown)
                 if name not in READ_ME_COLUMNS]
    read_me = Sheet("Read me", READ_ME_COLUMNS,
                    readme_rows(spec.what, spec.action, explained, TERMS, inputs.context,
                                {other.key: other.stem for other in REPORTS}), max_width=100,
                    header_on_every_page=False)   # a text, not a table (and LibreOffice
    #                                               printed a blank page after one with it)
    return [*first, exceptions, read_me]


def report_files(period: Period) -> dict[str, str]:
    """Report key -> its file name for the period, in the order of REPORTS."""
    return {spec.key: spec.file_name(period) for spec in REPORTS}


def report_counts(recon: Reconciliation) -> dict[str, int]:
    """The run record's count fields: record_field -> rows."""
    return {spec.record_field: spec.count(recon) for spec in REPORTS}


def counts_summary(recon: Reconciliation) -> str:
    """One line of counts for the run record and the log: "3 IMPACT not in DPS, ..."."""
    return ", ".join(f"{spec.count(recon)} {spec.status_label}" for spec in REPORTS)


def trend_rows(recon: Reconciliation) -> list[dict[str, Any]]:
    """Per region and STATEWIDE: the period's episodes and each report's rows (§8's trend),
    and the timeliness population with its reports on time (§10.3)."""
    frames = {EPISODES_COUNT: recon.episodes_in_period,
              **{spec.count_column: spec.rows(recon) for spec in REPORTS}}
    rows = counts_by_region(frames, recon.regions)
    timely = {row["REGION"]: row for row in
              timeliness_trend_counts(recon.timeliness, recon.regions.labels)}
    for row in rows:
        counts = timely.get(row["REGION"], {})
        row.update(TIMELINESS_EPISODES=counts.get("TIMELINESS_EPISODES", 0),
                   REPORTED_ON_TIME=counts.get("REPORTED_ON_TIME", 0))
    return rows


def stems_text() -> str:
    """The reports' stems for --help: "A, B, C and D"."""
    stems = [spec.stem for spec in REPORTS]
    return ", ".join(stems[:-1]) + f" and {stems[-1]}" if len(stems) > 1 else stems[0]


def docs_table() -> str:
    """The Markdown table of reports, sheets and columns in docs/data-contract.md (kept in
    step by tests/test_report_registry.py; regenerate with
    `.venv/bin/python -m exchange.reports`)."""
    lines = ["| report | sheet | columns (in the contract's order) | printed first (§10.6) |",
             "| --- | --- | --- | --- |"]
    for spec in REPORTS:
        for sheet in spec.sheets:
            columns = ", ".join(sheet.columns) if sheet.columns else "(a grid, see below)"
            printed = ", ".join(sheet.printed) or "all"
            lines.append(f"| `{spec.stem}_FY…_Q….xlsx` | {sheet.title} | {columns} | "
                         f"{printed} |")
        lines.append(f"| | {EXCEPTIONS[0]}, Read me | {', '.join(EXCEPTIONS[1])}; "
                     f"{', '.join(READ_ME_COLUMNS)} | all |")
    return "\n".join(lines)


def undocumented_columns() -> list[str]:
    """Columns a report shows that COLUMNS does not explain (a test keeps it empty)."""
    names = [name for spec in REPORTS for sheet in spec.sheets for name in sheet.columns]
    return sorted({name for name in [*names, *EXCEPTIONS[1]] if not explain_column(name)})


# ---------------------------------------------------------------------------
# Every column any report shows, and what it means (each Read me's column list)
# ---------------------------------------------------------------------------

COLUMNS = {
    "REGION": "DFPS region, e.g. 6-Houston (from the county; Unknown when there is none)",
    "COUNTY_NAME": "Texas county the region comes from: the runaway episode's county in IMPACT, "
                   "else (and for DPS rows) the county of the child's latest removal",
    "PID": "IMPACT person id of the child",
    "EPISODE_ID": "IMPACT runaway episode id",
    "LAST_NAME": "last name, as this sheet's source gives it (see DOB)",
    "FIRST_NAME": "first name, as this sheet's source gives it (see DOB)",
    "DOB": "date of birth, as this sheet's source gives it: IMPACT on the sheets of runaway "
           "episodes, DPS on the sheets of DPS records",
    "RUNAWAY_DATE": "day the child ran away, by IMPACT",
    "RETURN_DATE": "day the child came back, by IMPACT (blank: still away)",
    "DAYS_MISSING": "days from RUNAWAY_DATE to RETURN_DATE, or to the run date while away",
    "NOTE": "why DPS may have no record: not sent (not in care, or excluded with the reason), "
            "or DPS's row for this child left out (line on Exceptions)",
    "STILL_MISSING": "Y when the child is still away on the run date, by IMPACT",
    "AGE_AT_RUNAWAY": "whole years from DOB to RUNAWAY_DATE",
    "NIC": "NCIC number of DPS's missing-person record (M + 9 digits)",
    "MKE": "NCIC message key: EMD disability, EME endangered, EMI involuntary, EMJ juvenile, "
           "EMV catastrophe victim, EMO other",
    "ORI": "the police agency that entered the record (9 characters, starting TX)",
    "ENTRY_DATE": "day the record was entered in TCIC/NCIC",
    "DLC": "date of last contact: the day the child was last seen, by DPS",
    "CLEAR_DATE": "day the record was cleared (blank: the entry is still active)",
    "IN_IMPACT": "Records: Y when the record matches an IMPACT runaway episode; Totals: how "
                 "many records of the region do",
    "TOTAL": "records with a DLC in the period",
    "NOT_IN_IMPACT": "records that match no IMPACT episode",
    "MATCH_PCT": "IN_IMPACT as a percentage of TOTAL",
    "NEAREST_NIC": "the child's DPS record nearest to this episode's match window, when its DLC "
                   "is 1 to N days outside it (see Terms): often the same runaway, dated "
                   "differently",
    "NEAREST_DLC": "that record's DLC",
    "NEAREST_EPISODE_ID": "the child's IMPACT episode whose match window is nearest to this "
                          "record's DLC, 1 to N days outside it (see Terms)",
    "NEAREST_RUNAWAY_DATE": "that episode's RUNAWAY_DATE",
    "DAYS_OUTSIDE_WINDOW": "days the nearest DLC lies outside the episode's match window",
    "DAYS_SINCE_RETURN": "days from the latest matched RETURN_DATE to the run date (a DLC after "
                         "that return, within W days, still matches: ask the ORI before "
                         "clearing)",
    "FILE": "the input file (or query) the row comes from",
    "LINE": "physical line in that file (header = line 1), or row number of a query",
    "KEY": "the row's NIC or EPISODE_ID (blank when unreadable)",
    "KIND": "row left out (not used for matching), or warning (used, see REASON)",
    "REASON": "what is wrong, naming the column",
    "WHO_ACTS": "who must fix it: DPS (its files) or IMPACT data",
    "AGE_NOW": "whole years from DOB to the run date",
    "RUNAWAY_PERIOD": "the fiscal quarter the child ran away in (e.g. FY2025Q1): this list keeps "
                      "a child from any quarter until a DPS record matches or the child returns",
    "IN_CARE": "Y: in DFPS care on the run date (the chosen removal has no discharge, or one "
               "after the run date); N: discharged on or before it (ask who has the child now, "
               "and check the episode in IMPACT); blank: not in the file sent to DPS",
    "CASEWORKER": "the worker primarily assigned to the child on the run date (IMPACT)",
    "UNIT": "the caseworker's unit",
    "SUPERVISOR": "the caseworker's supervisor",
    "AGENCY": "the police agency of ORI, from the ORI directory (blank: ORI not in it)",
    "PHONE": "that agency's phone number, from the ORI directory",
    "AGE_AT_DLC": "whole years from DPS's DOB to DLC",
    "NEAREST_RETURN_DATE": "that episode's RETURN_DATE (blank: still open)",
    "EPISODES": "Timeliness: the period's runaway episodes of children sent to DPS, missing 2 "
                "days or longer (HHS-OIG's population)",
    "REPORTED_ON_TIME": "episodes whose first matching DPS record was entered at most 1 day "
                        "after the runaway (an entry before it counts as on time)",
    "REPORTED_LATE": "episodes whose first matching record was entered 2 or more days after "
                     "the runaway",
    "NOT_REPORTED": "episodes that match no DPS record",
    "ON_TIME_PCT": "REPORTED_ON_TIME as a percentage of EPISODES",
    "DAYS_TO_ENTRY": "days from RUNAWAY_DATE to the ENTRY_DATE of the first matching record",
    "STILL_MISSING_NOW": "Timeliness: the region's rows on Still missing now (away today, never "
                         "reported, any quarter)",
    "UNREPORTED_IN_PERIOD": "Timeliness: the region's rows on the period's sheet (runaway "
                            "episodes of the period with no DPS record)",
}
TERMS = [
    ("DLC", "date of last contact: the day DPS's record says the child was last seen"),
    ("TCIC/NCIC", "the Texas and national crime information centers, where police enter "
                  "missing persons; DPS answers from them"),
    ("match window", "a DPS record matches an IMPACT runaway episode of the same child when "
                     "its DLC lies between RUNAWAY_DATE - W and RETURN_DATE + W days (no end "
                     "while the child is away)"),
    ("sa_98", "IMPACT's runaway episodes (the query or extract this report reads)"),
    ("send_children", "IMPACT's children in care during the period (the file sent to DPS)"),
    ("W, N, G", "W: the match window's days; N: how far outside it the NEAREST_ columns look; "
                "G: days after a return before a still-active entry is listed (values under "
                "Audit)"),
    ("NEAREST_ hints", "point only at a record (or episode) of the child that matched nothing "
                       "else. A hint never justifies waiting to report a child who is still "
                       "missing: report first, then reconcile the dates"),
    ("timeliness", "HHS-OIG's 2023 method: federal law (42 U.S.C. 671(a)(35)(B)) asks for a "
                   "report to law enforcement within 24 hours; OIG counted episodes missing 2 "
                   "calendar days or longer and called a report late when entered 2 or more "
                   "days after the child went missing"),
]
MONTH_COLUMN = re.compile(r"^DLC \d{4}-\d{2}$")
PERIOD_COLUMN = re.compile(r"^FY\d{4}Q[1-4]$")


def explain_column(name: str) -> str:
    """What a column means; month and period columns of the grids are explained by pattern."""
    if MONTH_COLUMN.match(name):
        return f"records whose DLC falls in {name[4:]}"
    if PERIOD_COLUMN.match(name):
        return (f"the period {name}: counts, then its runaway episodes, then the % of them "
                f"unreported, then the % of its runaways of 2+ days reported on time")
    return COLUMNS.get(name, "")


# ---------------------------------------------------------------------------
# The grids of DPS_total_runaway_events
# ---------------------------------------------------------------------------


def totals_columns(months: list[str]) -> list[str]:
    return ["REGION", *[f"DLC {month}" for month in months], "TOTAL", "IN_IMPACT",
            "NOT_IN_IMPACT", "MATCH_PCT"]


def totals_sheet(recon: Reconciliation) -> Sheet:
    """The REGION x month grid, STATEWIDE last (outside the autofilter), and a bar chart of
    the totals by region below it."""
    from openpyxl.chart import BarChart, Reference

    chart = BarChart()
    chart.title = "DPS runaway events by region"
    chart.y_axis.title = "records"
    chart.x_axis.title = "region"
    region_count = len(recon.totals) - 1   # without STATEWIDE
    total_column = column_letter(len(recon.months) + 2)
    # write-only sheets cannot be referenced before they exist: refer by title and bounds.
    chart.add_data(Reference(range_string=f"'{TOTALS_TITLE}'!${total_column}$1:"
                                          f"${total_column}${region_count + 1}"),
                   titles_from_data=True)
    chart.set_categories(Reference(range_string=f"'{TOTALS_TITLE}'!$A$2:"
                                                f"$A${region_count + 1}"))
    chart.legend = None
    show_axes(chart)
    chart.width, chart.height = 22, 7.5    # below the table, on the same landscape page
    columns = totals_columns(recon.months)
    return Sheet(TOTALS_TITLE, columns, recon.totals, chart=chart, unfiltered_last_rows=1)


def trend_sheet(periods: list[str], counts: list[list[Any]], shares: list[list[Any]],
                episodes: list[list[Any]] | None = None,
                on_time: list[list[Any]] | None = None) -> Sheet:
    """IMPACT_not_in_DPS per region over the recorded periods, then each period's runaway
    episodes (the denominators), then the % of them left unreported, and a line chart of the
    STATEWIDE % (§8) on its own page; then the % of the period's runaways of 2 days or more
    reported on time (§10.3)."""
    from openpyxl.chart import LineChart, Reference
    from openpyxl.chart.marker import Marker

    def as_percent(grid: list[list[Any]]) -> list[list[Any]]:
        return [[row[0], *[None if v is None else round(100 * v, 1) for v in row[1:]]]
                for row in grid]

    blank = [None] * (len(periods) + 1)

    def heading(text: str) -> list[Any]:
        return [text, *[None] * len(periods)]

    denominators = [] if episodes is None else \
        [blank, heading("Runaway episodes in the period (the % denominators)"), *episodes]
    rows = [heading("Runaway episodes with no DPS record (IMPACT not in DPS)"), *counts,
            *denominators, list(blank), heading("% of the period's episodes unreported")]
    percent_rows = list(range(len(rows), len(rows) + len(shares)))
    rows += as_percent(shares)
    statewide_row = len(rows) + 1          # the last unreported-share row (header: row 1)
    if on_time is not None:
        rows += [list(blank), heading("% of runaways of 2+ days reported on time (HHS-OIG)")]
        percent_rows += range(len(rows), len(rows) + len(on_time))
        rows += as_percent(on_time)
    chart = LineChart()
    chart.title = "STATEWIDE: % of runaway episodes with no DPS record"
    chart.y_axis.title = "% unreported"
    chart.x_axis.title = "period"
    last = column_letter(len(periods) + 1)
    if periods:
        chart.add_data(Reference(range_string=f"'Trend'!$B${statewide_row}:"
                                              f"${last}${statewide_row}"), from_rows=True)
        chart.set_categories(Reference(range_string=f"'Trend'!$B$1:${last}$1"))
    for series in chart.series:
        series.smooth = False              # straight lines between periods, each one marked
        series.marker = Marker(symbol="circle", size=7)
    chart.y_axis.scaling.min = 0
    chart.legend = None
    show_axes(chart)
    chart.width, chart.height = 24, 14     # one landscape page
    return Sheet("Trend", ["REGION", *periods], rows, chart=chart,
                 chart_anchor=f"A{len(rows) + 3}", chart_on_own_page=True,
                 unfiltered_last_rows=len(rows) - len(counts),   # the regions filter
                 row_formats=dict.fromkeys(percent_rows, PERCENT_FORMAT))


CHART_LABEL_POINTS = 10   # axis labels; a reader's default (LibreOffice's) printed at 6.3 pt


def show_axes(chart: Any) -> None:
    """openpyxl leaves an axis's `delete` unset, and current Excel then hides the axis. The
    axis labels get an explicit size, so they print as large as the body text."""
    from openpyxl.chart.text import RichText
    from openpyxl.drawing.text import CharacterProperties, Paragraph, ParagraphProperties

    for axis in (chart.x_axis, chart.y_axis):
        axis.delete = False
        size = CharacterProperties(sz=CHART_LABEL_POINTS * 100)
        axis.txPr = RichText(p=[Paragraph(pPr=ParagraphProperties(defRPr=size),
                                          endParaRPr=size)])


def column_letter(number: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(number)


def unreported_split(rows: Any) -> list[tuple[str, int]]:
    """IMPACT_not_in_DPS's rows: not sent to DPS, else still missing, else returned."""
    not_sent = rows["NOTE"].astype(str).str.startswith("not sent to DPS")
    still = (rows["STILL_MISSING"] == "Y") & ~not_sent
    return [("still missing", int(still.sum())),
            ("returned", int((~still & ~not_sent).sum())),
            ("not sent to DPS", int(not_sent.sum()))]


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------

_DPS = ("REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "MKE", "ORI",
        "AGENCY", "PHONE", "ENTRY_DATE", "DLC")
_WORKER = ("CASEWORKER", "UNIT", "SUPERVISOR")
_EPISODE = ("REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", *_WORKER)


TIMELINESS_COLUMNS = ("REGION", "EPISODES", "REPORTED_ON_TIME", "REPORTED_LATE", "NOT_REPORTED",
                      "ON_TIME_PCT", "STILL_MISSING_NOW", "UNREPORTED_IN_PERIOD")


def timeliness_sheet(recon: Reconciliation) -> Sheet:
    """§10.3's grid: per region the episodes missing 2 days or longer and how they were
    reported; beside it the rows to act on per region (the standing list, the period's
    unmatched episodes: issue 19's counts at a glance); STATEWIDE last, outside the
    autofilter."""
    still = recon.still_missing.groupby("REGION").size().to_dict()
    unreported = recon.impact_not_in_dps.groupby("REGION").size().to_dict()
    grid = recon.timeliness_grid
    grid = [*grid[:-1], *[[label, 0, 0, 0, 0, None] for label in
                          regions_missing([row[0] for row in grid], still, unreported)],
            grid[-1]]
    rows = [[*row,
             len(recon.still_missing) if row[0] == STATEWIDE else int(still.get(row[0], 0)),
             len(recon.impact_not_in_dps) if row[0] == STATEWIDE
             else int(unreported.get(row[0], 0))] for row in grid]
    return Sheet("Timeliness", list(TIMELINESS_COLUMNS), rows, unfiltered_last_rows=1)


def regions_missing(labels: list[str], *by_region: dict[str, int]) -> list[str]:
    """Regions counted in `by_region` but absent from `labels` (a grid's regions, STATEWIDE
    last): e.g. Unknown, when only the standing list has a child without a county. A grid
    gains a row for each, before STATEWIDE, so its regions add up to STATEWIDE."""
    extra = {label for counts in by_region for label, count in counts.items() if count}
    return sorted(extra - {*labels, STATEWIDE})


def impact_lead(recon: Reconciliation, period: Period) -> list[tuple[str, Any]]:
    """The mail's first lines: still missing, never reported, and how many of them ran before
    this period (§10.1); how the period's runaways were reported, statewide (§10.3)."""
    rows = recon.still_missing
    before = int((rows["RUNAWAY_DATE"] < pd_timestamp(period.start)).sum())
    after = int((rows["RUNAWAY_DATE"] > pd_timestamp(period.end)).sum())
    outcomes = recon.timeliness["OUTCOME"]
    reported = ", ".join(f"{int((outcomes == name).sum())} {name}"
                         for name in ("on time", "late", "not reported"))
    # the list runs to the run date: runaways after the period's end are said apart, so the
    # rest is not read as the period's own (an analyst's reading of "188 (159 ran before)")
    split = f"{before} ran before this period" + (f", {after} after it" if after else "")
    return [("Still missing, never reported", f"{len(rows)} ({split})"),
            ("Runaways of 2 days or more reported to law enforcement (HHS-OIG's method)",
             reported)]


def still_missing_regions(recon: Reconciliation, period: Period) -> dict[str, dict[str, int]]:
    rows = recon.still_missing
    before = rows[rows["RUNAWAY_DATE"] < pd_timestamp(period.start)]
    return {"Still missing, never reported": rows.groupby("REGION").size().to_dict(),
            "of them ran before the period": before.groupby("REGION").size().to_dict()}


def pd_timestamp(day: Any) -> Any:
    import pandas as pd

    return pd.Timestamp(day)


REPORTS: tuple[ReportSpec, ...] = (
    ReportSpec(
        key="impact", stem="IMPACT_not_in_DPS",
        sheets=(
            SheetSpec("Still missing now", (
                *_EPISODE, "DOB", "AGE_NOW", "RUNAWAY_DATE", "RUNAWAY_PERIOD", "DAYS_MISSING",
                "IN_CARE", "NOTE", "NEAREST_NIC", "NEAREST_DLC", "DAYS_OUTSIDE_WINDOW"),
                frame=lambda recon: recon.still_missing, max_width=PRINT_WIDTH,
                empty_note="No child is missing on the run date without a DPS record.",
                printed=("REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME",
                         "FIRST_NAME", "CASEWORKER", "DAYS_MISSING", "RUNAWAY_DATE", "IN_CARE",
                         "NOTE")),
            SheetSpec("IMPACT not in DPS", (
                *_EPISODE, "DOB", "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NOTE",
                "STILL_MISSING", "AGE_AT_RUNAWAY", "NEAREST_NIC", "NEAREST_DLC",
                "DAYS_OUTSIDE_WINDOW"),
                frame=lambda recon: recon.impact_not_in_dps, max_width=PRINT_WIDTH,
                printed=("REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME",
                         "FIRST_NAME", "STILL_MISSING", "DAYS_MISSING", "RUNAWAY_DATE",
                         "RETURN_DATE", "NOTE", "NEAREST_NIC")),
            SheetSpec("Timeliness", TIMELINESS_COLUMNS,
                      build=lambda inputs: timeliness_sheet(inputs.recon)),
            SheetSpec("Reported late", (
                *_EPISODE, "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NIC", "ENTRY_DATE",
                "DAYS_TO_ENTRY"),
                frame=lambda recon: recon.reported_late, max_width=PRINT_WIDTH,
                printed=("REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME",
                         "FIRST_NAME", "CASEWORKER", "RUNAWAY_DATE", "DAYS_TO_ENTRY", "NIC",
                         "ENTRY_DATE"))),
        what="Children IMPACT shows as run away with no DPS missing-person record: first "
             "those still missing on the run date whatever quarter they ran in (Still missing "
             "now), then the period's runaway episodes with no record near their date, and how "
             "promptly the period's runaways were reported (Timeliness, Reported late).",
        action="Start with Still missing now: each row is a child away today with no police "
               "record; make sure a missing-person report is made today. A NEAREST_ hint never "
               "justifies waiting to report a child who is still missing. On the period's "
               "sheet, read NOTE and the NEAREST_ columns: a nearby DPS record is often the "
               "same runaway, dated differently.",
        definition="runaway episodes IMPACT recorded in the period with no DPS missing-person "
                   "record near that date; first, every child still missing today who was "
                   "never reported",
        rows=lambda recon: recon.impact_not_in_dps, record_field="impact_not_in_dps",
        status_label="IMPACT not in DPS", mail_column="IMPACT not in DPS",
        count_column="IMPACT_NOT_IN_DPS", compare_previous=True,
        mail_line="Runaway episodes with no DPS record", mail_split=unreported_split,
        mail_lead=impact_lead, mail_regions=still_missing_regions),
    ReportSpec(
        key="dps", stem="DPS_not_in_IMPACT",
        sheets=(SheetSpec("DPS not in IMPACT", (
            *_DPS, "CLEAR_DATE", "AGE_AT_DLC", "NEAREST_EPISODE_ID", "NEAREST_RUNAWAY_DATE",
            "NEAREST_RETURN_DATE", "DAYS_OUTSIDE_WINDOW"),
            frame=lambda recon: recon.dps_not_in_impact, max_width=PRINT_WIDTH,
            printed=("REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB",
                     "MKE", "DLC", "AGENCY", "NEAREST_EPISODE_ID", "NEAREST_RUNAWAY_DATE")),),
        what="DPS missing-person records with a date of last contact (DLC) in the period that "
             "match no IMPACT runaway episode.",
        action="Check whether IMPACT lacks the runaway episode (the NEAREST_ columns point to a "
               "nearby one that no record matched); record it in IMPACT when the child did run "
               "away.",
        definition="DPS missing-person records with a last contact in the period that match "
                   "no IMPACT runaway episode",
        rows=lambda recon: recon.dps_not_in_impact, record_field="dps_not_in_impact",
        status_label="DPS not in IMPACT", mail_column="DPS not in IMPACT",
        count_column="DPS_NOT_IN_IMPACT"),
    ReportSpec(
        key="totals", stem="DPS_total_runaway_events",
        sheets=(SheetSpec(TOTALS_TITLE, build=lambda inputs: totals_sheet(inputs.recon)),
                SheetSpec("Records", (*_DPS, "CLEAR_DATE", "IN_IMPACT"),
                          frame=lambda recon: recon.period_records,
                          printed=("REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME",
                                   "FIRST_NAME", "DOB", "MKE", "ORI", "DLC", "CLEAR_DATE",
                                   "IN_IMPACT")),
                SheetSpec("Trend", build=lambda inputs: trend_sheet(*inputs.trend))),   # + §10.3
        what="DPS missing-person records with a DLC in the period, counted by region and "
             "month of DLC, with the share found in IMPACT; the Trend sheet follows the "
             "unreported runaways over the recorded periods.",
        action="Compare regions and periods; the Records sheet lists every record counted.",
        definition="DPS records in the period by region and month, with the "
                   "quarter-over-quarter trend",
        rows=lambda recon: recon.period_records, record_field="dps_events",
        status_label="DPS events", mail_column="DPS runaway events", count_column="DPS_EVENTS"),
    ReportSpec(
        key="returned", stem="Returned_still_active_in_NCIC",
        sheets=(SheetSpec("Returned still active", (
            "REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", *_WORKER, "DOB",
            "MKE", "ORI", "AGENCY", "PHONE", "ENTRY_DATE", "DLC", "EPISODE_ID", "RUNAWAY_DATE",
            "RETURN_DATE", "DAYS_SINCE_RETURN", "IN_CARE"),
            frame=lambda recon: recon.returned_active, max_width=PRINT_WIDTH,
            printed=("REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME",
                     "CASEWORKER", "AGENCY", "PHONE", "RETURN_DATE", "DAYS_SINCE_RETURN",
                     "IN_CARE")),),
        what="Children back by IMPACT (every matched runaway episode closed, one of them in "
             "the period) whose DPS missing-person entry is still active (no CLEAR_DATE).",
        action="Ask the agency named by ORI (AGENCY, PHONE) to clear the entry: a found child "
               "can be stopped as a runaway. IN_CARE = N: the child has left care; the "
               "caseworker named may no longer be the one to ask.",
        definition="children back by IMPACT whose DPS entry is still active: the agency (ORI) "
                   "must clear it",
        rows=lambda recon: recon.returned_active, record_field="returned_still_active",
        status_label="returned still active", mail_column="Returned still active",
        count_column="RETURNED_STILL_ACTIVE",
        mail_line="Returned children whose DPS entry is still active"),
)


DOCS_BEGIN, DOCS_END = "<!-- reports table: begin -->\n", "\n<!-- reports table: end -->"


def docs_with_table(text: str) -> str:
    """The contract doc's text with the generated table between its markers."""
    start, end = text.index(DOCS_BEGIN) + len(DOCS_BEGIN), text.index(DOCS_END)
    return text[:start] + docs_table() + text[end:]


if __name__ == "__main__":   # .venv/bin/python -m exchange.reports: refresh the docs' table
    from pathlib import Path

    doc = Path(__file__).resolve().parent.parent / "docs" / "data-contract.md"
    doc.write_text(docs_with_table(doc.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote the reports table into {doc}")
