"""Golden files: every cell of every sheet of each report, for the scenario's FY2025Q3 answer
(tests/scenario.py), as text in tests/golden/<report stem>.txt. A change to a report shows as
a diff of that file in review.

Regenerate after an intended change, then read the diff:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_golden_reports.py
    git diff tests/golden/

Run ids and the generated-at time differ on every run and are written as <run id> / <time>.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from exchange.reports import REPORTS
from tests.conftest import Workspace, base_settings
from tests.scenario import build_scenario_db, scenario_answer

GOLDEN = Path(__file__).resolve().parent / "golden"
AS_OF = ("--as-of", "2025-06-20")
VARYING = {"run id": "<run id>", "upload answered (send run id)": "<run id>",
           "generated at": "<time>"}


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory, sftp_server: Any) -> Path:
    """One send and one receive of the scenario; the share holding the reports."""
    root = tmp_path_factory.mktemp("golden")
    db_path = build_scenario_db(root / "impact.sqlite")
    (root / "share").mkdir()
    space = Workspace(root, root / "dps_config.yml", db_path, sftp_server, "golden",
                      base_settings(root, db_path, sftp_server, "golden"))
    space.configure()
    assert space.send(*AS_OF) == 0
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0
    return space.folder("share")


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    return repr(value) if isinstance(value, float) else str(value)


def workbook_text(path: Path) -> str:
    """Every sheet, every row: `| a | b |`, the varying Read me values masked."""
    workbook = openpyxl.load_workbook(path)
    lines = []
    for sheet in workbook.worksheets:
        lines.append(f"== {sheet.title}")
        for row in sheet.iter_rows(values_only=True):
            cells = [cell_text(v) for v in row]
            if sheet.title == "Read me" and cells and cells[0] in VARYING:
                cells[1] = VARYING[cells[0]]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("spec", REPORTS, ids=lambda spec: spec.stem)
def test_report_matches_its_golden_file(share: Path, spec: Any):
    text = workbook_text(share / f"{spec.stem}_FY2025_Q3.xlsx")
    golden = GOLDEN / f"{spec.stem}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file: run UPDATE_GOLDEN=1 pytest {__file__}"
    assert text == golden.read_text(encoding="utf-8")
