"""Reading DPS's answer (docs/data-contract.md §4, §7): the results file row by row, the
counts file, and the control totals that decide whether the answer is whole.

Pure logic on bytes: whole-file faults raise InputError with one line naming the file, the
line and the column; row faults and warnings become `Problem`s for the Exceptions sheet.
No message ever quotes a field value.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from exchange.config import DpsFileSettings
from exchange.errors import ConfigError, InputError

MAX_COUNTS_BYTES = 100_000   # three KEY|VALUE lines; anything this big is not a counts file
MKE_CODES = {"EMD", "EME", "EMI", "EMJ", "EMV", "EMO"}
NIC_PATTERN = re.compile(r"^M[0-9]{9}$")
DIGITS = re.compile(r"^[0-9]+$")  # ASCII only: str.isdigit() also accepts "²", which int() refuses
MAX_DIGITS = 18   # a PID or a count longer than this is no PID or count (and would not fit int64)
# What a spreadsheet cannot hold (openpyxl's IllegalCharacterError): C0 controls but tab, LF, CR
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
TEXT_COLUMNS = ("LAST_NAME", "FIRST_NAME", "SEX", "RACE")
# Windows-1252 leaves these five bytes undefined; they are read as Latin-1 (§4).
CP1252_UNDEFINED = (0x81, 0x8D, 0x8F, 0x90, 0x9D)
ROW_LEFT_OUT = "row left out"
WARNING = "warning"

UNIQUE_COLUMNS = ("LINE", "NIC")   # values no two usable records share: not worth sharing

DPS_ACTS = "DPS"                # who must fix a row: DPS, in its files
IMPACT_ACTS = "IMPACT data"     # ... or DFPS, in IMPACT's data (sa_98)


@dataclass
class Problem:
    """A row that could not be used, or a warning, for the Exceptions sheet (§7, §9)."""

    file: str
    line: int
    kind: str                  # ROW_LEFT_OUT or WARNING
    reason: str                # names the column, never the value
    pid: int | None = None     # the row's PID, when it is readable
    key: str = ""              # the row's NIC or EPISODE_ID, "" when unreadable
    who_acts: str = DPS_ACTS   # who must fix it

    def as_row(self) -> list[Any]:
        return [self.file, self.line, self.pid, self.key or None, self.kind, self.reason,
                self.who_acts]


def decode_partner_text(data: bytes, file_name: str) -> str:
    """UTF-8 (BOM allowed), else the whole file as Windows-1252; NUL bytes are a fault."""
    if not data.strip():
        raise InputError(f"{file_name}: empty file")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{file_name}: binary content (NUL byte) on line {line}")
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


def whole_number(text: str) -> int | None:
    """The text as a whole number of at most MAX_DIGITS ASCII digits, else None."""
    return int(text) if len(text) <= MAX_DIGITS and DIGITS.match(text) else None


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


CONTRACT_COLUMNS = ("PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "SEX", "RACE", "MKE", "ORI",
                    "ENTRY_DATE", "DLC", "CLEAR_DATE")   # §4: what the rules read


@dataclass(frozen=True)
class ResultsLayout:
    """The columns of DPS's results file, found by header name (§4). `required` must be in
    the header (a missing one is a whole-file fault); `optional` are read when present and
    blank when not. Every contract column is one or the other; a partner column beyond the
    contract's is carried through to the records as text (a report may show it). The parser,
    the DPS simulator and the tests' fixtures all take the layout from here."""

    required: tuple[str, ...] = CONTRACT_COLUMNS
    optional: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, file_config: DpsFileSettings) -> ResultsLayout:
        """dps_file.results_columns (required) and dps_file.optional_results_columns."""
        layout = cls(tuple(c.upper() for c in file_config.results_columns),
                     tuple(c.upper() for c in file_config.optional_results_columns))
        missing = [c for c in CONTRACT_COLUMNS if c not in layout.columns]
        if missing:
            raise ConfigError(f"dps_file.results_columns: column {missing[0]} is missing (list "
                              f"it there, or in dps_file.optional_results_columns when DPS may "
                              f"leave it out)")
        return layout

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + tuple(c for c in self.optional if c not in self.required)

    def header(self, delimiter: str = "|") -> str:
        return delimiter.join(self.columns)

    def record_columns(self) -> list[str]:
        """The columns of the records DataFrame parse_results returns."""
        return ["LINE", *self.columns, "CLEAR_DATE_EMPTY"]


@dataclass
class ResultsFile:
    records: Any                      # DataFrame of usable records, one per NIC, with LINE
    problems: list[Problem]
    data_lines: int                   # raw non-blank data lines (RESULT_RECORDS)
    distinct_pids: int                # distinct trimmed PID values (PERSONS_WITH_RECORDS)
    extra_columns: list[str]
    fault_lines: dict[int, int] = field(default_factory=dict)  # PID -> first row-fault line

    @property
    def fault_pids(self) -> set[int]:
        return set(self.fault_lines)


def parse_results(data: bytes, file_name: str, file_config: DpsFileSettings, today: dt.date,
                  sent_pids: set[int], quick_path: bool = True) -> ResultsFile:
    """Read Dfps-missing-person-results.txt (§4); whole-file faults raise.

    Each data line is read by ResultsReader.read_line, which checks every rule and words every
    fault. Most lines are clean, and QuickReader takes those first: a few plain tests that
    accept only a line read_line would take as it is (no fault, no warning, a NIC no other
    line carries), giving the same record. Anything else goes to read_line. `quick_path=False`
    reads every line the careful way (the tests compare both)."""
    delimiter = file_config.delimiter
    layout = ResultsLayout.from_settings(file_config)
    wanted = list(layout.required)
    lines, ends_with_newline = split_physical_lines(decode_partner_text(data, file_name))
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise InputError(f"{file_name}: empty file")
    header = [h.strip().upper() for h in lines[header_index].split(delimiter)]
    check_results_header(header, wanted, file_name, header_index + 1, delimiter)
    data_line_numbers = [i for i in range(header_index + 1, len(lines)) if lines[i].strip()]
    check_last_line(lines, ends_with_newline, header_index, len(header), file_name, delimiter)
    position = {name: header.index(name) for name in layout.columns if name in header}
    reader = ResultsReader(file_name, position, len(header), DateParser(file_config.date_format),
                           today, sent_pids, layout)
    quick = QuickReader(reader, repeated_values(lines, data_line_numbers, delimiter,
                                                position["NIC"])) \
        if quick_path and "NIC" in position else None
    for index in data_line_numbers:
        fields = [f.strip() for f in lines[index].split(delimiter)]
        if quick is None or not quick.take(index + 1, lines[index], fields):
            if quick is not None:
                quick.flush()        # the rows taken before it first: records stay in order
            reader.read_line(index + 1, fields)
        lines[index] = ""    # read: its text goes now, not after the whole file (memory)
    records = reader.frame() if quick is None else quick.in_line_order()
    return ResultsFile(records, reader.problems, len(data_line_numbers),
                       len(reader.raw_pids), [h for h in header if h not in layout.columns],
                       reader.fault_lines)


def repeated_values(lines: list[str], line_indexes: list[int], delimiter: str,
                    column: int) -> set[str]:
    """The values of one column (trimmed) that more than one of these lines carries."""
    seen: set[str] = set()
    repeated: set[str] = set()
    for index in line_indexes:
        parts = lines[index].split(delimiter, column + 1)
        value = parts[column].strip() if len(parts) > column else ""
        if value in seen:
            repeated.add(value)
        seen.add(value)
    return repeated


class QuickReader:
    """The quick path for a clean line (see parse_results): plain string tests instead of
    regular expressions and a dict per row. It takes a line only when read_line would take it
    unchanged: the right number of fields; a PID of ASCII digits that was sent; a NIC of M
    and 9 digits that no other line carries; real ENTRY_DATE and DLC not after the run date;
    MKE, ORI, DOB and CLEAR_DATE blank or valid; CLEAR_DATE not before ENTRY_DATE; and no
    control character anywhere on the line. Its record is the one read_line would keep.

    Taken rows wait as tuples and go into the reader's columns CHUNK at a time (and before
    read_line reads a line, so the records stay in line order), turned into columns in one
    step, each text value kept once, as read_line does."""

    CHUNK = 20_000
    TYPED = ("LINE", "PID", "ENTRY_DATE", "DLC", "MKE", "DOB", "CLEAR_DATE", "CLEAR_DATE_EMPTY")

    def __init__(self, reader: ResultsReader, repeated_nics: set[str]) -> None:
        self.reader, self.repeated_nics = reader, repeated_nics
        self.at = {name: reader.position.get(name) for name in reader.layout.columns}
        self.pending: list[tuple[Any, ...]] = []
        # where each record column sits in a pending tuple: the typed values, then the fields
        slots = {name: i for i, name in enumerate(self.TYPED)}
        self.slots = {name: slots.get(name, None if self.at.get(name) is None
                                      else len(self.TYPED) + self.at[name])
                      for name in reader.columns}

    def field(self, fields: list[str], name: str) -> str:
        index = self.at.get(name)
        return "" if index is None else fields[index]

    def take(self, line: int, text: str, fields: list[str]) -> bool:
        """Keep the line's record and say True, or say False (read_line must read it)."""
        reader = self.reader
        if len(fields) != reader.width or CONTROL_CHARACTERS.search(text):
            return False
        pid_text, nic = fields[self.at["PID"]], fields[self.at["NIC"]]
        if not (len(pid_text) <= MAX_DIGITS and pid_text.isascii() and pid_text.isdigit()):
            return False
        pid = int(pid_text)
        if pid not in reader.sent_pids or nic in self.repeated_nics or not (
                len(nic) == 10 and nic[0] == "M" and nic[1:].isascii() and nic[1:].isdigit()):
            return False
        typed = self.typed_values(fields)
        if typed is None:
            return False
        reader.raw_pids.add(pid_text)
        self.pending.append((line, pid, *typed, *fields))
        if len(self.pending) >= self.CHUNK:
            self.flush()
        return True

    def typed_values(self, fields: list[str]) -> tuple[Any, ...] | None:
        """ENTRY_DATE, DLC, MKE, DOB, CLEAR_DATE and CLEAR_DATE_EMPTY as read_line keeps them;
        None when any of them (or ORI) would be a fault or a warning."""
        parse_date, today = self.reader.parse_date, self.reader.today
        entry = parse_date(self.field(fields, "ENTRY_DATE"))
        dlc = parse_date(self.field(fields, "DLC"))
        if entry is None or dlc is None or entry > today or dlc > today:
            return None
        mke, ori = self.field(fields, "MKE").upper(), self.field(fields, "ORI")
        if mke and mke not in MKE_CODES or ori and not (len(ori) == 9 and
                                                         ori.upper().startswith("TX")):
            return None
        dob_text, clear_text = self.field(fields, "DOB"), self.field(fields, "CLEAR_DATE")
        dob = parse_date(dob_text) if dob_text else None
        clear = parse_date(clear_text) if clear_text else None
        if dob_text and dob is None or clear_text and clear is None or \
                clear is not None and clear < entry:
            return None
        return entry, dlc, mke, dob, clear, clear_text == ""

    def in_line_order(self) -> Any:
        """The reader's records frame with every taken row (in line order, see flush)."""
        self.flush()
        return self.reader.frame()

    def flush(self) -> None:
        """The waiting rows into the reader's columns."""
        if not self.pending:
            return
        reader, count = self.reader, len(self.pending)
        transposed = list(zip(*self.pending, strict=True))
        self.pending = []
        for name, values in reader.columns.items():
            slot = self.slots[name]
            column = transposed[slot] if slot is not None else ("",) * count
            if name in reader.shared:
                texts = reader.texts
                column = [texts.setdefault(v, v) if type(v) is str else v for v in column]
            values.extend(column)


def check_last_line(lines: list[str], ends_with_newline: bool, header_index: int, width: int,
                    file_name: str, delimiter: str) -> None:
    """A last line with no line end and the wrong number of fields: a truncated file."""
    last = len(lines) - 1
    if not ends_with_newline and last > header_index and lines[last].strip():
        fields = len(lines[last].split(delimiter))
        if fields != width:
            raise InputError(f"{file_name}: truncated last line {last + 1} (no line end "
                             f"and {fields} of {width} fields)")


class ResultsReader:
    """Reads the results file's data lines one by one: usable records, row faults, warnings.

    A NIC is owned by the first row carrying it that is otherwise usable; later rows with that
    NIC are row faults; a row with another fault never owns its NIC (§5).

    Usable records are kept column by column, and a text value seen before (a name, an ORI,
    an MKE: a child's records repeat them) is kept once: a 50 MB answer is about 370,000
    records, and a dict per record with its own copy of every string took several hundred
    MiB more (README "Performance").
    """

    def __init__(self, file_name: str, position: dict[str, int], width: int,
                 parse_date: DateParser, today: dt.date, sent_pids: set[int],
                 layout: ResultsLayout) -> None:
        self.file_name, self.position, self.width = file_name, position, width
        self.absent = dict.fromkeys([c for c in layout.columns if c not in position], "")
        self.layout = layout
        self.parse_date, self.today, self.sent_pids = parse_date, today, sent_pids
        self.problems: list[Problem] = []
        self.columns: dict[str, list[Any]] = {name: [] for name in layout.record_columns()}
        self.texts: dict[str, str] = {}    # each distinct text value once (see the docstring)
        self.shared = [name for name in self.columns if name not in UNIQUE_COLUMNS]
        self.raw_pids: set[str] = set()
        self.owner_line: dict[str, int] = {}
        self.fault_lines: dict[int, int] = {}

    def read_line(self, line: int, fields: list[str]) -> None:
        pid_index = self.position["PID"]
        pid_text = fields[pid_index] if len(fields) > pid_index else ""
        self.raw_pids.add(pid_text)
        pid = whole_number(pid_text)
        if len(fields) != self.width:
            self.left_out(line, pid, "", f"wrong number of fields ({len(fields)}, expected "
                                         f"{self.width})")
            return
        values = {**self.absent, **{name: fields[index] for name, index in self.position.items()}}
        nic = values["NIC"] if NIC_PATTERN.match(values["NIC"]) else ""
        record, reason, warnings = check_result_row(values, self.parse_date, self.today)
        if reason is None and pid not in self.sent_pids:
            reason = "PID not in the file sent to DPS"
        if reason is None and nic in self.owner_line:
            reason = f"NIC repeated (first on line {self.owner_line[nic]})"
        if reason is not None:
            self.left_out(line, pid, nic, reason)
            return
        self.owner_line[nic] = line
        self.problems += [Problem(self.file_name, line, WARNING, w, pid, nic) for w in warnings]
        record["LINE"] = line
        for name in self.shared:
            value = record[name]
            if type(value) is str:
                record[name] = self.texts.setdefault(value, value)
        for name, values in self.columns.items():
            values.append(record[name])

    def left_out(self, line: int, pid: int | None, nic: str, reason: str) -> None:
        self.problems.append(Problem(self.file_name, line, ROW_LEFT_OUT, reason, pid, nic))
        if pid is not None:
            self.fault_lines.setdefault(pid, line)

    def frame(self) -> Any:
        import pandas as pd

        columns = self.layout.record_columns()   # no records: typed as before, object columns
        frame = pd.DataFrame(self.columns if self.columns["LINE"] else [], columns=columns)
        for column in ("DOB", "ENTRY_DATE", "DLC", "CLEAR_DATE"):
            frame[column] = pd.to_datetime(frame[column])
        frame["PID"] = frame["PID"].astype("int64")
        frame["CLEAR_DATE_EMPTY"] = frame["CLEAR_DATE_EMPTY"].astype(bool)
        return frame


def check_results_header(header: list[str], wanted: list[str], file_name: str, line: int,
                         delimiter: str) -> None:
    if CONTROL_CHARACTERS.search("".join(header)):
        raise InputError(f"{file_name}: control character in the header on line {line}")
    if len(header) == 1:
        other = next((d for d in (",", "\t", ";") if d in header[0]), None)
        if other:
            raise InputError(f"{file_name}: wrong delimiter on line {line} "
                                  f"(found {other!r}, expected {delimiter!r})")
        raise InputError(f"{file_name}: no header line (line {line} is not a "
                              f"{delimiter!r}-delimited header)")
    if header and DIGITS.match(header[0]):
        raise InputError(f"{file_name}: no header line (line {line} looks like data)")
    for name in wanted:
        if name not in header:
            raise InputError(f"{file_name}: missing column {name} in the header on "
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
    if not DIGITS.match(values["PID"]):
        return record, "column PID: missing or not a whole number", []
    pid = whole_number(values["PID"])
    if pid is None:
        return record, f"column PID: more than {MAX_DIGITS} digits", []
    record["PID"] = pid
    if not NIC_PATTERN.match(values["NIC"]):
        return record, "column NIC: missing or not M followed by 9 digits", []
    for column in ("ENTRY_DATE", "DLC"):
        parsed = parse_date(values[column])
        if parsed is None:
            return record, f"column {column}: missing or not a real date", []
        if parsed > today:
            return record, f"column {column}: after the run date", []
        record[column] = parsed
    warnings = blank_control_characters(record)
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
    record["CLEAR_DATE_EMPTY"] = values["CLEAR_DATE"] == ""
    if record["CLEAR_DATE"] is not None and record["CLEAR_DATE"] < record["ENTRY_DATE"]:
        warnings.append("column CLEAR_DATE: before ENTRY_DATE")
    return record, None, warnings


def blank_control_characters(record: dict[str, Any]) -> list[str]:
    """A name, sex or race with a control character (no spreadsheet can hold one) is blanked,
    with a warning; the record still counts (MKE, ORI and dates have their own checks)."""
    warnings = []
    for column in TEXT_COLUMNS:
        if CONTROL_CHARACTERS.search(record[column]):
            record[column] = ""
            warnings.append(f"column {column}: control character; blanked")
    return warnings


def parse_counts(data: bytes, file_name: str, file_config: DpsFileSettings) -> dict[str, int]:
    """Read Dfps-missing-person-counts.txt: KEY|VALUE lines, no header (§4)."""
    delimiter = file_config.delimiter
    keys = {v.upper(): k for k, v in file_config.counts_keys.items()}
    lines, ends_with_newline = split_physical_lines(decode_partner_text(data, file_name))
    counts: dict[str, int] = {}
    seen_on: dict[str, int] = {}
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(delimiter)]
        if len(fields) != 2:
            if index == len(lines) - 1 and not ends_with_newline:
                raise InputError(f"{file_name}: truncated last line {index + 1}")
            raise InputError(f"{file_name}: line {index + 1}: expected KEY{delimiter}VALUE")
        key = fields[0].upper()
        if key not in keys:
            continue
        if key in seen_on:
            raise InputError(f"{file_name}: line {index + 1}: {key} repeated "
                                  f"(first on line {seen_on[key]})")
        if not DIGITS.match(fields[1]):
            raise InputError(f"{file_name}: line {index + 1}: value of {key} is not a "
                             f"whole number")
        value = whole_number(fields[1])
        if value is None:
            raise InputError(f"{file_name}: line {index + 1}: value of {key} has more than "
                             f"{MAX_DIGITS} digits")
        seen_on[key] = index + 1
        counts[keys[key]] = value
    for internal, key in file_config.counts_keys.items():
        if internal not in counts:
            raise InputError(f"{file_name}: key {key} is missing")
    return counts


def check_control_totals(counts: dict[str, int], sent_rows: int, results: ResultsFile,
                         counts_name: str, results_name: str, keys: dict[str, str]) -> None:
    """The three control totals must agree, else the exchange is broken (§4)."""
    checks = [
        ("records_received", sent_rows, "data lines in the file we sent"),
        ("result_records", results.data_lines, f"data lines in {results_name}"),
        ("persons_with_records", results.distinct_pids, f"distinct PIDs in {results_name}"),
    ]
    for internal, expected, what in checks:
        if counts[internal] != expected:
            raise InputError(
                f"{counts_name}: {keys[internal]}={counts[internal]} but there are {expected} "
                f"{what}; control totals disagree, nothing published")

