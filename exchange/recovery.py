"""Where an interrupted run stands, and what to do next: one table (state -> what --status says
and the next action), so the status line, the refusal and the alert say the same thing.

A run record that ends without an outcome of its own (killed, power cut) is read here from the
steps it recorded: their intent (started) before each step and their completion (done) after.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from exchange.records import NOT_READY, REFUSED_UNANSWERED, RUNNING, UPLOADED, PastRun

STILL_RUNNING = "running"
CRASHED = "crashed"
UPLOAD_INTERRUPTED = "upload interrupted"
ARCHIVE_PENDING = "uploaded, archive pending"
WAITING = "waiting for DPS"
REFUSED = REFUSED_UNANSWERED
FAILED = "failed"
OK = "ok"


@dataclass(frozen=True)
class State:
    name: str
    healthy: bool          # whether monitoring may stay quiet
    next_action: str       # what to do, for --status and refusals


STATES = {s.name: s for s in (
    State(STILL_RUNNING, True, "wait for it to finish"),
    State(CRASHED, False, "it stopped without recording an outcome; rerun it"),
    State(UPLOAD_INTERRUPTED, False, "rerun the send: the file on the server is compared with "
                                     "ours first and not sent twice"),
    State(ARCHIVE_PENDING, False, "the file reached DPS but was not archived; run the send "
                                  "again (run_send.sh): it archives the uploaded files first, "
                                  "whatever IMPACT holds now; then the receive can read them"),
    State(WAITING, True, "DPS has not answered yet (exit 3); the next receive looks again"),
    # One exchange at a time: the send was refused and uploaded nothing (send2dps.py
    # refuse_while_in_flight); the exchange in flight is the receive's to watch, so a
    # refusal never makes the send step look failed.
    State(REFUSED, True, "the receive processes DPS's answer to that upload; then send again "
                         "(--force sends at once)"),
    State(FAILED, False, "fix the cause named and rerun"),
    State(OK, True, "nothing"),
)}


def process_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def archive_pending(run: PastRun) -> bool:
    """A send that uploaded its file but never archived it (killed between the two)."""
    return run.step == "send" and run.outcome == UPLOADED and not run.done("archive") \
        and not run.archived


def state_of(run: PastRun) -> State:
    """The state of one run record (the table above)."""
    ended = run.exit_code is not None
    if not ended and process_alive(run.pid) and run.outcome in (RUNNING, UPLOADED):
        return STATES[STILL_RUNNING]
    if archive_pending(run):
        return STATES[ARCHIVE_PENDING]
    if run.outcome == RUNNING or (not run.outcome and not ended):
        started_upload = run.steps.get("upload", {}).get("status") == "started"
        return STATES[UPLOAD_INTERRUPTED if started_upload else CRASHED]
    if run.outcome == NOT_READY:
        return STATES[WAITING]
    if run.outcome == REFUSED_UNANSWERED:
        return STATES[REFUSED]
    return STATES[OK if run.exit_code == 0 else FAILED]
