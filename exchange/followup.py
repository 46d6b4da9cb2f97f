"""Follow-up aids of docs/data-contract.md §8, pure logic on pandas DataFrames.

- `nearest_records`: the nearest unmatched DPS record of each unmatched episode (candidates as
  §10.2 has them);
- `nearest_episodes`: the nearest unmatched fetched episode of each unmatched record (§10.2);
- `returned_still_active`: the rows of the returned-still-active report (§8);
- the trend history: `load_trend`, `record_period`, `save_trend`, `trend_grid`,
  `previous_counts`.

Periods are ordered by `period_key(label)` = fiscal year * 10 + quarter (FY2025Q3 -> 20253);
the trend file stores that key beside each label (PERIOD_KEY) and every row's key is checked
against its label when recorded and when loaded. Trend rows are only ever what was recorded.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from exchange.episodes import UNKNOWN_REGION_NUMBER
from exchange.errors import InputError
from exchange.matching import candidate_pairs, is_open, matched_pairs

NEAREST_RECORD_COLUMNS = ["NEAREST_NIC", "NEAREST_DLC", "DAYS_OUTSIDE_WINDOW"]
NEAREST_EPISODE_COLUMNS = ["NEAREST_EPISODE_ID", "NEAREST_RUNAWAY_DATE", "DAYS_OUTSIDE_WINDOW"]
# §10.2: the unmatched records' hint columns in v4 (nearest_episodes also returns the return date)
NEAREST_EPISODE_COLUMNS_V4 = ["NEAREST_EPISODE_ID", "NEAREST_RUNAWAY_DATE",
                              "NEAREST_RETURN_DATE", "DAYS_OUTSIDE_WINDOW"]
RETURNED_EXTRA_COLUMNS = ["EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE", "DAYS_SINCE_RETURN"]
# The trend file: its key columns, then one count column per thing counted. The counts are
# open: a report added to the registry records its own count column, and a file written
# before a count existed reads it as 0 (so does a file from before v4 for the timeliness
# counts). These are the counts the product always records, in the file's order.
KEY_COLUMNS = ["PERIOD", "PERIOD_KEY", "REGION_NUMBER", "REGION"]
COUNT_COLUMNS = ["EPISODES", "IMPACT_NOT_IN_DPS", "DPS_NOT_IN_IMPACT", "DPS_EVENTS",
                 "RETURNED_STILL_ACTIVE", "TIMELINESS_EPISODES", "REPORTED_ON_TIME"]
TREND_COLUMNS = [*KEY_COLUMNS, *COUNT_COLUMNS]
UNKNOWN_NUMBER, STATEWIDE_NUMBER = UNKNOWN_REGION_NUMBER, 100   # the region numbers' ends
_DEFAULT_LABELS = {UNKNOWN_NUMBER: "Unknown", STATEWIDE_NUMBER: "STATEWIDE"}
_PERIOD_LABEL = re.compile(r"FY(\d{4})Q([1-4])")

# ---------------------------------------------------------------------------
# Near-miss hints
# ---------------------------------------------------------------------------


def _pick_nearest(pairs: pd.DataFrame, near_miss_days: int, tie_order: list[str],
                  columns: dict[str, str], index: pd.Index) -> pd.DataFrame:
    """Per _ROW (a position in `index`) the candidate with the smallest DISTANCE among
    1..N, ties by `tie_order`; `columns` maps the candidate's columns to the output's."""
    hints = pairs[pairs["DISTANCE"].between(1, near_miss_days).fillna(False)]
    hints = hints.sort_values(["_ROW", "DISTANCE", *tie_order], kind="mergesort")
    best = hints.drop_duplicates("_ROW").set_index("_ROW")
    picked = best[list(columns)].rename(columns=columns).reindex(range(len(index)))
    return picked.set_axis(index)


def _with_row_numbers(frame: pd.DataFrame) -> pd.DataFrame:
    numbered = frame.reset_index(drop=True)
    numbered["_ROW"] = range(len(numbered))
    return numbered


def unmatched_records(records: pd.DataFrame, fetched_episodes: pd.DataFrame,
                      window_days: int) -> pd.DataFrame:
    """The records that match no fetched episode (docs/data-contract.md §10.2)."""
    matched = matched_pairs(records, fetched_episodes, window_days)["NIC"]
    return records[~records["NIC"].isin(set(matched)).to_numpy()]


def unmatched_episodes_of(fetched_episodes: pd.DataFrame, records: pd.DataFrame,
                          window_days: int) -> pd.DataFrame:
    """The fetched episodes that match no usable record (docs/data-contract.md §10.2)."""
    matched = matched_pairs(records, fetched_episodes, window_days)["EPISODE_ID"]
    return fetched_episodes[~fetched_episodes["EPISODE_ID"].isin(set(matched)).to_numpy()]


def nearest_records(unmatched_episodes: pd.DataFrame, records: pd.DataFrame,
                    fetched_episodes: pd.DataFrame, window_days: int,
                    near_miss_days: int) -> pd.DataFrame:
    """NEAREST_NIC, NEAREST_DLC, DAYS_OUTSIDE_WINDOW per unmatched episode, indexed like
    `unmatched_episodes` (docs/data-contract.md §8 "Nearest DPS record", as §10.2 changes it).

    Candidates: the records with the episode's PID that match no fetched episode (a record
    that matched the child's other runaway is evidence that one was reported, not this
    one). Only distances 1..N count; among those the smallest wins, ties by earlier DLC,
    then smaller NIC as text; else blank (NA). N = 0 switches the hints off: the columns
    are there, all blank.
    """
    dtypes = {"NEAREST_NIC": records["NIC"].dtype, "NEAREST_DLC": records["DLC"].dtype,
              "DAYS_OUTSIDE_WINDOW": "Int64"}
    columns = {"NIC": "NEAREST_NIC", "DLC": "NEAREST_DLC", "DISTANCE": "DAYS_OUTSIDE_WINDOW"}
    if near_miss_days <= 0 or unmatched_episodes.empty or records.empty:
        return _blank(unmatched_episodes.index, dtypes)
    candidates = unmatched_records(records, fetched_episodes, window_days)
    episodes = _with_row_numbers(unmatched_episodes)
    pairs = candidate_pairs(candidates, episodes, window_days, episode_columns=["_ROW"])
    pairs["_NIC_TEXT"] = pairs["NIC"].astype(str)
    nearest = _pick_nearest(pairs, near_miss_days, ["DLC", "_NIC_TEXT"], columns,
                            unmatched_episodes.index)
    return nearest.astype(dtypes)


def nearest_episodes(unmatched_records: pd.DataFrame, fetched_episodes: pd.DataFrame,
                     records: pd.DataFrame, window_days: int,
                     near_miss_days: int) -> pd.DataFrame:
    """NEAREST_EPISODE_ID, NEAREST_RUNAWAY_DATE, DAYS_OUTSIDE_WINDOW per unmatched record,
    indexed like `unmatched_records` (docs/data-contract.md §8 "Nearest IMPACT episode", as
    §10.2 changes it), and NEAREST_RETURN_DATE (§10.2; blank while the episode is open).

    Candidates: the fetched episodes (the wider range of §2) with the record's PID that
    match no usable record of `records`. Only distances 1..N count; the smallest wins, ties
    by earlier RUNAWAY_DATE, then smaller EPISODE_ID; else blank (NA). N = 0: the columns
    are there, all blank.
    """
    dtypes = {"NEAREST_EPISODE_ID": "Int64",
              "NEAREST_RUNAWAY_DATE": fetched_episodes["RUNAWAY_DATE"].dtype,
              "NEAREST_RETURN_DATE": fetched_episodes["RETURN_DATE"].dtype,
              "DAYS_OUTSIDE_WINDOW": "Int64"}   # the order of NEAREST_EPISODE_COLUMNS_V4
    columns = {"EPISODE_ID": "NEAREST_EPISODE_ID", "RUNAWAY_DATE": "NEAREST_RUNAWAY_DATE",
               "_SHOWN_RETURN": "NEAREST_RETURN_DATE", "DISTANCE": "DAYS_OUTSIDE_WINDOW"}
    if near_miss_days <= 0 or unmatched_records.empty or fetched_episodes.empty:
        return _blank(unmatched_records.index, dtypes)
    candidates = unmatched_episodes_of(fetched_episodes, records, window_days)
    candidates = candidates.assign(
        _SHOWN_RETURN=candidates["RETURN_DATE"].where(~is_open(candidates).to_numpy()))
    with_rows = _with_row_numbers(unmatched_records)
    pairs = candidate_pairs(with_rows, candidates, window_days, record_columns=["_ROW"],
                            episode_columns=["_SHOWN_RETURN"])
    nearest = _pick_nearest(pairs, near_miss_days, ["RUNAWAY_DATE", "EPISODE_ID"], columns,
                            unmatched_records.index)
    return nearest.astype(dtypes)


def _blank(index: pd.Index, dtypes: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(index=index, dtype=dtype)
                         for name, dtype in dtypes.items()}, index=index)


# ---------------------------------------------------------------------------
# Returned, still active in NCIC (§8)
# ---------------------------------------------------------------------------


def _matched_with_flags(records: pd.DataFrame, fetched_episodes: pd.DataFrame,
                        window_days: int) -> pd.DataFrame:
    """The matching (record, fetched episode) pairs, with the episode's _OPEN flag."""
    episodes = fetched_episodes.assign(_OPEN=is_open(fetched_episodes).to_numpy())
    pairs = candidate_pairs(records, episodes, window_days, episode_columns=["_OPEN"])
    return pairs[pairs["DISTANCE"].eq(0).fillna(False)]


def _missing_again(fetched_episodes: pd.DataFrame, today: pd.Timestamp) -> pd.Series:
    """PIDs with a fetched episode open on the run date (open, RUNAWAY_DATE <= run date)."""
    open_now = is_open(fetched_episodes) & (fetched_episodes["RUNAWAY_DATE"] <= today)
    return fetched_episodes.loc[open_now.to_numpy(), "PID"]


def _latest_closed(pairs: pd.DataFrame, fetched_episodes: pd.DataFrame, start: pd.Timestamp,
                   end: pd.Timestamp, run: pd.Timestamp, grace_days: int) -> pd.DataFrame:
    """Per NIC that qualifies (all matched episodes closed, one in the period, latest return
    more than G days back, the child not open again), the matched episode with the latest
    RETURN_DATE (ties: larger EPISODE_ID)."""
    if pairs.empty:
        return pairs
    pairs = pairs.assign(_IN_PERIOD=pairs["RUNAWAY_DATE"].between(start, end))
    per_record = pairs.groupby("NIC").agg(any_open=("_OPEN", "any"),
                                          in_period=("_IN_PERIOD", "any"),
                                          latest=("RETURN_DATE", "max"))
    back = (~per_record["any_open"] & per_record["in_period"]
            & ((run - per_record["latest"]).dt.days > grace_days))
    chosen = pairs.sort_values(["NIC", "RETURN_DATE", "EPISODE_ID"], kind="mergesort")
    chosen = chosen.drop_duplicates("NIC", keep="last")
    return chosen[chosen["NIC"].isin(per_record.index[back.to_numpy()])
                  & ~chosen["PID"].isin(_missing_again(fetched_episodes, run))]


def returned_still_active(records: pd.DataFrame, fetched_episodes: pd.DataFrame,
                          period_start: dt.date, period_end: dt.date, today: dt.date,
                          window_days: int, grace_days: int) -> pd.DataFrame:
    """Rows of the returned-still-active report (docs/data-contract.md §8): records whose
    CLEAR_DATE field was empty, matching >= 1 fetched episode, all of those closed, one with
    RUNAWAY_DATE in the period, run date - latest RETURN_DATE > G, and the child not open
    again on the run date. The record's columns, then EPISODE_ID, RUNAWAY_DATE, RETURN_DATE
    of the matched episode with the latest RETURN_DATE (ties: larger EPISODE_ID) and
    DAYS_SINCE_RETURN (Int64); sorted by RETURN_DATE, PID, NIC (stable), index 0..n-1.
    """
    run = pd.Timestamp(today)
    active = records[records["CLEAR_DATE_EMPTY"].astype(bool).to_numpy()]
    pairs = _matched_with_flags(active, fetched_episodes, window_days)
    chosen = _latest_closed(pairs, fetched_episodes, pd.Timestamp(period_start),
                            pd.Timestamp(period_end), run, grace_days)
    rows = active.merge(chosen[["NIC", "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE"]],
                        on="NIC", how="inner")
    returned = pd.to_datetime(rows["RETURN_DATE"])  # a no-op unless no rows and no types
    rows["DAYS_SINCE_RETURN"] = (run - returned).dt.days.astype("Int64")
    rows = rows.sort_values(["RETURN_DATE", "PID", "NIC"], kind="mergesort")
    return rows[[*records.columns, *RETURNED_EXTRA_COLUMNS]].reset_index(drop=True)


# ---------------------------------------------------------------------------
# Trend history
# ---------------------------------------------------------------------------


def period_key(period_label: str) -> int:
    """The sort key of a period label: FY2025Q3 -> 20253 (fiscal year * 10 + quarter)."""
    match = _PERIOD_LABEL.fullmatch(str(period_label).strip())
    if not match:
        raise ValueError(f"period label {period_label!r}: expected one like FY2025Q3")
    return int(match.group(1)) * 10 + int(match.group(2))


def empty_trend() -> pd.DataFrame:
    """A trend history with no rows and the file's columns and types."""
    return _typed(pd.DataFrame({column: [] for column in TREND_COLUMNS}))


def count_columns(frame: pd.DataFrame) -> list[str]:
    """The count columns of a trend frame: the product's own first, then any other (a count
    a newer report records), in the frame's order."""
    others = [c for c in frame.columns if c not in KEY_COLUMNS and c not in COUNT_COLUMNS]
    return [*COUNT_COLUMNS, *others]


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    counts = count_columns(frame)
    frame = frame.assign(**{c: 0 for c in counts if c not in frame.columns})
    types = {"PERIOD": "str", "REGION": "str"} | \
        dict.fromkeys(["PERIOD_KEY", "REGION_NUMBER", *counts], "int64")
    typed = frame[[*KEY_COLUMNS, *counts]].astype(types)
    order = ["PERIOD_KEY", "REGION_NUMBER"]
    return typed.sort_values(order, kind="mergesort").reset_index(drop=True)


def load_trend(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The recorded trend (docs/data-contract.md §8 "Trend"); empty when the file is missing.
    A damaged file is an InputError naming the file and the line or column."""
    path = Path(path)
    if not path.exists():
        return empty_trend()
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (ValueError, UnicodeDecodeError) as exc:  # ParserError, EmptyDataError
        raise InputError(f"{path.name}: not a readable trend file") from exc
    for column in KEY_COLUMNS:
        if column not in raw.columns:
            raise InputError(f"{path.name}: column {column} missing")
    raw = raw.assign(**{c: "0" for c in COUNT_COLUMNS if c not in raw.columns})
    numeric = ["PERIOD_KEY", "REGION_NUMBER", *count_columns(raw)]
    whole = raw[numeric].apply(lambda column: column.str.fullmatch(r"\d{1,15}"))
    bad = ~whole.all(axis=1)
    numbers = raw[numeric].where(whole, "0").astype("int64")
    bad |= raw["PERIOD"].map(_key_or_none) != numbers["PERIOD_KEY"]
    bad |= raw.duplicated(["PERIOD", "REGION_NUMBER"])
    if bad.any():
        raise InputError(f"{path.name}: line {int(bad.to_numpy().argmax()) + 2} is not valid")
    return _typed(raw.assign(**{column: numbers[column] for column in numeric}))


def _key_or_none(label: str) -> int | None:
    try:
        return period_key(label)
    except ValueError:
        return None


def record_period(history: pd.DataFrame, period_label: str, period_sort_key: int,
                  rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """A new history with this period's rows (one per region: REGION, REGION_NUMBER and its
    counts; one the rows lack is 0) in place of any it had: a republished period replaces its
    own rows (docs/data-contract.md §8 "Trend"). `period_sort_key` must be
    period_key(period_label)."""
    if period_sort_key != period_key(period_label):
        raise ValueError(f"period {period_label}: sort key {period_sort_key} should be "
                         f"{period_key(period_label)}")
    new = pd.DataFrame(rows)
    missing = [c for c in ["REGION", "REGION_NUMBER"] if c not in new.columns]
    if missing:
        raise ValueError(f"trend rows for {period_label}: column {missing[0]} missing")
    if new["REGION_NUMBER"].duplicated().any():
        raise ValueError(f"trend rows for {period_label}: a region appears twice")
    new = new.assign(PERIOD=period_label, PERIOD_KEY=period_sort_key)
    kept = history[history["PERIOD"] != period_label]
    parts = [part for part in (kept, new) if not part.empty]
    return _typed(pd.concat(parts, ignore_index=True).fillna(0)) if parts else empty_trend()


def save_trend(history: pd.DataFrame, path: str | os.PathLike[str],
               write_bytes: Callable[[Any, bytes], Any]) -> None:
    """Write the history as UTF-8 CSV (key and count columns, sorted by period, region; LF line
    ends) through `write_bytes(path, data)`, the caller's atomic writer."""
    text = io.StringIO()
    _typed(history).to_csv(text, index=False, lineterminator="\n")
    write_bytes(path, text.getvalue().encode("utf-8"))


def _shown_periods(history: pd.DataFrame, period_label: str, last: int) -> pd.DataFrame:
    """(PERIOD_KEY, PERIOD) of the last `last` recorded periods up to this one, oldest first."""
    upto = history[history["PERIOD_KEY"] <= period_key(period_label)]
    periods = upto[["PERIOD_KEY", "PERIOD"]].drop_duplicates("PERIOD_KEY")
    return periods.sort_values("PERIOD_KEY").tail(max(last, 0))


def _region_labels(history: pd.DataFrame, numbers: list[int], upto_key: int) -> list[str]:
    """Each region's label as last recorded up to this period (else as recorded later; else
    Unknown, STATEWIDE or the bare number)."""
    ordered = history.sort_values("PERIOD_KEY", kind="mergesort")
    upto = ordered[ordered["PERIOD_KEY"] <= upto_key]
    labels = dict(zip(ordered["REGION_NUMBER"], ordered["REGION"], strict=True))
    labels.update(zip(upto["REGION_NUMBER"], upto["REGION"], strict=True))
    return [str(labels.get(n, _DEFAULT_LABELS.get(n, str(n)))) for n in numbers]


def trend_grid(history: pd.DataFrame, period_label: str, last: int = 8
               ) -> tuple[list[str], list[list[Any]], list[list[Any]], list[list[Any]]]:
    """The Trend sheet's data (docs/data-contract.md §8 "Trend"): the last `last` recorded
    periods up to and including `period_label` (by period_key; unrecorded ones skipped,
    oldest first). Rows: regions 1-11 always; any other recorded region (Unknown) only when
    it has a row with a count above 0 in a shown period; STATEWIDE last.
    count_rows = [label, IMPACT_NOT_IN_DPS per period...] (0 where a region has no row);
    share_rows = [label, IMPACT_NOT_IN_DPS / EPISODES per period (None: no episodes)...];
    episode_rows = [label, EPISODES per period...] (the shares' denominators).
    """
    periods, labels, grid = _grids(history, period_label, last,
                                   ("IMPACT_NOT_IN_DPS", "EPISODES"))
    share = (grid["IMPACT_NOT_IN_DPS"] / grid["EPISODES"].where(grid["EPISODES"] > 0))
    count_rows = [[label, *map(int, values)]
                  for label, values in zip(labels, grid["IMPACT_NOT_IN_DPS"].to_numpy(),
                                           strict=True)]
    share_rows = [[label, *(None if pd.isna(v) else float(v) for v in values)]
                  for label, values in zip(labels, share.to_numpy(), strict=True)]
    episode_rows = [[label, *map(int, values)]
                    for label, values in zip(labels, grid["EPISODES"].to_numpy(), strict=True)]
    return periods["PERIOD"].tolist(), count_rows, share_rows, episode_rows


def _grids(history: pd.DataFrame, period_label: str, last: int, columns: tuple[str, ...]
           ) -> tuple[pd.DataFrame, list[str], dict[str, pd.DataFrame]]:
    """(the shown periods, the region labels, per column a REGION_NUMBER x PERIOD_KEY grid of
    its counts) for the Trend sheet's grids, regions as trend_grid lists them."""
    periods = _shown_periods(history, period_label, last)
    shown = history[history["PERIOD_KEY"].isin(periods["PERIOD_KEY"])]
    with_rows = shown.loc[shown[count_columns(shown)].gt(0).any(axis=1), "REGION_NUMBER"]
    others = set(with_rows.tolist()) - set(range(1, 12)) - {STATEWIDE_NUMBER}
    numbers = [*range(1, 12), *sorted(others), STATEWIDE_NUMBER]
    grid = {column: shown.pivot_table(index="REGION_NUMBER", columns="PERIOD_KEY",
                                      values=column, aggfunc="sum")
            .reindex(index=numbers, columns=periods["PERIOD_KEY"]).fillna(0).astype("int64")
            for column in columns}
    return periods, _region_labels(history, numbers, period_key(period_label)), grid


def on_time_shares(history: pd.DataFrame, period_label: str,
                   last: int = 8) -> list[list[Any]]:
    """§10.3's third Trend grid: per region (as trend_grid lists them) and shown period,
    REPORTED_ON_TIME / TIMELINESS_EPISODES (None where there were none, e.g. periods recorded
    before v4)."""
    _, labels, grid = _grids(history, period_label, last,
                             ("REPORTED_ON_TIME", "TIMELINESS_EPISODES"))
    share = grid["REPORTED_ON_TIME"] / grid["TIMELINESS_EPISODES"].where(
        grid["TIMELINESS_EPISODES"] > 0)
    return [[label, *(None if pd.isna(v) else float(v) for v in values)]
            for label, values in zip(labels, share.to_numpy(), strict=True)]


def previous_counts(history: pd.DataFrame, period_label: str) -> dict[str, int] | None:
    """Each region's IMPACT_NOT_IN_DPS in the recorded period just before `period_label` in
    period order (docs/data-contract.md §8 "Trend"), by region label; None when none."""
    earlier = history[history["PERIOD_KEY"] < period_key(period_label)]
    if earlier.empty:
        return None
    rows = earlier[earlier["PERIOD_KEY"] == earlier["PERIOD_KEY"].max()]
    return {str(region): int(count)
            for region, count in zip(rows["REGION"], rows["IMPACT_NOT_IN_DPS"], strict=True)}


def previous_period(history: pd.DataFrame, period_label: str) -> str | None:
    """The recorded period just before `period_label` in period order; None when none."""
    earlier = history[history["PERIOD_KEY"] < period_key(period_label)]
    if earlier.empty:
        return None
    return str(earlier.loc[earlier["PERIOD_KEY"].idxmax(), "PERIOD"])
