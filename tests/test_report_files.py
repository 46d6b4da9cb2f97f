"""What a reader of the workbooks sees (exchange/excel.py, exchange/wrangle.py): real dates
and times, a total row that sorting cannot move."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pandas as pd

from exchange.excel import Sheet, write_workbook
from exchange.periods import local_now
from exchange.wrangle import export_view


def test_a_total_row_stays_out_of_the_autofilter(tmp_path):
    rows = [["1-Lubbock", 3], ["2-Abilene", 1], ["STATEWIDE", 4]]
    path = tmp_path / "t.xlsx"
    write_workbook(path, [Sheet("Totals", ["REGION", "TOTAL"], rows, unfiltered_last_rows=1),
                          Sheet("Records", ["A"], [[1], [2]])])
    workbook = openpyxl.load_workbook(path)
    assert workbook["Totals"].auto_filter.ref == "A1:B3"
    assert workbook["Totals"]["A4"].value == "STATEWIDE"
    assert workbook["Records"].auto_filter.ref == "A1:A3"


def test_the_total_row_is_left_out_only_on_the_last_continued_sheet(tmp_path):
    rows = [[n] for n in range(5)]
    path = tmp_path / "t.xlsx"
    write_workbook(path, [Sheet("T", ["N"], rows, unfiltered_last_rows=1)], max_rows_per_sheet=4)
    workbook = openpyxl.load_workbook(path)
    assert (workbook["T"].auto_filter.ref, workbook["T (2)"].auto_filter.ref) == ("A1:A4",
                                                                                 "A1:A2")


def test_dob_is_a_real_date_on_end_export_and_an_unusable_one_stays_as_given():
    rows = pd.DataFrame({"PID": [1, 2, 3], "DOB": ["20090401", "2031-02-30", ""]})
    view = export_view(rows)
    assert view["DOB"].tolist() == [dt.date(2009, 4, 1), "2031-02-30", None]
    assert rows["DOB"].tolist() == ["20090401", "2031-02-30", ""]   # the text file's rows


def test_generated_at_is_local_time_without_a_zone():
    noon_utc = dt.datetime(2025, 6, 20, 17, 0, 5, 123456, tzinfo=dt.UTC)
    assert local_now("America/Chicago", noon_utc) == dt.datetime(2025, 6, 20, 12, 0, 5)
