"""Contract §3: the rows and bytes of End_txt_file.txt, one case per rule."""

import datetime as dt
from dataclasses import replace

import pandas as pd
import pytest

import util
from exchange.config import DpsFileSettings
from exchange.wrangle import (
    check_sanity,
    clean_name,
    excluded_index_csv,
    render_dps_text,
    sent_index_csv,
    wrangle,
)

TODAY = dt.date(2025, 6, 20)
RACES = {"African American": "B", "Anglo": "W", "Asian": "A", "Native American": "I",
         "Hispanic": "W", "Other": "U", "Unknown": "U"}
LENGTHS = {"LAST_NAME": 30, "FIRST_NAME": 20, "MIDDLE_NAME": 20, "SUFFIX": 10}
FILE_CONFIG = DpsFileSettings()   # the contract's layout: the defaults


def child(pid=1, last="Doe", first="Jane", middle=None, suffix=None, dob="2009-01-02",
          sex="Female", race="Anglo", removal_id=None, removal_date="2024-01-01", county=101,
          discharge=None):
    return {"PID": pid, "LAST_NAME": last, "FIRST_NAME": first, "MIDDLE_NAME": middle,
            "SUFFIX": suffix, "DOB": dob, "SEX": sex, "RACE_ETHNICITY": race,
            "REMOVAL_ID": removal_id or pid * 10, "REMOVAL_DATE": removal_date,
            "COUNTY_CODE": county, "DISCHARGE_DATE": discharge}


def run(*rows):
    return wrangle(pd.DataFrame(list(rows)), TODAY, RACES, LENGTHS)


@pytest.mark.parametrize("raw, cleaned", [
    ("Peña", "PENA"), ("Nguyễn", "NGUYEN"), ("Zoë", "ZOE"), ("Straße", "STRASSE"),
    ("Øster", "OSTER"), ("Łukasz", "LUKASZ"), ("Đorđe", "DORDE"), ("Ærø", "AERO"),
    ("Œuvre", "OEUVRE"), ("O\u2019Brien", "O'BRIEN"), ("D\u2018Angelo", "D'ANGELO"),
    ("Ma\u02bca", "MA'A"), ("De\tLa\u00a0Cruz", "DE LA CRUZ"), ("Jr.", "JR"),
    ("  van   der  Berg ", "VAN DER BERG"), ("-'Smith-Jones'-", "SMITH-JONES"),
    ("李Li", "LI"), ("Ann😀Marie", "ANNMARIE"), ("", ""), (None, ""),
])
def test_name_cleaning(raw, cleaned):
    assert clean_name(raw) == cleaned


def test_long_names_are_cut_retrimmed_and_counted():
    result = run(child(last="A" * 28 + " -Bcdef", first="Maximiliana Alexandra Josephine"))
    assert result.sent.loc[0, "LAST_NAME"] == "A" * 28
    assert result.sent.loc[0, "FIRST_NAME"] == "MAXIMILIANA ALEXANDR"
    assert result.names_cut == {"LAST_NAME": 1, "FIRST_NAME": 1, "MIDDLE_NAME": 0, "SUFFIX": 0}


def test_latest_removal_supplies_county_and_removal_date():
    result = run(child(pid=7, removal_id=1, removal_date="2020-01-01", county=15),
                 child(pid=7, removal_id=2, removal_date="2024-06-01", county=101))
    assert result.sent[["PID", "COUNTY_CODE"]].values.tolist() == [[7, 101]]
    assert result.sent.loc[0, "REMOVAL_DATE"] == pd.Timestamp("2024-06-01")


def test_removal_date_tie_goes_to_the_highest_removal_id():
    result = run(child(pid=7, removal_id=9, removal_date="2024-06-01", county=15),
                 child(pid=7, removal_id=3, removal_date="2024-06-01", county=101))
    assert result.sent.loc[0, "COUNTY_CODE"] == 15


def test_rows_sorted_by_pid_as_a_number():
    result = run(child(pid=100), child(pid=9), child(pid=20))
    assert result.sent["PID"].tolist() == [9, 20, 100]


@pytest.mark.parametrize("dob, written", [
    ("2009-01-02", "20090102"), ("2009-01-02 13:45:00", "20090102"),
    (dt.datetime(2009, 1, 2, 8, 30), "20090102"), ("2025-06-20", "20250620"),
])
def test_dob_written_yyyymmdd(dob, written):
    assert run(child(dob=dob)).sent.loc[0, "DOB"] == written


@pytest.mark.parametrize("dob", [None, "", "2010-02-30", "2025-06-21", "not a date"])
def test_unusable_dob_excludes_the_child(dob):
    result = run(child(dob=dob))
    assert result.sent.empty
    assert result.excluded["REASONS"].tolist() == ["no usable DOB"]


@pytest.mark.parametrize("sex, code", [("Male", "M"), ("female", "F"), ("M", "M"), (" f ", "F"),
                                       ("Unknown", "U"), ("", "U"), (None, "U"), ("X", "U")])
def test_sex_codes(sex, code):
    assert run(child(sex=sex)).sent.loc[0, "SEX"] == code


@pytest.mark.parametrize("race, code", [("African American", "B"), ("Anglo", "W"), ("Asian", "A"),
                                        ("Native American", "I"), ("Hispanic", "W"),
                                        ("Other", "U"), ("Unknown", "U"), ("Martian", "U"),
                                        (None, "U")])
def test_race_mapping(race, code):
    assert run(child(race=race)).sent.loc[0, "RACE"] == code


def test_exclusion_reasons_in_contract_order():
    result = run(child(pid=1, dob=None, last="...", first=None),
                 child(pid=2, first="李"), child(pid=3, last=None))
    assert result.sent.empty
    assert result.excluded[["PID", "REASONS"]].values.tolist() == [
        [1, "no usable DOB; no last name; no first name"], [2, "no first name"],
        [3, "no last name"]]


def test_missing_middle_name_suffix_sex_race_or_county_do_not_exclude():
    result = run(child(middle=None, suffix=None, sex=None, race=None, county=None))
    assert len(result.sent) == 1 and result.excluded.empty


def test_dps_text_bytes_exactly():
    result = run(child(pid=12, last="Peña", first="Zoë", middle="Ann", suffix="Jr.",
                       dob="2009-04-01"), child(pid=3, last="Lee", first="Al", sex="M"))
    assert render_dps_text(result.sent, FILE_CONFIG) == (
        b"PID|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|DOB|SEX|RACE\r\n"
        b"3|LEE|AL|||20090102|M|W\r\n"
        b"12|PENA|ZOE|ANN|JR|20090401|F|W\r\n")


def test_the_discharge_date_of_the_chosen_removal_is_kept_but_never_sent():
    # §10.5: DISCHARGE_DATE of the latest removal goes to the Sent sheet and the sent index
    # (the receive's IN_CARE); the DPS text file stays byte for byte what §3 says.
    result = run(child(pid=7, removal_id=1, removal_date="2020-01-01", discharge="2021-01-01"),
                 child(pid=7, removal_id=2, removal_date="2024-06-01", discharge="2025-05-31"),
                 child(pid=8, last="Lee", first="Al"),
                 child(pid=9, dob=None, discharge="2025-04-01"))
    assert result.sent[["PID", "DISCHARGE_DATE"]].values.tolist() == [
        [7, pd.Timestamp("2025-05-31")], [8, pd.NaT]]
    assert render_dps_text(result.sent, FILE_CONFIG) == (
        b"PID|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|DOB|SEX|RACE\r\n"
        b"7|DOE|JANE|||20090102|F|W\r\n"
        b"8|LEE|AL|||20090102|F|W\r\n")
    assert sent_index_csv(result.sent) == (b"PID,COUNTY_CODE,DISCHARGE_DATE\n"
                                           b"7,101,2025-05-31\n8,101,\n")
    assert excluded_index_csv(result.excluded) == (b"PID,REASONS,DISCHARGE_DATE\n"
                                                   b"9,no usable DOB,2025-04-01\n")


def test_header_only_file_when_nobody_is_sent():
    result = run(child(dob=None))
    assert render_dps_text(result.sent, FILE_CONFIG) == \
        b"PID|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|DOB|SEX|RACE\r\n"


def test_layout_is_config_a_partner_can_change():
    config = replace(FILE_CONFIG, columns=[{"PID": "PERSON_ID"}, "DOB", "LAST_NAME"],
                  delimiter=",", line_ending="\n")
    assert render_dps_text(run(child()).sent, config) == \
        b"PERSON_ID,DOB,LAST_NAME\n1,20090102,DOE\n"


def test_sanity_limits():
    check_sanity(100, None, 100, 25, "End_txt_file.txt")
    check_sanity(125, 100, 1, 25, "End_txt_file.txt")
    with pytest.raises(util.InputError, match=r"^End_txt_file.txt: 99 rows, fewer than "
                                              r"sanity.min_rows=100; nothing uploaded"):
        check_sanity(99, None, 100, 25, "End_txt_file.txt")
    with pytest.raises(util.InputError, match=r"126 rows vs 100 in the last upload for the "
                                              r"period \(26.0% change > "
                                              r"sanity.max_change_pct=25\)"):
        check_sanity(126, 100, 1, 25, "End_txt_file.txt")
