"""The report registry (exchange/reports.py): every report, sheet and column is declared once
and everything else iterates it — file names, the Read me, the mail, the run record, --help and
the table in docs/data-contract.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import util
from exchange.archive import Archive
from exchange.delivery import deliver_reports
from exchange.followup import empty_trend, load_trend, period_key, record_period, save_trend
from exchange.periods import parse_period
from exchange.reports import (
    COLUMNS,
    REPORTS,
    docs_with_table,
    report,
    trend_rows,
    undocumented_columns,
)
from tests.test_reading_aids import reconciled

REPO = Path(__file__).resolve().parent.parent
PRODUCT_FILES = [*REPO.glob("*.py"), *(REPO / "exchange").glob("*.py"), *(REPO / "sql").glob("*")]


def test_each_report_has_one_spec_with_a_unique_key_stem_and_count_names():
    for attribute in ("key", "stem", "record_field", "count_column", "mail_column"):
        values = [getattr(spec, attribute) for spec in REPORTS]
        assert len(set(values)) == len(values), attribute


@pytest.mark.parametrize("period, suffix", [("FY2025Q3", "FY2025_Q3"),
                                            ("FY2026Q1", "FY2026_Q1")])
def test_file_names_carry_the_period_suffix(period, suffix):
    assert [spec.file_name(parse_period(period)) for spec in REPORTS] == [
        f"{spec.stem}_{suffix}.xlsx" for spec in REPORTS]


def test_the_contract_s_reports_keep_their_file_stems():
    """§6's four reports, by key; a report added to the registry brings its own stem."""
    assert {key: report(key).stem for key in ("impact", "dps", "totals", "returned")} == {
        "impact": "IMPACT_not_in_DPS", "dps": "DPS_not_in_IMPACT",
        "totals": "DPS_total_runaway_events", "returned": "Returned_still_active_in_NCIC"}


def test_every_column_a_report_shows_is_explained_once():
    assert undocumented_columns() == []


def test_every_explained_column_is_shown_somewhere():
    shown = {name for spec in REPORTS for sheet in spec.sheets for name in sheet.columns}
    shown |= {"FILE", "LINE", "KEY", "KIND", "REASON", "WHO_ACTS", "TOTAL", "NOT_IN_IMPACT",
              "MATCH_PCT"}   # the Exceptions sheet and the totals grid's columns
    assert sorted(set(COLUMNS) - shown) == []


def test_the_trend_records_every_report_s_count(tmp_path):
    """A report's count_column is recorded in the trend history by itself (followup's counts
    are open): the saved history holds each report's rows per region and STATEWIDE."""
    recon = reconciled()
    assert any(spec.count(recon) for spec in REPORTS)      # the check has something to count
    history = record_period(empty_trend(), "FY2025Q3", period_key("FY2025Q3"),
                            trend_rows(recon))
    path = tmp_path / "trend.csv"
    save_trend(history, path, lambda target, data: target.write_bytes(data))
    saved = load_trend(path)
    for spec in REPORTS:
        by_region = spec.rows(recon).groupby("REGION").size()
        expected = {region: int(by_region.get(region, 0)) for region in saved["REGION"]}
        expected["STATEWIDE"] = spec.count(recon)
        assert dict(zip(saved["REGION"], saved[spec.count_column], strict=True)) == expected, \
            spec.key


def test_the_contract_doc_carries_the_generated_table():
    """Regenerate with `.venv/bin/python -m exchange.reports` (it rewrites the table)."""
    text = (REPO / "docs" / "data-contract.md").read_text(encoding="utf-8")
    assert docs_with_table(text) == text


def test_help_names_every_report():
    import receivedps

    text = receivedps.build_parser().format_help().replace("\n", " ")
    assert all(spec.stem in re.sub(r"\s+", " ", text) for spec in REPORTS)


def test_a_report_stem_is_spelled_in_at_most_two_product_files():
    for spec in REPORTS:
        files = [p.name for p in PRODUCT_FILES if spec.stem in p.read_text(encoding="utf-8")]
        assert len(files) <= 2, (spec.stem, files)


def test_the_match_window_setting_is_read_in_one_place():
    readers = [p.name for p in PRODUCT_FILES
               if re.search(r"\.match_window_days\b", p.read_text(encoding="utf-8"))]
    assert readers == ["rules.py"]


def test_the_rules_fingerprint_covers_w_n_g_the_marking_and_who_acts(scenario):
    rules = util.Rules.from_config(util.load_config(scenario.config_path))
    assert rules.fingerprint() == {"match_window_days": 3, "near_miss_days": 30,
                                   "clear_grace_days": 2, "marking": "CONFIDENTIAL",
                                   "caseworker_query": "caseworker",
                                   "ori_directory": "ori_directory.csv"}
    assert rules.audit_rows() == [["match window W (days)", 3], ["near-miss days N", 30],
                                  ["clear grace days G", 2]]


class FolderTarget:
    """A delivery target the product does not know: it names its own place."""

    name = "folder"
    label = "the other folder"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def place(self) -> str:
        return f"folder {self.folder}"

    def deliver(self, report_path: Path) -> tuple[str, None]:
        target = self.folder / report_path.name
        target.write_bytes(report_path.read_bytes())
        return str(target), None

    def close(self) -> None:
        return None


def test_a_new_delivery_target_names_its_own_place(scenario, tmp_path):
    config = util.load_config(scenario.config_path)
    queue = util.Layout.from_config(config).queue / "FY2025_Q3"
    queue.mkdir(parents=True)
    (queue / report("impact").file_name(parse_period("FY2025Q3"))).write_bytes(b"PK report")
    (tmp_path / "elsewhere").mkdir()
    delivery = deliver_reports(config, Archive(None), tmp_path / "archive", "run-1",
                               targets=[FolderTarget(tmp_path / "elsewhere")])
    assert delivery.places == [f"folder {tmp_path / 'elsewhere'}"]
    assert delivery.locations == {"folder": {
        "IMPACT_not_in_DPS_FY2025_Q3.xlsx":
            str(tmp_path / "elsewhere" / "IMPACT_not_in_DPS_FY2025_Q3.xlsx")}}
    assert [Path(f.path).name for f in delivery.archived] == [
        "run-1_IMPACT_not_in_DPS_FY2025_Q3.xlsx"]


@pytest.mark.parametrize("spec", REPORTS, ids=lambda spec: spec.key)
def test_each_report_keeps_the_read_me_last_and_exceptions_before_it(spec):
    titles = [sheet.title for sheet in spec.sheets]
    assert "Exceptions" not in titles and "Read me" not in titles
