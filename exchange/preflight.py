"""`--check`: is every configured system ready for tonight's run? One line per system.

Nothing a partner sees changes: the database is asked for no rows (`SELECT * FROM (<query>)
q WHERE 1 = 0`, with the binds), SFTP folders are listed, SharePoint is signed in to and its
site, library and folder looked up, SMTP is connected and logged in to, the share gets a temp
file that is removed at once, the archive key opens its key check, the health URL's host
answers a connection (no ping: a ping would tell the monitor a run happened). Writes to a
partner's system only on request: `--write-probe` (an SFTP `.part` file and a SharePoint file,
each removed at once) and `--send-test-mail`. Secrets are never printed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import secrets
import smtplib
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from exchange.config import Config, secret_from_env
from exchange.errors import DpsError

log = logging.getLogger(__name__)

READY = "ready"
NOT_READY = "NOT READY"
PROBE_TEXT = b"dps-exchange --check write probe; removed at once\n"


@dataclass(frozen=True)
class CheckResult:
    """One system's answer: its name, whether it is ready, and what was proved or failed."""

    system: str
    ready: bool
    detail: str

    def line(self) -> str:
        return f"{READY if self.ready else NOT_READY:9}  {self.system:10}  {self.detail}"


@dataclass(frozen=True)
class CheckOptions:
    step: str                  # "send" or "receive": which queries the database check asks
    today: dt.date
    write_probe: bool = False
    send_test_mail: bool = False


def run_preflight(config: Config, options: CheckOptions, program: str,
                  echo: Callable[[str], None] = print) -> int:
    """Check every configured system, print one line each and a total; 0 all ready, else 1."""
    results = [check_one(name, check, config, options) for name, check in checks_for(config)]
    hidden = secrets_in_use(config)
    for result in results:
        echo(redact(f"{program} --check: {result.line()}", hidden))
    if options.send_test_mail and not config.mail.enabled:   # asked for, so say why not
        echo(f"{program} --check: mail is off (mail.enabled: false): no test mail sent")
    failed = [r.system for r in results if not r.ready]
    if failed:
        echo(f"{program} --check: {len(failed)} of {len(results)} not ready: "
             f"{', '.join(failed)}")
        return 1
    echo(f"{program} --check: all {len(results)} ready")
    return 0


Check = Callable[[Config, CheckOptions], str]


def checks_for(config: Config) -> list[tuple[str, Check]]:
    """The systems this config uses, in the order a run meets them."""
    checks: list[tuple[str, Check]] = [("database", check_database), ("sftp", check_sftp)]
    if "share" in config.reports.deliver_to:
        checks.append(("share", check_share))
    if "sharepoint" in config.reports.deliver_to:
        checks.append(("sharepoint", check_sharepoint))
    if config.mail.enabled:
        checks.append(("mail", check_mail))
    if config.archive.encrypt:
        checks.append(("archive", check_archive_key))
    if config.health.url:
        checks.append(("health", check_health_url))
    return checks


def check_one(system: str, check: Check, config: Config, options: CheckOptions
              ) -> CheckResult:
    """Run one check; our own errors are their one line, anything else its kind only (a
    library's message may quote a URL or a setting)."""
    try:
        return CheckResult(system, True, check(config, options))
    except DpsError as exc:
        log.debug("check %s: not ready (%s)", system, type(exc).__name__)
        return CheckResult(system, False, str(exc))
    except Exception as exc:  # noqa: BLE001 - every fault of one system is that system's line
        log.debug("check %s: not ready (%s)", system, type(exc).__name__)   # never its message
        return CheckResult(system, False, f"unexpected {type(exc).__name__} (see the log)")


# ----------------------------------------------------------------------------- database


def query_names(config: Config, step: str) -> list[str]:
    if step == "send":
        return ["send_children"]
    caseworker = [config.database.caseworker_query] if config.database.caseworker_query else []
    return (["sa_98"] if config.sa_98.source == "query" else []) + ["county_region", *caseworker]


def query_binds(step: str, config: Config, today: dt.date) -> dict[str, Any]:
    """The binds a run would pass, for the period a run today would use."""
    from exchange.periods import period_containing
    from exchange.rules import Rules

    period = period_containing(today - dt.timedelta(days=config.run.close_lag_days))
    from_date, to_date = Rules.from_config(config).fetch_range(period.start, period.end, today)
    return {"period_start": period.start, "period_end_next": period.end + dt.timedelta(days=1),
            "from_date": from_date, "to_date_next": to_date + dt.timedelta(days=1),
            "run_date": today}


def required_columns(name: str) -> list[str]:
    from exchange.closure import CASEWORKER_QUERY_COLUMNS
    from exchange.reconcile import COUNTY_COLUMNS, SA98_COLUMNS
    from exchange.wrangle import QUERY_COLUMNS

    return {"send_children": QUERY_COLUMNS, "sa_98": SA98_COLUMNS,
            "county_region": COUNTY_COLUMNS}.get(name, CASEWORKER_QUERY_COLUMNS)


def check_database(config: Config, options: CheckOptions) -> str:
    from exchange.database import open_configured_database, query_columns

    engine = open_configured_database(config.database)
    try:
        binds = query_binds(options.step, config, options.today)
        names = query_names(config, options.step)
        for name in names:
            query_columns(engine, config.database.sql_folder, name, binds, required_columns(name))
        where = engine.url.render_as_string(hide_password=True)
    finally:
        engine.dispose()
    extract = f"; {check_sa98_extract(config)}" \
        if options.step == "receive" and config.sa_98.source == "file" else ""
    return f"{where}: {', '.join(names)} return their contract columns (no rows read){extract}"


def check_sa98_extract(config: Config) -> str:
    """sa_98 from a file (CSV or XLSX): it is there and has the contract's columns (mapped)."""
    from exchange.sources import read_sa98_extract

    path = config.resolve(config.sa_98.extract_file)
    rows = len(read_sa98_extract(path, config.sa_98.columns))
    return f"sa_98 extract {path.name}: {rows} row(s) with its contract columns"


# --------------------------------------------------------------------------------- SFTP


def check_sftp(config: Config, options: CheckOptions) -> str:
    from exchange.sftp import connect_sftp

    settings = dataclasses.replace(config.sftp, retries=0)
    folders = [settings.upload_folder, settings.answer_folder]
    with connect_sftp(settings) as session:
        for folder in folders:
            list_remote_folder(session, folder)
        probe = f" and {write_sftp_probe(session, settings.upload_folder)}" \
            if options.write_probe else ""
    return (f"{settings.host}:{settings.port}: host key matches {settings.known_hosts_file}, "
            f"logged in, {' and '.join(folders)} listable{probe}")


def list_remote_folder(session: Any, folder: str) -> None:
    from exchange.errors import TransferError
    from exchange.sftp import transfer_faults

    try:
        session.sftp.listdir(folder)
    except FileNotFoundError as exc:
        raise TransferError(f"sftp {session.label}: folder {folder} is missing on the server"
                            ) from exc
    except transfer_faults() as exc:
        raise TransferError(f"sftp {session.label}: cannot list {folder}: "
                            f"{exc or type(exc).__name__}") from exc


def write_sftp_probe(session: Any, folder: str) -> str:
    """Write a small .part file into the upload folder and remove it at once."""
    import io

    from exchange.errors import TransferError
    from exchange.sftp import join_remote, transfer_faults

    name = join_remote(folder, f".dps-check-{secrets.token_hex(4)}.part")
    try:
        session.sftp.putfo(io.BytesIO(PROBE_TEXT), name, confirm=True)
        session.remove(name)
    except transfer_faults() as exc:
        raise TransferError(f"sftp {session.label}: write probe {name} failed: "
                            f"{exc or type(exc).__name__}") from exc
    return f"a write probe in {folder} was written and removed"


# -------------------------------------------------------------------------------- share


def check_share(config: Config, options: CheckOptions) -> str:
    from exchange.errors import DeliveryError

    share = config.folders.share
    if not share.is_dir():
        raise DeliveryError(f"share {share}: not a folder (is it mounted?)")
    probe = share / f".dps-check-{secrets.token_hex(4)}.tmp"
    try:
        probe.write_bytes(PROBE_TEXT)
        probe.unlink()
    except OSError as exc:
        raise DeliveryError(f"share {share}: cannot write there "
                            f"({exc.strerror or type(exc).__name__})") from exc
    return f"{share}: writable (a temp file was written and removed)"


# --------------------------------------------------------------------------- SharePoint


def static_folder(template: str) -> str:
    """The whole folders of sharepoint.folder before its first {placeholder}: "DPS
    Reconciliation" for "DPS Reconciliation/{fiscal_year}/{quarter}"."""
    head = template.split("{", 1)[0]
    if "{" in template and not head.endswith("/"):
        head = head.rsplit("/", 1)[0] if "/" in head else ""
    return head.strip("/")


def check_sharepoint(config: Config, options: CheckOptions) -> str:
    from exchange.delivery import graph_settings
    from exchange.graph import connect

    settings = config.sharepoint
    folder = static_folder(settings.folder)
    with connect(graph_settings(settings)) as client:
        found = sharepoint_folder_state(client, folder)
        probe = f"; {write_sharepoint_probe(client, folder)}" if options.write_probe else ""
    return (f"signed in; site {settings.site_host}{settings.site_path}, library "
            f"{settings.library!r} found; {found}{probe}")


def sharepoint_folder_state(client: Any, folder: str) -> str:
    """Whether the folder's fixed part exists (looked up by path under the library's root)."""
    from urllib.parse import quote

    from exchange.graph_auth import graph_failure

    if not folder:
        return "reports go to the library's root"
    root = client.graph_json("GET", client.drive_url("/root"), "open the library's root folder")
    what = f"open folder {folder}"
    response = client.send("GET", client.drive_url(f"/items/{root.get('id', '')}:/"
                                                   f"{quote(folder)}"), what)
    if response.status_code == 404:
        return f"folder {folder!r} is missing (the first delivery creates it)"
    if response.status_code != 200:
        raise graph_failure(what, response, 1)
    return f"folder {folder!r} found"


def write_sharepoint_probe(client: Any, folder: str) -> str:
    import tempfile

    from exchange.graph_auth import graph_failure

    with tempfile.TemporaryDirectory(prefix="dps-check-") as tmp:
        probe = Path(tmp) / f"dps-check-{secrets.token_hex(4)}.txt"
        probe.write_bytes(PROBE_TEXT)
        item = client.upload(probe, folder)
    response = client.send("DELETE", client.drive_url(f"/items/{item.item_id}"),
                           f"remove the write probe {item.name}")
    if response.status_code not in (200, 204):
        raise graph_failure(f"remove the write probe {item.name}", response, 1)
    return f"a write probe in {folder or 'the root'} was uploaded and removed"


# --------------------------------------------------------------------------------- mail


def check_mail(config: Config, options: CheckOptions) -> str:
    from exchange.errors import MailError
    from exchange.mail import send_mail

    settings = config.mail
    where = f"{settings.host}:{settings.port}"
    username = secret_from_env(settings.username_env, "mail.username_env")
    password = secret_from_env(settings.password_env, "mail.password_env")
    steps: list[str] = []
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_seconds) as smtp:
            steps.append("connected")
            if settings.starttls:
                cafile = str(settings.ca_file) if settings.ca_file else None
                smtp.starttls(context=ssl.create_default_context(cafile=cafile))
                steps.append("STARTTLS")
            if username and password:
                smtp.login(username, password)
                steps.append("logged in")
            smtp.noop()
    except (OSError, smtplib.SMTPException) as exc:
        done = f"{' and '.join(steps)}, then " if steps else "cannot connect: "
        raise MailError(f"mail {where}: {done}{type(exc).__name__}{smtp_reason(exc)}") from exc
    if options.send_test_mail:
        send_mail(settings, "[DPS exchange] test mail from --check",
                  "This is a test mail from the DPS exchange's --check. No action is needed.\n")
        steps.append(f"a test mail went to {len(settings.recipients)} recipient(s)")
    return f"{where}: {', '.join(steps)}"


def smtp_reason(exc: BaseException) -> str:
    """An SMTP error's code and text, or an OS error's reason; never the credentials."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) \
            else str(exc.smtp_error)
        return f" ({exc.smtp_code} {text.splitlines()[0] if text else ''})".rstrip()
    if isinstance(exc, OSError) and exc.strerror:
        return f" ({exc.strerror})"
    return ""


# ------------------------------------------------------------------------------ archive


def check_archive_key(config: Config, options: CheckOptions) -> str:
    """The key(s) load; each key id's key check in the archive opens (read only: a key id
    without one yet gets it at its first run)."""
    from exchange.archive import KEY_CHECK, key_ring
    from exchange.errors import ConfigError, InputError
    from exchange.vault import check_ring, read_plain

    ring = key_ring(config.archive, config.folder)
    check_ring(ring)
    notes = []
    for key_id in ring.key_ids():
        probe = config.folders.archive / f".key-check-{key_id}"
        if not probe.is_file():
            notes.append(f"{key_id}: no key check yet (the first run writes it)")
            continue
        try:
            ok = read_plain(probe, ring) == KEY_CHECK
        except InputError:
            ok = False
        if not ok:
            raise ConfigError(f"archive key {key_id!r} does not open {probe}: not the key the "
                              "archive was written with")
        notes.append(f"{key_id}: matches its key check")
    return "key(s) readable; " + "; ".join(notes)


# ------------------------------------------------------------------------------- health


def check_health_url(config: Config, options: CheckOptions) -> str:
    """The health URL's host answers a connection (TLS too for https). No request is sent:
    any request to the URL would count as a ping."""
    from exchange.errors import ConfigError, TransferError

    parts = urlsplit(config.health.url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("health.url: not an http(s) URL")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = f"{parts.scheme}://{parts.hostname}:{port}"
    try:
        with socket.create_connection((parts.hostname, port),
                                      timeout=config.health.timeout_seconds) as conn:
            if parts.scheme == "https":
                context = ssl.create_default_context()
                with context.wrap_socket(conn, server_hostname=parts.hostname):
                    pass
    except (OSError, ssl.SSLError) as exc:
        raise TransferError(f"health {where}: no answer ({exc.strerror or type(exc).__name__})"
                            ) from exc
    return f"{where}: answers (no ping sent)"


SECRET_SETTINGS = (("database", "password_env"), ("sftp", "key_passphrase_env"),
                   ("mail", "password_env"), ("sharepoint", "client_secret_env"),
                   ("sharepoint", "private_key_passphrase_env"), ("archive", "key_env"))


def secrets_in_use(config: Config) -> list[str]:
    """The values of the environment variables the config names for secrets."""
    import os

    names = [getattr(getattr(config, section), key) for section, key in SECRET_SETTINGS]
    return [os.environ[name] for name in names if name and os.environ.get(name)]


def redact(text: str, hidden: list[str]) -> str:
    """Text with every secret replaced by ***: a second guard, should a line quote one."""
    for secret in sorted(hidden, key=len, reverse=True):
        if len(secret) >= 4:
            text = re.sub(re.escape(secret), "***", text)
    return text
