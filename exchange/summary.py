"""The summary mail's text, plain and HTML alike (docs/data-contract.md §8, §9): match rates,
the split of the unreported runaways, counts per region beside the previous period's, one-line
definitions, where each file is, and the run ids in a footer.

Counts and file locations only: never a name, date of birth, PID or NIC. Pure logic.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from exchange.periods import Period
from exchange.reconcile import NOTE_NOT_IN_CARE, STATEWIDE, Reconciliation
from exchange.reports import EPISODES_COUNT, REPORTS, regions_missing, trend_rows

# Where the footer puts the audit chain's head. The mail is written before the run's audit
# line and sent after it (exchange/harness.py, mail_after_line), so the text kept in the run
# record (and in that line) holds this slot; `with_audit_head` fills it with the hash of the
# line written last before the mail goes.
AUDIT_HEAD_SLOT = "[the hash of the audit line written before this mail]"


def with_audit_head(text: str, head: str) -> str:
    """The mail text with the audit chain's head in its slot (text without one is unchanged:
    a mail kept by an older version carries the head it was written with)."""
    return text.replace(AUDIT_HEAD_SLOT, head)


@dataclass(frozen=True)
class MailFacts:
    """What the summary mail reports, besides the reconciliation itself."""

    period: Period
    locations: dict[str, str]            # file name -> where it is (share path or link)
    exceptions: int
    run_id: str
    send_run_id: str
    previous_label: str | None            # the recorded period before this one
    previous_counts: dict[str, int] | None
    audit_head: str = ""                  # the audit chain's head (AUDIT_HEAD_SLOT until sent)


def rate(part: int, whole: int) -> str:
    return f"{part} of {whole} ({100 * part / whole:.1f}%)" if whole else f"{part} of 0"


def region_table(recon: Reconciliation, facts: MailFacts) -> tuple[list[str], list[list[Any]]]:
    """Per region: the period's episodes and each report's count (the report compared with
    the previous recorded period has that period's count beside it)."""
    leading = {title: by_region for spec in REPORTS
               for title, by_region in spec.mail_regions(recon, facts.period).items()}
    columns = ["Region", *leading, "Episodes"]
    for spec in REPORTS:
        columns.append(spec.mail_column)
        if spec.compare_previous and facts.previous_label:
            columns.append(f"{spec.mail_column}, {facts.previous_label}")
    rows = []
    counted = trend_rows(recon)
    extra = regions_missing([row["REGION"] for row in counted], *leading.values())
    blank = dict.fromkeys(counted[-1], 0)
    counted = [*counted[:-1], *[{**blank, "REGION": label} for label in extra], counted[-1]]
    for counts in counted:
        label = counts["REGION"]
        row = [label, *[by_region.get(label, 0) if label != STATEWIDE else
                        sum(by_region.values()) for by_region in leading.values()],
               counts[EPISODES_COUNT]]
        for spec in REPORTS:
            row.append(counts[spec.count_column])
            if spec.compare_previous and facts.previous_label:
                row.append((facts.previous_counts or {}).get(label, 0))
        rows.append(row)
    return columns, rows


def summary_lines(recon: Reconciliation, facts: MailFacts) -> list[tuple[str, Any]]:
    """(label, value) lines shared by the plain and the HTML text."""
    flow = recon.flow
    lines: list[tuple[str, Any]] = [
        *[line for spec in REPORTS for line in spec.mail_lead(recon, facts.period)],
        ("Runaway episodes in the period with a DPS record",
         rate(flow["episodes_matched"], flow["episodes_in_period"])),
        ("DPS records in the period found in IMPACT",
         rate(flow["records_matched"], flow["records_in_period"]))]
    for spec in REPORTS:
        if spec.mail_line:
            rows = spec.rows(recon)
            lines.append((spec.mail_line, len(rows)))
            lines += [(f"  {name}", count) for name, count in spec.mail_split(rows)]
    return [*lines, ("Rows on the Exceptions sheets", facts.exceptions)]


def success_mail(recon: Reconciliation, facts: MailFacts) -> tuple[str, str, str]:
    """Subject, plain text and HTML of the summary mail."""
    period = facts.period
    subject = f"[DPS exchange] reports for {period.label} are ready"
    heading = (f"The DPS missing-person reports for {period.label} ({period.start} to "
               f"{period.end}) are ready.")
    footer = f"Run {facts.run_id}, answering upload {facts.send_run_id}." + \
        (f" Audit chain head: {facts.audit_head}." if facts.audit_head else "")
    return subject, plain_text(recon, facts, heading, footer), \
        html_text(recon, facts, heading, footer)


def plain_text(recon: Reconciliation, facts: MailFacts, heading: str, footer: str) -> str:
    columns, rows = region_table(recon, facts)
    lines = [heading, ""]
    lines += [f"{label}: {value}" for label, value in summary_lines(recon, facts)]
    lines += ["", "By region:", "  ".join(f"{c:>22}" for c in columns)]
    lines += ["  ".join(f"{str(v):>22}" for v in row) for row in rows]
    lines += ["", "What the reports are:"]
    lines += [f"  {spec.stem}: {spec.definition}" for spec in REPORTS]
    lines += ["", "Where the files are:"]
    lines += [f"  {name}: {where}" for name, where in facts.locations.items()]
    lines += ["", f"'{NOTE_NOT_IN_CARE}' and 'excluded' rows were not in the file sent to "
                  f"DPS.", "", "-- ", footer]
    return "\n".join(lines) + "\n"


def html_text(recon: Reconciliation, facts: MailFacts, heading: str, footer: str) -> str:
    columns, rows = region_table(recon, facts)
    escape = html.escape
    summary = "".join(f"<tr><td>{escape(label.strip())}</td><td>{escape(str(value))}</td></tr>"
                      for label, value in summary_lines(recon, facts))
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(
        f"<td>{'<b>' if row[0] == STATEWIDE else ''}{escape(str(v))}</td>" for v in row)
        + "</tr>" for row in rows)
    definitions = "".join(f"<li><b>{escape(spec.stem)}</b>: {escape(spec.definition)}</li>"
                          for spec in REPORTS)
    files = "".join(f"<li>{escape(n)}: {link(where)}</li>"
                    for n, where in facts.locations.items())
    return (f"<p>{escape(heading)}</p><table border='1' cellpadding='4'>{summary}</table>"
            f"<p>By region:</p><table border='1' cellpadding='4'><tr>{head}</tr>{body}</table>"
            f"<p>What the reports are:</p><ul>{definitions}</ul>"
            f"<p>Where the files are:</p><ul>{files}</ul>"
            f"<p style='color:#666'>{escape(footer)}</p>")


def link(where: str) -> str:
    """A web address or a share path as a link (a path as a file:// URL), else plain text."""
    href = where if where.startswith("https://") else file_url(where)
    if href is None:
        return html.escape(where)
    return f"<a href='{html.escape(href, quote=True)}'>{html.escape(where)}</a>"


def file_url(where: str) -> str | None:
    """A share path as a file:// URL (UNC \\\\server\\share\\dir -> file://server/share/dir,
    C:\\dir -> file:///C:/dir, /srv/dir -> file:///srv/dir); None when not an absolute path."""
    from pathlib import PurePosixPath, PureWindowsPath

    if where.startswith("\\\\") or where[1:3] == ":\\":
        return PureWindowsPath(where).as_uri()
    if where.startswith("/"):
        return PurePosixPath(where).as_uri()
    return None
