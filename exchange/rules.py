"""The rule parameters the reports depend on, read from the config once (docs/data-contract.md
§5, §8, §9): W, N and G, and the marking line printed on every page.

`Rules.from_config` is the only place that reads them from the config. Every rule that needs
one takes the `Rules` (sources, reconcile, follow-up, the Read me); `fingerprint()` is the
settings part of the receive's "same inputs" key, so changing any of them republishes a period;
`audit_rows()` is what each Read me's Audit block says about them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, fields
from typing import Any


def parameter(label: str) -> Any:
    """A rule parameter shown on the Read me's Audit block under `label`."""
    return field(metadata={"label": label})


@dataclass(frozen=True)
class Rules:
    """The parameters of the matching and follow-up rules, and what else changes a report."""

    window_days: int = parameter("match window W (days)")
    near_miss_days: int = parameter("near-miss days N")
    clear_grace_days: int = parameter("clear grace days G")
    marking: str = "CONFIDENTIAL"     # heads every printed page (not a rule; changes the files)
    caseworker_query: str = ""        # §10.4: who acts (the query's name; "" = off)
    ori_directory: str = ""           # §10.4: the ORI directory's file name ("" = off)

    @classmethod
    def from_config(cls, config: Any) -> Rules:
        """The rules of a loaded `Config` (its `matching` and `reports` sections)."""
        matching = config.matching
        return cls(window_days=matching.match_window_days,
                   near_miss_days=matching.near_miss_days,
                   clear_grace_days=matching.clear_grace_days,
                   marking=config.reports.marking,
                   caseworker_query=config.database.caseworker_query,
                   ori_directory=config.reports.ori_directory.name
                   if config.reports.ori_directory else "")

    def fingerprint(self) -> dict[str, Any]:
        """The settings part of the "same inputs" key (§8): a period reported with other
        settings is republished. Keys keep the config's names, as run records store them."""
        return {"match_window_days": self.window_days, "near_miss_days": self.near_miss_days,
                "clear_grace_days": self.clear_grace_days, "marking": self.marking,
                "caseworker_query": self.caseworker_query, "ori_directory": self.ori_directory}

    def audit_rows(self) -> list[list[Any]]:
        """[label, value] for each rule parameter, for the Read me's Audit block."""
        return [[item.metadata["label"], getattr(self, item.name)] for item in fields(self)
                if "label" in item.metadata]

    @property
    def window(self) -> dt.timedelta:
        return dt.timedelta(days=self.window_days)

    def matching_range(self, start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
        """The period widened by W on both sides: the sa_98 rows used for matching (§2)."""
        return start - self.window, end + self.window

    def fetch_range(self, start: dt.date, end: dt.date, today: dt.date
                    ) -> tuple[dt.date, dt.date]:
        """The rows sa_98 fetches (§2): [start - H, later of (end + H) and the run date],
        H = W + N, so the follow-up aids see the episodes around the period."""
        wider = dt.timedelta(days=self.window_days + self.near_miss_days)
        return start - wider, max(end + wider, today)
