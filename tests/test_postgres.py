"""The exchange on a typed server database (PostgreSQL; the nearest stand-in for Oracle here):
TIMESTAMP removal/runaway/return dates with a time of day, DATE birth dates, BIGINT ids.
It must give the byte-identical sent file and cell-identical reports as the SQLite run."""

import datetime as dt
import sqlite3

import openpyxl
import sqlalchemy

from tests.real_servers import TIME_OF_DAY, fitting_type, postgres_type, typed_value
from tests.scenario import report_files, scenario_answer

AS_OF = ("--as-of", "2025-06-20")


RUN_ROWS = ("run id", "upload answered (send run id)", "generated at")   # differ per run


def workbook_cells(path):
    """Every cell of every sheet; the Read me's run id and time say which run, not what data."""
    workbook = openpyxl.load_workbook(path)
    return {sheet.title: [[row[0], "(this run)", *row[2:]] if row and row[0] in RUN_ROWS
                          else list(row) for row in sheet.iter_rows(values_only=True)]
            for sheet in workbook.worksheets}


def sent_files(space):
    return {p.name: p.read_bytes() for p in space.upload_dir.iterdir()}


def run_exchange(space):
    assert space.send(*AS_OF) == 0
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0
    return sent_files(space), {p.name: workbook_cells(p)
                               for p in sorted(space.folder("share").glob("*.xlsx"))}


def test_column_types_follow_the_name_convention():
    assert postgres_type("birth_date", "TEXT") == "DATE"
    assert postgres_type("RUNAWAY_DATE", "TEXT") == "TIMESTAMP"
    assert postgres_type("person_id", "INTEGER") == "BIGINT"
    assert postgres_type("county_code", "INTEGER") == "BIGINT"
    assert postgres_type("region", "INTEGER") == "BIGINT"
    assert postgres_type("fips", "TEXT") == "TEXT"


def test_a_code_column_holding_text_stays_text():
    assert fitting_type("BIGINT", [15, None, "227"]) == "BIGINT"
    assert fitting_type("BIGINT", ["U12", 3]) == "TEXT"
    assert fitting_type("TIMESTAMP", ["x"]) == "TIMESTAMP"


def test_dates_gain_a_time_of_day_and_impossible_ones_become_null():
    assert typed_value("2025-04-01", "TIMESTAMP") == dt.datetime(2025, 4, 1, 14, 35)
    assert typed_value("2009-04-01", "DATE") == dt.date(2009, 4, 1)
    assert typed_value("2010-02-30", "DATE") is None
    assert typed_value("2010-02-30", "TIMESTAMP") is None
    assert typed_value(None, "TIMESTAMP") is None


def test_the_copy_is_typed(typed_workspace):
    engine = sqlalchemy.create_engine(typed_workspace.settings["database"]["url"])
    with engine.connect() as connection:
        types = dict(connection.exec_driver_sql(
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns"
            " WHERE table_schema = 'public'").all())
        runaway = connection.exec_driver_sql(
            "SELECT runaway_date FROM runaway_episode WHERE episode_id = 501").scalar()
    engine.dispose()
    assert types["person.birth_date"] == "date"
    assert types["runaway_episode.runaway_date"] == "timestamp without time zone"
    assert types["removal.person_id"] == "bigint"
    assert runaway == dt.datetime.combine(dt.date(2025, 3, 10), TIME_OF_DAY)


def test_every_table_of_the_sqlite_file_is_copied(typed_workspace):
    with sqlite3.connect(typed_workspace.db_path) as source:
        expected = {name: source.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
                    for (name,) in source.execute("SELECT name FROM sqlite_master "
                                                  "WHERE type = 'table'")}
    engine = sqlalchemy.create_engine(typed_workspace.settings["database"]["url"])
    with engine.connect() as connection:
        copied = {name: connection.exec_driver_sql(f'SELECT COUNT(*) FROM "{name}"').scalar()
                  for name in expected}
    engine.dispose()
    assert copied == expected


def test_postgres_gives_the_same_sent_file_and_reports_as_sqlite(workspace, typed_workspace):
    sqlite_sent, sqlite_reports = run_exchange(workspace)
    typed_sent, typed_reports = run_exchange(typed_workspace)
    assert sorted(typed_sent) == sorted(sqlite_sent)
    assert typed_sent == sqlite_sent
    assert list(typed_reports) == list(sqlite_reports) == report_files()
    for name, sheets in sqlite_reports.items():
        assert typed_reports[name] == sheets, name


def test_a_dry_send_on_postgres_exits_0(typed_workspace):
    assert typed_workspace.send(*AS_OF, "--dry-run") == 0


def test_the_demo_database_sends_the_same_file_from_postgres(workspace, postgres_server,
                                                             tmp_path):
    """The demo's IMPACT (every table, impossible dates among them) copied into typed tables:
    the same bytes go to DPS. An impossible DOB is NULL there and excluded either way."""
    from demo.build_demo_db import build_demo_database
    from tests.real_servers import copy_sqlite_to_postgres

    demo_db = tmp_path / "demo.sqlite"
    build_demo_database(demo_db, scale=0.1)
    workspace.configure(database={"url": f"sqlite:///{demo_db}"})
    assert workspace.send(*AS_OF, "--dry-run") == 0
    sqlite_file = (workspace.folder("outbox") / "send" / "End_txt_file.txt").read_bytes()
    copy_sqlite_to_postgres(demo_db, postgres_server, "demo_send")
    workspace.configure(database={"url": postgres_server.url("demo_send")})
    assert workspace.send(*AS_OF, "--dry-run") == 0
    typed_file = (workspace.folder("outbox") / "send" / "End_txt_file.txt").read_bytes()
    assert typed_file == sqlite_file and sqlite_file.count(b"\n") > 100
