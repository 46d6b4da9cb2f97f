"""What send2dps.py and receivedps.py share.

Sections, in the order a run uses them:
  errors and exit codes, config, logging, fiscal periods, run lock and manifests,
  database, SFTP, files, mail and health pings.

Nothing here runs at import time. Every function takes what it needs as arguments.
"""

from __future__ import annotations

import datetime as dt
import email.message
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets
import signal
import smtplib
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

log = logging.getLogger(__name__)

__version__ = "0.1.0"

# ---------------------------------------------------------------------------
# Errors and exit codes
# ---------------------------------------------------------------------------

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_READY = 3
EXIT_LOCKED = 75

# The reliability suite sets this to a step name to have the run killed (SIGKILL) right after
# that step is recorded as done: the crash-and-resume tests. Never set it in production.
FAULT_KILL_AFTER_ENV = "DPS_FAULT_KILL_AFTER"


class DpsError(Exception):
    """Base of every error a user can cause; main() turns it into one line and an exit code."""

    exit_code = EXIT_FAILED


class ConfigError(DpsError):
    exit_code = EXIT_USAGE


class UsageError(DpsError):
    exit_code = EXIT_USAGE


class DatabaseError(DpsError):
    pass


class TransferError(DpsError):
    pass


class InputError(DpsError):
    """A file or a query result failed its checks (a whole-file fault, a sanity limit)."""


class DeliveryError(DpsError):
    pass


class LocalFileError(DpsError):
    """A local file or folder could not be written (disk full, size limit, read-only)."""


class NotReadyError(DpsError):
    exit_code = EXIT_NOT_READY


class WaitExpiredError(NotReadyError):
    """The maximum wait passed without a complete answer: alert, unlike a --no-wait look."""


class LockHeldError(DpsError):
    exit_code = EXIT_LOCKED


# ---------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------

REQUIRED = object()

# Each leaf is (kind, default). Kinds: str, int, float, bool, list, dict, "path" (resolved
# against the config file's folder), "optional_path" (the same, or "" for none), "file" (a
# path that must exist).
CONFIG_SCHEMA: dict[str, dict[str, tuple[Any, Any]]] = {
    "run": {
        "time_zone": (str, "America/Chicago"),
        "close_lag_days": (int, 30),
    },
    "database": {
        "url": (str, REQUIRED),
        "password_env": (str, ""),
        "sql_folder": ("path", "sql"),
    },
    "sa_98": {
        "source": (str, "query"),
        "extract_file": (str, ""),
        "columns": (dict, {}),
    },
    "sftp": {
        "host": (str, REQUIRED),
        "port": (int, 22),
        "username": (str, ""),
        "key_file": ("file", REQUIRED),
        "key_passphrase_env": (str, ""),
        "known_hosts_file": ("file", REQUIRED),
        "upload_folder": (str, "FROM_DFPS"),
        "answer_folder": (str, "TO_DFPS"),
        "after_processing": (str, "move"),
        "processed_folder": (str, "TO_DFPS/processed"),
        "connect_timeout_seconds": (float, 15.0),
        "banner_timeout_seconds": (float, 15.0),
        "auth_timeout_seconds": (float, 15.0),
        "channel_timeout_seconds": (float, 60.0),
        "keepalive_seconds": (int, 30),
        "retries": (int, 3),
        "retry_backoff_seconds": (float, 5.0),
        "download_prefetch": (bool, True),
        "max_concurrent_prefetch_requests": (int, 0),
        "download_request_kib": (int, 128),
        "disabled_algorithms": (dict, {}),
    },
    "folders": {
        "outbox": ("path", "var/outbox"),
        "staging": ("path", "var/staging"),
        "archive": ("path", "var/archive"),
        "state": ("path", "var/state"),
        "logs": ("path", "logs"),
        "share": ("path", "var/share"),
    },
    "dps_file": {
        "send_name": (str, "End_txt_file.txt"),
        "export_name": (str, "end_export.xlsx"),
        "columns": (list, ["PID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX",
                           "DOB", "SEX", "RACE"]),
        "delimiter": (str, "|"),
        "date_format": (str, "%Y%m%d"),
        "encoding": (str, "ascii"),
        "line_ending": (str, "\r\n"),
        "name_max_lengths": (dict, {"LAST_NAME": 30, "FIRST_NAME": 20, "MIDDLE_NAME": 20,
                                    "SUFFIX": 10}),
        "results_name": (str, "Dfps-missing-person-results.txt"),
        "counts_name": (str, "Dfps-missing-person-counts.txt"),
        "results_columns": (list, ["PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "SEX",
                                   "RACE", "MKE", "ORI", "ENTRY_DATE", "DLC", "CLEAR_DATE"]),
        "counts_keys": (dict, {"records_received": "RECORDS_RECEIVED",
                               "persons_with_records": "PERSONS_WITH_RECORDS",
                               "result_records": "RESULT_RECORDS"}),
    },
    "race_mapping": {
        "African American": (str, "B"),
        "Anglo": (str, "W"),
        "Asian": (str, "A"),
        "Native American": (str, "I"),
        "Hispanic": (str, "W"),
        "Other": (str, "U"),
        "Unknown": (str, "U"),
    },
    "sanity": {
        "min_rows": (int, 1),
        "max_change_pct": (float, 25.0),
    },
    "matching": {
        "match_window_days": (int, 3),
    },
    "receive": {
        "poll_seconds": (float, 30.0),
        "settle_seconds": (float, 10.0),
        "max_wait_hours": (float, 6.0),
    },
    "reports": {
        "max_rows_per_sheet": (int, 1_048_576),
        "share_file_mode": (str, "0640"),
    },
    "mail": {
        "enabled": (bool, False),
        "host": (str, "localhost"),
        "port": (int, 25),
        "starttls": (bool, False),
        "ca_file": ("optional_path", ""),
        "username_env": (str, ""),
        "password_env": (str, ""),
        "sender": (str, "dps-exchange@localhost"),
        "recipients": (list, []),
        "attachments": (bool, False),
        "allowed_domains": (list, []),
        "timeout_seconds": (float, 30.0),
    },
    "health": {
        "url": (str, ""),
        "timeout_seconds": (float, 5.0),
    },
    "logs": {
        "retention_days": (int, 90),
    },
}

# Sections whose keys are free (a mapping the user extends); values still type-checked.
OPEN_SECTIONS = {"race_mapping"}
SECRET_WORDS = ("password", "passphrase", "secret", "token")
_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def default_config_path(script_file: str) -> Path:
    return Path(script_file).resolve().parent / "dps_config.yml"


def load_config(path: Path, environ: dict[str, str] | None = None,
                lenient: bool = False) -> dict[str, Any]:
    """Read, expand ${VAR} from the environment, validate and resolve paths.

    Raises ConfigError with one line naming the file and the key at fault. `lenient` (for
    --status, which only reads the run manifests) lets unset variables be empty and key files
    be missing, so monitoring needs no secrets.
    """
    environ = dict(os.environ) if environ is None else environ
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config {path}: file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config {path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" line {where.line + 1}" if where else ""
        raise ConfigError(f"config {path}:{line} not valid YAML") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: expected a mapping of sections at the top")
    refuse_literal_url_password(raw, path)
    expanded = _expand_env(raw, environ, path, "", lenient)
    config = _validate(expanded, path, lenient)
    check_file_names(config["dps_file"], path)
    config["database"]["url"] = resolve_sqlite_url(config["database"]["url"], path.resolve().parent)
    config["_path"] = path.resolve()
    config["_dir"] = path.resolve().parent
    return config


def _expand_env(value: Any, environ: dict[str, str], path: Path, key: str,
                lenient: bool = False) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, environ, path, f"{key}.{k}" if key else str(k), lenient)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, environ, path, key, lenient) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        if lenient:
            return ""
        raise ConfigError(f"config {path}: {key}: environment variable {name} is not set")

    return _ENV_PATTERN.sub(substitute, value)


def _validate(raw: dict[str, Any], path: Path, lenient: bool = False) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for section in raw:
        if section not in CONFIG_SCHEMA:
            raise ConfigError(f"config {path}: unknown section '{section}'")
    for section, schema in CONFIG_SCHEMA.items():
        given = raw.get(section) or {}
        if not isinstance(given, dict):
            raise ConfigError(f"config {path}: {section}: expected a mapping")
        config[section] = _validate_section(section, schema, given, path, lenient)
    return config


def _validate_section(section: str, schema: dict[str, tuple[Any, Any]], given: dict[str, Any],
                      path: Path, lenient: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key in given:
        key_name = f"{section}.{key}"
        if any(word in str(key).lower() for word in SECRET_WORDS) and not str(key).endswith("_env"):
            raise ConfigError(
                f"config {path}: {key_name}: secrets must not be written in the YAML; "
                f"put the name of an environment variable in {section}.{key}_env instead")
        if key not in schema and section not in OPEN_SECTIONS:
            raise ConfigError(f"config {path}: unknown key '{key_name}'")
    if section in OPEN_SECTIONS:
        merged = {k: v for k, (_, v) in schema.items()} if not given else {}
        merged.update(given)
        for key, value in merged.items():
            result[key] = _check_type(f"{section}.{key}", str, value, path)
        return result
    for key, (kind, default) in schema.items():
        key_name = f"{section}.{key}"
        if key not in given or given[key] is None:
            if default is REQUIRED:
                raise ConfigError(f"config {path}: {key_name}: required setting is missing")
            value = default
        else:
            value = given[key]
        if lenient and kind == "file":
            kind = "path"   # --status does not open key files
        if lenient and value == "" and kind in ("path", "file"):
            result[key] = ""
            continue
        result[key] = _check_type(key_name, kind, value, path)
    return result


def _check_type(key_name: str, kind: Any, value: Any, path: Path) -> Any:
    base = path.resolve().parent
    if kind == "optional_path":
        return _check_type(key_name, "path", value, path) if value else ""
    if kind in ("path", "file"):
        if not isinstance(value, str) or not value:
            raise ConfigError(f"config {path}: {key_name}: expected a path")
        resolved = (base / os.path.expanduser(value)).resolve()
        if kind == "file" and not resolved.is_file():
            raise ConfigError(f"config {path}: {key_name}: file not found: {resolved}")
        return resolved
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, str) and value.strip().isdigit():
        return int(value)  # ${PORT} expands to text
    if kind is float and isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value):
        return float(value)
    if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if kind in (int, float) and isinstance(value, bool):
        raise ConfigError(f"config {path}: {key_name}: expected a number, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"config {path}: {key_name}: expected {kind.__name__}, "
                          f"got {type(value).__name__}")
    return value


def refuse_literal_url_password(raw: dict[str, Any], path: Path) -> None:
    """A password written into database.url would sit in the file: refuse it (before ${VAR}
    expansion, so a ${VAR} in its place is fine)."""
    url = (raw.get("database") or {}).get("url")
    match = re.match(r"^[^:]+://[^:/@]*:([^@]*)@", url) if isinstance(url, str) else None
    if match and match.group(1) and not _ENV_PATTERN.fullmatch(match.group(1)):
        raise ConfigError(f"config {path}: database.url: a password is written into the URL; "
                          f"name an environment variable in database.password_env instead")


def check_file_names(file_config: dict[str, Any], path: Path) -> None:
    """The exchanged files' names are names in their folder, never paths out of it."""
    for key in ("send_name", "export_name", "results_name", "counts_name"):
        name = file_config[key]
        if not name or "/" in name or "\\" in name or name.strip(".") == "":
            raise ConfigError(f"config {path}: dps_file.{key}: a file name, not a path")


def resolve_sqlite_url(url: str, base: Path) -> str:
    """A relative SQLite file in database.url is relative to the config file's folder."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or url.startswith(prefix + "/"):
        return url
    rest = url[len(prefix):]
    if not rest or rest.startswith(":memory:"):
        return url
    return prefix + str((base / rest).resolve())


def secret_from_env(config_section: dict[str, Any], key: str, section_name: str) -> str | None:
    """Read a secret whose environment variable name is configured as `<key>_env`."""
    env_name = config_section.get(f"{key}_env") or ""
    if not env_name:
        return None
    value = os.environ.get(env_name)
    if value is None:
        raise ConfigError(f"{section_name}.{key}_env: environment variable {env_name} is not set")
    return value


def resolve_config_path(config: dict[str, Any], value: str) -> Path:
    """A path from the config, relative to the config file's folder."""
    return (config["_dir"] / os.path.expanduser(value)).resolve()


# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

LOG_FORMAT = "%(asctime)s %(run_id)s %(step)s +%(elapsed).1fs %(levelname)s %(name)s: %(message)s"


class _RunContextFilter(logging.Filter):
    """Stamps every record with the run id, the step and the seconds since the run began."""

    def __init__(self, run_id: str, step: str, started: float) -> None:
        super().__init__()
        self.run_id, self.step, self.started = run_id, step, started

    def filter(self, record: logging.LogRecord) -> bool:
        record.run_id = self.run_id
        record.step = self.step
        record.elapsed = time.monotonic() - self.started
        return True


def new_run_id(step: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now:%Y%m%dT%H%M%SZ}-{step}-{secrets.token_hex(2)}"


@contextmanager
def run_logging(step: str, run_id: str, logs_dir: Path | None,
                verbose: bool) -> Iterator[Path | None]:
    """Log to stderr and, when a logs folder is known, to logs/<step>_<run-id>.log.

    The file gets DEBUG lines and tracebacks; stderr gets INFO (DEBUG with -v), one line each.
    Handlers are removed again on exit, so main() can be called many times in one process.
    """
    root = logging.getLogger()
    context = _RunContextFilter(run_id, step, time.monotonic())
    formatter = logging.Formatter(LOG_FORMAT)
    handlers: list[logging.Handler] = []
    stderr_handler = logging.StreamHandler()
    stderr_handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handlers.append(stderr_handler)
    log_file = None
    if logs_dir is not None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        log_file = logs_dir / f"{step}_{run_id}.log"
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        handlers.append(file_handler)
    for handler in handlers:
        handler.addFilter(context)
        handler.setFormatter(formatter)
        root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    for noisy in ("paramiko", "sqlalchemy", "asyncio", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        yield log_file
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(old_level)


def remove_old_files(folder: Path, older_than_days: int, patterns: tuple[str, ...]) -> int:
    """Delete files matching patterns older than N days (log retention). Returns how many."""
    if older_than_days <= 0 or not folder.is_dir():
        return 0
    cutoff = time.time() - older_than_days * 86400
    removed = 0
    for pattern in patterns:
        for path in folder.glob(pattern):
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed


# ---------------------------------------------------------------------------
# Fiscal periods (contract §1)
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Run lock and manifests
# ---------------------------------------------------------------------------


@contextmanager
def run_lock(state_dir: Path, step: str) -> Iterator[None]:
    """Hold state/<step>.lock for the whole run; a second run exits 75 at once.

    The lock dies with the process, so a crash never leaves it held.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    lock_path = state_dir / f"{step}.lock"
    handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LockHeldError(f"another {step} run holds {lock_path}; not starting") from exc
        yield
    finally:
        handle.close()


def manifest_dir(state_dir: Path, step: str) -> Path:
    return state_dir / "manifests" / step


def write_manifest(state_dir: Path, manifest: dict[str, Any]) -> Path:
    folder = manifest_dir(state_dir, manifest["step"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{manifest['run_id']}.json"
    data = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode("utf-8")
    atomic_write_bytes(path, data)
    return path


def read_manifests(state_dir: Path, step: str) -> list[dict[str, Any]]:
    """All manifests of a step, oldest first (run ids start with a UTC timestamp)."""
    folder = manifest_dir(state_dir, step)
    manifests = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            manifests.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            log.warning("manifest %s is unreadable; ignored", path)
    manifests.sort(key=lambda m: (m.get("started_at", ""), m.get("run_id", "")))
    return manifests


def _seconds_between(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds()
    return f"{seconds:.1f}s"


def _process_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


def displayed_outcome(run: dict[str, Any]) -> str:
    """The outcome, with a run that died unrecorded shown as crashed."""
    outcome = run.get("outcome", "?")
    if outcome == "running" and not _process_alive(run.get("pid")):
        return "crashed (rerun it)"
    return outcome


def _run_summary(run: dict[str, Any]) -> str:
    """Rows and files of one run, for the status table (counts and paths only)."""
    if run.get("step") == "send":
        rows = f"{run.get('rows_sent', '-')} sent/{run.get('rows_excluded', '-')} excl"
        where = run.get("remote_path") or run.get("file") or ""
    else:
        rows = (f"{run.get('impact_not_in_dps', '-')}/{run.get('dps_not_in_impact', '-')}/"
                f"{run.get('dps_events', '-')}")
        delivered = run.get("delivered") or []
        where = f"{len(delivered)} report(s) -> {Path(delivered[0]).parent}" if delivered else ""
    return f"{rows:18} {where}"


def period_progress(state_dir: Path, period_label: str) -> str:
    """Where a period stands: sent, answered, reported, delivered, mailed."""
    sends = [m for m in read_manifests(state_dir, "send")
             if m.get("period") == period_label and m.get("outcome") == "uploaded"]
    if not sends:
        return f"{period_label}: not sent"
    upload = sends[-1]
    receives = [m for m in read_manifests(state_dir, "receive")
                if m.get("send_run_id") == upload["run_id"]]
    done = [m for m in receives if m.get("outcome") == "reported"]
    parts = [f"sent (upload {upload['run_id']}, {upload.get('rows_sent')} rows, "
             f"{upload.get('uploaded_at', '')[:16]})"]
    if not done:
        last = displayed_outcome(receives[-1]) if receives else "no receive run yet"
        parts.append(f"not answered yet ({last})")
    else:
        report = done[-1]
        parts.append("answered")
        parts.append(f"reported ({len(report.get('reports', []))} files)")
        parts.append(f"delivered ({len(report.get('delivered', []))} to the share)")
        parts.append("mailed" if report.get("mailed") else
                     "mail FAILED (rerun receive to send it)" if report.get("mail_error")
                     else "not mailed (mail off)")
    return f"{period_label}: " + ", ".join(parts)


def print_status(config: dict[str, Any], period_text: str | None = None, limit: int = 10) -> int:
    """Print the recent runs of both steps and where a period stands.

    Exit 0 when the latest run of each step succeeded (or is still running), else 1, so
    monitoring can call it.
    """
    state_dir = config["folders"]["state"]
    runs = read_manifests(state_dir, "send") + read_manifests(state_dir, "receive")
    runs.sort(key=lambda m: m.get("started_at", ""))
    print(f"Recent runs (newest last), from {manifest_dir(state_dir, '*').parent}:")
    print(f"  {'step':8} {'run id':30} {'period':9} {'started (UTC)':17} {'took':>7}  "
          f"{'outcome':21} {'rows':18} where")
    for run in runs[-limit:]:
        outcome = displayed_outcome(run)
        print(f"  {run.get('step', '?'):8} {run.get('run_id', '?'):30} "
              f"{run.get('period', '-'):9} {run.get('started_at', '')[:16].replace('T', ' '):17} "
              f"{_seconds_between(run.get('started_at'), run.get('finished_at')):>7}  "
              f"{outcome:21} {_run_summary(run)}")
    periods = [m["period"] for m in runs if m.get("period")]
    if period_text or periods:
        label = parse_period(period_text).label if period_text else periods[-1]
        print(period_progress(state_dir, label))
    healthy = True
    for step in ("send", "receive"):
        step_runs = [m for m in runs if m.get("step") == step]
        if not step_runs:
            print(f"latest {step}: none recorded")
            continue
        latest = step_runs[-1]
        outcome = displayed_outcome(latest)
        if outcome == "running":
            state, ok = "running", True
        elif outcome.startswith("crashed"):
            state, ok = "CRASHED: it stopped without recording an outcome; rerun it", False
        elif outcome == "not ready":   # DPS has not answered yet: waiting, not failing
            state, ok = "waiting for DPS's answer (exit 3, not yet there)", True
        else:
            ok = latest.get("exit_code") == EXIT_OK
            state = f"{'ok' if ok else 'FAILED'} (exit {latest.get('exit_code', '-')})"
            if not ok and latest.get("error"):
                state += f": {latest['error']}"
        healthy = healthy and ok
        print(f"latest {step}: {state}")
    return EXIT_OK if healthy else EXIT_FAILED


class StepTimer:
    """Records per-step timings and progress into a run manifest as the run goes."""

    def __init__(self, manifest: dict[str, Any], state_dir: Path | None) -> None:
        self.manifest = manifest
        self.state_dir = state_dir
        manifest.setdefault("steps", {})

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Record the intent (started) before the step and its completion after it."""
        record = {"status": "started"}
        self.manifest["steps"][name] = record
        self.save()
        started = time.monotonic()
        try:
            yield
        except BaseException:
            record["status"] = "failed"
            raise
        else:
            record["status"] = "done"
        finally:
            record["seconds"] = round(time.monotonic() - started, 3)
            self.save()
        if os.environ.get(FAULT_KILL_AFTER_ENV) == name:
            os.kill(os.getpid(), signal.SIGKILL)

    def save(self) -> None:
        if self.state_dir is not None:
            write_manifest(self.state_dir, self.manifest)

    def finish(self, code: int) -> int:
        """Record how the run ended; returns the exit code."""
        self.manifest["finished_at"] = dt.datetime.now(dt.UTC).isoformat()
        self.manifest["exit_code"] = code
        self.save()
        log.info("outcome: %s", self.manifest["outcome"])
        return code


def set_private_umask() -> None:
    """Files we create are readable by the owner only (archive 0600); the data is personal."""
    os.umask(0o077)


def add_common_options(parser: Any) -> None:
    """The options both scripts share: --as-of, --config, --status, -v, --version."""
    parser.add_argument("--as-of", metavar="YYYY-MM-DD",
                        help="run as if today were this date (default: today in run.time_zone)")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="config file (default: dps_config.yml beside this script)")
    parser.add_argument("--status", action="store_true",
                        help="print the recent send and receive runs (with --period, where that "
                             "period stands) and exit; exit 1 if the latest run of a step failed")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines on stderr too")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")


def run_command(step: str, args: Any, script_file: str,
                body: Callable[[dict[str, Any], StepTimer], int]) -> int:
    """What main() does for either script once the arguments are parsed: load the config (an
    error is one line and exit 2), answer --status, or run the step with logging and a lock."""
    import sys

    program = Path(script_file).stem
    try:
        config_path = args.config or default_config_path(script_file)
        if args.status:
            return print_status(load_config(config_path, lenient=True), args.period)
        config = load_config(config_path)
    except DpsError as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    set_private_umask()
    run_id = new_run_id(step)
    with run_logging(step, run_id, config["folders"]["logs"], args.verbose):
        return run_step(step, run_id, config, lambda timer: body(config, timer))


def run_step(step: str, run_id: str, config: dict[str, Any],
             body: Callable[[StepTimer], int]) -> int:
    """Run one step the same way for send and receive: hold the lock, ping health, record the
    outcome in the manifest, and turn any error into one line, an alert and an exit code.

    The traceback goes to the log file only (DEBUG); stderr gets one line.
    """
    state_dir = config["folders"]["state"]
    manifest: dict[str, Any] = {"step": step, "run_id": run_id, "outcome": "running",
                                "started_at": dt.datetime.now(dt.UTC).isoformat(),
                                "pid": os.getpid()}
    timer = StepTimer(manifest, None)
    try:
        with run_lock(state_dir, step):
            timer.state_dir = state_dir
            ping_health(config["health"], "start", run_id)
            remove_expired_files(config)
            code = body(timer)
    except LockHeldError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except DpsError as exc:
        alert = not isinstance(exc, NotReadyError) or isinstance(exc, WaitExpiredError)
        code = _fail(step, run_id, config, timer, str(exc), exc.exit_code, alert)
    except KeyboardInterrupt:
        code = _fail(step, run_id, config, timer, "interrupted", EXIT_FAILED, True)
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line and an alert
        message = f"internal error {type(exc).__name__} (details in the log file)"
        code = _fail(step, run_id, config, timer, message, EXIT_FAILED, True)
    else:
        ping_health(config["health"], "success" if code == EXIT_OK else "fail", run_id)
    write_audit_line(config["folders"]["logs"], timer.manifest)
    return code


def write_audit_line(logs_dir: Path, manifest: dict[str, Any]) -> None:
    """One JSON line per run in logs/audit.jsonl: what ran, when, on what, with what outcome
    (counts, checksums, paths; never a field value). Appended whole with O_APPEND."""
    line = json.dumps(manifest, sort_keys=True, default=str, separators=(",", ":")) + "\n"
    try:
        logs_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(logs_dir / "audit.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
    except OSError as exc:
        log.warning("audit line not written: %s", describe_os_error(exc))


def remove_expired_files(config: dict[str, Any]) -> None:
    """Log retention: logs and staging leftovers older than logs.retention_days go.
    Archives, manifests and the audit file are never touched."""
    import shutil

    days = config["logs"]["retention_days"]
    if days <= 0:
        return
    removed = remove_old_files(config["folders"]["logs"], days, ("*.log",))
    staging = config["folders"]["staging"]
    cutoff = time.time() - days * 86400
    for leftover in staging.iterdir() if staging.is_dir() else []:
        if leftover.stat().st_mtime < cutoff:
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
            removed += 1
    if removed:
        log.info("retention: removed %d log file(s) and staging leftover(s) older than %d days",
                 removed, days)


def _fail(step: str, run_id: str, config: dict[str, Any], timer: StepTimer, message: str,
          code: int, alert: bool) -> int:
    """Record the failure, alert, and log the one-line reason last, so it closes stderr."""
    log.debug("traceback of the failure:\n%s", safe_traceback(sys.exc_info()[1]))
    outcome = "failed"
    if code == EXIT_NOT_READY:
        outcome = "wait expired" if alert else "not ready"
    if timer.manifest.get("outcome") == "uploaded":
        outcome = "uploaded"   # the file did reach DPS; a later step failed (see error)
    timer.manifest.update(outcome=outcome, error=message, exit_code=code,
                          finished_at=dt.datetime.now(dt.UTC).isoformat())
    if timer.state_dir is not None:
        timer.save()
    if code != EXIT_USAGE:
        ping_health(config["health"], "fail", run_id)
    if alert and code != EXIT_USAGE:
        send_failure_alert(config, step, run_id, timer.manifest, message)
    if code == EXIT_NOT_READY:
        log.warning("%s", message)
    else:
        log.error("%s", message)
    return code


def safe_traceback(exc: BaseException | None) -> str:
    """A traceback for the log file with frames and exception types only.

    Messages of other libraries' exceptions may quote a field value (a name in a parse error,
    say); only this product's own messages, which never carry values, are kept.
    """
    import traceback

    lines: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        message = str(exc) if isinstance(exc, DpsError) else "(message withheld: it may quote data)"
        frames = traceback.extract_tb(exc.__traceback__)
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
        lines.append(f"{type(exc).__module__}.{type(exc).__qualname__}: {message}")
        exc = exc.__cause__ or exc.__context__
        if exc is not None:
            lines.append("caused by:")
    return "\n".join(lines)


def rerun_command(config: dict[str, Any], step: str, period: str) -> str:
    """The exact command an operator runs once the cause is fixed."""
    command = str(Path(__file__).resolve().parent / f"run_{step}.sh")
    if config["_path"] != default_config_path(__file__):
        command += f" --config {config['_path']}"
    return command + (f" --period {period}" if period else "")


def what_was_kept(config: dict[str, Any], step: str, manifest: dict[str, Any]) -> str:
    folders, sftp = config["folders"], config["sftp"]
    if step == "send":
        uploaded = "the file WAS uploaded (see the manifest)" if \
            manifest.get("outcome") == "uploaded" else "nothing was uploaded"
        return (f"{uploaded}; the files written are in {folders['outbox'] / 'send'}; "
                f"earlier uploads stay in {folders['archive'] / 'send'}")
    return (f"DPS's files stay in {sftp['answer_folder']} on the server and in "
            f"{folders['archive'] / 'receive'} once archived; nothing was published from inputs "
            f"that failed their checks; reports not yet delivered wait in "
            f"{folders['outbox'] / 'reports'}")


def send_failure_alert(config: dict[str, Any], step: str, run_id: str, manifest: dict[str, Any],
                       message: str) -> None:
    """Mail the one-line reason, what was kept and how to rerun. Never raises."""
    period = manifest.get("period", "")
    script = "send2dps.py" if step == "send" else "receivedps.py"
    command = rerun_command(config, step, period)
    kept = what_was_kept(config, step, manifest)
    text = "\n".join([
        f"The DPS exchange {step} step FAILED ({script}).",
        "",
        f"Reason: {message}",
        f"Period: {period or 'not chosen yet'}",
        f"Run id: {run_id}",
        f"Kept: {kept}",
        f"Log file: {config['folders']['logs'] / (step + '_' + run_id + '.log')}",
        "",
        f"To rerun once the cause is fixed: {command}",
    ])
    try:
        send_mail(config["mail"], f"[DPS exchange] {step} FAILED {period}".strip(), text)
    except DpsError as exc:
        log.warning("failure alert not sent: %s", exc)


# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------


def open_database(url: str, password: str | None = None) -> Any:
    """An SQLAlchemy engine for the configured URL (oracle+oracledb://… or sqlite:///…).

    A password from database.password_env is set on the parsed URL, so characters such as
    @ / : in it need no escaping.
    """
    import sqlalchemy

    try:
        parsed = sqlalchemy.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy raises several kinds here
        raise ConfigError("database.url: not a valid SQLAlchemy URL") from exc
    if password is not None:
        parsed = parsed.set(password=password)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not Path(database).is_file():
            # SQLite would silently create an empty database; refuse instead.
            raise DatabaseError(f"database {database}: file not found")
    return sqlalchemy.create_engine(parsed)


def open_configured_database(database_config: dict[str, Any]) -> Any:
    return open_database(database_config["url"],
                         secret_from_env(database_config, "password", "database"))


def database_reason(exc: BaseException) -> str:
    """The first line of what the driver said (the innermost error), or its kind."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    cause = getattr(cause, "orig", None) or cause
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    if isinstance(cause, OSError) and not isinstance(cause, ConnectionError):
        text = f"cannot reach the database host ({text or type(cause).__name__})"
    return text or type(cause).__name__


def read_sql_file(sql_folder: Path, name: str) -> str:
    path = sql_folder / f"{name}.sql"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"database.sql_folder: cannot read {path}: {exc.strerror}") from exc
    # Whole-line "--" comments go: SQLAlchemy would read a ":name" inside them as a bind.
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return "\n".join(lines).strip().rstrip(";")


def run_query(engine: Any, sql_folder: Path, name: str, params: dict[str, Any],
              required_columns: list[str]) -> Any:
    """Run sql/<name>.sql with bind parameters and return a DataFrame with upper-case columns.

    Dates bind as datetime.date for Oracle and as ISO text for SQLite (its dates are text).
    """
    import pandas as pd
    import sqlalchemy

    sql = read_sql_file(sql_folder, name)
    if engine.dialect.name == "sqlite":
        params = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in params.items()}
    safe_url = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(sqlalchemy.text(sql), connection, params=params)
    except (sqlalchemy.exc.SQLAlchemyError, pd.errors.DatabaseError, OSError) as exc:
        # Driver errors, pandas' wrapper of them, a bad URL option, a host name that does
        # not resolve (socket.gaierror): all one line, without the password.
        raise DatabaseError(f"database {safe_url}: query {name}: "
                            f"{database_reason(exc)}") from exc
    frame.columns = [str(c).upper() for c in frame.columns]
    missing = [c for c in required_columns if c not in frame.columns]
    if missing:
        raise DatabaseError(f"{sql_folder / (name + '.sql')}: result lacks column {missing[0]}")
    log.info("query %s returned %d rows", name, len(frame))
    return frame[required_columns]


# ---------------------------------------------------------------------------
# SFTP
# ---------------------------------------------------------------------------


@dataclass
class RemoteFile:
    path: str
    size: int
    mtime: int


def transfer_faults() -> tuple[type[BaseException], ...]:
    """What a broken connection raises mid-transfer: OSError, EOFError, paramiko's SSHException."""
    import paramiko

    return (OSError, EOFError, paramiko.SSHException)


class SftpSession:
    """An open, host-key-pinned SFTP connection. Use connect_sftp() to make one."""

    def __init__(self, client: Any, sftp: Any, label: str) -> None:
        self.client = client
        self.sftp = sftp
        self.label = label

    def close(self) -> None:
        """Close quietly: closing a connection that already broke raises EOFError."""
        try:
            self.sftp.close()
        except transfer_faults():
            log.debug("sftp %s: connection already broken at close", self.label)
        finally:
            self.client.close()

    def __enter__(self) -> SftpSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _attributes(self, remote_path: str, follow_links: bool) -> Any:
        try:
            return (self.sftp.stat if follow_links else self.sftp.lstat)(remote_path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransferError(f"sftp {self.label}: cannot stat {remote_path}: {exc}") from exc

    def stat(self, remote_path: str) -> RemoteFile | None:
        attrs = self._attributes(remote_path, follow_links=True)
        if attrs is None:
            return None
        return RemoteFile(remote_path, int(attrs.st_size or 0), int(attrs.st_mtime or 0))

    def stat_file(self, remote_path: str) -> RemoteFile | None:
        """Like stat, but a folder, link or device under that name is a whole-file fault."""
        import stat as stat_module

        attrs = self._attributes(remote_path, follow_links=False)
        if attrs is None:
            return None
        if attrs.st_mode is not None and not stat_module.S_ISREG(attrs.st_mode):
            raise InputError(f"{remote_path}: not a regular file on the server")
        return RemoteFile(remote_path, int(attrs.st_size or 0), int(attrs.st_mtime or 0))

    def ensure_folder(self, remote_dir: str) -> None:
        """Create a remote folder (and its parents) when it is missing."""
        parts = [p for p in remote_dir.split("/") if p and p != "."]
        current = "/" if remote_dir.startswith("/") else ""
        for part in parts:
            current = f"{current}{part}" if current in ("", "/") else f"{current}/{part}"
            if self.stat(current) is None:
                self.sftp.mkdir(current)

    def upload(self, local: Path, remote_dir: str, name: str) -> RemoteFile:
        """Upload to <name>.part, rename onto <name>, verify the size; return the final stat."""
        final = join_remote(remote_dir, name)
        part = final + ".part"
        size = local.stat().st_size
        try:
            self.ensure_folder(remote_dir)
            self.sftp.put(str(local), part, confirm=True)
            self._rename_over(part, final)
        except transfer_faults() as exc:
            raise TransferError(f"sftp {self.label}: upload of {local.name} to {final} "
                                f"failed: {exc or type(exc).__name__}") from exc
        remote = self.stat(final)
        if remote is None or remote.size != size:
            got = "nothing" if remote is None else f"{remote.size} bytes"
            raise TransferError(f"sftp {self.label}: {final} has {got} after upload, "
                                f"expected {size} bytes")
        return remote

    def _rename_over(self, source: str, target: str) -> None:
        try:
            self.sftp.posix_rename(source, target)
        except OSError as exc:
            if "posix-rename" not in str(exc).lower() and "unsupported" not in str(exc).lower():
                raise
            log.warning("server lacks posix-rename; replacing %s by remove then rename", target)
            if self.stat(target) is not None:
                self.sftp.remove(target)
            self.sftp.rename(source, target)

    def download(self, remote: RemoteFile, local_dir: Path, prefetch: bool,
                 max_requests: int, request_kib: int = 128) -> Path:
        """Fetch to <local_dir>/<name>.part, verify size, rename. Raises FileChangedError when
        the remote file's size or mtime changed while it was fetched.

        Reads ask for request_kib per request (paramiko's default is 32 KiB; 128 KiB measured
        0.84x OpenSSH's speed here against 0.64x). A server that answers with shorter reads
        still works: paramiko then reads the rest plainly, and the size check below holds.
        """
        import shutil

        local_dir.mkdir(parents=True, exist_ok=True)
        name = remote.path.rsplit("/", 1)[-1]
        part = local_dir / f"{name}.part"
        final = local_dir / name
        try:
            with self.sftp.open(remote.path, "rb") as source, open(part, "wb") as handle:
                source.MAX_REQUEST_SIZE = max(1, request_kib) * 1024
                if prefetch:
                    source.prefetch(remote.size, max_concurrent_requests=max_requests or None)
                shutil.copyfileobj(source, handle, 1 << 20)
                handle.flush()
                os.fsync(handle.fileno())
        except transfer_faults() as exc:
            part.unlink(missing_ok=True)
            raise TransferError(f"sftp {self.label}: download of {remote.path} failed: "
                                f"{exc or type(exc).__name__}") from exc
        after = self.stat_file(remote.path)
        got = part.stat().st_size
        if after is None or (after.size, after.mtime) != (remote.size, remote.mtime) \
                or got != remote.size:
            part.unlink(missing_ok=True)
            raise FileChangedError(f"{remote.path}: changed while it was fetched")
        os.replace(part, final)
        fsync_folder(local_dir)
        return final

    def read_bytes(self, remote_path: str) -> bytes:
        with self.sftp.open(remote_path, "rb") as handle:
            handle.prefetch()
            return handle.read()

    def remove(self, remote_path: str) -> None:
        self.sftp.remove(remote_path)

    def move(self, remote_path: str, remote_dir: str, new_name: str) -> str:
        self.ensure_folder(remote_dir)
        target = join_remote(remote_dir, new_name)
        self._rename_over(remote_path, target)
        return target


class FileChangedError(TransferError):
    pass


def join_remote(folder: str, name: str) -> str:
    folder = folder.rstrip("/")
    return f"{folder}/{name}" if folder and folder != "." else name


def _is_retryable(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, (paramiko.BadHostKeyException, paramiko.AuthenticationException)):
        return False
    if isinstance(exc, paramiko.SSHException) and "known_hosts" in str(exc):
        return False
    return isinstance(exc, (OSError, EOFError, paramiko.SSHException))


def gcm_first_transport(sock: Any, **kwargs: Any) -> Any:
    """A paramiko Transport that prefers AES-GCM (no separate MAC pass: faster in Python).
    A preference only: a server without GCM still connects with what it offers."""
    import paramiko

    transport = paramiko.Transport(sock, **kwargs)
    options = transport.get_security_options()
    gcm = [c for c in ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
           if c in options.ciphers]
    options.ciphers = tuple(gcm + [c for c in options.ciphers if c not in gcm])
    return transport


def connect_sftp(sftp_config: dict[str, Any], sleep: Callable[[float], None] = time.sleep
                 ) -> SftpSession:
    """Connect with the pinned host key and the configured client key.

    Retries connection faults only (refused, reset, timed out), with growing pauses;
    a wrong host key or a refused client key fails at once.
    """
    import getpass

    import paramiko

    host, port = sftp_config["host"], sftp_config["port"]
    label = f"{host}:{port}"
    username = sftp_config["username"] or getpass.getuser()
    passphrase = secret_from_env(sftp_config, "key_passphrase", "sftp")
    attempts = max(1, sftp_config["retries"] + 1)
    for attempt in range(1, attempts + 1):
        client = paramiko.SSHClient()
        client.load_host_keys(str(sftp_config["known_hosts_file"]))
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                host, port=port, username=username,
                key_filename=str(sftp_config["key_file"]), passphrase=passphrase,
                look_for_keys=False, allow_agent=False,
                timeout=sftp_config["connect_timeout_seconds"],
                banner_timeout=sftp_config["banner_timeout_seconds"],
                auth_timeout=sftp_config["auth_timeout_seconds"],
                channel_timeout=sftp_config["channel_timeout_seconds"],
                disabled_algorithms=sftp_config["disabled_algorithms"] or None,
                transport_factory=gcm_first_transport,
            )
            transport = client.get_transport()
            transport.set_keepalive(sftp_config["keepalive_seconds"])
            sftp = client.open_sftp()
            sftp.get_channel().settimeout(sftp_config["channel_timeout_seconds"])
            log.debug("sftp connected to %s (attempt %d)", label, attempt)
            return SftpSession(client, sftp, label)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise TransferError(
                f"sftp {label}: host key does not match the one pinned in "
                f"{sftp_config['known_hosts_file']}; refusing to connect") from exc
        except paramiko.AuthenticationException as exc:
            client.close()
            raise TransferError(f"sftp {label}: the server refused the key "
                                f"{sftp_config['key_file']}") from exc
        except (paramiko.SSHException, OSError, EOFError) as exc:
            client.close()
            if "known_hosts" in str(exc) or "not found in known_hosts" in str(exc):
                raise TransferError(
                    f"sftp {label}: host key is unknown (not in "
                    f"{sftp_config['known_hosts_file']}); refusing to connect") from exc
            if not _is_retryable(exc) or attempt == attempts:
                reason = str(exc) or type(exc).__name__
                raise TransferError(f"sftp {label}: cannot connect after {attempt} "
                                    f"attempt(s): {reason}") from exc
            pause = sftp_config["retry_backoff_seconds"] * 2 ** (attempt - 1)
            log.warning("sftp %s: connection fault (%s); retry %d of %d in %.0fs", label,
                        type(exc).__name__, attempt, attempts - 1, pause)
            sleep(pause)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_with(path: Path, write: Callable[[Path], None], mode: int = 0o600) -> None:
    """Write through a temp file in the same folder, fsync, then rename onto path.

    `write` receives the temp path. A crash leaves at most a .tmp file, never a half file
    under the final name.
    """
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(temp)
        os.chmod(temp, mode)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_folder(path.parent)
    except OSError as exc:
        _remove_quietly(temp)
        raise LocalFileError(f"{path}: cannot write ({describe_os_error(exc)})") from exc
    except BaseException:
        _remove_quietly(temp)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        log.debug("could not remove %s", path)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    atomic_write_with(path, lambda temp: temp.write_bytes(data), mode)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_verified(source: Path, target: Path, mode: int = 0o600) -> str:
    """Copy through a temp file and rename; check the copy's size and SHA-256 match."""
    import shutil

    expected = sha256_file(source)

    def write(temp: Path) -> None:
        with open(source, "rb") as src, open(temp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)

    atomic_write_with(target, write, mode)
    if target.stat().st_size != source.stat().st_size or sha256_file(target) != expected:
        raise DeliveryError(f"{target}: copy does not match {source.name} (size or SHA-256)")
    return expected


def archive_file(source: Path, archive_dir: Path, run_id: str) -> Path:
    target = archive_dir / f"{run_id}_{source.name}"
    copy_verified(source, target, 0o600)
    return target


def describe_os_error(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on device"
    if exc.errno == errno.EFBIG:
        return "file too large (file-size limit)"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied or read-only"
    return exc.strerror or type(exc).__name__


def plain_dates(values: Any) -> Any:
    """A pandas Series of dates (datetime64, time of day cut off; NaT where missing or not a
    real date). Accepts ISO text (SQLite), datetimes (Oracle DATE) or a mix."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None).dt.normalize() if values.dt.tz else values.dt.normalize()
    text = values.astype("string").str.strip().str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")


def frame_rows(frame: Any) -> list[list[Any]]:
    """DataFrame rows as lists of plain Python values for a workbook: dates as datetime.date,
    and missing values and empty text as None (a blank cell). Column by column, for speed."""
    import pandas as pd

    columns = []
    for name in frame.columns:
        series = frame[name]
        if pd.api.types.is_datetime64_any_dtype(series):
            values = series.dt.date.to_numpy(dtype=object, copy=True)
        else:
            values = series.to_numpy(dtype=object, copy=True)
        blank = series.isna().to_numpy(copy=True)
        if not pd.api.types.is_numeric_dtype(series) and not \
                pd.api.types.is_datetime64_any_dtype(series):
            blank |= series.eq("").fillna(False).to_numpy(dtype=bool)
        values[blank] = None
        columns.append(values)
    return [list(row) for row in zip(*columns, strict=True)] if columns else \
        [[] for _ in range(len(frame))]


@dataclass
class Sheet:
    """One logical sheet of a report: a title, column names and rows (lists of cell values;
    datetime.date values become real Excel dates)."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    chart: Any = None          # an openpyxl chart, anchored right of the data
    chart_anchor: str = "H2"


def sheet_titles(title: str, row_count: int, max_rows_per_sheet: int) -> list[str]:
    """Titles for a sheet continued past the row limit: Records, Records (2), Records (3)..."""
    per_sheet = max(1, max_rows_per_sheet - 1)  # the header takes a row
    pieces = max(1, -(-row_count // per_sheet))
    titles = [title[:31]]
    for number in range(2, pieces + 1):
        suffix = f" ({number})"
        titles.append(title[:31 - len(suffix)] + suffix)  # Excel allows 31 characters
    return titles


def write_workbook(path: Path, sheets: list[Sheet], max_rows_per_sheet: int = 1_048_576,
                   mode: int = 0o600) -> None:
    """Write an .xlsx atomically with openpyxl's write-only mode (the fastest it has): a bold
    frozen header, autofilter, column widths from the data, dates as real dates, and sheets
    continued as "<title> (2)" past the row limit."""
    from openpyxl import Workbook

    def write(temp: Path) -> None:
        workbook = Workbook(write_only=True)
        for sheet in sheets:
            _write_sheet_pieces(workbook, sheet, max_rows_per_sheet)
        workbook.save(temp)

    atomic_write_with(path, write, mode)


def _write_sheet_pieces(workbook: Any, sheet: Sheet, max_rows_per_sheet: int) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    per_sheet = max(1, max_rows_per_sheet - 1)
    widths = _column_widths(sheet.columns, sheet.rows)
    titles = sheet_titles(sheet.title, len(sheet.rows), max_rows_per_sheet)
    for index, title in enumerate(titles):
        worksheet = workbook.create_sheet(title)
        chunk = sheet.rows[index * per_sheet:(index + 1) * per_sheet]
        worksheet.freeze_panes = "A2"  # must be set before the first row in write-only mode
        for number, width in enumerate(widths, start=1):
            worksheet.column_dimensions[get_column_letter(number)].width = width
        header = []
        for name in sheet.columns:
            cell = WriteOnlyCell(worksheet, value=name)
            cell.font = Font(bold=True, color="FFFFFF")
            cell.fill = PatternFill("solid", fgColor="1F4E78")
            cell.alignment = Alignment(vertical="center")
            header.append(cell)
        worksheet.append(header)
        for row in chunk:
            worksheet.append(row)
        last_column = get_column_letter(max(1, len(sheet.columns)))
        worksheet.auto_filter.ref = f"A1:{last_column}{len(chunk) + 1}"
        if sheet.chart is not None and index == 0:
            worksheet.add_chart(sheet.chart, sheet.chart_anchor)


def _column_widths(columns: list[str], rows: list[list[Any]], sample: int = 2000) -> list[float]:
    widths = [len(str(c)) + 4 for c in columns]
    for row in rows[:sample]:
        for i, value in enumerate(row[:len(widths)]):
            if value is None:
                continue
            length = 11 if isinstance(value, dt.date) else len(str(value))
            widths[i] = max(widths[i], length + 2)
    return [min(w, 60) for w in widths]


# ---------------------------------------------------------------------------
# Mail and health pings
# ---------------------------------------------------------------------------


def send_mail(mail_config: dict[str, Any], subject: str, text: str, html: str | None = None,
              attachments: list[Path] | None = None) -> bool:
    """Send one mail to the configured recipients. Returns False when mail is off.

    Bodies must carry counts and file names only, never a name or a date of birth.
    Attachments go only when the config allows them and every recipient's domain is allowed.
    """
    if not mail_config["enabled"] or not mail_config["recipients"]:
        log.debug("mail is off; nothing sent")
        return False
    message = email.message.EmailMessage()
    message["Subject"] = subject
    message["From"] = mail_config["sender"]
    message["To"] = ", ".join(mail_config["recipients"])
    message.set_content(text)
    if html:
        message.add_alternative(html, subtype="html")
    if attachments and mail_config["attachments"]:
        allowed = {d.lower() for d in mail_config["allowed_domains"]}
        domains = {r.rsplit("@", 1)[-1].lower() for r in mail_config["recipients"]}
        if not allowed or not domains <= allowed:
            log.warning("attachments left off: a recipient is outside mail.allowed_domains")
        else:
            for path in attachments:
                message.add_attachment(path.read_bytes(), maintype="application",
                                       subtype="octet-stream", filename=path.name)
    username = secret_from_env(mail_config, "username", "mail")
    password = secret_from_env(mail_config, "password", "mail")
    try:
        with smtplib.SMTP(mail_config["host"], mail_config["port"],
                          timeout=mail_config["timeout_seconds"]) as smtp:
            if mail_config["starttls"]:
                ca_file = mail_config["ca_file"]   # a private CA, else the system's
                context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
                smtp.starttls(context=context)
            if username and password:
                smtp.login(username, password)
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise DpsError(f"mail {mail_config['host']}:{mail_config['port']}: "
                       f"cannot send: {type(exc).__name__}: {exc}") from exc
    log.info("mail sent to %d recipient(s): %s", len(mail_config["recipients"]), subject)
    return True


def ping_health(health_config: dict[str, Any], event: str, run_id: str) -> None:
    """Call the health-check URL (healthchecks.io style: /start, /fail, or the bare URL on
    success). Never fails the run."""
    base = health_config["url"].rstrip("/")
    if not base:
        return
    url = {"start": f"{base}/start", "fail": f"{base}/fail"}.get(event, base)
    if not url.startswith(("https://", "http://")):
        log.warning("health.url is not http(s); ping skipped")
        return
    try:
        request = urllib.request.Request(f"{url}?rid={run_id}", method="GET")  # noqa: S310
        with urllib.request.urlopen(request, timeout=health_config["timeout_seconds"]):  # noqa: S310  # nosec B310
            pass
    except (OSError, ValueError) as exc:
        log.warning("health ping %s failed (%s); the run goes on", event, type(exc).__name__)
