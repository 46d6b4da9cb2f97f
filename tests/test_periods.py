"""Contract §1: fiscal periods."""

import datetime as dt

import pytest

import util
from exchange.errors import ConfigError, UsageError
from send2dps import choose_period

D = dt.date


@pytest.mark.parametrize("day, label, start, end", [
    (D(2024, 9, 1), "FY2025Q1", D(2024, 9, 1), D(2024, 11, 30)),
    (D(2024, 11, 30), "FY2025Q1", D(2024, 9, 1), D(2024, 11, 30)),
    (D(2024, 12, 1), "FY2025Q2", D(2024, 12, 1), D(2025, 2, 28)),
    (D(2024, 2, 29), "FY2024Q2", D(2023, 12, 1), D(2024, 2, 29)),
    (D(2025, 3, 1), "FY2025Q3", D(2025, 3, 1), D(2025, 5, 31)),
    (D(2025, 6, 1), "FY2025Q4", D(2025, 6, 1), D(2025, 8, 31)),
    (D(2025, 8, 31), "FY2025Q4", D(2025, 6, 1), D(2025, 8, 31)),
])
def test_each_quarter_and_fiscal_year_boundaries(day, label, start, end):
    period = util.period_containing(day)
    assert (period.label, period.start, period.end) == (label, start, end)


def test_period_is_written_two_ways():
    period = util.parse_period("FY2025Q3")
    assert (period.label, period.file_label) == ("FY2025Q3", "FY2025_Q3")
    assert util.parse_period("fy2025_q3") == period
    assert period.months() == ["2025-03", "2025-04", "2025-05"]
    assert util.parse_period("FY2025Q2").months() == ["2024-12", "2025-01", "2025-02"]


@pytest.mark.parametrize("text", ["2025Q3", "FY2025Q5", "FY25Q3", ""])
def test_malformed_period_is_a_usage_error(text):
    with pytest.raises(UsageError, match="expected a fiscal quarter like FY2025Q3"):
        util.parse_period(text)


def test_default_period_lags_the_run_date_by_close_lag_days():
    # 2025-06-20 - 30 days = 2025-05-21: still FY2025Q3, refreshed a month after it ends
    assert choose_period(None, D(2025, 6, 20), 30).label == "FY2025Q3"
    assert choose_period(None, D(2025, 7, 1), 30).label == "FY2025Q4"
    assert choose_period(None, D(2025, 6, 20), 0).label == "FY2025Q4"


def test_current_quarter_is_allowed_and_future_one_refused():
    assert choose_period("FY2025Q4", D(2025, 6, 1), 30).label == "FY2025Q4"
    with pytest.raises(UsageError, match="FY2026Q1 starts 2025-09-01, after the run date "
                                              "2025-08-31: it has not started yet"):
        choose_period("FY2026Q1", D(2025, 8, 31), 30)


def test_run_date_is_today_in_the_configured_time_zone_at_midnight():
    # 04:30 UTC on 1 Sep is 23:30 on 31 Aug in Chicago (CDT, UTC-5): the old fiscal year
    now = dt.datetime(2025, 9, 1, 4, 30, tzinfo=dt.UTC)
    assert util.run_date("America/Chicago", None, now) == D(2025, 8, 31)
    assert util.run_date("UTC", None, now) == D(2025, 9, 1)
    assert util.run_date("America/Chicago", "2025-06-20", now) == D(2025, 6, 20)


def test_bad_as_of_and_unknown_time_zone():
    with pytest.raises(UsageError, match="--as-of '2025-02-30': expected a date"):
        util.run_date("America/Chicago", "2025-02-30")
    with pytest.raises(ConfigError, match="run.time_zone: unknown time zone 'Mars/Base'"):
        util.run_date("Mars/Base", None)
