"""Every column any report shows, defined once: its name and what it means (the Read me's
column list, docs/data-contract.md §6, §8, §9). A report lists the columns it shows by name
(exchange/reports.py); a column's meaning is written here and nowhere else. Pure data.
"""

from __future__ import annotations

import re

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


def explain_column(name: str) -> str:
    """What a column means; month and period columns of the grids are explained by pattern."""
    if MONTH_COLUMN.match(name):
        return f"records whose DLC falls in {name[4:]}"
    if PERIOD_COLUMN.match(name):
        return f"the period {name}: counts, then (second grid) the % of its episodes unreported"
    return COLUMNS.get(name, "")
