"""Contract §4-§7, receive side, one case per rule: DPS's two files, matching, the reports and
sheet continuation. Pure functions only; every input is built here as bytes or a tiny frame.

Run date 2025-06-20, period FY2025Q3 (2025-03-01 .. 2025-05-31), match window 3 days.
"""

import datetime as dt
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import yaml

import util
from exchange.answer import check_control_totals, decode_partner_text, parse_counts, parse_results
from exchange.config import DpsFileSettings
from exchange.episodes import build_regions, number_lines
from exchange.episodes import check_episodes as check_numbered_episodes
from exchange.excel import sheet_titles
from exchange.matching import matched_pairs
from exchange.reconcile import SendList, reconcile, totals_by_region
from exchange.reports import report
from exchange.rules import Rules
from tests.scenario import parsed_both_ways

REPO = Path(__file__).resolve().parent.parent
FILE_CONFIG = DpsFileSettings(**yaml.safe_load((REPO / "dps_config.yml").read_text(
    encoding="utf-8"))["dps_file"])
RESULTS = "Dfps-missing-person-results.txt"
COUNTS = "Dfps-missing-person-counts.txt"
KEYS = {"records_received": "RECORDS_RECEIVED", "persons_with_records": "PERSONS_WITH_RECORDS",
        "result_records": "RESULT_RECORDS"}
RUN_DATE = dt.date(2025, 6, 20)
PERIOD = util.parse_period("FY2025Q3")
WINDOW = 3
SENT_PIDS = {101, 102, 123}
D = dt.date

COLUMNS = ["PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "SEX", "RACE", "MKE", "ORI",
           "ENTRY_DATE", "DLC", "CLEAR_DATE"]
HEADER = "|".join(COLUMNS).encode()
SA98_COLUMNS = ["EPISODE_ID", "PID", "LAST_NAME", "FIRST_NAME", "DOB", "RUNAWAY_DATE",
                "RETURN_DATE", "COUNTY_CODE"]
LEFT_OUT, WARNING = "row left out", "warning"

corpus = pytest.mark.reliability("bad inbound corpus")


# Words that may appear in messages because they are names, not values.
NOT_VALUES = {*COLUMNS, *KEYS.values(), "AGENCY_NOTE", "DATE_LAST_CONTACT"}


# ---------------------------------------------------------------------------
# Tiny named fixtures
# ---------------------------------------------------------------------------


def nic(n):
    return f"M{n:09d}"


def row(pid="101", nic="M000000001", last="SMITH", first="AMELIA", dob="20090909", sex="F",
        race="B", mke="EMJ", ori="TX2270000", entry="20250410", dlc="20250415", clear=""):
    """One DPS results line (fields in the contract's order), str or bytes per field."""
    fields = [pid, nic, last, first, dob, sex, race, mke, ori, entry, dlc, clear]
    return b"|".join(f if isinstance(f, bytes) else f.encode("utf-8") for f in fields)


def results(*lines, header=HEADER, end=b"\r\n", final_end=True):
    """A results file: the header (unless None), the lines, each ended by `end`."""
    body = ([header] if header is not None else []) + list(lines)
    return end.join(body) + (end if final_end and body else b"")


def counts(*lines, end=b"\r\n", final_end=True):
    return end.join(lines) + (end if final_end and lines else b"")


GOOD_COUNTS = counts(b"RECORDS_RECEIVED|3", b"PERSONS_WITH_RECORDS|2", b"RESULT_RECORDS|2")


def field_values(data):
    """Every field value of a test input that a message must never repeat."""
    values = set()
    for text in (data.decode("latin-1"), data.decode("utf-8", errors="replace"),
                 data.decode("cp1252", errors="replace")):
        for token in re.split(r"[|,;\t\r\n\x00]", text):
            token = token.strip().lstrip("\ufeff").removeprefix("ï»¿")
            if len(token) < 3 or token.upper() in NOT_VALUES:
                continue
            values.add(token)
            if re.fullmatch(r"\d{8}", token):
                values.add(f"{token[:4]}-{token[4:6]}-{token[6:]}")
            if re.fullmatch(r"[0-9]+", token):  # isdigit() accepts "²", which int() refuses
                values.add(str(int(token)))
    return values


def assert_no_values(messages, data):
    messages = [m for m in messages if m]
    if not messages:
        return
    for value in field_values(data):
        for message in messages:
            assert value not in message, f"a field value is repeated in {message!r}"


def parse(data, sent=SENT_PIDS, today=RUN_DATE):
    parsed = parsed_both_ways(data, RESULTS, FILE_CONFIG, today, sent)
    assert_no_values([p.reason for p in parsed.problems], data)
    return parsed


def results_fault(data):
    """The one-line whole-file fault for a results file (checked for values)."""
    with pytest.raises(util.InputError) as caught:
        parse_results(data, RESULTS, FILE_CONFIG, RUN_DATE, SENT_PIDS)
    message = str(caught.value)
    assert_no_values([message], data)
    assert "\n" not in message
    return message


def counts_fault(data):
    with pytest.raises(util.InputError) as caught:
        parse_counts(data, COUNTS, FILE_CONFIG)
    message = str(caught.value)
    assert "\n" not in message
    return message


def listed(parsed):
    return [(p.line, p.kind, p.reason) for p in parsed.problems]


def kept(parsed):
    return parsed.records["LINE"].tolist()


def value(parsed, line, column):
    found = parsed.records.loc[parsed.records["LINE"] == line, column]
    assert len(found) == 1
    return plain(found.iloc[0])


def plain(v):
    if v is None or v is pd.NaT or v is pd.NA or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.date()
    if hasattr(v, "item"):
        return v.item()
    return v


def table(frame, columns):
    return [tuple(plain(v) for v in values)
            for values in frame[columns].itertuples(index=False, name=None)]


# County -> region: one real Texas county per DFPS region (row N of the county list is N).
COUNTY_REGION = pd.DataFrame(
    [(152, "Lubbock", 1, "Lubbock"), (5, "Archer", 2, "Abilene"), (43, "Collin", 3, "Arlington"),
     (1, "Anderson", 4, "Tyler"), (3, "Angelina", 5, "Beaumont"), (101, "Harris", 6, "Houston"),
     (227, "Travis", 7, "Austin"), (15, "Bexar", 8, "San Antonio"), (2, "Andrews", 9, "Midland"),
     (71, "El Paso", 10, "El Paso"), (108, "Hidalgo", 11, "Edinburg")],
    columns=["COUNTY_CODE", "COUNTY_NAME", "REGION", "REGION_NAME"])
REGIONS = build_regions(COUNTY_REGION)
REGION_LABELS = ["1-Lubbock", "2-Abilene", "3-Arlington", "4-Tyler", "5-Beaumont", "6-Houston",
                 "7-Austin", "8-San Antonio", "9-Midland", "10-El Paso", "11-Edinburg"]
MONTHS = ["2025-03", "2025-04", "2025-05"]

# What we sent: PID -> the child's county (Harris, Travis, Bexar; 124 none; 125 unknown code).
SENT = pd.DataFrame({"PID": [101, 102, 123], "COUNTY_CODE": [101.0, 227.0, 15.0]})
SENT_WITH_GAPS = pd.DataFrame({"PID": [101, 102, 123, 124, 125],
                               "COUNTY_CODE": [101.0, 227.0, 15.0, None, 999.0]})


def check_episodes(frame, source_name, first_line):
    """sa_98 rows numbered from first_line (1 for a query, 2 for an extract), checked."""
    return check_numbered_episodes(number_lines(frame, first_line), source_name, RUN_DATE)


def match_records(records, episodes, window):
    """(episode ids that match some record, NICs that match some episode)."""
    pairs = matched_pairs(records, episodes, window)
    return set(pairs["EPISODE_ID"].astype(int)), set(pairs["NIC"])


def send_list(sent):
    return SendList(dict(zip(sent["PID"].tolist(), sent["COUNTY_CODE"].tolist(), strict=True)))


def sa98(*episodes):
    """sa_98 as the query yields it, from (EPISODE_ID, PID, RUNAWAY_DATE, RETURN_DATE, COUNTY)."""
    rows = [{"EPISODE_ID": episode, "PID": pid, "LAST_NAME": "Peña", "FIRST_NAME": "Zoë",
             "DOB": "2009-04-01", "RUNAWAY_DATE": ran, "RETURN_DATE": back, "COUNTY_CODE": county}
            for episode, pid, ran, back, county in episodes]
    return pd.DataFrame(rows, columns=SA98_COLUMNS)


def episodes_of(*episodes):
    frame, problems = check_episodes(sa98(*episodes), "sa_98 query", 1)
    return frame


def record(pid, n, dlc):
    """A valid DPS line for PID, NIC number n, date of last contact dlc (YYYYMMDD)."""
    return row(pid=str(pid), nic=nic(n), entry=dlc, dlc=dlc)


def matches(lines, episodes, window=WINDOW):
    parsed = parse(results(*lines))
    assert parsed.problems == []
    return match_records(parsed.records, episodes_of(*episodes), window)


def run_reconcile(lines, episodes=(), sent=SENT):
    parsed = parse(results(*lines), sent=set(sent["PID"]))
    episodes_frame, _ = check_episodes(sa98(*episodes), "sa_98 query", 1)
    return reconcile(parsed, episodes_frame, episodes_frame, send_list(sent), REGIONS, PERIOD,
                     RUN_DATE, Rules(WINDOW, 30, 2))


# ===========================================================================
# 1. Bad inbound corpus (§4, §7)
# ===========================================================================

# --- whole-file faults: the results file ----------------------------------


@corpus
@pytest.mark.parametrize("data", [b"", b"\r\n\r\n", b"   \n\t\n", b"\xef\xbb\xbf"],
                         ids=["zero bytes", "blank lines only", "whitespace only", "BOM only"])
def test_an_empty_results_file_is_a_whole_file_fault(data):
    assert results_fault(data) == f"{RESULTS}: empty file"


@corpus
@pytest.mark.parametrize("final_end", [True, False], ids=["with line end", "without line end"])
def test_a_header_only_results_file_is_valid_with_zero_records(final_end):
    parsed = parse(results(final_end=final_end))
    assert parsed.records.empty
    assert (parsed.problems, parsed.data_lines, parsed.distinct_pids) == ([], 0, 0)


@corpus
def test_no_header_line_is_a_whole_file_fault():
    message = results_fault(results(row(), row(nic=nic(2)), header=None))
    assert message == f"{RESULTS}: no header line (line 1 looks like data)"


@corpus
@pytest.mark.parametrize("delimiter, shown", [(b",", "','"), (b"\t", "'\\t'"), (b";", "';'")],
                         ids=["comma", "tab", "semicolon"])
def test_a_wrong_delimiter_is_a_whole_file_fault(delimiter, shown):
    data = results(row().replace(b"|", delimiter), header=HEADER.replace(b"|", delimiter))
    assert results_fault(data) == (f"{RESULTS}: wrong delimiter on line 1 "
                                   f"(found {shown}, expected '|')")


@corpus
def test_a_missing_column_is_a_whole_file_fault_naming_the_column():
    header = b"|".join(c.encode() for c in COLUMNS if c != "DLC")
    line = b"|".join(f for i, f in enumerate(row().split(b"|")) if i != COLUMNS.index("DLC"))
    assert results_fault(results(line, header=header)) == (
        f"{RESULTS}: missing column DLC in the header on line 1")


@corpus
def test_a_renamed_column_is_a_whole_file_fault_naming_the_expected_column():
    header = HEADER.replace(b"|DLC|", b"|DATE_LAST_CONTACT|")
    assert results_fault(results(row(), header=header)) == (
        f"{RESULTS}: missing column DLC in the header on line 1")


@corpus
def test_a_missing_column_after_blank_lines_names_the_physical_header_line():
    header = HEADER.replace(b"|NIC|", b"|")
    data = b"\r\n\r\n" + results(row().replace(b"|M000000001|", b"|"), header=header)
    assert results_fault(data) == f"{RESULTS}: missing column NIC in the header on line 3"


@corpus
def test_nul_bytes_are_binary_content_a_whole_file_fault_naming_the_line():
    data = results(row(), row(nic=nic(2), last=b"SMI\x00TH"))
    assert results_fault(data) == f"{RESULTS}: binary content (NUL byte) on line 3"


@corpus
def test_a_utf16_file_is_binary_content():
    data = results(row()).decode("ascii").encode("utf-16")
    assert results_fault(data) == f"{RESULTS}: binary content (NUL byte) on line 1"


@corpus
def test_a_truncated_last_line_is_a_whole_file_fault():
    data = results(row(), row(nic=nic(2))[:40], final_end=False)
    assert results_fault(data) == (
        f"{RESULTS}: truncated last line 3 (no line end and 7 of 12 fields)")


@corpus
def test_a_last_line_without_line_end_but_complete_fields_is_fine():
    parsed = parse(results(row(), row(nic=nic(2)), final_end=False))
    assert (kept(parsed), parsed.problems, parsed.data_lines) == ([2, 3], [], 2)


@corpus
def test_a_ragged_row_before_a_blank_last_line_is_a_row_fault_not_a_truncation():
    # The ragged row has its line end; the last physical line is blank (tolerated).
    data = results(row(), row(nic=nic(2))[:40]) + b"   "
    parsed = parse(data)
    assert listed(parsed) == [(3, LEFT_OUT, "wrong number of fields (7, expected 12)")]
    assert kept(parsed) == [2]


# --- the header: tolerated variations --------------------------------------


@corpus
def test_an_extra_column_is_ignored_and_named():
    header = HEADER.replace(b"|NIC|", b"|NIC|AGENCY_NOTE|")
    line = row().replace(b"|M000000001|", b"|M000000001|see file 7|")
    parsed = parse(results(line, header=header))
    assert parsed.extra_columns == ["AGENCY_NOTE"]
    assert kept(parsed) == [2] and parsed.problems == []
    assert "AGENCY_NOTE" not in parsed.records.columns
    assert (value(parsed, 2, "NIC"), value(parsed, 2, "LAST_NAME")) == ("M000000001", "SMITH")


@corpus
def test_reordered_columns_are_found_by_name():
    header = b"|".join(reversed(HEADER.split(b"|")))
    line = b"|".join(reversed(row(pid="102", dlc="20250501", entry="20250430").split(b"|")))
    parsed = parse(results(line, header=header))
    assert parsed.problems == [] and parsed.extra_columns == []
    assert table(parsed.records, ["PID", "NIC", "LAST_NAME", "ENTRY_DATE", "DLC", "MKE"]) == [
        (102, "M000000001", "SMITH", D(2025, 4, 30), D(2025, 5, 1), "EMJ")]


@corpus
def test_header_names_are_case_insensitive_and_may_be_padded():
    header = b" | ".join(c.lower().encode() for c in COLUMNS)
    parsed = parse(results(row(), header=header))
    assert (kept(parsed), parsed.problems, parsed.extra_columns) == ([2], [], [])


# --- encodings and line ends: tolerated without complaint -------------------


@corpus
def test_a_utf8_bom_is_tolerated():
    parsed = parse(b"\xef\xbb\xbf" + results(row(last="PEÑA")))
    assert (kept(parsed), parsed.problems) == ([2], [])
    assert value(parsed, 2, "LAST_NAME") == "PEÑA"


@corpus
@pytest.mark.parametrize("end", [b"\r\n", b"\n"], ids=["CRLF", "LF"])
def test_crlf_and_lf_line_ends_are_tolerated(end):
    parsed = parse(results(row(), row(nic=nic(2)), end=end))
    assert (kept(parsed), parsed.problems) == ([2, 3], [])
    assert value(parsed, 3, "CLEAR_DATE") is None   # the last field carries no "\r"


@corpus
def test_mixed_crlf_and_lf_line_ends_are_tolerated():
    data = HEADER + b"\r\n" + row() + b"\n" + row(nic=nic(2), clear="20250601") + b"\r\n"
    parsed = parse(data)
    assert (kept(parsed), parsed.problems) == ([2, 3], [])
    assert value(parsed, 3, "CLEAR_DATE") == D(2025, 6, 1)


@corpus
def test_blank_lines_are_tolerated_and_line_numbers_stay_physical():
    data = results(row(), b"", b"   ", row(nic=nic(2), dlc="20250230"), b"", row(nic=nic(3)))
    parsed = parse(data)
    assert listed(parsed) == [(5, LEFT_OUT, "column DLC: missing or not a real date")]
    assert kept(parsed) == [2, 7]
    assert parsed.data_lines == 3


@corpus
def test_latin1_names_are_decoded():
    parsed = parse(results(row(last=b"Pe\xf1a", first=b"Zo\xeb")))
    assert parsed.problems == []
    assert (value(parsed, 2, "LAST_NAME"), value(parsed, 2, "FIRST_NAME")) == ("Peña", "Zoë")


@corpus
def test_windows_1252_letters_are_decoded():
    parsed = parse(results(row(last=b"O\x92BRIEN", first=b"\x8aIMON")))
    assert (value(parsed, 2, "LAST_NAME"), value(parsed, 2, "FIRST_NAME")) == ("O’BRIEN", "ŠIMON")


@corpus
def test_the_five_bytes_windows_1252_leaves_undefined_read_as_latin1():
    assert decode_partner_text(b"A\x81\x8d\x8f\x90\x9dZ", RESULTS) == (
        "A\x81\x8d\x8f\x90\x9dZ")
    parsed = parse(results(row(last=b"X\x81Y\x9d")))
    assert value(parsed, 2, "LAST_NAME") == "X\x81Y\x9d"


@corpus
def test_invalid_utf8_reads_the_whole_file_as_windows_1252():
    # One row in UTF-8, one in Latin-1: the file is not valid UTF-8, so both rows are 1252.
    data = results(row(last="PEÑA"), row(nic=nic(2), last=b"PE\xd1A"))
    parsed = parse(data)
    assert parsed.problems == []
    assert (value(parsed, 2, "LAST_NAME"), value(parsed, 3, "LAST_NAME")) == ("PEÃ‘A", "PEÑA")


@corpus
def test_a_cut_utf8_sequence_is_tolerated_as_windows_1252():
    parsed = parse(results(row(last=b"PE\xc3")))
    assert (kept(parsed), parsed.problems) == ([2], [])
    assert value(parsed, 2, "LAST_NAME") == "PEÃ"


@corpus
def test_a_utf8_bom_with_latin1_names_is_tolerated():
    parsed = parse(b"\xef\xbb\xbf" + results(row(last=b"Pe\xf1a")))
    assert (kept(parsed), parsed.problems, parsed.extra_columns) == ([2], [], [])
    assert value(parsed, 2, "LAST_NAME") == "Peña"


@corpus
def test_spaces_around_fields_are_trimmed():
    line = b"|".join(b"  " + f + b" " for f in row(pid="000123", mke="EMV").split(b"|"))
    parsed = parse(results(line))
    assert parsed.problems == []
    assert table(parsed.records, ["PID", "NIC", "LAST_NAME", "MKE", "ORI", "DLC", "CLEAR_DATE"]) \
        == [(123, "M000000001", "SMITH", "EMV", "TX2270000", D(2025, 4, 15), None)]


# --- row faults -------------------------------------------------------------


@corpus
def test_too_few_fields_is_a_row_fault():
    short = b"|".join(row(nic=nic(2)).split(b"|")[:11])
    parsed = parse(results(row(), short, row(nic=nic(3))))
    assert listed(parsed) == [(3, LEFT_OUT, "wrong number of fields (11, expected 12)")]
    assert kept(parsed) == [2, 4]


@corpus
def test_too_many_fields_is_a_row_fault():
    parsed = parse(results(row(), row(nic=nic(2)) + b"|EXTRA", row(nic=nic(3))))
    assert listed(parsed) == [(3, LEFT_OUT, "wrong number of fields (13, expected 12)")]
    assert kept(parsed) == [2, 4]


@corpus
@pytest.mark.parametrize("column", ["DLC", "ENTRY_DATE"])
@pytest.mark.parametrize("bad", ["20250230", "2025-03-01", ""],
                         ids=["no 30 February", "ISO form", "blank"])
def test_a_bad_required_date_is_a_row_fault(column, bad):
    values = {"dlc": bad} if column == "DLC" else {"entry": bad}
    parsed = parse(results(row(), row(nic=nic(2), **values)))
    assert listed(parsed) == [(3, LEFT_OUT, f"column {column}: missing or not a real date")]
    assert kept(parsed) == [2]


@corpus
@pytest.mark.parametrize("column", ["DOB", "CLEAR_DATE"])
@pytest.mark.parametrize("bad", ["20250230", "2025-03-01"], ids=["no 30 February", "ISO form"])
def test_a_bad_optional_date_is_blanked_with_a_warning_and_the_row_kept(column, bad):
    values = {"dob": bad} if column == "DOB" else {"clear": bad}
    parsed = parse(results(row(**values)))
    assert listed(parsed) == [(2, WARNING, f"column {column}: not a real date; blanked")]
    assert kept(parsed) == [2]
    assert value(parsed, 2, column) is None


@corpus
def test_blank_dob_and_clear_date_are_fine():
    parsed = parse(results(row(dob="", clear="")))
    assert (kept(parsed), parsed.problems) == ([2], [])
    assert (value(parsed, 2, "DOB"), value(parsed, 2, "CLEAR_DATE")) == (None, None)


@corpus
def test_a_dlc_after_the_run_date_is_a_row_fault():
    parsed = parse(results(row(dlc="20250620"), row(nic=nic(2), dlc="20250621")))
    assert listed(parsed) == [(3, LEFT_OUT, "column DLC: after the run date")]
    assert kept(parsed) == [2]


@corpus
def test_an_entry_date_after_the_run_date_is_a_row_fault():
    parsed = parse(results(row(entry="20250621")))
    assert listed(parsed) == [(2, LEFT_OUT, "column ENTRY_DATE: after the run date")]


@corpus
@pytest.mark.parametrize("bad", ["M12345678", "M1234567890", "X123456789", "M12345678A", ""],
                         ids=["8 digits", "10 digits", "no M", "a letter", "blank"])
def test_a_malformed_nic_is_a_row_fault(bad):
    parsed = parse(results(row(), row(nic=bad)))
    assert listed(parsed) == [(3, LEFT_OUT, "column NIC: missing or not M followed by 9 digits")]
    assert kept(parsed) == [2]


@corpus
def test_a_repeated_nic_keeps_the_first_and_names_its_line():
    data = results(row(), row(nic=nic(2)), b"", row(pid="102", dlc="20250501"))
    parsed = parse(data)
    assert listed(parsed) == [(5, LEFT_OUT, "NIC repeated (first on line 2)")]
    assert kept(parsed) == [2, 3]
    assert value(parsed, 2, "PID") == 101


@corpus
def test_a_pid_not_sent_is_a_row_fault():
    parsed = parse(results(row(), row(pid="999", nic=nic(2))))
    assert listed(parsed) == [(3, LEFT_OUT, "PID not in the file sent to DPS")]
    assert parsed.fault_pids == {999}


@corpus
@pytest.mark.parametrize("bad", [b"ABC", b"", b"-5", b"1.5"],
                         ids=["letters", "blank", "negative", "decimal"])
def test_a_pid_that_is_not_a_whole_number_is_a_row_fault(bad):
    parsed = parse(results(row(pid=bad)))
    assert listed(parsed) == [(2, LEFT_OUT, "column PID: missing or not a whole number")]


@corpus
def test_a_pid_with_a_stray_superscript_digit_is_a_row_fault_not_a_crash():
    # Byte 0xB2 is "²" in Windows-1252: str.isdigit() says yes, int() says no.
    parsed = parse(results(row(), row(pid=b"10\xb2", nic=nic(2))))
    assert listed(parsed) == [(3, LEFT_OUT, "column PID: missing or not a whole number")]
    assert kept(parsed) == [2]


@corpus
def test_a_pid_with_leading_zeros_is_the_same_pid():
    parsed = parse(results(row(pid="000123"), row(pid=" 0101 ", nic=nic(2))))
    assert parsed.problems == []
    assert parsed.records["PID"].tolist() == [123, 101]


@corpus
@pytest.mark.parametrize("bad", ["EMX", "MISSING", "1"], ids=["unknown", "a word", "a digit"])
def test_a_bad_mke_is_blanked_with_a_warning(bad):
    parsed = parse(results(row(mke=bad)))
    assert listed(parsed) == [(2, WARNING, "column MKE: not a known code; blanked")]
    assert value(parsed, 2, "MKE") == ""


@corpus
@pytest.mark.parametrize("bad", ["TX227000", "TX22700001", "OK2270000"],
                         ids=["8 characters", "10 characters", "not Texas"])
def test_a_bad_ori_is_blanked_with_a_warning(bad):
    parsed = parse(results(row(ori=bad)))
    assert listed(parsed) == [(2, WARNING, "column ORI: not 9 characters starting TX; blanked")]
    assert value(parsed, 2, "ORI") == ""


@corpus
@pytest.mark.parametrize("mke", ["EMD", "EME", "EMI", "EMJ", "EMV", "EMO", ""])
def test_every_mke_code_and_an_empty_mke_are_kept(mke):
    parsed = parse(results(row(mke=mke)))
    assert (parsed.problems, value(parsed, 2, "MKE")) == ([], mke)


@corpus
def test_one_enormous_line_without_delimiters_is_a_row_fault():
    parsed = parse(results(row(), b"A" * 5_000_000, row(nic=nic(2))))
    assert listed(parsed) == [(3, LEFT_OUT, "wrong number of fields (1, expected 12)")]
    assert kept(parsed) == [2, 4]


@corpus
def test_one_enormous_name_field_is_read_without_a_crash():
    parsed = parse(results(row(last=b"A" * 5_000_000)))
    assert (kept(parsed), parsed.problems) == ([2], [])
    assert len(value(parsed, 2, "LAST_NAME")) == 5_000_000


@corpus
def test_a_file_ten_times_the_usual_size_parses():
    # ~6,000 result lines is a large nightly answer; this is 60,000 lines (about 5 MB).
    count = 60_000
    lines = [row(pid=str(n), nic=nic(n)) for n in range(1, count + 1)]
    parsed = parse(results(*lines), sent=set(range(1, count + 1)))
    assert (len(parsed.records), parsed.problems, parsed.data_lines) == (count, [], count)
    assert parsed.distinct_pids == count


@corpus
def test_messages_never_carry_field_values():
    data = results(
        row(pid="101", last="PEÑA", first="ZOË", dob="20090401"),
        row(pid="102", nic="M98765432", last="O'BRIEN", dob="20080115"),
        row(pid="123", nic=nic(3), last="NGUYEN", dob="20250230", dlc="20250230"),
        row(pid="4711", nic=nic(4), last="QUINONEZ"),
        row(pid="102", nic=nic(5), mke="ZZQ", ori="OK9999999", clear="2025-13-01"),
        row(pid="102", nic=nic(5), last="WASHINGTON"),
        row(pid="123", nic=nic(6), entry="20990101"),
        b"101|M000000007|BEGAY|KAI")
    parsed = parse(data)
    assert [(p.line, p.kind) for p in parsed.problems] == [
        (3, LEFT_OUT), (4, LEFT_OUT), (5, LEFT_OUT), (6, WARNING), (6, WARNING), (6, WARNING),
        (7, LEFT_OUT), (8, LEFT_OUT), (9, LEFT_OUT)]
    # and explicitly, for the values a reader would worry about most:
    reasons = " ".join(p.reason for p in parsed.problems)
    for text in ["PEÑA", "O'BRIEN", "NGUYEN", "20080115", "2008-01-15", "M98765432", "4711",
                 "M000000005", "20250230", "ZZQ", "OK9999999", "20990101", "BEGAY"]:
        assert text not in reasons


@corpus
def test_the_value_scan_itself_catches_a_repeated_value():
    data = results(row(last="PEÑA", dob="20090401"))
    for leaky in ["column LAST_NAME: PEÑA", "DOB 2009-04-01 in the future", "NIC M000000001"]:
        with pytest.raises(AssertionError):
            assert_no_values([leaky], data)
    assert_no_values(["column LAST_NAME: not a real name on line 2"], data)


# --- the counts file and the control totals ---------------------------------


@corpus
def test_a_good_counts_file_is_read():
    data = b"\xef\xbb\xbf" + counts(b" RECORDS_RECEIVED | 3 ", b"", b"PERSONS_WITH_RECORDS|2",
                                    b"RESULT_RECORDS|2", end=b"\n")
    assert parse_counts(data, COUNTS, FILE_CONFIG) == {
        "records_received": 3, "persons_with_records": 2, "result_records": 2}


@corpus
@pytest.mark.parametrize("missing", list(KEYS.values()))
def test_a_counts_file_without_a_key_is_a_whole_file_fault(missing):
    data = counts(*[line for line in GOOD_COUNTS.splitlines() if not line.startswith(
        missing.encode())])
    assert counts_fault(data) == f"{COUNTS}: key {missing} is missing"


@corpus
@pytest.mark.parametrize("bad", [b"12a", b"", b"-1", b"3.0", b"\xc2\xb2"],
                         ids=["letters", "blank", "negative", "decimal", "superscript two"])
def test_a_non_numeric_count_is_a_whole_file_fault(bad):
    data = counts(b"RECORDS_RECEIVED|3", b"PERSONS_WITH_RECORDS|" + bad, b"RESULT_RECORDS|2")
    message = counts_fault(data)
    assert message == f"{COUNTS}: line 2: value of PERSONS_WITH_RECORDS is not a whole number"


@corpus
def test_a_repeated_count_key_is_a_whole_file_fault():
    data = GOOD_COUNTS + b"RECORDS_RECEIVED|3\r\n"
    assert counts_fault(data) == f"{COUNTS}: line 4: RECORDS_RECEIVED repeated (first on line 1)"


@corpus
def test_a_counts_file_with_a_wrong_delimiter_is_a_whole_file_fault():
    data = GOOD_COUNTS.replace(b"|", b",")
    assert counts_fault(data) == f"{COUNTS}: line 1: expected KEY|VALUE"


@corpus
def test_a_truncated_counts_file_is_a_whole_file_fault():
    data = counts(b"RECORDS_RECEIVED|3", b"PERSONS_WITH_RECORDS|2", b"RESULT_REC", final_end=False)
    assert counts_fault(data) == f"{COUNTS}: truncated last line 3"


@corpus
def test_an_empty_counts_file_is_a_whole_file_fault():
    assert counts_fault(b"") == f"{COUNTS}: empty file"


def check_totals(counts_data, results_data, sent_rows=3):
    parsed = parse(results_data)
    found = parse_counts(counts_data, COUNTS, FILE_CONFIG)
    check_control_totals(found, sent_rows, parsed, COUNTS, RESULTS, KEYS)


TWO_ROWS = results(row(), row(pid="102", nic=nic(2)))


@corpus
def test_control_totals_that_agree_pass():
    check_totals(GOOD_COUNTS, TWO_ROWS)


@corpus
@pytest.mark.parametrize("line, message", [
    (b"RECORDS_RECEIVED|4", "RECORDS_RECEIVED=4 but there are 3 data lines in the file we sent"),
    (b"PERSONS_WITH_RECORDS|1",
     f"PERSONS_WITH_RECORDS=1 but there are 2 distinct PIDs in {RESULTS}"),
    (b"RESULT_RECORDS|3", f"RESULT_RECORDS=3 but there are 2 data lines in {RESULTS}"),
], ids=["records received", "persons with records", "result records"])
@corpus
def test_control_totals_that_disagree_stop_the_run_naming_the_key_and_both_numbers(line, message):
    key = line.split(b"|")[0]
    data = counts(*[line if old.startswith(key) else old for old in GOOD_COUNTS.splitlines()])
    with pytest.raises(util.InputError) as caught:
        check_totals(data, TWO_ROWS)
    assert str(caught.value) == (f"{COUNTS}: {message}; control totals disagree, "
                                 f"nothing published")


@corpus
def test_a_header_only_answer_with_zero_result_records_is_valid():
    check_totals(counts(b"RECORDS_RECEIVED|3", b"PERSONS_WITH_RECORDS|0", b"RESULT_RECORDS|0"),
                 results())


@corpus
def test_control_totals_count_raw_non_blank_lines_faulty_and_repeated_included():
    data = results(row(), b"", row(), b" 102 |M000000002|SHORT", row(pid="999", nic=nic(3)),
                   row(pid=" 101 ", nic=nic(4), dlc="20250230"), b"  ")
    parsed = parse(data)
    assert (parsed.data_lines, parsed.distinct_pids) == (5, 3)   # "101", "102", "999"
    check_totals(counts(b"RECORDS_RECEIVED|3", b"PERSONS_WITH_RECORDS|3", b"RESULT_RECORDS|5"),
                 data)


# ===========================================================================
# 2. Matching (§5)
# ===========================================================================

EPISODE = (7, 101, "2025-04-10", "2025-04-20", 101)          # W = 3: DLC 04-07 .. 04-23


@pytest.mark.parametrize("dlc, matched", [
    ("20250407", True), ("20250406", False), ("20250423", True), ("20250424", False),
    ("20250415", True)],
    ids=["runaway-W", "runaway-(W+1)", "return+W", "return+(W+1)", "inside"])
def test_the_match_window_around_an_episode(dlc, matched):
    episodes, nics = matches([record(101, 1, dlc)], [EPISODE])
    assert (episodes, nics) == (({7}, {nic(1)}) if matched else (set(), set()))


def test_the_window_is_the_configured_one():
    episodes, _ = matches([record(101, 1, "20250405")], [EPISODE], window=5)
    assert episodes == {7}


def test_a_record_of_another_pid_never_matches():
    assert matches([record(102, 1, "20250415")], [EPISODE]) == (set(), set())


def test_an_open_episode_has_no_upper_bound():
    open_episode = (8, 101, "2025-04-10", None, 101)
    assert matches([record(101, 1, "20250620")], [open_episode]) == ({8}, {nic(1)})
    assert matches([record(101, 1, "20250406")], [open_episode]) == (set(), set())


def test_a_return_before_the_runaway_is_treated_as_open_with_a_warning():
    typo = (9, 101, "2025-04-10", "2025-04-01", 101)
    episodes, problems = check_episodes(sa98(typo), "sa_98 query", 1)
    assert [(p.file, p.line, p.kind, p.reason) for p in problems] == [
        ("sa_98 query", 1, WARNING, "RETURN_DATE before RUNAWAY_DATE; episode treated as open")]
    assert len(episodes) == 1
    assert matches([record(101, 1, "20250601")], [typo]) == ({9}, {nic(1)})


def test_one_record_matches_two_episodes():
    long_one, short_one = (10, 101, "2025-04-10", "2025-04-20", 101), \
        (11, 101, "2025-04-14", "2025-04-16", 101)
    assert matches([record(101, 1, "20250415")], [long_one, short_one]) == ({10, 11}, {nic(1)})


def test_two_records_match_one_episode():
    assert matches([record(101, 1, "20250412"), record(101, 2, "20250418")], [EPISODE]) == (
        {7}, {nic(1), nic(2)})


def test_a_record_in_the_period_matches_an_episode_of_the_previous_quarter():
    recon = run_reconcile([record(101, 1, "20250307")],
                          [(20, 101, "2025-02-20", "2025-03-05", 101)])
    assert recon.impact_not_in_dps.empty           # the episode is not in this period anyway
    assert recon.dps_not_in_impact.empty            # the record is in IMPACT
    assert table(recon.period_records, ["PID", "NIC", "IN_IMPACT"]) == [(101, nic(1), "Y")]


def test_a_duplicate_nic_is_counted_once_and_reported():
    parsed = parse(results(record(101, 1, "20250415"), record(101, 1, "20250415")))
    assert listed(parsed) == [(3, LEFT_OUT, "NIC repeated (first on line 2)")]
    recon = run_reconcile([record(101, 1, "20250415"), record(101, 1, "20250415")])
    assert len(recon.period_records) == 1
    assert recon.totals[5] == ["6-Houston", 0, 1, 0, 1, 0, 1, 0.0]
    assert recon.totals[-1] == ["STATEWIDE", 0, 1, 0, 1, 0, 1, 0.0]


def test_an_unknown_or_missing_county_gives_region_unknown_never_a_dropped_row():
    recon = run_reconcile(
        [record(124, 1, "20250401"), record(125, 2, "20250402"), record(101, 3, "20250403")],
        [(30, 555, "2025-04-05", "2025-04-06", None), (31, 124, "2025-04-07", None, None),
         (32, 101, "2025-04-08", "2025-04-09", 101)],
        sent=SENT_WITH_GAPS)
    assert table(recon.dps_not_in_impact, ["REGION", "PID"]) == [
        ("6-Houston", 101), ("Unknown", 124), ("Unknown", 125)]
    assert table(recon.impact_not_in_dps, ["REGION", "PID", "EPISODE_ID"]) == [
        ("6-Houston", 101, 32), ("Unknown", 124, 31), ("Unknown", 555, 30)]  # still missing 1st
    assert recon.totals[-2] == ["Unknown", 0, 2, 0, 2, 0, 2, 0.0]


def test_an_episode_without_a_county_takes_the_childs_county_from_the_sent_data():
    recon = run_reconcile([], [(33, 102, "2025-04-05", "2025-04-06", None)])
    assert table(recon.impact_not_in_dps, ["REGION", "COUNTY_NAME", "PID"]) == [
        ("7-Austin", "Travis", 102)]


def test_an_episode_of_a_child_not_in_care_during_the_period_is_noted():
    recon = run_reconcile([], [(40, 555, "2025-04-05", "2025-04-06", 15)])
    assert table(recon.impact_not_in_dps, ["PID", "EPISODE_ID", "NOTE"]) == [
        (555, 40, "not sent to DPS: not in care during the period; runaway recorded after "
                  "discharge: check the episode in IMPACT")]   # §10.5's wording


def test_an_episode_of_an_excluded_child_is_noted_with_the_reason():
    parsed = parse(results(), sent={101})
    episodes, _ = check_episodes(sa98((43, 124, "2025-04-05", "2025-04-06", 15)), "q", 1)
    listing = SendList({101: 101.0}, {124: "no usable DOB; no first name"})
    recon = reconcile(parsed, episodes, episodes, listing, REGIONS, PERIOD, RUN_DATE,
                      Rules(WINDOW, 30, 2))
    assert table(recon.impact_not_in_dps, ["PID", "NOTE"]) == [
        (124, "not sent to DPS: excluded (no usable DOB; no first name)")]


def test_an_episode_whose_dps_row_was_left_out_is_noted():
    recon = run_reconcile([row(pid="102", nic=nic(1), dlc="20250230")],
                          [(41, 102, "2025-04-05", "2025-04-06", 227),
                           (42, 101, "2025-04-05", "2025-04-06", 101)])
    assert table(recon.impact_not_in_dps, ["PID", "EPISODE_ID", "NOTE"]) == [
        (101, 42, ""), (102, 41, "DPS row for this PID on Exceptions (line 2)")]


def test_sa98_rows_without_pid_or_runaway_date_and_repeated_episode_ids_are_left_out():
    frame = sa98((50, 101, "2025-04-01", None, 101),
                 (51, None, "2025-04-02", None, 101),
                 (52, 102, None, None, 227),
                 (50, 123, "2025-04-03", None, 15),
                 (53, 123, "2025-04-04", "2025-04-05", 15))
    episodes, problems = check_episodes(frame, "sa_98 query", 1)
    assert [(p.file, p.line, p.kind, p.reason) for p in problems] == [
        ("sa_98 query", 2, LEFT_OUT, "column PID: missing"),
        ("sa_98 query", 3, LEFT_OUT, "column RUNAWAY_DATE: missing"),
        ("sa_98 query", 4, LEFT_OUT, "EPISODE_ID repeated (first on line 1)")]
    assert table(episodes, ["EPISODE_ID", "PID"]) == [(50, 101), (53, 123)]


def test_sa98_extract_rows_are_numbered_as_physical_lines_after_the_header():
    frame = sa98((60, 101, "2025-04-01", None, 101), (61, 101, "not a date", None, 101))
    _, problems = check_episodes(frame, "sa_98.csv", 2)
    assert [(p.file, p.line, p.reason) for p in problems] == [
        ("sa_98.csv", 3, "column RUNAWAY_DATE: missing")]


# ===========================================================================
# 3. Reports (§6)
# ===========================================================================

ZERO = [0, 0, 0, 0, 0, 0, None]   # three months, TOTAL, IN_IMPACT, NOT_IN_IMPACT, MATCH_PCT


def test_totals_list_regions_1_to_11_with_zeros_and_statewide_last():
    recon = run_reconcile([record(101, 1, "20250302"), record(101, 2, "20250531"),
                           record(102, 3, "20250415"), record(123, 4, "20250228"),
                           record(123, 5, "20250601")])
    assert recon.months == MONTHS
    assert [r[0] for r in recon.totals] == [*REGION_LABELS, "STATEWIDE"]
    assert recon.totals[5] == ["6-Houston", 1, 0, 1, 2, 0, 2, 0.0]
    assert recon.totals[6] == ["7-Austin", 0, 1, 0, 1, 0, 1, 0.0]
    assert all(r[1:] == ZERO for i, r in enumerate(recon.totals[:-1]) if i not in (5, 6))
    assert recon.totals[-1] == ["STATEWIDE", 1, 1, 1, 3, 0, 3, 0.0]


def test_totals_of_an_empty_answer_are_all_zeros():
    recon = run_reconcile([])
    assert recon.totals == [[label, *ZERO] for label in [*REGION_LABELS, "STATEWIDE"]]


def test_totals_have_an_unknown_row_only_when_it_has_rows():
    with_unknown = run_reconcile([record(124, 1, "20250501")], sent=SENT_WITH_GAPS)
    assert [r[0] for r in with_unknown.totals] == [*REGION_LABELS, "Unknown", "STATEWIDE"]
    assert with_unknown.totals[-2:] == [["Unknown", 0, 0, 1, 1, 0, 1, 0.0],
                                        ["STATEWIDE", 0, 0, 1, 1, 0, 1, 0.0]]
    rows = with_unknown.period_records
    direct = totals_by_region(rows[rows["REGION"] != "Unknown"], REGIONS, MONTHS)
    assert [r[0] for r in direct] == [*REGION_LABELS, "STATEWIDE"]


def test_region_labels_are_written_as_dfps_writes_them():
    already_prefixed = COUNTY_REGION.assign(
        REGION_NAME=[f"{r}-{n}" for r, n in zip(COUNTY_REGION["REGION"],
                                                COUNTY_REGION["REGION_NAME"], strict=True)])
    assert [label for _, label in build_regions(already_prefixed).labels] == \
        REGION_LABELS
    assert [label for _, label in REGIONS.labels] == REGION_LABELS


def test_report_columns_are_the_contracts():
    recon = run_reconcile([record(101, 1, "20250415")], [(70, 102, "2025-04-01", None, 227)])
    impact = report("impact").sheet("IMPACT not in DPS").table(recon)
    dps = report("dps").sheet("DPS not in IMPACT").table(recon)
    assert list(impact.columns) == [
        "REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", "DOB",
        "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NOTE", "STILL_MISSING",
        "AGE_AT_RUNAWAY", "NEAREST_NIC", "NEAREST_DLC", "DAYS_OUTSIDE_WINDOW"]
    assert list(dps.columns) == [
        "REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "MKE", "ORI",
        "ENTRY_DATE", "DLC", "CLEAR_DATE", "AGE_AT_DLC", "NEAREST_EPISODE_ID",
        "NEAREST_RUNAWAY_DATE", "NEAREST_RETURN_DATE", "DAYS_OUTSIDE_WINDOW"]   # §10.2
    assert table(impact, list(impact.columns)) == [
        ("7-Austin", "Travis", 102, 70, "Peña", "Zoë", D(2009, 4, 1), D(2025, 4, 1), None, 80,
         "", "Y", 16, None, None, None)]   # 16 on the day itself
    assert table(dps, list(dps.columns)) == [
        ("6-Houston", "Harris", 101, nic(1), "SMITH", "AMELIA", D(2009, 9, 9), "EMJ", "TX2270000",
         D(2025, 4, 15), D(2025, 4, 15), None, 15, None, None, None, None)]


def test_impact_rows_sort_by_region_then_still_missing_first_then_date_pid_episode():
    recon = run_reconcile([], [
        (15, 102, "2025-04-01", None, 101),            # 6, same date and PID as 14 and 12
        (10, 123, "2025-03-05", "2025-03-06", 15),     # 8
        (16, 555, "2025-03-02", "2025-03-03", None),   # Unknown: last despite the early date
        (11, 101, "2025-04-01", None, 101),            # 6
        (18, 123, "2025-05-01", "2025-05-02", 71),     # 10 (after 2, not between 1 and 2)
        (14, 102, "2025-04-01", "2025-04-02", 101),    # 6
        (13, 101, "2025-03-20", "2025-03-25", 101),    # 6, earliest
        (12, 102, "2025-04-01", "2025-04-03", 101),    # 6
        (17, 102, "2025-05-01", None, 227),            # 7
        (19, 123, "2025-05-30", "2025-05-31", 5),      # 2
    ])
    assert table(recon.impact_not_in_dps, ["REGION", "STILL_MISSING", "RUNAWAY_DATE", "PID",
                                           "EPISODE_ID"]) == [
        ("2-Abilene", "N", D(2025, 5, 30), 123, 19),
        ("6-Houston", "Y", D(2025, 4, 1), 101, 11),     # still missing: first in the region
        ("6-Houston", "Y", D(2025, 4, 1), 102, 15),
        ("6-Houston", "N", D(2025, 3, 20), 101, 13),
        ("6-Houston", "N", D(2025, 4, 1), 102, 12),
        ("6-Houston", "N", D(2025, 4, 1), 102, 14),
        ("7-Austin", "Y", D(2025, 5, 1), 102, 17),
        ("8-San Antonio", "N", D(2025, 3, 5), 123, 10),
        ("10-El Paso", "N", D(2025, 5, 1), 123, 18),
        ("Unknown", "N", D(2025, 3, 2), 555, 16)]


def test_dps_rows_are_sorted_by_region_number_unknown_last_then_dlc_pid_nic():
    sent = pd.DataFrame({"PID": [101, 102, 103, 123, 124, 171],
                         "COUNTY_CODE": [101.0, 101.0, 5.0, 15.0, None, 71.0]})
    recon = run_reconcile([record(124, 1, "20250301"), record(123, 2, "20250302"),
                           record(171, 3, "20250303"), record(102, 9, "20250410"),
                           record(102, 4, "20250410"), record(101, 5, "20250410"),
                           record(101, 6, "20250320"), record(103, 7, "20250530")], sent=sent)
    expected = [("2-Abilene", D(2025, 5, 30), 103, nic(7)),
                ("6-Houston", D(2025, 3, 20), 101, nic(6)),
                ("6-Houston", D(2025, 4, 10), 101, nic(5)),
                ("6-Houston", D(2025, 4, 10), 102, nic(4)),
                ("6-Houston", D(2025, 4, 10), 102, nic(9)),
                ("8-San Antonio", D(2025, 3, 2), 123, nic(2)),
                ("10-El Paso", D(2025, 3, 3), 171, nic(3)),
                ("Unknown", D(2025, 3, 1), 124, nic(1))]
    assert table(recon.dps_not_in_impact, ["REGION", "DLC", "PID", "NIC"]) == expected
    assert table(recon.period_records, ["REGION", "DLC", "PID", "NIC"]) == expected


def test_days_missing_is_return_or_run_date_minus_runaway():
    recon = run_reconcile([], [(80, 101, "2025-03-10", "2025-03-17", 101),
                               (81, 101, "2025-04-01", None, 101),
                               (82, 101, "2025-05-10", "2025-05-01", 101)])   # typo: open
    assert table(recon.impact_not_in_dps, ["EPISODE_ID", "RETURN_DATE", "DAYS_MISSING",
                                           "STILL_MISSING"]) == [
        (81, None, 80, "Y"), (82, D(2025, 5, 1), 41, "Y"), (80, D(2025, 3, 17), 7, "N")]


def test_reports_take_the_period_bounds_inclusively():
    recon = run_reconcile(
        [record(101, 1, "20250228"), record(101, 2, "20250301"), record(101, 3, "20250531"),
         record(101, 4, "20250601")],
        [(90, 102, "2025-02-28", "2025-02-28", 227), (91, 102, "2025-03-01", "2025-03-01", 227),
         (92, 102, "2025-05-31", "2025-05-31", 227), (93, 102, "2025-06-01", "2025-06-01", 227)])
    assert recon.impact_not_in_dps["EPISODE_ID"].tolist() == [91, 92]
    assert recon.dps_not_in_impact["NIC"].tolist() == [nic(2), nic(3)]


def test_matched_rows_stay_off_the_not_in_reports_and_on_the_records_sheet():
    recon = run_reconcile([record(101, 1, "20250412"), record(102, 2, "20250412")],
                          [(95, 101, "2025-04-10", None, 101),
                           (96, 123, "2025-04-10", None, 15)])
    assert recon.impact_not_in_dps["EPISODE_ID"].tolist() == [96]
    assert recon.dps_not_in_impact["NIC"].tolist() == [nic(2)]
    assert table(recon.period_records, ["NIC", "IN_IMPACT"]) == [(nic(1), "Y"), (nic(2), "N")]


def sa98_key(frame):
    return util.values_checksum(frame.drop(columns="LINE"))


def test_a_later_fetch_cut_at_the_published_end_has_the_published_key():
    """§6 "Publishing" (issue 21 §3.2): the reports of FY2025Q3 as of 2025-06-20 read sa_98
    over [2025-01-27, 2025-07-03]. A fetch on 2025-10-01 also holds episodes that began after
    2025-07-03, one without a county (which makes the query's whole-number COUNTY_CODE
    float); cut at 2025-07-03 (a row without a runaway date is in every fetch) it has the
    published rows' key. A row changed inside the range changes it."""
    assert Rules(WINDOW, 30, 2).fetch_range(PERIOD.start, PERIOD.end, RUN_DATE) == \
        (D(2025, 1, 27), D(2025, 7, 3))
    published = [(90, 101, "2025-04-10", None, 101), (91, 101, None, None, 101),
                 (92, 102, "2025-07-03", None, 227)]
    later = [published[0], (93, 101, "2025-08-01", None, None), published[1], published[2],
             (94, 102, "2025-07-04", "2025-07-09", 227)]      # in PID, EPISODE_ID order
    cut = util.fetched_until(number_lines(sa98(*later), 1), D(2025, 7, 3))
    assert cut["EPISODE_ID"].tolist() == [90, 91, 92]
    as_published = number_lines(sa98(*published), 1)
    assert (cut["COUNTY_CODE"].dtype, as_published["COUNTY_CODE"].dtype) == ("float64", "int64")
    assert sa98_key(cut) == sa98_key(as_published)
    closed = [(90, 101, "2025-04-10", "2025-06-25", 101), *later[1:]]
    assert sa98_key(util.fetched_until(number_lines(sa98(*closed), 1), D(2025, 7, 3))) \
        != sa98_key(as_published)


# ===========================================================================
# 4. Sheet continuation (§6)
# ===========================================================================


def test_a_long_sheet_continues_on_sheets_named_with_a_number(tmp_path):
    rows = [[n, nic(n), D(2025, 3, n)] for n in range(1, 10)]
    path = tmp_path / "records.xlsx"
    util.write_workbook(path, [util.Sheet("Records", ["N", "NIC", "DLC"], rows)],
                        max_rows_per_sheet=5)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Records", "Records (2)", "Records (3)"]
    header = ("N", "NIC", "DLC")
    got = {title: list(workbook[title].iter_rows(values_only=True))
           for title in workbook.sheetnames}
    as_read = [(n, nic(n), dt.datetime(2025, 3, n)) for n in range(1, 10)]
    assert got == {"Records": [header, *as_read[0:4]], "Records (2)": [header, *as_read[4:8]],
                   "Records (3)": [header, as_read[8]]}
    for title in workbook.sheetnames:
        sheet = workbook[title]
        assert sheet.max_row <= 5
        assert sheet.freeze_panes == "A2"
        assert all(cell.is_date for (cell,) in sheet.iter_rows(min_row=2, min_col=3, max_col=3))


def test_sheet_titles_for_a_continued_sheet():
    assert sheet_titles("Records", 9, 5) == ["Records", "Records (2)", "Records (3)"]
    assert sheet_titles("Records", 8, 5) == ["Records", "Records (2)"]
    assert sheet_titles("Records", 0, 5) == ["Records"]


def test_a_sheet_exactly_at_the_limit_does_not_continue(tmp_path):
    path = tmp_path / "exact.xlsx"
    util.write_workbook(path, [util.Sheet("Records", ["N"], [[n] for n in range(4)])],
                        max_rows_per_sheet=5)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Records"]
    assert workbook["Records"].max_row == 5


def test_an_optional_column_may_be_absent_and_a_partner_column_is_carried():
    """§4 with a layout (dps_file.optional_results_columns): RACE optional and left out by
    DPS reads blank; AGENCY_CASE, beyond the contract, is carried to the records as text."""
    settings = DpsFileSettings(
        results_columns=["PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "SEX", "MKE", "ORI",
                         "ENTRY_DATE", "DLC", "CLEAR_DATE"],
        optional_results_columns=["RACE", "AGENCY_CASE"])
    data = ("PID|NIC|LAST_NAME|FIRST_NAME|DOB|SEX|MKE|ORI|ENTRY_DATE|DLC|CLEAR_DATE|AGENCY_CASE\r\n"
            f"101|{nic(1)}|X|Y||F|EMJ|TX2270000|20250415|20250415||A-17\r\n").encode()
    parsed = parse_results(data, "r.txt", settings, RUN_DATE, SENT_PIDS)
    assert parsed.problems == [] and parsed.extra_columns == []
    assert parsed.records[["RACE", "AGENCY_CASE"]].values.tolist() == [["", "A-17"]]
