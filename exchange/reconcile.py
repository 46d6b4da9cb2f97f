"""Matching DPS's records with IMPACT's runaway episodes, and the rows of the three reports
(docs/data-contract.md §5, §6).

Pure logic on DataFrames: the episodes are checked (row faults become Problems), regions are
looked up, records and episodes are matched, and the report rows and totals are built.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from exchange.answer import ROW_LEFT_OUT, WARNING, Problem, ResultsFile
from exchange.frames import plain_dates
from exchange.periods import Period

SA98_COLUMNS = ["EPISODE_ID", "PID", "LAST_NAME", "FIRST_NAME", "DOB", "RUNAWAY_DATE",
                "RETURN_DATE", "COUNTY_CODE"]
COUNTY_COLUMNS = ["COUNTY_CODE", "COUNTY_NAME", "REGION", "REGION_NAME"]
UNKNOWN_REGION = "Unknown"
IMPACT_COLUMNS = ["REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", "DOB",
                  "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NOTE"]
DPS_COLUMNS = ["REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "MKE",
               "ORI", "ENTRY_DATE", "DLC", "CLEAR_DATE"]
NOTE_NOT_SENT = "PID not in file sent to DPS"
NOTE_ON_EXCEPTIONS = "DPS row for this PID on Exceptions"

def check_episodes(sa98: Any, source_name: str, first_line: int) -> tuple[Any, list[Problem]]:
    """Rows without PID or RUNAWAY_DATE, and repeated EPISODE_IDs, are left out; a return
    before the runaway is a typo: the episode is treated as open, with a warning."""
    import pandas as pd

    frame = sa98.copy().reset_index(drop=True)
    frame["LINE"] = range(first_line, first_line + len(frame))
    frame["PID"] = pd.to_numeric(frame["PID"], errors="coerce")
    frame["EPISODE_ID"] = pd.to_numeric(frame["EPISODE_ID"], errors="coerce")
    for column in ("DOB", "RUNAWAY_DATE", "RETURN_DATE"):
        frame[column] = plain_dates(frame[column])
    frame["COUNTY_CODE"] = pd.to_numeric(frame["COUNTY_CODE"], errors="coerce")
    problems: list[Problem] = []
    reasons = pd.Series("", index=frame.index, dtype=object)
    reasons[frame["PID"].isna()] = "column PID: missing"
    reasons[(reasons == "") & frame["RUNAWAY_DATE"].isna()] = "column RUNAWAY_DATE: missing"
    reasons[(reasons == "") & frame["EPISODE_ID"].isna()] = "column EPISODE_ID: missing"
    usable = frame[reasons == ""]
    repeated = usable["EPISODE_ID"].duplicated(keep="first")
    first_line = usable.drop_duplicates("EPISODE_ID").set_index("EPISODE_ID")["LINE"]
    for index in usable.index[repeated.to_numpy()]:
        reasons[index] = (f"EPISODE_ID repeated (first on line "
                          f"{int(first_line[frame.at[index, 'EPISODE_ID']])})")
    for index in frame.index[reasons != ""]:
        problems.append(Problem(source_name, int(frame.at[index, "LINE"]), ROW_LEFT_OUT,
                                reasons[index]))
    episodes = frame[reasons == ""].copy()
    typo = episodes["RETURN_DATE"].notna() & (episodes["RETURN_DATE"] < episodes["RUNAWAY_DATE"])
    for line in episodes.loc[typo, "LINE"]:
        problems.append(Problem(source_name, int(line), WARNING,
                                "RETURN_DATE before RUNAWAY_DATE; episode treated as open"))
    episodes["OPEN_FOR_MATCHING"] = episodes["RETURN_DATE"].isna() | typo
    episodes["PID"] = episodes["PID"].astype("int64")
    episodes["EPISODE_ID"] = episodes["EPISODE_ID"].astype("int64")
    problems.sort(key=lambda p: p.line)
    return episodes.reset_index(drop=True), problems


def region_label(region: Any, region_name: Any) -> str:
    """DFPS writes a region as '6-Houston'."""
    name = str(region_name).strip()
    number = str(int(region))
    return name if name.startswith(f"{number}-") else f"{number}-{name}"


@dataclass
class Regions:
    by_county: dict[int, tuple[str, str, int]]   # county code -> (region label, county, number)
    labels: list[tuple[int, str]]                 # (number, label) for regions 1..11

    def of(self, county: Any) -> tuple[str, str, int]:
        try:
            return self.by_county[int(county)]
        except (KeyError, TypeError, ValueError):
            return UNKNOWN_REGION, "", 99


def build_regions(county_region: Any) -> Regions:
    by_county = {}
    labels = {}
    for row in county_region.itertuples(index=False):
        label = region_label(row.REGION, row.REGION_NAME)
        by_county[int(row.COUNTY_CODE)] = (label, str(row.COUNTY_NAME), int(row.REGION))
        labels[int(row.REGION)] = label
    for number in range(1, 12):  # regions 1-11 are always listed, even if the lookup lacks one
        labels.setdefault(number, str(number))
    return Regions(by_county, sorted(labels.items()))


# ---------------------------------------------------------------------------
# Pure logic: matching (docs/data-contract.md §5)
# ---------------------------------------------------------------------------


def match_records(records: Any, episodes: Any, window_days: int) -> tuple[set[int], set[str]]:
    """Episode ids that match some DPS record, and NICs that match some episode.

    R matches E when R.PID = E.PID and RUNAWAY - W <= DLC <= RETURN + W (no upper bound while
    E is open). Many-to-many.
    """
    import pandas as pd

    if records.empty or episodes.empty:
        return set(), set()
    pairs = records[["PID", "NIC", "DLC"]].merge(
        episodes[["PID", "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE", "OPEN_FOR_MATCHING"]],
        on="PID", how="inner")
    window = pd.Timedelta(days=window_days)
    after_start = pairs["DLC"] >= pairs["RUNAWAY_DATE"] - window
    before_end = pairs["OPEN_FOR_MATCHING"] | (pairs["DLC"] <= pairs["RETURN_DATE"] + window)
    matched = pairs[after_start & before_end]
    return set(matched["EPISODE_ID"].astype(int)), set(matched["NIC"])


# ---------------------------------------------------------------------------
# Pure logic: the three reports (docs/data-contract.md §6)
# ---------------------------------------------------------------------------


@dataclass
class Reconciliation:
    impact_not_in_dps: Any     # DataFrame, IMPACT_COLUMNS + sort keys
    dps_not_in_impact: Any     # DataFrame, DPS_COLUMNS
    period_records: Any        # DPS records with DLC in the period, DPS_COLUMNS + IN_IMPACT
    totals: list[list[Any]]    # REGION, month 1..3, TOTAL rows
    months: list[str]


def reconcile(results: ResultsFile, episodes: Any, sent: Any, regions: Regions,
              period: Period, today: dt.date, window_days: int) -> Reconciliation:
    import pandas as pd

    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    matched_episodes, matched_nics = match_records(results.records, episodes, window_days)
    sent_county = dict(zip(sent["PID"].tolist(), sent["COUNTY_CODE"].tolist(), strict=True))

    in_period = episodes[(episodes["RUNAWAY_DATE"] >= start) & (episodes["RUNAWAY_DATE"] <= end)]
    missing = in_period[~in_period["EPISODE_ID"].isin(matched_episodes)].copy()
    impact_rows = impact_report_rows(missing, sent_county, regions, results.fault_pids, today)

    records = results.records
    period_records = records[(records["DLC"] >= start) & (records["DLC"] <= end)].copy()
    period_records["IN_IMPACT"] = period_records["NIC"].isin(matched_nics).map({True: "Y",
                                                                               False: "N"})
    dps_rows = dps_report_rows(period_records, sent_county, regions)
    not_in_impact = dps_rows[dps_rows["IN_IMPACT"] == "N"].drop(columns="IN_IMPACT")
    months = period.months()
    totals = totals_by_region(dps_rows, regions, months)
    return Reconciliation(impact_rows, not_in_impact.reset_index(drop=True), dps_rows, totals,
                          months)


def impact_report_rows(missing: Any, sent_county: dict[int, Any], regions: Regions,
                       fault_pids: set[int], today: dt.date) -> Any:
    import pandas as pd

    def county_of(row: Any) -> Any:
        """The episode's county; the child's county from the sent data only when it has none."""
        if not pd.isna(row.COUNTY_CODE):
            return row.COUNTY_CODE
        return sent_county.get(int(row.PID))

    frame = missing.copy()
    county = [county_of(row) for row in frame.itertuples(index=False)]
    looked_up = [regions.of(c) for c in county]
    frame["REGION"] = [r[0] for r in looked_up]
    frame["COUNTY_NAME"] = [r[1] for r in looked_up]
    frame["REGION_NUMBER"] = [r[2] for r in looked_up]
    until = frame["RETURN_DATE"].where(~frame["OPEN_FOR_MATCHING"], pd.Timestamp(today))
    frame["DAYS_MISSING"] = (until - frame["RUNAWAY_DATE"]).dt.days.astype("Int64")
    frame["NOTE"] = [NOTE_NOT_SENT if pid not in sent_county
                     else NOTE_ON_EXCEPTIONS if pid in fault_pids else ""
                     for pid in frame["PID"]]
    frame = frame.sort_values(["REGION_NUMBER", "RUNAWAY_DATE", "PID", "EPISODE_ID"],
                              kind="mergesort")
    return frame[IMPACT_COLUMNS].reset_index(drop=True)


def dps_report_rows(records: Any, sent_county: dict[int, Any], regions: Regions) -> Any:
    frame = records.copy()
    looked_up = [regions.of(sent_county.get(int(pid))) for pid in frame["PID"]]
    frame["REGION"] = [r[0] for r in looked_up]
    frame["COUNTY_NAME"] = [r[1] for r in looked_up]
    frame["REGION_NUMBER"] = [r[2] for r in looked_up]
    frame = frame.sort_values(["REGION_NUMBER", "DLC", "PID", "NIC"], kind="mergesort")
    return frame[[*DPS_COLUMNS, "IN_IMPACT"]].reset_index(drop=True)


def totals_by_region(dps_rows: Any, regions: Regions, months: list[str]) -> list[list[Any]]:
    """REGION x month of DLC counts: regions 1-11 always, Unknown only when it has rows,
    STATEWIDE last."""
    month_of = dps_rows["DLC"].dt.strftime("%Y-%m")
    counts = dps_rows.assign(MONTH=month_of).groupby(["REGION", "MONTH"]).size().to_dict()
    labels = [label for _, label in regions.labels]
    if (dps_rows["REGION"] == UNKNOWN_REGION).any():
        labels.append(UNKNOWN_REGION)
    rows = []
    for label in labels:
        values = [int(counts.get((label, month), 0)) for month in months]
        rows.append([label, *values, sum(values)])
    statewide = [sum(row[i] for row in rows) for i in range(1, len(months) + 2)]
    rows.append(["STATEWIDE", *statewide])
    return rows

