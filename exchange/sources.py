"""The receive step's sources besides DPS's answer: the file we sent (from the send's
archive), IMPACT's runaway episodes (sa_98, by query or extract) and the county -> region
lookup (docs/data-contract.md §2)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from exchange.config import Config
from exchange.database import open_configured_database, run_query
from exchange.errors import ConfigError, InputError
from exchange.frames import plain_dates
from exchange.periods import Period
from exchange.reconcile import COUNTY_COLUMNS, SA98_COLUMNS


def read_sent_file(upload: dict[str, Any]) -> Any:
    """The rows we sent (PID, COUNTY_CODE) from the send's archive: the text file DPS got,
    and the Sent sheet's county index beside it."""
    import pandas as pd

    archived = [Path(p) for p in upload.get("archived", [])]
    index_file = next((p for p in archived if p.name.endswith("_sent_index.csv")), None)
    if index_file is None or not index_file.is_file():
        raise InputError(f"send run {upload['run_id']}: archived sent index is missing")
    sent = pd.read_csv(index_file, dtype={"PID": "int64"}, keep_default_na=False,
                       na_values=[""])
    sent["COUNTY_CODE"] = pd.to_numeric(sent["COUNTY_CODE"], errors="coerce")
    return sent


def read_sources(config: Config, period: Period) -> tuple[Any, str, int, Any]:
    """(sa_98 episodes, their source name for Exceptions, the line number of their first row,
    the county_region lookup), through one database connection pool."""
    engine = open_configured_database(config.database)
    try:
        sa98, name, first_line = read_sa98(config, period, engine)
        county_region = run_query(engine, config.database.sql_folder, "county_region", {},
                                  COUNTY_COLUMNS)
    finally:
        engine.dispose()
    return sa98, name, first_line, county_region


def read_sa98(config: Config, period: Period, engine: Any) -> tuple[Any, str, int]:
    """(episodes, source name for Exceptions, line number of the first row)."""
    window = dt.timedelta(days=config.matching.match_window_days)
    from_date, to_date = period.start - window, period.end + window
    source = config.sa_98
    if source.source == "query":
        frame = run_query(engine, config.database.sql_folder, "sa_98",
                          {"from_date": from_date, "to_date_next": to_date + dt.timedelta(days=1)},
                          SA98_COLUMNS)
        return frame, "sa_98 query", 1
    if source.source != "file":
        raise ConfigError("sa_98.source: expected query or file")
    path = config.resolve(source.extract_file)
    return read_sa98_extract(path, source.columns, from_date, to_date), path.name, 2


def read_sa98_extract(path: Path, columns: dict[str, str], from_date: dt.date,
                      to_date: dt.date) -> Any:
    """An sa_98 extract (CSV or XLSX), its columns mapped, filtered to [from_date, to_date]."""
    import pandas as pd

    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, dtype=object)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise ConfigError(f"sa_98.extract_file: file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the sa_98 extract: {exc}") from exc
    frame = frame.rename(columns=columns)
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    missing = [c for c in SA98_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]} (map it in sa_98.columns)")
    frame = frame[SA98_COLUMNS]
    runaway = plain_dates(frame["RUNAWAY_DATE"])
    back = plain_dates(frame["RETURN_DATE"])
    overlaps = (runaway.isna() | (runaway <= pd.Timestamp(to_date))) & (
        back.isna() | (back >= pd.Timestamp(from_date)) | (back < runaway))
    return frame[overlaps].reset_index(drop=True)

