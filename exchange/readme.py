"""The `Read me` sheet of every report (docs/data-contract.md §9): what the report is, what to
do with a row, each column and DPS code explained, the row flow from the files received to
the rows shown, DPS's control totals beside ours, then the audit rows. Pure logic."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from exchange.periods import Period

READ_ME_COLUMNS = ["ITEM", "EXPLANATION"]

INTRO = {
    "impact": ("Runaway episodes IMPACT recorded in the period that match no DPS missing-person "
               "record: a child who ran away with no TCIC/NCIC entry near that date.",
               "Start with STILL_MISSING = Y (the child is still away): make sure a "
               "missing-person report is made. For the others, read NOTE and the NEAREST_ "
               "columns: a nearby DPS record is often the same runaway, dated differently."),
    "dps": ("DPS missing-person records with a date of last contact (DLC) in the period that "
            "match no IMPACT runaway episode.",
            "Check whether IMPACT lacks the runaway episode (the NEAREST_ columns point to a "
            "nearby one); record it in IMPACT when the child did run away."),
    "totals": ("DPS missing-person records with a DLC in the period, counted by region and "
               "month of DLC, with the share found in IMPACT; the Trend sheet follows the "
               "unreported runaways over the recorded periods.",
               "Compare regions and periods; the Records sheet lists every record counted."),
    "returned": ("Children back by IMPACT (every matched runaway episode closed, one of them in "
                 "the period) whose DPS missing-person entry is still active (no CLEAR_DATE).",
                 "Ask the agency named by ORI to clear the entry: a found child can be stopped "
                 "as a runaway."),
}

COLUMN_HELP = {
    "REGION": "DFPS region, e.g. 6-Houston (from the county; Unknown when there is none)",
    "COUNTY_NAME": "Texas county the region comes from: the runaway episode's county in IMPACT, "
                   "else (and for DPS rows) the county of the child's latest removal",
    "PID": "IMPACT person id of the child",
    "EPISODE_ID": "IMPACT runaway episode id",
    "LAST_NAME": "last name, as this sheet's source gives it (see DOB)",
    "FIRST_NAME": "first name, as this sheet's source gives it (see DOB)",
    "DOB": "date of birth, as this sheet's source gives it: IMPACT on IMPACT_not_in_DPS, "
           "DPS on the other reports",
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
]
MONTH_COLUMN = re.compile(r"^DLC \d{4}-\d{2}$")
PERIOD_COLUMN = re.compile(r"^FY\d{4}Q[1-4]$")


@dataclass(frozen=True)
class ReadmeContext:
    """What a report was built from, for its Read me sheet."""

    period: Period
    run_id: str
    send_run_id: str
    today: dt.date
    generated_at: dt.datetime
    window_days: int
    near_miss_days: int
    clear_grace_days: int
    inputs: dict[str, str]          # file name -> SHA-256
    input_rows: dict[str, int]      # file name -> rows
    extra_columns: list[str]
    exceptions: int
    flow: dict[str, int]
    control: list[tuple[str, int, int]]   # (DPS's key, DPS's count, our count)


def explain_column(name: str) -> str:
    if MONTH_COLUMN.match(name):
        return f"records whose DLC falls in {name[4:]}"
    if PERIOD_COLUMN.match(name):
        return (f"the period {name}: counts, then (second grid) its runaway episodes, then "
                f"(third grid) the % of them unreported")
    return COLUMN_HELP.get(name, "")


def readme_rows(report: str, columns: list[str], context: ReadmeContext) -> list[list[Any]]:
    """The Read me sheet's rows: the explanation first, the audit rows last."""
    what, action = INTRO[report]
    rows: list[list[Any]] = [["What this is", what], ["What to do with a row", action],
                             ["As of", f"the run date {context.today.isoformat()}: "
                                       f"DAYS_MISSING, STILL_MISSING and DAYS_SINCE_RETURN "
                                       f"count to it"], [None, None], ["Columns", None]]
    seen = set()
    for name in columns:
        if name not in seen and name not in READ_ME_COLUMNS:
            seen.add(name)
            rows.append([name, explain_column(name)])
    rows += [[None, None], ["Terms", None], *[[term, text] for term, text in TERMS]]
    return rows + [[None, None]] + flow_rows(context) + [[None, None]] + \
        control_rows(context) + [[None, None]] + audit_rows(context)


def flow_rows(context: ReadmeContext) -> list[list[Any]]:
    """From the files received to the rows shown."""
    flow = context.flow
    return [
        ["Row flow", None],
        ["DPS results lines received", flow["results_lines"]],
        ["  left out (see Exceptions)", flow["results_left_out"]],
        ["  usable records", flow["records_usable"]],
        ["  with DLC in the period", flow["records_in_period"]],
        ["    matched to an IMPACT episode", flow["records_matched"]],
        ["    unmatched (DPS_not_in_IMPACT)", flow["records_unmatched"]],
        ["sa_98 episodes fetched", flow["episodes_fetched"]],
        ["  used for matching (the period +/- W days)", flow["episodes_kept"]],
        ["  runaway date in the period", flow["episodes_in_period"]],
        ["    matched to a DPS record", flow["episodes_matched"]],
        ["    unmatched (IMPACT_not_in_DPS)", flow["episodes_unmatched"]],
        ["Children in send_children for the period", flow["children_queried"]],
        ["  sent to DPS", flow["children_sent"]],
        ["  excluded (see end_export.xlsx)", flow["children_excluded"]],
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
        ["match window W (days)", context.window_days],
        ["near-miss days N", context.near_miss_days],
        ["clear grace days G", context.clear_grace_days]]
    for name, checksum in context.inputs.items():
        rows.append([f"input {name} SHA-256", checksum])
        rows.append([f"input {name} rows", context.input_rows.get(name)])
    rows.append(["extra columns in the results file (ignored)",
                 ", ".join(context.extra_columns) or "none"])
    rows.append(["exceptions", context.exceptions])
    return rows
