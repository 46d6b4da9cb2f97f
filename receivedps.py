#!/usr/bin/env python3
"""Step 2 of the DFPS -> DPS exchange: fetch DPS's answer, check it, write the reports.

    .venv/bin/python receivedps.py                  # wait for the answer to our latest upload
    .venv/bin/python receivedps.py --no-wait        # look once; exit 3 when it is not there yet
    .venv/bin/python receivedps.py --period FY2025Q2 --force   # regenerate from the archive

The steps, in the order `run_receive` takes them: choose the exchange -> obtain DPS's answer
(wait and fetch, or from the archive, or resume) -> check it -> read the sources -> reconcile
-> write the reports -> archive the answer -> deliver -> mail -> clean up the server ->
record the run. The rules (docs/data-contract.md §4-§7) live in exchange/answer.py,
exchange/reconcile.py and exchange/reports.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import util
except ModuleNotFoundError as missing:   # started outside the project's .venv: exit 2
    import sys
    print(f"receivedps.py: error: Python module {missing.name!r} is missing; set up "
          f"the project's environment with 'bash demo/setup_venv.sh' and run "
          f"'.venv/bin/python receivedps.py' or 'run_receive.sh'", file=sys.stderr)
    raise SystemExit(2) from None

log = logging.getLogger("receivedps")

STEP = "receive"


@dataclass(frozen=True)
class ReceiveOptions:
    """What this run was asked to do, checked before the run starts."""

    period_label: str | None
    today: dt.date
    no_wait: bool
    force: bool
    dry_run: bool


@dataclass(frozen=True)
class Exchange:
    """The upload this run answers, and what earlier receives did with it."""

    upload: dict[str, Any]             # the send's run record
    period: util.Period
    reported: dict[str, Any] | None    # the last receive that reported it, if any
    prior: dict[str, Any] | None       # an unfinished receive that archived its answer
    place: util.AnswerPlace            # where the answer is on the server


@dataclass(frozen=True)
class Answer:
    """DPS's two files on this machine, and the look that found them on the server (None when
    they came from the archive and are no longer there)."""

    results: Path
    counts: Path
    look: util.Look | None


@dataclass(frozen=True)
class CheckedAnswer:
    results: util.ResultsFile
    send_list: util.SendList           # who was sent (PID -> county) and who excluded
    counts: dict[str, int]             # DPS's control totals
    counts_lines: int
    sha256: dict[str, str]             # file name -> SHA-256


@dataclass(frozen=True)
class Sources:
    episodes: Any                      # sa_98 rows of the matching range, checked
    fetched: Any                       # every fetched sa_98 row, checked (for §8's aids)
    problems: list[util.Problem]       # of the matching range's rows
    regions: util.Regions
    name: str                          # the sa_98 source's name on Exceptions
    rows: int                          # rows fetched
    checksum: str


# ---------------------------------------------------------------------------
# The run, step by step
# ---------------------------------------------------------------------------


def run_receive(config: util.Config, record: util.RunRecord, options: ReceiveOptions) -> int:
    """The receive step, in the order it happens."""
    exchange = choose_exchange(config, record, options)                  # run records
    archive = util.open_archive(config)              # keys proved before anything is fetched
    answer = obtain_answer(config, record, exchange, options, archive)   # SFTP or archive
    checked = check_answer(config, record, exchange, answer, options, archive)
    sources = read_sources(config, record, exchange.period, options.today)   # database
    if already_reported(config, record, exchange, checked, sources, options):  # same inputs
        return finish_nothing_new(config, record, exchange, archive)
    recon = reconcile(config, record, exchange, checked, sources, options)
    write_reports(config, record, exchange, checked, sources, recon, options)   # outbox
    if options.dry_run:
        return finish_dry_run(record)
    archive_answer(config, record, exchange, answer, archive)            # archive
    deliver_reports(config, record, archive)                             # share, SharePoint
    mail_summary(config, record, exchange, recon)                        # SMTP
    clean_up_server(config, record, answer)                              # SFTP
    return record_the_run(config, record)


def choose_exchange(config: util.Config, record: util.RunRecord,
                    options: ReceiveOptions) -> Exchange:
    """The latest upload (or the --period named), and what earlier receives did with it."""
    state_dir = config.folders.state
    upload, reported = util.choose_upload(state_dir, options.period_label)
    period = util.parse_period(upload["period"])
    prior = None if reported else util.interrupted_receive(state_dir, upload["run_id"],
                                                           record.run_id)
    names = util.remote_names(config.dps_file, period, options.today)
    record.update(period=period.label, run_date=options.today.isoformat(),
                  send_run_id=upload["run_id"], dry_run=options.dry_run, force=options.force)
    record.save()
    log.info("receive %s: answer to upload %s (%d rows)", period.label, upload["run_id"],
             upload["rows_sent"])
    return Exchange(upload, period, reported, prior,
                    util.AnswerPlace(config.sftp, config.dps_file, names))


def obtain_answer(config: util.Config, record: util.RunRecord, exchange: Exchange,
                  options: ReceiveOptions, archive: util.Archive) -> Answer:
    """DPS's files: from the archive when answered before or when an earlier run archived
    them and stopped; else wait for them on the server and fetch them."""
    if exchange.reported is not None:
        log.info("upload %s was answered before (run %s); using the archived DPS files",
                 exchange.upload["run_id"], exchange.reported["run_id"])
        results, counts = util.archived_answer(exchange.reported, archive,
                                               staging_folder(config, record))
        return Answer(results, counts, None)
    if exchange.prior is not None:
        log.info("run %s stopped after archiving DPS's answer; going on from its archived "
                 "files", exchange.prior["run_id"])
        record.update(resumes_run=exchange.prior["run_id"])
        results, counts = util.archived_answer(exchange.prior, archive,
                                               staging_folder(config, record))
        look = None if options.dry_run else \
            util.answer_still_on_server(exchange.place, exchange.upload)
        return Answer(results, counts, look)
    with record.step("wait"):
        look = util.wait_for_answer(exchange.place, config.receive, exchange.upload,
                                    options.no_wait)
    with record.step("fetch"):
        local = util.fetch_answer(exchange.place, look, staging_folder(config, record))
    results_name, counts_name = exchange.place.names
    return Answer(local[results_name], local[counts_name], look)


def check_answer(config: util.Config, record: util.RunRecord, exchange: Exchange,
                 answer: Answer, options: ReceiveOptions, archive: util.Archive
                 ) -> CheckedAnswer:
    """Parse both files and check the control totals; a refused answer is kept as evidence
    (when it came from the server) and nothing is published."""
    results_name, counts_name = exchange.place.names
    with record.step("checks"):
        send_list = util.read_send_list(exchange.upload, archive)
        results_bytes, counts_bytes = answer.results.read_bytes(), answer.counts.read_bytes()
        try:
            results = util.parse_results(results_bytes, results_name, config.dps_file,
                                         options.today, set(send_list.county))
            counts = util.parse_counts(counts_bytes, counts_name, config.dps_file)
            util.check_control_totals(counts, exchange.upload["rows_sent"], results,
                                      counts_name, results_name, config.dps_file.counts_keys)
        except util.InputError:
            if answer.look is not None and not options.dry_run:
                kept = util.keep_refused_answer(archive, archive_folder(config, exchange.period),
                                                record.run_id, [answer.results, answer.counts])
                record.update(refused_answer=[f.path for f in kept],
                              archive_checksums=util.archive_checksums(kept))
            raise
    log_results_summary(results_name, results)
    return CheckedAnswer(results, send_list, counts,
                         len([x for x in counts_bytes.splitlines() if x.strip()]),
                         {results_name: util.sha256_bytes(results_bytes),
                          counts_name: util.sha256_bytes(counts_bytes)})


def read_sources(config: util.Config, record: util.RunRecord, period: util.Period,
                 today: dt.date) -> Sources:
    """IMPACT's runaway episodes (sa_98, checked) and the county -> region lookup. Matching
    and Exceptions use the rows of the matching range; the follow-up aids all fetched rows."""
    with record.step("sources"):
        sa98, name, county_region = util.read_sources(config, period, today)
        start, end = util.matching_range(period, config.matching.match_window_days)
        in_range = sa98[util.overlaps_range(sa98, start, end)]
        episodes, problems = util.check_episodes(in_range, name, today)
        fetched, _ = util.check_episodes(sa98, name)     # its faults are listed above
        regions = util.build_regions(county_region)
    return Sources(episodes, fetched, problems, regions, name, len(sa98),
                   util.frame_checksum(sa98.drop(columns="LINE")))


def already_reported(config: util.Config, record: util.RunRecord, exchange: Exchange,
                     checked: CheckedAnswer, sources: Sources, options: ReceiveOptions) -> bool:
    """Whether the period was already reported from these same inputs (then nothing is
    published again, unless --force); records the inputs' checksums. The run date is not part
    of the inputs."""
    inputs = {**checked.sha256, sources.name: sources.checksum}
    record.update(inputs=inputs, report_settings=report_settings(config),
                  results_lines=checked.results.data_lines, episodes=sources.rows)
    reported = exchange.reported
    same = reported is not None and reported.get("inputs") == inputs \
        and reported.get("report_settings") == report_settings(config)
    return same and not options.force and not options.dry_run


def finish_nothing_new(config: util.Config, record: util.RunRecord, exchange: Exchange,
                       archive: util.Archive) -> int:
    """Deliver what an earlier run left queued and send a mail it could not send."""
    reported = exchange.reported or {}
    log.info("nothing new: %s was already reported from the same inputs (run %s, run date "
             "%s); use --force to rebuild the reports as of today", exchange.period.label,
             reported.get("run_id"), reported.get("run_date"))
    record.update(outcome=util.NOTHING_NEW)
    if util.queued_reports(config.folders.outbox):
        delivery = util.deliver_reports(config, archive, archive_root(config), record.run_id)
        record_delivery(config, record, delivery)
        delivery.check()
    send_pending_mail(config, reported)
    return record.finish(util.EXIT_OK)


def reconcile(config: util.Config, record: util.RunRecord, exchange: Exchange,
              checked: CheckedAnswer, sources: Sources, options: ReceiveOptions
              ) -> util.Reconciliation:
    """Match DPS's records with IMPACT's episodes and build the report rows."""
    matching = config.matching
    rules = util.Rules(matching.match_window_days, matching.near_miss_days,
                       matching.clear_grace_days)
    with record.step("reconcile"):
        recon = util.reconcile(checked.results, sources.episodes, sources.fetched,
                               checked.send_list, sources.regions, exchange.period,
                               options.today, rules)
    recon.flow["episodes_fetched"] = sources.rows
    impact, dps = len(recon.impact_not_in_dps), len(recon.dps_not_in_impact)
    events, returned = len(recon.period_records), len(recon.returned_active)
    problems = len(all_problems(checked, sources))
    record.update(impact_not_in_dps=impact, dps_not_in_impact=dps, dps_events=events,
                  returned_still_active=returned, exceptions=problems,
                  summary=f"{impact} IMPACT not in DPS, {dps} DPS not in IMPACT, {events} DPS "
                          f"events, {returned} returned still active")
    log.info("IMPACT not in DPS: %d; DPS not in IMPACT: %d; DPS events in period: %d; "
             "returned, still active: %d; exceptions: %d", impact, dps, events, returned,
             problems)
    return recon


def write_reports(config: util.Config, record: util.RunRecord, exchange: Exchange,
                  checked: CheckedAnswer, sources: Sources, recon: util.Reconciliation,
                  options: ReceiveOptions) -> None:
    """The four workbooks, into the outbox's queue (or its dry-run folder); the period's
    counts into the trend history (not for a dry run). A run going on from one that wrote its
    reports and stopped delivers those (so a target that has them does not get them again)."""
    if queued_reports_of(exchange.prior) and not options.dry_run:
        log.info("delivering the reports run %s wrote", exchange.prior["run_id"])
        record.update(reports=exchange.prior["reports"])
        return
    history = update_trend(config, exchange.period, recon, publish=not options.dry_run)
    context = readme_context(config, record, exchange, checked, sources, recon, options)
    folder = config.folders.outbox / ("dry-run" if options.dry_run else "reports") / \
        exchange.period.file_label
    with record.step("reports"):
        sheets = util.build_report_sheets(recon, util.trend_grid(history, exchange.period.label),
                                          context, all_problems(checked, sources))
        written = []
        for key, name in util.report_file_names(exchange.period).items():
            util.write_workbook(folder / name, sheets[key], config.reports.max_rows_per_sheet,
                                marking=config.reports.marking)
            written.append(str(folder / name))
            log.info("wrote %s", folder / name)
    record.update(reports=written)


def finish_dry_run(record: util.RunRecord) -> int:
    log.info("dry run: reports in %s; remote files left, nothing delivered or mailed",
             Path(record.manifest["reports"][0]).parent)
    return record.finish(util.EXIT_OK, util.DRY_RUN)


def archive_answer(config: util.Config, record: util.RunRecord, exchange: Exchange,
                   answer: Answer, archive: util.Archive) -> None:
    """Keep DPS's files in the archive (once: a rerun refers to the first copies)."""
    earlier = exchange.reported or exchange.prior
    if earlier is not None:
        record.update(archived=earlier["archived"])
        return
    with record.step("archive"):
        stored = archive.store_all([answer.results, answer.counts],
                                   archive_folder(config, exchange.period), record.run_id)
        record.update(archived=[f.path for f in stored],
                      archive_checksums=util.archive_checksums(stored))


def deliver_reports(config: util.Config, record: util.RunRecord,
                    archive: util.Archive) -> None:
    """To every target (the share, SharePoint); one that fails ends the run with one line
    naming it, after the others got the reports. The next run delivers only what is missing
    and then sends the summary mail."""
    with record.step("deliver"):
        delivery = util.deliver_reports(config, archive, archive_root(config), record.run_id)
        record_delivery(config, record, delivery)
        delivery.check()


def record_delivery(config: util.Config, record: util.RunRecord,
                    delivery: util.Delivery) -> None:
    places = {"share": str(config.folders.share),
              "sharepoint": f"SharePoint {config.sharepoint.site_host}"
                            f"{config.sharepoint.site_path} ({config.sharepoint.library})"}
    checksums = {**record.manifest.get("archive_checksums", {}),
                 **util.archive_checksums(delivery.archived)}
    record.update(delivered=delivery.every_location(), delivered_to=delivery.locations,
                  delivery_proofs=delivery.proofs, delivery_failures=delivery.failures,
                  archived_reports=[f.path for f in delivery.archived],
                  archive_checksums=checksums,
                  where="; ".join(places[target] for target in config.reports.deliver_to))


def mail_summary(config: util.Config, record: util.RunRecord, exchange: Exchange,
                 recon: util.Reconciliation) -> None:
    """The summary mail. A mail failure keeps the published reports: the mail is kept in the
    run record and the next run sends it."""
    if util.step_done(exchange.prior, "mail"):
        # The one gap no protocol closes: killed after the SMTP server took the mail but before
        # that was recorded. Then the mail goes twice; once recorded, never again.
        log.info("the summary mail was sent by run %s; not sent again", exchange.prior["run_id"])
        return
    with record.step("mail"):
        subject, text, html_text = util.success_mail(recon, mail_facts(config, record,
                                                                       exchange))
        attachments = [config.folders.share / name
                       for name in util.report_file_names(exchange.period).values()]
        try:
            record.update(mailed=util.send_mail(config.mail, subject, text, html_text,
                                                attachments))
        except util.MailError as exc:
            record.update(mailed=False, mail_error=str(exc),
                          pending_mail={"subject": subject, "text": text, "html": html_text})


def clean_up_server(config: util.Config, record: util.RunRecord, answer: Answer) -> None:
    """Move, delete or keep DPS's files on the server: only now that the reports are out."""
    if answer.look is not None:
        with record.step("remote_cleanup"):
            util.clean_up_remote(config.sftp, answer.look, record.run_id)
    shutil.rmtree(staging_folder(config, record), ignore_errors=True)


def record_the_run(config: util.Config, record: util.RunRecord) -> int:
    if record.manifest.get("mail_error"):
        code = record.finish(util.EXIT_FAILED, util.REPORTED)
        log.error("reports delivered, but the summary mail was not sent: %s; rerun to send it",
                  record.manifest["mail_error"])
        return code
    return record.finish(util.EXIT_OK, util.REPORTED)


# ---------------------------------------------------------------------------
# What the steps use
# ---------------------------------------------------------------------------


def staging_folder(config: util.Config, record: util.RunRecord) -> Path:
    return config.folders.staging / record.run_id


def archive_root(config: util.Config) -> Path:
    return config.folders.archive / STEP


def archive_folder(config: util.Config, period: util.Period) -> Path:
    return archive_root(config) / period.file_label


def queued_reports_of(prior: dict[str, Any] | None) -> bool:
    """Whether an interrupted run wrote reports that all still wait in the queue."""
    written = (prior or {}).get("reports") or []
    return util.step_done(prior, "reports") and all(Path(p).is_file() for p in written) \
        and bool(written)


def report_settings(config: util.Config) -> dict[str, Any]:
    """The settings that change the reports' content; part of the "same inputs" key (§8)."""
    return {"near_miss_days": config.matching.near_miss_days,
            "clear_grace_days": config.matching.clear_grace_days,
            "marking": config.reports.marking}


def trend_path(config: util.Config) -> Path:
    return config.folders.state / "trend.csv"


def update_trend(config: util.Config, period: util.Period, recon: util.Reconciliation,
                 publish: bool) -> Any:
    """The trend history, with this period's counts recorded (replacing a republished
    period's) when the reports are for publishing."""
    history = util.load_trend(trend_path(config))
    if publish:
        history = util.record_period(history, period.label, util.period_key(period.label),
                                     recon.trend_rows)
        util.save_trend(history, trend_path(config), util.atomic_write_bytes)
    return history


def readme_context(config: util.Config, record: util.RunRecord, exchange: Exchange,
                   checked: CheckedAnswer, sources: Sources, recon: util.Reconciliation,
                   options: ReceiveOptions) -> util.ReadmeContext:
    """What the Read me sheets say about this run: its inputs, settings and counts."""
    inputs = record.manifest["inputs"]
    rows = dict(zip(inputs, [checked.results.data_lines, checked.counts_lines, sources.rows],
                    strict=True))
    keys = config.dps_file.counts_keys
    ours = {"records_received": exchange.upload["rows_sent"],
            "result_records": checked.results.data_lines,
            "persons_with_records": checked.results.distinct_pids}
    control = [(keys[name], checked.counts[name], ours[name]) for name in ours]
    matching = config.matching
    return util.ReadmeContext(
        exchange.period, record.run_id, exchange.upload["run_id"], options.today,
        util.local_now(config.run.time_zone), matching.match_window_days,
        matching.near_miss_days, matching.clear_grace_days, inputs, rows,
        checked.results.extra_columns, len(all_problems(checked, sources)), recon.flow,
        control)


def mail_facts(config: util.Config, record: util.RunRecord, exchange: Exchange
               ) -> util.MailFacts:
    """Where the files are and the previous recorded period, for the summary mail."""
    history = util.load_trend(trend_path(config))
    label = exchange.period.label
    previous = util.previous_period(history, label)
    locations: dict[str, str] = {}
    for files in record.manifest.get("delivered_to", {}).values():
        for name, where in files.items():
            locations[name] = f"{locations[name]} ; {where}" if name in locations else where
    return util.MailFacts(exchange.period, locations, record.manifest["exceptions"],
                          record.run_id, exchange.upload["run_id"], previous,
                          util.previous_counts(history, label),
                          util.audit_head(config.folders.logs))


def all_problems(checked: CheckedAnswer, sources: Sources) -> list[util.Problem]:
    return checked.results.problems + sources.problems


def log_results_summary(name: str, results: util.ResultsFile) -> None:
    left_out = sum(p.kind == util.ROW_LEFT_OUT for p in results.problems)
    warnings = sum(p.kind == util.WARNING for p in results.problems)
    log.info("%s: %d data lines, %d usable records, %d rows left out, %d warnings", name,
             results.data_lines, len(results.records), left_out, warnings)


def send_pending_mail(config: util.Config, reported: dict[str, Any]) -> None:
    """Send the summary mail a reporting run could not send, and record it in that run."""
    pending = reported.get("pending_mail")
    if not pending:
        return
    util.send_mail(config.mail, pending["subject"], pending["text"], pending["html"])
    reported.update(mailed=True, pending_mail=None, mail_error=None)
    util.write_manifest(config.folders.state, reported)
    log.info("sent the summary mail that run %s could not send", reported["run_id"])


def what_was_kept(config: util.Config, manifest: dict[str, Any]) -> str:
    """For the failure alert: where DPS's files and undelivered reports are."""
    return (f"DPS's files stay in {config.sftp.answer_folder} on the server and in "
            f"{config.folders.archive / STEP} once archived; nothing was published from inputs "
            f"that failed their checks; reports not yet delivered wait in "
            f"{config.folders.outbox / 'reports'}")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = util.OneLineParser(
        prog="receivedps.py",
        description="Wait for DPS's answer to our latest upload, fetch and check it, write "
                    "the four reports (IMPACT_not_in_DPS, DPS_not_in_IMPACT, "
                    "DPS_total_runaway_events, Returned_still_active_in_NCIC), deliver them to "
                    "the share and SharePoint, and mail a summary.",
        epilog="Exit codes: 0 ok (reported, or nothing new); 1 failed; 2 usage or config error; "
               "3 the answer is not there yet (--no-wait) or the maximum wait passed; "
               "75 another receive run holds the lock.")
    parser.add_argument("--period", metavar="FY2025Q3",
                        help="the period of the latest upload (default), or an earlier period "
                             "that was answered before, to regenerate its reports from the "
                             "archive; FY2025Q3 or FY2025_Q3, any case")
    parser.add_argument("--no-wait", action="store_true",
                        help="look for the answer once (two looks settle_seconds apart); exit 3 "
                             "when it is not there yet")
    parser.add_argument("--force", action="store_true",
                        help="process and publish even when the same inputs were processed "
                             "before (the reports are rebuilt as of the run date)")
    parser.add_argument("--dry-run", action="store_true",
                        help="fetch and write the reports to the outbox only: leave the remote "
                             "files, deliver nothing, mail nothing")
    util.add_common_options(parser)
    return parser


def receive_options(args: argparse.Namespace, config: util.Config) -> ReceiveOptions:
    """The arguments, checked: a bad --period or --as-of stops here, before any run record."""
    today = util.run_date(config.run.time_zone, args.as_of)
    label = util.period_label(args.period)
    util.choose_upload(config.folders.state, label, missing_ok=True)
    return ReceiveOptions(label, today, args.no_wait, args.force, args.dry_run)


def receive_script() -> util.Script:
    return util.Script(step=STEP, program="receivedps.py", script_file=__file__,
                       kept=what_was_kept)


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, load the config, answer --status, --verify-audit or
    --purge-archive, or run the receive steps."""
    args = build_parser().parse_args(argv)
    try:
        config = util.load_config(args.config or util.default_config_path(__file__),
                                  lenient=args.status or args.verify_audit or args.purge_archive)
        if util.wants_check(args):
            return util.check_systems(receive_script(), config, args)
        if args.status:
            return util.print_status(config.folders.state, util.period_label(args.period))
        if args.verify_audit or args.purge_archive:
            return util.maintain(config, args.verify_audit, args.purge_archive, args.as_of,
                                 args.dry_run)
        options = receive_options(args, config)
    except util.DpsError as exc:
        return util.report_error(receive_script(), exc)
    return util.run(receive_script(), config, args.verbose, run_receive, options)


if __name__ == "__main__":
    raise SystemExit(main())
