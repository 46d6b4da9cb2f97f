"""Second reader of the printed reports (docs/data-contract.md §10.6, issue 19): LibreOffice
headless converts each workbook to PDF, `pdftotext -bbox` gives every word's box, and the
printed size of each sheet's body text is measured against a calibration workbook printed at
100% (11-pt Calibri). The footer of every page names its sheet (&A), so pages map to sheets.

    apt-get install -y libreoffice-calc-nogui poppler-utils
    .venv/bin/python tests/print_check.py var/share/*FY2025_Q3.xlsx --out var/print_check --png

Prints one line per sheet: pages, the body text size (the median word height, i.e. the 11-pt
cells after scaling) and the smallest word on the sheet (chart labels included), in points;
exits 1 when a sheet's body text is under --min-points (7.5), or when a page prints nothing at
all (not even its footer: LibreOffice once printed such a page after a Read me)."""

from __future__ import annotations

import argparse
import html
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from exchange.excel import Sheet, write_workbook  # noqa: E402

BODY_POINTS = 11.0          # the workbooks' body font
EDGE_POINTS = 40.0          # the page header and footer lie this close to the paper's edge
WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">'
                  r"(.*?)</word>")
BLANK = "(blank page)"      # a page without a single word: no sheet's, a reader's waste
PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)


@dataclass
class SheetPrint:
    """What one sheet printed: its pages and its words' heights in points."""

    pages: list[int] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)


def to_pdf(workbook: Path, out: Path, profile: Path) -> Path:
    """LibreOffice headless: the workbook as a PDF in `out` (its own user profile)."""
    subprocess.run(["soffice", f"-env:UserInstallation={profile.as_uri()}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out), str(workbook)],
                   check=True, capture_output=True, timeout=600)
    return out / (workbook.stem + ".pdf")


def words_by_page(pdf: Path) -> list[tuple[float, float, list[tuple[float, float, float,
                                                                    float, str]]]]:
    """(page width, page height, words as (xMin, yMin, xMax, yMax, text)) per page."""
    done = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True,
                          capture_output=True, text=True)
    pages = []
    for width, height, body in PAGE.findall(done.stdout):
        words = [(float(a), float(b), float(c), float(d), html.unescape(t))
                 for a, b, c, d, t in WORD.findall(body)]
        pages.append((float(width), float(height), words))
    return pages


def sheets_printed(pdf: Path) -> dict[str, SheetPrint]:
    """Each sheet's pages and body word heights; the sheet is the footer's left words."""
    sheets: dict[str, SheetPrint] = {}
    for number, (width, height, words) in enumerate(words_by_page(pdf), start=1):
        if not words:
            sheets.setdefault(BLANK, SheetPrint()).pages.append(number)
            continue
        footer = [w for w in words if w[1] > height - EDGE_POINTS]
        name = " ".join(w[4] for w in sorted(footer) if w[2] < width / 3) or "?"
        body = [w for w in words if w[1] > EDGE_POINTS and w[3] < height - EDGE_POINTS]
        printed = sheets.setdefault(name, SheetPrint())
        printed.pages.append(number)
        printed.heights += [w[3] - w[1] for w in body]
    return sheets


def calibration_height(out: Path, profile: Path) -> float:
    """The word height of 11-pt body text printed at 100% by this LibreOffice."""
    path = out / "calibration.xlsx"
    write_workbook(path, [Sheet("Calibration", ["ITEM"], [["calibration"], ["12345"]])])
    printed = sheets_printed(to_pdf(path, out, profile))
    return statistics.median(printed["Calibration"].heights)


def check(workbooks: list[Path], out: Path, min_points: float, png: bool) -> bool:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile_dir:
        profile = Path(profile_dir)
        unit = calibration_height(out, profile) / BODY_POINTS    # word height per point
        passed = True
        for workbook in workbooks:
            pdf = to_pdf(workbook, out, profile)
            if png:
                subprocess.run(["pdftoppm", "-r", "70", "-png", str(pdf),
                                str(out / workbook.stem)], check=True)
            for name, printed in sheets_printed(pdf).items():
                if name == BLANK:
                    passed = False
                    print(f"BLANK {workbook.name}: page(s) {printed.pages} print nothing")
                    continue
                body = statistics.median(printed.heights) / unit if printed.heights else 0.0
                smallest = min(printed.heights) / unit if printed.heights else 0.0
                ok = body >= min_points or not printed.heights
                passed &= ok
                print(f"{'ok ' if ok else 'LOW'} {workbook.name} | {name}: pages "
                      f"{printed.pages[0]}-{printed.pages[-1]}, body {body:.1f} pt, "
                      f"smallest word {smallest:.1f} pt")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workbooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("var/print_check"),
                        help="folder for the PDFs (and PNGs)")
    parser.add_argument("--min-points", type=float, default=7.5)
    parser.add_argument("--png", action="store_true", help="also render every page to PNG")
    args = parser.parse_args(argv)
    for tool in ("soffice", "pdftotext"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y libreoffice-calc-nogui poppler-utils")
            return 2
    print(f"Calibri prints as: {calibri_stand_in()} (install fonts-crosextra-carlito for "
          f"Excel's metrics; a wider stand-in prints smaller and tighter than Excel)")
    return 0 if check(args.workbooks, args.out, args.min_points, args.png) else 1


def calibri_stand_in() -> str:
    """The font LibreOffice uses for Calibri here (fontconfig's choice)."""
    if shutil.which("fc-match") is None:
        return "unknown (no fc-match)"
    done = subprocess.run(["fc-match", "Calibri"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
