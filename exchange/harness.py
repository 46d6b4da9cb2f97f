"""How either script runs its steps: the same lock, logging, run record, health pings, log
retention, failure alert and exit codes for send and receive.

A script describes itself with a `Script` (its step name, program name, rerun command and
what a failure keeps) and hands `run` its step function and that function's options. The
harness never reads a script's command-line arguments.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange import __version__
from exchange.audit import append_audit_line, head_sha256
from exchange.config import Config, HealthSettings, default_config_path
from exchange.errors import (
    EXIT_FAILED,
    EXIT_OK,
    DpsError,
    LocalFileError,
    LockHeldError,
    MailError,
    NotReadyError,
    UsageError,
    WaitExpiredError,
)
from exchange.files import make_private_folder
from exchange.layout import AUDIT_FILE_NAME, Layout
from exchange.leftovers import plain_copies_cleared
from exchange.mail import check_mail_ready, send_mail
from exchange.records import FAILED, NOT_READY, REFUSALS, WAIT_EXPIRED, RunRecord, new_run_id

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(run_id)s %(step)s +%(elapsed).1fs %(levelname)s %(name)s: %(message)s"
NOISY_LOGGERS = ("paramiko", "sqlalchemy", "asyncio", "mail.log", "urllib3", "msal")


@dataclass(frozen=True)
class Script:
    """What the harness needs to know of a script; the script says it itself."""

    step: str                                     # "send" or "receive": lock, records, logs
    program: str                                  # "send2dps.py", for messages
    script_file: str                              # the script's __file__
    kept: Callable[[Config, dict[str, Any]], str]  # what a failure kept, for the alert
    # The mail a run sends once its audit line is written (the receive's summary mail), given
    # that line's hash to carry; raises MailError with the one-line reason when it fails.
    after_line: Callable[[Config, RunRecord, str], None] | None = None

    @property
    def default_config(self) -> Path:
        return default_config_path(self.script_file)

    def rerun_command(self, config: Config, period: str,
                      manifest: dict[str, Any] | None = None) -> str:
        """The exact command an operator runs once the cause is fixed: the failed run's
        config, period, --force, and --as-of when it ran as of another day than today."""
        from exchange.periods import run_date

        manifest = manifest or {}
        command = str(Path(self.script_file).resolve().parent / f"run_{self.step}.sh")
        if config.path != self.default_config:
            command += f" --config {config.path}"
        command += f" --period {period}" if period else ""
        ran_as_of = manifest.get("run_date")
        if ran_as_of and ran_as_of != run_date(config.run.time_zone, None).isoformat():
            command += f" --as-of {ran_as_of}"
        return command + (" --force" if manifest.get("force") else "")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: "send2dps.py: error: …" and exit 2, and a
    flag must be spelt out (`--dry` is refused, not taken for --dry-run)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def add_common_options(parser: argparse.ArgumentParser) -> None:
    """The options both scripts share: --as-of, --config, --status, -v, --version."""
    parser.add_argument("--as-of", metavar="YYYY-MM-DD",
                        help="run as if today were this date (default: today in run.time_zone)")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="config file (default: dps_config.yml beside this script)")
    parser.add_argument("--status", action="store_true",
                        help="print the recent send and receive runs (with --period, where that "
                             "period stands) and exit; exit 1 if the latest run of a step failed")
    parser.add_argument("--verify-audit", action="store_true",
                        help="check the audit trail's hash chain, the run records against it "
                             "and every archived file against the checksum its audit line "
                             "carries; print one line per problem and exit 1 on any")
    parser.add_argument("--expect-head", metavar="HASH",
                        help="with --verify-audit: the audit chain head from a summary mail, a "
                             "failure alert or a health ping; fails unless that line is still "
                             "in the trail (so nothing was cut or rewritten after it)")
    parser.add_argument("--purge-archive", action="store_true",
                        help="remove archived files older than archive.retention_years after "
                             "their period's end (with --dry-run: list them) and exit")
    parser.add_argument("--check", action="store_true",
                        help="connect to every configured system and print one line each: "
                             "ready or not, changing nothing a partner sees; exit 0 when all "
                             "are ready, else 1")
    parser.add_argument("--write-probe", action="store_true",
                        help="with --check: also write a small file to the SFTP upload folder "
                             "and to SharePoint, and remove it at once")
    parser.add_argument("--send-test-mail", action="store_true",
                        help="with --check: also send a test mail to mail.recipients")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines on stderr too")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def wants_check(args: argparse.Namespace) -> bool:
    """--check asked; --write-probe or --send-test-mail without it is a usage error."""
    if (args.write_probe or args.send_test_mail) and not args.check:
        raise UsageError("--write-probe and --send-test-mail go with --check")
    return bool(args.check)


def check_systems(script: Script, config: Config, args: argparse.Namespace) -> int:
    """--check (exchange/preflight.py): one line per configured system; 0 all ready, else 1."""
    from exchange.periods import run_date
    from exchange.preflight import CheckOptions, run_preflight

    options = CheckOptions(step=script.step, today=run_date(config.run.time_zone, args.as_of),
                           write_probe=args.write_probe, send_test_mail=args.send_test_mail)
    return run_preflight(config, options, script.program)


def maintain(config: Config, verify: bool, purge: bool, as_of: str | None,
             dry_run: bool, expect_head: str | None = None) -> int:
    """--verify-audit or --purge-archive: no run, no run record; the purge holds both steps'
    locks so no run uses the archive meanwhile."""
    from exchange.archive import open_archive_for_reading
    from exchange.periods import run_date
    from exchange.retention import purge_archive
    from exchange.verify import verify_audit

    if verify:
        return verify_audit(audit_path(config.folders.logs), config.folders.state,
                            open_archive_for_reading(config), config.folders.archive,
                            expect_head)
    today = run_date(config.run.time_zone, as_of)
    layout = Layout.from_config(config)
    with run_lock(layout.lock_file("send"), "send"), \
            run_lock(layout.lock_file("receive"), "receive"):
        return purge_archive(config.folders.state, audit_path(config.folders.logs),
                             config.archive.retention_years, today, dry_run or not purge)


def report_error(script: Script, exc: DpsError) -> int:
    """A failure before the run started (config, arguments): one line, its exit code."""
    print(f"{script.program}: error: {exc}", file=sys.stderr)
    return exc.exit_code


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def run(script: Script, config: Config, verbose: bool,
        steps: Callable[[Config, RunRecord, Any], int], options: Any) -> int:
    """Run `steps(config, record, options)` under the lock with logging and a run record, then
    write the run's audit line and send the script's after-line mail; turn any error into one
    line, an alert and an exit code."""
    os.umask(0o077)   # files we create are the owner's only: the data is personal
    folders = config.folders
    for folder in (folders.logs, folders.state, folders.outbox, folders.staging, folders.archive):
        make_private_folder(folder)
    record = RunRecord(script.step, new_run_id(script.step))
    log_file = Layout.from_config(config).log_file(script.step, record.run_id)
    with run_logging(script, record.run_id, log_file, verbose), \
            sigterm_as_failure() as term:
        ending = run_locked(script, config, record, steps, options, term)
        if record.state_dir is not None:    # a run that lost the lock did nothing: no line
            announce_the_end(script, config, record, ending)
        if ending.message is not None:   # last, so the one-line reason closes stderr
            (log.warning if ending.as_warning else log.error)("%s", ending.message)
    return ending.code


@dataclass(frozen=True)
class Ending:
    """How a run ended: its exit code and, for a failure, the one-line reason and whether to
    alert. The summary mail, the final ping and the alert go out after the run's audit line, so
    the head they carry is the hash of that line (or of the "mail failed" line after it): nothing
    the run wrote is left outside what they vouch for."""

    code: int
    message: str | None = None   # the one-line reason of a failure
    alert: bool = False          # mail it as a failure alert
    as_warning: bool = False     # log it as a warning (not ready yet), not an error


def announce_the_end(script: Script, config: Config, record: RunRecord, ending: Ending
                     ) -> None:
    ping_health(config.health, "success" if ending.code == EXIT_OK else "fail", record.run_id,
                config.folders.logs)
    if ending.alert and ending.message is not None:
        send_failure_alert(script, config, record.manifest, ending.message)


class Terminated(BaseException):
    """SIGTERM (a shutdown, `kill`, a scheduler's timeout): ends the run like a failure."""


@dataclass
class TermSignal:
    """A SIGTERM during a run: `asked` once it came, `handled` once the run caught it,
    `closing` once the steps have ended (the run's audit line and mail are written first),
    `late` when one came then."""

    asked: bool = False
    handled: bool = False
    closing: bool = False
    late: bool = False

    def steps_ended(self) -> None:
        """From here a SIGTERM lets the run finish its audit line, mail and pings."""
        self.closing = True

    def caught(self) -> None:
        """The run has caught Terminated: no reminder raises it again."""
        import signal

        self.handled = True
        signal.setitimer(signal.ITIMER_REAL, 0)


REMIND_SECONDS = 1.0   # Python drops an exception raised while a __del__ runs: raise it again


@contextmanager
def sigterm_as_failure() -> Iterator[TermSignal]:
    """While a run runs, SIGTERM raises Terminated, so the run records the failure, writes its
    audit line and alerts, as for any other failure. Should the signal land while Python runs
    a finalizer (it then prints "Exception ignored" and goes on), a reminder raises it again
    every REMIND_SECONDS until the run has caught it; never while a Terminated is already on
    its way out (the cleanups it passes through run to their end). A second SIGTERM adds
    nothing; one after the steps ended is noted (`late`) and the run finishes its audit line
    and mail. Only in the main thread (where Python delivers signals); the previous handlers
    come back afterwards. The handlers never log (a signal may land inside a log write)."""
    import signal
    import threading

    term = TermSignal()
    if threading.current_thread() is not threading.main_thread():
        yield term
        return

    def on_its_way_out() -> bool:
        return isinstance(sys.exc_info()[1], Terminated)

    def terminate(signum: int, frame: Any) -> None:
        if term.closing:
            term.late = True
            return
        if term.asked:           # already stopping; a dropped one is the reminder's
            return
        term.asked = True
        signal.setitimer(signal.ITIMER_REAL, REMIND_SECONDS, REMIND_SECONDS)
        raise Terminated

    def remind(signum: int, frame: Any) -> None:
        if term.asked and not term.handled and not term.closing and not on_its_way_out():
            raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    previous_alarm = signal.signal(signal.SIGALRM, remind)
    try:
        yield term
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGTERM, previous)
        if term.late:
            log.warning("a SIGTERM came after the steps had ended: the run finished its "
                        "audit line and mail")


def run_locked(script: Script, config: Config, record: RunRecord,
               steps: Callable[[Config, RunRecord, Any], int], options: Any,
               term: TermSignal | None = None) -> Ending:
    """Under the step's lock: the steps, the run's audit line, then the mail that must carry
    that line's hash (so no other run of the step can send it meanwhile). A fault outside the
    steps (taking the lock, writing the line) is one line and exit 1 too, never a traceback
    on the screen (it goes to the log file)."""
    try:
        with run_lock(Layout.from_config(config).lock_file(script.step), script.step):
            record.state_dir = config.folders.state
            ending = run_steps(script, config, record, steps, options, term)
            if term is not None:
                term.steps_ended()
            write_audit_line(config.folders.logs, record)
            return mail_after_line(script, config, record, ending)
    except LockHeldError as exc:
        log.error("%s", exc)
        return Ending(exc.exit_code)
    except DpsError as exc:
        log.debug("traceback:\n%s", safe_traceback(exc))
        return Ending(exc.exit_code, str(exc))
    except (Terminated, KeyboardInterrupt) as exc:
        log.debug("traceback:\n%s", safe_traceback(exc))
        return Ending(EXIT_FAILED, "terminated (SIGTERM)" if isinstance(exc, Terminated)
                      else "interrupted")
    except Exception as exc:  # noqa: BLE001 - one line, the traceback in the log file only
        log.debug("traceback:\n%s", safe_traceback(exc))
        return Ending(EXIT_FAILED, f"internal error {type(exc).__name__} (details in the log "
                                   f"file)")


def run_steps(script: Script, config: Config, record: RunRecord,
              steps: Callable[[Config, RunRecord, Any], int], options: Any,
              term: TermSignal | None = None) -> Ending:
    """The start ping, log retention, then the script's steps; any error becomes the run's
    failure (recorded, with its one line and whether to alert)."""
    try:
        ping_health(config.health, "start", record.run_id, config.folders.logs)
        remove_expired_files(config)
        try:
            check_mail_ready(config.mail)
            with plain_copies_cleared(config, script.step, record.manifest):
                code = steps(config, record, options)
        finally:
            close_crashed_runs(config, script.step, record.run_id)
    except DpsError as exc:
        alert = not isinstance(exc, NotReadyError) or isinstance(exc, WaitExpiredError)
        return fail(script, config, record, str(exc), exc.exit_code, alert)
    except Terminated:
        if term is not None:
            term.caught()
        return fail(script, config, record, "terminated (SIGTERM)", EXIT_FAILED, True)
    except KeyboardInterrupt:
        return fail(script, config, record, "interrupted", EXIT_FAILED, True)
    except ModuleNotFoundError as exc:
        message = (f"Python module {exc.name!r} is missing: set up the project's environment "
                   f"with 'bash demo/setup_venv.sh' and run with .venv/bin/python")
        return fail(script, config, record, message, EXIT_FAILED, True)
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line and an alert
        message = f"internal error {type(exc).__name__} (details in the log file)"
        return fail(script, config, record, message, EXIT_FAILED, True)
    return Ending(code)


MAIL_FAILED = "mail failed"   # the event of the audit line a failed after-line mail adds


def mail_after_line(script: Script, config: Config, record: RunRecord, ending: Ending
                    ) -> Ending:
    """The script's mail that goes out after the run's audit line (the receive's summary mail),
    carrying that line's hash. When it fails, a further audit line records it: the run record
    as it then stands, marked `event: "mail failed"`, with the failure's exit code and reason
    (the record keeps that line's hash, so record and trail agree). A run that ended well ends
    with exit 1 and the mail's one-line reason; no alert (it would go through the same server).
    """
    if script.after_line is None:
        return ending
    head = record.manifest.get("audit_sha256") or audit_head(config.folders.logs)
    try:
        script.after_line(config, record, head)
        return ending
    except MailError as exc:
        message = str(exc)
    except KeyboardInterrupt:   # (a SIGTERM now waits for the mail: TermSignal.closing)
        message = "interrupted while sending the mail"
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line and a record
        log.debug("traceback of the failure:\n%s", safe_traceback(exc))
        message = f"internal error {type(exc).__name__} while sending the mail (details in the " \
                  f"log file)"
    record.update(event=MAIL_FAILED)
    if ending.code == EXIT_OK:
        record.update(exit_code=EXIT_FAILED, error=message)
        ending = Ending(EXIT_FAILED, message)
    record.save()
    write_audit_line(config.folders.logs, record)
    return ending


def fail(script: Script, config: Config, record: RunRecord, message: str, code: int,
         alert: bool) -> Ending:
    """Record the failure; the alert goes out and the one-line reason is logged after the
    audit line (run, announce_the_end)."""
    log.debug("traceback of the failure:\n%s", safe_traceback(sys.exc_info()[1]))
    ended_as = FAILED
    if isinstance(sys.exc_info()[1], NotReadyError):
        ended_as = WAIT_EXPIRED if alert else NOT_READY
    record.fail(message, code, ended_as)
    rerun_step = getattr(sys.exc_info()[1], "rerun_step", None)
    if rerun_step:   # another step must run first (the alert's rerun command names it)
        record.update(rerun_step=rerun_step)
        record.save()
    not_ready = isinstance(sys.exc_info()[1], NotReadyError) and not alert
    return Ending(code, message, alert, as_warning=not_ready)


def safe_traceback(exc: BaseException | None) -> str:
    """A traceback for the log file with frames and exception types only.

    Messages of other libraries' exceptions may quote a field value (a name in a parse error,
    say); only this product's own messages, which never carry values, are kept.
    """
    lines: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        message = str(exc) if isinstance(exc, DpsError) else "(message withheld: it may quote data)"
        if isinstance(exc, ModuleNotFoundError):
            message = f"module {exc.name!r} not found"
        frames = traceback.extract_tb(exc.__traceback__)
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
        lines.append(f"{type(exc).__module__}.{type(exc).__qualname__}: {message}")
        exc = exc.__cause__ or exc.__context__
        if exc is not None:
            lines.append("caused by:")
    return "\n".join(lines)


def rerun_command(script: Script, config: Config, period: str,
                  manifest: dict[str, Any]) -> str:
    """The script's own rerun command (with the failed run's --force and --as-of), or the
    other step's, plainly, when the failure said that step must run first (an error with
    `rerun_step`, recorded by `fail`)."""
    step = manifest.get("rerun_step") or script.step
    if step == script.step:
        return script.rerun_command(config, period, manifest)
    return script.rerun_command(config, period).replace(f"run_{script.step}.sh",
                                                        f"run_{step}.sh")


def send_failure_alert(script: Script, config: Config, manifest: dict[str, Any],
                       message: str) -> None:
    """Mail the one-line reason, what was kept and how to rerun. Never raises."""
    period = manifest.get("period", "")
    step, run_id = script.step, manifest["run_id"]
    ended = "REFUSED" if manifest.get("outcome") in REFUSALS else "FAILED"
    text = "\n".join([
        f"The DPS exchange {step} step {ended} ({script.program}).",
        "",
        f"Reason: {message}",
        f"Period: {period or 'not chosen yet'}",
        f"Run id: {run_id}",
        f"Kept: {script.kept(config, manifest)}",
        f"Log file: {Layout.from_config(config).log_file(step, run_id)}",
        f"Audit chain head (this run's line): {audit_head(config.folders.logs)}",
        "",
        f"To rerun once the cause is fixed: {rerun_command(script, config, period, manifest)}",
    ])
    try:
        send_mail(config.mail, f"[DPS exchange] {step} {ended} {period}".strip(), text)
    except MailError as exc:
        log.warning("failure alert not sent: %s", exc)


# ---------------------------------------------------------------------------
# Lock, logging, audit line, retention, health pings
# ---------------------------------------------------------------------------


@contextmanager
def run_lock(lock_path: Path, step: str) -> Iterator[None]:
    """Hold state/<step>.lock for the whole run; a second run exits 75 at once.

    The lock dies with the process, so a crash never leaves it held.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockHeldError(f"another {step} run holds {lock_path}; not starting") from exc
        yield


class RunContextFilter(logging.Filter):
    """Stamps every record with the run id, the step and the seconds since the run began."""

    def __init__(self, run_id: str, step: str, started: float) -> None:
        super().__init__()
        self.run_id, self.step, self.started = run_id, step, started

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        record.step = self.step
        record.elapsed = time.monotonic() - self.started
        return True


class OneLineFormatter(logging.Formatter):
    """stderr: "send2dps.py: message", "send2dps.py: warning: …", "send2dps.py: error: …"."""

    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        level = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        return f"{self.program}: {level}{record.getMessage()}"


@contextmanager
def run_logging(script: Script, run_id: str, log_file: Path, verbose: bool
                ) -> Iterator[Path]:
    """Log to stderr (one line each; INFO, or DEBUG with -v) and to logs/<step>_<run-id>.log
    (DEBUG, with tracebacks). Handlers are removed again on exit, so main() can be called many
    times in one process."""
    root = logging.getLogger()
    context = RunContextFilter(run_id, script.step, time.monotonic())
    stderr_handler = logging.StreamHandler()
    stderr_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    stderr_handler.setFormatter(OneLineFormatter(script.program))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    file_handler = logging.FileHandler(log_file, encoding="utf-8")
    file_handler.setLevel(logging.DEBUG)
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handlers = [stderr_handler, file_handler]
    for handler in handlers:
        handler.addFilter(context)
        root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield log_file
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(old_level)


def audit_path(logs_dir: Path) -> Path:
    return logs_dir / AUDIT_FILE_NAME


def audit_head(logs_dir: Path) -> str:
    """The audit chain's head (the last line's SHA-256), or 'unreadable'."""
    try:
        return head_sha256(audit_path(logs_dir))
    except LocalFileError:
        return "unreadable"


def write_audit_line(logs_dir: Path, record: RunRecord) -> None:
    """One line per run in logs/audit.jsonl (and a second, "mail failed", when the mail sent
    after it fails), chained to the line before it by its SHA-256 (exchange/audit.py): what
    ran, when, on what, with what outcome (counts, checksums, paths; never a field value). The
    run record keeps the hash of its last line, so lines cut from the end are found too."""
    try:
        checksum = append_audit_line(audit_path(logs_dir), record.manifest)
    except LocalFileError as exc:
        log.warning("audit line not written: %s", exc)
        return
    record.update(audit_sha256=checksum)
    record.save()


def close_crashed_runs(config: Config, step: str, run_id: str) -> None:
    """Earlier runs of this step that died without their audit line (kill -9, power loss) get
    one now, from their run record as it stands (after this run completed what they left, such
    as a missing archive step), marked closed_by this run; their records keep its hash. This
    run holds the step's lock, so none of them is still running. Never fails the run."""
    from exchange.records import read_manifests, write_manifest

    try:
        for manifest in read_manifests(config.folders.state, step):
            if "finished_at" in manifest or manifest.get("run_id") == run_id \
                    or "audit_sha256" in manifest:
                continue    # ended (recorded), this run, or already in the trail
            line = dict(manifest, closed_by=run_id, ended="crashed (closed by a later run)")
            checksum = append_audit_line(audit_path(config.folders.logs), line)
            manifest.update(audit_sha256=checksum, closed_by=run_id)
            write_manifest(config.folders.state, manifest)
            log.info("run %s died without its audit line; wrote it from its run record",
                     manifest.get("run_id"))
    except (DpsError, OSError) as exc:
        log.warning("crashed runs not closed in the audit trail (%s)", exc)


def remove_expired_files(config: Config) -> None:
    """Log retention: logs and staging leftovers older than logs.retention_days go.
    Archives, run records and the audit file are never touched."""
    days = config.logs.retention_days
    if days <= 0:
        return
    cutoff = time.time() - days * 86400
    logs = config.folders.logs
    old = [p for p in logs.glob("*.log") if p.is_file()] if logs.is_dir() else []
    staging = config.folders.staging
    old += list(staging.iterdir()) if staging.is_dir() else []
    removed = 0
    for path in old:
        if path.stat().st_mtime < cutoff:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("retention: removed %d log file(s) and staging leftover(s) older than %d days",
                 removed, days)


def ping_health(settings: HealthSettings, event: str, run_id: str, logs_dir: Path) -> None:
    """Call the health-check URL (healthchecks.io style: /start, /fail, or the bare URL on
    success) with the run id and the audit chain's head (an anchor outside this machine).
    Never fails the run."""
    base = settings.url.rstrip("/")
    if not base:
        return
    url = {"start": f"{base}/start", "fail": f"{base}/fail"}.get(event, base)
    if not url.startswith(("https://", "http://")):
        log.warning("health.url is not http(s); ping skipped")
        return
    import urllib.request  # here, not at the top: most runs have no health URL

    try:
        head = audit_head(logs_dir)
        request = urllib.request.Request(f"{url}?rid={run_id}&audit={head}",  # noqa: S310
                                         method="GET")
        with urllib.request.urlopen(request, timeout=settings.timeout_seconds):  # noqa: S310  # nosec B310
            pass
    except (OSError, ValueError) as exc:
        log.warning("health ping %s failed (%s); the run goes on", event, type(exc).__name__)
