#!/usr/bin/env python3
"""Step 2 of the DFPS -> DPS exchange: fetch DPS's answer, check it, write the reports.

    python receivedps.py                  # wait for the answer to our latest upload
    python receivedps.py --no-wait        # look once; exit 3 when it is not there yet
    python receivedps.py --period FY2025Q2 --force   # regenerate a quarter from the archive

DPS writes Dfps-missing-person-results.txt and Dfps-missing-person-counts.txt into TO_DFPS
about two hours after our upload. This step waits until both are complete, fetches them,
checks them against the file we sent (control totals), joins them with IMPACT's runaway
episodes (sa_98) and the county -> region lookup, and writes three reports:
IMPACT_not_in_DPS, DPS_not_in_IMPACT and DPS_total_runaway_events (contract §4-§7).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import logging
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import util

log = logging.getLogger("receivedps")

STEP = "receive"
SA98_COLUMNS = ["EPISODE_ID", "PID", "LAST_NAME", "FIRST_NAME", "DOB", "RUNAWAY_DATE",
                "RETURN_DATE", "COUNTY_CODE"]
COUNTY_COLUMNS = ["COUNTY_CODE", "COUNTY_NAME", "REGION", "REGION_NAME"]
MAX_COUNTS_BYTES = 100_000   # three KEY|VALUE lines; anything this big is not a counts file
MKE_CODES = {"EMD", "EME", "EMI", "EMJ", "EMV", "EMO"}
NIC_PATTERN = re.compile(r"^M[0-9]{9}$")
DIGITS = re.compile(r"^[0-9]+$")  # ASCII only: str.isdigit() also accepts "²", which int() refuses
UNKNOWN_REGION = "Unknown"
IMPACT_COLUMNS = ["REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", "DOB",
                  "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NOTE"]
DPS_COLUMNS = ["REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "MKE",
               "ORI", "ENTRY_DATE", "DLC", "CLEAR_DATE"]
EXCEPTION_COLUMNS = ["FILE", "LINE", "KIND", "REASON"]
NOTE_NOT_SENT = "PID not in file sent to DPS"
NOTE_ON_EXCEPTIONS = "DPS row for this PID on Exceptions"
# Windows-1252 leaves these five bytes undefined; they are read as Latin-1 (contract §4).
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="receivedps.py",
        description="Wait for DPS's answer to our latest upload, fetch and check it, and write "
                    "the three reports (IMPACT_not_in_DPS, DPS_not_in_IMPACT, "
                    "DPS_total_runaway_events) to the share; mail a summary.",
        epilog="Exit codes: 0 ok (reported, or nothing new); 1 failed; 2 usage or config error; "
               "3 the answer is not there yet (--no-wait) or the maximum wait passed; "
               "75 another receive run holds the lock.")
    parser.add_argument("--period", metavar="FY2025Q3",
                        help="the period of the latest upload (default), or an earlier period "
                             "that was answered before, to regenerate its reports from the archive")
    parser.add_argument("--no-wait", action="store_true",
                        help="look for the answer once (two looks settle_seconds apart); exit 3 "
                             "when it is not there yet")
    parser.add_argument("--force", action="store_true",
                        help="process and publish even when the same inputs were processed before")
    parser.add_argument("--dry-run", action="store_true",
                        help="fetch and write the reports to the outbox only: leave the remote "
                             "files, deliver nothing, mail nothing")
    util.add_common_options(parser)
    return parser


# ---------------------------------------------------------------------------
# Pure logic: reading DPS's files (contract §4, §7)
# ---------------------------------------------------------------------------


@dataclass
class Problem:
    """A row that could not be used, or a warning, for the Exceptions sheet."""

    file: str
    line: int
    kind: str     # "row left out" or "warning"
    reason: str   # names the column, never the value

    def as_row(self) -> list[Any]:
        return [self.file, self.line, self.kind, self.reason]


def decode_partner_text(data: bytes, file_name: str) -> str:
    """UTF-8 (BOM allowed), else the whole file as Windows-1252; NUL bytes are a fault."""
    if not data.strip():
        raise util.InputError(f"{file_name}: empty file")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise util.InputError(f"{file_name}: binary content (NUL byte) on line {line}")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 BOM, also in front of a file that is not valid UTF-8
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="surrogateescape")
        return text.translate({0xDC00 + b: b for b in CP1252_UNDEFINED})


def split_physical_lines(text: str) -> tuple[list[str], bool]:
    """Lines without their ends (CRLF or LF), and whether the last one had a line end."""
    lines = text.split("\n")
    ends_with_newline = lines[-1] == ""
    if ends_with_newline:
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines], ends_with_newline


def parse_partner_date(text: str, date_format: str) -> dt.date | None:
    """A strict date: it must print back exactly as given (so 2025031 is not 2025-03-01)."""
    if date_format == "%Y%m%d":   # the contract's format: 3x faster than strptime
        if len(text) != 8 or not DIGITS.match(text) or text[0] == "0":
            return None
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            return None
    try:
        value = dt.datetime.strptime(text, date_format).date()
    except ValueError:
        return None
    return value if value.strftime(date_format) == text else None


@dataclass
class ResultsFile:
    records: Any                      # DataFrame of usable records, one per NIC, with LINE
    problems: list[Problem]
    data_lines: int                   # raw non-blank data lines (RESULT_RECORDS)
    distinct_pids: int                # distinct trimmed PID values (PERSONS_WITH_RECORDS)
    extra_columns: list[str]
    fault_pids: set[int] = field(default_factory=set)   # PIDs of rows left out


def parse_results(data: bytes, file_name: str, file_config: dict[str, Any], today: dt.date,
                  sent_pids: set[int]) -> ResultsFile:
    """Read Dfps-missing-person-results.txt per contract §4; whole-file faults raise."""
    import pandas as pd

    delimiter = file_config["delimiter"]
    wanted = [c.upper() for c in file_config["results_columns"]]
    lines, ends_with_newline = split_physical_lines(decode_partner_text(data, file_name))
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise util.InputError(f"{file_name}: empty file")
    header = [h.strip().upper() for h in lines[header_index].split(delimiter)]
    check_results_header(header, wanted, file_name, header_index + 1, delimiter)
    position = {name: header.index(name) for name in wanted}
    extra = [h for h in header if h not in wanted]
    width = len(header)

    data_line_numbers = [i for i in range(header_index + 1, len(lines)) if lines[i].strip()]
    last = len(lines) - 1
    if not ends_with_newline and last > header_index and lines[last].strip():
        fields = len(lines[last].split(delimiter))
        if fields != width:
            raise util.InputError(f"{file_name}: truncated last line {last + 1} (no line end "
                                  f"and {fields} of {width} fields)")

    problems: list[Problem] = []
    records: list[dict[str, Any]] = []
    raw_pids: set[str] = set()
    first_line_of_nic: dict[str, int] = {}
    fault_pids: set[int] = set()
    parse_date = DateParser(file_config["date_format"])
    for index in data_line_numbers:
        line_number = index + 1
        fields = [f.strip() for f in lines[index].split(delimiter)]
        if len(fields) > position["PID"]:
            raw_pids.add(fields[position["PID"]])
        if len(fields) != width:
            problems.append(Problem(file_name, line_number, "row left out",
                                    f"wrong number of fields ({len(fields)}, expected {width})"))
            _note_fault_pid(fields, position, fault_pids)
            continue
        values = {name: fields[position[name]] for name in wanted}
        record, reason, warnings = check_result_row(values, parse_date, today)
        nic = values["NIC"]
        if NIC_PATTERN.match(nic):
            if nic in first_line_of_nic:
                reason = f"NIC repeated (first on line {first_line_of_nic[nic]})"
            else:
                first_line_of_nic[nic] = line_number
        if reason is None and record["PID"] not in sent_pids:
            reason = "PID not in the file sent to DPS"
        if reason is not None:
            problems.append(Problem(file_name, line_number, "row left out", reason))
            _note_fault_pid(fields, position, fault_pids)
            continue
        problems.extend(Problem(file_name, line_number, "warning", w) for w in warnings)
        record["LINE"] = line_number
        records.append(record)

    columns = ["LINE", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "SEX", "RACE", "MKE",
               "ORI", "ENTRY_DATE", "DLC", "CLEAR_DATE"]
    frame = pd.DataFrame(records, columns=columns)
    for column in ("DOB", "ENTRY_DATE", "DLC", "CLEAR_DATE"):
        frame[column] = pd.to_datetime(frame[column])
    frame["PID"] = frame["PID"].astype("int64")
    return ResultsFile(frame, problems, len(data_line_numbers), len(raw_pids), extra, fault_pids)


def _note_fault_pid(fields: list[str], position: dict[str, int], fault_pids: set[int]) -> None:
    pid_index = position["PID"]
    if len(fields) > pid_index and DIGITS.match(fields[pid_index]):
        fault_pids.add(int(fields[pid_index]))


def check_results_header(header: list[str], wanted: list[str], file_name: str, line: int,
                         delimiter: str) -> None:
    if len(header) == 1:
        other = next((d for d in (",", "\t", ";") if d in header[0]), None)
        if other:
            raise util.InputError(f"{file_name}: wrong delimiter on line {line} "
                                  f"(found {other!r}, expected {delimiter!r})")
        raise util.InputError(f"{file_name}: no header line (line {line} is not a "
                              f"{delimiter!r}-delimited header)")
    if header and DIGITS.match(header[0]):
        raise util.InputError(f"{file_name}: no header line (line {line} looks like data)")
    for name in wanted:
        if name not in header:
            raise util.InputError(f"{file_name}: missing column {name} in the header on "
                                  f"line {line}")


class DateParser:
    """parse_partner_date with a memory: a results file repeats a few thousand dates."""

    def __init__(self, date_format: str) -> None:
        self.date_format = date_format
        self.seen: dict[str, dt.date | None] = {}

    def __call__(self, text: str) -> dt.date | None:
        if text not in self.seen:
            self.seen[text] = parse_partner_date(text, self.date_format)
        return self.seen[text]


def check_result_row(values: dict[str, str], parse_date: DateParser, today: dt.date
                     ) -> tuple[dict[str, Any], str | None, list[str]]:
    """Check one row: (record, reason it is left out or None, warnings for blanked fields)."""
    record: dict[str, Any] = dict(values)
    pid = values["PID"]
    if not DIGITS.match(pid):
        return record, "column PID: missing or not a whole number", []
    record["PID"] = int(pid)
    if not NIC_PATTERN.match(values["NIC"]):
        return record, "column NIC: missing or not M followed by 9 digits", []
    for column in ("ENTRY_DATE", "DLC"):
        parsed = parse_date(values[column])
        if parsed is None:
            return record, f"column {column}: missing or not a real date", []
        if parsed > today:
            return record, f"column {column}: after the run date", []
        record[column] = parsed
    warnings = []
    if values["MKE"] and values["MKE"].upper() not in MKE_CODES:
        warnings.append("column MKE: not a known code; blanked")
        record["MKE"] = ""
    else:
        record["MKE"] = values["MKE"].upper()
    ori = values["ORI"]
    if ori and not (len(ori) == 9 and ori.upper().startswith("TX")):
        warnings.append("column ORI: not 9 characters starting TX; blanked")
        record["ORI"] = ""
    for column in ("DOB", "CLEAR_DATE"):
        text = values[column]
        parsed = parse_date(text) if text else None
        if text and parsed is None:
            warnings.append(f"column {column}: not a real date; blanked")
        record[column] = parsed
    return record, None, warnings


def parse_counts(data: bytes, file_name: str, file_config: dict[str, Any]) -> dict[str, int]:
    """Read Dfps-missing-person-counts.txt: KEY|VALUE lines, no header (contract §4)."""
    delimiter = file_config["delimiter"]
    keys = {v.upper(): k for k, v in file_config["counts_keys"].items()}
    lines, ends_with_newline = split_physical_lines(decode_partner_text(data, file_name))
    counts: dict[str, int] = {}
    seen_on: dict[str, int] = {}
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(delimiter)]
        if len(fields) != 2:
            if index == len(lines) - 1 and not ends_with_newline:
                raise util.InputError(f"{file_name}: truncated last line {index + 1}")
            raise util.InputError(f"{file_name}: line {index + 1}: expected KEY{delimiter}VALUE")
        key = fields[0].upper()
        if key not in keys:
            continue
        if key in seen_on:
            raise util.InputError(f"{file_name}: line {index + 1}: {key} repeated "
                                  f"(first on line {seen_on[key]})")
        if not DIGITS.match(fields[1]):
            raise util.InputError(f"{file_name}: line {index + 1}: value of {key} is not a "
                                  f"whole number")
        seen_on[key] = index + 1
        counts[keys[key]] = int(fields[1])
    for internal, key in file_config["counts_keys"].items():
        if internal not in counts:
            raise util.InputError(f"{file_name}: key {key} is missing")
    return counts


def check_control_totals(counts: dict[str, int], sent_rows: int, results: ResultsFile,
                         counts_name: str, results_name: str, keys: dict[str, str]) -> None:
    """The three control totals must agree, else the exchange is broken (contract §4)."""
    checks = [
        ("records_received", sent_rows, "data lines in the file we sent"),
        ("result_records", results.data_lines, f"data lines in {results_name}"),
        ("persons_with_records", results.distinct_pids, f"distinct PIDs in {results_name}"),
    ]
    for internal, expected, what in checks:
        if counts[internal] != expected:
            raise util.InputError(
                f"{counts_name}: {keys[internal]}={counts[internal]} but there are {expected} "
                f"{what}; control totals disagree, nothing published")


# ---------------------------------------------------------------------------
# Pure logic: IMPACT episodes (sa_98) and regions
# ---------------------------------------------------------------------------


def check_episodes(sa98: Any, source_name: str, first_line: int) -> tuple[Any, list[Problem]]:
    """Rows without PID or RUNAWAY_DATE, and repeated EPISODE_IDs, are left out; a return
    before the runaway is a typo: the episode is treated as open, with a warning."""
    import pandas as pd

    frame = sa98.copy().reset_index(drop=True)
    frame["LINE"] = range(first_line, first_line + len(frame))
    frame["PID"] = pd.to_numeric(frame["PID"], errors="coerce")
    frame["EPISODE_ID"] = pd.to_numeric(frame["EPISODE_ID"], errors="coerce")
    for column in ("DOB", "RUNAWAY_DATE", "RETURN_DATE"):
        frame[column] = util.plain_dates(frame[column])
    frame["COUNTY_CODE"] = pd.to_numeric(frame["COUNTY_CODE"], errors="coerce")
    problems: list[Problem] = []
    reasons = pd.Series("", index=frame.index, dtype=object)
    reasons[frame["PID"].isna()] = "column PID: missing"
    reasons[(reasons == "") & frame["RUNAWAY_DATE"].isna()] = "column RUNAWAY_DATE: missing"
    reasons[(reasons == "") & frame["EPISODE_ID"].isna()] = "column EPISODE_ID: missing"
    usable = frame[reasons == ""]
    repeated = usable["EPISODE_ID"].duplicated(keep="first")
    first_line = usable.drop_duplicates("EPISODE_ID").set_index("EPISODE_ID")["LINE"]
    for index in usable.index[repeated.to_numpy()]:
        reasons[index] = (f"EPISODE_ID repeated (first on line "
                          f"{int(first_line[frame.at[index, 'EPISODE_ID']])})")
    for index in frame.index[reasons != ""]:
        problems.append(Problem(source_name, int(frame.at[index, "LINE"]), "row left out",
                                reasons[index]))
    episodes = frame[reasons == ""].copy()
    typo = episodes["RETURN_DATE"].notna() & (episodes["RETURN_DATE"] < episodes["RUNAWAY_DATE"])
    for line in episodes.loc[typo, "LINE"]:
        problems.append(Problem(source_name, int(line), "warning",
                                "RETURN_DATE before RUNAWAY_DATE; episode treated as open"))
    episodes["OPEN_FOR_MATCHING"] = episodes["RETURN_DATE"].isna() | typo
    episodes["PID"] = episodes["PID"].astype("int64")
    episodes["EPISODE_ID"] = episodes["EPISODE_ID"].astype("int64")
    problems.sort(key=lambda p: p.line)
    return episodes.reset_index(drop=True), problems


def region_label(region: Any, region_name: Any) -> str:
    """DFPS writes a region as '6-Houston'."""
    name = str(region_name).strip()
    number = str(int(region))
    return name if name.startswith(f"{number}-") else f"{number}-{name}"


@dataclass
class Regions:
    by_county: dict[int, tuple[str, str, int]]   # county code -> (region label, county, number)
    labels: list[tuple[int, str]]                 # (number, label) for regions 1..11

    def of(self, county: Any) -> tuple[str, str, int]:
        try:
            return self.by_county[int(county)]
        except (KeyError, TypeError, ValueError):
            return UNKNOWN_REGION, "", 99


def build_regions(county_region: Any) -> Regions:
    by_county = {}
    labels = {}
    for row in county_region.itertuples(index=False):
        label = region_label(row.REGION, row.REGION_NAME)
        by_county[int(row.COUNTY_CODE)] = (label, str(row.COUNTY_NAME), int(row.REGION))
        labels[int(row.REGION)] = label
    for number in range(1, 12):  # regions 1-11 are always listed, even if the lookup lacks one
        labels.setdefault(number, str(number))
    return Regions(by_county, sorted(labels.items()))


# ---------------------------------------------------------------------------
# Pure logic: matching (contract §5)
# ---------------------------------------------------------------------------


def match_records(records: Any, episodes: Any, window_days: int) -> tuple[set[int], set[str]]:
    """Episode ids that match some DPS record, and NICs that match some episode.

    R matches E when R.PID = E.PID and RUNAWAY - W <= DLC <= RETURN + W (no upper bound while
    E is open). Many-to-many.
    """
    import pandas as pd

    if records.empty or episodes.empty:
        return set(), set()
    pairs = records[["PID", "NIC", "DLC"]].merge(
        episodes[["PID", "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE", "OPEN_FOR_MATCHING"]],
        on="PID", how="inner")
    window = pd.Timedelta(days=window_days)
    after_start = pairs["DLC"] >= pairs["RUNAWAY_DATE"] - window
    before_end = pairs["OPEN_FOR_MATCHING"] | (pairs["DLC"] <= pairs["RETURN_DATE"] + window)
    matched = pairs[after_start & before_end]
    return set(matched["EPISODE_ID"].astype(int)), set(matched["NIC"])


# ---------------------------------------------------------------------------
# Pure logic: the three reports (contract §6)
# ---------------------------------------------------------------------------


@dataclass
class Reconciliation:
    impact_not_in_dps: Any     # DataFrame, IMPACT_COLUMNS + sort keys
    dps_not_in_impact: Any     # DataFrame, DPS_COLUMNS
    period_records: Any        # DPS records with DLC in the period, DPS_COLUMNS + IN_IMPACT
    totals: list[list[Any]]    # REGION, month 1..3, TOTAL rows
    months: list[str]


def reconcile(results: ResultsFile, episodes: Any, sent: Any, regions: Regions,
              period: util.Period, today: dt.date, window_days: int) -> Reconciliation:
    import pandas as pd

    start, end = pd.Timestamp(period.start), pd.Timestamp(period.end)
    matched_episodes, matched_nics = match_records(results.records, episodes, window_days)
    sent_county = dict(zip(sent["PID"].tolist(), sent["COUNTY_CODE"].tolist(), strict=True))

    in_period = episodes[(episodes["RUNAWAY_DATE"] >= start) & (episodes["RUNAWAY_DATE"] <= end)]
    missing = in_period[~in_period["EPISODE_ID"].isin(matched_episodes)].copy()
    impact_rows = impact_report_rows(missing, sent_county, regions, results.fault_pids, today)

    records = results.records
    period_records = records[(records["DLC"] >= start) & (records["DLC"] <= end)].copy()
    period_records["IN_IMPACT"] = period_records["NIC"].isin(matched_nics).map({True: "Y",
                                                                               False: "N"})
    dps_rows = dps_report_rows(period_records, sent_county, regions)
    not_in_impact = dps_rows[dps_rows["IN_IMPACT"] == "N"].drop(columns="IN_IMPACT")
    months = period.months()
    totals = totals_by_region(dps_rows, regions, months)
    return Reconciliation(impact_rows, not_in_impact.reset_index(drop=True), dps_rows, totals,
                          months)


def impact_report_rows(missing: Any, sent_county: dict[int, Any], regions: Regions,
                       fault_pids: set[int], today: dt.date) -> Any:
    import pandas as pd

    def county_of(row: Any) -> Any:
        """The episode's county; the child's county from the sent data only when it has none."""
        if not pd.isna(row.COUNTY_CODE):
            return row.COUNTY_CODE
        return sent_county.get(int(row.PID))

    frame = missing.copy()
    county = [county_of(row) for row in frame.itertuples(index=False)]
    looked_up = [regions.of(c) for c in county]
    frame["REGION"] = [r[0] for r in looked_up]
    frame["COUNTY_NAME"] = [r[1] for r in looked_up]
    frame["REGION_NUMBER"] = [r[2] for r in looked_up]
    until = frame["RETURN_DATE"].where(~frame["OPEN_FOR_MATCHING"], pd.Timestamp(today))
    frame["DAYS_MISSING"] = (until - frame["RUNAWAY_DATE"]).dt.days.astype("Int64")
    frame["NOTE"] = [NOTE_NOT_SENT if pid not in sent_county
                     else NOTE_ON_EXCEPTIONS if pid in fault_pids else ""
                     for pid in frame["PID"]]
    frame = frame.sort_values(["REGION_NUMBER", "RUNAWAY_DATE", "PID", "EPISODE_ID"],
                              kind="mergesort")
    return frame[IMPACT_COLUMNS].reset_index(drop=True)


def dps_report_rows(records: Any, sent_county: dict[int, Any], regions: Regions) -> Any:
    frame = records.copy()
    looked_up = [regions.of(sent_county.get(int(pid))) for pid in frame["PID"]]
    frame["REGION"] = [r[0] for r in looked_up]
    frame["COUNTY_NAME"] = [r[1] for r in looked_up]
    frame["REGION_NUMBER"] = [r[2] for r in looked_up]
    frame = frame.sort_values(["REGION_NUMBER", "DLC", "PID", "NIC"], kind="mergesort")
    return frame[[*DPS_COLUMNS, "IN_IMPACT"]].reset_index(drop=True)


def totals_by_region(dps_rows: Any, regions: Regions, months: list[str]) -> list[list[Any]]:
    """REGION x month of DLC counts: regions 1-11 always, Unknown only when it has rows,
    STATEWIDE last."""
    month_of = dps_rows["DLC"].dt.strftime("%Y-%m")
    counts = dps_rows.assign(MONTH=month_of).groupby(["REGION", "MONTH"]).size().to_dict()
    labels = [label for _, label in regions.labels]
    if (dps_rows["REGION"] == UNKNOWN_REGION).any():
        labels.append(UNKNOWN_REGION)
    rows = []
    for label in labels:
        values = [int(counts.get((label, month), 0)) for month in months]
        rows.append([label, *values, sum(values)])
    statewide = [sum(row[i] for row in rows) for i in range(1, len(months) + 2)]
    rows.append(["STATEWIDE", *statewide])
    return rows


def exception_rows(problems: list[Problem]) -> list[list[Any]]:
    return [p.as_row() for p in problems]


def report_file_names(period: util.Period) -> dict[str, str]:
    label = period.file_label
    return {"impact": f"IMPACT_not_in_DPS_{label}.xlsx",
            "dps": f"DPS_not_in_IMPACT_{label}.xlsx",
            "totals": f"DPS_total_runaway_events_{label}.xlsx"}


def build_report_sheets(recon: Reconciliation, about: list[list[Any]],
                        problems: list[Problem]) -> dict[str, list[util.Sheet]]:
    """The sheets of each of the three workbooks."""
    from openpyxl.chart import BarChart, Reference

    exceptions = util.Sheet("Exceptions", EXCEPTION_COLUMNS, exception_rows(problems))
    about_sheet = util.Sheet("About", ["ITEM", "VALUE"], about)
    chart = BarChart()
    chart.title = "DPS runaway events by region"
    chart.y_axis.title = "records"
    chart.x_axis.title = "region"
    region_count = len(recon.totals) - 1   # without STATEWIDE
    total_column = len(recon.months) + 2
    # write-only sheets cannot be referenced before they exist: refer by title and bounds.
    chart_data = Reference(range_string=f"'Totals by region'!${_col(total_column)}$1:"
                                        f"${_col(total_column)}${region_count + 1}")
    chart_labels = Reference(range_string=f"'Totals by region'!$A$2:$A${region_count + 1}")
    chart.add_data(chart_data, titles_from_data=True)
    chart.set_categories(chart_labels)
    chart.legend = None
    chart.width, chart.height = 22, 11
    return {
        "impact": [util.Sheet("IMPACT not in DPS", IMPACT_COLUMNS,
                              util.frame_rows(recon.impact_not_in_dps)), exceptions, about_sheet],
        "dps": [util.Sheet("DPS not in IMPACT", DPS_COLUMNS,
                           util.frame_rows(recon.dps_not_in_impact)), exceptions, about_sheet],
        "totals": [util.Sheet("Totals by region", ["REGION", *recon.months, "TOTAL"],
                              recon.totals, chart=chart, chart_anchor=f"{_col(total_column + 2)}2"),
                   util.Sheet("Records", [*DPS_COLUMNS, "IN_IMPACT"],
                              util.frame_rows(recon.period_records)), exceptions, about_sheet],
    }


def _col(number: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(number)


# ---------------------------------------------------------------------------
# Which upload are we answering? (manifests)
# ---------------------------------------------------------------------------


def latest_upload(state_dir: Path) -> dict[str, Any] | None:
    uploads = [m for m in util.read_manifests(state_dir, "send") if m.get("outcome") == "uploaded"]
    return uploads[-1] if uploads else None


def last_report_for(state_dir: Path, period_label: str) -> dict[str, Any] | None:
    done = [m for m in util.read_manifests(state_dir, STEP)
            if m.get("outcome") == "reported" and m.get("period") == period_label]
    return done[-1] if done else None


def interrupted_attempt(state_dir: Path, send_run_id: str, run_id: str
                        ) -> dict[str, Any] | None:
    """The latest earlier receive of this upload when it archived DPS's answer but never
    finished (killed, or failed later, e.g. at delivery): a rerun goes on from its files."""
    attempts = [m for m in util.read_manifests(state_dir, STEP)
                if m.get("send_run_id") == send_run_id and m.get("run_id") != run_id]
    if not attempts:
        return None
    latest = attempts[-1]
    archived = latest.get("steps", {}).get("archive", {}).get("status") == "done"
    unfinished = latest.get("outcome") not in ("reported", "nothing new", "dry run")
    return latest if archived and unfinished and latest.get("archived") else None


def step_done(manifest: dict[str, Any] | None, step: str) -> bool:
    return bool(manifest) and manifest.get("steps", {}).get(step, {}).get("status") == "done"


def choose_exchange(state_dir: Path, period_text: str | None
                    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the send manifest we answer, the last successful receive of it or None).

    The default is the latest upload. An earlier period can be named only when it was
    answered before: its archived DPS files are reprocessed.
    """
    latest = latest_upload(state_dir)
    if latest is None:
        raise util.DpsError("no upload recorded in the send manifests; run send2dps.py first")
    wanted = util.parse_period(period_text).label if period_text else latest["period"]
    if wanted == latest["period"]:
        reported = last_report_for(state_dir, wanted)
        if reported and reported.get("send_run_id") != latest["run_id"]:
            reported = None
        return latest, reported
    reported = last_report_for(state_dir, wanted)
    if reported is None:
        raise util.UsageError(f"--period {wanted}: the latest upload is {latest['period']} "
                              f"(run {latest['run_id']}) and {wanted} has no earlier answer in "
                              f"the archive")
    sends = {m["run_id"]: m for m in util.read_manifests(state_dir, "send")}
    return sends[reported["send_run_id"]], reported


# ---------------------------------------------------------------------------
# I/O: waiting for and fetching DPS's answer
# ---------------------------------------------------------------------------


def remote_names(file_config: dict[str, Any], period: util.Period, today: dt.date
                 ) -> tuple[str, str]:
    values = {"period": period.file_label, "date": today.strftime("%Y%m%d")}
    return (file_config["results_name"].format(**values),
            file_config["counts_name"].format(**values))


@dataclass
class Look:
    files: dict[str, util.RemoteFile | None]
    at: float
    records_received: int | None = None
    counts_error: str | None = None      # why the counts file could not be read, if so

    def signature(self) -> tuple[Any, ...]:
        return tuple((f.size, f.mtime) if f else None for f in self.files.values())


def look_at_answer(session: util.SftpSession, folder: str, names: tuple[str, str],
                   file_config: dict[str, Any]) -> Look:
    files = {name: session.stat_file(util.join_remote(folder, name)) for name in names}
    look = Look(files, time.monotonic())
    counts_file = files[names[1]]
    if counts_file is not None and counts_file.size >= MAX_COUNTS_BYTES:
        look.counts_error = f"{names[1]}: {counts_file.size} bytes, too large for a counts file"
    elif counts_file is not None:
        try:
            counts = parse_counts(session.read_bytes(counts_file.path), names[1], file_config)
            look.records_received = counts["records_received"]
        except util.InputError as exc:
            look.counts_error = str(exc)   # still being written, or broken: judged by settling
    return look


def answer_state(look: Look, upload: dict[str, Any]) -> str:
    """'' when this look could be the complete answer, else why not (for the progress line)."""
    missing = [name for name, f in look.files.items() if f is None]
    if missing:
        return "waiting for " + " and ".join(missing)
    older = [name for name, f in look.files.items() if f and f.mtime < upload["remote_mtime"]]
    if older:
        return "only an older answer is there (" + ", ".join(older) + ")"
    if look.counts_error:
        return f"counts file not readable yet ({look.counts_error})"
    if look.records_received != upload["rows_sent"]:
        return (f"counts file says RECORDS_RECEIVED={look.records_received}, "
                f"we sent {upload['rows_sent']}")
    return ""


def wait_for_answer(config: dict[str, Any], upload: dict[str, Any], names: tuple[str, str],
                    no_wait: bool) -> Look:
    """Poll until both files are there, newer than our upload, RECORDS_RECEIVED matches, and
    size and mtime are unchanged across two looks settle_seconds apart (contract §4)."""
    receive = config["receive"]
    folder = config["sftp"]["answer_folder"]
    started = time.monotonic()
    deadline = started + receive["max_wait_hours"] * 3600
    previous: Look | None = None
    polls = 0
    while True:
        polls += 1
        with util.connect_sftp(config["sftp"]) as session:
            look = look_at_answer(session, folder, names, config["dps_file"])
        state = answer_state(look, upload)
        unchanged = (previous is not None and previous.signature() == look.signature()
                     and look.at - previous.at >= receive["settle_seconds"] - 0.01)
        if unchanged and not state and not answer_state(previous, upload):
            log.info("answer complete after %d look(s), %.0f s", polls, time.monotonic() - started)
            return look
        if unchanged and look.counts_error and state.startswith("counts file not readable"):
            # Written completely (it stopped changing) and still unreadable: a broken answer.
            raise util.InputError(f"{look.counts_error}; nothing published")
        waited = (time.monotonic() - started) / 60
        log.info("poll %d: %s (waited %.1f of %.0f min)", polls,
                 state or "answer there; checking it has stopped changing", waited,
                 receive["max_wait_hours"] * 60)
        if no_wait and polls >= 2:
            raise util.NotReadyError(f"DPS answer not complete yet in {folder}: "
                                     f"{state or 'still changing'} (--no-wait)")
        pause = receive["settle_seconds"] if (not state or no_wait) else receive["poll_seconds"]
        if time.monotonic() + pause > deadline:
            raise util.WaitExpiredError(f"DPS answer not complete after "
                                     f"{receive['max_wait_hours']:g} h in {folder}: "
                                     f"{state or 'still changing'}")
        previous = look
        time.sleep(pause)


def answer_still_on_server(config: dict[str, Any], upload: dict[str, Any],
                           names: tuple[str, str]) -> Look | None:
    """DPS's files when they are still in TO_DFPS (to clean them up after an interrupted run)."""
    with util.connect_sftp(config["sftp"]) as session:
        look = look_at_answer(session, config["sftp"]["answer_folder"], names,
                              config["dps_file"])
    present = all(f is not None and f.mtime >= upload["remote_mtime"] for f in look.files.values())
    return look if present else None


def fetch_answer(config: dict[str, Any], look: Look, staging: Path) -> dict[str, Path]:
    """Download both files to staging; a file changing during the fetch is fetched once more,
    then it is a whole-file fault."""
    sftp = config["sftp"]
    fetched = {}
    with util.connect_sftp(sftp) as session:
        for name, remote in look.files.items():
            assert remote is not None
            for attempt in (1, 2):
                try:
                    fetched[name] = session.download(remote, staging, sftp["download_prefetch"],
                                                     sftp["max_concurrent_prefetch_requests"],
                                                     sftp["download_request_kib"])
                    break
                except util.FileChangedError as exc:
                    if attempt == 2:
                        raise util.InputError(f"{name}: changed while it was fetched, twice in "
                                              f"a row; nothing published") from exc
                    log.warning("%s changed while it was fetched; fetching it once more", name)
                    remote = session.stat_file(remote.path)
                    if remote is None:
                        raise util.InputError(f"{name}: disappeared during the fetch") from exc
            log.info("fetched %s (%d bytes)", name, fetched[name].stat().st_size)
    return fetched


def archived_answer(reported: dict[str, Any]) -> dict[str, Path]:
    files = {Path(p).name.split("_", 1)[1]: Path(p) for p in reported.get("archived", [])}
    for name, path in files.items():
        if not path.is_file():
            raise util.InputError(f"{path}: archived DPS file {name} is missing")
    return files


def keep_refused_answer(archive_folder: Path, run_id: str, files: list[Path]) -> list[str]:
    """A refused answer is evidence for DPS: keep a copy before DPS overwrites it."""
    kept = []
    for path in files:
        target = archive_folder / f"{run_id}_refused_{path.name}"
        util.copy_verified(path, target)
        kept.append(str(target))
    log.info("kept the refused answer in %s", archive_folder)
    return kept


def clean_up_remote(config: dict[str, Any], look: Look, run_id: str) -> None:
    """Only after the reports are published: move, delete or keep DPS's files remote-side."""
    sftp = config["sftp"]
    action = sftp["after_processing"]
    if action == "keep":
        return
    with util.connect_sftp(sftp) as session:
        for name, remote in look.files.items():
            assert remote is not None
            if action == "delete":
                session.remove(remote.path)
                log.info("removed %s from the server", remote.path)
            else:
                target = session.move(remote.path, sftp["processed_folder"], f"{run_id}_{name}")
                log.info("moved %s to %s on the server", remote.path, target)


# ---------------------------------------------------------------------------
# I/O: sources
# ---------------------------------------------------------------------------


def read_sent_file(upload: dict[str, Any], file_config: dict[str, Any]) -> Any:
    """The rows we sent (PID, COUNTY_CODE) from the send's archive: the text file DPS got,
    and the Sent sheet's county index beside it."""
    import pandas as pd

    archived = [Path(p) for p in upload.get("archived", [])]
    index_file = next((p for p in archived if p.name.endswith("_sent_index.csv")), None)
    if index_file is None or not index_file.is_file():
        raise util.InputError(f"send run {upload['run_id']}: archived sent index is missing")
    sent = pd.read_csv(index_file, dtype={"PID": "int64"}, keep_default_na=False,
                       na_values=[""])
    sent["COUNTY_CODE"] = pd.to_numeric(sent["COUNTY_CODE"], errors="coerce")
    return sent


def read_sources(config: dict[str, Any], period: util.Period) -> tuple[Any, str, int, Any]:
    """(sa_98 episodes, their source name for Exceptions, the line number of their first row,
    the county_region lookup), through one database connection pool."""
    engine = util.open_configured_database(config["database"])
    try:
        sa98, name, first_line = read_sa98(config, period, engine)
        county_region = util.run_query(engine, config["database"]["sql_folder"],
                                       "county_region", {}, COUNTY_COLUMNS)
    finally:
        engine.dispose()
    return sa98, name, first_line, county_region


def read_sa98(config: dict[str, Any], period: util.Period, engine: Any
              ) -> tuple[Any, str, int]:
    """(episodes, source name for Exceptions, line number of the first row)."""
    window = dt.timedelta(days=config["matching"]["match_window_days"])
    from_date, to_date = period.start - window, period.end + window
    source = config["sa_98"]
    if source["source"] == "query":
        frame = util.run_query(engine, config["database"]["sql_folder"], "sa_98",
                               {"from_date": from_date,
                                "to_date_next": to_date + dt.timedelta(days=1)},
                               SA98_COLUMNS)
        return frame, "sa_98 query", 1
    if source["source"] != "file":
        raise util.ConfigError("sa_98.source: expected query or file")
    return read_sa98_extract(config, from_date, to_date), Path(source["extract_file"]).name, 2


def read_sa98_extract(config: dict[str, Any], from_date: dt.date, to_date: dt.date) -> Any:
    import pandas as pd

    path = util.resolve_config_path(config, config["sa_98"]["extract_file"])
    try:
        if path.suffix.lower() in (".xlsx", ".xlsm"):
            frame = pd.read_excel(path, dtype=object)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise util.ConfigError(f"sa_98.extract_file: file not found: {path}") from exc
    except (OSError, ValueError) as exc:
        raise util.InputError(f"{path}: cannot read the sa_98 extract: {exc}") from exc
    frame = frame.rename(columns=config["sa_98"]["columns"])
    frame.columns = [str(c).strip().upper() for c in frame.columns]
    missing = [c for c in SA98_COLUMNS if c not in frame.columns]
    if missing:
        raise util.InputError(f"{path}: missing column {missing[0]} (map it in sa_98.columns)")
    frame = frame[SA98_COLUMNS]
    runaway = util.plain_dates(frame["RUNAWAY_DATE"])
    back = util.plain_dates(frame["RETURN_DATE"])
    overlaps = (runaway.isna() | (runaway <= pd.Timestamp(to_date))) & (
        back.isna() | (back >= pd.Timestamp(from_date)) | (back < runaway))
    return frame[overlaps].reset_index(drop=True)


def frame_checksum(frame: Any) -> str:
    """SHA-256 over the column names and pandas' row hashes (fixed key, so stable across runs):
    the same query result gives the same checksum, for the idempotency check."""
    import pandas as pd

    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
    return util.sha256_bytes("|".join(map(str, frame.columns)).encode("utf-8") + rows)


# ---------------------------------------------------------------------------
# I/O: publishing (outbox -> share), mail
# ---------------------------------------------------------------------------


def queued_reports(outbox: Path) -> list[Path]:
    folder = outbox / "reports"
    return sorted(folder.glob("*/*.xlsx")) if folder.is_dir() else []


def deliver_reports(config: dict[str, Any], run_id: str) -> list[str]:
    """Copy every queued report to the share (temp name, rename, size and SHA-256 checked),
    then archive it and take it off the queue. A failure leaves the queue as it is."""
    share = config["folders"]["share"]
    mode = int(config["reports"]["share_file_mode"], 8)
    delivered = []
    if not share.is_dir():
        raise util.DeliveryError(f"share {share}: not reachable (no such folder); reports stay "
                                 f"queued in {config['folders']['outbox'] / 'reports'}")
    for report in queued_reports(config["folders"]["outbox"]):
        target = share / report.name
        try:
            util.copy_verified(report, target, mode)
        except util.LocalFileError as exc:
            reason = util.describe_os_error(exc.__cause__) \
                if isinstance(exc.__cause__, OSError) else str(exc)
            raise util.DeliveryError(f"share {target}: cannot write ({reason}); reports stay "
                                     f"queued in {report.parent}") from exc
        archive_folder = config["folders"]["archive"] / STEP / report.parent.name
        util.archive_file(report, archive_folder, run_id)
        report.unlink()
        delivered.append(str(target))
        log.info("delivered %s", target)
    return delivered


def region_counts(frame: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in frame.groupby("REGION", sort=False).size().items()}


def success_mail(period: util.Period, recon: Reconciliation, delivered: list[str],
                 problems: int, run_id: str) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the success mail: counts and file locations only."""
    subject = f"[DPS exchange] reports for {period.label} are ready"
    columns = ["Region", "IMPACT not in DPS", "DPS not in IMPACT", "DPS runaway events"]
    impact = region_counts(recon.impact_not_in_dps)
    dps = region_counts(recon.dps_not_in_impact)
    rows = [[row[0], impact.get(row[0], 0), dps.get(row[0], 0), row[-1]] for row in recon.totals]
    rows[-1][1:3] = [len(recon.impact_not_in_dps), len(recon.dps_not_in_impact)]
    text_lines = [f"The DPS missing-person reports for {period.label} "
                  f"({period.start} to {period.end}) are on the share:", ""]
    text_lines += [f"  {p}" for p in delivered] + ["", "  ".join(f"{c:>20}" for c in columns)]
    text_lines += ["  ".join(f"{str(v):>20}" for v in row) for row in rows]
    text_lines += ["", f"Rows on the Exceptions sheets: {problems}", f"Run id: {run_id}"]
    cells = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                   for row in rows)
    files = "".join(f"<li>{html.escape(p)}</li>" for p in delivered)
    html_text = (f"<p>The DPS missing-person reports for {period.label} are on the share:</p>"
                 f"<ul>{files}</ul><table border='1' cellpadding='4'><tr>{cells}</tr>{body}"
                 f"</table><p>Rows on the Exceptions sheets: {problems}<br>Run id: {run_id}</p>")
    return subject, "\n".join(text_lines) + "\n", html_text


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def run_receive(args: argparse.Namespace, config: dict[str, Any], timer: util.StepTimer) -> int:
    """The receive step in order: which upload, wait, fetch, check, sources, reconcile,
    reports, archive, deliver, mail, remote clean-up."""
    folders = config["folders"]
    state_dir = folders["state"]
    manifest = timer.manifest
    run_id = manifest["run_id"]
    today = util.run_date(config["run"]["time_zone"], args.as_of)
    upload, reported = choose_exchange(state_dir, args.period)
    period = util.parse_period(upload["period"])
    file_config = config["dps_file"]
    names = remote_names(file_config, period, today)
    manifest.update(period=period.label, run_date=today.isoformat(), send_run_id=upload["run_id"],
                    dry_run=args.dry_run, force=args.force)
    timer.save()
    log.info("receive %s: answer to upload %s (%d rows)", period.label, upload["run_id"],
             upload["rows_sent"])

    look = None
    prior = None if reported else interrupted_attempt(state_dir, upload["run_id"], run_id)
    if reported is not None:
        log.info("upload %s was answered before (run %s); using the archived DPS files",
                 upload["run_id"], reported["run_id"])
        local = archived_answer(reported)
    elif prior is not None:
        log.info("run %s stopped after archiving DPS's answer; going on from its archived files",
                 prior["run_id"])
        manifest["resumes_run"] = prior["run_id"]
        local = archived_answer(prior)
        if not args.dry_run:
            look = answer_still_on_server(config, upload, names)
    else:
        with timer.step("wait"):
            look = wait_for_answer(config, upload, names, args.no_wait)
        with timer.step("fetch"):
            local = fetch_answer(config, look, folders["staging"] / run_id)
    results_path, counts_path = local[names[0]], local[names[1]]

    with timer.step("checks"):
        sent = read_sent_file(upload, file_config)
        results_bytes, counts_bytes = results_path.read_bytes(), counts_path.read_bytes()
        try:
            results = parse_results(results_bytes, names[0], file_config, today,
                                    set(sent["PID"].tolist()))
            counts = parse_counts(counts_bytes, names[1], file_config)
            check_control_totals(counts, upload["rows_sent"], results, names[1], names[0],
                                 file_config["counts_keys"])
        except util.InputError:
            if look is not None and not args.dry_run:
                manifest["refused_answer"] = keep_refused_answer(
                    folders["archive"] / STEP / period.file_label, run_id,
                    [results_path, counts_path])
            raise
    log.info("%s: %d data lines, %d usable records, %d rows left out, %d warnings", names[0],
             results.data_lines, len(results.records),
             sum(p.kind == "row left out" for p in results.problems),
             sum(p.kind == "warning" for p in results.problems))

    with timer.step("sources"):
        sa98, sa98_name, first_line, county_region = read_sources(config, period)
        episodes, episode_problems = check_episodes(sa98, sa98_name, first_line)
        regions = build_regions(county_region)
    inputs = {names[0]: util.sha256_bytes(results_bytes), names[1]: util.sha256_bytes(counts_bytes),
              sa98_name: frame_checksum(sa98)}
    manifest.update(inputs=inputs, results_lines=results.data_lines, episodes=len(sa98))
    same_inputs = reported is not None and reported.get("inputs") == inputs
    if same_inputs and not args.force and not args.dry_run:
        manifest["outcome"] = "nothing new"
        log.info("nothing new: %s was already reported from the same inputs (run %s)",
                 period.label, reported["run_id"])
        if queued_reports(folders["outbox"]):
            manifest["delivered"] = deliver_reports(config, run_id)
        send_pending_mail(config, reported)
        return timer.finish(util.EXIT_OK)

    with timer.step("reconcile"):
        window = config["matching"]["match_window_days"]
        recon = reconcile(results, episodes, sent, regions, period, today, window)
    problems = results.problems + episode_problems
    manifest.update(impact_not_in_dps=len(recon.impact_not_in_dps),
                    dps_not_in_impact=len(recon.dps_not_in_impact),
                    dps_events=len(recon.period_records), exceptions=len(problems))
    log.info("IMPACT not in DPS: %d; DPS not in IMPACT: %d; DPS events in period: %d; "
             "exceptions: %d", len(recon.impact_not_in_dps), len(recon.dps_not_in_impact),
             len(recon.period_records), len(problems))

    with timer.step("reports"):
        input_rows = {names[0]: results.data_lines,
                      names[1]: len([x for x in counts_bytes.splitlines() if x.strip()]),
                      sa98_name: len(sa98)}
        about = about_rows(period, run_id, today, window, inputs, input_rows, results, problems)
        report_dir = folders["outbox"] / ("dry-run" if args.dry_run else "reports") / \
            period.file_label
        written = write_reports(recon, about, problems, report_names := report_file_names(period),
                                report_dir, config["reports"]["max_rows_per_sheet"])
    manifest["reports"] = written
    if args.dry_run:
        manifest["outcome"] = "dry run"
        log.info("dry run: reports in %s; remote files left, nothing delivered or mailed",
                 report_dir)
        return timer.finish(util.EXIT_OK)

    if reported is None and prior is None:
        with timer.step("archive"):
            archive_folder = folders["archive"] / STEP / period.file_label
            manifest["archived"] = [str(util.archive_file(p, archive_folder, run_id))
                                    for p in (results_path, counts_path)]
    else:
        manifest["archived"] = (reported or prior)["archived"]
    with timer.step("deliver"):
        manifest["delivered"] = deliver_reports(config, run_id)
    if step_done(prior, "mail"):
        # The one gap no protocol closes: killed after the SMTP server took the mail but before
        # that was recorded. Then the mail goes twice; once recorded, never again.
        log.info("the summary mail was sent by run %s; not sent again", prior["run_id"])
    else:
        with timer.step("mail"):
            subject, text, html_text = success_mail(period, recon, manifest["delivered"],
                                                    len(problems), run_id)
            attachments = [folders["share"] / n for n in report_names.values()]
            try:
                manifest["mailed"] = util.send_mail(config["mail"], subject, text, html_text,
                                                    attachments)
            except util.DpsError as exc:
                # The reports are published: finish the exchange, keep the mail for a rerun.
                manifest.update(mailed=False, mail_error=str(exc),
                                pending_mail={"subject": subject, "text": text,
                                              "html": html_text})
    if look is not None:
        with timer.step("remote_cleanup"):
            clean_up_remote(config, look, run_id)
    shutil.rmtree(folders["staging"] / run_id, ignore_errors=True)
    manifest["outcome"] = "reported"
    if manifest.get("mail_error"):
        code = timer.finish(util.EXIT_FAILED)
        log.error("reports delivered, but the summary mail was not sent: %s; rerun to send it",
                  manifest["mail_error"])
        return code
    return timer.finish(util.EXIT_OK)


def send_pending_mail(config: dict[str, Any], reported: dict[str, Any]) -> None:
    """Send the summary mail a reporting run could not send, and record it in that run."""
    pending = reported.get("pending_mail")
    if not pending:
        return
    util.send_mail(config["mail"], pending["subject"], pending["text"], pending["html"])
    reported.update(mailed=True, pending_mail=None, mail_error=None)
    util.write_manifest(config["folders"]["state"], reported)
    log.info("sent the summary mail that run %s could not send", reported["run_id"])


def about_rows(period: util.Period, run_id: str, today: dt.date, window: int,
               inputs: dict[str, str], input_rows: dict[str, int], results: ResultsFile,
               problems: list[Problem]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["period", period.label], ["period start", period.start], ["period end", period.end],
        ["run id", run_id], ["run date", today],
        ["generated at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")],
        ["match window (days)", window]]
    for name in inputs:
        rows.append([f"input {name} SHA-256", inputs[name]])
        rows.append([f"input {name} rows", input_rows[name]])
    rows.append(["extra columns in the results file (ignored)",
                 ", ".join(results.extra_columns) or "none"])
    rows.append(["exceptions", len(problems)])
    return rows


def write_reports(recon: Reconciliation, about: list[list[Any]], problems: list[Problem],
                  names: dict[str, str], folder: Path, max_rows: int) -> list[str]:
    sheets = build_report_sheets(recon, about, problems)
    written = []
    for key, name in names.items():
        path = folder / name
        util.write_workbook(path, sheets[key], max_rows)
        written.append(str(path))
        log.info("wrote %s", path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return util.run_command(STEP, args, __file__,
                            lambda config, timer: run_receive(args, config, timer))


if __name__ == "__main__":
    raise SystemExit(main())
