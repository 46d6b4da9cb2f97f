#!/usr/bin/env python3
"""Step 2 of the DFPS -> DPS exchange: fetch DPS's answer, check it, write the reports.

    .venv/bin/python receivedps.py                  # wait for the answer to our latest upload
    .venv/bin/python receivedps.py --no-wait        # look once; exit 3 when it is not there yet
    .venv/bin/python receivedps.py --period FY2025Q2 --force   # regenerate from the archive

The steps, in the order `run_receive` takes them: choose the exchange -> obtain DPS's answer
(wait and fetch, or from the archive, or resume) -> check it -> read the sources -> reconcile
-> write the reports -> archive the answer -> deliver -> ready the summary mail -> clean up
the server -> record the run. The harness then writes the run's audit line and calls
`mail_after_line`, which sends the summary mail carrying that line's hash. The rules
(docs/data-contract.md §4-§7) live in exchange/answer.py, exchange/reconcile.py and
exchange/reports.py.
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
class ReceiveRun:
    """What every step of this run reads: the settings, the rules, where files go, the run
    record and what the run was asked to do."""

    config: util.Config
    record: util.RunRecord
    options: ReceiveOptions
    rules: util.Rules
    layout: util.Layout

    @classmethod
    def start(cls, config: util.Config, record: util.RunRecord,
              options: ReceiveOptions) -> ReceiveRun:
        return cls(config, record, options, util.Rules.from_config(config),
                   util.Layout.from_config(config))


@dataclass(frozen=True)
class Exchange:
    """The upload this run answers, and what earlier receives did with it."""

    upload: util.SendRecord            # the send's run record
    period: util.Period
    reported: util.ReceiveRecord | None   # the last receive that reported it, if any
    prior: util.ReceiveRecord | None      # an unfinished receive that archived its answer
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
    who: util.WhoActs                  # caseworkers and the ORI directory (§10.4)
    name: str                          # the sa_98 source's name on Exceptions
    rows: int                          # rows fetched
    checksum: str                      # of the rows fetched (the Read me's)
    raw: Any                           # the rows fetched, as read (for the same-inputs key)
    fetch_range: tuple[dt.date, dt.date]   # the range they were fetched over (§2)
    key: str                           # their values' checksum (the same-inputs key's)


# ---------------------------------------------------------------------------
# The run, step by step
# ---------------------------------------------------------------------------


def run_receive(config: util.Config, record: util.RunRecord, options: ReceiveOptions) -> int:
    """The receive step, in the order it happens."""
    run = ReceiveRun.start(config, record, options)
    exchange = choose_exchange(run)                                      # run records
    archive = util.open_archive(config)              # keys proved before anything is fetched
    answer = obtain_answer(run, exchange, archive)                       # SFTP or archive
    with util.Ahead(lambda: sources_of(run, exchange.period),          # database, in a copy
                    config.run.processes > 1) as ahead:               # ... meanwhile:
        checked = check_answer(run, exchange, answer, archive)
        sources = read_sources(run, ahead)
    if already_reported(run, exchange, checked, sources):                # same inputs
        return finish_nothing_new(run, exchange, archive)
    recon = reconcile(run, exchange, checked, sources)
    write_reports(run, exchange, checked, sources, recon)                # outbox
    if options.dry_run:
        return finish_dry_run(record)
    archive_answer(run, exchange, answer, archive)                       # archive
    deliver_reports(run, archive)                                        # share, SharePoint
    ready_summary_mail(run, exchange, recon)              # sent after the run's audit line
    clean_up_server(run, answer)                                         # SFTP
    return record.finish(util.EXIT_OK, util.REPORTED)


def choose_exchange(run: ReceiveRun) -> Exchange:
    """The latest upload (or the --period named), and what earlier receives did with it."""
    config, record, options = run.config, run.record, run.options
    state_dir = config.folders.state
    upload, reported = util.choose_upload(state_dir, options.period_label)
    if util.archive_pending(upload):
        raise util.ArchivePendingError(
            f"upload {upload.run_id} ({upload.period}) reached DPS but its files were "
            f"never archived (the send was stopped); run the send again: it archives them "
            f"first, then rerun the receive")
    period = util.parse_period(upload.period)
    prior = None if reported else util.interrupted_receive(state_dir, upload.run_id,
                                                           record.run_id)
    names = util.remote_names(config.dps_file, period, options.today)
    record.update(period=period.label, run_date=options.today.isoformat(),
                  send_run_id=upload.run_id, dry_run=options.dry_run, force=options.force)
    record.save()
    log.info("receive %s: answer to upload %s (%d rows)", period.label, upload.run_id,
             upload.rows_sent)
    return Exchange(upload, period, reported, prior,
                    util.AnswerPlace(config.sftp, config.dps_file, names))


def obtain_answer(run: ReceiveRun, exchange: Exchange, archive: util.Archive) -> Answer:
    """DPS's files: from the archive when answered before or when an earlier run archived
    them and stopped; else wait for them on the server and fetch them."""
    config, record, options = run.config, run.record, run.options
    staging = run.layout.staging_for(record.run_id)
    if exchange.reported is not None:
        log.info("upload %s was answered before (run %s); using the archived DPS files",
                 exchange.upload.run_id, exchange.reported.run_id)
        results, counts = util.archived_answer(exchange.reported, archive,
                                               staging)
        return Answer(results, counts, None)
    if exchange.prior is not None:
        log.info("run %s stopped after archiving DPS's answer; going on from its archived "
                 "files", exchange.prior.run_id)
        record.update(resumes_run=exchange.prior.run_id)
        results, counts = util.archived_answer(exchange.prior, archive,
                                               staging)
        look = None if options.dry_run else \
            util.answer_still_on_server(exchange.place, exchange.upload)
        return Answer(results, counts, look)
    with record.step("wait"):
        look = util.wait_for_answer(exchange.place, config.receive, exchange.upload,
                                    options.no_wait)
    with record.step("fetch"):
        local = util.fetch_answer(exchange.place, look, staging)
    results_name, counts_name = exchange.place.names
    return Answer(local[results_name], local[counts_name], look)


def check_answer(run: ReceiveRun, exchange: Exchange, answer: Answer, archive: util.Archive
                 ) -> CheckedAnswer:
    """Parse both files and check the control totals; a refused answer is kept as evidence
    (when it came from the server) and nothing is published."""
    config, record, options = run.config, run.record, run.options
    results_name, counts_name = exchange.place.names
    with record.step("checks"):
        send_list = util.read_send_list(exchange.upload, archive)
        for path in (answer.results, answer.counts):
            util.check_local_answer_size(path, config.receive.max_answer_mib)
        results_bytes, counts_bytes = answer.results.read_bytes(), answer.counts.read_bytes()
        try:
            results = util.parse_results(results_bytes, results_name, config.dps_file,
                                         options.today, set(send_list.county))
            counts = util.parse_counts(counts_bytes, counts_name, config.dps_file)
            util.check_control_totals(counts, exchange.upload.rows_sent, results,
                                      counts_name, results_name, config.dps_file.counts_keys)
        except util.InputError:
            if answer.look is not None and not options.dry_run:
                kept = util.keep_refused_answer(archive,
                                                run.layout.archive_for(STEP, exchange.period),
                                                record.run_id, [answer.results, answer.counts])
                record.update(refused_answer=[f.path for f in kept],
                              archive_checksums=util.archive_checksums(kept))
            raise
    log_results_summary(results_name, results)
    return CheckedAnswer(results, send_list, counts,
                         len([x for x in counts_bytes.splitlines() if x.strip()]),
                         {results_name: util.sha256_bytes(results_bytes),
                          counts_name: util.sha256_bytes(counts_bytes)})


def read_sources(run: ReceiveRun, ahead: util.Ahead) -> Sources:
    """The sources step: IMPACT's rows (sources_of), read by a forked copy of this run while
    DPS's answer was checked (run.processes; with 1, read here and now)."""
    with run.record.step("sources"):
        return ahead.result()


def sources_of(run: ReceiveRun, period: util.Period) -> Sources:
    """IMPACT's runaway episodes (sa_98, checked) and the county -> region lookup. Matching
    and Exceptions use the rows of the matching range; the follow-up aids all fetched rows."""
    today = run.options.today
    read = util.read_sources(run.config, run.rules, period, today)
    sa98, name = read.sa98, read.name
    start, end = run.rules.matching_range(period.start, period.end)
    in_range = sa98[util.overlaps_range(sa98, start, end)]
    episodes, problems = util.check_episodes(in_range, name, today)
    fetched, _ = util.check_episodes(sa98, name)     # its faults are listed above
    regions = util.build_regions(read.county_region)
    return Sources(episodes, fetched, problems, regions, read.who, name, len(sa98),
                   util.frame_checksum(sa98.drop(columns="LINE")), sa98,
                   run.rules.fetch_range(period.start, period.end, today),
                   util.values_checksum(sa98.drop(columns="LINE")))


def already_reported(run: ReceiveRun, exchange: Exchange, checked: CheckedAnswer,
                     sources: Sources) -> bool:
    """Whether the period was already reported from these same inputs and rules (then
    nothing is published again, unless --force); records the inputs' checksums, the rules'
    fingerprint, the range sa_98 was fetched over and its rows' key.

    The run date is not part of the inputs, nor is the part of sa_98's range that grows with
    it: the rows are compared over the range the published reports read, so a later day's
    receive of the same answer republishes only when those rows changed (an episode closed, a
    date corrected), not because episodes began after that range (docs/data-contract.md §6).
    A republish says what changed."""
    inputs = {**checked.sha256, sources.name: sources.checksum, **sources.who.directory}
    settings = run.rules.fingerprint()
    run.record.update(inputs=inputs, report_settings=settings,
                      sa_98_range=[day.isoformat() for day in sources.fetch_range],
                      sa_98_key=sources.key, results_lines=checked.results.data_lines,
                      episodes=sources.rows)
    reported = exchange.reported
    if reported is None or run.options.force or run.options.dry_run:
        return False
    changed = [name for name in sorted({*inputs, *reported.inputs} - {sources.name})
               if inputs.get(name) != reported.inputs.get(name)]
    if not same_sa98_rows(run, exchange, sources):
        changed.append(sources.name)
    changed += [name for name in sorted({*settings, *reported.report_settings})
                if settings.get(name) != reported.report_settings.get(name)]
    if changed:
        log.info("%s was reported by run %s (run date %s); publishing again: changed since: %s",
                 exchange.period.label, reported.run_id, reported.run_date or "-",
                 ", ".join(changed))
    return not changed


def same_sa98_rows(run: ReceiveRun, exchange: Exchange, sources: Sources) -> bool:
    """Whether today's sa_98 rows, cut at the end of the range the published reports read,
    are the rows they read (by the key in their run record). Not when today's fetch does not
    cover that range (a run date before theirs). A record written before the key existed
    compares the whole fetch's checksum, as then: the same only for the same range."""
    reported, period = exchange.reported, exchange.period
    if reported.sa_98_key and len(reported.sa_98_range) == 2:
        start, end = (dt.date.fromisoformat(day) for day in reported.sa_98_range)
        if start != sources.fetch_range[0] or end > sources.fetch_range[1]:
            return False
        cut = util.fetched_until(sources.raw, end).drop(columns="LINE")
        return util.values_checksum(cut) == reported.sa_98_key
    if not reported.run_date:
        return False
    published = run.rules.fetch_range(period.start, period.end,
                                      dt.date.fromisoformat(reported.run_date))
    return published == sources.fetch_range \
        and reported.inputs.get(sources.name) == sources.checksum


def finish_nothing_new(run: ReceiveRun, exchange: Exchange, archive: util.Archive) -> int:
    """Deliver what an earlier run left queued, and send the summary mail it could not send
    (after this run's audit line, which records that it does: `mail_after_line`)."""
    config, record = run.config, run.record
    reported = exchange.reported
    log.info("nothing new: %s was already reported from the same inputs (run %s, run date "
             "%s); use --force to rebuild the reports as of today", exchange.period.label,
             reported.run_id if reported else "-", reported.run_date if reported else "-")
    record.update(outcome=util.NOTHING_NEW)
    if util.queued_reports(run.layout.queue):
        delivery = util.deliver_reports(config, archive, run.layout.archive_root(STEP),
                                        record.run_id)
        record_delivery(run, delivery)
        delivery.check()
    if reported is not None and reported.pending_mail and util.mail_on(config.mail):
        record.update(resends_mail_of=reported.run_id)
    return record.finish(util.EXIT_OK)


def reconcile(run: ReceiveRun, exchange: Exchange, checked: CheckedAnswer,
              sources: Sources) -> util.Reconciliation:
    """Match DPS's records with IMPACT's episodes and build the report rows."""
    with run.record.step("reconcile"):
        recon = util.reconcile(checked.results, sources.episodes, sources.fetched,
                               checked.send_list, sources.regions, exchange.period,
                               run.options.today, run.rules, sources.who)
    recon.flow["episodes_fetched"] = sources.rows
    problems = len(all_problems(checked, sources))
    summary = util.counts_summary(recon)
    run.record.update(**util.report_counts(recon), exceptions=problems, summary=summary)
    log.info("%s; %d exceptions", summary, problems)
    return recon


def write_reports(run: ReceiveRun, exchange: Exchange, checked: CheckedAnswer,
                  sources: Sources, recon: util.Reconciliation) -> None:
    """Every report of the registry (util.REPORTS), into the outbox's queue (or its dry-run
    folder); the period's counts into the trend history (not for a dry run). A run going on
    from one that wrote its reports and stopped delivers those (so a target that has them
    does not get them again)."""
    record, dry_run = run.record, run.options.dry_run
    if queued_reports_of(exchange.prior) and not dry_run:
        log.info("delivering the reports run %s wrote", exchange.prior.run_id)
        record.update(reports=exchange.prior.reports)
        return
    history = update_trend(run, exchange.period, recon, publish=not dry_run)
    label = exchange.period.label
    inputs = util.ReportInputs(recon, (*util.trend_grid(history, label),
                                       util.on_time_shares(history, label)),
                               readme_context(run, exchange, checked, sources, recon),
                               all_problems(checked, sources))
    folder = run.layout.reports_for(exchange.period, dry_run)
    written: list[str] = []

    def wrote(path: Path) -> None:
        written.append(str(path))
        log.info("wrote %s", path)

    with record.step("reports"):
        sheets = util.every_report_sheets(inputs, exchange.period)
        util.write_workbooks([(folder / spec.file_name(exchange.period), sheets[spec.key])
                              for spec in util.REPORTS],
                             run.config.reports.max_rows_per_sheet, run.rules.marking,
                             run.config.run.processes, written=wrote)
    record.update(reports=written)


def finish_dry_run(record: util.RunRecord) -> int:
    log.info("dry run: reports in %s; remote files left, nothing delivered or mailed",
             Path(record.manifest["reports"][0]).parent)
    return record.finish(util.EXIT_OK, util.DRY_RUN)


def archive_answer(run: ReceiveRun, exchange: Exchange, answer: Answer,
                   archive: util.Archive) -> None:
    """Keep DPS's files in the archive (once: a rerun refers to the first copies)."""
    record = run.record
    earlier = exchange.reported or exchange.prior
    if earlier is not None:
        record.update(archived=earlier.archived, archived_roles=earlier.archived_roles)
        return
    with record.step("archive"):
        stored = archive.store_all([answer.results, answer.counts],
                                   run.layout.archive_for(STEP, exchange.period),
                                   record.run_id)
        record.update(archived=[f.path for f in stored],
                      archived_roles=dict(zip(util.RECEIVE_ROLES, [f.path for f in stored],
                                              strict=True)),
                      archive_checksums=util.archive_checksums(stored))


def deliver_reports(run: ReceiveRun, archive: util.Archive) -> None:
    """To every target (the share, SharePoint); one that fails ends the run with one line
    naming it, after the others got the reports. The next run delivers only what is missing
    and then sends the summary mail."""
    with run.record.step("deliver"):
        delivery = util.deliver_reports(run.config, archive, run.layout.archive_root(STEP),
                                        run.record.run_id)
        record_delivery(run, delivery)
        delivery.check()


def record_delivery(run: ReceiveRun, delivery: util.Delivery) -> None:
    record = run.record
    checksums = {**record.manifest.get("archive_checksums", {}),
                 **util.archive_checksums(delivery.archived)}
    record.update(delivered=delivery.every_location(), delivered_to=delivery.locations,
                  delivery_proofs=delivery.proofs, delivery_failures=delivery.failures,
                  archived_reports=[f.path for f in delivery.archived],
                  archive_checksums=checksums, where="; ".join(delivery.places),
                  delivery_labels=delivery.labels)


def ready_summary_mail(run: ReceiveRun, exchange: Exchange, recon: util.Reconciliation
                       ) -> None:
    """Write the summary mail into the run record (`pending_mail`), with a slot for the audit
    chain's head: it goes out once the run's audit line is written (`mail_after_line`), so the
    head it carries is that line's hash. A mail that is not sent stays in the record, and the
    next run sends it."""
    config, record = run.config, run.record
    if util.step_done(exchange.prior, "mail"):
        # The one gap no protocol closes: killed after the SMTP server took the mail but before
        # that was recorded. Then the mail goes twice; once recorded, never again.
        log.info("the summary mail was sent by run %s; not sent again", exchange.prior.run_id)
        return
    if not util.mail_on(config.mail):
        record.update(mailed=False)
        return
    subject, text, html_text = util.success_mail(recon, mail_facts(run, exchange))
    record.update(pending_mail={"subject": subject, "text": text, "html": html_text})
    record.save()


def clean_up_server(run: ReceiveRun, answer: Answer) -> None:
    """Move, delete or keep DPS's files on the server: only now that the reports are out."""
    if answer.look is not None:
        with run.record.step("remote_cleanup"):
            util.clean_up_remote(run.config.sftp, answer.look, run.record.run_id)
    shutil.rmtree(run.layout.staging_for(run.record.run_id), ignore_errors=True)


# ---------------------------------------------------------------------------
# What the steps use
# ---------------------------------------------------------------------------


def queued_reports_of(prior: util.ReceiveRecord | None) -> bool:
    """Whether an interrupted run wrote reports that all still wait in the queue."""
    written = prior.reports if prior else []
    return util.step_done(prior, "reports") and all(Path(p).is_file() for p in written) \
        and bool(written)


def update_trend(run: ReceiveRun, period: util.Period, recon: util.Reconciliation,
                 publish: bool) -> Any:
    """The trend history, with this period's counts recorded (replacing a republished
    period's) when the reports are for publishing."""
    history = util.load_trend(run.layout.trend_file)
    if publish:
        history = util.record_period(history, period.label, util.period_key(period.label),
                                     util.trend_rows(recon))
        util.save_trend(history, run.layout.trend_file, util.atomic_write_bytes)
    return history


def readme_context(run: ReceiveRun, exchange: Exchange, checked: CheckedAnswer,
                   sources: Sources, recon: util.Reconciliation) -> util.ReadmeContext:
    """What the Read me sheets say about this run: its inputs, settings and counts."""
    inputs = run.record.manifest["inputs"]
    directory = sources.who.agencies
    rows = dict(zip(inputs, [checked.results.data_lines, checked.counts_lines, sources.rows,
                             *([] if directory is None else [len(directory)])], strict=True))
    keys = run.config.dps_file.counts_keys
    ours = {"records_received": exchange.upload.rows_sent,
            "result_records": checked.results.data_lines,
            "persons_with_records": checked.results.distinct_pids}
    control = [(keys[name], checked.counts[name], ours[name]) for name in ours]
    return util.ReadmeContext(
        exchange.period, run.record.run_id, exchange.upload.run_id, run.options.today,
        util.local_now(run.config.run.time_zone), run.rules, inputs, rows,
        checked.results.extra_columns, len(all_problems(checked, sources)), recon.flow,
        control, run.config.run.time_zone)


def mail_facts(run: ReceiveRun, exchange: Exchange) -> util.MailFacts:
    """Where the files are and the previous recorded period, for the summary mail."""
    record = run.record
    history = util.load_trend(run.layout.trend_file)
    label = exchange.period.label
    previous = util.previous_period(history, label)
    locations: dict[str, str] = {}
    for files in record.manifest.get("delivered_to", {}).values():
        for name, where in files.items():
            locations[name] = f"{locations[name]} ; {where}" if name in locations else where
    return util.MailFacts(exchange.period, locations, record.manifest["exceptions"],
                          record.run_id, exchange.upload.run_id, previous,
                          util.previous_counts(history, label), util.AUDIT_HEAD_SLOT)


def all_problems(checked: CheckedAnswer, sources: Sources) -> list[util.Problem]:
    return checked.results.problems + sources.problems


def log_results_summary(name: str, results: util.ResultsFile) -> None:
    left_out = sum(p.kind == util.ROW_LEFT_OUT for p in results.problems)
    warnings = sum(p.kind == util.WARNING for p in results.problems)
    log.info("%s: %d data lines, %d usable records, %d rows left out, %d warnings", name,
             results.data_lines, len(results.records), left_out, warnings)


def mail_after_line(config: util.Config, record: util.RunRecord, head: str) -> None:
    """Called by the harness once the run's audit line is written (`head` is its hash): send
    this run's summary mail, or the one an earlier run could not send (`resends_mail_of`), with
    that head in its footer. Attachments (when on) are this run's delivered reports, read from
    the archive copies made once every target had them. MailError with the one-line reason
    when the mail fails: the harness records it in a further audit line, and the mail stays in
    the run record for the next run to send."""
    manifest = record.manifest
    if manifest.get("pending_mail"):
        with record.step("mail"):   # recorded sent in the step: a kill after it sends no more
            send_summary_mail(config, manifest["pending_mail"], head,
                              mail_attachments(config, manifest), record, "reports delivered, "
                              "but the summary mail was not sent")
            record.update(mailed=True, pending_mail=None)
    elif manifest.get("resends_mail_of"):
        earlier = manifest["resends_mail_of"]
        pending = util.read_manifest(config.folders.state, STEP, earlier).get("pending_mail")
        if not pending:
            return
        with record.step("mail"):
            send_summary_mail(config, pending, head, None, record,
                              f"the summary mail of run {earlier} was not sent")
            util.update_manifest(config.folders.state, STEP, earlier, mailed=True,
                                 pending_mail=None, mail_error=None, mail_sent_by=record.run_id)
        log.info("sent the summary mail that run %s could not send", earlier)


def send_summary_mail(config: util.Config, pending: dict[str, str], head: str,
                      attachments: dict[str, bytes] | None, record: util.RunRecord,
                      failed: str) -> None:
    """Send a kept summary mail with `head` in its slot; on failure record the error and raise
    MailError whose message begins with `failed`."""
    try:
        util.send_mail(config.mail, pending["subject"], util.with_audit_head(pending["text"], head),
                       util.with_audit_head(pending["html"] or "", head) or None, attachments)
    except util.MailError as exc:
        record.update(mailed=False, mail_error=str(exc))
        raise util.MailError(f"{failed}: {exc}; rerun to send it") from exc


def mail_attachments(config: util.Config, manifest: dict[str, Any]) -> dict[str, bytes] | None:
    """The delivered reports, from their archive copies, when mail.attachments is on."""
    archived = manifest.get("archived_reports", [])
    if not config.mail.attachments or not archived:
        return None
    archive = util.open_archive(config)
    return {Path(path).name.removeprefix(f"{manifest['run_id']}_"): archive.read(Path(path))
            for path in archived}


def what_was_kept(config: util.Config, manifest: dict[str, Any]) -> str:
    """For the failure alert: where DPS's files and undelivered reports are."""
    layout = util.Layout.from_config(config)
    return (f"DPS's files stay in {config.sftp.answer_folder} on the server and in "
            f"{layout.archive_root(STEP)} once archived; nothing was published from inputs "
            f"that failed their checks; reports not yet delivered wait in {layout.queue}")


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = util.OneLineParser(
        prog="receivedps.py",
        description=f"Wait for DPS's answer to our latest upload, fetch and check it, write "
                    f"the reports ({util.stems_text()}), deliver them to the share and "
                    f"SharePoint, and mail a summary.",
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
                       kept=what_was_kept, after_line=mail_after_line)


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
                                 args.dry_run,
                                 args.expect_head)
        options = receive_options(args, config)
    except util.DpsError as exc:
        return util.report_error(receive_script(), exc)
    return util.run(receive_script(), config, args.verbose, run_receive, options)


if __name__ == "__main__":
    raise SystemExit(main())
