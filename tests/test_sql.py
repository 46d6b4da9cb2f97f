"""Contract §2: every sql/*.sql parses as Oracle SQL, binds its values, and runs on the
embedded SQLite schema returning the contract's columns."""

import datetime as dt
import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

import util
from exchange.closure import CASEWORKER_QUERY_COLUMNS
from exchange.database import open_database, read_sql_file
from exchange.errors import DatabaseError
from exchange.reconcile import COUNTY_COLUMNS, SA98_COLUMNS
from exchange.wrangle import QUERY_COLUMNS

SQL = Path(__file__).resolve().parent.parent / "sql"

security = pytest.mark.reliability("security")
CONTRACT = {"send_children": (QUERY_COLUMNS, {"period_start", "period_end_next"}),
            "sa_98": (SA98_COLUMNS, {"from_date", "to_date_next"}),
            "county_region": (COUNTY_COLUMNS, set()),
            "caseworker": (CASEWORKER_QUERY_COLUMNS, {"run_date"})}   # §10.4


def test_the_sql_folder_holds_exactly_the_four_queries():
    assert sorted(p.stem for p in SQL.glob("*.sql")) == sorted(CONTRACT)


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_query_parses_as_oracle_sql_with_the_contract_columns(name):
    statement = sqlglot.parse_one(read_sql_file(SQL, name), read="oracle")
    assert isinstance(statement, exp.Select)
    assert [c.alias_or_name.upper() for c in statement.expressions] == CONTRACT[name][0]
    binds = {p.name for p in statement.find_all(exp.Placeholder)}
    assert binds == CONTRACT[name][1]


@security
@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_query_binds_every_value_and_holds_no_literal_dates(name):
    text = read_sql_file(SQL, name)
    assert not re.search(r"'\d{4}-\d{2}-\d{2}'", text)
    assert "{" not in text and "%s" not in text


def test_queries_run_on_the_sqlite_schema(workspace):
    engine = open_database(f"sqlite:///{workspace.db_path}")
    children = util.run_query(engine, SQL, "send_children",
                              {"period_start": dt.date(2025, 3, 1),
                               "period_end_next": dt.date(2025, 6, 1)}, QUERY_COLUMNS)
    # removals 1 (discharged 2020) and 9 (discharged 2025-01-31) end before the period
    assert sorted(children["REMOVAL_ID"]) == [2, 3, 4, 5, 6, 7, 8]
    episodes = util.run_query(engine, SQL, "sa_98", {"from_date": dt.date(2025, 2, 26),
                                                     "to_date_next": dt.date(2025, 6, 4)},
                              SA98_COLUMNS)
    assert sorted(episodes["EPISODE_ID"]) == [501, 502, 503, 504, 505, 506]
    counties = util.run_query(engine, SQL, "county_region", {}, COUNTY_COLUMNS)
    assert len(counties) == 254
    assert counties.loc[counties["COUNTY_CODE"] == 101, "COUNTY_NAME"].item() == "Harris"
    workers = util.run_query(engine, SQL, "caseworker", {"run_date": dt.date(2025, 6, 20)},
                             CASEWORKER_QUERY_COLUMNS)
    # current primaries only, latest start first, same-day ties by the larger assignment_id
    assert workers.values.tolist() == [
        [1001, "Worker Casey", "6-Houston Unit 2", "Supervisor Drew"],
        [1001, "Worker Avery", "6-Houston Unit 1", "Supervisor Blake"],
        [1002, "Worker Gray", "7-Austin Unit 3", "Supervisor Harper"]]


def test_a_production_query_missing_a_column_is_one_line(workspace, tmp_path):
    (tmp_path / "county_region.sql").write_text(
        "SELECT county_code AS COUNTY_CODE, county_name AS COUNTY_NAME FROM county")
    engine = open_database(f"sqlite:///{workspace.db_path}")
    with pytest.raises(DatabaseError) as caught:
        util.run_query(engine, tmp_path, "county_region", {}, COUNTY_COLUMNS)
    assert str(caught.value) == f"{tmp_path}/county_region.sql: result lacks column REGION"


def test_a_locked_or_broken_database_is_one_line(workspace, tmp_path):
    broken = tmp_path / "broken.sqlite"
    broken.write_bytes(b"this is not a database" * 100)
    engine = open_database(f"sqlite:///{broken}")
    with pytest.raises(DatabaseError) as caught:
        util.run_query(engine, SQL, "county_region", {}, COUNTY_COLUMNS)
    assert str(caught.value) == (f"database sqlite:///{broken}: query county_region: "
                                 f"file is not a database")
