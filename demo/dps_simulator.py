"""The DPS (Texas state police) side of the exchange, simulated.

It reads our uploaded ``End_txt_file.txt`` from the SFTP server and, after a delay, answers
the way DPS does (docs/data-contract.md §4): ``Dfps-missing-person-results.txt`` (one line per
TCIC/NCIC missing-person record found for a submitted child, any date) and
``Dfps-missing-person-counts.txt`` (control totals), both written into the answer folder
through SFTP, so it works against any server the config names.

The "truth" behind the answer is the demo IMPACT database: for each child we sent, that
child's runaway episodes. DPS has a record for most episodes, with entry and last-contact
dates a few days off, and clears it after the return. So that every rule of the receive step
and every follow-up and reading aid of the contract (§8, §9) gets exercised, now and then it
also:

* never clears a returned child's record (§8's "returned but still active in NCIC");
* dates the last contact 4-30 days outside the episode's match window, before the runaway or
  after the return (§8's near-miss hints on both unmatched reports);
* keys a CLEAR_DATE before the ENTRY_DATE (a §9 warning);
* has a record IMPACT does not, a repeated line, a bad optional field or a malformed NIC.

Everything is deterministic for a seed: each episode and each child has its own random
stream, so a child's records stay the same from one quarter's send to the next (a record
never cleared stays uncleared in every later answer).

    python -m demo.dps_simulator --as-of 2025-06-20 --delay 5
    python demo/dps_simulator.py --break-totals      # an answer the receive step must refuse

The results file is written under its final name, chunk by chunk with pauses, as a real
partner does: the receive step must wait until it stops growing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import random
import sqlite3
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import util

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "dps_config.yml"
LINE_END = "\r\n"
OUTPUT_ENCODING = "utf-8"
SENT_FIELDS = ("PID", "LAST_NAME", "FIRST_NAME", "DOB", "SEX", "RACE")
DPS_DATE_FORMAT = "%Y%m%d"
TEXAS_COUNTIES = 254
# NCIC message keys of missing-person entries: juvenile, victim, involuntary, disability.
MKE_WEIGHTS = (("EMJ", 0.86), ("EMV", 0.06), ("EMI", 0.05), ("EMD", 0.03))
# Agency suffix of an ORI: the sheriff (0000) or a city police department.
ORI_AGENCY_WEIGHTS = (("0000", 0.55), ("0100", 0.25), ("0200", 0.12), ("0300", 0.08))
BAD_MKE = "EMZ"
BAD_ORI_PREFIX = "OK"
BAD_DOBS = ("00000000", "20091331", "2009041")
# A "far" DLC lies this many days outside the episode's match window: beyond the edge cases of
# late_dlc_share / early_dlc_share (1-3 days out), within the receive step's near-miss reach
# (matching.near_miss_days, 30 by default), so the reports name it as the nearest record.
FAR_DLC_MIN_DAYS = 4
FAR_DLC_MAX_DAYS = 30
CLEAR_BEFORE_ENTRY_MAX_DAYS = 10   # a CLEAR_DATE keyed 1-10 days before the ENTRY_DATE
# Entry delays (contract §10.3): most entries the day the child went missing or the next,
# some days late, a few weeks late. Drawn from the episode's own "entry" stream, so the other
# draws of the episode (DLC, clearing, NIC, MKE, ORI) stay what they were.
ENTRY_DAYS_LATE_SHARE = 0.06       # 2-6 days after the runaway
ENTRY_WEEKS_LATE_SHARE = 0.03      # 1-5 weeks after the runaway
# The synthetic ORI directory (contract §10.4): one agency per ORI make_ori can write.
ORI_AGENCY_NAMES = {"0000": "{county} County Sheriff's Office",
                    "0100": "{county} County City Police Department 1",
                    "0200": "{county} County City Police Department 2",
                    "0300": "{county} County City Police Department 3"}
ORI_DIRECTORY_FILE = REPO_ROOT / "demo" / "ori_directory.csv"


@dataclass
class SimulatorSettings:
    seed: int = 7
    delay_seconds: float = 5.0           # wait after the upload is seen before answering
    chunk_lines: int = 200               # results are written in chunks...
    chunk_pause_seconds: float = 0.5     # ...with pauses, so the file is visible while growing
    entered_share: float = 0.85          # share of runaway episodes DPS has a record for
    late_dlc_share: float = 0.06         # DLC 3-6 days after the runaway (the window's edge)
    early_dlc_share: float = 0.04        # DLC 1-4 days before the runaway
    far_dlc_share: float = 0.05          # DLC 4-30 days outside the window (a near miss)
    uncleared_share: float = 0.10        # records of returned episodes never cleared
    clear_before_entry_share: float = 0.005  # a CLEAR_DATE keyed before the ENTRY_DATE
    match_window_days: int = 3           # W of the receive step (matching.match_window_days)
    unknown_child_share: float = 0.01    # children without an episode who have a DPS record
    unknown_child_days: int = 730        # ...with a DLC in this many days before the run date
    duplicate_share: float = 0.002       # a record line repeated (a duplicate NIC)
    bad_optional_share: float = 0.003    # a bad ORI, MKE or DOB (the receiver blanks it)
    malformed_nic_share: float = 0.001   # a NIC that is not M + 9 digits (a row fault)
    future_dlc_share: float = 0.001      # a DLC after the run date (a row fault), on purpose
    break_totals: bool = False           # RESULT_RECORDS off by one: an answer to refuse
    poll_seconds: float = 1.0            # how often to look for the upload
    new_upload_only: bool = False        # ignore an upload already there when we start
    period: str | None = None            # for a {period} placeholder in the answer names
    line_end: str = LINE_END


@dataclass(frozen=True)
class SentChild:
    """One data line of our file, as DPS reads it."""

    pid: int
    pid_text: str
    last_name: str
    first_name: str
    dob: str
    sex: str
    race: str


@dataclass(frozen=True)
class Episode:
    """One IMPACT runaway episode: what the simulated DPS entries are made from."""

    episode_id: int
    pid: int
    runaway_date: dt.date
    return_date: dt.date | None
    county_code: int | None


@dataclass
class DpsRecord:
    """One TCIC/NCIC missing-person record of the answer."""

    child: SentChild
    nic: str
    mke: str
    ori: str
    entry_date: dt.date
    dlc: dt.date
    clear_date: dt.date | None
    dob: str
    repeated: bool = False   # written twice (a duplicate NIC)
    source: Episode | None = None   # the IMPACT episode it was made from (None: no episode)

    def values(self) -> dict[str, str]:
        return {
            "PID": self.child.pid_text, "NIC": self.nic,
            "LAST_NAME": self.child.last_name.upper(), "FIRST_NAME": self.child.first_name.upper(),
            "DOB": self.dob, "SEX": self.child.sex, "RACE": self.child.race, "MKE": self.mke,
            "ORI": self.ori, "ENTRY_DATE": self.entry_date.strftime(DPS_DATE_FORMAT),
            "DLC": self.dlc.strftime(DPS_DATE_FORMAT),
            "CLEAR_DATE": self.clear_date.strftime(DPS_DATE_FORMAT) if self.clear_date else "",
        }


@dataclass
class NicBook:
    """Hands out NICs that are unique within one answer."""

    used: set[str] = field(default_factory=set)

    def new(self, rng: random.Random) -> str:
        while True:
            nic = f"M{rng.randrange(10**9):09d}"
            if nic not in self.used:
                self.used.add(nic)
                return nic


# ---------------------------------------------------------------------------
# Pure: reading our file, the IMPACT episodes, making the answer
# ---------------------------------------------------------------------------


def decode_sent_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def sent_header_names(configured: list[Any]) -> dict[str, str]:
    """Contract field -> header name; a config item may be 'PID' or {'PID': 'PERSON_ID'}."""
    names = {}
    for item in configured:
        if isinstance(item, dict) and len(item) == 1:
            (source, header), = item.items()
            names[str(source).upper()] = str(header).upper()
        else:
            names[str(item).upper()] = str(item).upper()
    return names


def parse_sent_file(sent_text: bytes, file_config: Any) -> tuple[list[SentChild], int]:
    """(the children DPS can search for, one per PID; the number of data lines read).

    Lines DPS cannot use (wrong number of fields, a PID that is not a number) still count as
    received, the way a partner counts what it read.
    """
    delimiter = file_config.delimiter
    lines = [line.rstrip("\r") for line in decode_sent_text(sent_text).split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise ValueError("the sent file is empty (no header line)")
    header = [name.strip().upper() for name in lines[0].split(delimiter)]
    names = sent_header_names(file_config.columns)
    position = {}
    for field_name in SENT_FIELDS:
        header_name = names.get(field_name, field_name)
        if header_name not in header:
            raise ValueError(f"the sent file's header lacks column {header_name}")
        position[field_name] = header.index(header_name)
    children: dict[int, SentChild] = {}
    for line in lines[1:]:
        fields = [value.strip() for value in line.split(delimiter)]
        if len(fields) != len(header) or not fields[position["PID"]].isdigit():
            continue
        value = {name: fields[index] for name, index in position.items()}
        pid = int(value["PID"])
        children.setdefault(pid, SentChild(pid, value["PID"], value["LAST_NAME"],
                                           value["FIRST_NAME"], value["DOB"], value["SEX"],
                                           value["RACE"]))
    return list(children.values()), len(lines) - 1


def parse_iso_date(text: Any) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(str(text).strip()[:10])
    except ValueError:
        return None


def read_episodes(database: Path, pids: set[int]) -> dict[int, list[Episode]]:
    """The runaway episodes of these children, by PID, in episode order. An episode without a
    county takes its removal's county."""
    if not Path(database).is_file():
        raise FileNotFoundError(f"database {database}: file not found")
    uri = f"{Path(database).resolve().as_uri()}?mode=ro"
    connection = sqlite3.connect(uri, uri=True)
    try:
        rows = connection.execute(
            "SELECT e.episode_id, e.person_id, e.runaway_date, e.return_date, "
            "COALESCE(e.county_code, r.county_code) "
            "FROM runaway_episode e LEFT JOIN removal r ON r.removal_id = e.removal_id "
            "ORDER BY e.person_id, e.episode_id").fetchall()
    finally:
        connection.close()
    episodes: dict[int, list[Episode]] = {}
    for episode_id, pid, runaway, back, county in rows:
        runaway_date = parse_iso_date(runaway)
        if pid is None or int(pid) not in pids or runaway_date is None or episode_id is None:
            continue
        county_code = int(county) if county is not None and str(county).strip() else None
        episodes.setdefault(int(pid), []).append(
            Episode(int(episode_id), int(pid), runaway_date, parse_iso_date(back), county_code))
    return episodes


def weighted_choice(rng: random.Random, weights: tuple[tuple[str, float], ...]) -> str:
    point = rng.random() * sum(weight for _, weight in weights)
    for value, weight in weights:
        point -= weight
        if point < 0:
            return value
    return weights[-1][0]


def make_ori(rng: random.Random, county_code: int | None) -> str:
    """'TX' + the county number (3 digits) + an agency suffix: TX2270000 is Travis' sheriff."""
    county = county_code if county_code and 1 <= county_code <= TEXAS_COUNTIES \
        else rng.randint(1, TEXAS_COUNTIES)
    return f"TX{county:03d}{weighted_choice(rng, ORI_AGENCY_WEIGHTS)}"


def dlc_offset_days(rng: random.Random, settings: SimulatorSettings) -> int:
    """Days from the runaway to DPS's date of last contact: mostly 0 or 1 (the day the child
    went missing, two times in three), some at the match window's edge (3-6), a few before
    the runaway (1-4 days). The draws are those of earlier versions (0-2 halved), so every
    later draw of the episode stays the same."""
    draw = rng.random()
    if draw < settings.late_dlc_share:
        return rng.randint(3, 6)
    if draw < settings.late_dlc_share + settings.early_dlc_share:
        return -rng.randint(1, 4)
    return rng.randint(0, 2) // 2


def is_returned(episode: Episode) -> bool:
    """A return date that is not a typo (one before the runaway leaves the episode open)."""
    return episode.return_date is not None and episode.return_date >= episode.runaway_date


def far_dlc(episode: Episode, window_days: int, rng: random.Random) -> dt.date:
    """A DLC 4-30 days outside the episode's match window [runaway - W, return + W]: after the
    return (half of the returned episodes) or before the runaway. The record then matches no
    episode of its own, and each unmatched side names the other as its nearest (§8)."""
    outside = dt.timedelta(days=window_days + rng.randint(FAR_DLC_MIN_DAYS, FAR_DLC_MAX_DAYS))
    after_return = rng.random() < 0.5
    if is_returned(episode) and after_return:
        return episode.return_date + outside
    return episode.runaway_date - outside


def episode_dlc(episode: Episode, settings: SimulatorSettings, rng: random.Random) -> dt.date:
    """DPS's date of last contact for an episode: far outside the window now and then, else a
    few days from the runaway (dlc_offset_days)."""
    if rng.random() < settings.far_dlc_share:
        return far_dlc(episode, settings.match_window_days, rng)
    return episode.runaway_date + dt.timedelta(days=dlc_offset_days(rng, settings))


def episode_clear_date(episode: Episode, entry: dt.date, settings: SimulatorSettings,
                       rng: random.Random) -> dt.date | None:
    """Cleared 0-3 days after the return; None while the episode is open, and for the share of
    returned children whose record the agency never clears (still active in NCIC long after,
    the rows of §8's fourth report)."""
    if episode.return_date is None or rng.random() < settings.uncleared_share:
        return None
    return max(episode.return_date + dt.timedelta(days=rng.randint(0, 3)), entry)


def entry_delay_days(same_or_next_day: int, late: random.Random) -> int:
    """Days from the report's start to its ENTRY_DATE: 0 or 1 (`same_or_next_day`) for most,
    2-6 days for ENTRY_DAYS_LATE_SHARE, 1-5 weeks for ENTRY_WEEKS_LATE_SHARE."""
    draw = late.random()
    if draw < ENTRY_WEEKS_LATE_SHARE:
        return late.randint(7, 35)
    if draw < ENTRY_WEEKS_LATE_SHARE + ENTRY_DAYS_LATE_SHARE:
        return late.randint(2, 6)
    return same_or_next_day


def episode_entry_date(episode: Episode, dlc: dt.date, same_or_next_day: int,
                       settings: SimulatorSettings) -> dt.date:
    """ENTRY_DATE: the delay counted from the runaway, or from an earlier DLC (the police
    were told before IMPACT's runaway date: an entry before the runaway); never before the
    DLC."""
    late = random.Random(f"{settings.seed}:entry:{episode.episode_id}")  # nosec B311
    reported = min(dlc, episode.runaway_date)
    return max(dlc, reported + dt.timedelta(days=entry_delay_days(same_or_next_day, late)))


def episode_record(child: SentChild, episode: Episode, settings: SimulatorSettings,
                   rng: random.Random, nics: NicBook) -> DpsRecord | None:
    """DPS's entry for one IMPACT episode, or None when DPS never entered it."""
    if rng.random() >= settings.entered_share:
        return None
    dlc = episode_dlc(episode, settings, rng)
    entry = episode_entry_date(episode, dlc, rng.randint(0, 3) // 2, settings)
    clear = episode_clear_date(episode, entry, settings, rng)
    return DpsRecord(child, nics.new(rng), weighted_choice(rng, MKE_WEIGHTS),
                     make_ori(rng, episode.county_code), entry, dlc, clear, child.dob,
                     source=episode)


def ori_directory_rows(county_names: list[str]) -> list[tuple[str, str, str]]:
    """(ORI, AGENCY, PHONE) for every ORI make_ori can write: county N's sheriff and three
    city departments, names and phone numbers synthetic (area code 000, 555-01xx)."""
    rows = []
    for number, county in enumerate(county_names, start=1):
        for position, (suffix, name) in enumerate(ORI_AGENCY_NAMES.items()):
            phone = f"(000) 555-{100 + (number * 4 + position) % 100:04d}"
            rows.append((f"TX{number:03d}{suffix}", name.format(county=county), phone))
    return rows


def ori_directory_csv() -> str:
    """The demo's ORI directory (demo/ori_directory.csv), from the demo's county list.
    Regenerate: python -c "import demo.dps_simulator as s; s.write_ori_directory()"."""
    import csv
    import io

    from demo.build_demo_db import load_counties

    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["ORI", "AGENCY", "PHONE"])
    writer.writerows(ori_directory_rows([county.name for county in load_counties()]))
    return text.getvalue()


def write_ori_directory(path: Path = ORI_DIRECTORY_FILE) -> None:
    path.write_text(ori_directory_csv(), encoding="utf-8")


def unknown_child_record(child: SentChild, settings: SimulatorSettings, run_date: dt.date,
                         rng: random.Random, nics: NicBook) -> DpsRecord | None:
    """A record for a child IMPACT has no runaway episode for (the 'DPS not in IMPACT' side)."""
    if rng.random() >= settings.unknown_child_share:
        return None
    dlc = run_date - dt.timedelta(days=rng.randint(0, max(0, settings.unknown_child_days)))
    entry = min(dlc + dt.timedelta(days=rng.randint(0, 3)), run_date)
    cleared = rng.random() < 0.7
    clear = max(dlc + dt.timedelta(days=rng.randint(1, 60)), entry) if cleared else None
    return DpsRecord(child, nics.new(rng), weighted_choice(rng, MKE_WEIGHTS),
                     make_ori(rng, None), entry, dlc, clear, child.dob)


def settle_dates(record: DpsRecord, settings: SimulatorSettings, run_date: dt.date,
                 rng: random.Random) -> DpsRecord | None:
    """Nothing dated after the run date: a record entered later is not there yet, a clearing
    later has not happened yet. A rare record keeps a DLC after the run date, on purpose."""
    if rng.random() < settings.future_dlc_share:
        record.dlc = run_date + dt.timedelta(days=rng.randint(1, 5))
        record.entry_date = min(record.entry_date, run_date)
        record.clear_date = None
        return record
    if record.dlc > run_date or record.entry_date > run_date:
        return None
    if record.clear_date is not None and record.clear_date > run_date:
        record.clear_date = None
    return record


def add_noise(record: DpsRecord, settings: SimulatorSettings, rng: random.Random) -> DpsRecord:
    """Now and then a repeated line, a bad optional field, a malformed NIC or a CLEAR_DATE
    keyed before the ENTRY_DATE."""
    draws = [rng.random() for _ in range(4)]
    kind = rng.choice(("ORI", "MKE", "DOB"))
    if draws[0] < settings.duplicate_share:
        record.repeated = True
    if draws[1] < settings.bad_optional_share:
        if kind == "ORI":
            record.ori = BAD_ORI_PREFIX + record.ori[2:]
        elif kind == "MKE":
            record.mke = BAD_MKE
        else:
            record.dob = rng.choice(BAD_DOBS)
    if draws[2] < settings.malformed_nic_share:
        record.nic = rng.choice((record.nic[:-1], record.nic + "0", "N" + record.nic[1:],
                                 record.nic[:-1] + "O"))
    if draws[3] < settings.clear_before_entry_share:
        days_before = rng.randint(1, CLEAR_BEFORE_ENTRY_MAX_DAYS)
        record.clear_date = record.entry_date - dt.timedelta(days=days_before)
    return record


def child_records(child: SentChild, episodes: list[Episode], settings: SimulatorSettings,
                  run_date: dt.date, nics: NicBook) -> list[DpsRecord]:
    """All of one child's DPS records, each from its own seeded random stream."""
    made: list[tuple[DpsRecord | None, random.Random]] = []
    for episode in episodes:
        rng = random.Random(f"{settings.seed}:episode:{episode.episode_id}")
        made.append((episode_record(child, episode, settings, rng, nics), rng))
    if not episodes:
        rng = random.Random(f"{settings.seed}:child:{child.pid}")
        made.append((unknown_child_record(child, settings, run_date, rng, nics), rng))
    records = []
    for record, rng in made:
        if record is None:
            continue
        settled = settle_dates(record, settings, run_date, rng)
        if settled is not None:
            records.append(add_noise(settled, settings, rng))
    return records


def build_records(children: list[SentChild], episodes: dict[int, list[Episode]],
                  settings: SimulatorSettings, run_date: dt.date) -> list[DpsRecord]:
    """Every record of the answer, sorted by PID, then DLC (then NIC)."""
    nics = NicBook()
    records = []
    for child in sorted(children, key=lambda c: c.pid):
        records.extend(child_records(child, episodes.get(child.pid, []), settings, run_date,
                                     nics))
    records.sort(key=lambda r: (r.child.pid, r.dlc, r.nic))
    return records


def results_lines(records: Iterable[DpsRecord], columns: list[str], delimiter: str) -> list[str]:
    """The data lines of the results file, a repeated record twice."""
    lines = []
    for record in records:
        values = record.values()
        line = delimiter.join(values.get(column.upper(), "") for column in columns)
        lines.extend([line, line] if record.repeated else [line])
    return lines


def results_columns(file_config: Any) -> list[str]:
    """The results file's columns, as the receive step's ResultsLayout reads them; a partner
    column beyond the contract's is written blank."""
    from exchange.answer import ResultsLayout

    return list(ResultsLayout.from_settings(file_config).columns)


def render_results(header: list[str], lines: list[str], delimiter: str, line_end: str) -> bytes:
    return line_end.join([delimiter.join(header), *lines]).encode(OUTPUT_ENCODING) \
        + line_end.encode(OUTPUT_ENCODING)


def render_counts(totals: dict[str, int], keys: dict[str, str], delimiter: str,
                  line_end: str) -> bytes:
    order = ("records_received", "persons_with_records", "result_records")
    text = "".join(f"{keys[name]}{delimiter}{totals[name]}{line_end}" for name in order)
    return text.encode(OUTPUT_ENCODING)


@dataclass(frozen=True)
class Answer:
    results: bytes
    counts: bytes
    records_received: int      # data lines read from our file
    result_records: int        # data lines in the results file (the true number)


def make_answer(sent_text: bytes, database: Path, settings: SimulatorSettings,
                run_date: dt.date, file_config: Any) -> Answer:
    columns = results_columns(file_config)
    delimiter = file_config.delimiter
    children, received = parse_sent_file(sent_text, file_config)
    episodes = read_episodes(database, {child.pid for child in children})
    records = build_records(children, episodes, settings, run_date)
    lines = results_lines(records, columns, delimiter)
    totals = {"records_received": received,
              "persons_with_records": len({record.child.pid_text for record in records}),
              "result_records": len(lines) + (1 if settings.break_totals else 0)}
    results = render_results(columns, lines, delimiter, settings.line_end)
    counts = render_counts(totals, file_config.counts_keys, delimiter, settings.line_end)
    return Answer(results, counts, received, len(lines))


def build_answer(sent_text: bytes, database: Path, settings: SimulatorSettings,
                 run_date: dt.date, file_config: Any) -> tuple[bytes, bytes]:
    """Pure: (results file bytes, counts file bytes) for the sent file, from the demo DB."""
    answer = make_answer(sent_text, database, settings, run_date, file_config)
    return answer.results, answer.counts


# ---------------------------------------------------------------------------
# An oversized answer (the benchmark's memory case): the usual answer, then more records of
# the same children, each field padded with spaces to its NCIC width
# ---------------------------------------------------------------------------

# NCIC field widths (NIC 10, name 30, ORI 9, dates CCYYMMDD); the contract tolerates spaces
# around fields (§4), as a fixed-width export leaves them.
NCIC_WIDTHS = {"PID": 12, "NIC": 10, "LAST_NAME": 30, "FIRST_NAME": 30, "DOB": 8, "SEX": 1,
               "RACE": 1, "MKE": 3, "ORI": 9, "ENTRY_DATE": 8, "DLC": 8, "CLEAR_DATE": 8}
HISTORY_DAYS = 5 * 365        # an added older record's DLC: up to five years before the period


def padded_line(record: DpsRecord, columns: list[str], delimiter: str) -> str:
    values = record.values()
    return delimiter.join(values.get(column.upper(), "").ljust(NCIC_WIDTHS.get(column.upper(), 0))
                          for column in columns)


def added_record(child: SentChild, period: tuple[dt.date, dt.date], in_period_share: float,
                 run_date: dt.date, rng: random.Random, nics: NicBook) -> DpsRecord:
    """One more record of a child: its DLC in the period (`in_period_share` of them, half still
    active) or up to HISTORY_DAYS before it (nine in ten cleared); no date after the run
    date."""
    start, end = period
    if rng.random() < in_period_share:
        dlc = start + dt.timedelta(days=rng.randint(0, (min(end, run_date) - start).days))
        cleared = rng.random() < 0.5
    else:
        dlc = start - dt.timedelta(days=rng.randint(1, HISTORY_DAYS))
        cleared = rng.random() < 0.9
    entry = min(dlc + dt.timedelta(days=rng.randint(0, 3)), run_date)
    clear = max(dlc + dt.timedelta(days=rng.randint(1, 60)), entry) if cleared else None
    if clear is not None and clear > run_date:
        clear = None
    return DpsRecord(child, nics.new(rng), weighted_choice(rng, MKE_WEIGHTS),
                     make_ori(rng, None), entry, dlc, clear, child.dob)


def oversized_answer(sent_text: bytes, database: Path, settings: SimulatorSettings,
                     run_date: dt.date, file_config: Any, target_bytes: int,
                     period: tuple[dt.date, dt.date], in_period_share: float) -> Answer:
    """An answer whose results file is about `target_bytes` (at least that, by under one line):
    the usual answer's records, then records added to the sent children in turn
    (`added_record`), every field padded to its NCIC width; control totals that agree."""
    columns = results_columns(file_config)
    delimiter, line_end = file_config.delimiter, settings.line_end
    children, received = parse_sent_file(sent_text, file_config)
    episodes = read_episodes(database, {child.pid for child in children})
    records = build_records(children, episodes, settings, run_date)
    nics = NicBook(used={record.nic for record in records})
    ordered = sorted(children, key=lambda c: c.pid)
    rng = random.Random(f"{settings.seed}:oversized")  # nosec B311
    size = len((delimiter.join(columns) + line_end).encode(OUTPUT_ENCODING))
    size += sum(len((padded_line(r, columns, delimiter) + line_end).encode(OUTPUT_ENCODING))
                * (2 if r.repeated else 1) for r in records)
    turn = 0
    while size < target_bytes and ordered:
        record = added_record(ordered[turn % len(ordered)], period, in_period_share, run_date,
                              rng, nics)
        turn += 1
        records.append(record)
        size += len((padded_line(record, columns, delimiter) + line_end).encode(OUTPUT_ENCODING))
    records.sort(key=lambda r: (r.child.pid, r.dlc, r.nic))
    lines = []
    for record in records:
        line = padded_line(record, columns, delimiter)
        lines.extend([line, line] if record.repeated else [line])
    totals = {"records_received": received,
              "persons_with_records": len({record.child.pid_text for record in records}),
              "result_records": len(lines)}
    return Answer(render_results(columns, lines, delimiter, line_end),
                  render_counts(totals, file_config.counts_keys, delimiter, line_end),
                  received, len(lines))


def answer_names(file_config: Any, period_label: str, run_date: dt.date
                 ) -> tuple[str, str]:
    """The two remote names, with any {period} or {date} placeholder filled in."""
    values = {"period": period_label, "date": run_date.strftime("%Y%m%d")}
    return (file_config.results_name.format(**values),
            file_config.counts_name.format(**values))


# ---------------------------------------------------------------------------
# SFTP: waiting for our upload, writing the answer slowly
# ---------------------------------------------------------------------------


def chunks_of_lines(data: bytes, chunk_lines: int) -> list[bytes]:
    """The data cut after every chunk_lines lines (the last chunk may be shorter)."""
    lines = data.splitlines(keepends=True)
    size = max(1, chunk_lines)
    return [b"".join(lines[i:i + size]) for i in range(0, len(lines), size)] or [data]


def write_slowly(session: util.SftpSession, remote_path: str, data: bytes, chunk_lines: int,
                 pause: float) -> None:
    """Write straight to the final name, chunk_lines lines at a time, flushing each chunk and
    pausing between them, so the file is visible on the server while it grows."""
    chunks = chunks_of_lines(data, chunk_lines)
    with session.sftp.open(remote_path, "wb") as handle:
        handle.set_pipelined(True)   # acknowledgements checked at close: 50 MB in seconds
        for number, chunk in enumerate(chunks, start=1):
            handle.write(chunk)
            handle.flush()
            if number < len(chunks) and pause > 0:
                time.sleep(pause)
    log.info("wrote %s (%d bytes in %d chunk(s))", remote_path, len(data), len(chunks))


def upload_signature(session: util.SftpSession, remote_path: str) -> tuple[int, int] | None:
    found = session.stat(remote_path)
    return None if found is None else (found.size, found.mtime)


def wait_for_upload(config: Any, remote_path: str, wait_seconds: float,
                    settings: SimulatorSettings) -> bytes:
    """Poll until our file is on the server and its size and mtime hold still across two
    looks; then read it. With new_upload_only, a file already there at the start must first
    change. Raises NotReadyError when nothing comes within wait_seconds."""
    import util
    from exchange.errors import NotReadyError

    deadline = time.monotonic() + max(0.0, wait_seconds)
    with util.connect_sftp(config.sftp) as session:
        stale = upload_signature(session, remote_path) if settings.new_upload_only else None
        previous = None
        while True:
            current = upload_signature(session, remote_path)
            if current is not None and current != stale and current == previous:
                data = session.read_bytes(remote_path)
                log.info("read %s (%d bytes)", remote_path, len(data))
                return data
            if current is None or current == stale:
                if time.monotonic() >= deadline:
                    raise NotReadyError(f"{remote_path}: no new upload on the server "
                                             f"after {wait_seconds:g} s")
                log.debug("waiting for %s", remote_path)
            previous = current
            time.sleep(settings.poll_seconds)


def default_period_label(config: Any, run_date: dt.date) -> str:
    """The send step's default period (the quarter of run date - close_lag_days)."""
    import util

    lag = dt.timedelta(days=config.run.close_lag_days)
    return util.period_containing(run_date - lag).file_label


def write_answer(config: Any, settings: SimulatorSettings, run_date: dt.date,
                 results: bytes, counts: bytes) -> None:
    """Results first (slowly, under the final name), then the counts file."""
    import util

    file_config = config.dps_file
    period = util.parse_period(settings.period).file_label if settings.period \
        else default_period_label(config, run_date)
    results_name, counts_name = answer_names(file_config, period, run_date)
    folder = config.sftp.answer_folder
    with util.connect_sftp(config.sftp) as session:
        session.ensure_folder(folder)
        write_slowly(session, util.join_remote(folder, results_name), results,
                     settings.chunk_lines, settings.chunk_pause_seconds)
        write_slowly(session, util.join_remote(folder, counts_name), counts, 10, 0)


def simulate_once(config: Any, settings: SimulatorSettings, database: Path,
                  run_date: dt.date, wait_for_upload_seconds: float = 60) -> tuple[int, int]:
    """Wait (polling) until End_txt_file.txt is on the server, sleep delay_seconds, write the
    results (slowly) then the counts into the answer folder. Returns (result records, records
    received)."""
    import util

    file_config = config.dps_file
    upload_path = util.join_remote(config.sftp.upload_folder, file_config.send_name)
    sent_text = wait_for_upload(config, upload_path, wait_for_upload_seconds, settings)
    answer = make_answer(sent_text, database, settings, run_date, file_config)
    log.info("answer ready: %d records received, %d result records%s; answering in %.1f s",
             answer.records_received, answer.result_records,
             " (RESULT_RECORDS off by one)" if settings.break_totals else "",
             settings.delay_seconds)
    if settings.delay_seconds > 0:
        time.sleep(settings.delay_seconds)
    write_answer(config, settings, run_date, answer.results, answer.counts)
    log.info("answered into %s", config.sftp.answer_folder)
    return answer.result_records, answer.records_received


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorSettings()
    parser = argparse.ArgumentParser(
        prog="dps_simulator",
        description="Play DPS: wait for End_txt_file.txt on the SFTP server, then write "
                    "Dfps-missing-person-results.txt (slowly) and Dfps-missing-person-counts.txt "
                    "into the answer folder, made from the demo IMPACT database.",
        epilog="Exit codes: 0 answered; 1 failed; 2 usage or config error; 3 no upload came.")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH",
                        help="config file (default: dps_config.yml in the repository root)")
    parser.add_argument("--database", type=Path, metavar="PATH",
                        help="the demo SQLite database (default: database.url of the config "
                             "when it is sqlite:///...)")
    parser.add_argument("--as-of", metavar="YYYY-MM-DD",
                        help="the run date: nothing is dated after it (default: today)")
    parser.add_argument("--delay", type=float, default=defaults.delay_seconds, metavar="SECONDS",
                        help="wait after the upload is seen before answering "
                             f"(default {defaults.delay_seconds:g})")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help=f"random seed (default {defaults.seed})")
    parser.add_argument("--chunk-lines", type=int, default=defaults.chunk_lines, metavar="N",
                        help=f"results lines per write (default {defaults.chunk_lines})")
    parser.add_argument("--chunk-pause", type=float, default=defaults.chunk_pause_seconds,
                        metavar="SECONDS",
                        help=f"pause between writes (default {defaults.chunk_pause_seconds:g})")
    parser.add_argument("--entered-share", type=float, default=defaults.entered_share,
                        metavar="SHARE", help="share of runaway episodes DPS has a record for "
                                              f"(default {defaults.entered_share:g})")
    parser.add_argument("--uncleared-share", type=float, default=defaults.uncleared_share,
                        metavar="SHARE", help="share of returned episodes' records DPS never "
                                              f"clears (default {defaults.uncleared_share:g})")
    parser.add_argument("--far-dlc-share", type=float, default=defaults.far_dlc_share,
                        metavar="SHARE",
                        help=f"share of records whose DLC lies {FAR_DLC_MIN_DAYS}-"
                             f"{FAR_DLC_MAX_DAYS} days outside the match window "
                             f"(default {defaults.far_dlc_share:g})")
    parser.add_argument("--clear-before-entry-share", type=float,
                        default=defaults.clear_before_entry_share, metavar="SHARE",
                        help="share of records with a CLEAR_DATE before the ENTRY_DATE "
                             f"(default {defaults.clear_before_entry_share:g})")
    parser.add_argument("--wait-for-upload", type=float, default=60.0, metavar="SECONDS",
                        help="how long to wait for the upload (default 60)")
    parser.add_argument("--new-upload-only", action="store_true",
                        help="ignore an upload already on the server; wait for a new one")
    parser.add_argument("--period", metavar="FY2025Q3",
                        help="fills a {period} placeholder in the answer file names (default: "
                             "the send step's default period)")
    parser.add_argument("--break-totals", action="store_true",
                        help="write RESULT_RECORDS off by one (the receive step must refuse it)")
    parser.add_argument("--watch", action="store_true",
                        help="keep answering: each new upload gets an answer (the demo's "
                             "--serve runs it so); stop it with SIGTERM")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines too")
    return parser


def database_from_url(url: str, folder: Path) -> Path:
    """The SQLite file of database.url (relative paths against the config's folder)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError("database.url is not sqlite:///...; give --database PATH")
    path = Path(url[len(prefix):].split("?", 1)[0])
    return path if path.is_absolute() else (folder / path).resolve()


def settings_from_args(args: argparse.Namespace, window_days: int) -> SimulatorSettings:
    """The settings of the command line; W is the receive step's (Rules.window_days)."""
    return SimulatorSettings(
        seed=args.seed, delay_seconds=args.delay, chunk_lines=args.chunk_lines,
        chunk_pause_seconds=args.chunk_pause, entered_share=args.entered_share,
        uncleared_share=args.uncleared_share, far_dlc_share=args.far_dlc_share,
        clear_before_entry_share=args.clear_before_entry_share,
        match_window_days=window_days, break_totals=args.break_totals,
        new_upload_only=args.new_upload_only, period=args.period)


def answer_every_upload(config: Any, settings: SimulatorSettings, database: Path,
                        as_of: str | None) -> int:
    """--watch: answer each new upload as it comes, until stopped (SIGTERM). The run date is
    --as-of, else today at each answer."""
    import util
    from exchange.errors import DpsError, NotReadyError

    log.info("watching %s for new uploads", config.sftp.upload_folder)
    while True:
        run_date = util.run_date(config.run.time_zone, as_of)
        try:
            simulate_once(config, settings, database, run_date, 3600)
        except NotReadyError:
            continue                      # no new upload within the hour: keep watching
        except (DpsError, OSError, ValueError, sqlite3.Error) as exc:
            log.error("%s; watching on", exc)
            time.sleep(5)


def put_repo_root_on_path() -> None:
    """`python demo/dps_simulator.py` puts demo/ first on sys.path; util lives one up."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))


def main(argv: list[str] | None = None) -> int:
    put_repo_root_on_path()
    import util

    args = build_parser().parse_args(argv)
    try:
        config = util.load_config(args.config)
        run_date = util.run_date(config.run.time_zone, args.as_of)
        database = args.database or database_from_url(config.database.url, config.folder)
        settings = settings_from_args(args, util.Rules.from_config(config).window_days)
        if settings.period:
            util.parse_period(settings.period)
    except util.DpsError as exc:
        print(f"dps_simulator: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:
        print(f"dps_simulator: error: {exc}", file=sys.stderr)
        return 2   # usage or config error, as the product's scripts
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="dps_simulator: %(message)s")
    if args.watch:
        return answer_every_upload(config, replace(settings, new_upload_only=True), database,
                                   args.as_of)
    try:
        result_records, received = simulate_once(config, settings, database, run_date,
                                                 args.wait_for_upload)
    except util.DpsError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except (OSError, ValueError, sqlite3.Error) as exc:
        log.error("%s", exc)
        return util.EXIT_FAILED
    log.info("done: %d result records for %d records received", result_records, received)
    return util.EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
