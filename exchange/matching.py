"""The match rule of docs/data-contract.md §5 and the window distance of §8, on DataFrames.

A row's window is [RUNAWAY_DATE - W, RETURN_DATE + W], with no upper edge while the episode
is open (no RETURN_DATE, or one before RUNAWAY_DATE). R matches E when R.PID = E.PID and
R.DLC lies in E's window, that is when its distance from the window is 0. Pure logic: every
function merges on PID and works on whole columns, never row by row.
"""

from __future__ import annotations

import pandas as pd

PAIR_COLUMNS = ["NIC", "EPISODE_ID"]
_RECORD_KEYS = ["PID", "NIC", "DLC"]
_EPISODE_KEYS = ["PID", "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE"]


def is_open(episodes: pd.DataFrame) -> pd.Series:
    """Open for matching (docs/data-contract.md §5): no RETURN_DATE, or one before the
    RUNAWAY_DATE (a typo must not hide a runaway). Uses OPEN_FOR_MATCHING when present."""
    if "OPEN_FOR_MATCHING" in episodes.columns:
        return episodes["OPEN_FOR_MATCHING"].astype(bool)
    returned = episodes["RETURN_DATE"]
    return returned.isna() | (returned < episodes["RUNAWAY_DATE"])


def window_edges(episodes: pd.DataFrame, window_days: int) -> tuple[pd.Series, pd.Series]:
    """Each episode's window: RUNAWAY_DATE - W, and RETURN_DATE + W (NaT while open)."""
    window = pd.Timedelta(days=window_days)
    lower = episodes["RUNAWAY_DATE"] - window
    upper = (episodes["RETURN_DATE"] + window).where(~is_open(episodes))
    return lower, upper


def window_distance(dates: pd.Series, lower: pd.Series, upper: pd.Series) -> pd.Series:
    """Days from each date to its window's nearest edge, 0 inside (docs/data-contract.md §8).

    `upper` NaT means no upper edge. Int64; <NA> where the date or the lower edge is missing.
    """
    before = (lower - dates).dt.days.clip(lower=0)
    after = (dates - upper).dt.days.clip(lower=0).fillna(0)
    distance = before.where(before > 0, after).astype("Int64")
    return distance.mask(dates.isna() | lower.isna())


def candidate_pairs(records: pd.DataFrame, episodes: pd.DataFrame, window_days: int,
                    record_columns: list[str] | None = None,
                    episode_columns: list[str] | None = None) -> pd.DataFrame:
    """Every (record, episode) pair with the same PID, with DISTANCE = days of the record's
    DLC from the episode's window (0: they match). Extra columns are carried along; a name
    in both lists is taken from the record."""
    extra_episode = [c for c in episode_columns or [] if c not in (record_columns or [])]
    left = records[list(dict.fromkeys(_RECORD_KEYS + (record_columns or [])))]
    episode_cols = list(dict.fromkeys(_EPISODE_KEYS + extra_episode))
    right = episodes[episode_cols].copy()
    if not right.empty:
        right["_LOWER"], right["_UPPER"] = window_edges(episodes, window_days)
    else:
        right = right.assign(_LOWER=right["RUNAWAY_DATE"], _UPPER=right["RUNAWAY_DATE"])
    pairs = left.merge(right, on="PID", how="inner", suffixes=("", "_EPISODE"))
    if pairs.empty:  # also spares an empty side built without date types
        return pairs.drop(columns=["_LOWER", "_UPPER"]).assign(DISTANCE=pd.Series(dtype="Int64"))
    pairs["DISTANCE"] = window_distance(pairs["DLC"], pairs["_LOWER"], pairs["_UPPER"])
    return pairs.drop(columns=["_LOWER", "_UPPER"])


def matched_pairs(records: pd.DataFrame, episodes: pd.DataFrame,
                  window_days: int) -> pd.DataFrame:
    """Every matching (NIC, EPISODE_ID) pair, many-to-many (docs/data-contract.md §5):
    same PID and RUNAWAY_DATE - W <= DLC <= RETURN_DATE + W (no upper bound while open).
    Sorted by NIC, EPISODE_ID; a fresh 0..n-1 index."""
    pairs = candidate_pairs(records, episodes, window_days)
    matched = pairs.loc[pairs["DISTANCE"].eq(0).fillna(False), PAIR_COLUMNS]
    return matched.sort_values(PAIR_COLUMNS, kind="mergesort").reset_index(drop=True)
