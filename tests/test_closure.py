"""Contract §10.1-10.5 (exchange/closure.py), one case per rule, on tiny named frames.

Run date 2025-06-20, period FY2025Q3 (2025-03-01 .. 2025-05-31), match window W = 3 days,
near_miss_days N = 30. Children: Harris (county 101, region 6-Houston), Travis (227,
7-Austin), Bexar (15, 8-San Antonio); PID 555 has no county and was not sent (Unknown).
"""

import datetime as dt
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

import util
from demo.build_demo_db import create_schema, load_counties
from exchange.archive import Archive
from exchange.closure import (
    AGENCY_COLUMNS,
    NO_ONE_STILL_MISSING,
    REPORTED_LATE_COLUMNS,
    STILL_MISSING_NOW_COLUMNS,
    age_at_dlc,
    as_of_run_date,
    caseworkers_by_pid,
    in_care_status,
    ran_before,
    read_ori_directory,
    reported_late,
    still_missing_by_region,
    still_missing_now,
    timeliness_counts,
    timeliness_grid,
    timeliness_rows,
    timeliness_trend_counts,
    with_agencies,
    with_caseworkers,
    with_in_care,
)
from exchange.config import DatabaseSettings
from exchange.database import open_database
from exchange.episodes import build_regions
from exchange.errors import ConfigError
from exchange.reconcile import SendList, note, with_impact_region
from exchange.records import SendRecord
from exchange.sources import read_caseworkers, read_send_list

TODAY = dt.date(2025, 6, 20)
START = dt.date(2025, 3, 1)
W, N = 3, 30
SQL = Path(__file__).resolve().parent.parent / "sql"
SENT_COUNTIES = {1001: 101, 1002: 227, 1003: 15, 1004: 101, 1005: 101}
NOT_IN_CARE_NOTE = ("not sent to DPS: not in care during the period; runaway recorded after "
                    "discharge: check the episode in IMPACT")


# ---------------------------------------------------------------------------
# Tiny named frames
# ---------------------------------------------------------------------------


def day(text):
    return pd.NaT if text is None else pd.Timestamp(text)


def dates(values):
    return pd.to_datetime(pd.Series([day(v) for v in values], dtype="datetime64[us]"))


def nic(n):
    return f"M{n:09d}"


def records(*rows):
    """Usable DPS records from (PID, NIC number, DLC[, ENTRY_DATE[, ORI]]) tuples; the
    ENTRY_DATE is the DLC unless given."""
    rows = [(*r, *[None] * (5 - len(r))) for r in rows]
    return pd.DataFrame({
        "PID": pd.Series([r[0] for r in rows], dtype="int64"),
        "NIC": pd.Series([nic(r[1]) for r in rows], dtype="str"),
        "LAST_NAME": "DOE", "FIRST_NAME": "JANE", "DOB": dates(["2010-01-02"] * len(rows)),
        "MKE": "EMJ",
        "ORI": pd.Series(["TX2270000" if r[4] is None else r[4] for r in rows], dtype=object),
        "ENTRY_DATE": dates([r[3] or r[2] for r in rows]), "DLC": dates([r[2] for r in rows]),
        "CLEAR_DATE": dates([None] * len(rows)),
    })


def regions():
    counties = pd.DataFrame([(c.code, c.name, c.region, c.region_name) for c in load_counties()],
                            columns=["COUNTY_CODE", "COUNTY_NAME", "REGION", "REGION_NAME"])
    return build_regions(counties)


def episodes(*rows):
    """Checked sa_98 episodes tagged with their region, from (EPISODE_ID, PID, RUNAWAY_DATE,
    RETURN_DATE or None[, COUNTY_CODE]) tuples; the county is the sent one unless given."""
    rows = [(*r, None) if len(r) == 4 else r for r in rows]
    runaway, returned = dates([r[2] for r in rows]), dates([r[3] for r in rows])
    frame = pd.DataFrame({
        "EPISODE_ID": pd.Series([r[0] for r in rows], dtype="int64"),
        "PID": pd.Series([r[1] for r in rows], dtype="int64"),
        "LAST_NAME": "DOE", "FIRST_NAME": "JANE", "DOB": dates(["2009-04-01"] * len(rows)),
        "RUNAWAY_DATE": runaway, "RETURN_DATE": returned,
        "COUNTY_CODE": pd.Series([r[4] for r in rows], dtype="float64"),
        "LINE": pd.Series(range(1, len(rows) + 1), dtype="int64"),
        "OPEN_FOR_MATCHING": returned.isna() | (returned < runaway),
    })
    return with_impact_region(frame, SendList(SENT_COUNTIES), regions())


def cells(frame, columns=None):
    """A frame as plain rows: dates as ISO text, missing values as None."""
    frame = frame if columns is None else frame[columns]

    def plain(value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.date().isoformat()
        return value.item() if hasattr(value, "item") else value
    return [[plain(v) for v in row] for row in frame.itertuples(index=False)]


def sent_note(pid):
    return note(pid, SendList(SENT_COUNTIES), {})


def still_missing(eps, recs, in_care=None):
    return still_missing_now(eps, recs, TODAY, W, N, sent_note, {} if in_care is None else in_care)


# ---------------------------------------------------------------------------
# §10.1 Still missing now
# ---------------------------------------------------------------------------

Q1_RUNAWAY = (900, 1001, "2024-10-05", None)   # FY2025Q1, still open on the run date


def test_a_q1_runaway_still_open_without_a_record_stays_listed_until_a_record_matches():
    listed = still_missing(episodes(Q1_RUNAWAY), records(), in_care={1001: "Y"})
    assert list(listed.columns) == STILL_MISSING_NOW_COLUMNS
    assert cells(listed) == [["6-Houston", "Harris", 1001, 900, "DOE", "JANE", "2009-04-01", 16,
                              "2024-10-05", "FY2025Q1", 258, "Y", "", None, None, None]]
    # A record 12 days before the window (DLC 09-20) is a hint, not a match: still listed.
    near = still_missing(episodes(Q1_RUNAWAY), records((1001, 1, "2024-09-20")))
    assert cells(near, ["EPISODE_ID", "NEAREST_NIC", "NEAREST_DLC", "DAYS_OUTSIDE_WINDOW"]) == [
        [900, nic(1), "2024-09-20", 12]]
    # A record in the window, whatever quarter its DLC is in, closes the finding.
    found = still_missing(episodes(Q1_RUNAWAY), records((1001, 1, "2024-10-06")))
    assert found.empty and list(found.columns) == STILL_MISSING_NOW_COLUMNS


def test_open_on_the_run_date_means_no_return_a_return_typed_before_or_after_the_run_date():
    listed = still_missing(episodes(
        (910, 1002, "2025-05-01", "2025-04-01"),    # return before the runaway: open (§5)
        (911, 1003, "2025-06-01", "2025-06-25"),    # returns after the run date: away today
        (912, 1004, "2025-06-01", "2025-06-10"),    # back before the run date
        (913, 1005, "2025-06-21", None),            # runs after the run date
        (914, 1001, "2023-02-01", None)), records())
    assert cells(listed, ["EPISODE_ID", "RUNAWAY_DATE", "RUNAWAY_PERIOD", "DAYS_MISSING"]) == [
        [914, "2023-02-01", "FY2023Q2", 870], [910, "2025-05-01", "FY2025Q3", 50],
        [911, "2025-06-01", "FY2025Q4", 19]]


def test_rows_sort_by_region_number_unknown_last_then_runaway_date_pid_episode():
    listed = still_missing(episodes(
        (920, 555, "2025-01-01", None),             # no county, not sent: Unknown
        (921, 1003, "2025-02-01", None),            # 8-San Antonio
        (922, 1004, "2025-04-01", None), (923, 1001, "2025-04-01", None),
        (924, 1001, "2024-12-01", None),            # 6-Houston, the longest missing first
        (925, 1002, "2025-05-01", None)), records())  # 7-Austin
    assert cells(listed, ["REGION", "PID", "EPISODE_ID"]) == [
        ["6-Houston", 1001, 924], ["6-Houston", 1001, 923], ["6-Houston", 1004, 922],
        ["7-Austin", 1002, 925], ["8-San Antonio", 1003, 921], ["Unknown", 555, 920]]


def test_note_in_care_and_hint_on_a_still_missing_row():
    # §9's NOTE as §10.5 words it; IN_CARE blank for a PID not in send_children's result;
    # §10.2: the record that matched the child's earlier runaway is no hint for this one.
    listed = still_missing(
        episodes((930, 555, "2025-04-20", None, 101), (931, 555, "2025-04-01", "2025-04-05", 101)),
        records((555, 7, "2025-04-06")), in_care={1001: "Y"})
    assert cells(listed, ["EPISODE_ID", "IN_CARE", "NOTE", "NEAREST_NIC"]) == [
        [930, "", NOT_IN_CARE_NOTE, None]]


def test_how_many_ran_before_the_period():
    listed = still_missing(episodes(Q1_RUNAWAY, (940, 1002, "2025-03-01", None)), records())
    assert ran_before(listed, START) == 1


def test_the_mail_lead_line_counts_by_region_and_those_who_ran_before_the_period():
    listed = still_missing(episodes(Q1_RUNAWAY, (941, 1004, "2025-04-01", None),
                                    (942, 1002, "2025-01-10", None)), records())
    lines = still_missing_by_region(listed, START, regions().labels)
    assert lines[5:7] == [["6-Houston", 2, 1], ["7-Austin", 1, 1]]
    assert lines[-1] == ["STATEWIDE", 3, 2] and len(lines) == 12   # no Unknown row
    assert all(line[1:] == [0, 0] for line in lines[:5] + lines[7:11])


def test_the_empty_list_line_is_one_sentence():
    assert NO_ONE_STILL_MISSING == "No child is missing on the run date without a DPS record."


def test_a_return_after_the_run_date_is_shown_blank():
    shown = as_of_run_date(episodes((950, 1001, "2025-06-01", "2025-06-21"),
                                    (951, 1002, "2025-06-01", "2025-06-20")), TODAY)
    assert cells(shown, ["EPISODE_ID", "RETURN_DATE"]) == [[950, None], [951, "2025-06-20"]]


# ---------------------------------------------------------------------------
# §10.2 AGE_AT_DLC (the unmatched-only hints are in tests/test_followup.py)
# ---------------------------------------------------------------------------


def test_age_at_dlc_in_whole_years_from_dps_dob_blank_without_one():
    recs = records((1001, 1, "2025-01-01"), (1001, 2, "2025-01-02"), (1002, 3, "2025-01-02"))
    recs.loc[2, "DOB"] = pd.NaT
    assert age_at_dlc(recs).tolist() == [14, 15, pd.NA]


# ---------------------------------------------------------------------------
# §10.3 Timeliness
# ---------------------------------------------------------------------------


def timely(eps, recs, sent=None):
    return timeliness_rows(eps, recs, set(SENT_COUNTIES if sent is None else sent), TODAY, W)


def test_an_entry_before_the_runaway_counts_on_time():
    rows = timely(episodes((960, 1001, "2025-04-10", "2025-04-20")),
                  records((1001, 1, "2025-04-08", "2025-04-09")))
    assert cells(rows, ["EPISODE_ID", "NIC", "ENTRY_DATE", "DAYS_TO_ENTRY", "OUTCOME"]) == [
        [960, nic(1), "2025-04-09", -1, "on time"]]


def test_one_day_is_on_time_two_days_late_no_record_not_reported():
    rows = timely(episodes((961, 1001, "2025-04-10", "2025-04-20"),
                           (962, 1002, "2025-04-10", "2025-04-20"),
                           (963, 1003, "2025-04-10", "2025-04-20")),
                  records((1001, 1, "2025-04-10", "2025-04-11"),
                          (1002, 2, "2025-04-10", "2025-04-12")))
    assert cells(rows, ["EPISODE_ID", "DAYS_TO_ENTRY", "OUTCOME"]) == [
        [961, 1, "on time"], [962, 2, "late"], [963, None, "not reported"]]


def test_a_child_sent_but_back_within_a_day_is_outside_the_population():
    rows = timely(episodes((964, 1001, "2025-04-10", "2025-04-11"),     # 1 day: outside
                           (965, 1002, "2025-04-10", "2025-04-12"),     # 2 days: inside
                           (966, 1003, "2025-06-19", None),             # open: 1 day so far
                           (967, 1004, "2025-06-18", "2025-06-30")),    # back after the run
                  records())                                            # date: 2 days so far
    assert cells(rows, ["EPISODE_ID", "DAYS_MISSING"]) == [[965, 2], [967, 2]]


def test_children_not_sent_to_dps_are_outside_the_population():
    rows = timely(episodes((968, 555, "2025-04-10", None, 101),
                           (969, 1001, "2025-04-10", None)), records(), sent={1001})
    assert cells(rows, ["EPISODE_ID"]) == [[969]]


def test_the_first_report_is_the_earliest_entry_ties_smaller_nic_as_text():
    rows = timely(episodes((970, 1001, "2025-04-10", "2025-04-20"),
                           (971, 1002, "2025-04-10", "2025-04-20")),
                  records((1001, 1, "2025-04-12", "2025-04-15"),
                          (1001, 2, "2025-04-11", "2025-04-13"),
                          (1001, 3, "2025-05-30", "2025-04-12"),      # outside the window
                          (1002, 10, "2025-04-11", "2025-04-14"),
                          (1002, 9, "2025-04-12", "2025-04-14")))
    assert cells(rows, ["EPISODE_ID", "NIC", "ENTRY_DATE", "DAYS_TO_ENTRY"]) == [
        [970, nic(2), "2025-04-13", 3], [971, nic(9), "2025-04-14", 4]]


def grid_fixture():
    return timely(episodes((980, 1001, "2025-04-10", "2025-04-20"),       # on time
                           (981, 1004, "2025-04-10", "2025-04-20"),       # late
                           (982, 1005, "2025-04-10", "2025-04-20"),       # not reported
                           (983, 555, "2025-04-10", "2025-04-20")),       # Unknown, sent here
                  records((1001, 1, "2025-04-10"), (1004, 2, "2025-04-10", "2025-04-17")),
                  sent={1001, 1004, 1005, 555})


def test_the_timeliness_grid_lists_regions_unknown_and_statewide():
    grid = timeliness_grid(grid_fixture(), regions().labels)
    empty = [[label, 0, 0, 0, 0, None] for _, label in regions().labels]
    empty[5] = ["6-Houston", 3, 1, 1, 1, 33.3]
    assert grid == [*empty, ["Unknown", 1, 0, 0, 1, 0.0], ["STATEWIDE", 4, 1, 1, 2, 25.0]]
    assert timeliness_counts(grid_fixture()) == {"on time": 1, "late": 1, "not reported": 2}


def test_without_unknown_rows_there_is_no_unknown_row_and_an_empty_period_has_blank_shares():
    grid = timeliness_grid(timely(episodes(), records()), regions().labels)
    assert [row[0] for row in grid] == [label for _, label in regions().labels] + ["STATEWIDE"]
    assert grid[-1] == ["STATEWIDE", 0, 0, 0, 0, None]


def test_reported_late_rows_columns_and_order():
    rows = timely(episodes((990, 1004, "2025-04-10", "2025-04-20"),
                           (991, 1001, "2025-04-01", "2025-04-20"),
                           (992, 1002, "2025-04-01", None),
                           (993, 1001, "2025-05-01", "2025-06-25"),     # back after the run date
                           (994, 1005, "2025-04-10", "2025-04-20")),    # on time: not listed
                  records((1004, 1, "2025-04-10", "2025-04-13"), (1001, 2, "2025-04-01",
                                                                   "2025-04-08"),
                          (1002, 3, "2025-04-02", "2025-04-30"), (1001, 4, "2025-05-01",
                                                                  "2025-05-04"),
                          (1005, 5, "2025-04-10")))
    late = reported_late(rows, TODAY)
    assert list(late.columns) == REPORTED_LATE_COLUMNS
    assert cells(late, ["REGION", "PID", "EPISODE_ID", "RETURN_DATE", "DAYS_MISSING", "NIC",
                        "DAYS_TO_ENTRY"]) == [
        ["6-Houston", 1001, 991, "2025-04-20", 19, nic(2), 7],
        ["6-Houston", 1001, 993, None, 50, nic(4), 3],
        ["6-Houston", 1004, 990, "2025-04-20", 10, nic(1), 3],
        ["7-Austin", 1002, 992, None, 80, nic(3), 29]]


def test_trend_counts_record_the_population_and_the_on_time_reports():
    trend = timeliness_trend_counts(grid_fixture(), regions().labels)
    houston = next(row for row in trend if row["REGION"] == "6-Houston")
    assert houston == {"REGION": "6-Houston", "REGION_NUMBER": 6, "TIMELINESS_EPISODES": 3,
                       "REPORTED_ON_TIME": 1}
    assert trend[-2:] == [
        {"REGION": "Unknown", "REGION_NUMBER": 99, "TIMELINESS_EPISODES": 1,
         "REPORTED_ON_TIME": 0},
        {"REGION": "STATEWIDE", "REGION_NUMBER": 100, "TIMELINESS_EPISODES": 4,
         "REPORTED_ON_TIME": 1}]


# ---------------------------------------------------------------------------
# §10.4 Who acts: caseworkers
# ---------------------------------------------------------------------------

# assignment_id, person_id, worker, unit, supervisor, start_date, end_date, is_primary
ASSIGNMENTS = [
    (10, 1001, "Worker A", "Unit 6A", "Sup One", "2025-01-01", None, 1),
    (12, 1001, "Worker B", "Unit 6B", "Sup Two", "2025-01-01", None, 1),       # same day, larger id
    (20, 1002, "Worker C", "Unit 7A", "Sup Three", "2024-01-01", "2025-06-19", 1),   # ended
    (21, 1002, "Worker D", "Unit 7B", "Sup Four", "2025-05-01", None, 0),      # secondary
    (22, 1002, "Worker E", "Unit 7C", "Sup Five", "2025-03-01", None, 1),
    (30, 1003, "Worker F", "Unit 8A", "Sup Six", "2025-06-21", None, 1),       # starts later
    (40, 1004, "Worker G", "Unit 6C", "Sup Seven", "2024-01-01", "2025-06-20", 1),  # ends today
    (41, 1004, "Worker H", "Unit 6D", None, "2023-01-01", None, 1),
    (50, 1006, "Worker J", "Unit 6E", "Sup Eight", "2024-01-01", None, 1),   # never ran
]
RUNNERS = [1001, 1002, 1003, 1004]   # children with a runaway episode


@pytest.fixture
def caseworker_db(tmp_path):
    path = tmp_path / "impact.sqlite"
    with sqlite3.connect(path) as connection:
        create_schema(connection)
        connection.executemany("INSERT INTO assignment VALUES (?,?,?,?,?,?,?,?)", ASSIGNMENTS)
        connection.executemany("INSERT INTO runaway_episode VALUES (?, ?, NULL, '2025-04-01', "
                               "NULL, 101)", [(pid * 10, pid) for pid in RUNNERS])
    return open_database(f"sqlite:///{path}")


def test_two_primary_assignments_from_the_same_day_take_the_larger_id(caseworker_db):
    # ...a current primary, not a secondary or an ended one; 1003's starts after the run
    # date; 1006 never ran away, so no report row can need their worker: not read.
    settings = DatabaseSettings(url="sqlite://", sql_folder=SQL, caseworker_query="caseworker")
    workers = read_caseworkers(settings, caseworker_db, TODAY)
    assert workers.reset_index().values.tolist() == [
        [1001, "Worker B", "Unit 6B", "Sup Two"], [1002, "Worker E", "Unit 7C", "Sup Five"],
        [1004, "Worker G", "Unit 6C", "Sup Seven"]]


def test_the_caseworker_query_is_off_with_an_empty_setting(caseworker_db):
    settings = DatabaseSettings(url="sqlite://", sql_folder=SQL)
    assert settings.caseworker_query == ""
    assert read_caseworkers(settings, caseworker_db, TODAY) is None


def test_caseworker_columns_follow_first_name_blank_without_an_assignment():
    workers = caseworkers_by_pid(pd.DataFrame(
        [[1001, "Worker B", "Unit 6B", None], [1001, "Worker A", "Unit 6A", "Sup One"]],
        columns=["PID", "CASEWORKER", "UNIT", "SUPERVISOR"]))
    rows = episodes((1, 1001, "2025-04-01", None), (2, 1002, "2025-04-01", None))[
        ["PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", "DOB"]]
    shown = with_caseworkers(rows, workers)
    assert list(shown.columns) == ["PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", "CASEWORKER",
                                   "UNIT", "SUPERVISOR", "DOB"]
    assert cells(shown, ["PID", "CASEWORKER", "UNIT", "SUPERVISOR"]) == [
        [1001, "Worker B", "Unit 6B", ""], [1002, "", "", ""]]
    assert with_caseworkers(rows, None) is rows


@pytest.mark.parametrize("name", ["../caseworker", "caseworker.sql", "/etc/x"])
def test_the_caseworker_query_setting_is_a_name_not_a_path(tmp_path, name):
    config_path = tmp_path / "dps.yml"
    config_path.write_text(f"database: {{url: 'sqlite://', caseworker_query: '{name}'}}\n"
                           "sftp: {host: h, key_file: k, known_hosts_file: k}\n"
                           "reports: {deliver_to: [share]}\n")
    with pytest.raises(ConfigError) as caught:
        util.load_config(config_path, lenient=True)
    assert str(caught.value) == (f"config {config_path}: database.caseworker_query: the name of "
                                 "a query in database.sql_folder (e.g. caseworker), not a path "
                                 "or a file name")


# ---------------------------------------------------------------------------
# §10.4 Who acts: police agencies
# ---------------------------------------------------------------------------

DIRECTORY = ("ORI,AGENCY,PHONE\n"
             "TX2270000,Travis County Sheriff's Office,(000) 555-0100\n"
             "\n"
             "TX2270100,\"Austin Police Department, Central\",\n")


def test_an_ori_missing_from_the_directory_leaves_agency_blank_and_is_counted(tmp_path):
    path = tmp_path / "ori.csv"
    path.write_text(DIRECTORY, encoding="utf-8")
    recs = records((1001, 1, "2025-04-01", None, "TX2270000"),
                   (1002, 2, "2025-04-01", None, "TX2270100"),
                   (1003, 3, "2025-04-01", None, "TX0150000"),
                   (1004, 4, "2025-04-01", None, "TX0150000"),
                   (1005, 5, "2025-04-01", None, ""))          # blanked as invalid: not counted
    shown, unknown = with_agencies(recs, read_ori_directory(path))
    columns = list(recs.columns)
    at = columns.index("ORI") + 1
    assert list(shown.columns) == [*columns[:at], *AGENCY_COLUMNS, *columns[at:]]
    assert cells(shown, ["ORI", "AGENCY", "PHONE"]) == [
        ["TX2270000", "Travis County Sheriff's Office", "(000) 555-0100"],
        ["TX2270100", "Austin Police Department, Central", ""],
        ["TX0150000", "", ""], ["TX0150000", "", ""], ["", "", ""]]
    assert unknown == 1


def test_the_directory_is_off_with_an_empty_setting():
    recs = records((1001, 1, "2025-04-01"))
    assert read_ori_directory(None) is None
    assert with_agencies(recs, None) == (recs, 0)


@pytest.mark.parametrize("content, fault", [
    (b"ORI,NAME,PHONE\nTX2270000,A,1\n", "line 1: the header must be ORI,AGENCY,PHONE"),
    (b"", "line 1: the header must be ORI,AGENCY,PHONE"),
    (b"ORI,AGENCY,PHONE\nTX2270000,A\n", "line 2: expected 3 fields, found 2"),
    (b"ORI,AGENCY,PHONE\nTX227,A,1\n", "line 2: ORI must be 9 letters or digits"),
    (b"ORI,AGENCY,PHONE\nTX2270000,A,1\n\nTX2270000,B,2\n",
     "line 4: ORI repeated (first on line 2)"),
    (b"ORI,AGENCY,PHONE\nTX2270000,,1\n", "line 2: AGENCY is empty"),
    (b"ORI,AGENCY,PHONE\nTX2270000,Pe\xf1a PD,1\n", "not UTF-8 text"),
    (b'ORI,AGENCY,PHONE\nTX2270000,"A,1\n', "not a readable CSV file (unexpected end of data)"),
], ids=["header", "empty", "fields", "ori", "repeated", "agency", "encoding", "quote"])
def test_a_malformed_directory_is_a_config_error_naming_file_and_fault(tmp_path, content, fault):
    path = tmp_path / "ori.csv"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_ori_directory(path)
    assert str(caught.value) == f"reports.ori_directory: {path}: {fault}"
    assert caught.value.exit_code == 2


def test_a_missing_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        read_ori_directory(tmp_path / "none.csv")
    assert str(caught.value) == f"reports.ori_directory: {tmp_path / 'none.csv'}: file not found"


def test_the_directory_path_resolves_against_the_config_file(tmp_path):
    config_path = tmp_path / "conf" / "dps.yml"
    config_path.parent.mkdir()
    config_path.write_text("database: {url: 'sqlite://'}\nsftp: {host: h, key_file: k, "
                           "known_hosts_file: k}\nreports: {ori_directory: ori/agencies.csv, "
                           "deliver_to: [share]}\n")
    config = util.load_config(config_path, lenient=True)
    assert config.reports.ori_directory == tmp_path / "conf" / "ori" / "agencies.csv"


# ---------------------------------------------------------------------------
# §10.5 Care status
# ---------------------------------------------------------------------------


def test_in_care_y_while_open_or_discharged_after_the_run_date_n_on_or_before():
    status = in_care_status({1001: None, 1002: pd.NaT, 1003: pd.Timestamp("2025-06-21"),
                             1004: pd.Timestamp("2025-06-20"),
                             1005: pd.Timestamp("2025-01-31")}, TODAY)
    assert status.to_dict() == {1001: "Y", 1002: "Y", 1003: "Y", 1004: "N", 1005: "N"}


def test_in_care_on_returned_still_active_rows():
    rows = records((1001, 1, "2025-04-01"), (555, 2, "2025-04-01"))
    shown = with_in_care(rows, {1001: "N"})
    assert cells(shown, ["PID", "IN_CARE"]) == [[1001, "N"], [555, ""]]
    assert "IN_CARE" not in rows.columns


def test_in_care_on_still_missing_now_blank_when_not_in_send_children():
    listed = still_missing(episodes((995, 1001, "2025-05-01", None),
                                    (996, 1002, "2025-05-02", None),
                                    (997, 555, "2025-05-03", None, 101)),
                           records(), in_care=in_care_status({1001: None, 1002: "2025-06-01"},
                                                             TODAY))
    assert cells(listed, ["PID", "IN_CARE"]) == [[1001, "Y"], [555, ""], [1002, "N"]]


def archived_indexes(tmp_path, sent_csv, excluded_csv):
    (tmp_path / "r1_sent_index.csv").write_text(sent_csv)
    (tmp_path / "r1_excluded_index.csv").write_text(excluded_csv)
    return SendRecord.of({"run_id": "r1", "archived": [str(tmp_path / "r1_sent_index.csv"),
                                                       str(tmp_path / "r1_excluded_index.csv")]})


def test_the_receive_reads_discharge_dates_of_sent_and_excluded_children(tmp_path):
    upload = archived_indexes(tmp_path, "PID,COUNTY_CODE,DISCHARGE_DATE\n1001,101,\n"
                                        "1002,227,2025-06-01\n",
                              "PID,REASONS,DISCHARGE_DATE\n1003,no usable DOB,2025-07-01\n")
    send_list = read_send_list(upload, Archive(None))
    assert in_care_status(send_list.discharge, TODAY).to_dict() == \
        {1001: "Y", 1002: "N", 1003: "Y"}
    assert send_list.county == {1001: 101, 1002: 227}


def test_an_index_archived_before_v4_still_loads_and_leaves_in_care_blank(tmp_path):
    upload = archived_indexes(tmp_path, "PID,COUNTY_CODE\n1001,101\n1002,\n",
                              "PID,REASONS\n1003,no usable DOB\n")
    send_list = read_send_list(upload, Archive(None))
    assert send_list.county[1001] == 101 and send_list.excluded == {1003: "no usable DOB"}
    assert send_list.discharge.empty
