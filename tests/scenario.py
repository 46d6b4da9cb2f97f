"""A small named IMPACT database for the tests: every child stands for a rule of the contract.

The names and dates of birth here are what the log and mail scans look for.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

from demo.build_demo_db import INSERT_COUNTY, county_rows, create_schema, load_counties
from exchange.answer import ResultsLayout
from exchange.periods import parse_period
from exchange.reports import REPORTS, report

# person_id, last, first, middle, suffix, birth_date, sex, race
PERSONS = [
    (1001, "Peña", "Zoë", None, None, "2009-04-01", "Female", "Hispanic"),
    (1002, "O\u2019Brien", "Sean", "Patrick", "Jr.", "2008-01-15", "Male", "Anglo"),
    (1003, "De La Cruz", "José", None, None, None, "M", "Hispanic"),          # no DOB: not sent
    (1004, "Nguyễn", "Thị Lan", None, None, "2010-07-20", "F", "Asian"),
    (1005, "Smith-Jones", "Amelia", "Rose", None, "2009-09-09", "Female", "African American"),
    (1006, "Washington", "Tyrone", None, "III", "2008-12-12", "Male", "African American"),
    (1007, "Quiñónez", "Dulce", "María", None, "2008-03-03", "Female", "Hispanic"),
    (1008, "Begay", "Kai", None, None, "2009-11-30", "Male", "Native American"),
]
# removal_id, person_id, removal_date, discharge_date, county_code
REMOVALS = [
    (1, 1001, "2019-02-01", "2020-03-01", 15),     # an older removal in Bexar
    (2, 1001, "2024-06-01", None, 101),            # the latest: Harris
    (3, 1002, "2024-01-01", None, 227),            # Travis
    (4, 1003, "2023-01-01", None, 15),
    (5, 1004, "2022-05-05", None, 71),             # El Paso
    (6, 1005, "2024-11-11", None, 161),            # McLennan
    (7, 1006, "2023-07-01", None, 101),
    (8, 1007, "2024-02-02", None, 101),
    (9, 1008, "2021-01-01", "2025-01-31", 227),    # discharged before FY2025Q3
]
# episode_id, person_id, removal_id, runaway_date, return_date, county_code
EPISODES = [
    (501, 1001, 2, "2025-03-10", "2025-03-15", 101),   # DPS has it (DLC 2025-03-11)
    (502, 1002, 3, "2025-04-01", None, 227),           # open; DPS has it (DLC 2025-04-20)
    (503, 1003, 4, "2025-04-05", "2025-04-06", 15),    # PID not sent (no DOB)
    (504, 1004, 5, "2025-05-20", "2025-05-25", 71),    # DPS never entered it
    (505, 1006, 7, "2025-02-20", "2025-03-05", None),  # last quarter, no county; DLC 2025-03-07
    (506, 1007, 8, "2025-05-01", "2025-05-03", 101),   # DPS DLC 2025-05-07: one day past the window
]

# assignment_id, person_id, worker, unit, supervisor, start_date, end_date, is_primary (§10.4)
ASSIGNMENTS = [
    (701, 1001, "Worker Avery", "6-Houston Unit 1", "Supervisor Blake", "2024-06-01", None, 1),
    (702, 1001, "Worker Casey", "6-Houston Unit 2", "Supervisor Drew", "2024-06-01", None, 1),
    (703, 1002, "Worker Emery", "7-Austin Unit 1", "Supervisor Finley", "2024-01-01",
     "2025-03-31", 1),                                     # ended before the run date
    (704, 1002, "Worker Gray", "7-Austin Unit 3", "Supervisor Harper", "2025-04-01", None, 1),
    (705, 1002, "Worker Indigo", "7-Austin Unit 2", "Supervisor Jules", "2025-04-01", None, 0),
]                                                           # 705: secondary; 1004-1008: none
STAFF_NAMES = ["Worker Avery", "Worker Casey", "Supervisor Drew", "Worker Gray",
               "Supervisor Harper"]

NAMES = ["Peña", "Zoë", "O\u2019Brien", "Sean", "De La Cruz", "José", "Nguyễn", "Thị Lan",
         "Smith-Jones", "Amelia", "Washington", "Tyrone", "Quiñónez", "Dulce", "Begay",
         "PENA", "ZOE", "O'BRIEN", "NGUYEN", "THI LAN", "SMITH-JONES", "AMELIA", "WASHINGTON",
         "TYRONE", "QUINONEZ", "DULCE", "BEGAY"]
DOBS = ["2009-04-01", "20090401", "2008-01-15", "20080115", "2010-07-20", "20100720",
        "2009-09-09", "20090909", "2008-12-12", "20081212", "2008-03-03", "20080303"]



def in_clear(data: bytes) -> list[str]:
    """The names and DOBs readable in `data`. For checks on files that should be ciphertext:
    only values of six bytes or more count, because random bytes hold a 3- or 4-byte value
    such as "ZOE" by chance (about once in 16 million bytes per value; CI met it once)."""
    return [v for v in NAMES + DOBS if len(v.encode()) >= 6 and v.encode() in data]


SENT_PIDS = [1001, 1002, 1004, 1005, 1006, 1007]   # 1003 has no DOB; 1008 left before Q3


def build_scenario_db(path: Path) -> Path:
    with sqlite3.connect(path) as connection:
        create_schema(connection)
        connection.executemany(INSERT_COUNTY, list(county_rows(load_counties())))
        connection.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?,?)", PERSONS)
        connection.executemany("INSERT INTO removal VALUES (?,?,?,?,?)", REMOVALS)
        connection.executemany("INSERT INTO runaway_episode VALUES (?,?,?,?,?,?)", EPISODES)
        connection.executemany("INSERT INTO assignment VALUES (?,?,?,?,?,?,?,?)", ASSIGNMENTS)
    return path


def results_line(pid: int, nic: str, dlc: str, entry: str | None = None, clear: str = "",
                 last: str = "X", first: str = "Y", dob: str = "", mke: str = "EMJ",
                 ori: str = "TX2270000") -> str:
    return "|".join([str(pid), nic, last, first, dob, "F", "W", mke, ori, entry or dlc, dlc,
                     clear])


RESULTS_HEADER = ResultsLayout().header()   # the contract's columns, in its order


def scenario_answer() -> tuple[bytes, bytes]:
    """DPS's answer to the scenario's FY2025Q3 file: results and counts, as bytes."""
    lines = [
        results_line(1001, "M000000001", "20250311", last="PENA", first="ZOE", dob="20090401"),
        results_line(1002, "M000000002", "20250420", last="O'BRIEN", first="SEAN"),
        results_line(1005, "M000000005", "20250415", last="SMITH-JONES", first="AMELIA"),
        results_line(1006, "M000000006", "20250307", last="WASHINGTON", first="TYRONE"),
        results_line(1007, "M000000007", "20250507", last="QUINONEZ", first="DULCE"),
    ]
    results = "\r\n".join([RESULTS_HEADER, *lines]) + "\r\n"
    counts = f"RECORDS_RECEIVED|{len(SENT_PIDS)}\r\nPERSONS_WITH_RECORDS|5\r\nRESULT_RECORDS|5\r\n"
    return results.encode(), counts.encode()


def report_file(key: str, period: str = "FY2025Q3") -> str:
    """A report's file name, from the registry: report_file("impact") for the scenario's period."""
    return report(key).file_name(parse_period(period))


def report_files(period: str = "FY2025Q3") -> list[str]:
    """Every report's file name for the period, sorted as a folder listing is."""
    return sorted(spec.file_name(parse_period(period)) for spec in REPORTS)


SEND_FILES = ["End_txt_file.txt", "end_export.xlsx", "excluded_index.csv", "sent_index.csv"]
ANSWER_FILES = ["Dfps-missing-person-counts.txt", "Dfps-missing-person-results.txt"]


def archived_files(period: str = "FY2025Q3") -> list[str]:
    """What one send and one receive of the period archive, each named without its run id:
    the sent files, DPS's answer and every report of the registry, sorted."""
    return sorted([*SEND_FILES, *ANSWER_FILES, *report_files(period)])


def archived_name(path: str | Path) -> str:
    """An archived file's name without the run id the archive puts before it."""
    return Path(path).name.split("_", 1)[1]


def parsed_both_ways(data: bytes, file_name: str, file_config: Any, today: dt.date,
                     sent: set[int]) -> Any:
    """parse_results as the receive runs it, after checking that the quick path for clean
    lines gives exactly what reading every line the careful way gives (records, problems,
    counts): every results-file test checks that too."""
    from pandas.testing import assert_frame_equal

    from exchange.answer import parse_results

    quick = parse_results(data, file_name, file_config, today, set(sent))
    careful = parse_results(data, file_name, file_config, today, set(sent), quick_path=False)
    assert_frame_equal(quick.records, careful.records)
    assert (quick.problems, quick.data_lines, quick.distinct_pids, quick.extra_columns,
            quick.fault_lines) == (careful.problems, careful.data_lines, careful.distinct_pids,
                                   careful.extra_columns, careful.fault_lines)
    return quick
