"""What send2dps.py and receivedps.py share: a table of contents.

The code lives in the `exchange/` package, one module per concern; this file names what the
two scripts use and where each piece lives, section by section, in the order a run uses them.
Open the module named in a section's heading to read or change that piece.
"""

# ruff: noqa: I001 - the sections follow the order a run uses them, not the alphabet

# --- Errors and exit codes: exchange/errors.py ------------------------------------------------
from exchange.errors import (
    EXIT_FAILED, EXIT_OK, ArchivePendingError, DpsError, InputError, MailError, RunStateError)

# --- Settings (dps_config.yml as typed sections): exchange/config.py --------------------------
from exchange.config import Config, default_config_path, load_config

# --- Where files live (outbox, queue, staging, archive, trend): exchange/layout.py -----------
from exchange.layout import Layout

# --- The rule parameters W, N, G and the marking, read once: exchange/rules.py ----------------
from exchange.rules import Rules

# --- Fiscal periods and the run date (docs/data-contract.md §1): exchange/periods.py ----------
from exchange.periods import (
    Period, check_period_started, local_now, parse_period, period_containing, period_label,
    run_date)

# --- Running a step (lock, logging, alerts, retention, exit codes): exchange/harness.py -------
from exchange.harness import (
    OneLineParser, Script, add_common_options, audit_head, check_systems, maintain, report_error,
    run, wants_check)

# --- Run records and the queries over earlier runs: exchange/records.py -----------------------
from exchange.records import (
    DRY_RUN, NOTHING_NEW, RECEIVE_ROLES, REFUSED_UNANSWERED, REPORTED, SKIPPED_IDENTICAL,
    UPLOADED, ReceiveRecord, RunRecord, SendRecord, answered_send_runs, choose_upload,
    interrupted_receive, last_upload_for_period, latest_upload, read_manifest, read_manifests,
    sends, step_done, update_manifest, write_manifest)

# --- --status: exchange/status.py; where an interrupted run stands: exchange/recovery.py -------
from exchange.recovery import archive_pending
from exchange.status import print_status

# --- IMPACT (SQLAlchemy, sql/*.sql): exchange/database.py -------------------------------------
from exchange.database import open_configured_database, run_query

# --- SFTP (pinned host key, .part + rename): exchange/sftp.py ---------------------------------
from exchange.sftp import RemoteFile, SftpSession, connect_sftp, join_remote

# --- Local files (atomic writes, SHA-256): exchange/files.py -----------------------------------
from exchange.files import atomic_write_bytes, sha256_bytes

# --- The archive (encrypted at rest when configured): exchange/archive.py ---------------------
from exchange.archive import Archive, ArchivedFile, open_archive
from exchange.archive import checksums as archive_checksums

# --- pandas helpers: exchange/frames.py; Excel workbooks: exchange/excel.py -------------------
from exchange.frames import frame_checksum, values_checksum
from exchange.excel import Sheet, frame_rows, write_workbook, write_workbooks

# --- Work in forked copies of the run (run.processes): exchange/forking.py --------------------
from exchange.forking import Ahead

# --- Mail: exchange/mail.py -------------------------------------------------------------------
from exchange.mail import mail_on, send_mail

# --- The file sent to DPS (§3): exchange/wrangle.py -------------------------------------------
from exchange.wrangle import (
    QUERY_COLUMNS, Wrangled, check_sanity, excluded_index_csv, export_view, render_dps_text,
    sent_index_csv, wrangle)

# --- DPS's answer on the server (wait, fetch, clean up; §4): exchange/inbox.py ----------------
from exchange.inbox import (
    AnswerPlace, Look, answer_still_on_server, archived_answer, check_local_answer_size,
    clean_up_remote, fetch_answer, keep_refused_answer, remote_names, wait_for_answer)

# --- Reading and checking DPS's answer (§4, §7): exchange/answer.py ---------------------------
from exchange.answer import (
    ROW_LEFT_OUT, WARNING, Problem, ResultsFile, check_control_totals, parse_counts, parse_results)

# --- The receive step's other sources (send list, sa_98, regions; §2): exchange/sources.py -----
from exchange.sources import read_send_list, read_sources

# --- sa_98 episodes checked, and regions (§5, §7): exchange/episodes.py ----------------------
from exchange.episodes import (
    Regions, build_regions, check_episodes, fetched_until, overlaps_range)

# --- Matching and the report rows (§5, §6, §8, §9): exchange/reconcile.py ---------------------
from exchange.reconcile import Reconciliation, SendList, WhoActs, reconcile

# --- The trend history (§8): exchange/followup.py ---------------------------------------------
from exchange.followup import (
    load_trend, on_time_shares, period_key, previous_counts, previous_period, record_period,
    save_trend, trend_grid)

# --- The reports, declared once (ReportSpec, and every column's meaning; §6, §8, §9):
# exchange/reports.py; the Read me sheet they end with: exchange/readme.py -------------------
from exchange.readme import ReadmeContext
from exchange.reports import (
    REPORTS, ReportInputs, counts_summary, every_report_sheets, report_counts, stems_text,
    trend_rows)

# --- The summary mail's text (§8, §9): exchange/summary.py ------------------------------------
from exchange.summary import AUDIT_HEAD_SLOT, MailFacts, success_mail, with_audit_head

# --- Delivery (outbox queue -> share and SharePoint): exchange/delivery.py --------------------
from exchange.delivery import Delivery, deliver_reports, queued_reports

__all__ = [   # what the scripts use, in the order of the sections above
    "EXIT_FAILED", "EXIT_OK", "ArchivePendingError", "DpsError", "InputError", "MailError",
    "RunStateError", "Config", "default_config_path", "load_config", "Layout", "Rules", "Period",
    "check_period_started", "local_now", "parse_period", "period_containing", "period_label",
    "run_date", "OneLineParser", "Script", "add_common_options", "audit_head", "check_systems",
    "wants_check", "maintain", "report_error", "run", "DRY_RUN", "NOTHING_NEW", "REPORTED",
    "REFUSED_UNANSWERED", "SKIPPED_IDENTICAL", "UPLOADED", "RECEIVE_ROLES", "ReceiveRecord",
    "SendRecord", "sends", "update_manifest", "RunRecord", "answered_send_runs", "choose_upload",
    "interrupted_receive", "last_upload_for_period", "latest_upload", "read_manifest",
    "read_manifests", "step_done", "write_manifest", "archive_pending", "print_status",
    "open_configured_database", "run_query", "RemoteFile",
    "SftpSession", "connect_sftp", "join_remote", "atomic_write_bytes", "sha256_bytes",
    "frame_checksum", "values_checksum", "Sheet", "frame_rows", "write_workbook",
    "write_workbooks", "Ahead", "mail_on", "send_mail",
    "QUERY_COLUMNS", "Wrangled", "check_sanity", "export_view", "render_dps_text", "sent_index_csv",
    "excluded_index_csv", "wrangle", "AnswerPlace", "Look", "answer_still_on_server",
    "archived_answer", "clean_up_remote", "fetch_answer", "keep_refused_answer", "remote_names",
    "wait_for_answer", "check_local_answer_size", "ROW_LEFT_OUT", "WARNING", "Problem",
    "ResultsFile", "check_control_totals", "parse_counts", "parse_results",
    "read_send_list", "read_sources", "Regions", "build_regions", "check_episodes",
    "fetched_until", "overlaps_range", "Reconciliation", "SendList", "WhoActs", "reconcile",
    "load_trend", "on_time_shares", "period_key", "previous_counts", "previous_period",
    "record_period", "save_trend", "trend_grid", "ReadmeContext", "REPORTS", "ReportInputs",
    "counts_summary", "report_counts", "every_report_sheets", "stems_text", "trend_rows",
    "AUDIT_HEAD_SLOT", "MailFacts", "success_mail", "with_audit_head",
    "Delivery", "deliver_reports", "queued_reports", "Archive", "ArchivedFile", "open_archive",
    "archive_checksums",
]
