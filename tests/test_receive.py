"""The receive step end to end: real sshd, real SMTP, real files (docs/data-contract.md §4-§7)."""

import datetime as dt
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

import openpyxl
import pytest

from exchange.inbox import AnswerPlace, fetch_answer, look_at_answer
from exchange.reports import REPORTS as SPECS
from tests.scenario import (
    DOBS,
    NAMES,
    RESULTS_HEADER,
    report_file,
    report_files,
    results_line,
    scenario_answer,
)

AS_OF = ("--as-of", "2025-06-20")
TRAVIS = ["Travis County Sheriff's Office", "(000) 555-0108"]   # demo/ori_directory.csv

security = pytest.mark.reliability("security")
D = dt.datetime
REPORTS = report_files()   # every report of the registry, as the share lists them


def assert_rows_by_name(rows, expected):
    """A sheet's rows equal `expected` (header first) with its columns found by header name:
    the print layout puts the printed columns first (§10.6), the contract names the columns."""
    assert sorted(rows[0]) == sorted(expected[0])
    positions = [rows[0].index(name) for name in expected[0]]
    assert [[row[i] for i in positions] for row in rows] == expected


def sheet_rows(path, title):
    workbook = openpyxl.load_workbook(path)
    return [list(row) for row in workbook[title].iter_rows(values_only=True)]


@pytest.fixture
def mailed(workspace, smtp_server):
    port, mailbox = smtp_server
    workspace.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                              "recipients": ["analyst@dfps.example"]})
    return mailbox


@pytest.fixture
def sent(workspace):
    assert workspace.send(*AS_OF) == 0
    return workspace


def test_four_reports_from_the_scenario(sent, mailed):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    share = sent.folder("share")
    assert sorted(p.name for p in share.iterdir()) == REPORTS

    impact = sheet_rows(share / report_file("impact"), "IMPACT not in DPS")
    assert_rows_by_name(impact, [       # columns found by header name (§10.6)
        ["REGION", "COUNTY_NAME", "PID", "EPISODE_ID", "LAST_NAME", "FIRST_NAME", "CASEWORKER",
         "UNIT", "SUPERVISOR", "DOB", "RUNAWAY_DATE", "RETURN_DATE", "DAYS_MISSING", "NOTE",
         "STILL_MISSING", "AGE_AT_RUNAWAY", "NEAREST_NIC", "NEAREST_DLC", "DAYS_OUTSIDE_WINDOW"],
        ["6-Houston", "Harris", 1007, 506, "Quiñónez", "Dulce", None, None, None, D(2008, 3, 3),
         D(2025, 5, 1), D(2025, 5, 3), 2, None, "N", 17, "M000000007", D(2025, 5, 7), 1],
        ["8-San Antonio", "Bexar", 1003, 503, "De La Cruz", "José", None, None, None, None,
         D(2025, 4, 5), D(2025, 4, 6), 1, "not sent to DPS: excluded (no usable DOB)", "N", None,
         None, None, None],
        ["10-El Paso", "El Paso", 1004, 504, "Nguyễn", "Thị Lan", None, None, None,
         D(2010, 7, 20), D(2025, 5, 20), D(2025, 5, 25), 5, None, "N", 14, None, None, None],
    ])
    dps = sheet_rows(share / report_file("dps"), "DPS not in IMPACT")
    assert_rows_by_name(dps, [
        ["REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "MKE", "ORI",
         "AGENCY", "PHONE", "ENTRY_DATE", "DLC", "CLEAR_DATE", "AGE_AT_DLC",
         "NEAREST_EPISODE_ID", "NEAREST_RUNAWAY_DATE", "NEAREST_RETURN_DATE",
         "DAYS_OUTSIDE_WINDOW"],
        ["6-Houston", "Harris", 1007, "M000000007", "QUINONEZ", "DULCE", None, "EMJ",
         "TX2270000", *TRAVIS, D(2025, 5, 7), D(2025, 5, 7), None, None,
         506, D(2025, 5, 1), D(2025, 5, 3), 1],
        ["7-Austin", "McLennan", 1005, "M000000005", "SMITH-JONES", "AMELIA", None, "EMJ",
         "TX2270000", *TRAVIS, D(2025, 4, 15), D(2025, 4, 15), None, None,
         None, None, None, None],
    ])
    returned = sheet_rows(share / report_file("returned"), "Returned still active")
    assert_rows_by_name(returned, [
        ["REGION", "COUNTY_NAME", "PID", "NIC", "LAST_NAME", "FIRST_NAME", "CASEWORKER", "UNIT",
         "SUPERVISOR", "DOB", "MKE", "ORI", "AGENCY", "PHONE", "ENTRY_DATE", "DLC", "EPISODE_ID",
         "RUNAWAY_DATE", "RETURN_DATE", "DAYS_SINCE_RETURN", "IN_CARE"],
        ["6-Houston", "Harris", 1001, "M000000001", "PENA", "ZOE", "Worker Casey",
         "6-Houston Unit 2", "Supervisor Drew", D(2009, 4, 1), "EMJ", "TX2270000", *TRAVIS,
         D(2025, 3, 11), D(2025, 3, 11), 501, D(2025, 3, 10), D(2025, 3, 15), 97, "Y"],
    ])
    totals = sheet_rows(share / report_file("totals"), "Totals by region")
    assert totals[0] == ["REGION", "DLC 2025-03", "DLC 2025-04", "DLC 2025-05", "TOTAL",
                         "IN_IMPACT", "NOT_IN_IMPACT", "MATCH_PCT"]
    assert [row[0] for row in totals[1:]] == [
        "1-Lubbock", "2-Abilene", "3-Arlington", "4-Tyler", "5-Beaumont", "6-Houston", "7-Austin",
        "8-San Antonio", "9-Midland", "10-El Paso", "11-Edinburg", "STATEWIDE"]
    assert totals[6] == ["6-Houston", 2, 0, 1, 3, 2, 1, 66.7]
    assert totals[7] == ["7-Austin", 0, 2, 0, 2, 1, 1, 50.0]
    assert totals[-1] == ["STATEWIDE", 2, 2, 1, 5, 3, 2, 60.0]
    assert all(row[1:] == [0, 0, 0, 0, 0, 0, None] for row in totals[1:6] + totals[8:12])
    records = sheet_rows(share / report_file("totals"), "Records")
    in_impact = records[0].index("IN_IMPACT")     # found by header name (§10.6)
    assert [(r[2], r[3], r[in_impact]) for r in records[1:]] == [
        (1006, "M000000006", "Y"), (1001, "M000000001", "Y"), (1007, "M000000007", "N"),
        (1005, "M000000005", "N"), (1002, "M000000002", "Y")]
    workbook = openpyxl.load_workbook(share / report_file("totals"))
    assert len(workbook["Totals by region"]._charts) == 1


def test_every_report_has_exceptions_and_a_read_me_and_a_styled_frozen_header(sent):
    results, counts = scenario_answer()
    results += b"1001|M00000000X|PENA|ZOE||F|W|EMJ|TX2270000|20250311|20250311|\r\n"
    counts = counts.replace(b"RESULT_RECORDS|5", b"RESULT_RECORDS|6")
    sent.put_answer(results, counts)
    assert sent.receive(*AS_OF) == 0
    for name in REPORTS:
        workbook = openpyxl.load_workbook(sent.folder("share") / name)
        assert workbook.sheetnames[-2:] == ["Exceptions", "Read me"]
        first = workbook[workbook.sheetnames[0]]
        assert first.freeze_panes == "A2"
        assert first.auto_filter.ref.startswith("A1:")
        assert first["A1"].font.bold
        about = dict(row for row in sheet_rows(sent.folder("share") / name, "Read me")[1:])
        assert about["period"] == "FY2025Q3"
        assert about["match window W (days)"] == 3
        assert (about["near-miss days N"], about["clear grace days G"]) == (30, 2)
        assert about["RECORDS_RECEIVED"] == "6 / 6"
        assert about["RESULT_RECORDS"] == "6 / 6"
        assert about["exceptions"] == 1
        assert about["input Dfps-missing-person-results.txt rows"] == 6
        assert about["input Dfps-missing-person-counts.txt rows"] == 3
        assert about["input sa_98 query rows"] == 6
        assert len(about["input Dfps-missing-person-results.txt SHA-256"]) == 64
        exceptions = sheet_rows(sent.folder("share") / name, "Exceptions")
        assert exceptions == [["FILE", "LINE", "PID", "KEY", "KIND", "REASON", "WHO_ACTS"],
                              ["Dfps-missing-person-results.txt", 7, 1001, None, "row left out",
                               "column NIC: missing or not M followed by 9 digits", "DPS"]]


@security
def test_success_mail_has_counts_per_region_and_no_personal_detail(sent, mailed):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    [message] = mailed.messages
    assert message["Subject"] == "[DPS exchange] reports for FY2025Q3 are ready"
    [text, html] = mailed.bodies()
    assert "6-Houston" in text and str(sent.folder("share") / report_file("impact")) in text
    assert "<table" in html
    assert [v for v in NAMES + DOBS if v in text + html] == []
    assert not any(part.get_filename() for part in message.walk())


def test_remote_files_move_only_after_publishing_and_are_archived(sent):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    manifest = sent.manifests("receive")[-1]
    assert manifest["outcome"] == "reported"
    assert sorted(os.listdir(sent.answer_dir)) == ["processed"]
    run_id = manifest["run_id"]
    assert sorted(os.listdir(sent.answer_dir / "processed")) == [
        f"{run_id}_Dfps-missing-person-counts.txt", f"{run_id}_Dfps-missing-person-results.txt"]
    archive = sent.folder("archive") / "receive" / "FY2025_Q3"
    results, counts = scenario_answer()
    assert (archive / f"{run_id}_Dfps-missing-person-results.txt").read_bytes() == results
    assert (archive / f"{run_id}_Dfps-missing-person-counts.txt").read_bytes() == counts
    assert not (sent.folder("staging") / run_id).exists()


def test_control_totals_that_disagree_publish_nothing(sent, mailed):
    results, counts = scenario_answer()
    sent.put_answer(results, counts.replace(b"RESULT_RECORDS|5", b"RESULT_RECORDS|4"))
    result = sent.cli("receivedps.py", *AS_OF)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith(
        "Dfps-missing-person-counts.txt: RESULT_RECORDS=4 but there are 5 data lines in "
        "Dfps-missing-person-results.txt; control totals disagree, nothing published")
    assert list(sent.folder("share").iterdir()) == []
    assert not (sent.folder("outbox") / "reports").exists()
    assert sorted(os.listdir(sent.answer_dir)) == ["Dfps-missing-person-counts.txt",
                                                   "Dfps-missing-person-results.txt"]
    [alert] = mailed.messages
    assert alert["Subject"] == "[DPS exchange] receive FAILED FY2025Q3"
    assert "RESULT_RECORDS=4 but there are 5 data lines" in mailed.bodies()[0]


def test_records_received_must_match_the_upload(sent):
    results, counts = scenario_answer()
    sent.put_answer(results, counts.replace(b"RECORDS_RECEIVED|6", b"RECORDS_RECEIVED|7"))
    result = sent.cli("receivedps.py", *AS_OF, "--no-wait")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].endswith(
        "counts file says RECORDS_RECEIVED=7, we sent 6 (--no-wait)")


def test_no_answer_yet_exits_3(sent):
    result = sent.cli("receivedps.py", *AS_OF, "--no-wait")
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].endswith(
        f"DPS answer not complete yet in {sent.remote_prefix}/TO_DFPS: waiting for "
        f"Dfps-missing-person-results.txt and Dfps-missing-person-counts.txt (--no-wait)")


def test_an_answer_older_than_the_upload_is_not_ours(sent):
    sent.put_answer(*scenario_answer())
    old = time.time() - 3600
    for path in sent.answer_dir.iterdir():
        os.utime(path, (old, old))
    assert sent.receive(*AS_OF, "--no-wait") == 3
    assert "only an older answer is there" in sent.manifests("receive")[-1]["error"]


def test_maximum_wait_ends_in_exit_3(sent):
    sent.configure(receive={"max_wait_hours": 0.0003, "poll_seconds": 0.3})
    assert sent.receive(*AS_OF) == 3
    assert sent.manifests("receive")[-1]["error"].startswith(
        "DPS answer not complete after 0.0003 h")


def test_receive_waits_for_a_file_that_is_still_growing(sent):
    sent.configure(receive={"poll_seconds": 0.2, "settle_seconds": 1.5, "max_wait_hours": 0.02})
    results, counts = scenario_answer()
    sent.answer_dir.mkdir(parents=True)

    def dps_writes_slowly():
        with open(sent.answer_dir / "Dfps-missing-person-counts.txt", "wb") as handle:
            handle.write(counts)
        with open(sent.answer_dir / "Dfps-missing-person-results.txt", "wb") as handle:
            for line in results.splitlines(keepends=True):
                handle.write(line)
                handle.flush()
                time.sleep(0.3)   # well inside settle_seconds, also on a loaded machine

    writer = threading.Thread(target=dps_writes_slowly)
    writer.start()
    assert sent.receive(*AS_OF) == 0
    writer.join()
    archived = sent.manifests("receive")[-1]["archived"]
    assert [Path(p).read_bytes() for p in archived] == [results, counts]
    assert "answer there; checking it has stopped changing" in sent.log_text()


def test_rerun_with_the_same_inputs_publishes_nothing_new(sent, mailed):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    assert sent.receive(*AS_OF) == 0
    assert sent.manifests("receive")[-1]["outcome"] == "nothing new"
    assert len(mailed.messages) == 1


def test_rerun_with_force_regenerates_from_the_archive(sent, mailed):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    (sent.folder("share") / report_file("dps")).unlink()
    assert sent.receive(*AS_OF, "--force") == 0
    assert sorted(p.name for p in sent.folder("share").iterdir()) == REPORTS
    assert len(mailed.messages) == 2


def share_bytes(workspace):
    return {p.name: p.read_bytes() for p in workspace.folder("share").iterdir()}


def test_a_later_run_date_with_the_same_answer_publishes_nothing_new_unless_forced(
        sent, mailed):
    """Issue 21 §3.2 (§6 "Publishing"): the reports of FY2025Q3 are out as of 2025-06-20. A
    receive on a later day fetches sa_98 up to that day and sees an episode that began after
    the range the reports read; that alone republishes nothing (the share stays byte for
    byte, no mail), and says so as for any rerun. --force rebuilds them as of the later day,
    and the new episode is on Still missing now."""
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    published, first = share_bytes(sent), sent.manifests("receive")[0]
    assert first["sa_98_range"] == ["2025-01-27", "2025-07-03"]      # [start - 33, end + 33]
    with sqlite3.connect(sent.db_path) as db:      # child 1005 runs again on 2025-09-01
        db.execute("INSERT INTO runaway_episode VALUES (507, 1005, 6, '2025-09-01', NULL, 161)")
    result = sent.cli("receivedps.py", "--as-of", "2025-10-01", "--no-wait")
    assert result.returncode == 0
    assert result.stderr.splitlines()[-2:] == [
        f"receivedps.py: nothing new: FY2025Q3 was already reported from the same inputs "
        f"(run {first['run_id']}, run date 2025-06-20); use --force to rebuild the reports as "
        f"of today",
        "receivedps.py: outcome: nothing new"]
    latest = sent.manifests("receive")[-1]
    assert (latest["outcome"], latest["run_date"], latest["sa_98_range"]) == \
        ("nothing new", "2025-10-01", ["2025-01-27", "2025-10-01"])
    assert latest["inputs"]["sa_98 query"] != first["inputs"]["sa_98 query"]   # 7 rows, not 6
    assert share_bytes(sent) == published
    assert len(mailed.messages) == 1

    assert sent.receive("--as-of", "2025-10-01", "--force") == 0
    latest = sent.manifests("receive")[-1]
    assert (latest["outcome"], latest["run_date"]) == ("reported", "2025-10-01")
    still = sheet_rows(sent.folder("share") / report_file("impact"), "Still missing now")
    assert 507 in [row[still[0].index("EPISODE_ID")] for row in still[1:]]
    assert len(mailed.messages) == 2


def test_a_changed_episode_in_the_range_the_reports_read_republishes_and_says_why(
        sent, capsys):
    """§6: a rerun on a later day whose sa_98 rows changed within the range the published
    reports read (episode 502 closed) publishes again, and says what changed."""
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    first = sent.manifests("receive")[0]
    with sqlite3.connect(sent.db_path) as db:
        db.execute("UPDATE runaway_episode SET return_date = '2025-06-25' "
                   "WHERE episode_id = 502")
    capsys.readouterr()
    assert sent.receive("--as-of", "2025-07-01") == 0
    assert (f"receivedps.py: FY2025Q3 was reported by run {first['run_id']} (run date "
            f"2025-06-20); publishing again: changed since: sa_98 query") \
        in capsys.readouterr().err.splitlines()
    assert sent.manifests("receive")[-1]["outcome"] == "reported"


def test_a_period_reported_before_the_sa98_key_existed_is_compared_as_then(sent):
    """CHANGELOG (issue 21 §3.2): a run record without `sa_98_range` and `sa_98_key` (written
    by an earlier version) is compared by the whole fetch's checksum, as then: a rerun with
    the same run date publishes nothing; on a later day the period is republished once, and
    the records from then on carry the key."""
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    path = sent.folder("state") / "manifests" / "receive" / \
        f"{sent.manifests('receive')[0]['run_id']}.json"
    old = {k: v for k, v in json.loads(path.read_text()).items()
           if k not in ("sa_98_range", "sa_98_key")}
    path.write_text(json.dumps(old))
    assert sent.receive(*AS_OF) == 0
    assert sent.manifests("receive")[-1]["outcome"] == "nothing new"
    assert sent.receive("--as-of", "2025-07-10") == 0      # fetched up to 2025-07-10
    assert sent.manifests("receive")[-1]["outcome"] == "reported"
    assert sent.receive("--as-of", "2025-07-11") == 0
    assert sent.manifests("receive")[-1]["outcome"] == "nothing new"


def test_dry_run_leaves_remote_files_and_delivers_nothing(sent, mailed):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF, "--dry-run") == 0
    assert sorted(p.name for p in (sent.folder("outbox") / "dry-run" / "FY2025_Q3").iterdir()) \
        == REPORTS
    assert list(sent.folder("share").iterdir()) == []
    assert sorted(os.listdir(sent.answer_dir)) == ["Dfps-missing-person-counts.txt",
                                                   "Dfps-missing-person-results.txt"]
    assert mailed.messages == []


def test_offline_share_queues_reports_and_the_next_run_delivers(sent, mailed):
    sent.put_answer(*scenario_answer())
    sent.folder("share").rmdir()
    assert sent.receive(*AS_OF) == 1
    error = sent.manifests("receive")[-1]["error"]
    assert error.startswith(f"share {sent.folder('share')}: not reachable (no such folder)")
    queued = sent.folder("outbox") / "reports" / "FY2025_Q3"
    assert sorted(p.name for p in queued.iterdir()) == REPORTS
    assert sorted(os.listdir(sent.answer_dir)) == ["Dfps-missing-person-counts.txt",
                                                   "Dfps-missing-person-results.txt"]
    assert mailed.messages[-1]["Subject"] == "[DPS exchange] receive FAILED FY2025Q3"
    sent.folder("share").mkdir()
    assert sent.receive(*AS_OF) == 0
    assert sorted(p.name for p in sent.folder("share").iterdir()) == REPORTS
    assert list(queued.iterdir()) == []


def test_no_upload_recorded_is_refused(workspace):
    assert workspace.receive(*AS_OF) == 1
    assert workspace.manifests("receive")[-1]["error"] == \
        "no upload recorded in the send manifests; run send2dps.py first"


def test_period_other_than_the_latest_upload_is_refused(sent):
    result = sent.cli("receivedps.py", *AS_OF, "--period", "FY2025Q2")
    assert result.returncode == 2
    assert "--period FY2025Q2: the latest upload is FY2025Q3" in result.stderr


def test_header_only_answer_is_valid(sent):
    sent.put_answer((RESULTS_HEADER + "\r\n").encode(),
                    b"RECORDS_RECEIVED|6\r\nPERSONS_WITH_RECORDS|0\r\nRESULT_RECORDS|0\r\n")
    assert sent.receive(*AS_OF) == 0
    impact = sheet_rows(sent.folder("share") / report_file("impact"), "IMPACT not in DPS")
    assert [row[3] for row in impact[1:]] == [501, 506, 502, 503, 504]


@security
def test_logs_and_mails_of_a_run_carry_no_names_or_dobs(sent, mailed):
    results, counts = scenario_answer()
    results += results_line(1001, "M000000001", "20250312", last="PENA").encode() + b"\r\n"
    sent.put_answer(results, counts.replace(b"RESULT_RECORDS|5", b"RESULT_RECORDS|6"))
    assert sent.receive(*AS_OF, "-v") == 0
    text = sent.log_text() + "".join(mailed.bodies())
    assert [v for v in NAMES + DOBS if v in text] == []


def test_sa98_from_a_csv_extract_with_mapped_columns(sent):
    extract = sent.root / "sa98_extract.csv"
    extract.write_text(
        "Episode,Child PID,Last,First,Birth,Ran,Back,County\n"
        "504,1004,Nguyễn,Thị Lan,2010-07-20,2025-05-20,2025-05-25,71\n"
        "507,1005,Smith-Jones,Amelia,2009-09-09,2025-01-02,2025-01-03,161\n"   # outside window
        "508,1005,Smith-Jones,Amelia,2009-09-09,,2025-04-20,161\n",             # no runaway date
        encoding="utf-8")
    sent.configure(sa_98={"source": "file", "extract_file": str(extract), "columns": {
        "Episode": "EPISODE_ID", "Child PID": "PID", "Last": "LAST_NAME", "First": "FIRST_NAME",
        "Birth": "DOB", "Ran": "RUNAWAY_DATE", "Back": "RETURN_DATE", "County": "COUNTY_CODE"}})
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    impact = sheet_rows(sent.folder("share") / report_file("impact"), "IMPACT not in DPS")
    assert [row[3] for row in impact[1:]] == [504]
    # line 4: the physical line, counted before rows outside the range are set aside
    assert sheet_rows(sent.folder("share") / report_file("impact"), "Exceptions")[1:] == [
        ["sa98_extract.csv", 4, 1005, 508, "row left out", "column RUNAWAY_DATE: missing",
         "IMPACT data"]]                                   # a numeric key stored as a number


def test_a_share_target_that_cannot_be_replaced_keeps_the_queue(sent):
    sent.put_answer(*scenario_answer())
    totals = report_file("totals")
    (sent.folder("share") / totals).mkdir()   # something in the way, like an open file
    assert sent.receive(*AS_OF) == 1
    error = sent.manifests("receive")[-1]["error"]
    assert error.startswith(f"share {sent.folder('share') / totals}: cannot write")
    assert error.endswith(f"reports stay queued in {sent.folder('outbox') / 'reports'}"
                          f"/FY2025_Q3")
    queued = sent.folder("outbox") / "reports" / "FY2025_Q3"
    assert report_file("totals") in [p.name for p in queued.iterdir()]
    assert sorted(os.listdir(sent.answer_dir)) == ["Dfps-missing-person-counts.txt",
                                                   "Dfps-missing-person-results.txt"]
    (sent.folder("share") / report_file("totals")).rmdir()
    assert sent.receive(*AS_OF) == 0
    assert sorted(p.name for p in sent.folder("share").iterdir()) == REPORTS


def test_a_file_that_keeps_changing_during_the_fetch_is_a_whole_file_fault(sent):
    """DPS appends to the results file while each of our two fetches is under way."""
    import util

    results, counts = scenario_answer()
    sent.put_answer(results + b"x" * (8 << 20), counts)
    config = util.load_config(sent.config_path)
    names = ("Dfps-missing-person-results.txt", "Dfps-missing-person-counts.txt")
    place = AnswerPlace(config.sftp, config.dps_file, names)
    with util.connect_sftp(config.sftp) as session:
        look = look_at_answer(session, place)
    staging = sent.root / "staging"
    part = staging / (names[0] + ".part")
    stop = threading.Event()
    appended = []

    def dps_appends_during_each_fetch():
        seen = False
        while not stop.is_set():
            if part.exists() and not seen:
                with open(sent.answer_dir / names[0], "ab") as handle:
                    handle.write(b"\r\n")
                appended.append(1)
                seen = True
            elif not part.exists():
                seen = False
            time.sleep(0.0005)

    writer = threading.Thread(target=dps_appends_during_each_fetch)
    writer.start()
    try:
        with pytest.raises(util.InputError, match="Dfps-missing-person-results.txt: changed "
                                                  "while it was fetched, twice in a row; "
                                                  "nothing published"):
            fetch_answer(place, look, staging)
    finally:
        stop.set()
        writer.join()
    assert len(appended) == 2
    assert not (staging / names[0]).exists()
    assert not part.exists()


def test_a_file_that_changed_once_is_fetched_again(sent):
    import util

    results, counts = scenario_answer()
    sent.put_answer(results[:50], counts)
    config = util.load_config(sent.config_path)
    names = ("Dfps-missing-person-results.txt", "Dfps-missing-person-counts.txt")
    place = AnswerPlace(config.sftp, config.dps_file, names)
    with util.connect_sftp(config.sftp) as session:
        look = look_at_answer(session, place)
    sent.put_answer(results, counts)   # DPS finished writing after our look
    fetched = fetch_answer(place, look, sent.root / "staging")
    assert fetched[names[0]].read_bytes() == results


def test_attachments_go_only_when_enabled_and_to_allowed_domains(sent, mailed):
    sent.put_answer(*scenario_answer())
    sent.configure(mail={"attachments": True, "allowed_domains": ["dfps.example"]})
    assert sent.receive(*AS_OF) == 0
    attached = sorted(p.get_filename() for p in mailed.messages[-1].walk() if p.get_filename())
    assert attached == REPORTS
    sent.configure(mail={"recipients": ["analyst@dfps.example", "someone@gmail.example"]})
    assert sent.receive(*AS_OF, "--force") == 0
    assert [p.get_filename() for p in mailed.messages[-1].walk() if p.get_filename()] == []
    assert "attachments left off: a recipient is outside mail.allowed_domains" in sent.log_text()


@pytest.fixture
def tls_smtp_server(tmp_path):
    """A real SMTP server that requires STARTTLS and AUTH, with a self-signed certificate."""
    import datetime
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from demo.local_sftp import find_free_port
    from tests.conftest import Mailbox

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.login == b"mailer" and
                          auth_data.password == b"s3cret")

    mailbox = Mailbox()
    port = find_free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_require_tls=True)
    controller.start()
    yield port, mailbox, cert_file, logins
    controller.stop()


def test_mail_over_starttls_with_credentials_from_the_environment(sent, tls_smtp_server,
                                                                  monkeypatch):
    port, mailbox, cert_file, logins = tls_smtp_server
    monkeypatch.setenv("TEST_SMTP_USER", "mailer")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret")
    sent.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port, "starttls": True,
                         "ca_file": str(cert_file), "username_env": "TEST_SMTP_USER",
                         "password_env": "TEST_SMTP_PASSWORD",
                         "recipients": ["analyst@dfps.example"]})
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    assert logins == [(b"mailer", b"s3cret")]
    assert [m["Subject"] for m in mailbox.messages] == \
        ["[DPS exchange] reports for FY2025Q3 are ready"]
    assert "s3cret" not in sent.log_text()


def test_sa98_from_an_xlsx_extract(sent):
    extract = sent.root / "sa98.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["EPISODE_ID", "PID", "LAST_NAME", "FIRST_NAME", "DOB", "RUNAWAY_DATE",
                  "RETURN_DATE", "COUNTY_CODE"])
    sheet.append([504, 1004, "Nguyễn", "Thị Lan", D(2010, 7, 20), D(2025, 5, 20), D(2025, 5, 25),
                  71])
    sheet.append([509, 1005, "Smith-Jones", "Amelia", D(2009, 9, 9), D(2025, 4, 14), None, 161])
    workbook.save(extract)
    sent.configure(sa_98={"source": "file", "extract_file": "sa98.xlsx"})   # relative to config
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    impact = sheet_rows(sent.folder("share") / report_file("impact"), "IMPACT not in DPS")
    assert [row[3] for row in impact[1:]] == [504]          # 509 matches DPS's DLC 2025-04-15
    dps = sheet_rows(sent.folder("share") / report_file("dps"), "DPS not in IMPACT")
    # region 6 by DLC: 1006 (03-07), 1001 (03-11), 1007 (05-07); then region 7: 1002
    assert [row[2] for row in dps[1:]] == [1006, 1001, 1007, 1002]


def test_remote_answer_names_may_carry_period_and_date(sent):
    sent.configure(dps_file={"results_name": "results_{period}_{date}.txt",
                             "counts_name": "counts_{period}.txt"})
    results, counts = scenario_answer()
    sent.answer_dir.mkdir(parents=True)
    (sent.answer_dir / "results_FY2025_Q3_20250620.txt").write_bytes(results)
    (sent.answer_dir / "counts_FY2025_Q3.txt").write_bytes(counts)
    assert sent.receive(*AS_OF) == 0
    assert sorted(p.name for p in sent.folder("share").iterdir()) == REPORTS
    # regenerated on another day: the archived files are found by their order, not their name
    assert sent.receive("--as-of", "2025-06-25", "--period", "FY2025Q3", "--force") == 0
    assert sent.manifests("receive")[-1]["run_date"] == "2025-06-25"


@pytest.mark.parametrize("counts, message", [
    (b"RECORDS_RECEIVED|6\r\nPERSONS_WITH_RECORDS|abc\r\nRESULT_RECORDS|5\r\n",
     "Dfps-missing-person-counts.txt: line 2: value of PERSONS_WITH_RECORDS is not a whole "
     "number; nothing published"),
    (b"RECORDS_RECEIVED|6\r\nRESULT_RECORDS|5\r\n",
     "Dfps-missing-person-counts.txt: key PERSONS_WITH_RECORDS is missing; nothing published"),
    (b"\r\n", "Dfps-missing-person-counts.txt: empty file; nothing published"),
])
def test_a_malformed_counts_file_that_stopped_changing_is_a_whole_file_fault(sent, counts,
                                                                             message):
    results, _ = scenario_answer()
    sent.put_answer(results, counts)
    result = sent.cli("receivedps.py", *AS_OF)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith(message)
    assert list(sent.folder("share").iterdir()) == []
    assert sorted(os.listdir(sent.answer_dir)) == ["Dfps-missing-person-counts.txt",
                                                   "Dfps-missing-person-results.txt"]


def test_a_refused_answer_is_kept_in_the_archive_as_evidence(sent):
    results, counts = scenario_answer()
    broken = counts.replace(b"RESULT_RECORDS|5", b"RESULT_RECORDS|4")
    sent.put_answer(results, broken)
    assert sent.receive(*AS_OF) == 1
    manifest = sent.manifests("receive")[-1]
    run_id = manifest["run_id"]
    archive = sent.folder("archive") / "receive" / "FY2025_Q3"
    assert sorted(p.name for p in archive.iterdir()) == [
        f"{run_id}_refused_Dfps-missing-person-counts.txt",
        f"{run_id}_refused_Dfps-missing-person-results.txt"]
    assert (archive / f"{run_id}_refused_Dfps-missing-person-counts.txt").read_bytes() == broken
    sent.put_answer(results, counts)              # DPS resends a good answer
    assert sent.receive(*AS_OF) == 0
    assert sorted(p.name for p in sent.folder("share").iterdir()) == REPORTS


def test_a_mail_failure_after_delivery_keeps_the_reports_and_the_rerun_sends_the_mail(
        sent, smtp_server):
    port, mailbox = smtp_server
    sent.configure(mail={"enabled": True, "host": "127.0.0.1", "port": 1,
                         "recipients": ["analyst@dfps.example"]})
    sent.put_answer(*scenario_answer())
    result = sent.cli("receivedps.py", *AS_OF)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].endswith(
        "reports delivered, but the summary mail was not sent: mail 127.0.0.1:1: cannot send: "
        "ConnectionRefusedError: [Errno 111] Connection refused; rerun to send it")
    assert sorted(p.name for p in sent.folder("share").iterdir()) == REPORTS
    assert sorted(os.listdir(sent.answer_dir)) == ["processed"]
    assert sent.manifests("receive")[-1]["outcome"] == "reported"
    sent.configure(mail={"port": port})
    assert sent.receive(*AS_OF) == 0
    assert sent.manifests("receive")[-1]["outcome"] == "nothing new"
    assert [m["Subject"] for m in mailbox.messages] == \
        ["[DPS exchange] reports for FY2025Q3 are ready"]
    assert sent.manifests("receive")[0]["mailed"] is True
    assert sent.receive(*AS_OF) == 0
    assert len(mailbox.messages) == 1


def test_dry_run_writes_a_preview_even_when_nothing_is_new(sent):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    assert sent.receive(*AS_OF, "--dry-run") == 0
    preview = sent.folder("outbox") / "dry-run" / "FY2025_Q3"
    assert sorted(p.name for p in preview.iterdir()) == REPORTS
    assert sent.manifests("receive")[-1]["outcome"] == "dry run"


def test_every_column_of_every_report_is_explained_on_its_read_me(sent):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    for name in REPORTS:
        workbook = openpyxl.load_workbook(sent.folder("share") / name)
        explained = {row[0]: row[1] for row in workbook["Read me"].iter_rows(values_only=True)}
        for sheet in workbook.worksheets[:-1]:
            header = [cell.value for cell in sheet[1] if cell.value is not None]
            unexplained = [column for column in header if not explained.get(column)]
            assert unexplained == [], (name, sheet.title)
        items = list(explained)
        assert items.index("What this is") < items.index("Columns") < items.index("Row flow") \
            < items.index("Control totals") < items.index("Audit")


def test_every_report_sheet_is_print_ready(sent):
    sent.configure(reports={"marking": "CONFIDENTIAL - CJI"})
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    printed_in = report_file("totals")   # the Exceptions rows print once, in the totals
    for name in REPORTS:
        for sheet in openpyxl.load_workbook(sent.folder("share") / name).worksheets:
            assert (sheet.page_setup.orientation, sheet.page_setup.fitToWidth,
                    sheet.print_title_rows) == ("landscape", 1, None if sheet.title == "Read me"
                                                else "$1:$1"), (name, sheet.title)
            pointer = sheet.title == "Exceptions" and name != printed_in
            assert sheet.oddHeader.center.text == "CONFIDENTIAL - CJI" + (
                f" \N{EM DASH} Exceptions: the rows print in {printed_in}" if pointer else "")
            assert sheet.oddFooter.right.text == "Page &P of &N"


def test_the_trend_history_records_the_published_period_and_a_rerun_replaces_it(sent):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    trend = (sent.folder("state") / "trend.csv").read_text().splitlines()
    columns = ["PERIOD", "PERIOD_KEY", "REGION_NUMBER", "REGION", "EPISODES", "IMPACT_NOT_IN_DPS",
               "DPS_NOT_IN_IMPACT", "DPS_EVENTS", "RETURNED_STILL_ACTIVE",
               "TIMELINESS_EPISODES", "REPORTED_ON_TIME"]          # §10.3 adds the last two
    # a report added to the registry records its own count after these: its run record's count
    newer = [spec for spec in SPECS if spec.count_column not in columns]
    record = sent.manifests("receive")[-1]
    assert trend[0] == ",".join([*columns, *(spec.count_column for spec in newer)])
    assert trend[-1] == "FY2025Q3,20253,100,STATEWIDE,5,3,2,5,1,4,1" + "".join(
        f",{record[spec.record_field]}" for spec in newer)
    assert sent.receive(*AS_OF, "--force") == 0
    assert (sent.folder("state") / "trend.csv").read_text().splitlines() == trend
    workbook = openpyxl.load_workbook(sent.folder("share") / report_file("totals"))
    assert workbook.sheetnames == ["Totals by region", "Records", "Trend", "Exceptions",
                                   "Read me"]
    assert next(workbook["Trend"].iter_rows(values_only=True)) == ("REGION", "FY2025Q3")


def test_a_dry_run_records_no_trend(sent):
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF, "--dry-run") == 0
    assert not (sent.folder("state") / "trend.csv").exists()


def test_changing_the_match_window_republishes_the_period(sent, mailed):
    """§8 (v4): the "same inputs" key covers W. With the rows unchanged, W 3 -> 4 republishes,
    and the wider window matches one more episode (its record's DLC is 4 days outside)."""
    sent.put_answer(*scenario_answer())
    assert sent.receive(*AS_OF) == 0
    assert sent.manifests("receive")[-1]["impact_not_in_dps"] == 3
    sent.configure(matching={"match_window_days": 4})
    assert sent.receive(*AS_OF) == 0
    latest = sent.manifests("receive")[-1]
    assert latest["outcome"] == "reported"
    assert latest["report_settings"]["match_window_days"] == 4
    assert latest["impact_not_in_dps"] == 2
    assert len(mailed.messages) == 2
    assert sent.receive(*AS_OF) == 0          # and then nothing new again
    assert sent.manifests("receive")[-1]["outcome"] == "nothing new"
