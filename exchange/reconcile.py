"""Matching DPS's records with IMPACT's runaway episodes, and the rows of the reports
(docs/data-contract.md §5, §6, §8, §9). Pure logic on DataFrames.

`reconcile` takes the checked inputs and returns every report's rows, the totals grid, the
trend counts and the row flow the Read me sheets and the summary mail show.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from exchange.answer import ROW_LEFT_OUT, ResultsFile
from exchange.closure import (
    age_at_dlc,
    as_of_run_date,
    in_care_status,
    reported_late,
    still_missing_now,
    timeliness_grid,
    timeliness_rows,
    with_agencies,
    with_caseworkers,
    with_in_care,
)
from exchange.episodes import UNKNOWN_REGION, UNKNOWN_REGION_NUMBER, Regions
from exchange.followup import (
    STATEWIDE_NUMBER,
    nearest_episodes,
    nearest_records,
    returned_still_active,
)
from exchange.matching import matched_pairs
from exchange.periods import Period
from exchange.rules import Rules

SA98_COLUMNS = ["EPISODE_ID", "PID", "LAST_NAME", "FIRST_NAME", "DOB", "RUNAWAY_DATE",
                "RETURN_DATE", "COUNTY_CODE"]
COUNTY_COLUMNS = ["COUNTY_CODE", "COUNTY_NAME", "REGION", "REGION_NAME"]
NOTE_NOT_IN_CARE = ("not sent to DPS: not in care during the period; runaway recorded after "
                    "discharge: check the episode in IMPACT")   # §9, as §10.5 words it
STATEWIDE = "STATEWIDE"


@dataclass(frozen=True)
class SendList:
    """Who was in send_children's result for the period: sent (with county) or excluded, and
    the discharge date of each one's chosen removal (§10.5)."""

    county: dict[int, Any]                                   # sent PID -> county code
    excluded: dict[int, str] = field(default_factory=dict)  # excluded PID -> reasons
    discharge: Any = None      # PID -> DISCHARGE_DATE (a Series; None: not recorded)


@dataclass(frozen=True)
class WhoActs:
    """Who acts on a row (§10.4): the caseworker query's rows by PID and the ORI directory;
    None where the setting is off."""

    caseworkers: Any = None
    agencies: Any = None
    directory: dict[str, str] = field(default_factory=dict)   # its file name -> SHA-256


@dataclass
class Reconciliation:
    """Every report's rows (DataFrames with every column a rule computed; each report picks
    the columns it shows, exchange/reports.py), the totals grid and the row flow."""

    impact_not_in_dps: Any     # unmatched episodes of the period
    dps_not_in_impact: Any     # unmatched records with DLC in the period
    period_records: Any        # DPS records with DLC in the period, with IN_IMPACT
    returned_active: Any       # records of returned children still active in NCIC
    totals: list[list[Any]]    # REGION, months, TOTAL, IN_IMPACT, NOT_IN_IMPACT, MATCH_PCT
    months: list[str]
    episodes_in_period: Any    # kept episodes with RUNAWAY_DATE in the period (a denominator)
    regions: Regions
    flow: dict[str, int]       # the row flow, for the Read me sheets and the mail
    still_missing: Any = None  # §10.1: open on the run date, never matched, any quarter
    timeliness: Any = None     # §10.3: the population, each with its first report and outcome
    timeliness_grid: list = field(default_factory=list)   # REGION x outcome counts
    reported_late: Any = None  # §10.3: the late ones
    unknown_oris: int = 0      # §10.4: ORIs of the period's records not in the directory


def reconcile(results: ResultsFile, episodes: Any, fetched: Any, send_list: SendList,
              regions: Regions, period: Period, today: dt.date, rules: Rules,
              who: WhoActs | None = None) -> Reconciliation:
    """`episodes`: the checked sa_98 rows of the matching range; `fetched`: all fetched rows,
    checked quietly (the follow-up aids and the standing list look at them)."""
    import pandas as pd

    who = who or WhoActs()
    in_care = in_care_status(send_list.discharge if send_list.discharge is not None
                             else pd.Series(dtype="datetime64[ns]"), today)

    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    records = results.records
    pairs = matched_pairs(records, episodes, rules.window_days)
    in_period = with_impact_region(episodes[episodes["RUNAWAY_DATE"].between(start, end)],
                                   send_list, regions)
    missing = in_period[~in_period["EPISODE_ID"].isin(set(pairs["EPISODE_ID"]))]
    impact = impact_report_rows(missing, send_list, results.fault_lines, today)
    impact = impact.join(nearest_records(impact, records, fetched, rules.window_days,
                                         rules.near_miss_days))
    impact = with_caseworkers(as_of_run_date(impact, today, ["RETURN_DATE"]), who.caseworkers)
    period_records = records[records["DLC"].between(start, end)].copy()
    period_records["IN_IMPACT"] = period_records["NIC"].isin(set(pairs["NIC"])).map(
        {True: "Y", False: "N"})
    dps_rows = with_dps_region(period_records, send_list, regions)
    dps_rows = dps_rows.sort_values(["REGION_NUMBER", "DLC", "PID", "NIC"], kind="mergesort")
    not_in_impact = dps_rows[dps_rows["IN_IMPACT"] == "N"]
    not_in_impact = not_in_impact.join(nearest_episodes(not_in_impact, fetched, records,
                                                        rules.window_days, rules.near_miss_days))
    not_in_impact = not_in_impact.assign(AGE_AT_DLC=age_at_dlc(not_in_impact))
    returned = returned_rows(records, fetched, period, today, rules, send_list, regions)
    returned = with_in_care(with_caseworkers(returned, who.caseworkers), in_care)
    dps_rows, unknown_oris = with_agencies(dps_rows, who.agencies)
    not_in_impact, _ = with_agencies(not_in_impact, who.agencies)
    returned, _ = with_agencies(returned, who.agencies)
    still = still_missing_rows(fetched, records, today, rules, send_list, regions, in_care,
                               results.fault_lines, who)
    timely = timeliness_rows(in_period, records, set(send_list.county), today,
                             rules.window_days)
    months = period.months()
    return Reconciliation(
        impact.reset_index(drop=True), not_in_impact.reset_index(drop=True),
        dps_rows.reset_index(drop=True), returned,
        totals_by_region(dps_rows, regions, months), months, in_period, regions,
        row_flow(results, episodes, in_period, impact, period_records, send_list)
        | ({"oris_not_in_directory": unknown_oris} if who.agencies is not None else {}),
        still, timely, timeliness_grid(timely, regions.labels),
        with_caseworkers(reported_late(timely, today), who.caseworkers), unknown_oris)


def still_missing_rows(fetched: Any, records: Any, today: dt.date, rules: Rules,
                       send_list: SendList, regions: Regions, in_care: Any,
                       fault_lines: dict[int, int], who: WhoActs) -> Any:
    """§10.1's standing list, region-tagged, with §9's NOTE and §10.4's caseworkers."""
    rows = still_missing_now(with_impact_region(fetched, send_list, regions), records, today,
                             rules.window_days, rules.near_miss_days,
                             lambda pid: note(pid, send_list, fault_lines), in_care)
    return with_caseworkers(rows, who.caseworkers)


# ---------------------------------------------------------------------------
# Regions of rows
# ---------------------------------------------------------------------------


def add_region(frame: Any, counties: list[Any], regions: Regions) -> Any:
    looked_up = [regions.of(county) for county in counties]
    frame = frame.copy()
    frame["REGION"] = [r[0] for r in looked_up]
    frame["COUNTY_NAME"] = [r[1] for r in looked_up]
    frame["REGION_NUMBER"] = [r[2] for r in looked_up]
    return frame


def with_impact_region(episodes: Any, send_list: SendList, regions: Regions) -> Any:
    """An episode's county; the child's sent county only when the episode has none (§5)."""
    import pandas as pd

    counties = [county if not pd.isna(county) else send_list.county.get(int(pid))
                for pid, county in zip(episodes["PID"].tolist(),
                                       episodes["COUNTY_CODE"].tolist(), strict=True)]
    return add_region(episodes, counties, regions)


def with_dps_region(records: Any, send_list: SendList, regions: Regions) -> Any:
    """A DPS row's region: the child's county from the sent data (§5)."""
    return add_region(records, [send_list.county.get(int(pid)) for pid in records["PID"]],
                      regions)


# ---------------------------------------------------------------------------
# Unmatched episodes of the period (§6, §9)
# ---------------------------------------------------------------------------


def impact_report_rows(missing: Any, send_list: SendList, fault_lines: dict[int, int],
                       today: dt.date) -> Any:
    """The unmatched episodes of the period, with DAYS_MISSING, NOTE, STILL_MISSING and
    AGE_AT_RUNAWAY; still-missing children first within each region. A child is still
    missing when the episode is open on the run date: no return, a return before the runaway
    (§5), or a return after the run date (a run --as-of an earlier day)."""
    import pandas as pd

    frame = missing.copy()
    run_date = pd.Timestamp(today)
    away = frame["OPEN_FOR_MATCHING"] | (frame["RETURN_DATE"] > run_date)   # on the run date
    until = frame["RETURN_DATE"].where(~away, run_date)
    frame["DAYS_MISSING"] = (until - frame["RUNAWAY_DATE"]).dt.days.astype("Int64")
    frame["NOTE"] = [note(pid, send_list, fault_lines) for pid in frame["PID"].tolist()]
    frame["STILL_MISSING"] = away.map({True: "Y", False: "N"})
    frame["AGE_AT_RUNAWAY"] = whole_years(frame["DOB"], frame["RUNAWAY_DATE"])
    frame["_LATER"] = frame["STILL_MISSING"] != "Y"
    frame = frame.sort_values(["REGION_NUMBER", "_LATER", "RUNAWAY_DATE", "PID", "EPISODE_ID"],
                              kind="mergesort")
    return frame.reset_index(drop=True)


def note(pid: int, send_list: SendList, fault_lines: dict[int, int]) -> str:
    """Why an unmatched episode may have no DPS record (§9), else ''."""
    if pid in send_list.excluded:
        return f"not sent to DPS: excluded ({send_list.excluded[pid]})"
    if pid not in send_list.county:
        return NOTE_NOT_IN_CARE
    if pid in fault_lines:
        return f"DPS row for this PID on Exceptions (line {fault_lines[pid]})"
    return ""


def whole_years(born: Any, on: Any) -> Any:
    """Whole years from `born` to `on` (a birthday counts on the day itself); NA without a
    date of birth."""
    years = on.dt.year - born.dt.year
    before_birthday = (on.dt.month < born.dt.month) | (
        (on.dt.month == born.dt.month) & (on.dt.day < born.dt.day))
    return (years - before_birthday.astype(int)).astype("Int64")


# ---------------------------------------------------------------------------
# Returned, still active in NCIC (§8)
# ---------------------------------------------------------------------------


def returned_rows(records: Any, fetched: Any, period: Period, today: dt.date, rules: Rules,
                  send_list: SendList, regions: Regions) -> Any:
    rows = returned_still_active(records, fetched, period.start, period.end, today,
                                 rules.window_days, rules.clear_grace_days)
    rows = with_dps_region(rows, send_list, regions)
    rows = rows.sort_values("REGION_NUMBER", kind="mergesort")   # then RETURN_DATE, PID, NIC
    return rows.reset_index(drop=True)


# ---------------------------------------------------------------------------
# Totals, trend counts, row flow
# ---------------------------------------------------------------------------


def region_labels(regions: Regions, *frames: Any) -> list[str]:
    """Regions 1-11 always, Unknown only when one of the frames has rows there."""
    labels = [label for _, label in regions.labels]
    if any((frame["REGION"] == UNKNOWN_REGION).any() for frame in frames):
        labels.append(UNKNOWN_REGION)
    return labels


def percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def totals_by_region(dps_rows: Any, regions: Regions, months: list[str]) -> list[list[Any]]:
    """REGION x month of DLC counts, TOTAL, then IN_IMPACT, NOT_IN_IMPACT and MATCH_PCT
    (§6, §9): regions 1-11 always, Unknown only when it has rows, STATEWIDE last."""
    month_of = dps_rows["DLC"].dt.strftime("%Y-%m")
    counts = dps_rows.assign(MONTH=month_of).groupby(["REGION", "MONTH"]).size().to_dict()
    matched = dps_rows[dps_rows["IN_IMPACT"] == "Y"].groupby("REGION").size().to_dict()
    rows = []
    for label in region_labels(regions, dps_rows):
        values = [int(counts.get((label, month), 0)) for month in months]
        rows.append([label, *values, sum(values), int(matched.get(label, 0))])
    statewide = [sum(row[i] for row in rows) for i in range(1, len(months) + 3)]
    rows.append([STATEWIDE, *statewide])
    for row in rows:
        total, in_impact = row[-2], row[-1]
        row += [total - in_impact, percent(in_impact, total)]
    return rows


def counts_by_region(frames: dict[str, Any], regions: Regions) -> list[dict[str, Any]]:
    """Per region (and STATEWIDE): the rows of each frame (name -> DataFrame with REGION),
    for the trend history (§8) and the summary mail."""
    by_region = {name: frame.groupby("REGION").size().to_dict()
                 for name, frame in frames.items()}
    numbers = {label: number for number, label in regions.labels}
    numbers[UNKNOWN_REGION] = UNKNOWN_REGION_NUMBER
    rows = [{"REGION": label, "REGION_NUMBER": numbers[label],
             **{name: int(counts.get(label, 0)) for name, counts in by_region.items()}}
            for label in region_labels(regions, *frames.values())]
    rows.append({"REGION": STATEWIDE, "REGION_NUMBER": STATEWIDE_NUMBER,
                 **{name: len(frame) for name, frame in frames.items()}})
    return rows


def row_flow(results: ResultsFile, episodes: Any, in_period: Any, impact: Any,
             period_records: Any, send_list: SendList) -> dict[str, int]:
    """Counts from the files received to the rows shown (the Read me sheets, the mail)."""
    matched_records = int((period_records["IN_IMPACT"] == "Y").sum())
    return {
        "results_lines": results.data_lines,
        "results_left_out": sum(p.kind == ROW_LEFT_OUT for p in results.problems),
        "records_usable": len(results.records),
        "records_in_period": len(period_records),
        "records_matched": matched_records,
        "records_unmatched": len(period_records) - matched_records,
        "episodes_kept": len(episodes),
        "episodes_in_period": len(in_period),
        "episodes_matched": len(in_period) - len(impact),
        "episodes_unmatched": len(impact),
        "children_queried": len(send_list.county) + len(send_list.excluded),
        "children_sent": len(send_list.county),
        "children_excluded": len(send_list.excluded),
    }
