"""The sections of dps_config.yml: one frozen dataclass each, its fields the section's keys
with their types and defaults. exchange/config.py loads and checks a file against them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def path_setting(default: str | None = None, kind: str = "path") -> Any:
    """A path resolved against the config's folder. kind: "path", "file" (must exist) or
    "optional_path" ("" for none). Without a default the setting is required."""
    if default is None:
        return field(metadata={"kind": kind})
    return field(default=default, metadata={"kind": kind})  # type: ignore[arg-type]


def listed(*items: Any) -> Any:
    """A list default: every Config gets its own copy."""
    return field(default_factory=lambda: list(items))


def mapping(**items: Any) -> Any:
    """A dict default: every Config gets its own copy."""
    return field(default_factory=lambda: dict(items))


# ---------------------------------------------------------------------------
# The sections, in the order dps_config.yml lists them
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSettings:
    time_zone: str = "America/Chicago"
    close_lag_days: int = 30
    processes: int = 2    # a receive's work at the same time, in forked copies; 1: in turn


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    password_env: str = ""
    sql_folder: Path = path_setting("sql")
    caseworker_query: str = ""    # §10.4: a query in sql_folder naming each child's worker


@dataclass(frozen=True)
class Sa98Settings:
    source: str = "query"
    extract_file: str = ""
    columns: dict = mapping()


@dataclass(frozen=True)
class SftpSettings:
    host: str
    key_file: Path = path_setting(kind="file")
    known_hosts_file: Path = path_setting(kind="file")
    port: int = 22
    username: str = ""
    key_passphrase_env: str = ""
    upload_folder: str = "FROM_DFPS"
    answer_folder: str = "TO_DFPS"
    after_processing: str = "move"
    processed_folder: str = "TO_DFPS/processed"
    connect_timeout_seconds: float = 15.0
    banner_timeout_seconds: float = 15.0
    auth_timeout_seconds: float = 15.0
    channel_timeout_seconds: float = 60.0
    keepalive_seconds: int = 30
    retries: int = 3
    retry_backoff_seconds: float = 5.0
    download_prefetch: bool = True
    max_concurrent_prefetch_requests: int = 0
    download_request_kib: int = 128
    disabled_algorithms: dict = mapping()


@dataclass(frozen=True)
class FolderSettings:
    outbox: Path = path_setting("var/outbox")
    staging: Path = path_setting("var/staging")
    archive: Path = path_setting("var/archive")
    state: Path = path_setting("var/state")
    logs: Path = path_setting("logs")
    share: Path = path_setting("var/share")


@dataclass(frozen=True)
class DpsFileSettings:
    send_name: str = "End_txt_file.txt"
    export_name: str = "end_export.xlsx"
    columns: list = listed("PID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX", "DOB",
                           "SEX", "RACE")
    delimiter: str = "|"
    date_format: str = "%Y%m%d"
    encoding: str = "ascii"
    line_ending: str = "\r\n"
    name_max_lengths: dict = mapping(LAST_NAME=30, FIRST_NAME=20, MIDDLE_NAME=20, SUFFIX=10)
    results_name: str = "Dfps-missing-person-results.txt"
    counts_name: str = "Dfps-missing-person-counts.txt"
    results_columns: list = listed("PID", "NIC", "LAST_NAME", "FIRST_NAME", "DOB", "SEX",
                                   "RACE", "MKE", "ORI", "ENTRY_DATE", "DLC", "CLEAR_DATE")
    optional_results_columns: list = listed()   # read when DPS sends them, blank when not
    counts_keys: dict = mapping(records_received="RECORDS_RECEIVED",
                                persons_with_records="PERSONS_WITH_RECORDS",
                                result_records="RESULT_RECORDS")


DEFAULT_RACE_MAPPING = {"African American": "B", "Anglo": "W", "Asian": "A",
                        "Native American": "I", "Hispanic": "W", "Other": "U", "Unknown": "U"}


@dataclass(frozen=True)
class SanitySettings:
    min_rows: int = 1
    max_change_pct: float = 25.0


@dataclass(frozen=True)
class MatchingSettings:
    match_window_days: int = 3
    near_miss_days: int = 30      # the follow-up hints look this far outside the window
    clear_grace_days: int = 2     # days after a return before a still-active entry is listed


@dataclass(frozen=True)
class ReceiveSettings:
    poll_seconds: float = 30.0
    settle_seconds: float = 10.0
    max_wait_hours: float = 6.0
    max_answer_mib: int = 1024     # a larger results or counts file is refused before fetching


# The names reports.deliver_to may list: each is a target class in exchange/delivery.py (its
# `name`), with its own settings section or folder. A new target adds its name here.
DELIVERY_TARGETS = ("share", "sharepoint")


@dataclass(frozen=True)
class ReportSettings:
    max_rows_per_sheet: int = 1_048_576
    share_file_mode: str = "0640"
    marking: str = "CONFIDENTIAL"   # heads every printed page
    deliver_to: list = listed("share")   # share, sharepoint, or both
    ori_directory: Path | None = path_setting("", kind="optional_path")   # §10.4: ORI,AGENCY,PHONE


@dataclass(frozen=True)
class SharePointSettings:
    """Where in SharePoint the reports go, and how the app signs in (Microsoft Graph)."""

    tenant_id: str = ""
    client_id: str = ""
    login_host: str = "login.microsoftonline.com"
    graph_host: str = "graph.microsoft.com"
    certificate_file: Path | None = path_setting("", kind="optional_path")
    private_key_file: Path | None = path_setting("", kind="optional_path")
    private_key_passphrase_env: str = ""
    client_secret_env: str = ""
    ca_file: Path | None = path_setting("", kind="optional_path")
    site_host: str = ""
    site_path: str = ""
    library: str = "Documents"
    folder: str = "DPS Reconciliation/{fiscal_year}/{quarter}"
    timeout_seconds: float = 60.0
    max_tries: int = 5
    fragment_kib: int = 3200       # a multiple of 320 (Graph's fragment unit)


@dataclass(frozen=True)
class ArchiveSettings:
    """Encryption at rest of everything archived, and how long the archive is kept."""

    encrypt: bool = False
    key_id: str = ""               # the current key's id, e.g. 2026-12
    key_file: Path | None = path_setting("", kind="optional_path")   # a file holding the key
    key_env: str = ""              # ... or an environment variable holding it
    old_keys: list = listed()      # keys kept for reading: [{id: 2026-06, file: ...|env: ...}]
    retention_years: int = 0       # 0: kept; else --purge-archive removes older periods


@dataclass(frozen=True)
class MailSettings:
    enabled: bool = False
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    allow_plain_login: bool = False   # a login without STARTTLS (a trusted relay) only if true
    ca_file: Path | None = path_setting("", kind="optional_path")
    username_env: str = ""
    password_env: str = ""
    sender: str = "dps-exchange@localhost"
    recipients: list = listed()
    attachments: bool = False
    allowed_domains: list = listed()
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class HealthSettings:
    url: str = ""
    timeout_seconds: float = 5.0


@dataclass(frozen=True)
class LogSettings:
    retention_days: int = 90


SECTIONS: dict[str, type] = {
    "run": RunSettings, "database": DatabaseSettings, "sa_98": Sa98Settings,
    "sftp": SftpSettings, "folders": FolderSettings, "dps_file": DpsFileSettings,
    "sanity": SanitySettings, "matching": MatchingSettings, "receive": ReceiveSettings,
    "reports": ReportSettings, "sharepoint": SharePointSettings, "archive": ArchiveSettings,
    "mail": MailSettings, "health": HealthSettings,
    "logs": LogSettings,
}
OPEN_SECTIONS = ("race_mapping",)   # free keys (DFPS label -> code), values still checked


@dataclass(frozen=True)
class Config:
    """The whole config file, section by section, plus where it came from."""

    path: Path
    run: RunSettings
    database: DatabaseSettings
    sa_98: Sa98Settings
    sftp: SftpSettings
    folders: FolderSettings
    dps_file: DpsFileSettings
    race_mapping: dict[str, str]
    sanity: SanitySettings
    matching: MatchingSettings
    receive: ReceiveSettings
    reports: ReportSettings
    sharepoint: SharePointSettings
    archive: ArchiveSettings
    mail: MailSettings
    health: HealthSettings
    logs: LogSettings

    @property
    def folder(self) -> Path:
        return self.path.parent

    def resolve(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return (self.folder / os.path.expanduser(value)).resolve()
