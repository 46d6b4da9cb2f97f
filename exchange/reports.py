"""The report workbooks' sheets and file names (docs/data-contract.md §6, §8, §9). Pure
logic: the caller writes the workbooks."""

from __future__ import annotations

from typing import Any

from exchange.answer import Problem
from exchange.excel import Sheet, frame_rows
from exchange.periods import Period
from exchange.printing import lay_out_reports
from exchange.readme import READ_ME_COLUMNS, ReadmeContext, readme_rows
from exchange.reconcile import (
    DPS_COLUMNS,
    DPS_NOT_IN_IMPACT_COLUMNS,
    IMPACT_COLUMNS,
    RETURNED_COLUMNS,
    Reconciliation,
)

EXCEPTION_COLUMNS = ["FILE", "LINE", "PID", "KEY", "KIND", "REASON", "WHO_ACTS"]
PRINT_WIDTH = 36   # widest column of a main sheet: keeps a printed page (one page wide) legible
TOTALS_TITLE = "Totals by region"


def report_file_names(period: Period) -> dict[str, str]:
    label = period.file_label
    return {"impact": f"IMPACT_not_in_DPS_{label}.xlsx",
            "dps": f"DPS_not_in_IMPACT_{label}.xlsx",
            "totals": f"DPS_total_runaway_events_{label}.xlsx",
            "returned": f"Returned_still_active_in_NCIC_{label}.xlsx"}


def build_report_sheets(recon: Reconciliation, trend: tuple[Any, ...],
                        context: ReadmeContext, problems: list[Problem]
                        ) -> dict[str, list[Sheet]]:
    """The sheets of each of the four workbooks; Exceptions, then Read me, last."""
    exceptions = Sheet("Exceptions", EXCEPTION_COLUMNS, [p.as_row() for p in problems])
    main = {
        "impact": [Sheet("IMPACT not in DPS", IMPACT_COLUMNS,
                         frame_rows(recon.impact_not_in_dps), max_width=PRINT_WIDTH)],
        "dps": [Sheet("DPS not in IMPACT", DPS_NOT_IN_IMPACT_COLUMNS,
                      frame_rows(recon.dps_not_in_impact), max_width=PRINT_WIDTH)],
        "totals": [totals_sheet(recon), Sheet("Records", [*DPS_COLUMNS, "IN_IMPACT"],
                                              frame_rows(recon.period_records)),
                   trend_sheet(*trend)],
        "returned": [Sheet("Returned still active", RETURNED_COLUMNS,
                           frame_rows(recon.returned_active), max_width=PRINT_WIDTH)],
    }
    sheets = {}
    for report, first in main.items():
        columns = [name for sheet in [*first, exceptions] for name in sheet.columns]
        read_me = Sheet("Read me", READ_ME_COLUMNS, readme_rows(report, columns, context),
                        max_width=100)
        sheets[report] = [*first, exceptions, read_me]
    lay_out_reports(sheets, "totals", report_file_names(context.period)["totals"])
    return sheets


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
                episodes: list[list[Any]] | None = None) -> Sheet:
    """IMPACT_not_in_DPS per region over the recorded periods, then each period's runaway
    episodes (the denominators), then the % of them left unreported, and a line chart of the
    STATEWIDE % (§8) on its own page."""
    from openpyxl.chart import LineChart, Reference
    from openpyxl.chart.marker import Marker

    percents = [[row[0], *[None if v is None else round(100 * v, 1) for v in row[1:]]]
                for row in shares]
    blank = [None] * (len(periods) + 1)
    denominators = [] if episodes is None else \
        [blank, ["Runaway episodes in the period (the % denominators)", *[None] * len(periods)],
         *episodes]
    rows = [*counts, *denominators, list(blank),
            ["% of the period's episodes unreported", *[None] * len(periods)], *percents]
    chart = LineChart()
    chart.title = "STATEWIDE: % of runaway episodes with no DPS record"
    chart.y_axis.title = "% unreported"
    chart.x_axis.title = "period"
    statewide_row = len(rows) + 1          # the last share row (the header is row 1)
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
                 unfiltered_last_rows=len(rows) - len(counts) + 1)


def show_axes(chart: Any) -> None:
    """openpyxl leaves an axis's `delete` unset, and current Excel then hides the axis."""
    chart.x_axis.delete = False
    chart.y_axis.delete = False


def column_letter(number: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(number)
