"""The simulated DPS side (demo/dps_simulator.py): its answer follows docs/data-contract.md §4."""

from __future__ import annotations

import datetime as dt
import random
import re
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

import util
from demo import dps_simulator as sim
from demo.dps_simulator import SimulatorSettings, build_answer
from exchange.answer import (
    ResultsFile,
    ResultsLayout,
    check_control_totals,
    parse_counts,
    parse_results,
)
from exchange.config import DpsFileSettings
from exchange.errors import EXIT_USAGE, NotReadyError

REPO = Path(__file__).resolve().parent.parent
RUN_DATE = dt.date(2025, 6, 20)
HEADER = ResultsLayout().header()
SENT_HEADER = "PID|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|DOB|SEX|RACE"
NIC = re.compile(r"^M\d{9}$")
QUIET = SimulatorSettings(duplicate_share=0, bad_optional_share=0, malformed_nic_share=0,
                          future_dlc_share=0, unknown_child_share=0, far_dlc_share=0,
                          uncleared_share=0, clear_before_entry_share=0)

SCHEMA = """
CREATE TABLE county(county_code INTEGER PRIMARY KEY, county_name TEXT NOT NULL,
                    fips TEXT NOT NULL, region INTEGER NOT NULL, region_name TEXT NOT NULL);
CREATE TABLE person(person_id INTEGER PRIMARY KEY, last_name TEXT, first_name TEXT,
                    middle_name TEXT, suffix TEXT, birth_date TEXT, sex TEXT,
                    race_ethnicity TEXT);
CREATE TABLE removal(removal_id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL,
                     removal_date TEXT NOT NULL, discharge_date TEXT, county_code INTEGER);
CREATE TABLE runaway_episode(episode_id INTEGER PRIMARY KEY, person_id INTEGER NOT NULL,
                             removal_id INTEGER, runaway_date TEXT NOT NULL, return_date TEXT,
                             county_code INTEGER);
"""
# person_id, last, first, DOB as sent, sex, race
CHILDREN = [
    (101, "GARCIA", "SOFIA", "20090401", "F", "W"),
    (102, "O'BRIEN", "SEAN", "20080115", "M", "W"),
    (103, "NGUYEN", "THI LAN", "20100720", "F", "A"),
    (104, "SMITH-JONES", "AMELIA", "20090909", "F", "B"),
    (105, "BEGAY", "KAI", "20091130", "M", "I"),
]
# removal_id, person_id, removal_date, county_code
REMOVALS = [(1, 101, "2024-06-01", 101), (2, 102, "2024-01-01", 227), (3, 103, "2022-05-05", 71),
            (4, 104, "2024-11-11", 161), (5, 105, "2021-01-01", 227), (6, 999, "2023-01-01", 15)]
# episode_id, person_id, removal_id, runaway_date, return_date, county_code
EPISODES = [
    (501, 101, 1, "2025-03-10", "2025-03-15", 101),
    (502, 101, 1, "2019-07-04", "2019-07-09", 15),     # years before the period
    (503, 102, 2, "2025-04-01", None, 227),            # still open
    (504, 103, 3, "2025-05-20", "2025-05-25", 71),
    (505, 104, 4, "2025-02-20", "2025-03-05", None),   # no county: the removal's (161)
    (506, 104, 4, "2025-06-19", None, 161),            # the day before the run date
    (507, 999, 6, "2025-04-01", "2025-04-02", 15),     # a child we did not send
]


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def make_db(path: Path, removals: list[tuple[Any, ...]], episodes: list[tuple[Any, ...]],
            persons: list[tuple[Any, ...]] | None = None) -> Path:
    with sqlite3.connect(path) as connection:
        connection.executescript(SCHEMA)
        connection.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?,?)", persons or [])
        connection.executemany("INSERT INTO removal VALUES (?,?,?,NULL,?)", removals)
        connection.executemany("INSERT INTO runaway_episode VALUES (?,?,?,?,?,?)", episodes)
    connection.close()
    return path


def sent_file(children: list[tuple[Any, ...]], header: str = SENT_HEADER) -> bytes:
    lines = [header] + [f"{pid}|{last}|{first}|||{dob}|{sex}|{race}"
                        for pid, last, first, dob, sex, race in children]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def shipped_file_config() -> DpsFileSettings:
    config = yaml.safe_load((REPO / "dps_config.yml").read_text(encoding="utf-8"))
    return DpsFileSettings(**config["dps_file"])


def data_lines(results: bytes) -> list[list[str]]:
    lines = results.decode().split("\r\n")
    assert lines[-1] == ""
    return [line.split("|") for line in lines[1:-1]]


def as_rows(results: bytes) -> list[dict[str, str]]:
    return [dict(zip(HEADER.split("|"), fields, strict=True)) for fields in data_lines(results)]


def counts_of(counts: bytes) -> dict[str, int]:
    lines = counts.decode().split("\r\n")
    assert lines[-1] == ""
    return {key: int(value) for key, value in (line.split("|") for line in lines[:-1])}


def ymd(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%Y%m%d").date()


def records_of(db: Path, sent: bytes, settings: SimulatorSettings, run_date: dt.date,
               file_config: DpsFileSettings) -> list[sim.DpsRecord]:
    """The simulator's records before they are written, each with its source episode."""
    children, _ = sim.parse_sent_file(sent, file_config)
    episodes = sim.read_episodes(db, {child.pid for child in children})
    return sim.build_records(children, episodes, settings, run_date)


def days_outside_window(day: dt.date, episode: sim.Episode, window_days: int = 3) -> int:
    """Days from `day` to the episode's match window [runaway - W, return + W] (no upper edge
    while open; a return before the runaway leaves it open), 0 inside (contract §8)."""
    if day < episode.runaway_date - dt.timedelta(days=window_days):
        return (episode.runaway_date - dt.timedelta(days=window_days) - day).days
    if sim.is_returned(episode) and day > episode.return_date + dt.timedelta(days=window_days):
        return (day - episode.return_date - dt.timedelta(days=window_days)).days
    return 0


def test_days_outside_window():
    closed = sim.Episode(1, 1, dt.date(2025, 3, 10), dt.date(2025, 3, 15), None)
    typo = sim.Episode(2, 1, dt.date(2025, 3, 10), dt.date(2025, 3, 1), None)
    assert [days_outside_window(dt.date(2025, 3, day), closed) for day in (2, 3, 7, 18, 19)] \
        == [5, 4, 0, 0, 1]
    assert days_outside_window(dt.date(2026, 1, 1), typo) == 0


@pytest.fixture
def tiny_db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "tiny.sqlite", REMOVALS, EPISODES)


@pytest.fixture
def file_config() -> dict[str, Any]:
    return shipped_file_config()


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes, dict[int, list[Any]]]:
    """2,000 children, a third with one to three episodes spread over seven years."""
    rng = random.Random(1)
    children, removals, episodes, by_pid = [], [], [], {}
    episode_id = 10_000
    for number in range(2000):
        pid = 200_000 + number * 3
        children.append((pid, f"LAST{number}", f"FIRST{number}", "20080101", "F", "W"))
        county = rng.randint(1, 254)
        removals.append((number + 1, pid, "2018-01-01", county))
        if rng.random() < 0.35:
            for _ in range(rng.randint(1, 3)):
                runaway = dt.date(2018, 6, 1) + dt.timedelta(days=rng.randint(0, 2575))
                back = None if rng.random() < 0.1 else runaway + dt.timedelta(rng.randint(0, 30))
                episode = (episode_id, pid, number + 1, runaway.isoformat(),
                           back.isoformat() if back else None, county)
                episodes.append(episode)
                by_pid.setdefault(pid, []).append(episode)
                episode_id += 1
    path = make_db(tmp_path_factory.mktemp("big") / "big.sqlite", removals, episodes)
    return path, sent_file(children), by_pid


# ---------------------------------------------------------------------------
# The shape of the answer (docs/data-contract.md §4)
# ---------------------------------------------------------------------------


def test_header_line_ends_and_final_line_end(tiny_db: Path, file_config: DpsFileSettings):
    results, counts = build_answer(sent_file(CHILDREN), tiny_db, SimulatorSettings(), RUN_DATE,
                                   file_config)
    assert results.startswith(HEADER.encode() + b"\r\n")
    assert results.endswith(b"\r\n") and counts.endswith(b"\r\n")
    for data in (results, counts):
        assert data.count(b"\n") == data.count(b"\r\n")
        assert b"\r\r" not in data
    assert list(counts_of(counts)) == ["RECORDS_RECEIVED", "PERSONS_WITH_RECORDS",
                                       "RESULT_RECORDS"]


def test_counts_agree_with_the_files(tiny_db: Path, file_config: DpsFileSettings):
    results, counts = build_answer(sent_file(CHILDREN), tiny_db, SimulatorSettings(), RUN_DATE,
                                   file_config)
    rows = data_lines(results)
    assert counts_of(counts) == {"RECORDS_RECEIVED": len(CHILDREN),
                                 "PERSONS_WITH_RECORDS": len({row[0] for row in rows}),
                                 "RESULT_RECORDS": len(rows)}
    assert rows, "the tiny database should give some records"


def test_every_field_follows_the_contract(tiny_db: Path, file_config: DpsFileSettings):
    results, _ = build_answer(sent_file(CHILDREN), tiny_db, QUIET, RUN_DATE, file_config)
    sent = {str(child[0]): child for child in CHILDREN}
    rows = as_rows(results)
    assert len({row["NIC"] for row in rows}) == len(rows)
    for row in rows:
        assert NIC.match(row["NIC"])
        pid, last, first, dob, sex, race = sent[row["PID"]]
        assert (row["LAST_NAME"], row["FIRST_NAME"], row["DOB"], row["SEX"], row["RACE"]) == \
            (last, first, dob, sex, race)
        assert row["MKE"] in {"EMJ", "EMV", "EMI", "EMD"}
        assert re.fullmatch(r"TX\d{7}", row["ORI"])
        entry, dlc = ymd(row["ENTRY_DATE"]), ymd(row["DLC"])
        assert dlc <= entry <= RUN_DATE
        if row["CLEAR_DATE"]:
            assert entry <= ymd(row["CLEAR_DATE"]) <= RUN_DATE


def test_records_follow_the_episodes(tiny_db: Path, file_config: DpsFileSettings):
    settings = replace(QUIET, entered_share=1.0)
    rows = as_rows(build_answer(sent_file(CHILDREN), tiny_db, settings, RUN_DATE,
                                file_config)[0])
    by_pid: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_pid.setdefault(row["PID"], []).append(row)
    assert "105" not in by_pid                       # no episode, no unknown-child record
    assert "999" not in by_pid                       # never sent
    assert len(by_pid["101"]) == 2                   # old episodes too: DPS returns any date
    old = min(by_pid["101"], key=lambda row: row["DLC"])
    assert dt.date(2019, 6, 30) <= ymd(old["DLC"]) <= dt.date(2019, 7, 10)
    assert old["ORI"].startswith("TX015")            # the episode's county
    assert by_pid["102"][0]["CLEAR_DATE"] == ""      # still open: still active
    assert by_pid["102"][0]["ORI"].startswith("TX227")
    february = by_pid["104"][0]
    assert february["ORI"].startswith("TX161")       # no episode county: the removal's
    assert february["CLEAR_DATE"]
    assert ymd(by_pid["103"][0]["CLEAR_DATE"]) >= dt.date(2025, 5, 25)


def test_sorted_by_pid_as_a_number_then_dlc(tmp_path: Path, file_config: DpsFileSettings):
    episodes = [(1, 99, None, "2025-05-01", "2025-05-02", 15),
                (2, 99, None, "2025-01-01", "2025-01-02", 15),
                (3, 1000, None, "2024-01-01", "2024-01-02", 15)]
    db = make_db(tmp_path / "order.sqlite", [], episodes)
    children = [(1000, "A", "B", "20090101", "F", "W"), (99, "C", "D", "20090101", "M", "W")]
    rows = as_rows(build_answer(sent_file(children), db, replace(QUIET, entered_share=1.0),
                                RUN_DATE, file_config)[0])
    assert [row["PID"] for row in rows] == ["99", "99", "1000"]
    assert rows[0]["DLC"] < rows[1]["DLC"]


def test_every_pid_in_the_results_was_sent(big: tuple[Path, bytes, Any],
                                           file_config: DpsFileSettings):
    db, sent, _ = big
    sent_pids = {line.split(b"|")[0] for line in sent.splitlines()[1:]}
    results, _ = build_answer(sent, db, SimulatorSettings(), RUN_DATE, file_config)
    assert {row[0].encode() for row in data_lines(results)} <= sent_pids


def test_deterministic_for_a_seed(big: tuple[Path, bytes, Any], file_config: DpsFileSettings):
    db, sent, _ = big
    first = build_answer(sent, db, SimulatorSettings(seed=11), RUN_DATE, file_config)
    again = build_answer(sent, db, SimulatorSettings(seed=11), RUN_DATE, file_config)
    other = build_answer(sent, db, SimulatorSettings(seed=12), RUN_DATE, file_config)
    assert first == again
    assert first[0] != other[0]


def test_a_childs_records_do_not_depend_on_who_else_was_sent(tiny_db: Path,
                                                             file_config: DpsFileSettings):
    """Each episode has its own random stream: next quarter's file gives the same records."""
    everyone = as_rows(build_answer(sent_file(CHILDREN), tiny_db, QUIET, RUN_DATE,
                                    file_config)[0])
    alone = as_rows(build_answer(sent_file(CHILDREN[1:2]), tiny_db, QUIET, RUN_DATE,
                                 file_config)[0])
    assert alone == [row for row in everyone if row["PID"] == "102"]


def test_nothing_dated_after_the_run_date(big: tuple[Path, bytes, Any],
                                          file_config: DpsFileSettings):
    db, sent, _ = big
    for run_date in (dt.date(2025, 6, 20), dt.date(2022, 3, 1)):
        settings = SimulatorSettings(future_dlc_share=0)
        for row in as_rows(build_answer(sent, db, settings, run_date, file_config)[0]):
            assert ymd(row["DLC"]) <= run_date
            assert ymd(row["ENTRY_DATE"]) <= run_date
            if row["CLEAR_DATE"]:
                assert ymd(row["CLEAR_DATE"]) <= run_date


def test_default_settings_date_rarely_after_the_run_date(big: tuple[Path, bytes, Any],
                                                         file_config: DpsFileSettings):
    db, sent, _ = big
    rows = as_rows(build_answer(sent, db, SimulatorSettings(), RUN_DATE, file_config)[0])
    late = [row for row in rows if ymd(row["DLC"]) > RUN_DATE]
    assert len(late) <= max(2, len(rows) // 100)
    assert all(ymd(row["ENTRY_DATE"]) <= RUN_DATE for row in rows)


def test_the_deliberate_future_dlc(tiny_db: Path, file_config: DpsFileSettings):
    settings = replace(QUIET, entered_share=1.0, future_dlc_share=1.0)
    rows = as_rows(build_answer(sent_file(CHILDREN), tiny_db, settings, RUN_DATE,
                                file_config)[0])
    assert rows
    for row in rows:
        assert RUN_DATE < ymd(row["DLC"]) <= RUN_DATE + dt.timedelta(days=5)
        assert ymd(row["ENTRY_DATE"]) <= RUN_DATE     # so the fault is the DLC's


def test_dlc_spread_exercises_the_match_window(big: tuple[Path, bytes, dict[int, list[Any]]],
                                               file_config: DpsFileSettings):
    db, sent, by_pid = big
    settings = replace(QUIET, entered_share=1.0)
    rows = as_rows(build_answer(sent, db, settings, RUN_DATE, file_config)[0])
    offsets = []
    for row in rows:
        runaways = [dt.date.fromisoformat(e[3]) for e in by_pid[int(row["PID"])]]
        candidates = [(ymd(row["DLC"]) - r).days for r in runaways]
        assert any(-4 <= days <= 6 for days in candidates)
        offsets.append(min(candidates, key=abs))
    assert {3, 4, 5, 6} & set(offsets) and {-4, -3, -2, -1} & set(offsets)
    assert sum(0 <= o <= 2 for o in offsets) > 0.8 * len(offsets)


def test_entered_share_and_unknown_children(big: tuple[Path, bytes, dict[int, list[Any]]],
                                            file_config: DpsFileSettings):
    db, sent, by_pid = big
    old = dt.date(2025, 1, 1)   # every episode well before the run date
    episodes = sum(1 for rows in by_pid.values() for e in rows if e[3] < old.isoformat())
    settings = replace(QUIET, unknown_child_share=0.05)
    rows = as_rows(build_answer(sent, db, settings, RUN_DATE, file_config)[0])
    with_episode = [row for row in rows if int(row["PID"]) in by_pid]
    in_old = [row for row in with_episode if ymd(row["DLC"]) < old - dt.timedelta(days=7)]
    assert 0.78 * episodes < len(in_old) <= episodes
    unknown = {row["PID"] for row in rows if int(row["PID"]) not in by_pid}
    assert 0.02 * (2000 - len(by_pid)) < len(unknown) < 0.09 * (2000 - len(by_pid))
    for row in rows:
        if int(row["PID"]) not in by_pid:
            assert RUN_DATE - dt.timedelta(days=730) <= ymd(row["DLC"]) <= RUN_DATE


def test_some_returned_childrens_records_are_never_cleared(
        big: tuple[Path, bytes, Any], file_config: DpsFileSettings):
    """About 10% of the records of returned episodes keep an empty CLEAR_DATE, and stay so
    long after the return (§8's "returned but still active in NCIC")."""
    db, sent, _ = big
    settings = replace(QUIET, uncleared_share=0.10)
    uncleared_by_run_date = []
    for run_date in (RUN_DATE, RUN_DATE + dt.timedelta(days=400)):
        records = [record for record in records_of(db, sent, settings, run_date, file_config)
                   if record.source and sim.is_returned(record.source)
                   and record.source.return_date <= dt.date(2025, 6, 1)]
        uncleared = {record.source.episode_id for record in records if not record.clear_date}
        uncleared_by_run_date.append(uncleared)
        assert (len(uncleared), len(records)) == (111, 1083)   # 10.2%
    assert uncleared_by_run_date[0] == uncleared_by_run_date[1]
    quiet = records_of(db, sent, QUIET, RUN_DATE, file_config)
    assert all(record.clear_date for record in quiet if record.source
               and record.source.return_date is not None
               and record.source.return_date <= RUN_DATE - dt.timedelta(days=3))


def test_some_dlcs_lie_4_to_30_days_outside_the_window(
        big: tuple[Path, bytes, Any], file_config: DpsFileSettings):
    """About 5% of the records have a DLC 4-30 days outside their episode's window, before the
    runaway or after the return (§8's near-miss hints); the others lie at most 3 days out."""
    db, sent, _ = big
    settings = replace(QUIET, entered_share=1.0, far_dlc_share=0.05)
    records = [record for record in records_of(db, sent, settings, RUN_DATE, file_config)
               if record.source]
    distances = [days_outside_window(record.dlc, record.source) for record in records]
    far = [(record, distance) for record, distance in zip(records, distances, strict=True)
           if distance >= 4]
    assert (len(far), len(records)) == (67, 1440)   # 4.7%
    assert all(4 <= distance <= 30 for _, distance in far)
    before = [record for record, _ in far if record.dlc < record.source.runaway_date]
    after = [record for record, _ in far if record.dlc > record.source.runaway_date]
    assert (len(before), len(after)) == (40, 27)
    assert all(sim.is_returned(record.source) and record.dlc > record.source.return_date
               for record in after)
    quiet = records_of(db, sent, replace(QUIET, entered_share=1.0), RUN_DATE, file_config)
    assert max(days_outside_window(record.dlc, record.source) for record in quiet) <= 3


def test_some_clear_dates_come_before_the_entry_date(
        big: tuple[Path, bytes, Any], file_config: DpsFileSettings):
    """Now and then (0.5%) a CLEAR_DATE 1-10 days before the ENTRY_DATE (a §9 warning)."""
    db, sent, _ = big
    settings = replace(QUIET, clear_before_entry_share=0.005)
    rows = as_rows(build_answer(sent, db, settings, RUN_DATE, file_config)[0])
    early = [row for row in rows if row["CLEAR_DATE"] and row["CLEAR_DATE"] < row["ENTRY_DATE"]]
    assert (len(early), len(rows)) == (3, 1219)
    for row in early:
        assert 1 <= (ymd(row["ENTRY_DATE"]) - ymd(row["CLEAR_DATE"])).days <= 10
    quiet = as_rows(build_answer(sent, db, QUIET, RUN_DATE, file_config)[0])
    assert all(row["CLEAR_DATE"] >= row["ENTRY_DATE"] for row in quiet if row["CLEAR_DATE"])


def test_default_answer_has_every_case_and_totals_agree(
        big: tuple[Path, bytes, Any], file_config: DpsFileSettings):
    """With the default settings the answer holds each planted case, and the receive step's
    control totals agree with it."""
    db, sent, _ = big
    results, counts = build_answer(sent, db, SimulatorSettings(), RUN_DATE, file_config)
    parsed = receive_checks(sent, results, counts, file_config)
    totals = counts_of(counts)
    assert totals["RESULT_RECORDS"] == parsed.data_lines == len(data_lines(results))
    assert totals["PERSONS_WITH_RECORDS"] == len({row[0] for row in data_lines(results)})
    records = records_of(db, sent, SimulatorSettings(), RUN_DATE, file_config)
    returned = [record for record in records if record.source
                and sim.is_returned(record.source)
                and record.source.return_date <= RUN_DATE - dt.timedelta(days=3)]
    uncleared = [record for record in returned if record.clear_date is None]
    far = [record for record in records if record.source and record.dlc <= RUN_DATE
           and days_outside_window(record.dlc, record.source) >= 4]
    clear_first = [record for record in records
                   if record.clear_date and record.clear_date < record.entry_date]
    assert (len(uncleared), len(returned), len(far), len(clear_first), len(records)) == \
        (108, 1090, 58, 6, 1234)
    assert 0.08 <= len(uncleared) / len(returned) <= 0.12
    assert 0.04 <= len(far) / len(records) <= 0.06


def test_header_only_answer(tmp_path: Path, file_config: DpsFileSettings):
    db = make_db(tmp_path / "empty.sqlite", [], [])
    results, counts = build_answer(sent_file(CHILDREN), db, QUIET, RUN_DATE, file_config)
    assert results == (HEADER + "\r\n").encode()
    assert counts_of(counts) == {"RECORDS_RECEIVED": 5, "PERSONS_WITH_RECORDS": 0,
                                 "RESULT_RECORDS": 0}


def test_break_totals_puts_result_records_off_by_one(tiny_db: Path,
                                                     file_config: DpsFileSettings):
    settings = replace(QUIET, break_totals=True)
    results, counts = build_answer(sent_file(CHILDREN), tiny_db, settings, RUN_DATE, file_config)
    assert counts_of(counts)["RESULT_RECORDS"] == len(data_lines(results)) + 1


def test_repeated_lines_count_in_the_totals(tiny_db: Path, file_config: DpsFileSettings):
    settings = replace(QUIET, entered_share=1.0, duplicate_share=1.0)
    results, counts = build_answer(sent_file(CHILDREN), tiny_db, settings, RUN_DATE, file_config)
    rows = data_lines(results)
    assert rows[0::2] == rows[1::2]
    assert counts_of(counts)["RESULT_RECORDS"] == len(rows)
    assert counts_of(counts)["PERSONS_WITH_RECORDS"] == len({row[0] for row in rows})


def test_configured_layout_is_followed(tiny_db: Path, file_config: DpsFileSettings):
    file_config = replace(file_config, delimiter=";",
                       results_columns=["NIC", "PID", "DLC", "ENTRY_DATE", "CLEAR_DATE", "MKE",
                                        "ORI", "LAST_NAME", "FIRST_NAME", "DOB", "SEX", "RACE"],
                       counts_keys={"records_received": "RECEIVED",
                                    "persons_with_records": "PERSONS",
                                    "result_records": "RECORDS"},
                       columns=[{"PID": "PERSON_ID"}, "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME",
                                "SUFFIX", "DOB", "SEX", "RACE"])
    sent = sent_file(CHILDREN, header=SENT_HEADER.replace("PID", "PERSON_ID")).replace(b"|", b";")
    results, counts = build_answer(sent, tiny_db, QUIET, RUN_DATE, file_config)
    assert results.startswith(b"NIC;PID;DLC;ENTRY_DATE;CLEAR_DATE;MKE;ORI;")
    assert counts.startswith(b"RECEIVED;5\r\nPERSONS;")
    assert all(NIC.match(line.split(";")[0]) for line in results.decode().splitlines()[1:])


def test_a_partner_column_beyond_the_contract_is_written_blank(tiny_db: Path,
                                                               file_config: DpsFileSettings):
    file_config = replace(file_config, optional_results_columns=["AGENCY_CASE"])
    results, _ = build_answer(sent_file(CHILDREN), tiny_db, QUIET, RUN_DATE, file_config)
    lines = results.decode().splitlines()
    assert lines[0] == f"{HEADER}|AGENCY_CASE"
    assert all(line.endswith("|") for line in lines[1:])


def test_a_layout_without_a_contract_column_is_refused(tiny_db: Path,
                                                        file_config: DpsFileSettings):
    file_config = replace(file_config, results_columns=file_config.results_columns[:-1])
    with pytest.raises(util.DpsError, match="column CLEAR_DATE is missing"):
        build_answer(sent_file(CHILDREN), tiny_db, QUIET, RUN_DATE, file_config)


def test_records_received_counts_every_data_line(tiny_db: Path, file_config: DpsFileSettings):
    sent = sent_file(CHILDREN) + b"not a pid|X|Y|||20090101|F|W\r\n\r\n" + b"106|SHORT\r\n"
    _, counts = build_answer(sent, tiny_db, QUIET, RUN_DATE, file_config)
    assert counts_of(counts)["RECORDS_RECEIVED"] == len(CHILDREN) + 2


# ---------------------------------------------------------------------------
# The receive step accepts the answer, and sees the planted faults
# ---------------------------------------------------------------------------


def receive_checks(sent: bytes, results: bytes, counts: bytes,
                   file_config: DpsFileSettings) -> ResultsFile:
    sent_pids = {int(line.split(b"|")[0]) for line in sent.splitlines()[1:]}
    parsed = parse_results(results, "results", file_config, RUN_DATE, sent_pids)
    totals = parse_counts(counts, "counts", file_config)
    check_control_totals(totals, len(sent_pids), parsed, "counts", "results",
                                    file_config.counts_keys)
    return parsed


def test_the_receive_step_accepts_the_answer(big: tuple[Path, bytes, Any],
                                             file_config: DpsFileSettings):
    db, sent, _ = big
    results, counts = build_answer(sent, db, QUIET, RUN_DATE, file_config)
    parsed = receive_checks(sent, results, counts, file_config)
    assert parsed.problems == []
    assert len(parsed.records) == parsed.data_lines > 100


def test_an_oversized_answer_pads_every_field_and_its_totals_agree(
        big: tuple[Path, bytes, Any], file_config: DpsFileSettings):
    """The benchmark's 50 MB answer, at 1 MiB: the usual answer plus more records of the sent
    children, half of them dated in the period, every field padded to its NCIC width."""
    db, sent, _ = big
    period = (dt.date(2025, 3, 1), dt.date(2025, 5, 31))
    answer = sim.oversized_answer(sent, db, QUIET, RUN_DATE, file_config, 1 << 20, period, 0.5)
    widths = [sim.NCIC_WIDTHS[name] for name in HEADER.split("|")]
    line_width = sum(widths) + len(widths) - 1 + len("\r\n")
    assert answer.results.startswith(f"{HEADER}\r\n".encode())
    data_size = len(answer.results) - len(HEADER) - 2
    assert data_size == answer.result_records * line_width
    assert 1 << 20 <= len(answer.results) < (1 << 20) + line_width
    assert all([len(field) for field in fields] == widths for fields in data_lines(answer.results))
    parsed = receive_checks(sent, answer.results, answer.counts, file_config)
    assert parsed.problems == []
    assert len(parsed.records) == parsed.data_lines == answer.result_records
    usual, _ = build_answer(sent, db, QUIET, RUN_DATE, file_config)
    usual_nics = {row["NIC"] for row in as_rows(usual)}
    assert usual_nics <= set(parsed.records["NIC"])
    added = parsed.records[~parsed.records["NIC"].isin(usual_nics)]
    in_period = added["DLC"].between(str(period[0]), str(period[1])).mean()
    assert 0.45 < in_period < 0.55


@pytest.mark.parametrize("knob, reason", [
    ("duplicate_share", "NIC repeated"),
    ("malformed_nic_share", "column NIC"),
    ("future_dlc_share", "column DLC: after the run date"),
    ("bad_optional_share", "blanked"),
    ("clear_before_entry_share", "column CLEAR_DATE: before ENTRY_DATE"),
])
def test_planted_faults_reach_the_exceptions(tiny_db: Path, file_config: DpsFileSettings,
                                             knob: str, reason: str):
    settings = replace(QUIET, entered_share=1.0, **{knob: 1.0})
    sent = sent_file(CHILDREN)
    results, counts = build_answer(sent, tiny_db, settings, RUN_DATE, file_config)
    parsed = receive_checks(sent, results, counts, file_config)
    assert parsed.problems
    assert all(reason in problem.reason for problem in parsed.problems)


def test_the_receive_step_refuses_broken_totals(tiny_db: Path, file_config: DpsFileSettings):
    sent = sent_file(CHILDREN)
    results, counts = build_answer(sent, tiny_db, replace(QUIET, break_totals=True), RUN_DATE,
                                   file_config)
    with pytest.raises(util.InputError, match="RESULT_RECORDS"):
        receive_checks(sent, results, counts, file_config)


# ---------------------------------------------------------------------------
# Small parts
# ---------------------------------------------------------------------------


def test_chunks_of_lines():
    data = b"h\r\n1\r\n2\r\n3\r\n4\r\n"
    assert sim.chunks_of_lines(data, 2) == [b"h\r\n1\r\n", b"2\r\n3\r\n", b"4\r\n"]
    assert sim.chunks_of_lines(b"", 5) == [b""]
    assert b"".join(sim.chunks_of_lines(data, 0)) == data


def test_answer_names_fill_placeholders():
    config = DpsFileSettings(results_name="R_{period}.txt", counts_name="C_{date}.txt")
    assert sim.answer_names(config, "FY2025_Q3", RUN_DATE) == ("R_FY2025_Q3.txt",
                                                               "C_20250620.txt")


def test_command_line_sets_the_new_shares_and_the_configured_window():
    args = sim.build_parser().parse_args(["--uncleared-share", "0.2", "--far-dlc-share", "0.1",
                                          "--clear-before-entry-share", "0.01"])
    settings = sim.settings_from_args(args, window_days=5)
    assert (settings.uncleared_share, settings.far_dlc_share, settings.clear_before_entry_share,
            settings.match_window_days) == (0.2, 0.1, 0.01, 5)
    defaults = sim.settings_from_args(sim.build_parser().parse_args([]), window_days=3)
    assert (defaults.uncleared_share, defaults.far_dlc_share,
            defaults.clear_before_entry_share) == (0.10, 0.05, 0.005)


def test_far_dlc_uses_the_configured_window():
    episode = sim.Episode(1, 1, dt.date(2025, 3, 10), dt.date(2025, 3, 15), None)
    rng = random.Random(3)
    for window_days in (0, 3, 7):
        for _ in range(50):
            distance = days_outside_window(sim.far_dlc(episode, window_days, rng), episode,
                                           window_days)
            assert sim.FAR_DLC_MIN_DAYS <= distance <= sim.FAR_DLC_MAX_DAYS


def test_database_from_config(tmp_path: Path):
    expected = tmp_path / "var" / "x.sqlite"
    assert sim.database_from_url("sqlite:///var/x.sqlite", tmp_path) == expected
    assert sim.database_from_url("sqlite:////abs/x.sqlite", tmp_path) == Path("/abs/x.sqlite")
    with pytest.raises(ValueError, match="--database"):
        sim.database_from_url("oracle+oracledb://u@h/?service_name=X", tmp_path)


# ---------------------------------------------------------------------------
# Through SFTP, against the suite's real sshd (tests/conftest.py)
# ---------------------------------------------------------------------------


def put_upload(workspace: Any, data: bytes) -> None:
    workspace.upload_dir.mkdir(parents=True, exist_ok=True)
    (workspace.upload_dir / "End_txt_file.txt").write_bytes(data)


def test_simulate_once_writes_the_answer_while_visible_growing(workspace: Any, tiny_db: Path,
                                                                caplog: pytest.LogCaptureFixture):
    config = util.load_config(workspace.config_path)
    sent = sent_file(CHILDREN)
    put_upload(workspace, sent)
    settings = replace(SimulatorSettings(), delay_seconds=0.2, chunk_lines=1,
                       chunk_pause_seconds=0.3, poll_seconds=0.1, entered_share=1.0)
    expected = build_answer(sent, tiny_db, settings, RUN_DATE, config.dps_file)
    results_path = workspace.answer_dir / "Dfps-missing-person-results.txt"
    counts_path = workspace.answer_dir / "Dfps-missing-person-counts.txt"
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["value"] = sim.simulate_once(config, settings, tiny_db, RUN_DATE, 10)

    caplog.set_level("DEBUG")
    worker = threading.Thread(target=run)
    worker.start()
    sizes_before_counts = set()
    while worker.is_alive():
        if results_path.exists() and not counts_path.exists():
            sizes_before_counts.add(results_path.stat().st_size)
        time.sleep(0.05)
    worker.join()
    assert len(sizes_before_counts) >= 2, "the results file should be seen while growing"
    assert (results_path.read_bytes(), counts_path.read_bytes()) == expected
    assert outcome["value"] == (len(data_lines(expected[0])), len(CHILDREN))
    # pytest's temporary folders (pytest-101/...) are in the paths the log names: not a PID.
    logged = re.sub(r"pytest-\d+", "pytest-N", caplog.text)
    for pid, last, first, dob, _, _ in CHILDREN:
        assert last not in logged and first not in logged and dob not in logged
        assert not re.search(rf"\b{pid}\b", logged)


def test_simulate_once_gives_up_when_nothing_is_uploaded(workspace: Any, tiny_db: Path):
    config = util.load_config(workspace.config_path)
    settings = SimulatorSettings(poll_seconds=0.1, delay_seconds=0)
    started = time.monotonic()
    with pytest.raises(NotReadyError, match="no new upload"):
        sim.simulate_once(config, settings, tiny_db, RUN_DATE, 0.5)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("how", ["script", "module"])
def test_command_line(workspace: Any, tiny_db: Path, how: str):
    put_upload(workspace, sent_file(CHILDREN))
    command = [str(REPO / "demo" / "dps_simulator.py")] if how == "script" \
        else ["-m", "demo.dps_simulator"]
    args = ["--config", str(workspace.config_path), "--database", str(tiny_db), "--as-of",
            "2025-06-20", "--delay", "0", "--chunk-pause", "0", "--wait-for-upload", "5",
            "--break-totals"]
    done = subprocess.run([sys.executable, *command, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    results = (workspace.answer_dir / "Dfps-missing-person-results.txt").read_bytes()
    counts = counts_of((workspace.answer_dir / "Dfps-missing-person-counts.txt").read_bytes())
    assert counts["RESULT_RECORDS"] == len(data_lines(results)) + 1
    assert "done:" in done.stderr


def test_command_line_usage_errors(tmp_path: Path):
    done = subprocess.run([sys.executable, str(REPO / "demo" / "dps_simulator.py"), "--config",
                           str(tmp_path / "missing.yml")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == EXIT_USAGE
    assert "file not found" in done.stderr


def test_entry_delays_spread_like_real_ones(big: tuple[Path, bytes, Any],
                                            file_config: DpsFileSettings):
    """ENTRY_DATE - RUNAWAY_DATE (contract §10.3): most (86%, as in OIG's sample) the same or
    the next day, some 2-6 days late (a DLC at the window's edge, or a slow entry), a few 1-5
    weeks late, and a few before the runaway (DPS's DLC before IMPACT's runaway date), so a
    Timeliness sheet shows every outcome."""
    db, sent, _ = big
    records = [record for record in records_of(db, sent, replace(QUIET, entered_share=1.0),
                                               RUN_DATE, file_config) if record.source]
    days = [(record.entry_date - record.source.runaway_date).days for record in records]
    on_time = sum(day <= 1 for day in days)
    days_late = sum(2 <= day <= 6 for day in days)
    weeks_late = sum(day >= 7 for day in days)
    before = sum(day < 0 for day in days)
    assert (on_time, days_late, weeks_late, before, len(days)) == (1234, 158, 50, 43, 1442)
    assert max(days) <= 35
    assert all(record.dlc <= record.entry_date for record in records)


def test_the_ori_directory_covers_every_ori_the_simulator_writes():
    """Contract §10.4: demo/ori_directory.csv (shipped, synthetic) names an agency for each
    ORI make_ori can write: 254 counties x 4 agencies."""
    shipped = (REPO / "demo" / "ori_directory.csv").read_text(encoding="utf-8")
    assert shipped == sim.ori_directory_csv()
    listed = {line.split(",")[0] for line in shipped.splitlines()[1:]}
    rng = random.Random(3)
    written = {sim.make_ori(rng, county) for county in [None, *range(1, 255)] * 40}
    assert written <= listed and len(listed) == 254 * 4
    assert util.load_config(REPO / "dps_config.yml", lenient=True).reports.ori_directory == \
        REPO / "demo" / "ori_directory.csv"
