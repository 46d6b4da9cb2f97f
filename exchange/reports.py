"""The report workbooks' sheets, their About rows and file names, and the summary mail's text
(docs/data-contract.md §6). Pure logic: the caller writes the workbooks and sends the mail.
"""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from exchange.answer import Problem, ResultsFile
from exchange.excel import Sheet, frame_rows
from exchange.periods import Period
from exchange.reconcile import DPS_COLUMNS, IMPACT_COLUMNS, Reconciliation

EXCEPTION_COLUMNS = ["FILE", "LINE", "KIND", "REASON"]

def exception_rows(problems: list[Problem]) -> list[list[Any]]:
    return [p.as_row() for p in problems]


def report_file_names(period: Period) -> dict[str, str]:
    label = period.file_label
    return {"impact": f"IMPACT_not_in_DPS_{label}.xlsx",
            "dps": f"DPS_not_in_IMPACT_{label}.xlsx",
            "totals": f"DPS_total_runaway_events_{label}.xlsx"}


def build_report_sheets(recon: Reconciliation, about: list[list[Any]],
                        problems: list[Problem]) -> dict[str, list[Sheet]]:
    """The sheets of each of the three workbooks."""
    from openpyxl.chart import BarChart, Reference

    exceptions = Sheet("Exceptions", EXCEPTION_COLUMNS, exception_rows(problems))
    about_sheet = Sheet("About", ["ITEM", "VALUE"], about)
    chart = BarChart()
    chart.title = "DPS runaway events by region"
    chart.y_axis.title = "records"
    chart.x_axis.title = "region"
    region_count = len(recon.totals) - 1   # without STATEWIDE
    total_column = len(recon.months) + 2
    # write-only sheets cannot be referenced before they exist: refer by title and bounds.
    chart_data = Reference(range_string=f"'Totals by region'!${_col(total_column)}$1:"
                                        f"${_col(total_column)}${region_count + 1}")
    chart_labels = Reference(range_string=f"'Totals by region'!$A$2:$A${region_count + 1}")
    chart.add_data(chart_data, titles_from_data=True)
    chart.set_categories(chart_labels)
    chart.legend = None
    chart.width, chart.height = 22, 11
    return {
        "impact": [Sheet("IMPACT not in DPS", IMPACT_COLUMNS,
                         frame_rows(recon.impact_not_in_dps)), exceptions, about_sheet],
        "dps": [Sheet("DPS not in IMPACT", DPS_COLUMNS,
                      frame_rows(recon.dps_not_in_impact)), exceptions, about_sheet],
        "totals": [Sheet("Totals by region", ["REGION", *recon.months, "TOTAL"],
                         recon.totals, chart=chart, chart_anchor=f"{_col(total_column + 2)}2",
                         unfiltered_last_rows=1),   # STATEWIDE stays last when sorted
                   Sheet("Records", [*DPS_COLUMNS, "IN_IMPACT"],
                         frame_rows(recon.period_records)), exceptions, about_sheet],
    }


def _col(number: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(number)

def region_counts(frame: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby("REGION", sort=False).size().items()}


def success_mail(period: Period, recon: Reconciliation, delivered: list[str],
                 problems: int, run_id: str) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the success mail: counts and file locations only."""
    subject = f"[DPS exchange] reports for {period.label} are ready"
    columns = ["Region", "IMPACT not in DPS", "DPS not in IMPACT", "DPS runaway events"]
    impact = region_counts(recon.impact_not_in_dps)
    dps = region_counts(recon.dps_not_in_impact)
    rows = [[row[0], impact.get(row[0], 0), dps.get(row[0], 0), row[-1]] for row in recon.totals]
    rows[-1][1:3] = [len(recon.impact_not_in_dps), len(recon.dps_not_in_impact)]
    text_lines = [f"The DPS missing-person reports for {period.label} "
                  f"({period.start} to {period.end}) are on the share:", ""]
    text_lines += [f"  {p}" for p in delivered] + ["", "  ".join(f"{c:>20}" for c in columns)]
    text_lines += ["  ".join(f"{str(v):>20}" for v in row) for row in rows]
    text_lines += ["", f"Rows on the Exceptions sheets: {problems}", f"Run id: {run_id}"]
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    files = "".join(f"<li>{html.escape(p)}</li>" for p in delivered)
    html_text = (f"<p>The DPS missing-person reports for {period.label} are on the share:</p>"
                 f"<ul>{files}</ul><table border='1' cellpadding='4'><tr>{cells}</tr>{body}"
                 f"</table><p>Rows on the Exceptions sheets: {problems}<br>Run id: {run_id}</p>")
    return subject, "\n".join(text_lines) + "\n", html_text

def about_rows(period: Period, run_id: str, today: dt.date, generated_at: dt.datetime,
               window: int, inputs: dict[str, str], input_rows: dict[str, int],
               results: ResultsFile, problems: list[Problem]) -> list[list[Any]]:
    """The About sheet: what the report was built from (generated_at: local time, no zone)."""
    rows: list[list[Any]] = [
        ["period", period.label], ["period start", period.start], ["period end", period.end],
        ["run id", run_id], ["run date", today], ["generated at", generated_at],
        ["match window (days)", window]]
    for name in inputs:
        rows.append([f"input {name} SHA-256", inputs[name]])
        rows.append([f"input {name} rows", input_rows[name]])
    rows.append(["extra columns in the results file (ignored)",
                 ", ".join(results.extra_columns) or "none"])
    rows.append(["exceptions", len(problems)])
    return rows

