"""Tests of the synthetic IMPACT demo database builder (demo/build_demo_db.py)."""

from __future__ import annotations

import logging
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # the tests run from any folder, without installing
    sys.path.insert(0, str(REPO_ROOT))

from demo.build_demo_db import DEFAULT_OUT, build_demo_database, main  # noqa: E402
from exchange.periods import period_containing  # noqa: E402

SMALL_SCALE = 0.02
CASES_SCALE = 0.05   # the data-quality cases, counted exactly at this scale (default seed)
FISCAL_YEARS = (2024, 2025, 2026)
DEMO_RUN_DATE = "2025-06-20"   # the demo's run date: open episodes count to it

# Contract section 2: (column, declared type, NOT NULL, primary key position).
EXPECTED_COLUMNS = {
    "county": [
        ("county_code", "INTEGER", 0, 1), ("county_name", "TEXT", 1, 0),
        ("fips", "TEXT", 1, 0), ("region", "INTEGER", 1, 0), ("region_name", "TEXT", 1, 0),
    ],
    "person": [
        ("person_id", "INTEGER", 0, 1), ("last_name", "TEXT", 0, 0),
        ("first_name", "TEXT", 0, 0), ("middle_name", "TEXT", 0, 0), ("suffix", "TEXT", 0, 0),
        ("birth_date", "TEXT", 0, 0), ("sex", "TEXT", 0, 0), ("race_ethnicity", "TEXT", 0, 0),
    ],
    "removal": [
        ("removal_id", "INTEGER", 0, 1), ("person_id", "INTEGER", 1, 0),
        ("removal_date", "TEXT", 1, 0), ("discharge_date", "TEXT", 0, 0),
        ("county_code", "INTEGER", 0, 0),
    ],
    "runaway_episode": [
        ("episode_id", "INTEGER", 0, 1), ("person_id", "INTEGER", 1, 0),
        ("removal_id", "INTEGER", 0, 0), ("runaway_date", "TEXT", 1, 0),
        ("return_date", "TEXT", 0, 0), ("county_code", "INTEGER", 0, 0),
    ],
    "assignment": [   # contract §10.4
        ("assignment_id", "INTEGER", 0, 1), ("person_id", "INTEGER", 1, 0),
        ("worker_name", "TEXT", 1, 0), ("unit", "TEXT", 0, 0), ("supervisor_name", "TEXT", 0, 0),
        ("start_date", "TEXT", 1, 0), ("end_date", "TEXT", 0, 0),
        ("is_primary", "INTEGER", 1, 0),
    ],
}
EXPECTED_FOREIGN_KEYS = {
    "county": set(),
    "person": set(),
    "removal": {("person", "person_id"), ("county", "county_code")},
    "runaway_episode": {("person", "person_id"), ("removal", "removal_id"),
                        ("county", "county_code")},
    "assignment": {("person", "person_id")},
}
DUMP_QUERIES = {
    "county": "SELECT * FROM county ORDER BY county_code",
    "person": "SELECT * FROM person ORDER BY person_id",
    "removal": "SELECT * FROM removal ORDER BY removal_id",
    "runaway_episode": "SELECT * FROM runaway_episode ORDER BY episode_id",
    "assignment": "SELECT * FROM assignment ORDER BY assignment_id",
}
DFPS_RACES = {"African American", "Anglo", "Asian", "Hispanic", "Native American", "Other",
              "Unknown"}
REAL_DATE_QUERIES = (
    "SELECT removal_date FROM removal", "SELECT discharge_date FROM removal",
    "SELECT runaway_date FROM runaway_episode", "SELECT return_date FROM runaway_episode",
)
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

CHILDREN_IN_FY = """SELECT COUNT(DISTINCT person_id) FROM removal
                    WHERE removal_date <= :end
                      AND (discharge_date IS NULL OR discharge_date >= :start)"""
EPISODES_IN_FY = """SELECT COUNT(*), COUNT(DISTINCT person_id) FROM runaway_episode
                    WHERE runaway_date BETWEEN :start AND :end"""


def fiscal_year_bounds(fiscal_year: int) -> dict[str, str]:
    return {"start": date(fiscal_year - 1, 9, 1).isoformat(),
            "end": date(fiscal_year, 8, 31).isoformat()}


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def dump(path: Path) -> dict[str, list[tuple]]:
    with closing(connect(path)) as connection:
        return {table: connection.execute(sql).fetchall() for table, sql in DUMP_QUERIES.items()}


def scalar(connection: sqlite3.Connection, sql: str, params: dict | tuple = ()) -> object:
    return connection.execute(sql, params).fetchone()[0]


@pytest.fixture(scope="module")
def small_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "impact_demo.sqlite"
    build_demo_database(path, scale=SMALL_SCALE)
    return path


@pytest.fixture(scope="module")
def small_conn(small_db: Path) -> Iterator[sqlite3.Connection]:
    connection = connect(small_db)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def cases_conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("cases") / "impact_demo.sqlite"
    build_demo_database(path, scale=CASES_SCALE)
    connection = connect(path)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def tenth_conn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("tenth") / "impact_demo.sqlite"
    build_demo_database(path, scale=0.1)
    connection = connect(path)
    yield connection
    connection.close()


# ------------------------------------------------------------------------- schema


def test_schema_has_exactly_the_contract_tables_and_columns(small_conn: sqlite3.Connection):
    tables = {name for (name,) in small_conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    assert tables == set(EXPECTED_COLUMNS)
    for table, expected in EXPECTED_COLUMNS.items():
        columns = [(name, kind, notnull, pk) for _, name, kind, notnull, _, pk
                   in small_conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
        assert columns == expected, table
        foreign_keys = {(row[2], row[3]) for row in
                        small_conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,))}
        assert foreign_keys == EXPECTED_FOREIGN_KEYS[table], table


def test_indexes_exist_for_the_query_columns(small_conn: sqlite3.Connection):
    indexed = {(table, column) for table, column in small_conn.execute(
        "SELECT m.tbl_name, i.name FROM sqlite_master m, pragma_index_info(m.name) i "
        "WHERE m.type = 'index' AND m.sql IS NOT NULL")}
    assert {("removal", "person_id"), ("removal", "removal_date"),
            ("runaway_episode", "person_id"), ("runaway_episode", "runaway_date")} <= indexed


def test_returned_counts_match_the_tables(tmp_path: Path):
    path = tmp_path / "counts.sqlite"
    counts = build_demo_database(path, scale=SMALL_SCALE)
    assert set(counts) == set(DUMP_QUERIES)
    with closing(connect(path)) as connection:
        for table, sql in DUMP_QUERIES.items():
            assert counts[table] == len(connection.execute(sql).fetchall()), table
    assert counts["county"] == 254
    assert counts["person"] > 1000 and counts["runaway_episode"] > 100


# ------------------------------------------------------------------------ counties


def test_county_rows_follow_the_texas_numbering(small_conn: sqlite3.Connection):
    rows = small_conn.execute("SELECT * FROM county ORDER BY county_code").fetchall()
    assert [row[0] for row in rows] == list(range(1, 255))
    by_code = {row[0]: row[1:] for row in rows}
    assert by_code[15] == ("Bexar", "48029", 8, "8-San Antonio")
    assert by_code[71] == ("El Paso", "48141", 10, "10-El Paso")
    assert by_code[101] == ("Harris", "48201", 6, "6-Houston")
    assert by_code[161] == ("McLennan", "48309", 7, "7-Austin")
    assert by_code[227] == ("Travis", "48453", 7, "7-Austin")
    assert {row[3] for row in rows} == set(range(1, 12))
    for _, _, _, region, region_name in rows:
        assert re.fullmatch(rf"{region}-[A-Z][A-Za-z ]+", region_name)


def test_region_6_has_most_children_and_region_10_fewest(small_conn: sqlite3.Connection):
    by_region = dict(small_conn.execute(
        "SELECT c.region, COUNT(DISTINCT r.person_id) FROM removal r "
        "JOIN county c USING (county_code) GROUP BY c.region"))
    assert set(by_region) == set(range(1, 12))
    assert max(by_region, key=by_region.get) == 6
    assert min(by_region, key=by_region.get) == 10


# --------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_tables_and_other_seed_differs(tmp_path: Path):
    first, second, other = (tmp_path / name for name in ("a.sqlite", "b.sqlite", "c.sqlite"))
    build_demo_database(first, seed=7, scale=SMALL_SCALE)
    build_demo_database(second, seed=7, scale=SMALL_SCALE)
    build_demo_database(other, seed=8, scale=SMALL_SCALE)
    assert dump(first) == dump(second)
    dump_other = dump(other)
    assert dump_other["county"] == dump(first)["county"]
    for table in ("person", "removal", "runaway_episode", "assignment"):
        assert dump_other[table] != dump(first)[table], table


def test_counts_scale_linearly(tmp_path: Path):
    single = build_demo_database(tmp_path / "single.sqlite", scale=0.02)
    double = build_demo_database(tmp_path / "double.sqlite", scale=0.04)
    for table in ("person", "removal", "runaway_episode", "assignment"):
        assert double[table] / single[table] == pytest.approx(2.0, rel=0.15), table


# ------------------------------------------------------------------ data integrity


def test_episodes_belong_to_a_removal_of_the_same_person(small_conn: sqlite3.Connection):
    assert scalar(small_conn, "SELECT COUNT(*) FROM runaway_episode WHERE removal_id IS NULL") == 0
    mismatched = scalar(small_conn, """
        SELECT COUNT(*) FROM runaway_episode e LEFT JOIN removal r USING (removal_id)
        WHERE r.person_id IS NULL OR r.person_id != e.person_id""")
    assert mismatched == 0
    before = scalar(small_conn, """
        SELECT COUNT(*) FROM runaway_episode e JOIN removal r USING (removal_id)
        WHERE e.runaway_date < r.removal_date""")
    assert before == 0
    # Runaways keyed after the discharge (test_runaways_after_discharge) come 1..180 days later.
    too_late = scalar(small_conn, """
        SELECT COUNT(*) FROM runaway_episode e JOIN removal r USING (removal_id)
        WHERE julianday(e.runaway_date) - julianday(r.discharge_date) > 180""")
    assert too_late == 0


def test_references_resolve(small_conn: sqlite3.Connection):
    orphans = {
        "removal person": "SELECT COUNT(*) FROM removal WHERE person_id NOT IN "
                          "(SELECT person_id FROM person)",
        "removal county": "SELECT COUNT(*) FROM removal WHERE county_code IS NULL OR "
                          "county_code NOT IN (SELECT county_code FROM county)",
        "episode person": "SELECT COUNT(*) FROM runaway_episode WHERE person_id NOT IN "
                          "(SELECT person_id FROM person)",
        "episode county": "SELECT COUNT(*) FROM runaway_episode WHERE county_code NOT IN "
                          "(SELECT county_code FROM county)",
        "person without removal": "SELECT COUNT(*) FROM person WHERE person_id NOT IN "
                                  "(SELECT person_id FROM removal)",
    }
    for label, sql in orphans.items():
        assert scalar(small_conn, sql) == 0, label


def test_dates_are_iso_text_and_event_dates_are_real(small_conn: sqlite3.Connection):
    for sql in REAL_DATE_QUERIES:
        for (value,) in small_conn.execute(sql):
            assert value is None or (ISO_DATE.match(value) and _is_real_date(value)), sql
    births = [b for (b,) in small_conn.execute("SELECT birth_date FROM person")]
    assert all(b is None or ISO_DATE.match(b) for b in births)
    early_discharges = scalar(small_conn, "SELECT COUNT(*) FROM removal "
                                          "WHERE discharge_date < removal_date")
    assert early_discharges == 0


def test_children_are_0_to_17_at_removal(small_conn: sqlite3.Connection):
    ages = [age for (age,) in small_conn.execute("""
        SELECT (julianday(r.removal_date) - julianday(p.birth_date)) / 365.25
        FROM removal r JOIN person p USING (person_id)
        WHERE p.birth_date IS NOT NULL AND julianday(p.birth_date) IS NOT NULL""")]
    assert ages and min(ages) >= 0 and max(ages) < 18.01
    infants = sum(age < 1 for age in ages) / len(ages)
    teens = sum(age >= 13 for age in ages) / len(ages)
    assert 0.1 < infants < 0.3 and 0.1 < teens < 0.35


def test_person_ids_sort_differently_as_text(small_conn: sqlite3.Connection):
    numeric = [pid for (pid,) in small_conn.execute("SELECT person_id FROM person")]
    assert all(isinstance(pid, int) for pid in numeric)
    assert sorted(numeric) != sorted(numeric, key=str)
    assert numeric[-1] - numeric[0] > len(numeric)  # not contiguous


def test_sex_and_race_values(small_conn: sqlite3.Connection):
    sexes = dict(small_conn.execute("SELECT sex, COUNT(*) FROM person GROUP BY sex"))
    total = sum(sexes.values())
    assert (sexes.get("Male", 0) + sexes.get("Female", 0)) / total > 0.97
    assert {"M", "F", "", None, "Unknown"} <= set(sexes)
    races = dict(small_conn.execute(
        "SELECT race_ethnicity, COUNT(*) FROM person GROUP BY race_ethnicity"))
    assert set(races) <= DFPS_RACES
    assert 0.38 < races["Hispanic"] / total < 0.52
    assert 0.18 < races["Anglo"] / total < 0.33
    assert 0.15 < races["African American"] / total < 0.29


# ---------------------------------------------------------------------- hard cases


def test_hard_name_cases_are_present_at_small_scale(small_conn: sqlite3.Connection):
    people = small_conn.execute(
        "SELECT last_name, first_name, middle_name, suffix, birth_date FROM person").fetchall()
    lasts = [p[0] for p in people if p[0]]
    firsts = [p[1] for p in people if p[1]]
    names = lasts + firsts
    assert any(not name.isascii() for name in names)
    assert "Peña" in lasts and "Nguyễn" in lasts and "Muñoz" in lasts and "Zoë" in firsts
    assert any("-" in name for name in lasts)
    assert any("'" in name for name in lasts)
    assert any("\u2019" in name for name in lasts)
    assert "De La Cruz" in lasts and "Van der Berg" in lasts
    assert any(name.startswith(" ") or name.endswith(" ") for name in names)
    assert any("\u00a0" in name for name in names)
    assert any(len(name) > 30 for name in lasts)
    assert any(len(name) > 20 for name in firsts)
    assert any(any(ord(ch) > 0x2000 and ch.isalpha() for ch in name) for name in names)
    assert {"Jr", "Jr.", "III"} <= {p[3] for p in people}
    assert any(p[2] is None for p in people) and any(p[2] for p in people)
    assert any(p[4] is None for p in people)
    assert any(p[1] is None for p in people) and any(p[1] == "" for p in people)
    assert any(p[0] is None or p[0] == "" for p in people)
    impossible = [p[4] for p in people if p[4] and not _is_real_date(p[4])]
    assert impossible and all(ISO_DATE.match(b) for b in impossible)


def _is_real_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def test_hard_episode_cases_are_present_at_small_scale(small_conn: sqlite3.Connection):
    assert scalar(small_conn, "SELECT COUNT(*) FROM runaway_episode WHERE return_date IS NULL") > 0
    assert scalar(small_conn, "SELECT COUNT(*) FROM runaway_episode "
                              "WHERE return_date < runaway_date") > 0
    assert scalar(small_conn, "SELECT COUNT(*) FROM runaway_episode "
                              "WHERE county_code IS NULL") > 0
    other_county = scalar(small_conn, """
        SELECT COUNT(*) FROM runaway_episode e JOIN removal r USING (removal_id)
        JOIN county ce ON ce.county_code = e.county_code
        JOIN county cr ON cr.county_code = r.county_code
        WHERE e.county_code != r.county_code AND ce.region = cr.region""")
    assert other_county > 0
    awkward_runners = set(small_conn.execute("""
        SELECT DISTINCT p.last_name, p.first_name FROM runaway_episode e
        JOIN person p USING (person_id)"""))
    assert {("Peña", "José"), ("Nguyễn", "Ngọc Anh"), ("Smith-Jones", "Zoë"),
            ("De La Cruz", "María"), ("D\u2019Angelo", "Mia"),
            ("Brown", "Destiny")} <= awkward_runners   # Brown: impossible DOB, not sent


# ------------------------------------------- data-quality cases the reports must meet

AFTER_DISCHARGE = """
    SELECT e.episode_id, e.person_id, e.runaway_date, r.discharge_date, p.birth_date
    FROM runaway_episode e JOIN removal r USING (removal_id) JOIN person p USING (person_id)
    WHERE e.runaway_date > r.discharge_date ORDER BY e.episode_id"""
IN_CARE_ON_DAYS = """
    SELECT COUNT(*) FROM removal WHERE person_id = :pid AND removal_date <= :end
    AND (discharge_date IS NULL OR discharge_date >= :start)"""


def fiscal_quarter_bounds(day: str) -> dict[str, str]:
    """The first and last day of the fiscal quarter holding `day` (contract §1)."""
    quarter = period_containing(date.fromisoformat(day))
    return {"start": quarter.start.isoformat(), "end": quarter.end.isoformat()}


def test_runaways_after_discharge_give_children_not_in_care(cases_conn: sqlite3.Connection):
    """Some runaways are keyed after the child left care (report note "not sent to DPS: not in
    care during the period"): about 1% of the episodes, 1-180 days after the discharge, at
    ages 12-17; most fall in a quarter in which the child has no removal at all."""
    rows = cases_conn.execute(AFTER_DISCHARGE).fetchall()
    total = scalar(cases_conn, "SELECT COUNT(*) FROM runaway_episode")
    assert (len(rows), total) == (10, 682)
    for _, _, runaway, discharge, birth in rows:
        assert 1 <= (date.fromisoformat(runaway) - date.fromisoformat(discharge)).days <= 180
        assert 12 <= (date.fromisoformat(runaway) - date.fromisoformat(birth)).days / 365.25 < 18
    not_in_care = [episode for episode, pid, runaway, *_ in rows
                   if scalar(cases_conn, IN_CARE_ON_DAYS,
                             {"pid": pid, **fiscal_quarter_bounds(runaway)}) == 0]
    assert len(not_in_care) == 5


IN_CARE_ON = """SELECT COUNT(DISTINCT person_id) FROM removal WHERE removal_date <= :day
                  AND (discharge_date IS NULL OR discharge_date >= :day)"""
PRIMARY_ON = """SELECT COUNT(DISTINCT person_id) FROM assignment WHERE is_primary = 1
                  AND start_date <= :day AND (end_date IS NULL OR end_date >= :day)"""


def test_most_children_in_care_have_a_primary_caseworker(cases_conn: sqlite3.Connection):
    """Contract §10.4's assignment table: on the demo's run date most children in care have a
    current primary worker, some none; some assignments have ended, some workers are
    secondary, and a few children have two primaries keyed on the same day."""
    day = {"day": DEMO_RUN_DATE}
    assert (scalar(cases_conn, IN_CARE_ON, day), scalar(cases_conn, PRIMARY_ON, day)) == (
        1554, 1467)
    assert cases_conn.execute("SELECT SUM(is_primary = 0), SUM(end_date IS NOT NULL), COUNT(*) "
                              "FROM assignment").fetchone() == (424, 4724, 6378)
    same_day = scalar(cases_conn, """SELECT COUNT(*) FROM (SELECT 1 FROM assignment
        WHERE is_primary = 1 GROUP BY person_id, start_date HAVING COUNT(*) > 1)""")
    assert same_day == 14
    units = {unit for (unit,) in cases_conn.execute("SELECT DISTINCT unit FROM assignment")}
    assert "6-Houston Unit 1" in units and len(units) == 66   # 11 regions x 6 units


def left_out_of_the_dps_file(last: str | None, first: str | None, birth: str | None) -> bool:
    """No usable DOB, last or first name (contract §3; names count as absent when blank)."""
    return not _is_real_date(birth or "") or not (last or "").strip() \
        or not (first or "").strip()


def test_children_left_out_of_the_dps_file_have_episodes(cases_conn: sqlite3.Connection):
    """Runners without a usable DOB, last or first name (not sent; the report's note "not sent
    to DPS: excluded (...)"), at least the hard case with an impossible DOB at any scale."""
    people = cases_conn.execute("""
        SELECT p.last_name, p.first_name, p.birth_date,
               EXISTS (SELECT 1 FROM runaway_episode e WHERE e.person_id = p.person_id)
        FROM person p""").fetchall()
    left_out = [person for person in people if left_out_of_the_dps_file(*person[:3])]
    runners = {(last, first) for last, first, _, ran in left_out if ran}
    assert (len(left_out), len(runners)) == (20, 1)
    assert ("Brown", "Destiny") in runners


def overlapping_children(connection: sqlite3.Connection, as_of: str) -> set[int]:
    """PIDs with two episodes (runaway <= as_of) that overlap in time; an open episode (no
    return, or one before the runaway) lasts until as_of (contract §9)."""
    return {pid for (pid,) in connection.execute("""
        WITH spans AS (
          SELECT person_id, episode_id, runaway_date AS began,
                 CASE WHEN return_date IS NULL OR return_date < runaway_date THEN :as_of
                      ELSE return_date END AS ended
          FROM runaway_episode WHERE runaway_date <= :as_of)
        SELECT DISTINCT a.person_id FROM spans a JOIN spans b
          ON a.person_id = b.person_id AND a.episode_id < b.episode_id
         AND a.began <= b.ended AND b.began <= a.ended""", {"as_of": as_of})}


def test_some_children_have_overlapping_episodes(cases_conn: sqlite3.Connection):
    """Two episodes of one child that overlap (a data-entry problem §9 warns about) for about
    1% of the children who ran: a return keyed after the next runaway, or typed before the
    runaway so that the episode counts as open."""
    overlapping = overlapping_children(cases_conn, DEMO_RUN_DATE)
    runners = scalar(cases_conn, "SELECT COUNT(DISTINCT person_id) FROM runaway_episode "
                                 "WHERE runaway_date <= ?", (DEMO_RUN_DATE,))
    assert (len(overlapping), runners) == (2, 173)
    late_returns = scalar(cases_conn, """
        SELECT COUNT(*) FROM runaway_episode a JOIN runaway_episode b
          ON a.person_id = b.person_id AND a.episode_id != b.episode_id
         AND b.runaway_date > a.runaway_date AND b.runaway_date <= a.return_date""")
    assert late_returns == 3   # over the whole database, after the run date too


def test_data_quality_cases_at_realistic_rates(tenth_conn: sqlite3.Connection):
    """At scale 0.1: about 1% of episodes after a discharge, about 1% of the children who ran
    with overlapping episodes, and a return never keyed only on a child's latest episode
    (else every later episode would overlap it)."""
    total = scalar(tenth_conn, "SELECT COUNT(*) FROM runaway_episode")
    after_discharge = len(tenth_conn.execute(AFTER_DISCHARGE).fetchall())
    assert 0.005 < after_discharge / total < 0.02
    runners = scalar(tenth_conn, "SELECT COUNT(DISTINCT person_id) FROM runaway_episode "
                                 "WHERE runaway_date <= ?", (DEMO_RUN_DATE,))
    assert 0.005 <= len(overlapping_children(tenth_conn, DEMO_RUN_DATE)) / runners <= 0.02
    never_closed_then_ran = scalar(tenth_conn, """
        SELECT COUNT(*) FROM runaway_episode a JOIN removal r USING (removal_id)
        WHERE a.return_date IS NULL AND (r.discharge_date IS NULL
                                         OR a.runaway_date <= r.discharge_date)
          AND EXISTS (SELECT 1 FROM runaway_episode b JOIN removal rb USING (removal_id)
                      WHERE b.person_id = a.person_id AND b.runaway_date > a.runaway_date
                        AND (rb.discharge_date IS NULL OR b.runaway_date <= rb.discharge_date))""")
    assert never_closed_then_ran == 0


# ----------------------------------------------------------------- realism at 0.1


def test_fiscal_year_targets_at_scale_0_1(tenth_conn: sqlite3.Connection):
    for fiscal_year in FISCAL_YEARS:
        bounds = fiscal_year_bounds(fiscal_year)
        children = scalar(tenth_conn, CHILDREN_IN_FY, bounds)
        episodes, runners = tenth_conn.execute(EPISODES_IN_FY, bounds).fetchone()
        assert children == pytest.approx(5_000, rel=0.2), fiscal_year
        assert episodes == pytest.approx(350, rel=0.2), fiscal_year
        assert episodes / runners == pytest.approx(1.9, rel=0.2), fiscal_year


def test_many_children_span_fiscal_years_and_some_return_to_care(
        tenth_conn: sqlite3.Connection):
    both = scalar(tenth_conn, """
        SELECT COUNT(DISTINCT person_id) FROM removal
        WHERE removal_date <= '2024-08-31' AND (discharge_date IS NULL
                                                OR discharge_date >= '2025-09-01')""")
    assert both > 1_000
    removals_per_child = [n for (n,) in tenth_conn.execute(
        "SELECT COUNT(*) FROM removal GROUP BY person_id")]
    several = sum(n > 1 for n in removals_per_child) / len(removals_per_child)
    assert 0.04 < several < 0.13


def test_runners_are_mostly_older_teens_and_often_girls(tenth_conn: sqlite3.Connection):
    ages = [age for (age,) in tenth_conn.execute("""
        SELECT (julianday(e.runaway_date) - julianday(p.birth_date)) / 365.25
        FROM runaway_episode e JOIN person p USING (person_id)
        WHERE julianday(p.birth_date) IS NOT NULL""")]
    assert sum(15 <= age < 18 for age in ages) / len(ages) > 0.7
    assert sum(12 <= age < 15 for age in ages) / len(ages) > 0.05
    assert min(ages) >= 11.9 and max(ages) < 18.01
    female_share = scalar(tenth_conn, """
        SELECT AVG(sex IN ('Female', 'F')) FROM person
        WHERE person_id IN (SELECT person_id FROM runaway_episode)""")
    assert 0.45 <= female_share <= 0.65


def test_runaway_durations_are_mostly_short(tenth_conn: sqlite3.Connection):
    days = [d for (d,) in tenth_conn.execute(
        "SELECT julianday(return_date) - julianday(runaway_date) FROM runaway_episode "
        "WHERE return_date >= runaway_date")]
    assert sum(d <= 60 for d in days) / len(days) > 0.97
    assert sum(1 <= d <= 7 for d in days) / len(days) > 0.5
    total = scalar(tenth_conn, "SELECT COUNT(*) FROM runaway_episode")
    still_open = scalar(tenth_conn,
                        "SELECT COUNT(*) FROM runaway_episode WHERE return_date IS NULL")
    assert 0.01 < still_open / total < 0.06
    county_null = scalar(tenth_conn,
                         "SELECT COUNT(*) FROM runaway_episode WHERE county_code IS NULL")
    assert county_null / total < 0.02


# ----------------------------------------------------------------------- the CLI


def test_build_replaces_an_existing_file_atomically(tmp_path: Path):
    path = tmp_path / "impact_demo.sqlite"
    path.write_bytes(b"old")
    build_demo_database(path, scale=SMALL_SCALE)
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    assert not path.with_suffix(".tmp").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["impact_demo.sqlite"]


def test_main_keeps_an_existing_file_unless_forced(tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture):
    path = tmp_path / "out" / "impact_demo.sqlite"
    path.parent.mkdir()
    path.write_bytes(b"keep me")
    with caplog.at_level(logging.INFO):
        assert main(["--out", str(path), "--scale", "0.01"]) == 0
    assert path.read_bytes() == b"keep me"
    assert "already exists" in caplog.text
    assert main(["--out", str(path), "--scale", "0.01", "--force", "--seed", "3"]) == 0
    with closing(connect(path)) as connection:
        assert scalar(connection, "SELECT COUNT(*) FROM county") == 254


def test_main_rejects_bad_arguments():
    with pytest.raises(SystemExit):
        main(["--scale", "0"])
    with pytest.raises(SystemExit):
        main(["--first-fy", "2026", "--last-fy", "2024"])


def test_default_output_is_var_under_the_repo_root():
    assert DEFAULT_OUT == REPO_ROOT / "var" / "impact_demo.sqlite"


@pytest.mark.parametrize("command", [["demo/build_demo_db.py"], ["-m", "demo.build_demo_db"]])
def test_runs_as_script_and_as_module(tmp_path: Path, command: list[str]):
    path = tmp_path / "cli.sqlite"
    result = subprocess.run(
        [sys.executable, *command, "--out", str(path), "--scale", "0.01", "--first-fy", "2025",
         "--last-fy", "2025"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "built demo database" in result.stderr
    with closing(connect(path)) as connection:
        assert scalar(connection, "SELECT MIN(runaway_date) FROM runaway_episode "
                                  "WHERE person_id IN (SELECT person_id FROM person "
                                  "WHERE last_name = 'Peña')") == "2024-09-26"
