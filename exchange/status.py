"""--status: the recent runs of both steps, where a period stands, and an exit code for
monitoring. It reads the run records only, so it needs no secrets and no key files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from exchange import recovery
from exchange.errors import EXIT_FAILED, EXIT_OK
from exchange.records import (
    ANSWERED,
    DRY_RUN,
    RECEIVE,
    REPORTED,
    SEND,
    PastRun,
    ReceiveRecord,
    last_upload_for_period,
    manifest_dir,
    receives,
    receives_of,
    sends,
)
from exchange.recovery import state_of

CRASHED = "crashed (rerun it)"


def print_status(state_dir: Path, period_label: str | None = None, limit: int = 10) -> int:
    """Print the recent runs of both steps and where a period stands.

    Exit 0 when the latest run of each step (dry runs aside) succeeded, is still running or
    is waiting for DPS; else 1, so monitoring can call it.
    """
    runs: list[PastRun] = [*sends(state_dir), *receives(state_dir)]
    runs.sort(key=lambda m: m.started_at)
    print(f"Recent runs (newest last), from {manifest_dir(state_dir, '*').parent}:")
    print(f"  {'step':8} {'run id':30} {'period':9} {'started (UTC)':17} {'took':>7}  "
          f"{'outcome':21} {'exit':>4}  counts; where")
    for run in runs[-limit:]:
        print("  " + run_line(run))
    real = [m for m in runs if m.period and not m.dry_run and m.outcome != DRY_RUN]
    periods = [m.period for m in real or [m for m in runs if m.period]]   # dry runs aside
    if period_label or periods:
        print(period_progress(state_dir, period_label or periods[-1]))
    answered = {m.send_run_id for m in runs if isinstance(m, ReceiveRecord)
                and m.outcome in ANSWERED}
    healthy = True
    for step in (SEND, RECEIVE):
        text, ok = latest_state([m for m in runs if m.step == step], answered)
        print(f"latest {step}: {text}")
        healthy = healthy and ok
    return EXIT_OK if healthy else EXIT_FAILED


def run_line(run: PastRun) -> str:
    started = run.started_at[:16].replace("T", " ")
    took = seconds_between(run.started_at, run.finished_at)
    exit_code = "-" if run.exit_code is None else run.exit_code
    return (f"{run.step or '?':8} {run.run_id or '?':30} {run.period or '-':9} "
            f"{started:17} {took:>7}  {displayed_outcome(run):21} {exit_code!s:>4}  "
            f"{run.summary or '-'}; {run.where or '-'}")


def seconds_between(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return f"{seconds:.1f}s"


def displayed_outcome(run: PastRun) -> str:
    """The outcome, with a run that died unrecorded shown as what it left (exchange/recovery.py:
    crashed, upload interrupted, uploaded with the archive pending)."""
    outcome = run.outcome or "?"
    state = state_of(run)
    if state.name in (recovery.CRASHED, recovery.UPLOAD_INTERRUPTED):
        return CRASHED if state.name == recovery.CRASHED else f"{state.name} (rerun it)"
    if state.name == recovery.ARCHIVE_PENDING:
        return state.name
    return outcome


def latest_state(step_runs: list[PastRun], answered: set[str] | None = None
                 ) -> tuple[str, bool]:
    """(what the latest real run of a step says, whether that is healthy). Dry runs are
    previews: they are listed but never stand for the step. `answered`: the run ids of the
    uploads a receive has processed (a refused send names the one it waited for)."""
    real = [m for m in step_runs if not m.dry_run and m.outcome != DRY_RUN]
    if not real:
        return "none recorded" + (" (dry runs only)" if step_runs else ""), True
    latest = real[-1]
    state = state_of(latest)
    if state.name == recovery.STILL_RUNNING:
        return "running", True
    if state.name == recovery.CRASHED:
        return "CRASHED: it stopped without recording an outcome; rerun it", False
    if state.name in (recovery.UPLOAD_INTERRUPTED, recovery.ARCHIVE_PENDING):
        return f"{state.name.upper()}: {state.next_action}", False
    if state.name == recovery.WAITING:   # DPS has not answered yet: waiting, not failing
        return "waiting for DPS's answer (exit 3, not yet there)", True
    if state.name == recovery.REFUSED:   # one exchange at a time: not a failure
        upload = getattr(latest, "unanswered_upload", "") or "?"
        now = "has been answered since: the next send uploads" \
            if upload in (answered or set()) else f"is still unanswered: {state.next_action}"
        return f"{state.name} (exit {latest.exit_code}); upload {upload} {now}", True
    ok = latest.exit_code == EXIT_OK
    code = "-" if latest.exit_code is None else latest.exit_code
    text = f"{'ok' if ok else 'FAILED'} (exit {code})"
    if not ok and latest.error:
        text += f": {latest.error}"
    return text, ok


def period_progress(state_dir: Path, period_label: str) -> str:
    """Where a period stands: sent, answered, reported, delivered, mailed."""
    upload = last_upload_for_period(state_dir, period_label)
    if upload is None:
        return f"{period_label}: not sent"
    answers = receives_of(state_dir, upload.run_id)
    done = [m for m in answers if m.outcome == REPORTED]
    parts = [f"sent (upload {upload.run_id}, {upload.rows_sent} rows, "
             f"{upload.uploaded_at[:16]})"]
    if not done:
        last = displayed_outcome(answers[-1]) if answers else "no receive run yet"
        parts.append(f"not answered yet ({last})")
    else:
        report = done[-1]
        parts += ["answered", f"reported ({len(report.reports)} files)",
                  delivery_progress(report), mail_progress(report)]
    return f"{period_label}: " + ", ".join(parts)




def delivery_progress(report: ReceiveRecord) -> str:
    """How many reports each target holds (older records list share paths only)."""
    delivered_to = report.delivered_to
    if delivered_to is None:
        return f"delivered ({len(report.delivered)} to the share)"
    counts = [f"{len(files)} to {report.delivery_labels.get(target, target)}"
              for target, files in delivered_to.items()]
    return f"delivered ({', '.join(counts) or 'nothing'})"


def mail_progress(report: ReceiveRecord) -> str:
    if report.mailed:
        return "mailed"
    if report.mail_error:
        return "mail FAILED (rerun receive to send it)"
    if report.pending_mail:   # its audit line was written, then the run stopped before the mail
        return "mail not sent yet (rerun receive to send it)"
    return "not mailed (mail off)"
