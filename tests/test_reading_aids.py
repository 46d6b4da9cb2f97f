"""Reading aids and follow-up sheets (docs/data-contract.md §8, §9) on tiny inputs: the Trend
sheet over recorded periods, print settings read back from a file, the overlap and
clear-before-entry warnings, and the summary mail's text for a fixed run."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pandas as pd
import pytest

from exchange.answer import DateParser, QuickReader, ResultsLayout, ResultsReader, repeated_values
from exchange.config import DpsFileSettings
from exchange.episodes import build_regions, check_episodes, number_lines
from exchange.excel import write_workbook
from exchange.followup import load_trend, period_key, record_period, trend_grid
from exchange.periods import parse_period
from exchange.reconcile import SendList, reconcile
from exchange.reports import trend_sheet
from exchange.rules import Rules
from exchange.summary import MailFacts, success_mail
from tests.scenario import RESULTS_HEADER, parsed_both_ways, results_line

RUN_DATE = dt.date(2025, 6, 20)
PERIOD = parse_period("FY2025Q3")
COUNTIES = pd.DataFrame({"COUNTY_CODE": [101, 227], "COUNTY_NAME": ["Harris", "Travis"],
                         "REGION": [6, 7], "REGION_NAME": ["Houston", "Austin"]})
REGIONS = build_regions(COUNTIES)
SA98 = ["EPISODE_ID", "PID", "LAST_NAME", "FIRST_NAME", "DOB", "RUNAWAY_DATE", "RETURN_DATE",
        "COUNTY_CODE"]


def episodes(*rows):
    frame = pd.DataFrame([{"EPISODE_ID": e, "PID": p, "LAST_NAME": "X", "FIRST_NAME": "Y",
                           "DOB": "2010-01-01", "RUNAWAY_DATE": ran, "RETURN_DATE": back,
                           "COUNTY_CODE": county} for e, p, ran, back, county in rows],
                         columns=SA98)
    return check_episodes(number_lines(frame, 1), "sa_98 query", RUN_DATE)


def results(*lines):
    data = ("\r\n".join([RESULTS_HEADER, *lines]) + "\r\n").encode()
    return parsed_both_ways(data, "results.txt", DpsFileSettings(), RUN_DATE, {1, 2, 3})


def trend_row(label, number, episodes_count, unreported):
    return {"REGION": label, "REGION_NUMBER": number, "EPISODES": episodes_count,
            "IMPACT_NOT_IN_DPS": unreported, "DPS_NOT_IN_IMPACT": 0, "DPS_EVENTS": 0,
            "RETURNED_STILL_ACTIVE": 0}


def history_of(*periods):
    history = load_trend("/nonexistent/trend.csv")
    for label, houston, statewide in periods:
        history = record_period(history, label, period_key(label),
                                [trend_row("6-Houston", 6, *houston),
                                 trend_row("STATEWIDE", 100, *statewide)])
    return history


def test_overlapping_episodes_of_one_child_get_a_warning_on_the_later_one():
    _, problems = episodes((1, 1, "2025-03-01", "2025-03-10", 101),
                           (2, 1, "2025-03-05", "2025-03-06", 101),      # inside episode 1
                           (3, 1, "2025-04-01", None, 101),              # open: to the run date
                           (4, 1, "2025-05-01", "2025-05-02", 101),      # inside open episode 3
                           (5, 2, "2025-03-05", "2025-03-06", 227))      # another child
    assert [(p.line, p.pid, p.key, p.reason, p.who_acts) for p in problems] == [
        (2, 1, "2", "overlaps episode 1 of the same child (line 1)", "IMPACT data"),
        (4, 1, "4", "overlaps episode 3 of the same child (line 3)", "IMPACT data")]


def test_a_clear_date_before_its_entry_date_is_a_warning_and_the_row_is_kept():
    parsed = results(results_line(1, "M000000001", "20250410", entry="20250411",
                                  clear="20250405"))
    assert [(p.line, p.pid, p.key, p.kind, p.reason) for p in parsed.problems] == [
        (2, 1, "M000000001", "warning", "column CLEAR_DATE: before ENTRY_DATE")]
    assert parsed.records["NIC"].tolist() == ["M000000001"]


def test_a_faulty_first_row_never_owns_its_nic_the_usable_later_row_does():
    parsed = results(results_line(1, "M000000001", "20250230", entry="20250401"),  # bad DLC
                     results_line(1, "M000000001", "20250410"),     # owns the NIC
                     results_line(2, "M000000001", "20250411"))     # a repeat
    assert [(p.line, p.reason) for p in parsed.problems] == [
        (2, "column DLC: missing or not a real date"),
        (4, "NIC repeated (first on line 3)")]
    assert parsed.records["LINE"].tolist() == [3]


def test_the_trend_sheet_shows_counts_then_episodes_then_shares_and_a_chart(tmp_path):
    history = history_of(("FY2025Q1", (10, 2), (100, 20)), ("FY2025Q3", (8, 1), (80, 8)),
                         ("FY2025Q2", (0, 0), (50, 10)))
    history = record_period(history, "FY2025Q2", period_key("FY2025Q2"),
                            [trend_row("6-Houston", 6, 5, 1),
                             trend_row("STATEWIDE", 100, 60, 15)])   # republished: replaced
    path = tmp_path / "t.xlsx"
    write_workbook(path, [trend_sheet(*trend_grid(history, "FY2025Q3"))], marking="SECRET")
    sheet = openpyxl.load_workbook(path)["Trend"]
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0] == ["REGION", "FY2025Q1", "FY2025Q2", "FY2025Q3"]
    assert rows[1] == ["Runaway episodes with no DPS record (IMPACT not in DPS)", None, None, None]
    assert rows[7] == ["6-Houston", 2, 1, 1]
    assert rows[13] == ["STATEWIDE", 20, 15, 8]
    assert rows[15] == ["Runaway episodes in the period (the % denominators)", None, None, None]
    assert rows[21] == ["6-Houston", 10, 5, 8]
    assert rows[27] == ["STATEWIDE", 100, 60, 80]
    assert rows[29] == ["% of the period's episodes unreported", None, None, None]
    assert rows[35] == ["6-Houston", 20.0, 20.0, 12.5]
    assert rows[30] == ["1", None, None, None]          # no episodes recorded: no share
    assert rows[-1] == ["STATEWIDE", 20.0, 25.0, 10.0]
    # counts print as counts, shares with a % sign ("12.5%", "20.0%": never "20" beside "12.5")
    assert [sheet.cell(8, c).number_format for c in (2, 3, 4)] == ["General"] * 3
    assert [sheet.cell(36, c).number_format for c in (2, 3, 4)] == ['0.0"%"'] * 3
    assert sheet.cell(36, 1).number_format == "General"
    assert sheet.auto_filter.ref == "A1:D13"            # the regions filter, STATEWIDE stays
    assert len(sheet._charts) == 1
    assert [b.id for b in sheet.row_breaks.brk] == [len(rows) + 1]   # the chart's own page


def test_every_sheet_prints_letter_landscape_one_page_wide_with_marking_and_footer(tmp_path):
    path = tmp_path / "t.xlsx"
    history = history_of(("FY2025Q3", (8, 1), (80, 8)))
    write_workbook(path, [trend_sheet(*trend_grid(history, "FY2025Q3"))], marking="CONFIDENTIAL")
    sheet = openpyxl.load_workbook(path)["Trend"]
    assert (sheet.page_setup.orientation, sheet.page_setup.paperSize, sheet.page_setup.fitToWidth,
            sheet.page_setup.fitToHeight) == ("landscape", 1, 1, 0)
    assert (sheet.page_margins.left, sheet.page_margins.right) == (0.4, 0.4)
    assert sheet.sheet_properties.pageSetUpPr.fitToPage is True
    assert sheet.print_title_rows == "$1:$1"
    assert sheet.oddHeader.center.text == "CONFIDENTIAL"
    assert (sheet.oddFooter.left.text, sheet.oddFooter.center.text,
            sheet.oddFooter.right.text) == ("&A", "&F", "Page &P of &N")


def reconciled():
    kept, _ = episodes((10, 1, "2025-04-01", None, 101),              # still missing, no record
                       (11, 2, "2025-04-01", "2025-04-05", 227),       # matched
                       (12, 3, "2025-04-10", "2025-04-12", 227),       # no record: returned
                       (13, 9, "2025-04-10", "2025-04-12", 227))       # not in care
    parsed = results(results_line(2, "M000000002", "20250402"),
                     results_line(3, "M000000003", "20250101"))        # far outside: unmatched
    listing = SendList({1: 101.0, 2: 227.0, 3: 227.0})
    return reconcile(parsed, kept, kept, listing, REGIONS, PERIOD, RUN_DATE, Rules(3, 30, 2))


def test_the_summary_mail_for_a_fixed_run():
    recon = reconciled()
    facts = MailFacts(PERIOD, {"IMPACT_not_in_DPS_FY2025_Q3.xlsx": "/share/I.xlsx"}, 0,
                      "20250620T090000Z-receive-0001", "20250620T070000Z-send-0001",
                      "FY2025Q2", {"7-Austin": 4, "STATEWIDE": 5})
    subject, text, html = success_mail(recon, facts)
    assert subject == "[DPS exchange] reports for FY2025Q3 are ready"
    lines = text.splitlines()
    assert lines[:12] == [
        "The DPS missing-person reports for FY2025Q3 (2025-03-01 to 2025-05-31) are ready.",
        "",
        "Still missing, never reported: 1 (0 ran before this period)",      # §10.1's lead
        "Runaways of 2 days or more reported to law enforcement (HHS-OIG's method): 1 on time, "
        "0 late, 2 not reported",                                          # §10.3
        "Runaway episodes in the period with a DPS record: 1 of 4 (25.0%)",
        "DPS records in the period found in IMPACT: 1 of 1 (100.0%)",
        "Runaway episodes with no DPS record: 3",
        "  still missing: 1",
        "  returned: 1",
        "  not sent to DPS: 1",
        "Returned children whose DPS entry is still active: 1",
        "Rows on the Exceptions sheets: 0"]
    austin = next(line for line in lines if line.strip().startswith("7-Austin"))
    assert austin.split() == ["7-Austin", "0", "0", "3", "2", "4", "0", "1", "1"]
    houston = next(line for line in lines if line.strip().startswith("6-Houston"))
    assert houston.split()[:3] == ["6-Houston", "1", "0"]   # still missing, ran before
    assert "  IMPACT_not_in_DPS_FY2025_Q3.xlsx: /share/I.xlsx" in lines
    assert lines[-1] == ("Run 20250620T090000Z-receive-0001, answering upload "
                         "20250620T070000Z-send-0001.")
    assert "IMPACT not in DPS, FY2025Q2" in text and "IMPACT not in DPS, FY2025Q2" in html
    assert [v for v in ("M000000002", "M000000003", "2010-01-01") if v in text + html] == []


def test_match_percentages_with_zero_denominators_are_blank_not_an_error():
    kept, _ = episodes()
    recon = reconcile(results(), kept, kept, SendList({}), REGIONS, PERIOD, RUN_DATE,
                      Rules(3, 30, 2))
    assert recon.totals[-1] == ["STATEWIDE", 0, 0, 0, 0, 0, 0, None]
    subject, text, _ = success_mail(recon, MailFacts(PERIOD, {}, 0, "r", "s", None, None))
    assert "Runaway episodes in the period with a DPS record: 0 of 0" in text


def test_age_at_runaway_counts_whole_years_and_a_birthday_on_its_day():
    from exchange.reconcile import whole_years

    born = pd.to_datetime(pd.Series(["2009-04-01", "2009-04-01", "2009-04-01", None,
                                     "2008-02-29"]))
    on = pd.to_datetime(pd.Series(["2025-03-31", "2025-04-01", "2025-04-02", "2025-04-01",
                                   "2025-02-28"]))
    assert whole_years(born, on).tolist() == [15, 16, 16, pd.NA, 16]


def test_still_missing_is_y_for_open_and_return_before_runaway_n_for_closed():
    kept, _ = episodes((20, 1, "2025-04-01", None, 101),                 # open
                       (21, 1, "2025-05-10", "2025-05-01", 101),         # return before: open
                       (22, 2, "2025-04-01", "2025-04-03", 227))         # closed
    recon = reconcile(results(), kept, kept, SendList({1: 101.0, 2: 227.0}), REGIONS, PERIOD,
                      RUN_DATE, Rules(3, 30, 2))
    flags = dict(zip(recon.impact_not_in_dps["EPISODE_ID"],
                     recon.impact_not_in_dps["STILL_MISSING"], strict=True))
    assert flags == {20: "Y", 21: "Y", 22: "N"}


def test_a_return_after_the_run_date_is_still_missing_on_the_run_date():
    kept, _ = episodes((30, 1, "2025-05-02", "2025-07-03", 101))      # back after 2025-06-20
    recon = reconcile(results(), kept, kept, SendList({1: 101.0}), REGIONS, PERIOD, RUN_DATE,
                      Rules(3, 30, 2))
    row = recon.impact_not_in_dps.iloc[0]
    assert (row["STILL_MISSING"], row["DAYS_MISSING"]) == ("Y", 49)   # to the run date


def test_the_timeliness_sheet_counts_the_rows_to_act_on_per_region():
    """Issue 19: per-region counts of still-missing and unreported rows at a glance, beside
    §10.3's grid; STATEWIDE holds every row (a region missing from the grid included)."""
    from exchange.reports import timeliness_sheet

    recon = reconciled()
    sheet = timeliness_sheet(recon)
    by_region = {row[0]: row[-2:] for row in sheet.rows}
    assert sheet.columns[-2:] == ["STILL_MISSING_NOW", "UNREPORTED_IN_PERIOD"]
    assert by_region["6-Houston"] == [1, 1]        # episode 10: away, no record
    assert by_region["STATEWIDE"] == [len(recon.still_missing), len(recon.impact_not_in_dps)]


def test_a_region_only_the_standing_list_has_gets_its_row_so_regions_add_up_to_statewide():
    """A child with no county (REGION Unknown) who ran before the period is on `Still missing
    now` only: the Timeliness sheet and the mail's region table still give Unknown a row."""
    kept, _ = episodes((10, 1, "2025-04-01", None, 101),              # in the period
                       (40, 4, "2024-08-01", None, None))               # earlier, no county
    recon = reconcile(results(), kept, kept, SendList({1: 101.0}), REGIONS, PERIOD, RUN_DATE,
                      Rules(3, 30, 2))
    from exchange.reports import timeliness_sheet
    from exchange.summary import region_table

    rows = {row[0]: row for row in timeliness_sheet(recon).rows}
    assert list(rows)[-2:] == ["Unknown", "STATEWIDE"]
    assert rows["Unknown"] == ["Unknown", 0, 0, 0, 0, None, 1, 0]
    assert rows["STATEWIDE"][-2:] == [2, 1]
    columns, table = region_table(recon, MailFacts(PERIOD, {}, 0, "r", "s", None, None))
    mailed = {row[0]: dict(zip(columns, row, strict=True)) for row in table}
    assert [row[0] for row in table][-2:] == ["Unknown", "STATEWIDE"]
    assert (mailed["Unknown"]["Still missing, never reported"],
            mailed["Unknown"]["of them ran before the period"],
            mailed["Unknown"]["Episodes"]) == (1, 1, 0)
    assert sum(mailed[label]["Still missing, never reported"] for label in mailed
               if label != "STATEWIDE") == mailed["STATEWIDE"]["Still missing, never reported"]


def test_the_lead_line_says_apart_who_ran_after_the_period():
    """The standing list runs to the run date: a child who ran in June (after FY2025Q3 ends on
    May 31, before the 2025-06-20 run) is counted apart from those who ran before."""
    from exchange.reports import impact_lead

    kept, _ = episodes((10, 1, "2025-04-01", None, 101),      # in the period
                       (40, 4, "2024-08-01", None, 101),      # before it
                       (41, 5, "2025-06-10", None, 227),      # after it
                       (42, 6, "2025-06-12", None, 227))      # after it
    recon = reconcile(results(), kept, kept, SendList({1: 101.0}), REGIONS, PERIOD, RUN_DATE,
                      Rules(3, 30, 2))
    assert impact_lead(recon, PERIOD)[0] == ("Still missing, never reported",
                                             "4 (1 ran before this period, 2 after it)")


QUICK_CASES = {   # a line the quick path may take, and one per reason it must leave a line
    "clean": (results_line(1, "M000000001", "20250410", dob="20100101", clear="20250412"), True),
    "lower-case MKE is still clean": (results_line(1, "M000000001", "20250410", mke="emj"), True),
    "PID not sent": (results_line(9, "M000000001", "20250410"), False),
    "PID not digits": (results_line(1, "M000000001", "20250410").replace("1|", "1a|", 1), False),
    "NIC malformed": (results_line(1, "N000000001", "20250410"), False),
    "DLC not a date": (results_line(1, "M000000001", "20250231"), False),
    "DLC after the run date": (results_line(1, "M000000001", "20250621"), False),
    "unknown MKE": (results_line(1, "M000000001", "20250410", mke="XYZ"), False),
    "ORI not TX": (results_line(1, "M000000001", "20250410", ori="OK0000000"), False),
    "DOB not a date": (results_line(1, "M000000001", "20250410", dob="2010"), False),
    "CLEAR_DATE before ENTRY_DATE": (results_line(1, "M000000001", "20250410",
                                                  clear="20250401"), False),
    "control character": (results_line(1, "M000000001", "20250410", last="A\x01B"), False),
    "a field short": (results_line(1, "M000000001", "20250410").rsplit("|", 1)[0], False),
}


@pytest.mark.parametrize("case", QUICK_CASES, ids=str)
def test_the_quick_path_takes_only_a_line_the_careful_one_would_keep_as_it_is(case):
    line, taken = QUICK_CASES[case]
    layout = ResultsLayout()
    position = {name: i for i, name in enumerate(layout.columns)}
    reader = ResultsReader("results.txt", position, len(position), DateParser("%Y%m%d"),
                           RUN_DATE, {1, 2, 3}, layout)
    quick = QuickReader(reader, repeated_nics=set())
    assert quick.take(2, line, [f.strip() for f in line.split("|")]) is taken
    quick.flush()
    assert reader.columns["LINE"] == ([2] if taken else [])
    results(line)          # and both ways give the same (parsed_both_ways)


def test_a_nic_two_lines_carry_takes_the_careful_path_for_both():
    lines = ["1|M000000001|x", "2|M000000002|x", "3|M000000001|x", "4"]
    assert repeated_values(lines, [0, 1, 2, 3], "|", 1) == {"M000000001"}
    parsed = results(results_line(1, "M000000001", "20250410"),
                     results_line(2, "M000000001", "20250411"))
    assert parsed.records["LINE"].tolist() == [2]
    assert [(p.line, p.reason) for p in parsed.problems] == [
        (3, "NIC repeated (first on line 2)")]
