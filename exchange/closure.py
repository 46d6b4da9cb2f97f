"""From finding to closure (docs/data-contract.md §10.1-10.5), pure logic on DataFrames.

- `still_missing_now`: the standing list of §10.1 (every fetched episode open on the run date
  that matches no usable DPS record, whatever its runaway date), `ran_before` and
  `still_missing_by_region` for the mail's lead line;
- `as_of_run_date`: a RETURN_DATE after the run date shown blank, for every sheet (§10.1);
- `age_at_dlc`: AGE_AT_DLC of unmatched DPS records (§10.2; the hints are in exchange/followup.py);
- timeliness (§10.3, HHS-OIG 2023's method): `timeliness_rows`, `timeliness_grid`,
  `reported_late`, `timeliness_trend_counts`, `timeliness_counts`;
- who acts (§10.4): `caseworkers_by_pid`, `with_caseworkers`, `read_ori_directory`,
  `with_agencies`;
- care status (§10.5): `in_care_status`, `with_in_care`.

The caller tags IMPACT rows with REGION, COUNTY_NAME and REGION_NUMBER (reconcile's
`with_impact_region`) and gives each PID's NOTE; nothing here reads a file but the ORI
directory, and nothing logs a value.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from exchange.errors import ConfigError
from exchange.followup import NEAREST_RECORD_COLUMNS, STATEWIDE_NUMBER, nearest_records
from exchange.matching import candidate_pairs, is_open, matched_pairs
from exchange.periods import period_containing

STATEWIDE = "STATEWIDE"
UNKNOWN_REGION = "Unknown"
CASEWORKER_COLUMNS = ["CASEWORKER", "UNIT", "SUPERVISOR"]
CASEWORKER_QUERY_COLUMNS = ["PID", *CASEWORKER_COLUMNS]
AGENCY_COLUMNS = ["AGENCY", "PHONE"]
ORI_DIRECTORY_HEADER = ["ORI", "AGENCY", "PHONE"]
STILL_MISSING_NOW_COLUMNS = ["REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME",
                             "FIRST_NAME", "DOB", "AGE_NOW", "RUNAWAY_DATE", "RUNAWAY_PERIOD",
                             "DAYS_MISSING", "IN_CARE", "NOTE", *NEAREST_RECORD_COLUMNS]
NO_ONE_STILL_MISSING = "No child is missing on the run date without a DPS record."
TIMELINESS_COLUMNS = ["REGION", "EPISODES", "REPORTED_ON_TIME", "REPORTED_LATE",
                      "NOT_REPORTED", "ON_TIME_PCT"]
REPORTED_LATE_COLUMNS = ["REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME",
                         "FIRST_NAME", "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NIC",
                         "ENTRY_DATE", "DAYS_TO_ENTRY"]
ON_TIME, LATE, NOT_REPORTED = "on time", "late", "not reported"
OUTCOME_COUNTS = {ON_TIME: "REPORTED_ON_TIME", LATE: "REPORTED_LATE",
                  NOT_REPORTED: "NOT_REPORTED"}
MIN_DAYS_MISSING = 2      # OIG counted episodes missing 2 calendar days or longer
MAX_ON_TIME_DAYS = 1      # ...and called a report made 2 or more days after the runaway late
IN_CARE_YES, IN_CARE_NO = "Y", "N"
_ORI_PATTERN = re.compile(r"[A-Z0-9]{9}")

# ---------------------------------------------------------------------------
# Small shared rules
# ---------------------------------------------------------------------------


def away_on(episodes: pd.DataFrame, today: dt.date) -> pd.Series:
    """Open on the run date (§10.1): no RETURN_DATE, one before the RUNAWAY_DATE (§5), or one
    after the run date, with RUNAWAY_DATE <= run date."""
    run = pd.Timestamp(today)
    later_return = (episodes["RETURN_DATE"] > run).fillna(False)
    return (is_open(episodes) | later_return) & (episodes["RUNAWAY_DATE"] <= run)


def as_of_run_date(frame: pd.DataFrame, today: dt.date,
                   columns: tuple[str, ...] = ("RETURN_DATE",)) -> pd.DataFrame:
    """A copy with each date column blank where it lies after the run date: as of the run
    date the child had not returned (§10.1, every sheet)."""
    shown = frame.copy()
    run = pd.Timestamp(today)
    for column in columns:
        if column in shown.columns:
            shown[column] = shown[column].mask(shown[column] > run)
    return shown


def whole_years_between(born: pd.Series, on: pd.Series | pd.Timestamp) -> pd.Series:
    """Whole years from `born` to `on`, as reconcile.whole_years counts them (imported at
    call time: reconcile may come to import this module)."""
    from exchange.reconcile import whole_years

    if isinstance(on, pd.Timestamp):
        on = pd.Series(on, index=born.index, dtype=born.dtype)
    return whole_years(born, on)


def period_labels(days: pd.Series) -> pd.Series:
    """The fiscal quarter of each date, written FY2025Q1 (§1); blank where there is none."""
    unique = days.dropna().unique()
    labels = {day: period_containing(pd.Timestamp(day).date()).label for day in unique}
    return days.map(labels).fillna("").astype(object)


def days_between(later: pd.Series | pd.Timestamp, earlier: pd.Series) -> pd.Series:
    return (later - earlier).dt.days.astype("Int64")


# ---------------------------------------------------------------------------
# §10.1 Still missing now
# ---------------------------------------------------------------------------


def still_missing_now(fetched: pd.DataFrame, records: pd.DataFrame, today: dt.date,
                      window_days: int, near_miss_days: int, note_of: Callable[[int], str],
                      in_care: pd.Series | Mapping[int, str]) -> pd.DataFrame:
    """Rows of `Still missing now` (§10.1): every fetched episode open on the run date that
    matches no usable record (§5, records of any DLC), whatever its RUNAWAY_DATE.

    `fetched`: the checked fetched sa_98 rows tagged with REGION, COUNTY_NAME, REGION_NUMBER;
    `note_of(pid)`: §9's NOTE; `in_care`: PID -> IN_CARE (in_care_status). Columns
    STILL_MISSING_NOW_COLUMNS; sorted by region number (Unknown last), RUNAWAY_DATE
    (longest missing first), PID, EPISODE_ID; index 0..n-1.
    """
    run = pd.Timestamp(today)
    matched = set(matched_pairs(records, fetched, window_days)["EPISODE_ID"])
    keep = away_on(fetched, today) & ~fetched["EPISODE_ID"].isin(matched)
    rows = fetched[keep.to_numpy()].copy()
    rows["AGE_NOW"] = whole_years_between(rows["DOB"], run)
    rows["RUNAWAY_PERIOD"] = period_labels(rows["RUNAWAY_DATE"])
    rows["DAYS_MISSING"] = days_between(run, rows["RUNAWAY_DATE"])
    rows = with_in_care(rows, in_care)
    rows["NOTE"] = pd.Series([note_of(int(pid)) for pid in rows["PID"].tolist()],
                             index=rows.index, dtype=object)
    rows = rows.sort_values(["REGION_NUMBER", "RUNAWAY_DATE", "PID", "EPISODE_ID"],
                            kind="mergesort").reset_index(drop=True)
    rows = rows.join(nearest_records(rows, records, fetched, window_days, near_miss_days))
    return rows[STILL_MISSING_NOW_COLUMNS]


def ran_before(rows: pd.DataFrame, period_start: dt.date) -> int:
    """How many of the still-missing rows ran before the period (the mail's "M ran before
    this period", §10.1)."""
    return int((rows["RUNAWAY_DATE"] < pd.Timestamp(period_start)).sum())


def still_missing_by_region(rows: pd.DataFrame, period_start: dt.date,
                            region_labels: list[tuple[int, str]]) -> list[list[Any]]:
    """The mail's lead line by region (§10.1): [REGION, still missing never reported, of them
    ran before the period] for regions 1-11, Unknown when it has rows, STATEWIDE last."""
    before = rows["RUNAWAY_DATE"] < pd.Timestamp(period_start)
    counts = rows.groupby("REGION").size().to_dict()
    earlier = rows[before.to_numpy()].groupby("REGION").size().to_dict()
    lines = [[label, int(counts.get(label, 0)), int(earlier.get(label, 0))]
             for label in _region_order(rows, region_labels)]
    return [*lines, [STATEWIDE, len(rows), int(before.sum())]]


# ---------------------------------------------------------------------------
# §10.2 AGE_AT_DLC
# ---------------------------------------------------------------------------


def age_at_dlc(records: pd.DataFrame) -> pd.Series:
    """Whole years from DPS's DOB to the DLC (§10.2); blank without a DOB."""
    return whole_years_between(records["DOB"], records["DLC"])


# ---------------------------------------------------------------------------
# §10.3 Timeliness
# ---------------------------------------------------------------------------


def timeliness_rows(in_period: pd.DataFrame, records: pd.DataFrame, sent_pids: set[int],
                    today: dt.date, window_days: int) -> pd.DataFrame:
    """The timeliness population with each episode's first report (§10.3).

    Population: the period's kept episodes (`in_period`, region-tagged) of children who were
    sent to DPS, missing 2 days or longer (RETURN_DATE - RUNAWAY_DATE, or run date -
    RUNAWAY_DATE while away on the run date). First report: the matching record (§5) with
    the earliest ENTRY_DATE (ties: smaller NIC as text). Adds DAYS_MISSING, NIC, ENTRY_DATE,
    DAYS_TO_ENTRY (ENTRY_DATE - RUNAWAY_DATE) and OUTCOME (on time <= 1 day, an entry before
    the runaway included; late >= 2; not reported); index 0..n-1.
    """
    run = pd.Timestamp(today)
    episodes = in_period[in_period["PID"].isin(sent_pids).to_numpy()].copy()
    until = episodes["RETURN_DATE"].where(~away_on(episodes, today).to_numpy(), run)
    episodes["DAYS_MISSING"] = days_between(until, episodes["RUNAWAY_DATE"])
    population = episodes[(episodes["DAYS_MISSING"] >= MIN_DAYS_MISSING).fillna(False)
                          .to_numpy()].reset_index(drop=True)
    first = first_reports(population, records, window_days)
    rows = population.merge(first, on="EPISODE_ID", how="left")
    rows["DAYS_TO_ENTRY"] = days_between(rows["ENTRY_DATE"], rows["RUNAWAY_DATE"])
    rows["OUTCOME"] = outcome(rows["DAYS_TO_ENTRY"])
    return rows


def first_reports(population: pd.DataFrame, records: pd.DataFrame,
                  window_days: int) -> pd.DataFrame:
    """EPISODE_ID, NIC, ENTRY_DATE of each episode's earliest-entered matching record."""
    columns = ["EPISODE_ID", "NIC", "ENTRY_DATE"]
    if population.empty or records.empty:
        return pd.DataFrame({"EPISODE_ID": pd.Series(dtype="int64"),
                             "NIC": pd.Series(dtype=object),
                             "ENTRY_DATE": pd.Series(dtype="datetime64[ns]")})
    pairs = candidate_pairs(records, population, window_days, record_columns=["ENTRY_DATE"])
    pairs = pairs[pairs["DISTANCE"].eq(0).fillna(False).to_numpy()]
    pairs = pairs.assign(_NIC_TEXT=pairs["NIC"].astype(str))
    pairs = pairs.sort_values(["EPISODE_ID", "ENTRY_DATE", "_NIC_TEXT"], kind="mergesort")
    return pairs.drop_duplicates("EPISODE_ID")[columns]


def outcome(days_to_entry: pd.Series) -> pd.Series:
    """on time (<= 1 day, negative included), late (>= 2 days), not reported (no record)."""
    result = pd.Series(NOT_REPORTED, index=days_to_entry.index, dtype=object)
    reported = days_to_entry.notna().to_numpy()
    on_time = (days_to_entry <= MAX_ON_TIME_DAYS).fillna(False).to_numpy()
    result[reported & on_time] = ON_TIME
    result[reported & ~on_time] = LATE
    return result


def _region_order(rows: pd.DataFrame, region_labels: list[tuple[int, str]]) -> list[str]:
    """Regions 1-11 always; Unknown only when it has rows."""
    labels = [label for _, label in region_labels]
    if (rows["REGION"] == UNKNOWN_REGION).any():
        labels.append(UNKNOWN_REGION)
    return labels


def _percent(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def timeliness_grid(rows: pd.DataFrame,
                    region_labels: list[tuple[int, str]]) -> list[list[Any]]:
    """The `Timeliness` sheet (§10.3): per region (1-11, Unknown when it has rows, STATEWIDE
    last) EPISODES, REPORTED_ON_TIME, REPORTED_LATE, NOT_REPORTED and ON_TIME_PCT (one
    decimal; None with no episodes). `region_labels`: (number, label) of regions 1-11."""
    counts = rows.groupby(["REGION", "OUTCOME"]).size().to_dict()
    grid = []
    for label in [*_region_order(rows, region_labels), STATEWIDE]:
        if label == STATEWIDE:
            by_outcome = [int((rows["OUTCOME"] == name).sum()) for name in OUTCOME_COUNTS]
        else:
            by_outcome = [int(counts.get((label, name), 0)) for name in OUTCOME_COUNTS]
        episodes = sum(by_outcome)
        grid.append([label, episodes, *by_outcome, _percent(by_outcome[0], episodes)])
    return grid


def reported_late(rows: pd.DataFrame, today: dt.date) -> pd.DataFrame:
    """The `Reported late` sheet (§10.3): the late episodes, REPORTED_LATE_COLUMNS, sorted
    by region number (Unknown last), DAYS_TO_ENTRY descending, PID, EPISODE_ID; a return
    after the run date shown blank."""
    late = as_of_run_date(rows[(rows["OUTCOME"] == LATE).to_numpy()], today)
    late = late.assign(_NEGATIVE_DAYS=-late["DAYS_TO_ENTRY"])
    late = late.sort_values(["REGION_NUMBER", "_NEGATIVE_DAYS", "PID", "EPISODE_ID"],
                            kind="mergesort")
    return late[REPORTED_LATE_COLUMNS].reset_index(drop=True)


def timeliness_counts(rows: pd.DataFrame) -> dict[str, int]:
    """Statewide on time / late / not reported, for the summary mail (§10.3)."""
    return {name: int((rows["OUTCOME"] == name).sum()) for name in OUTCOME_COUNTS}


def timeliness_trend_counts(rows: pd.DataFrame, region_labels: list[tuple[int, str]]
                            ) -> list[dict[str, Any]]:
    """Per region and STATEWIDE, what the trend records of §10.3: the timeliness population
    (TIMELINESS_EPISODES; not the trend's EPISODES, which counts every episode of the
    period) and REPORTED_ON_TIME."""
    numbers = {label: number for number, label in region_labels}
    trend = []
    for label, episodes, on_time, *_ in timeliness_grid(rows, region_labels):
        number = STATEWIDE_NUMBER if label == STATEWIDE else numbers.get(label)
        if number is None:   # Unknown
            number = int(rows.loc[rows["REGION"] == label, "REGION_NUMBER"].iloc[0])
        trend.append({"REGION": label, "REGION_NUMBER": number,
                      "TIMELINESS_EPISODES": episodes, "REPORTED_ON_TIME": on_time})
    return trend


# ---------------------------------------------------------------------------
# §10.4 Who acts: caseworkers
# ---------------------------------------------------------------------------


def caseworkers_by_pid(result: pd.DataFrame) -> pd.DataFrame:
    """The caseworker query's rows (PID, CASEWORKER, UNIT, SUPERVISOR) as one row per PID:
    the first in the query's order (§10.4). Indexed by PID (int); blanks as ''."""
    frame = result[CASEWORKER_QUERY_COLUMNS].copy()
    frame["PID"] = pd.to_numeric(frame["PID"], errors="coerce")
    frame = frame[frame["PID"].notna().to_numpy()]
    frame["PID"] = frame["PID"].astype("int64")
    for column in CASEWORKER_COLUMNS:
        text = frame[column].astype("string").str.strip()
        frame[column] = text.fillna("").astype(object)
    return frame.drop_duplicates("PID", keep="first").set_index("PID")


def with_caseworkers(rows: pd.DataFrame, caseworkers: pd.DataFrame | None) -> pd.DataFrame:
    """`rows` with CASEWORKER, UNIT, SUPERVISOR after FIRST_NAME (§10.4); '' for a PID the
    query did not return. With the query off (None), `rows` unchanged."""
    if caseworkers is None:
        return rows
    looked_up = caseworkers.reindex(rows["PID"].astype("int64").to_numpy())
    shown = rows.copy()
    for column in CASEWORKER_COLUMNS:
        shown[column] = looked_up[column].fillna("").to_numpy(dtype=object)
    return shown[_after(rows.columns, "FIRST_NAME", CASEWORKER_COLUMNS)]


def _after(columns: pd.Index, anchor: str, inserted: list[str]) -> list[str]:
    ordered = [c for c in columns if c not in inserted]
    at = ordered.index(anchor) + 1
    return [*ordered[:at], *inserted, *ordered[at:]]


# ---------------------------------------------------------------------------
# §10.4 Who acts: police agencies (the ORI directory)
# ---------------------------------------------------------------------------


def read_ori_directory(path: Path | None) -> pd.DataFrame | None:
    """The ORI directory (`reports.ori_directory`, §10.4): a UTF-8 CSV with the header
    `ORI,AGENCY,PHONE`, one agency a line. None when the setting is off. A malformed file is
    a ConfigError, one line naming the file and the fault."""
    if path is None:
        return None
    where = f"reports.ori_directory: {path}"
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise ConfigError(f"{where}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text") from exc
    try:
        lines = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as exc:
        raise ConfigError(f"{where}: not a readable CSV file ({exc})") from exc
    return _directory_rows(lines, where)


def _directory_rows(lines: list[list[str]], where: str) -> pd.DataFrame:
    if not lines or [cell.strip().upper() for cell in lines[0]] != ORI_DIRECTORY_HEADER:
        raise ConfigError(f"{where}: line 1: the header must be ORI,AGENCY,PHONE")
    first_line: dict[str, int] = {}
    rows = []
    for number, cells in enumerate(lines[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue   # a blank line
        if len(cells) != len(ORI_DIRECTORY_HEADER):
            raise ConfigError(f"{where}: line {number}: expected 3 fields, found {len(cells)}")
        ori, agency, phone = (cell.strip() for cell in cells)
        if not _ORI_PATTERN.fullmatch(ori):
            raise ConfigError(f"{where}: line {number}: ORI must be 9 letters or digits")
        if ori in first_line:
            raise ConfigError(f"{where}: line {number}: ORI repeated (first on line "
                              f"{first_line[ori]})")
        if not agency:
            raise ConfigError(f"{where}: line {number}: AGENCY is empty")
        first_line[ori] = number
        rows.append((ori, agency, phone))
    return pd.DataFrame(rows, columns=ORI_DIRECTORY_HEADER, dtype=object)


def with_agencies(rows: pd.DataFrame, directory: pd.DataFrame | None
                  ) -> tuple[pd.DataFrame, int]:
    """(`rows` with AGENCY and PHONE after ORI, the number of distinct ORIs not in the
    directory) (§10.4). An unknown or blank ORI leaves both blank; only non-blank ORIs are
    counted. With the directory off (None): `rows` unchanged, 0."""
    if directory is None:
        return rows, 0
    lookup = directory.set_index("ORI")
    ori = rows["ORI"].astype(object).where(rows["ORI"].notna(), "").map(str)
    found = lookup.reindex(ori.to_numpy())
    shown = rows.copy()
    for column in AGENCY_COLUMNS:
        shown[column] = found[column].fillna("").to_numpy(dtype=object)
    unknown = set(ori[(ori != "") & ~ori.isin(set(lookup.index))])
    return shown[_after(rows.columns, "ORI", AGENCY_COLUMNS)], len(unknown)


# ---------------------------------------------------------------------------
# §10.5 Care status
# ---------------------------------------------------------------------------


def with_in_care(rows: pd.DataFrame, in_care: pd.Series | Mapping[int, str]) -> pd.DataFrame:
    """`rows` with IN_CARE (§10.5) from in_care_status (PID -> Y/N); blank for a PID not in
    send_children's result (Still missing now, returned still active)."""
    status = in_care if isinstance(in_care, pd.Series) else pd.Series(in_care, dtype=object)
    shown = rows.copy()
    looked_up = status.reindex(rows["PID"].astype("int64").to_numpy())
    shown["IN_CARE"] = looked_up.fillna("").to_numpy(dtype=object)
    return shown


def in_care_status(discharges: pd.Series | Mapping[int, Any], today: dt.date) -> pd.Series:
    """PID -> IN_CARE (§10.5) for every child in send_children's result: `discharges` maps
    each to the DISCHARGE_DATE of its chosen removal (None/NaT while open). Y: none, or one
    after the run date; N: one on or before the run date. A PID not in it is not in the
    result: with_in_care shows IN_CARE blank. Indexed by PID (int)."""
    given = discharges if isinstance(discharges, pd.Series) else pd.Series(discharges,
                                                                              dtype=object)
    dates = pd.to_datetime(given, errors="coerce")
    in_care = dates.isna() | (dates > pd.Timestamp(today))
    status = pd.Series(IN_CARE_NO, index=given.index.astype("int64"), dtype=object)
    status[in_care.to_numpy()] = IN_CARE_YES
    return status
