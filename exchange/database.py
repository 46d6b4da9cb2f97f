"""IMPACT through SQLAlchemy: one URL for Oracle (production) and SQLite (demo, tests).

The SQL lives in `sql/*.sql` with bind parameters only; this module reads and runs it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import Any

from exchange.config import DatabaseSettings, secret_from_env
from exchange.errors import ConfigError, DatabaseError

log = logging.getLogger(__name__)

def open_database(url: str, password: str | None = None) -> Any:
    """An SQLAlchemy engine for the configured URL (oracle+oracledb://… or sqlite:///…).

    A password from database.password_env is set on the parsed URL, so characters such as
    @ / : in it need no escaping.
    """
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds here
        raise ConfigError("database.url: not a valid SQLAlchemy URL") from exc
    if parsed.get_backend_name() == "sqlite" and (parsed.username or parsed.password
                                                  or password is not None):
        raise ConfigError("database.url: a SQLite URL takes no user name or password; leave "
                          "database.password_env empty for SQLite")
    if password is not None:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).is_file():
            # SQLite would silently create an empty database; refuse instead.
            raise DatabaseError(f"database {database}: file not found")
    return sqlalchemy.create_engine(parsed)


def open_configured_database(settings: DatabaseSettings) -> Any:
    return open_database(settings.url,
                         secret_from_env(settings.password_env, "database.password_env"))


def database_reason(exc: BaseException) -> str:
    """The first line of what the driver said (the innermost error), or its kind."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    cause = getattr(cause, "orig", None) or cause
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    if isinstance(cause, OSError) and not isinstance(cause, ConnectionError):
        text = f"cannot reach the database host ({text or type(cause).__name__})"
    return text or type(cause).__name__


def read_sql_file(sql_folder: Path, name: str) -> str:
    path = sql_folder / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"database.sql_folder: cannot read {path}: {exc.strerror}") from exc
    # Whole-line "--" comments go: SQLAlchemy would read a ":name" inside them as a bind.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def dates_as_iso_text(frame: Any) -> Any:
    """Typed date columns (Oracle DATE and PostgreSQL TIMESTAMP with a time of day, DATE) as
    plain ISO dates, "2025-03-10", the shape SQLite's text dates have: the contract's dates
    are days, so a time of day is cut off here once, and every database gives the same frame
    (and the same input checksum). Text columns are left as they are."""
    import pandas as pd

    frame = frame.copy()
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_datetime64_any_dtype(values):
            frame[column] = values.dt.strftime("%Y-%m-%d").astype(object).where(values.notna(),
                                                                                None)
        elif values.dtype == object and values.map(
                lambda v: isinstance(v, dt.date)).any():
            frame[column] = values.map(
                lambda v: v.strftime("%Y-%m-%d") if isinstance(v, dt.date) else v)
    return frame


def column_probe_sql(sql: str) -> str:
    """The query wrapped so that it returns its columns and no row (valid in Oracle,
    PostgreSQL and SQLite). `sql` is one of our own sql/*.sql files."""
    return "\n".join(["SELECT * FROM (", sql, ") q WHERE 1 = 0"])


def query_columns(engine: Any, sql_folder: Path, name: str, params: dict[str, Any],
                  required_columns: list[str]) -> list[str]:
    """For --check: the columns sql/<name>.sql returns, asked so that no row moves
    (SELECT * FROM (<query>) q WHERE 1 = 0, with the binds it names). Raises DatabaseError
    naming the file when a contract column is missing."""
    import sqlalchemy

    sql = read_sql_file(sql_folder, name)
    named = set(re.findall(r"(?<!:):([A-Za-z_][A-Za-z0-9_]*)", sql))
    binds = {k: v for k, v in params.items() if k in named}
    if engine.dialect.name == "sqlite":
        binds = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in binds.items()}
    probe = sqlalchemy.text(column_probe_sql(sql))
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            returned = connection.execute(probe, binds).keys()
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as exc:
        raise DatabaseError(f"database {safe_url}: query {name}: "
                            f"{database_reason(exc)}") from exc
    columns = [str(c).upper() for c in returned]
    missing = [c for c in required_columns if c not in columns]
    if missing:
        raise DatabaseError(f"{sql_folder / (name + '.sql')}: result lacks column {missing[0]}")
    return columns


def run_query(engine: Any, sql_folder: Path, name: str, params: dict[str, Any],
              required_columns: list[str]) -> Any:
    """Run sql/<name>.sql with bind parameters and return a DataFrame with upper-case columns.

    Dates bind as datetime.date for Oracle and as ISO text for SQLite (its dates are text).
    """
    import pandas as pd
    import sqlalchemy

    sql = read_sql_file(sql_folder, name)
    if engine.dialect.name == "sqlite":
        params = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in params.items()}
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(sqlalchemy.text(sql), connection, params=params)
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError, OSError) as exc:
        # Driver errors, pandas' wrapper of them, a bad URL option, a host name that does
        # not resolve (socket.gaierror): all one line, without the password.
        raise DatabaseError(f"database {safe_url}: query {name}: "
                            f"{database_reason(exc)}") from exc
    frame.columns = [str(c).upper() for c in frame.columns]   # PostgreSQL answers lower case
    frame = dates_as_iso_text(frame)
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        raise DatabaseError(f"{sql_folder / (name + '.sql')}: result lacks column {missing[0]}")
    log.info("query %s returned %d rows", name, len(frame))
    return frame[required_columns]

