"""The receive step's sources besides DPS's answer: the file we sent (from the send's
archive), IMPACT's runaway episodes (sa_98, by query or extract) and the county -> region
lookup (docs/data-contract.md §2)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.archive import Archive
from exchange.closure import CASEWORKER_QUERY_COLUMNS, caseworkers_by_pid, read_ori_directory
from exchange.config import Config, DatabaseSettings
from exchange.database import open_configured_database, run_query
from exchange.episodes import number_lines, overlaps_range
from exchange.errors import ConfigError, InputError
from exchange.files import sha256_file
from exchange.periods import Period
from exchange.reconcile import COUNTY_COLUMNS, SA98_COLUMNS, SendList, WhoActs
from exchange.records import SendRecord
from exchange.rules import Rules


def read_send_list(upload: SendRecord, archive: Archive) -> SendList:
    """Who the send's query found for the period, from the send's archive: the rows sent
    (PID -> county, sent_index.csv) and the rows excluded (PID -> reasons,
    excluded_index.csv; for sends archived before it existed, end_export.xlsx's Excluded
    sheet), and each one's DISCHARGE_DATE. Each index is read once."""
    import pandas as pd

    sent = read_index(upload, archive, "sent_index")
    if sent is None:
        raise InputError(f"send run {upload.run_id}: archived sent index is missing")
    counties = pd.to_numeric(sent["COUNTY_CODE"], errors="coerce")
    county = dict(zip(sent["PID"].astype("int64").tolist(), counties.tolist(), strict=True))
    excluded = read_index(upload, archive, "excluded_index")
    return SendList(county, read_excluded(upload, archive, excluded),
                    discharge_dates([frame for frame in (sent, excluded) if frame is not None]))


def archived_file(upload: SendRecord, role: str) -> Path | None:
    """The upload's archived file of that role, when it is there."""
    found = upload.archived_as(role)
    return found if found is not None and found.is_file() else None


def read_index(upload: SendRecord, archive: Archive, role: str) -> Any:
    """One archived index of the send (sent_index, excluded_index) as text columns (a blank
    cell is ""), or None when that send archived none."""
    import pandas as pd

    index_file = archived_file(upload, role)
    if index_file is None:
        return None
    return pd.read_csv(io.BytesIO(archive.read(index_file)), dtype=str, keep_default_na=False)


def read_excluded(upload: SendRecord, archive: Archive, index: Any = None) -> dict[int, str]:
    """PID -> the reasons it was not sent, as on end_export.xlsx's Excluded sheet, from the
    excluded index (`index`, read by read_index) or, before it existed, the workbook."""
    import pandas as pd

    if index is not None:
        return dict(zip(index["PID"].astype("int64").tolist(), index["REASONS"].tolist(),
                        strict=True))
    workbook = archived_file(upload, "export")
    if workbook is None:
        return {}
    frame = pd.read_excel(io.BytesIO(archive.read(workbook)), sheet_name="Excluded",
                          dtype=object)
    return {int(pid): str(reasons) for pid, reasons in zip(frame["PID"], frame["REASONS"],
                                                            strict=True)}


def discharge_dates(indexes: list[Any]) -> Any:
    """PID -> the DISCHARGE_DATE of its chosen removal (NaT while open) for every child in
    send_children's result (sent or excluded), from the send's archived indexes (§10.5), as
    a Series indexed by PID. Indexes archived before v4 have no DISCHARGE_DATE: those
    children are left out (their IN_CARE is blank, unknown)."""
    import pandas as pd

    parts = [discharge_column(index) for index in indexes]
    parts = [part for part in parts if not part.empty]
    return pd.concat(parts) if parts else pd.Series(dtype="datetime64[ns]")


def discharge_column(index: Any) -> Any:
    """PID -> DISCHARGE_DATE of one archived index (a Series); empty without the column."""
    import pandas as pd

    if "DISCHARGE_DATE" not in index.columns:
        return pd.Series(dtype="datetime64[ns]")
    dates = pd.to_datetime(index["DISCHARGE_DATE"].str.strip(), format="%Y-%m-%d",
                           errors="coerce")
    return pd.Series(dates.to_numpy(), index=index["PID"].astype("int64").to_numpy(),
                     name="DISCHARGE_DATE")


def read_caseworkers(settings: DatabaseSettings, engine: Any, today: dt.date) -> Any:
    """PID -> CASEWORKER, UNIT, SUPERVISOR from `database.caseworker_query` bound with
    :run_date, each PID's first row (§10.4); None when the setting is "" (off)."""
    if not settings.caseworker_query:
        return None
    frame = run_query(engine, settings.sql_folder, settings.caseworker_query,
                      {"run_date": today}, CASEWORKER_QUERY_COLUMNS)
    return caseworkers_by_pid(frame)


@dataclass(frozen=True)
class Fetched:
    """What the receive reads from IMPACT and its own files besides DPS's answer."""

    sa98: Any              # the fetched sa_98 rows, numbered with LINE
    name: str              # their source's name on Exceptions
    county_region: Any
    who: WhoActs           # caseworkers by PID and the ORI directory (None when off)


def read_sources(config: Config, rules: Rules, period: Period, today: dt.date) -> Fetched:
    """sa_98, county_region and (when on) the caseworker query, through one database
    connection pool; the ORI directory (when on)."""
    directory = config.reports.ori_directory
    agencies = read_ori_directory(directory)     # a bad file: exit 2 before anything else
    engine = open_configured_database(config.database)
    try:
        sa98, name = read_sa98(config, rules.fetch_range(period.start, period.end, today),
                               engine)
        county_region = run_query(engine, config.database.sql_folder, "county_region", {},
                                  COUNTY_COLUMNS)
        caseworkers = read_caseworkers(config.database, engine, today)
    finally:
        engine.dispose()
    checksum = {directory.name: sha256_file(directory)} if directory else {}
    return Fetched(sa98, name, county_region, WhoActs(caseworkers, agencies, checksum))


def read_sa98(config: Config, fetch_range: tuple[dt.date, dt.date], engine: Any
              ) -> tuple[Any, str]:
    """(episodes of the fetch range (Rules.fetch_range) numbered with LINE, source name for
    Exceptions)."""
    from_date, to_date = fetch_range
    source = config.sa_98
    if source.source == "query":
        frame = run_query(engine, config.database.sql_folder, "sa_98",
                          {"from_date": from_date, "to_date_next": to_date + dt.timedelta(days=1)},
                          SA98_COLUMNS)
        return number_lines(frame, 1), "sa_98 query"
    if source.source != "file":
        raise ConfigError("sa_98.source: expected query or file")
    path = config.resolve(source.extract_file)
    frame = number_lines(read_sa98_extract(path, source.columns), 2)
    frame = frame[frame[SA98_COLUMNS].notna().any(axis=1)]   # blank lines are no rows
    return frame[overlaps_range(frame, from_date, to_date)].reset_index(drop=True), path.name


def read_sa98_extract(path: Path, columns: dict[str, str]) -> Any:
    """An sa_98 extract (CSV or XLSX), its columns mapped to the contract's names."""
    import pandas as pd

    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, dtype=object)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""],
                                skip_blank_lines=False)   # row N is physical line N + 1
    except FileNotFoundError as exc:
        raise ConfigError(f"sa_98.extract_file: file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the sa_98 extract: {exc}") from exc
    frame = frame.rename(columns=columns)
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    missing = [c for c in SA98_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]} (map it in sa_98.columns)")
    return frame[SA98_COLUMNS]
