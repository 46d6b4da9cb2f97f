#!/usr/bin/env python3
"""Step 1 of the DFPS -> DPS exchange: query IMPACT, write the DPS file, upload it.

    python send2dps.py                      # the default period (see --help)
    python send2dps.py --period FY2025Q3    # a chosen quarter
    python send2dps.py --dry-run            # write the files, connect nowhere

Writes End_txt_file.txt (for DPS) and end_export.xlsx (for reference) to the outbox,
uploads the text file over SFTP with a pinned host key, archives both and records the run
in a JSON manifest. The rules come from the data contract, sections 1-3.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import util

log = logging.getLogger("send2dps")

STEP = "send"
QUERY_COLUMNS = ["PID", "LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX", "DOB", "SEX",
                 "RACE_ETHNICITY", "REMOVAL_ID", "REMOVAL_DATE", "COUNTY_CODE"]
NAME_COLUMNS = ["LAST_NAME", "FIRST_NAME", "MIDDLE_NAME", "SUFFIX"]

# Letters that Unicode does not decompose into a base letter plus a mark (contract §3).
NAME_REPLACEMENTS = str.maketrans({
    "ß": "SS", "Ø": "O", "ø": "O", "Ł": "L", "ł": "L", "Đ": "D", "đ": "D",
    "Æ": "AE", "æ": "AE", "Œ": "OE", "œ": "OE",
    "\u2019": "'", "\u2018": "'", "\u02bc": "'", "\t": " ", "\u00a0": " ",
})
NAME_TRIM = " -'"


# ---------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="send2dps.py",
        description="Query IMPACT for the children in conservatorship during a fiscal quarter, "
                    "write End_txt_file.txt and end_export.xlsx, and upload the text file to "
                    "DPS over SFTP.",
        epilog="Exit codes: 0 ok (uploaded, identical file skipped, or dry run); 1 failed; "
               "2 usage or config error; 75 another send run holds the lock.")
    parser.add_argument("--period", metavar="FY2025Q3",
                        help="fiscal quarter to send (default: the quarter containing the run "
                             "date minus run.close_lag_days)")
    parser.add_argument("--dry-run", action="store_true",
                        help="write the files to the outbox but connect nowhere and upload nothing")
    parser.add_argument("--force", action="store_true",
                        help="upload even when the file is identical to the last upload, fails "
                             "the sanity limits, or an earlier upload is still unanswered")
    util.add_common_options(parser)
    return parser


# ---------------------------------------------------------------------------
# Pure logic: period, wrangling, the DPS file, sanity limits (contract §1, §3)
# ---------------------------------------------------------------------------


def choose_period(period_text: str | None, today: dt.date, close_lag_days: int) -> util.Period:
    """The --period given, else the quarter containing (today - close_lag_days)."""
    if period_text:
        period = util.parse_period(period_text)
    else:
        period = util.period_containing(today - dt.timedelta(days=close_lag_days))
    util.check_period_started(period, today)
    return period


def clean_name(value: Any) -> str:
    """DPS-safe name: ASCII letters, space, hyphen and apostrophe, upper case (contract §3)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = unicodedata.normalize("NFKD", str(value))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.translate(NAME_REPLACEMENTS).upper()
    text = "".join(ch for ch in text if ("A" <= ch <= "Z") or ch in " -'")
    return " ".join(text.split()).strip(NAME_TRIM)


def cut_name(name: str, max_length: int) -> tuple[str, bool]:
    """Cut a cleaned name to max_length and trim again; says whether it was cut."""
    if len(name) <= max_length:
        return name, False
    return name[:max_length].strip(NAME_TRIM), True


def clean_name_column(values: Any, max_length: int) -> tuple[Any, int]:
    """Clean a Series of names; returns the cleaned Series and how many were cut."""
    cleaned = {}
    cut_count = 0
    for raw in values.unique():
        cleaned[raw] = cut_name(clean_name(raw), max_length)
    result = values.map(lambda raw: cleaned[raw][0])
    cut_count = int(values.map(lambda raw: cleaned[raw][1]).sum())
    return result.astype(object), cut_count


def sex_code(value: Any) -> str:
    text = str(value).strip().upper() if value is not None else ""
    return {"M": "M", "MALE": "M", "F": "F", "FEMALE": "F"}.get(text, "U")


def race_codes(values: Any, race_mapping: dict[str, str]) -> Any:
    """NCIC race codes from DFPS labels (any case, spaces trimmed); anything unmapped is U."""
    lookup = {label.strip().lower(): code for label, code in race_mapping.items()}
    codes = {raw: lookup.get(str(raw).strip().lower() if raw is not None else "", "U")
             for raw in values.unique()}
    return values.map(codes).fillna("U")


def pick_latest_removal(children: Any) -> Any:
    """One row per PID: the removal with the latest REMOVAL_DATE (ties: highest REMOVAL_ID)."""
    ordered = children.sort_values(["PID", "REMOVAL_DATE", "REMOVAL_ID"],
                                   na_position="first", kind="mergesort")
    return ordered.drop_duplicates("PID", keep="last").reset_index(drop=True)


@dataclass
class Wrangled:
    sent: Any       # DataFrame: the rows of End_txt_file.txt plus COUNTY_CODE, REMOVAL_DATE
    excluded: Any             # DataFrame: rows not sent, with REASONS
    names_cut: dict[str, int] = field(default_factory=dict)


def wrangle(children: Any, today: dt.date, race_mapping: dict[str, str],
            max_lengths: dict[str, int]) -> Wrangled:
    """Apply every rule of contract §3 to the send_children rows."""
    import pandas as pd

    frame = children.copy()
    frame["PID"] = pd.to_numeric(frame["PID"], errors="coerce")
    if frame["PID"].isna().any():
        raise util.InputError(f"query send_children: {int(frame['PID'].isna().sum())} row(s) "
                              f"have no numeric PID")
    frame["PID"] = frame["PID"].astype("int64")
    frame["REMOVAL_DATE"] = util.plain_dates(frame["REMOVAL_DATE"])
    frame["REMOVAL_ID"] = pd.to_numeric(frame["REMOVAL_ID"], errors="coerce")
    frame = pick_latest_removal(frame)

    names_cut = {}
    for column in NAME_COLUMNS:
        frame[column], names_cut[column] = clean_name_column(frame[column], max_lengths[column])
    dob = util.plain_dates(frame["DOB"])
    usable_dob = dob.notna() & (dob <= pd.Timestamp(today))
    frame["DOB"] = dob.dt.strftime("%Y%m%d").where(usable_dob, "")
    frame["SEX"] = frame["SEX"].map(sex_code)
    frame["RACE"] = race_codes(frame["RACE_ETHNICITY"], race_mapping)
    frame["COUNTY_CODE"] = pd.to_numeric(frame["COUNTY_CODE"], errors="coerce").astype("Int64")

    reasons = exclusion_reasons(usable_dob, frame["LAST_NAME"] != "", frame["FIRST_NAME"] != "")
    keep = reasons == ""
    columns = ["PID", *NAME_COLUMNS, "DOB", "SEX", "RACE", "COUNTY_CODE", "REMOVAL_DATE"]
    sent = frame.loc[keep, columns].sort_values("PID").reset_index(drop=True)
    excluded = frame.loc[~keep, columns].assign(REASONS=reasons[~keep])
    excluded = excluded.sort_values("PID").reset_index(drop=True)
    return Wrangled(sent=sent, excluded=excluded, names_cut=names_cut)


def exclusion_reasons(has_dob: Any, has_last: Any, has_first: Any) -> Any:
    """'; '-joined reasons in the order DOB, last name, first name ('' = the row is sent)."""
    import pandas as pd

    checks = [(has_dob.to_numpy(dtype=bool), "no usable DOB"),
              (has_last.to_numpy(dtype=bool), "no last name"),
              (has_first.to_numpy(dtype=bool), "no first name")]
    reasons = pd.Series("", index=has_dob.index, dtype=object)
    failing = ~(checks[0][0] & checks[1][0] & checks[2][0])
    for position in failing.nonzero()[0]:   # only the few rows not sent
        reasons.iloc[position] = "; ".join(label for ok, label in checks if not ok[position])
    return reasons


def output_columns(configured: list[Any]) -> list[tuple[str, str]]:
    """(contract field, header name) pairs; an item may be 'PID' or {'PID': 'PERSON_ID'}."""
    pairs = []
    for item in configured:
        if isinstance(item, dict) and len(item) == 1:
            (source, header), = item.items()
            pairs.append((str(source), str(header)))
        else:
            pairs.append((str(item), str(item)))
    return pairs


def render_dps_text(sent: Any, file_config: dict[str, Any]) -> bytes:
    """End_txt_file.txt as bytes: header, one line per PID, a final line end."""
    columns = output_columns(file_config["columns"])
    delimiter, line_end = file_config["delimiter"], file_config["line_ending"]
    unknown = [source for source, _ in columns if source not in sent.columns]
    if unknown:
        raise util.ConfigError(f"dps_file.columns: unknown column {unknown[0]}")
    table = sent[[source for source, _ in columns]].astype(str)
    lines = [delimiter.join(header for _, header in columns)]
    lines.extend(delimiter.join(values) for values in table.itertuples(index=False, name=None))
    text = line_end.join(lines) + line_end
    try:
        return text.encode(file_config["encoding"])
    except UnicodeEncodeError as exc:
        raise util.InputError(f"{file_config['send_name']}: a value cannot be written as "
                              f"{file_config['encoding']} (row {text[:exc.start].count(line_end)})"
                              ) from exc


def sent_index_csv(sent: Any) -> bytes:
    """PID -> COUNTY_CODE of the rows sent: the receive step's region lookup for DPS rows."""
    return sent[["PID", "COUNTY_CODE"]].to_csv(index=False, lineterminator="\n").encode("ascii")


def check_sanity(rows: int, last_rows: int | None, min_rows: int, max_change_pct: float,
                 file_name: str) -> None:
    """Refuse a file too small, or too different from the last upload for the period."""
    if rows < min_rows:
        raise util.InputError(f"{file_name}: {rows} rows, fewer than sanity.min_rows={min_rows}; "
                              f"nothing uploaded (use --force to send anyway)")
    if last_rows:
        change = abs(rows - last_rows) / last_rows * 100
        if change > max_change_pct:
            raise util.InputError(
                f"{file_name}: {rows} rows vs {last_rows} in the last upload for the period "
                f"({change:.1f}% change > sanity.max_change_pct={max_change_pct:g}); "
                f"nothing uploaded (use --force to send anyway)")


# ---------------------------------------------------------------------------
# Manifests: what earlier sends did
# ---------------------------------------------------------------------------


def uploads(state_dir: Path) -> list[dict[str, Any]]:
    return [m for m in util.read_manifests(state_dir, STEP) if m.get("outcome") == "uploaded"]


def last_upload_for_period(state_dir: Path, period: util.Period) -> dict[str, Any] | None:
    matching = [m for m in uploads(state_dir) if m.get("period") == period.label]
    return matching[-1] if matching else None


def answered_send_runs(state_dir: Path) -> set[str]:
    done = {"reported", "nothing new"}
    return {m.get("send_run_id", "") for m in util.read_manifests(state_dir, "receive")
            if m.get("outcome") in done}


def interrupted_upload(state_dir: Path, period: util.Period, checksum: str, run_id: str
                       ) -> dict[str, Any] | None:
    """The latest earlier send of this period when it began uploading this same file but
    never recorded the outcome (killed, or the connection broke)."""
    runs = [m for m in util.read_manifests(state_dir, STEP)
            if m.get("period") == period.label and m.get("run_id") != run_id]
    if not runs:
        return None
    latest = runs[-1]
    began = "upload" in latest.get("steps", {})
    if began and latest.get("outcome") != "uploaded" and latest.get("sha256") == checksum:
        return latest
    return None


def unanswered_upload_in_flight(state_dir: Path, max_wait_hours: float,
                                now: dt.datetime) -> dict[str, Any] | None:
    """The latest upload when it is unanswered and younger than the receive's maximum wait."""
    all_uploads = uploads(state_dir)
    if not all_uploads:
        return None
    latest = all_uploads[-1]
    if latest["run_id"] in answered_send_runs(state_dir):
        return None
    uploaded_at = dt.datetime.fromisoformat(latest["uploaded_at"])
    if now - uploaded_at > dt.timedelta(hours=max_wait_hours):
        return None
    return latest


# ---------------------------------------------------------------------------
# I/O steps
# ---------------------------------------------------------------------------


def query_children(config: dict[str, Any], period: util.Period) -> Any:
    engine = util.open_configured_database(config["database"])
    try:
        return util.run_query(engine, config["database"]["sql_folder"], "send_children",
                              {"period_start": period.start,
                               "period_end_next": period.end + dt.timedelta(days=1)},
                              QUERY_COLUMNS)
    finally:
        engine.dispose()


def write_export_workbook(path: Path, wrangled: Wrangled, about: list[list[Any]],
                          max_rows: int) -> None:
    util.write_workbook(path, [
        util.Sheet("Sent", list(wrangled.sent.columns), util.frame_rows(wrangled.sent)),
        util.Sheet("Excluded", list(wrangled.excluded.columns),
                   util.frame_rows(wrangled.excluded)),
        util.Sheet("About", ["ITEM", "VALUE"], about),
    ], max_rows)


def upload_to_dps(config: dict[str, Any], text_file: Path, checksum: str,
                  check_remote_first: bool) -> tuple[util.RemoteFile, bool]:
    """Upload the file; returns (the remote file, whether bytes were transferred).

    After an interrupted run, the file on the server is compared with ours first (size, then
    SHA-256 of its content): when it is the same, it is not uploaded again.
    """
    sftp_config = config["sftp"]
    with util.connect_sftp(sftp_config) as session:
        if check_remote_first:
            final = util.join_remote(sftp_config["upload_folder"], text_file.name)
            remote = session.stat_file(final)
            if remote and remote.size == text_file.stat().st_size \
                    and util.sha256_bytes(session.read_bytes(final)) == checksum:
                log.info("%s on the server is identical to ours (size and SHA-256): not "
                         "uploaded again", remote.path)
                return remote, False
        remote = session.upload(text_file, sftp_config["upload_folder"], text_file.name)
    log.info("uploaded %s (%d bytes) to %s; server mtime %d", text_file.name, remote.size,
             remote.path, remote.mtime)
    return remote, True


def archive_sent_files(config: dict[str, Any], period: util.Period, run_id: str,
                       files: list[Path]) -> list[str]:
    folder = config["folders"]["archive"] / STEP / period.file_label
    return [str(util.archive_file(path, folder, run_id)) for path in files]


def complete_missing_archive(config: dict[str, Any], period: util.Period,
                             upload: dict[str, Any], files: list[Path]) -> None:
    """An upload killed before its archive step: archive the identical files under that
    upload's run id and record it in that upload's manifest."""
    if upload.get("archived"):
        return
    upload["archived"] = archive_sent_files(config, period, upload["run_id"], files)
    upload.setdefault("steps", {})["archive"] = {"status": "done", "completed_by_later_run": True}
    util.write_manifest(config["folders"]["state"], upload)
    log.info("archived the files of upload %s, which was interrupted before its archive step",
             upload["run_id"])


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


def run_send(args: argparse.Namespace, config: dict[str, Any], timer: util.StepTimer) -> int:
    """The send step in order: period, query, wrangle, files, checks, upload, archive."""
    folders = config["folders"]
    state_dir = folders["state"]
    manifest = timer.manifest
    run_id = manifest["run_id"]
    now = dt.datetime.now(dt.UTC)
    today = util.run_date(config["run"]["time_zone"], args.as_of)
    period = choose_period(args.period, today, config["run"]["close_lag_days"])
    manifest.update(period=period.label, run_date=today.isoformat(), dry_run=args.dry_run,
                    force=args.force)
    timer.save()
    log.info("send %s (%s to %s), run date %s", period.label, period.start, period.end, today)

    with timer.step("query"):
        children = query_children(config, period)
    with timer.step("wrangle"):
        wrangled = wrangle(children, today, config["race_mapping"],
                           config["dps_file"]["name_max_lengths"])
    manifest.update(rows_queried=len(children), rows_sent=len(wrangled.sent),
                    rows_excluded=len(wrangled.excluded), names_cut=wrangled.names_cut)
    log.info("%d removal rows -> %d children sent, %d excluded; names cut to length: %s",
             len(children), len(wrangled.sent), len(wrangled.excluded), wrangled.names_cut)

    file_config = config["dps_file"]
    outbox = folders["outbox"] / STEP
    text_path = outbox / file_config["send_name"]
    export_path = outbox / file_config["export_name"]
    index_path = outbox / "sent_index.csv"
    with timer.step("text_file"):
        data = render_dps_text(wrangled.sent, file_config)
        util.atomic_write_bytes(text_path, data)
        util.atomic_write_bytes(index_path, sent_index_csv(wrangled.sent))
    checksum = util.sha256_bytes(data)
    manifest.update(file=str(text_path), sha256=checksum, bytes=len(data))
    log.info("wrote %s: %d data lines, %d bytes, sha256 %s", text_path, len(wrangled.sent),
             len(data), checksum)
    with timer.step("workbook"):
        about = [["period", period.label], ["period start", period.start],
                 ["period end", period.end], ["run id", run_id], ["run date", today],
                 ["rows sent", len(wrangled.sent)], ["rows excluded", len(wrangled.excluded)],
                 ["SHA-256 of " + text_path.name, checksum],
                 ["generated at", dt.datetime.now(dt.UTC).isoformat(timespec="seconds")]]
        write_export_workbook(export_path, wrangled, about, config["reports"]["max_rows_per_sheet"])
    log.info("wrote %s", export_path)

    previous = last_upload_for_period(state_dir, period)
    if not args.force:
        check_sanity(len(wrangled.sent), previous["rows_sent"] if previous else None,
                     config["sanity"]["min_rows"], config["sanity"]["max_change_pct"],
                     text_path.name)

    if args.dry_run:
        manifest["outcome"] = "dry run"
        log.info("dry run: files written to %s; nothing uploaded, nothing archived", outbox)
        return timer.finish(util.EXIT_OK)

    sent_files = [text_path, export_path, index_path]
    if not args.force and previous and previous.get("sha256") == checksum:
        manifest.update(outcome="skipped as identical", same_as_run=previous["run_id"])
        log.info("identical to upload %s for %s; not uploaded again (use --force to resend)",
                 previous["run_id"], period.label)
        complete_missing_archive(config, period, previous, sent_files)
        return timer.finish(util.EXIT_OK)

    in_flight = unanswered_upload_in_flight(state_dir, config["receive"]["max_wait_hours"], now)
    if in_flight and not args.force:
        raise util.DpsError(
            f"upload {in_flight['run_id']} ({in_flight['period']}) at {in_flight['uploaded_at']} "
            f"is still unanswered; one exchange at a time (use --force to send anyway)")

    interrupted = interrupted_upload(state_dir, period, checksum, run_id)
    if interrupted:
        manifest["resumes_run"] = interrupted["run_id"]
    with timer.step("upload"):
        remote, transferred = upload_to_dps(config, text_path, checksum, bool(interrupted))
        manifest.update(outcome="uploaded", remote_path=remote.path, remote_size=remote.size,
                        remote_mtime=remote.mtime, upload_transferred=transferred,
                        uploaded_at=dt.datetime.now(dt.UTC).isoformat())
    with timer.step("archive"):
        manifest["archived"] = archive_sent_files(config, period, run_id, sent_files)
    log.info("archived to %s", Path(manifest["archived"][0]).parent)
    return timer.finish(util.EXIT_OK)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return util.run_command(STEP, args, __file__,
                            lambda config, timer: run_send(args, config, timer))


if __name__ == "__main__":
    raise SystemExit(main())
