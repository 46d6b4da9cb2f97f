"""The `Read me` sheet of every report (docs/data-contract.md §9): what the report is, what to
do with a row, each column and DPS code explained, the row flow from the files received to
the rows shown, DPS's control totals beside ours, then the audit rows. Pure logic."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from exchange.periods import Period
from exchange.rules import Rules

READ_ME_COLUMNS = ["ITEM", "EXPLANATION"]

@dataclass(frozen=True)
class ReadmeContext:
    """What a report was built from, for its Read me sheet."""

    period: Period
    run_id: str
    send_run_id: str
    today: dt.date
    generated_at: dt.datetime
    rules: Rules
    inputs: dict[str, str]          # file name -> SHA-256
    input_rows: dict[str, int]      # file name -> rows
    extra_columns: list[str]
    exceptions: int
    flow: dict[str, int]
    control: list[tuple[str, int, int]]   # (DPS's key, DPS's count, our count)
    time_zone: str = ""             # the zone of generated_at (run.time_zone)


def readme_rows(what: str, action: str, columns: list[tuple[str, str]],
                terms: list[tuple[str, str]], context: ReadmeContext, stems: dict[str, str]
                ) -> list[list[Any]]:
    """The Read me sheet's rows: what the report is and what to do with a row (from its
    ReportSpec), each column explained, then the row flow, control totals and audit rows."""
    rows: list[list[Any]] = [["What this is", what], ["What to do with a row", action],
                             ["As of", f"the run date {context.today.isoformat()}: "
                                       f"DAYS_MISSING, STILL_MISSING and DAYS_SINCE_RETURN "
                                       f"count to it"], [None, None], ["Columns", None]]
    rows += [[name, meaning] for name, meaning in columns]
    rows += [[None, None], ["Terms", None], *[[term, text] for term, text in terms]]
    return rows + [[None, None]] + flow_rows(context, stems) + [[None, None]] + \
        control_rows(context) + [[None, None]] + audit_rows(context)


def flow_rows(context: ReadmeContext, stems: dict[str, str]) -> list[list[Any]]:
    """From the files received to the rows shown (`stems`: report key -> file stem)."""
    flow = context.flow
    return [
        ["Row flow", None],
        ["DPS results lines received", flow["results_lines"]],
        ["  left out (see Exceptions)", flow["results_left_out"]],
        ["  usable records", flow["records_usable"]],
        ["  with DLC in the period", flow["records_in_period"]],
        ["    matched to an IMPACT episode", flow["records_matched"]],
        [f"    unmatched ({stems['dps']})", flow["records_unmatched"]],
        ["sa_98 episodes fetched", flow["episodes_fetched"]],
        ["  used for matching (the period +/- W days)", flow["episodes_kept"]],
        ["  runaway date in the period", flow["episodes_in_period"]],
        ["    matched to a DPS record", flow["episodes_matched"]],
        [f"    unmatched ({stems['impact']})", flow["episodes_unmatched"]],
        ["Children in send_children for the period", flow["children_queried"]],
        ["  sent to DPS", flow["children_sent"]],
        ["  excluded (see end_export.xlsx)", flow["children_excluded"]],
        *([["ORIs of the period's records not in the ORI directory (AGENCY blank)",
            flow["oris_not_in_directory"]]] if "oris_not_in_directory" in flow else []),
    ]


def control_rows(context: ReadmeContext) -> list[list[Any]]:
    rows: list[list[Any]] = [["Control totals", "DPS's counts file says / DFPS counts"]]
    for key, theirs, ours in context.control:
        rows.append([key, f"{theirs} / {ours}" + ("" if theirs == ours else " (disagree)")])
    return rows


def audit_rows(context: ReadmeContext) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["Audit", None], ["period", context.period.label],
        ["period start", context.period.start], ["period end", context.period.end],
        ["run id", context.run_id], ["upload answered (send run id)", context.send_run_id],
        ["run date", context.today], ["generated at", context.generated_at],
        *([["time zone", context.time_zone]] if context.time_zone else []),
        *context.rules.audit_rows()]
    for name, checksum in context.inputs.items():
        rows.append([f"input {name} SHA-256", checksum])
        rows.append([f"input {name} rows", context.input_rows.get(name)])
    rows.append(["extra columns in the results file (ignored)",
                 ", ".join(context.extra_columns) or "none"])
    rows.append(["exceptions", context.exceptions])
    return rows
