"""The rules of the file sent to DPS (§3): one row per child, cleaned
names, DOB/SEX/RACE codes, exclusions with their reasons, the text layout, sanity limits.

Pure logic on DataFrames: no files, no database, no network.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from exchange.config import DpsFileSettings
from exchange.errors import ConfigError, InputError
from exchange.frames import plain_dates

QUERY_COLUMNS = ["PID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX", "DOB", "SEX",
                 "RACE_ETHNICITY", "REMOVAL_ID", "REMOVAL_DATE", "COUNTY_CODE",
                 "DISCHARGE_DATE"]
NAME_COLUMNS = ["LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX"]

# Letters that Unicode does not decompose into a base letter plus a mark (§3).
NAME_REPLACEMENTS = str.maketrans({
    "ß": "SS", "Ø": "O", "ø": "O", "Ł": "L", "ł": "L", "Đ": "D", "đ": "D",
    "Æ": "AE", "æ": "AE", "Œ": "OE", "œ": "OE",
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\t": " ", "\u00a0": " ",
})
NAME_TRIM = " -'"


def clean_name(value: Any) -> str:
    """DPS-safe name: ASCII letters, space, hyphen and apostrophe, upper case (§3)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.translate(NAME_REPLACEMENTS).upper()
    text = "".join(ch for ch in text if ("A" <= ch <= "Z") or ch in " -'")
    return " ".join(text.split()).strip(NAME_TRIM)


def cut_name(name: str, max_length: int) -> tuple[str, bool]:
    """Cut a cleaned name to max_length and trim again; says whether it was cut."""
    if len(name) <= max_length:
        return name, False
    return name[:max_length].strip(NAME_TRIM), True


def clean_name_column(values: Any, max_length: int) -> tuple[Any, int]:
    """Clean a Series of names; returns the cleaned Series and how many were cut."""
    cleaned = {}
    cut_count = 0
    for raw in values.unique():
        cleaned[raw] = cut_name(clean_name(raw), max_length)
    result = values.map(lambda raw: cleaned[raw][0])
    cut_count = int(values.map(lambda raw: cleaned[raw][1]).sum())
    return result.astype(object), cut_count


def sex_code(value: Any) -> str:
    text = str(value).strip().upper() if value is not None else ""
    return {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}.get(text, "U")


def race_codes(values: Any, race_mapping: dict[str, str]) -> Any:
    """NCIC race codes from DFPS labels (any case, spaces trimmed); anything unmapped is U."""
    lookup = {label.strip().lower(): code for label, code in race_mapping.items()}
    codes = {raw: lookup.get(str(raw).strip().lower() if raw is not None else "", "U")
             for raw in values.unique()}
    return values.map(codes).fillna("U")


def pick_latest_removal(children: Any) -> Any:
    """One row per PID: the removal with the latest REMOVAL_DATE (ties: highest REMOVAL_ID)."""
    ordered = children.sort_values(["PID", "REMOVAL_DATE", "REMOVAL_ID"],
                                   na_position="first", kind="mergesort")
    return ordered.drop_duplicates("PID", keep="last").reset_index(drop=True)


@dataclass
class Wrangled:
    sent: Any       # DataFrame: the rows of End_txt_file.txt plus COUNTY_CODE, REMOVAL_DATE
    excluded: Any             # DataFrame: rows not sent, with REASONS
    names_cut: dict[str, int] = field(default_factory=dict)


def wrangle(children: Any, today: dt.date, race_mapping: dict[str, str],
            max_lengths: dict[str, int]) -> Wrangled:
    """Apply every rule of docs/data-contract.md §3 to the send_children rows."""
    import pandas as pd

    frame = children.copy()
    frame["PID"] = pd.to_numeric(frame["PID"], errors="coerce")
    if frame["PID"].isna().any():
        raise InputError(f"query send_children: {int(frame['PID'].isna().sum())} row(s) "
                         f"have no numeric PID")
    frame["PID"] = frame["PID"].astype("int64")
    frame["REMOVAL_DATE"] = plain_dates(frame["REMOVAL_DATE"])
    frame["DISCHARGE_DATE"] = plain_dates(frame["DISCHARGE_DATE"])   # §10.5, never sent
    frame["REMOVAL_ID"] = pd.to_numeric(frame["REMOVAL_ID"], errors="coerce")
    frame = pick_latest_removal(frame)

    names_cut = {}
    for column in NAME_COLUMNS:
        frame[column], names_cut[column] = clean_name_column(frame[column], max_lengths[column])
    dob = plain_dates(frame["DOB"])
    usable_dob = dob.notna() & (dob <= pd.Timestamp(today))
    given = frame["DOB"].astype("string").fillna("").str.strip()
    frame["DOB"] = dob.dt.strftime("%Y%m%d").where(usable_dob, given)   # unusable: as given
    frame["SEX"] = frame["SEX"].map(sex_code)
    frame["RACE"] = race_codes(frame["RACE_ETHNICITY"], race_mapping)
    frame["COUNTY_CODE"] = pd.to_numeric(frame["COUNTY_CODE"], errors="coerce").astype("Int64")

    reasons = exclusion_reasons(usable_dob, frame["LAST_NAME"] != "", frame["FIRST_NAME"] != "")
    keep = reasons == ""
    columns = ["PID", *NAME_COLUMNS, "DOB", "SEX", "RACE", "COUNTY_CODE", "REMOVAL_DATE",
               "DISCHARGE_DATE"]
    sent = frame.loc[keep, columns].sort_values("PID").reset_index(drop=True)
    excluded = frame.loc[~keep, columns].assign(REASONS=reasons[~keep])
    excluded = excluded.sort_values("PID").reset_index(drop=True)
    return Wrangled(sent=sent, excluded=excluded, names_cut=names_cut)


def exclusion_reasons(has_dob: Any, has_last: Any, has_first: Any) -> Any:
    """'; '-joined reasons in the order DOB, last name, first name ('' = the row is sent)."""
    import pandas as pd

    checks = [(has_dob.to_numpy(dtype=bool), "no usable DOB"),
              (has_last.to_numpy(dtype=bool), "no last name"),
              (has_first.to_numpy(dtype=bool), "no first name")]
    reasons = pd.Series("", index=has_dob.index, dtype=object)
    failing = ~(checks[0][0] & checks[1][0] & checks[2][0])
    for position in failing.nonzero()[0]:   # only the few rows not sent
        reasons.iloc[position] = "; ".join(label for ok, label in checks if not ok[position])
    return reasons


def output_columns(configured: list[Any]) -> list[tuple[str, str]]:
    """(contract field, header name) pairs; an item may be 'PID' or {'PID': 'PERSON_ID'}."""
    pairs = []
    for item in configured:
        if isinstance(item, dict) and len(item) == 1:
            (source, header), = item.items()
            pairs.append((str(source), str(header)))
        else:
            pairs.append((str(item), str(item)))
    return pairs


def render_dps_text(sent: Any, file_config: DpsFileSettings) -> bytes:
    """End_txt_file.txt as bytes: header, one line per PID, a final line end."""
    columns = output_columns(file_config.columns)
    delimiter, line_end = file_config.delimiter, file_config.line_ending
    unknown = [source for source, _ in columns if source not in sent.columns]
    if unknown:
        raise ConfigError(f"dps_file.columns: unknown column {unknown[0]}")
    table = sent[[source for source, _ in columns]].astype(str)
    lines = [delimiter.join(header for _, header in columns)]
    lines.extend(delimiter.join(values) for values in table.to_numpy(dtype=object).tolist())
    text = line_end.join(lines) + line_end
    try:
        return text.encode(file_config.encoding)
    except UnicodeEncodeError as exc:
        raise InputError(f"{file_config.send_name}: a value cannot be written as "
                         f"{file_config.encoding} (row {text[:exc.start].count(line_end)})"
                         ) from exc


def sent_index_csv(sent: Any) -> bytes:
    """PID -> COUNTY_CODE of the rows sent (the receive step's region lookup for DPS rows)
    and DISCHARGE_DATE of the chosen removal (IN_CARE, §10.5; YYYY-MM-DD, empty while open)."""
    index = sent[["PID", "COUNTY_CODE"]].assign(DISCHARGE_DATE=iso_text(sent["DISCHARGE_DATE"]))
    return index.to_csv(index=False, lineterminator="\n").encode("ascii")


def excluded_index_csv(excluded: Any) -> bytes:
    """PID -> REASONS of the rows not sent (the receive step's notes on unmatched episodes)
    and DISCHARGE_DATE of the chosen removal (IN_CARE, §10.5)."""
    index = excluded[["PID", "REASONS"]].assign(
        DISCHARGE_DATE=iso_text(excluded["DISCHARGE_DATE"]))
    return index.to_csv(index=False, lineterminator="\n").encode("ascii")


def iso_text(dates: Any) -> Any:
    """Dates as YYYY-MM-DD text, '' where there is none."""
    return dates.dt.strftime("%Y-%m-%d").fillna("")


def check_sanity(rows: int, last_rows: int | None, min_rows: int, max_change_pct: float,
                 file_name: str) -> None:
    """Refuse a file too small, or too different from the last upload for the period."""
    if rows < min_rows:
        raise InputError(f"{file_name}: {rows} rows, fewer than sanity.min_rows={min_rows}; "
                              f"nothing uploaded (use --force to send anyway)")
    if last_rows:
        change = abs(rows - last_rows) / last_rows * 100
        if change > max_change_pct:
            raise InputError(
                f"{file_name}: {rows} rows vs {last_rows} in the last upload for the period "
                f"({change:.1f}% change > sanity.max_change_pct={max_change_pct:g}); "
                f"nothing uploaded (use --force to send anyway)")



def export_view(rows: Any) -> Any:
    """Sent or Excluded rows for end_export.xlsx: DOB as a real date where it is one (the
    text file needs YYYYMMDD text; a reader needs a date), an unusable DOB as given."""
    import pandas as pd

    frame = rows.copy()
    text = frame["DOB"].astype(object)
    dates = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
    given = text.where(text.astype(str) != "", None)
    frame["DOB"] = dates.dt.date.astype(object).where(dates.notna(), given)
    return frame
