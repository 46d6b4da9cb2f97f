"""IMPACT's runaway episodes (sa_98) made ready for matching, and the county -> region lookup
(docs/data-contract.md §2, §5, §7, §9). Pure logic on DataFrames."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from exchange.answer import IMPACT_ACTS, ROW_LEFT_OUT, WARNING, Problem
from exchange.frames import plain_dates

UNKNOWN_REGION = "Unknown"
UNKNOWN_REGION_NUMBER = 99


def number_lines(sa98: Any, first_line: int) -> Any:
    """The fetched rows with LINE: the physical line (extract) or row number (query)."""
    frame = sa98.copy().reset_index(drop=True)
    frame["LINE"] = range(first_line, first_line + len(frame))
    return frame


def overlaps_range(sa98: Any, from_date: dt.date, to_date: dt.date) -> Any:
    """Rows whose episode overlaps [from_date, to_date] (a return before the runaway counts as
    open; a missing runaway date is kept, to be reported as a row fault)."""
    import pandas as pd

    runaway = plain_dates(sa98["RUNAWAY_DATE"])
    back = plain_dates(sa98["RETURN_DATE"])
    return (runaway.isna() | (runaway <= pd.Timestamp(to_date))) & (
        back.isna() | (back >= pd.Timestamp(from_date)) | (back < runaway))


def fetched_until(sa98: Any, to_date: dt.date) -> Any:
    """Of rows fetched over [from, later end], those a fetch over [from, to_date] returns: the
    ones with RUNAWAY_DATE on or before to_date (a missing one is in every fetch). The receive
    compares these with what a published period's reports read (docs/data-contract.md §6)."""
    import pandas as pd

    runaway = plain_dates(sa98["RUNAWAY_DATE"])
    return sa98[(runaway.isna() | (runaway <= pd.Timestamp(to_date))).to_numpy()]


def check_episodes(sa98: Any, source_name: str, today: dt.date | None = None
                   ) -> tuple[Any, list[Problem]]:
    """Rows without PID, RUNAWAY_DATE or EPISODE_ID, and repeated EPISODE_IDs, are left out;
    a return before the runaway is a typo: the episode is treated as open, with a warning;
    episodes of one child that overlap in time get a warning (needs `today`: an open episode
    lasts until the run date). `sa98` carries LINE (see number_lines)."""
    frame = typed_episodes(sa98)
    reasons = fault_reasons(frame)
    problems = [episode_problem(source_name, frame.loc[i], ROW_LEFT_OUT, reasons[i])
                for i in frame.index[reasons != ""]]
    episodes = frame[reasons == ""].copy()
    typo = episodes["RETURN_DATE"].notna() & (episodes["RETURN_DATE"] < episodes["RUNAWAY_DATE"])
    problems += [episode_problem(source_name, row, WARNING, "RETURN_DATE before RUNAWAY_DATE; "
                                 "episode treated as open") for _, row in episodes[typo].iterrows()]
    episodes["OPEN_FOR_MATCHING"] = episodes["RETURN_DATE"].isna() | typo
    episodes["PID"] = episodes["PID"].astype("int64")
    episodes["EPISODE_ID"] = episodes["EPISODE_ID"].astype("int64")
    if today is not None:
        problems += overlap_warnings(episodes, source_name, today)
    problems.sort(key=lambda p: p.line)
    return episodes.reset_index(drop=True), problems


def typed_episodes(sa98: Any) -> Any:
    import pandas as pd

    frame = sa98.copy()
    for column in ("PID", "EPISODE_ID", "COUNTY_CODE"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    for column in ("DOB", "RUNAWAY_DATE", "RETURN_DATE"):
        frame[column] = plain_dates(frame[column])
    return frame


def fault_reasons(frame: Any) -> Any:
    """'' for a usable row, else why it is left out (the first repeat of an id keeps it)."""
    import pandas as pd

    reasons = pd.Series("", index=frame.index, dtype=object)
    reasons[frame["PID"].isna()] = "column PID: missing"
    reasons[(reasons == "") & frame["RUNAWAY_DATE"].isna()] = "column RUNAWAY_DATE: missing"
    reasons[(reasons == "") & frame["EPISODE_ID"].isna()] = "column EPISODE_ID: missing"
    usable = frame[reasons == ""]
    first_line = usable.drop_duplicates("EPISODE_ID").set_index("EPISODE_ID")["LINE"]
    for index in usable.index[usable["EPISODE_ID"].duplicated(keep="first").to_numpy()]:
        reasons[index] = (f"EPISODE_ID repeated (first on line "
                          f"{int(first_line[frame.at[index, 'EPISODE_ID']])})")
    return reasons


def episode_problem(source_name: str, row: Any, kind: str, reason: str) -> Problem:
    import pandas as pd

    pid = None if pd.isna(row["PID"]) else int(row["PID"])
    key = "" if pd.isna(row["EPISODE_ID"]) else str(int(row["EPISODE_ID"]))
    return Problem(source_name, int(row["LINE"]), kind, reason, pid, key, IMPACT_ACTS)


def overlap_warnings(episodes: Any, source_name: str, today: dt.date) -> list[Problem]:
    """One warning per episode that overlaps an earlier-starting episode of the same child
    (an open episode counts until the run date)."""
    import pandas as pd

    spans = episodes[["PID", "EPISODE_ID", "RUNAWAY_DATE", "RETURN_DATE", "LINE"]].copy()
    spans["END"] = spans["RETURN_DATE"].where(~episodes["OPEN_FOR_MATCHING"], pd.Timestamp(today))
    pairs = spans.merge(spans, on="PID", suffixes=("", "_OTHER"))
    earlier = (pairs["RUNAWAY_DATE_OTHER"] < pairs["RUNAWAY_DATE"]) | (
        (pairs["RUNAWAY_DATE_OTHER"] == pairs["RUNAWAY_DATE"])
        & (pairs["EPISODE_ID_OTHER"] < pairs["EPISODE_ID"]))
    overlapping = pairs[earlier & (pairs["RUNAWAY_DATE"] <= pairs["END_OTHER"])]
    overlapping = overlapping.drop_duplicates("EPISODE_ID")
    return [episode_problem(source_name, row, WARNING,
                            f"overlaps episode {int(row['EPISODE_ID_OTHER'])} of the same child "
                            f"(line {int(row['LINE_OTHER'])})")
            for _, row in overlapping.iterrows()]


# ---------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------


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
            return UNKNOWN_REGION, "", UNKNOWN_REGION_NUMBER


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
