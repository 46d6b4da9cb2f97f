"""Contract §5's match rule and §8's follow-up aids, one case per rule, on tiny named frames.

Run date 2025-06-20, period FY2025Q3 (2025-03-01 .. 2025-05-31), match window W = 3 days,
near_miss_days N = 30, clear_grace_days G = 2. The usual episode runs 2025-04-10 .. 04-20, so
its window is [04-07, 04-23].
"""

import datetime as dt

import pandas as pd
import pytest

from exchange.errors import InputError
from exchange.followup import (
    NEAREST_EPISODE_COLUMNS_V4,
    NEAREST_RECORD_COLUMNS,
    TREND_COLUMNS,
    empty_trend,
    load_trend,
    nearest_episodes,
    nearest_records,
    on_time_shares,
    period_key,
    previous_counts,
    record_period,
    returned_still_active,
    save_trend,
    trend_grid,
)
from exchange.matching import matched_pairs, window_distance

TODAY = dt.date(2025, 6, 20)
START, END = dt.date(2025, 3, 1), dt.date(2025, 5, 31)
W, N, G = 3, 30, 2
EMPTY, INVALID = "empty", "invalid"   # CLEAR_DATE field: empty in DPS's file, or blanked


# ---------------------------------------------------------------------------
# Tiny named frames
# ---------------------------------------------------------------------------


def day(text):
    return pd.NaT if text is None else pd.Timestamp(text)


def dates(values):
    return pd.to_datetime(pd.Series([day(v) for v in values], dtype="datetime64[us]"))


def nic(n):
    return f"M{n:09d}"


def records(*rows, index=None):
    """DPS records from (PID, NIC number, DLC[, CLEAR]) tuples; CLEAR is EMPTY (default),
    INVALID (blanked as invalid) or a date."""
    rows = [(*r, EMPTY) if len(r) == 3 else r for r in rows]
    clear = [r[3] for r in rows]
    frame = pd.DataFrame({
        "PID": pd.Series([r[0] for r in rows], dtype="int64"),
        "NIC": pd.Series([nic(r[1]) for r in rows], dtype="str"),
        "LAST_NAME": "DOE", "FIRST_NAME": "JANE", "DOB": dates(["2010-01-02"] * len(rows)),
        "MKE": "EMJ", "ORI": "TX2270000", "ENTRY_DATE": dates([r[2] for r in rows]),
        "DLC": dates([r[2] for r in rows]),
        "CLEAR_DATE": dates([None if c in (EMPTY, INVALID) else c for c in clear]),
        "LINE": pd.Series(range(2, len(rows) + 2), dtype="int64"),
        "CLEAR_DATE_EMPTY": pd.Series([c == EMPTY for c in clear], dtype=bool),
    })
    return frame if index is None else frame.set_axis(index)


def episodes(*rows, index=None):
    """sa_98 episodes from (EPISODE_ID, PID, RUNAWAY_DATE, RETURN_DATE or None) tuples."""
    runaway, returned = dates([r[2] for r in rows]), dates([r[3] for r in rows])
    frame = pd.DataFrame({
        "EPISODE_ID": pd.Series([r[0] for r in rows], dtype="int64"),
        "PID": pd.Series([r[1] for r in rows], dtype="int64"),
        "LAST_NAME": "DOE", "FIRST_NAME": "JANE", "DOB": dates(["2010-01-02"] * len(rows)),
        "RUNAWAY_DATE": runaway, "RETURN_DATE": returned,
        "COUNTY_CODE": 101, "LINE": pd.Series(range(2, len(rows) + 2), dtype="int64"),
        "OPEN_FOR_MATCHING": returned.isna() | (returned < runaway),
    })
    return frame if index is None else frame.set_axis(index)


def hints(frame):
    """A hint frame as plain rows: [value or None, ...] per row, dates as ISO text."""
    def plain(value):
        if pd.isna(value):
            return None
        return value.date().isoformat() if isinstance(value, pd.Timestamp) else value
    return [[plain(v) for v in row] for row in frame.itertuples(index=False)]


# ---------------------------------------------------------------------------
# §5 matching and the window distance
# ---------------------------------------------------------------------------


def test_matched_pairs_on_the_window_edges_open_and_return_before_runaway():
    found = matched_pairs(
        records((1, 1, "2025-04-06"), (1, 2, "2025-04-07"), (1, 3, "2025-04-23"),
                (1, 4, "2025-04-24"),
                (2, 5, "2025-04-06"), (2, 6, "2025-06-19"),     # open: no upper edge
                (3, 7, "2025-04-06"), (3, 8, "2025-06-19"),     # return before runaway: open
                (4, 9, "2025-04-15")),                          # same dates, other PID
        episodes((100, 1, "2025-04-10", "2025-04-20"), (200, 2, "2025-04-10", None),
                 (300, 3, "2025-04-10", "2025-04-01"), (400, 5, "2025-04-10", "2025-04-20")),
        W)
    assert list(found.columns) == ["NIC", "EPISODE_ID"]
    assert found.values.tolist() == [[nic(2), 100], [nic(3), 100], [nic(6), 200],
                                     [nic(8), 300]]


def test_matched_pairs_is_many_to_many():
    found = matched_pairs(records((1, 1, "2025-04-12"), (1, 2, "2025-04-13")),
                          episodes((100, 1, "2025-04-10", "2025-04-20"),
                                   (101, 1, "2025-04-11", None)), W)
    assert found.values.tolist() == [[nic(1), 100], [nic(1), 101], [nic(2), 100],
                                     [nic(2), 101]]


def test_window_distance_counts_days_to_the_nearest_edge():
    lower = dates(["2025-04-07"] * 5)
    upper = dates(["2025-04-23"] * 4 + [None])
    found = window_distance(dates(["2025-04-05", "2025-04-07", "2025-04-15", "2025-04-26",
                                   "2026-01-01"]), lower, upper)
    assert found.tolist() == [2, 0, 0, 3, 0]
    assert str(found.dtype) == "Int64"


# ---------------------------------------------------------------------------
# §8 nearest DPS record (IMPACT_not_in_DPS)
# ---------------------------------------------------------------------------

EPISODE = (100, 1, "2025-04-10", "2025-04-20")   # window [04-07, 04-23]


@pytest.mark.parametrize("dlc, expected", [
    ("2025-04-07", None),   # distance 0: it would have matched, not a hint
    ("2025-04-23", None),
    ("2025-04-06", 1), ("2025-04-24", 1),
    ("2025-03-08", 30), ("2025-05-23", 30),   # N
    ("2025-03-07", None), ("2025-05-24", None),   # N + 1
], ids=["0-lower", "0-upper", "1-lower", "1-upper", "N-lower", "N-upper", "N+1-lower",
        "N+1-upper"])
def test_nearest_record_counts_only_distances_1_to_n(dlc, expected):
    found = nearest_records(episodes(EPISODE), records((1, 1, dlc)), episodes(EPISODE), W, N)
    row = [nic(1), dlc, expected] if expected else [None, None, None]
    assert hints(found) == [row]


def test_nearest_record_of_an_open_episode_has_no_upper_edge():
    open_episodes = episodes((100, 1, "2025-04-10", None), (300, 3, "2025-04-10", "2025-04-01"))
    found = nearest_records(open_episodes, records((1, 1, "2025-04-06"), (1, 2, "2025-06-19"),
                                                   (3, 3, "2025-04-05"), (3, 4, "2025-06-19")),
                            episodes(), W, N)
    assert hints(found) == [[nic(1), "2025-04-06", 1], [nic(3), "2025-04-05", 2]]
    alone = nearest_records(open_episodes, records((1, 2, "2025-06-19"), (3, 4, "2025-06-19")),
                            episodes(), W, N)
    assert hints(alone) == [[None, None, None], [None, None, None]]


def test_nearest_record_ties_earlier_dlc_then_smaller_nic():
    found = nearest_records(
        episodes(EPISODE, (200, 2, "2025-04-10", "2025-04-20"), (300, 3, "2025-04-10",
                                                                 "2025-04-20")),
        records((1, 7, "2025-04-25"), (1, 8, "2025-04-05"),    # 2 days either side
                (2, 9, "2025-04-26"), (2, 2, "2025-04-26"),    # same DLC: smaller NIC
                (3, 1, "2025-04-03"), (3, 5, "2025-04-25")),   # nearer beats earlier
        episodes(), W, N)
    assert hints(found) == [[nic(8), "2025-04-05", 2], [nic(2), "2025-04-26", 3],
                            [nic(5), "2025-04-25", 2]]


def test_nearest_record_candidates_are_the_pids_unmatched_records():
    # §10.2: record 2 is the PID's, 8 days out and matching no episode: the hint; record 3
    # is another child's.
    found = nearest_records(episodes(EPISODE), records((1, 2, "2025-05-01"), (9, 3, "2025-04-24")),
                            episodes(), W, N)
    assert hints(found) == [[nic(2), "2025-05-01", 8]]


def test_nearest_record_skips_a_record_that_matched_another_episode():
    # §10.2 (v3 allowed it): record 2 (DLC 05-01) matched the child's later runaway 150, so it
    # is evidence that runaway was reported, not episode 100; record 4, 20 days out, is next.
    later = (150, 1, "2025-04-30", "2025-05-02")
    found = nearest_records(episodes(EPISODE),
                            records((1, 2, "2025-05-01"), (1, 4, "2025-05-13")),
                            episodes(EPISODE, later), W, N)
    assert hints(found) == [[nic(4), "2025-05-13", 20]]
    alone = nearest_records(episodes(EPISODE), records((1, 2, "2025-05-01")),
                            episodes(EPISODE, later), W, N)
    assert hints(alone) == [[None, None, None]]


def test_nearest_record_keeps_the_index_and_blanks_without_candidates():
    found = nearest_records(episodes(EPISODE, (200, 2, "2025-04-10", None), index=[7, 3]),
                            records((1, 1, "2025-04-24")), episodes(), W, N)
    assert list(found.index) == [7, 3]
    assert list(found.columns) == NEAREST_RECORD_COLUMNS
    assert hints(found) == [[nic(1), "2025-04-24", 1], [None, None, None]]


def test_hints_off_with_n_zero_keep_blank_columns():
    found = nearest_records(episodes(EPISODE, index=[5]), records((1, 1, "2025-04-24")),
                            episodes(), W, 0)
    assert list(found.columns) == NEAREST_RECORD_COLUMNS and list(found.index) == [5]
    assert hints(found) == [[None, None, None]]
    found = nearest_episodes(records((1, 1, "2025-04-24"), index=[4]), episodes(EPISODE),
                             records(), W, 0)
    assert list(found.columns) == NEAREST_EPISODE_COLUMNS_V4 and list(found.index) == [4]
    assert hints(found) == [[None, None, None, None]]
    assert str(found["DAYS_OUTSIDE_WINDOW"].dtype) == "Int64"


# ---------------------------------------------------------------------------
# §8 nearest IMPACT episode (DPS_not_in_IMPACT)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("dlc, expected", [
    ("2025-04-07", None), ("2025-04-06", 1), ("2025-05-23", 30), ("2025-05-24", None),
], ids=["0", "1", "N", "N+1"])
def test_nearest_episode_counts_only_distances_1_to_n(dlc, expected):
    found = nearest_episodes(records((1, 1, dlc)), episodes(EPISODE), records(), W, N)
    row = [100, "2025-04-10", "2025-04-20", expected] if expected else [None] * 4
    assert hints(found) == [row]


def test_nearest_episode_open_and_return_before_runaway():
    # NEAREST_RETURN_DATE is blank while the episode is open (§10.2): here a return typed
    # before the runaway.
    found = nearest_episodes(records((1, 1, "2025-04-05"), (1, 2, "2026-01-10")),
                             episodes((300, 1, "2025-04-10", "2025-04-01")), records(), W, N)
    assert hints(found) == [[300, "2025-04-10", None, 2], [None] * 4]


def test_nearest_episode_ties_earlier_runaway_then_smaller_episode_id():
    found = nearest_episodes(
        records((1, 1, "2025-04-15"), (2, 2, "2025-04-15"), index=[9, 8]),
        episodes((7, 1, "2025-04-20", "2025-04-25"),   # window from 04-17: 2 days
                 (5, 1, "2025-04-01", "2025-04-10"),   # window to 04-13: 2 days, earlier
                 (9, 2, "2025-04-20", "2025-04-25"), (8, 2, "2025-04-20", "2025-04-25")),
        records(), W, N)
    assert list(found.index) == [9, 8]
    assert hints(found) == [[5, "2025-04-01", "2025-04-10", 2], [8, "2025-04-20", "2025-04-25", 2]]


def test_nearest_episode_skips_an_episode_that_matched_another_record():
    # §10.2: episode 5 (window to 04-13) matched record 3; it is not this record's hint.
    # Episode 7's window starts 04-17: 2 days from DLC 04-15.
    found = nearest_episodes(
        records((1, 1, "2025-04-15")),
        episodes((7, 1, "2025-04-20", "2025-04-25"), (5, 1, "2025-04-01", "2025-04-10")),
        records((1, 1, "2025-04-15"), (1, 3, "2025-04-05")), W, N)
    assert hints(found) == [[7, "2025-04-20", "2025-04-25", 2]]
    assert str(found["NEAREST_EPISODE_ID"].dtype) == "Int64"


# ---------------------------------------------------------------------------
# §8 Returned_still_active_in_NCIC
# ---------------------------------------------------------------------------


def still_active(recs, eps, today=TODAY):
    return returned_still_active(recs, eps, START, END, today, W, G)


def listed(recs, eps, today=TODAY):
    return still_active(recs, eps, today)["NIC"].tolist()


def test_returned_child_with_an_active_entry_is_listed_with_its_episode():
    recs = records((1, 1, "2025-04-12"))
    found = still_active(recs, episodes((100, 1, "2025-04-10", "2025-04-20")))
    assert list(found.columns) == [*recs.columns, "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE",
                                   "DAYS_SINCE_RETURN"]
    row = found.iloc[0]
    assert (row["NIC"], row["EPISODE_ID"], row["RUNAWAY_DATE"], row["RETURN_DATE"],
            row["DAYS_SINCE_RETURN"]) == (nic(1), 100, day("2025-04-10"), day("2025-04-20"), 61)
    assert str(found["DAYS_SINCE_RETURN"].dtype) == "Int64"


def test_a_record_matching_no_episode_is_not_listed():
    assert listed(records((1, 1, "2025-05-10")),
                  episodes((100, 1, "2025-04-10", "2025-04-20"))) == []


def test_a_record_matching_a_closed_and_an_open_episode_is_not_listed():
    assert listed(records((1, 1, "2025-04-12")),
                  episodes((100, 1, "2025-04-10", "2025-04-20"),
                           (101, 1, "2025-04-11", None))) == []
    # Every matched episode must be closed, even an open one not begun by the run date
    # (so the "missing again" rule does not apply): DLC 06-20 matches runaway 06-21 - 3.
    assert listed(records((1, 1, "2025-06-20")),
                  episodes((100, 1, "2025-05-30", "2025-06-10"),
                           (101, 1, "2025-06-21", None))) == []


def test_a_cleared_record_is_not_listed():
    assert listed(records((1, 1, "2025-04-12", "2025-04-25")),
                  episodes((100, 1, "2025-04-10", "2025-04-20"))) == []


def test_a_clear_date_blanked_as_invalid_is_not_listed():
    recs = records((1, 1, "2025-04-12", INVALID))
    assert pd.isna(recs.at[0, "CLEAR_DATE"]) and not recs.at[0, "CLEAR_DATE_EMPTY"]
    assert listed(recs, episodes((100, 1, "2025-04-10", "2025-04-20"))) == []


def test_grace_days_edge():
    eps = episodes((100, 1, "2025-05-20", "2025-06-18"), (200, 2, "2025-05-20", "2025-06-17"))
    found = still_active(records((1, 1, "2025-05-25"), (2, 2, "2025-05-25")), eps)
    assert found["NIC"].tolist() == [nic(2)]            # 06-18 is G = 2 days back: not yet
    assert found["DAYS_SINCE_RETURN"].tolist() == [3]


def test_episodes_outside_the_period_only_are_not_listed():
    assert listed(records((1, 1, "2025-02-25"), (2, 2, "2025-06-03")),
                  episodes((100, 1, "2025-02-20", "2025-03-05"),     # runaway before start
                           (200, 2, "2025-06-01", "2025-06-05"))) == []  # runaway after end


def test_a_child_with_another_episode_open_on_the_run_date_is_not_listed():
    closed = (100, 1, "2025-04-10", "2025-04-20")
    recs = records((1, 1, "2025-04-12"))
    assert listed(recs, episodes(closed, (101, 1, "2025-06-01", None))) == []
    assert listed(recs, episodes(closed, (101, 1, "2025-06-01", "2025-05-01"))) == []
    assert listed(recs, episodes(closed, (101, 1, "2025-06-20", None))) == []
    # Not open on the run date: it starts after it, or it is closed.
    assert listed(recs, episodes(closed, (101, 1, "2025-06-21", None))) == [nic(1)]
    assert listed(recs, episodes(closed, (101, 1, "2025-06-01", "2025-06-05"))) == [nic(1)]


def test_the_episode_shown_has_the_latest_return_ties_larger_episode_id():
    found = still_active(
        records((1, 1, "2025-04-15"), (2, 2, "2025-05-29")),
        episodes((401, 1, "2025-04-10", "2025-04-20"), (403, 1, "2025-04-14", "2025-05-05"),
                 (402, 1, "2025-04-12", "2025-05-05"),
                 (500, 2, "2025-05-28", "2025-06-02"),       # in the period
                 (501, 2, "2025-06-01", "2025-06-10")))      # outside it, latest return
    assert found[["NIC", "EPISODE_ID", "DAYS_SINCE_RETURN"]].values.tolist() == [
        [nic(1), 403, 46], [nic(2), 501, 10]]


def test_rows_sort_by_return_date_then_pid_then_nic():
    found = still_active(
        records((3, 5, "2025-04-12"), (2, 4, "2025-04-12"), (2, 3, "2025-04-12"),
                (1, 2, "2025-05-12")),
        episodes((100, 3, "2025-04-10", "2025-04-20"), (200, 2, "2025-04-10", "2025-04-20"),
                 (300, 1, "2025-05-10", "2025-05-11")))
    assert found["NIC"].tolist() == [nic(3), nic(4), nic(5), nic(2)]
    assert list(found.index) == [0, 1, 2, 3]


def test_no_rows_still_has_the_columns():
    recs = records((1, 1, "2025-04-12", "2025-04-25"))
    found = still_active(recs, episodes((100, 1, "2025-04-10", "2025-04-20")))
    assert found.empty
    assert list(found.columns) == [*recs.columns, "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE",
                                   "DAYS_SINCE_RETURN"]


# ---------------------------------------------------------------------------
# §8 Trend
# ---------------------------------------------------------------------------

LABELS = {1: "1-Lubbock", 2: "2-Abilene", 3: "3-Arlington", 4: "4-Tyler", 5: "5-Beaumont",
          6: "6-Houston", 7: "7-Austin", 8: "8-San Antonio", 9: "9-Midland", 10: "10-El Paso",
          11: "11-Edinburg", 99: "Unknown", 100: "STATEWIDE"}
REGION_LABELS = [LABELS[n] for n in range(1, 12)]


def trend_rows(counts):
    """One trend row per region number: counts maps number -> (EPISODES, IMPACT_NOT_IN_DPS);
    regions 1-11 not named get zeros; STATEWIDE is the sum."""
    full = {n: (0, 0) for n in range(1, 12)} | counts
    full[100] = (sum(e for e, _ in full.values()), sum(m for _, m in full.values()))
    return [{"REGION": LABELS[n], "REGION_NUMBER": n, "EPISODES": e, "IMPACT_NOT_IN_DPS": m,
             "DPS_NOT_IN_IMPACT": 1, "DPS_EVENTS": 2, "RETURNED_STILL_ACTIVE": 0}
            for n, (e, m) in full.items()]


def recorded(*periods):
    """A history with (label, counts) periods recorded in the order given."""
    history = load_trend("/nonexistent/trend.csv")
    for label, counts in periods:
        history = record_period(history, label, period_key(label), trend_rows(counts))
    return history


def grid_counts(grid):
    return {row[0]: row[1:] for row in grid}


def test_period_key_orders_by_fiscal_year_then_quarter():
    assert period_key("FY2025Q3") == 20253
    assert period_key("FY2024Q4") < period_key("FY2025Q1")
    with pytest.raises(ValueError):
        period_key("2025Q3")


def test_trend_over_three_recorded_periods():
    history = recorded(("FY2025Q3", {6: (10, 4)}), ("FY2024Q4", {6: (8, 2)}),
                       ("FY2025Q2", {6: (5, 1), 1: (2, 0)}))
    periods, counts, shares, episodes = trend_grid(history, "FY2025Q3")
    assert periods == ["FY2024Q4", "FY2025Q2", "FY2025Q3"]
    assert [row[0] for row in counts] == [*REGION_LABELS, "STATEWIDE"]
    assert grid_counts(counts)["6-Houston"] == [2, 1, 4]
    assert grid_counts(counts)["STATEWIDE"] == [2, 1, 4]
    assert grid_counts(shares)["6-Houston"] == [0.25, 0.2, 0.4]
    assert grid_counts(shares)["1-Lubbock"] == [None, 0.0, None]
    assert grid_counts(shares)["STATEWIDE"] == [0.25, 1 / 7, 0.4]
    assert grid_counts(episodes)["6-Houston"] == [8, 5, 10]     # the shares' denominators
    assert grid_counts(episodes)["1-Lubbock"] == [0, 2, 0]
    assert grid_counts(episodes)["STATEWIDE"] == [8, 7, 10]


def test_a_republished_period_replaces_its_own_rows():
    history = recorded(("FY2025Q2", {6: (5, 1)}), ("FY2025Q3", {6: (10, 4), 99: (1, 1)}))
    history = record_period(history, "FY2025Q3", 20253, trend_rows({6: (12, 3)}))
    assert len(history) == 2 * 12
    q3 = history[history["PERIOD"] == "FY2025Q3"]
    assert q3.loc[q3["REGION_NUMBER"] == 6, "EPISODES"].tolist() == [12]
    assert 99 not in q3["REGION_NUMBER"].tolist()
    assert history["PERIOD"].tolist() == ["FY2025Q2"] * 12 + ["FY2025Q3"] * 12
    with pytest.raises(ValueError):
        record_period(history, "FY2025Q3", 3, trend_rows({}))


def test_unrecorded_periods_are_skipped_and_later_ones_left_out():
    history = recorded(("FY2024Q4", {6: (8, 2)}), ("FY2025Q2", {6: (5, 1)}),
                       ("FY2025Q4", {6: (9, 9)}))
    periods, counts, _, _ = trend_grid(history, "FY2025Q3")      # this period not recorded
    assert periods == ["FY2024Q4", "FY2025Q2"]
    assert grid_counts(counts)["6-Houston"] == [2, 1]
    assert trend_grid(history, "FY2025Q1")[0] == ["FY2024Q4"]
    assert trend_grid(history, "FY2024Q3")[0] == []


def test_the_grid_shows_the_last_8_periods():
    labels = [f"FY{2023 + q // 4}Q{q % 4 + 1}" for q in range(10)]   # FY2023Q1 .. FY2025Q2
    history = recorded(*[(label, {6: (10, i)}) for i, label in enumerate(labels)])
    periods, counts, _, _ = trend_grid(history, "FY2025Q2")
    assert periods == labels[2:]
    assert grid_counts(counts)["6-Houston"] == list(range(2, 10))
    assert trend_grid(history, "FY2024Q4")[0] == labels[:8]
    assert trend_grid(history, "FY2025Q2", last=3)[0] == labels[7:]


def test_unknown_is_shown_only_when_it_has_rows():
    with_unknown = recorded(("FY2025Q2", {99: (3, 1)}), ("FY2025Q3", {6: (1, 1)}))
    counts = trend_grid(with_unknown, "FY2025Q3")[1]
    assert [row[0] for row in counts][-2:] == ["Unknown", "STATEWIDE"]
    assert grid_counts(counts)["Unknown"] == [1, 0]
    assert trend_grid(with_unknown, "FY2025Q3", last=1)[1][-2][0] == "11-Edinburg"
    zero_unknown = recorded(("FY2025Q3", {6: (1, 1), 99: (0, 0)}))
    zero_unknown.loc[zero_unknown["REGION_NUMBER"] == 99, "DPS_NOT_IN_IMPACT"] = 0
    zero_unknown.loc[zero_unknown["REGION_NUMBER"] == 99, "DPS_EVENTS"] = 0
    assert "Unknown" not in [row[0] for row in trend_grid(zero_unknown, "FY2025Q3")[1]]


def test_a_region_without_a_row_counts_0_and_its_share_is_blank():
    history = recorded(("FY2025Q3", {6: (4, 1)}))
    history = history[history["REGION_NUMBER"] != 7]
    _, counts, shares, _ = trend_grid(history, "FY2025Q3")
    assert grid_counts(counts)["7"] == [0]              # no label recorded: the number
    assert grid_counts(shares)["7"] == [None]
    assert grid_counts(shares)["5-Beaumont"] == [None]   # recorded with 0 episodes


def test_previous_counts_are_those_of_the_recorded_period_just_before():
    history = recorded(("FY2025Q1", {6: (3, 3)}), ("FY2024Q3", {6: (9, 9)}),
                       ("FY2025Q3", {6: (1, 1)}))
    before = previous_counts(history, "FY2025Q3")       # FY2025Q2 was never recorded
    assert before == {**dict.fromkeys(REGION_LABELS, 0), "6-Houston": 3, "STATEWIDE": 3}
    assert previous_counts(history, "FY2025Q1")["6-Houston"] == 9
    assert previous_counts(history, "FY2024Q3") is None
    assert previous_counts(history, "FY2025Q4")["6-Houston"] == 1


def test_the_trend_file_round_trips_through_the_callers_writer(tmp_path):
    path = tmp_path / "trend.csv"
    empty = load_trend(path)
    assert list(empty.columns) == TREND_COLUMNS and empty.empty
    history = recorded(("FY2025Q3", {6: (10, 4), 99: (1, 1)}), ("FY2025Q2", {6: (5, 1)}))
    written = []

    def write_bytes(target, data):
        written.append(target)
        target.write_bytes(data)

    save_trend(history, path, write_bytes)
    assert written == [path]
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == ",".join(TREND_COLUMNS)
    assert lines[1] == "FY2025Q2,20252,1,1-Lubbock,0,0,1,2,0,0,0"   # v4 adds the last two
    assert len(lines) == 1 + 12 + 13 + 1 and lines[-1] == ""
    pd.testing.assert_frame_equal(load_trend(path), history)


def test_a_damaged_trend_file_is_an_input_error(tmp_path):
    path = tmp_path / "trend.csv"
    path.write_text("PERIOD,REGION\nFY2025Q3,6-Houston\n", encoding="utf-8")
    with pytest.raises(InputError, match="column PERIOD_KEY missing"):
        load_trend(path)
    path.write_text(",".join(TREND_COLUMNS) + "\nFY2025Q3,20252,6,6-Houston,1,1,1,1,1\n",
                    encoding="utf-8")
    with pytest.raises(InputError, match="line 2"):
        load_trend(path)



def test_a_trend_file_written_before_v4_loads_with_the_timeliness_counts_zero(tmp_path):
    """§10.3 adds TIMELINESS_EPISODES and REPORTED_ON_TIME to the trend; an older file loads,
    and its periods show no on-time share (blank), never 0 %."""
    path = tmp_path / "trend.csv"
    path.write_text("PERIOD,PERIOD_KEY,REGION_NUMBER,REGION,EPISODES,IMPACT_NOT_IN_DPS,"
                    "DPS_NOT_IN_IMPACT,DPS_EVENTS,RETURNED_STILL_ACTIVE\n"
                    "FY2025Q2,20252,100,STATEWIDE,10,2,1,5,0\n", encoding="utf-8")
    history = load_trend(path)
    assert history[["TIMELINESS_EPISODES", "REPORTED_ON_TIME"]].values.tolist() == [[0, 0]]
    assert on_time_shares(history, "FY2025Q2")[-1] == ["STATEWIDE", None]


def test_the_on_time_share_is_reported_on_time_over_the_timeliness_population():
    history = record_period(empty_trend(), "FY2025Q3", period_key("FY2025Q3"), [
        {"REGION": "6-Houston", "REGION_NUMBER": 6, "EPISODES": 9, "IMPACT_NOT_IN_DPS": 1,
         "DPS_NOT_IN_IMPACT": 0, "DPS_EVENTS": 8, "RETURNED_STILL_ACTIVE": 0,
         "TIMELINESS_EPISODES": 8, "REPORTED_ON_TIME": 6},
        {"REGION": "STATEWIDE", "REGION_NUMBER": 100, "EPISODES": 9, "IMPACT_NOT_IN_DPS": 1,
         "DPS_NOT_IN_IMPACT": 0, "DPS_EVENTS": 8, "RETURNED_STILL_ACTIVE": 0,
         "TIMELINESS_EPISODES": 8, "REPORTED_ON_TIME": 6}])
    shares = on_time_shares(history, "FY2025Q3")
    assert shares[5] == ["6-Houston", 0.75] and shares[-1] == ["STATEWIDE", 0.75]
    assert shares[0] == ["1", None]   # a region never recorded: its number, no share



def test_a_count_a_newer_report_records_is_kept_and_older_periods_read_it_as_0(tmp_path):
    """The trend's counts are open (§8): a report added to the registry records its own
    count column without a change here; periods recorded before it show 0."""
    base = {"REGION": "STATEWIDE", "REGION_NUMBER": 100, "EPISODES": 5}
    history = record_period(empty_trend(), "FY2025Q2", period_key("FY2025Q2"), [base])
    history = record_period(history, "FY2025Q3", period_key("FY2025Q3"),
                            [{**base, "CLEARED_IN_NCIC": 7}])
    path = tmp_path / "trend.csv"
    save_trend(history, path, lambda target, data: target.write_bytes(data))
    loaded = load_trend(path)
    assert list(loaded.columns)[-1] == "CLEARED_IN_NCIC"
    assert loaded["CLEARED_IN_NCIC"].tolist() == [0, 7]
