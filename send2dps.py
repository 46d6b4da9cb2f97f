#!/usr/bin/env python3
"""Step 1 of the DFPS -> DPS exchange: query IMPACT, write the DPS file, upload it.

    .venv/bin/python send2dps.py                      # the default period (see --help)
    .venv/bin/python send2dps.py --period FY2025Q3    # a chosen quarter
    .venv/bin/python send2dps.py --dry-run            # write the files, connect nowhere

The steps, in the order `run_send` takes them: refuse while an upload is unanswered (before
anything is read or written) -> query IMPACT -> wrangle -> write the DPS text file -> write
end_export.xlsx -> decide whether to upload -> upload -> archive -> record the run. The rules
themselves (docs/data-contract.md §1-§3) live in exchange/wrangle.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import util
except ModuleNotFoundError as missing:   # started outside the project's .venv: exit 2
    import sys
    print(f"send2dps.py: error: Python module {missing.name!r} is missing; set up "
          f"the project's environment with 'bash demo/setup_venv.sh' and run "
          f"'.venv/bin/python send2dps.py' or 'run_send.sh'", file=sys.stderr)
    raise SystemExit(2) from None

log = logging.getLogger("send2dps")

STEP = "send"


@dataclass(frozen=True)
class SendOptions:
    """What this run was asked to do, checked before the run starts."""

    period: util.Period
    today: dt.date
    dry_run: bool
    force: bool


@dataclass(frozen=True)
class SentFiles:
    """The files this run wrote to the outbox, and the text file's checksum."""

    text: Path
    export: Path
    index: Path                # sent_index.csv: PID -> county of the rows sent
    excluded: Path             # excluded_index.csv: PID -> reasons of the rows not sent
    sha256: str

    def all(self) -> list[Path]:
        return [self.text, self.export, self.index, self.excluded]

    @staticmethod
    def roles() -> list[str]:
        """The role of each file of all(), as run records name them (records.SEND_ROLES)."""
        return ["dps_text", "export", "sent_index", "excluded_index"]


# ---------------------------------------------------------------------------
# The run, step by step
# ---------------------------------------------------------------------------


def run_send(config: util.Config, record: util.RunRecord, options: SendOptions) -> int:
    """The send step, in the order it happens."""
    start_record(record, options)
    archive = util.open_archive(config)              # keys proved before anything is sent
    archive_a_killed_upload(config, archive)         # its files are still in the outbox
    in_flight = None if options.force or options.dry_run else upload_in_flight(config)
    if in_flight is not None and in_flight.exit_code == util.EXIT_OK:
        refuse_while_in_flight(record, in_flight)    # before the query: nothing written
    children = query_impact(config, record, options.period)              # database
    wrangled = wrangle_children(config, record, children, options.today)
    files = write_dps_text_file(config, record, wrangled)                # outbox
    write_export_workbook(config, record, wrangled, files, options)      # outbox
    not_uploading = decide_whether_to_upload(config, record, files, options, archive,
                                             in_flight)
    if not_uploading:                                    # dry run, or the same file as before
        return record.finish(util.EXIT_OK, not_uploading)
    upload_to_dps(config, record, files)                                 # SFTP
    archive_sent_files(config, record, files, options.period, archive)   # archive
    return record.finish(util.EXIT_OK)


def start_record(record: util.RunRecord, options: SendOptions) -> None:
    period = options.period
    record.update(period=period.label, run_date=options.today.isoformat(),
                  dry_run=options.dry_run, force=options.force)
    record.save()
    log.info("send %s (%s to %s), run date %s", period.label, period.start, period.end,
             options.today)


def query_impact(config: util.Config, record: util.RunRecord, period: util.Period) -> Any:
    """The children in conservatorship during the period: one row per removal."""
    with record.step("query"):
        engine = util.open_configured_database(config.database)
        try:
            return util.run_query(engine, config.database.sql_folder, "send_children",
                                  {"period_start": period.start,
                                   "period_end_next": period.end + dt.timedelta(days=1)},
                                  util.QUERY_COLUMNS)
        finally:
            engine.dispose()


def wrangle_children(config: util.Config, record: util.RunRecord, children: Any,
                     today: dt.date) -> util.Wrangled:
    """One row per child, cleaned for DPS; the rows that cannot be sent, with reasons."""
    with record.step("wrangle"):
        wrangled = util.wrangle(children, today, config.race_mapping,
                                config.dps_file.name_max_lengths)
    sent, excluded = len(wrangled.sent), len(wrangled.excluded)
    record.update(rows_queried=len(children), rows_sent=sent, rows_excluded=excluded,
                  names_cut=wrangled.names_cut, summary=f"{sent} sent, {excluded} excluded")
    log.info("%d removal rows -> %d children sent, %d excluded; names cut to length: %s",
             len(children), sent, excluded, wrangled.names_cut)
    return wrangled


def write_dps_text_file(config: util.Config, record: util.RunRecord,
                        wrangled: util.Wrangled) -> SentFiles:
    """End_txt_file.txt for DPS; for the receive step, who was sent (PID -> county) and who
    was not (PID -> reasons)."""
    record.update(writes_outbox=True)   # saved with the step: the outbox is this run's now
    with record.step("text_file"):
        data = util.render_dps_text(wrangled.sent, config.dps_file)
        files = outbox_files(config, util.sha256_bytes(data))
        util.atomic_write_bytes(files.text, data)
        util.atomic_write_bytes(files.index, util.sent_index_csv(wrangled.sent))
        util.atomic_write_bytes(files.excluded, util.excluded_index_csv(wrangled.excluded))
    record.update(file=str(files.text), sha256=files.sha256, bytes=len(data))
    log.info("wrote %s: %d data lines, %d bytes, sha256 %s", files.text, len(wrangled.sent),
             len(data), files.sha256)
    return files


def write_export_workbook(config: util.Config, record: util.RunRecord, wrangled: util.Wrangled,
                          files: SentFiles, options: SendOptions) -> None:
    """end_export.xlsx: the Sent and Excluded rows and an About sheet, for reference."""
    period = options.period
    about = [["period", period.label], ["period start", period.start],
             ["period end", period.end], ["run id", record.run_id], ["run date", options.today],
             ["rows sent", len(wrangled.sent)], ["rows excluded", len(wrangled.excluded)],
             ["SHA-256 of " + files.text.name, files.sha256],
             ["generated at", util.local_now(config.run.time_zone)]]
    sent, excluded = util.export_view(wrangled.sent), util.export_view(wrangled.excluded)
    with record.step("workbook"):
        util.write_workbook(files.export, [
            util.Sheet("Sent", list(sent.columns), util.frame_rows(sent)),
            util.Sheet("Excluded", list(excluded.columns), util.frame_rows(excluded)),
            util.Sheet("About", ["ITEM", "VALUE"], about),
        ], config.reports.max_rows_per_sheet)
    log.info("wrote %s", files.export)


def decide_whether_to_upload(config: util.Config, record: util.RunRecord, files: SentFiles,
                             options: SendOptions, archive: util.Archive,
                             in_flight: util.SendRecord | None) -> str:
    """'' to upload; else the outcome of not uploading (dry run, identical file). Refuses a
    file outside the sanity limits, and another file than the upload in flight whose send did
    not finish (a second exchange after a finished one was refused before the query).
    `where` names only a place the files stay: a dry run's outbox, the identical upload's
    file on the server."""
    state_dir = config.folders.state
    previous = util.last_upload_for_period(state_dir, options.period.label)
    rows = record.manifest["rows_sent"]
    if options.dry_run:
        record.update(where=str(files.text))     # they stay, even when the limits fail
    if not options.force:
        util.check_sanity(rows, previous.rows_sent if previous else None,
                          config.sanity.min_rows, config.sanity.max_change_pct, files.text.name)
    if options.dry_run:
        log.info("dry run: files written to %s; nothing uploaded, nothing archived",
                 files.text.parent)
        return util.DRY_RUN
    if not options.force and previous and previous.sha256 == files.sha256:
        record.update(same_as_run=previous.run_id, where=previous.where)
        log.info("identical to upload %s for %s; not uploaded again (use --force to resend)",
                 previous.run_id, options.period.label)
        complete_missing_archive(config, previous, files, options.period, archive)
        return util.SKIPPED_IDENTICAL
    if in_flight is not None:
        refuse_while_in_flight(record, in_flight)
    # --force uploads: no "identical file already there" shortcut (issue 20)
    interrupted = None if options.force else \
        interrupted_upload(state_dir, options.period, files.sha256, record.run_id)
    if interrupted:
        record.update(resumes_run=interrupted.run_id)
    return ""


def upload_to_dps(config: util.Config, record: util.RunRecord, files: SentFiles) -> None:
    """Upload the text file. After an interrupted upload, the file on the server is compared
    with ours first (size, then SHA-256 of its content): the same file is not sent again."""
    sftp = config.sftp
    with record.step("upload"), util.connect_sftp(sftp) as session:
        remote = None
        if record.manifest.get("resumes_run"):
            remote = same_file_on_server(session, sftp.upload_folder, files)
        transferred = remote is None
        if remote is None:
            remote = session.upload(files.text, sftp.upload_folder, files.text.name)
        record.update(outcome=util.UPLOADED, remote_path=remote.path, remote_size=remote.size,
                      remote_mtime=remote.mtime, upload_transferred=transferred,
                      uploaded_at=dt.datetime.now(dt.UTC).isoformat(), where=remote.path)
    log.info("uploaded %s (%d bytes) to %s; server mtime %d", files.text.name, remote.size,
             remote.path, remote.mtime)


def archive_sent_files(config: util.Config, record: util.RunRecord, files: SentFiles,
                       period: util.Period, archive: util.Archive) -> None:
    with record.step("archive"):
        stored = archive_copies(config, period, record.run_id, files, archive)
        record.update(**archived_fields(files, stored))
    log.info("archived to %s", Path(stored[0].path).parent)


# ---------------------------------------------------------------------------
# What the steps use: earlier runs, the archive, the server
# ---------------------------------------------------------------------------


def outbox_files(config: util.Config, sha256: str) -> SentFiles:
    """The files a send writes to its outbox folder (the text file's checksum given)."""
    outbox = util.Layout.from_config(config).outbox_for(STEP)
    return SentFiles(outbox / config.dps_file.send_name, outbox / config.dps_file.export_name,
                     outbox / "sent_index.csv", outbox / "excluded_index.csv", sha256)


def archive_a_killed_upload(config: util.Config, archive: util.Archive) -> None:
    """A send killed between its upload and its archive ("uploaded, archive pending",
    exchange/recovery.py) left the uploaded files in the outbox: archive them under that
    upload's run id before this run writes anything, whatever IMPACT holds now. When the outbox
    no longer holds the uploaded file, say so once in that upload's record."""
    for upload in util.sends(config.folders.state):
        if not util.archive_pending(upload) or upload.archive_lost:
            continue
        files = outbox_files(config, upload.sha256)
        if files.text.is_file() and util.sha256_bytes(files.text.read_bytes()) == files.sha256:
            complete_missing_archive(config, upload, files, util.parse_period(upload.period),
                                     archive)
            continue
        util.update_manifest(config.folders.state, STEP, upload.run_id,
                             archive_lost="the outbox no longer held the uploaded file")
        log.error("upload %s was never archived and the outbox no longer holds its file; its "
                  "answer cannot be reconciled: send the period again", upload.run_id)


def archived_fields(files: SentFiles, stored: list[util.ArchivedFile]) -> dict[str, Any]:
    """What a send record keeps of its archived files: every path, each by its role, and
    their checksums."""
    return {"archived": [f.path for f in stored],
            "archived_roles": dict(zip(files.roles(), [f.path for f in stored], strict=True)),
            "archive_checksums": util.archive_checksums(stored)}


def archive_copies(config: util.Config, period: util.Period, run_id: str, files: SentFiles,
                   archive: util.Archive) -> list[util.ArchivedFile]:
    folder = util.Layout.from_config(config).archive_for(STEP, period)
    return archive.store_all(files.all(), folder, run_id)


def complete_missing_archive(config: util.Config, upload: util.SendRecord, files: SentFiles,
                             period: util.Period, archive: util.Archive) -> None:
    """An upload killed before its archive step: archive the identical files under that
    upload's run id and record it in that upload's manifest."""
    if upload.archived:
        return
    stored = archive_copies(config, period, upload.run_id, files, archive)
    steps = {**upload.steps, "archive": {"status": "done", "completed_by_later_run": True}}
    util.update_manifest(config.folders.state, STEP, upload.run_id, steps=steps,
                         **archived_fields(files, stored))
    log.info("archived the files of upload %s, which was interrupted before its archive step",
             upload.run_id)


def upload_in_flight(config: util.Config) -> util.SendRecord | None:
    """One exchange at a time: the latest upload when it is unanswered and younger than the
    receive's maximum wait (it blocks a new one; --force overrides)."""
    latest = util.latest_upload(config.folders.state)
    if latest is None or latest.run_id in util.answered_send_runs(config.folders.state):
        return None
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(latest.uploaded_at)
    return latest if age <= dt.timedelta(hours=config.receive.max_wait_hours) else None


def refuse_while_in_flight(record: util.RunRecord, in_flight: util.SendRecord) -> None:
    """Refuse this send: an upload is in flight. When that upload's send finished, this is
    asked before the query, so a refused send reads nothing and writes nothing (the outbox
    with a dry run's files, the last send's files stay as they are). When it did not finish
    (killed, or failed at its archive), this send is the rerun its alert asked for: it goes
    on, so that the same file is recognised as uploaded ("skipped as identical", its archive
    completed), and only another file is refused. The outcome is its own
    (exchange/recovery.py): --status does not show it as failed."""
    record.update(outcome=util.REFUSED_UNANSWERED, unanswered_upload=in_flight.run_id,
                  where="nothing written" if "query" not in record.manifest["steps"] else "")
    raise util.RunStateError(
        f"upload {in_flight.run_id} ({in_flight.period}) at {in_flight.uploaded_at} is "
        f"still unanswered; one exchange at a time (use --force to send anyway)")


def interrupted_upload(state_dir: Path, period: util.Period, checksum: str, run_id: str
                       ) -> util.SendRecord | None:
    """The latest earlier send of this period when it began uploading this same file but
    never recorded the outcome (killed, or the connection broke)."""
    runs = [m for m in util.sends(state_dir) if m.period == period.label and m.run_id != run_id]
    latest = runs[-1] if runs else None
    if latest and "upload" in latest.steps and latest.outcome != util.UPLOADED \
            and latest.sha256 == checksum:
        return latest
    return None


def same_file_on_server(session: util.SftpSession, folder: str,
                        files: SentFiles) -> util.RemoteFile | None:
    """The file on the server when it is ours to the byte (size, then SHA-256)."""
    remote = session.stat_file(util.join_remote(folder, files.text.name))
    if remote and remote.size == files.text.stat().st_size \
            and util.sha256_bytes(session.read_bytes(remote.path)) == files.sha256:
        log.info("%s on the server is identical to ours (size and SHA-256): not uploaded "
                 "again", remote.path)
        return remote
    return None


def what_was_kept(config: util.Config, manifest: dict[str, Any]) -> str:
    """For the failure alert: whether the file reached DPS, and where our copies are."""
    if manifest.get("outcome") == util.REFUSED_UNANSWERED:
        return (f"nothing was uploaded; upload {manifest.get('unanswered_upload')} is the one "
                f"DPS has yet to answer; earlier uploads stay in {config.folders.archive / STEP}")
    uploaded = "the file WAS uploaded (see the manifest)" \
        if manifest.get("outcome") == util.UPLOADED else "nothing was uploaded"
    return (f"{uploaded}; no copy of the files is kept in {config.folders.outbox / STEP} "
            f"(the rerun builds them again; --dry-run writes them to look at); "
            f"earlier uploads stay in {config.folders.archive / STEP}")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = util.OneLineParser(
        prog="send2dps.py",
        description="Query IMPACT for the children in conservatorship during a fiscal quarter, "
                    "write End_txt_file.txt and end_export.xlsx, and upload the text file to "
                    "DPS over SFTP.",
        epilog="Exit codes: 0 ok (uploaded, identical file skipped, or dry run); 1 failed; "
               "2 usage or config error; 75 another send run holds the lock.")
    parser.add_argument("--period", metavar="FY2025Q3",
                        help="fiscal quarter to send, e.g. FY2025Q3 or FY2025_Q3 (any case; "
                             "default: the quarter containing the run date minus "
                             "run.close_lag_days)")
    parser.add_argument("--dry-run", action="store_true",
                        help="write the files to the outbox but connect nowhere and upload nothing")
    parser.add_argument("--force", action="store_true",
                        help="upload even when the file is identical to the last upload, fails "
                             "the sanity limits, or an earlier upload is still unanswered")
    util.add_common_options(parser)
    return parser


def choose_period(period_text: str | None, today: dt.date, close_lag_days: int) -> util.Period:
    """The --period given, else the quarter containing (today - close_lag_days)."""
    if period_text is not None:
        period = util.parse_period(period_text)
    else:
        period = util.period_containing(today - dt.timedelta(days=close_lag_days))
    util.check_period_started(period, today)
    return period


def send_options(args: argparse.Namespace, config: util.Config) -> SendOptions:
    """The arguments, checked: a bad --period or --as-of stops here, before any run record."""
    today = util.run_date(config.run.time_zone, args.as_of)
    period = choose_period(args.period, today, config.run.close_lag_days)
    return SendOptions(period, today, args.dry_run, args.force)


def send_script() -> util.Script:
    return util.Script(step=STEP, program="send2dps.py", script_file=__file__, kept=what_was_kept)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, load the config, answer --status, --verify-audit or
    --purge-archive, or run the send steps."""
    args = build_parser().parse_args(argv)
    try:
        config = util.load_config(args.config or util.default_config_path(__file__),
                                  lenient=args.status or args.verify_audit or args.purge_archive)
        if util.wants_check(args):
            return util.check_systems(send_script(), config, args)
        if args.status:
            return util.print_status(config.folders.state, util.period_label(args.period))
        if args.verify_audit or args.purge_archive:
            return util.maintain(config, args.verify_audit, args.purge_archive, args.as_of,
                                 args.dry_run,
                                 args.expect_head)
        options = send_options(args, config)
    except util.DpsError as exc:
        return util.report_error(send_script(), exc)
    return util.run(send_script(), config, args.verbose, run_send, options)


if __name__ == "__main__":
    raise SystemExit(main())
