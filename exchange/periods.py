"""Texas state fiscal quarters and the run date (docs/data-contract.md §1)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exchange.errors import ConfigError, UsageError

_PERIOD_PATTERN = re.compile(r"^FY(\d{4})_?Q([1-4])$", re.IGNORECASE)
# Quarter -> (month it starts in, years before the fiscal year it starts in)
_QUARTER_START = {1: (9, 1), 2: (12, 1), 3: (3, 0), 4: (6, 0)}


@dataclass(frozen=True)
class Period:
    """A Texas state fiscal quarter: FY N runs 1 Sep N-1 to 31 Aug N."""

    fiscal_year: int
    quarter: int

    @property
    def label(self) -> str:
        return f"FY{self.fiscal_year}Q{self.quarter}"

    @property
    def file_label(self) -> str:
        return f"FY{self.fiscal_year}_Q{self.quarter}"

    @property
    def start(self) -> dt.date:
        month, years_before = _QUARTER_START[self.quarter]
        return dt.date(self.fiscal_year - years_before, month, 1)

    @property
    def end(self) -> dt.date:
        return self.next().start - dt.timedelta(days=1)

    def next(self) -> Period:
        if self.quarter == 4:
            return Period(self.fiscal_year + 1, 1)
        return Period(self.fiscal_year, self.quarter + 1)

    def months(self) -> list[str]:
        start = self.start
        return [f"{(start.year * 12 + start.month - 1 + i) // 12}-"
                f"{(start.month - 1 + i) % 12 + 1:02d}" for i in range(3)]

    def __str__(self) -> str:
        return self.label


def parse_period(text: str) -> Period:
    match = _PERIOD_PATTERN.match(text.strip())
    if not match:
        raise UsageError(f"--period {text!r}: expected a fiscal quarter like FY2025Q3")
    return Period(int(match.group(1)), int(match.group(2)))


def period_containing(day: dt.date) -> Period:
    fiscal_year = day.year + 1 if day.month >= 9 else day.year
    quarter = {9: 1, 10: 1, 11: 1, 12: 2, 1: 2, 2: 2, 3: 3, 4: 3, 5: 3, 6: 4, 7: 4, 8: 4}[day.month]
    return Period(fiscal_year, quarter)


def run_date(time_zone: str, as_of: str | None, now: dt.datetime | None = None) -> dt.date:
    """Today in the configured time zone, or the --as-of date."""
    if as_of:
        try:
            return dt.date.fromisoformat(as_of)
        except ValueError as exc:
            raise UsageError(f"--as-of {as_of!r}: expected a date like 2025-06-20") from exc
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"run.time_zone: unknown time zone {time_zone!r}") from exc
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(zone).date()


def check_period_started(period: Period, today: dt.date) -> None:
    if period.start > today:
        raise UsageError(f"period {period.label} starts {period.start.isoformat()}, "
                         f"after the run date {today.isoformat()}: it has not started yet")



def period_label(text: str | None) -> str | None:
    """The label of a --period argument (None when it was not given; '' is refused)."""
    return None if text is None else parse_period(text).label


def local_now(time_zone: str, now: dt.datetime | None = None) -> dt.datetime:
    """The time now in the configured zone, without the zone (Excel has none), to the second."""
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(ZoneInfo(time_zone)).replace(tzinfo=None, microsecond=0)
