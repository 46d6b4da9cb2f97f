#!/usr/bin/env python3
"""Benchmark of the DFPS <-> DPS exchange: the real scripts against their floor, in one run.

    .venv/bin/python bench/benchmark.py              # scale 1 x3, scale 10 x1 (< 10 min)
    .venv/bin/python bench/benchmark.py --quick      # scale 1 x1 (< 2 min)
    .venv/bin/python bench/benchmark.py --scales 1 --repeats 5 --out /tmp/b.json

In a temporary work folder it builds demo IMPACT databases, starts a local OpenSSH sshd and
a local SMTP server, and per scale and repeat runs send2dps.py and receivedps.py as separate
processes (peak memory per process from wait4), with the DPS simulator answering in a
thread. Per-step seconds come from the scripts' own run manifests. After each exchange a
fresh "floor worker" process does the same work the cheapest way the same libraries allow
(the same SQL into pandas, the same cells through openpyxl write-only without styling, the
same bytes through OpenSSH `sftp -b`, plain copies), and the table shows pipeline / floor.
It also times 100 MiB through paramiko (the product's own SFTP code) against OpenSSH
`sftp`, the time from DPS's answer being complete to the reports being on the share at
the default poll interval, and the receive of an oversized (50 MB) answer: its wall time and
peak memory against 1 GiB. It prints a markdown table and writes JSON (bench/README.md says
what every number means).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger("bench")

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "results" / "latest.json"
AS_OF = "2025-06-20"            # the demo's run date: period FY2025Q3, output fixed
MIB = 1 << 20
GIB = 1 << 30
SFTP = shutil.which("sftp") or "/usr/bin/sftp"

# Targets (README "Performance").
RATIO_TARGET = 1.3              # pipeline / floor, send and receive, waiting excluded
MEMORY_TARGET = GIB             # peak memory per process at scale >= 10
SCALING_SLACK = 1.2             # time(scale 10) <= 1.2 x 10 x time(scale 1)
SFTP_TARGET = 0.8               # paramiko throughput >= 0.8 x OpenSSH's
TTR_TARGET = 90.0               # seconds from DPS's answer complete to reports on the share
MEMORY_TARGET_FROM_SCALE = 10
BIG_ANSWER_MIB = 50             # the oversized answer (issue 20): its receive peaks <= 1 GiB
BIG_ANSWER_IN_PERIOD = 0.2      # share of its added records whose DLC is in the period

# Step order as the scripts run them; steps the manifests add later are listed after these.
SEND_ORDER = ("query", "wrangle", "text_file", "workbook", "upload", "archive")
RECEIVE_ORDER = ("wait", "fetch", "checks", "sources", "reconcile", "reports", "archive",
                 "deliver", "remote_cleanup", "mail")
EXCLUDED_STEPS = {"wait"}
# What the receive does between the answer being seen complete and the reports on the share.
REPORT_PATH_STEPS = {"fetch", "checks", "sources", "reconcile", "reports", "archive", "deliver"}
STARTUP_ROW = "start-up, imports, bookkeeping"

# Pipeline runs: the simulated DPS answers 0.5 s after our upload; the receive polls often.
FAST_POLL_SECONDS = 0.5
FAST_SETTLE_SECONDS = 0.5
ANSWER_DELAY_SECONDS = 0.5
# Time-to-report: the receive logs this after each look at TO_DFPS ("poll 1: waiting for ...").
FIRST_POLL_TEXT = "poll 1:"
FIRST_POLL_TIMEOUT_SECONDS = 60.0


class BenchError(RuntimeError):
    """The benchmark itself could not run (a script failed, a server did not start)."""


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark.py",
        description="Time send2dps.py and receivedps.py step by step against the floor of "
                    "the same work, SFTP throughput against OpenSSH, and time-to-report; print "
                    "a markdown table and write JSON.")
    parser.add_argument("--quick", action="store_true",
                        help="scale 1 only, 1 exchange, 1 SFTP transfer each (under 2 minutes)")
    parser.add_argument("--scales", metavar="1,10",
                        help="demo database scales (default 1,10; --quick: 1)")
    parser.add_argument("--repeats", type=int, metavar="N",
                        help="exchanges per scale below 10; medians are reported (default 3; "
                             "--quick: 1)")
    parser.add_argument("--large-repeats", type=int, metavar="N",
                        help="exchanges at scales of 10 and more (default 1)")
    parser.add_argument("--sftp-repeats", type=int, metavar="N",
                        help="transfers per direction and client (default 5; --quick: 1)")
    parser.add_argument("--sftp-mib", type=int, default=100, metavar="MIB",
                        help="size of the SFTP throughput file (default 100)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="PATH",
                        help=f"JSON results (default {DEFAULT_OUT.relative_to(REPO)})")
    parser.add_argument("--no-sftp", action="store_true",
                        help="skip the SFTP throughput part (while iterating on a fix)")
    parser.add_argument("--no-ttr", action="store_true",
                        help="skip the time-to-report part (while iterating on a fix)")
    parser.add_argument("--big-answer-mib", type=int, metavar="MIB",
                        help=f"size of the oversized DPS answer whose receive is measured "
                             f"against the 1 GiB peak (default {BIG_ANSWER_MIB}; part of the "
                             f"full run, and of --quick only when given)")
    parser.add_argument("--big-answer-in-period", type=float, default=BIG_ANSWER_IN_PERIOD,
                        metavar="SHARE",
                        help=f"share of the oversized answer's added records dated in the "
                             f"period, so they reach the reports (default "
                             f"{BIG_ANSWER_IN_PERIOD:g})")
    parser.add_argument("--no-big-answer", action="store_true",
                        help="skip the oversized-answer part")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="after the timed runs, profile send2dps.py --dry-run and "
                             "receivedps.py --dry-run --force once per scale with pyinstrument "
                             "(untimed) and write the text reports to DIR")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="run.processes of the timed exchanges (default: the shipped "
                             "config's, 2; 1 does the receive's work one piece after the "
                             "other, as the floor does)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary work folder (its path is logged)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug lines")
    parser.add_argument("--floor-worker", type=Path, metavar="SPEC", help=argparse.SUPPRESS)
    return parser


@dataclass(frozen=True)
class Options:
    quick: bool
    scales: list[float]
    repeats: int
    large_repeats: int
    sftp_repeats: int
    sftp_mib: int
    keep: bool
    sftp: bool = True
    ttr: bool = True
    profile: Path | None = None
    big_answer_mib: int | None = BIG_ANSWER_MIB   # None: not measured
    big_answer_in_period: float = BIG_ANSWER_IN_PERIOD
    processes: int | None = None   # run.processes of the timed exchanges (None: shipped)

    def repeats_for(self, scale: float) -> int:
        return self.large_repeats if scale >= MEMORY_TARGET_FROM_SCALE else self.repeats


def resolve_options(args: argparse.Namespace) -> Options:
    text = args.scales or ("1" if args.quick else "1,10")
    try:
        scales = [float(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise SystemExit(f"benchmark.py: --scales {text!r}: expected numbers like 1,10") from exc
    if not scales or any(s <= 0 for s in scales):
        raise SystemExit("benchmark.py: --scales: expected positive numbers")
    repeats = args.repeats or (1 if args.quick else 3)
    large = args.large_repeats or 1
    sftp_repeats = args.sftp_repeats or (1 if args.quick else 5)
    big = args.big_answer_mib if args.big_answer_mib is not None else \
        (None if args.quick else BIG_ANSWER_MIB)
    big = big or None    # --big-answer-mib 0: not measured
    return Options(args.quick, sorted(set(scales)), max(1, repeats), max(1, large),
                   max(1, sftp_repeats), max(1, args.sftp_mib), args.keep,
                   not args.no_sftp, not args.no_ttr, args.profile,
                   None if args.no_big_answer or big is None else max(1, big),
                   min(1.0, max(0.0, args.big_answer_in_period)),
                   None if args.processes is None else max(1, args.processes))


def scale_label(scale: float) -> str:
    return f"{scale:g}"


# ---------------------------------------------------------------------------
# The machine
# ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """What the README quotes next to the table."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "ram_gib": round(_mem_total_bytes() / GIB, 1),
        "os": _os_name(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "libraries": _library_versions(),
        "openssh": _openssh_version(),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in ("pandas", "numpy", "openpyxl", "XlsxWriter", "paramiko", "SQLAlchemy",
                 "PyYAML", "cryptography"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _openssh_version() -> str:
    done = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip()


# ---------------------------------------------------------------------------
# Processes: wall time and peak memory of one child
# ---------------------------------------------------------------------------


@dataclass
class Measured:
    code: int
    wall: float          # seconds from spawn to exit
    peak_rss: int        # bytes (ru_maxrss of this one child, from wait4)
    spawned_at: float    # time.time() at spawn
    output: Path


# Linux keeps a process's peak memory across exec: a child spawned straight from this process
# (which holds every benchmark's data) would report this process's peak as its own. So a small
# fresh interpreter forks the child and reports the child's ru_maxrss (from wait4) in a file.
SPAWNER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:                       # killed by a signal: end the same way, so it shows as one
    if -code not in (signal.SIGKILL, signal.SIGSTOP):
        signal.signal(-code, signal.SIG_DFL)
    os.kill(os.getpid(), -code)
os._exit(code)
"""


def run_measured(command: list[str], cwd: Path, output: Path) -> Measured:
    """Run a child to its end through the spawner (its own peak memory, not ours); stdout
    and stderr go to `output`. The spawner's start (about 20 ms) counts in the wall time of
    pipeline and floor alike."""
    peak_file = output.with_name(output.name + ".maxrss")
    spawned_at = time.time()
    started = time.perf_counter()
    with open(output, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-c", SPAWNER, str(peak_file), *command],
                                   cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
        _, status, _ = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = peak_file.read_text().strip() if peak_file.is_file() else ""
    peak_kib = int(text) if text.isdigit() else 0     # none: the run failed, which is raised
    return Measured(process.returncode, wall, peak_kib * 1024, spawned_at, output)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no output)"


# ---------------------------------------------------------------------------
# Workspaces: one config, folders and remote folders per exchange
# ---------------------------------------------------------------------------


@dataclass
class Servers:
    sftp: Any                   # demo.local_sftp.LocalSftpServer
    mail_port: int | None       # a local SMTP server, or None when aiosmtpd is missing


@dataclass
class Workspace:
    root: Path
    config_path: Path
    prefix: str                 # remote folder of this exchange, under the SFTP root
    db_path: Path

    def folder(self, name: str) -> Path:
        return self.root / name


def exchange_settings(root: Path, db_path: Path, servers: Servers, prefix: str,
                      poll: float, settle: float) -> dict[str, Any]:
    """The shipped config with this workspace's database, server, folders and polling
    (demo.local_sftp.settings_for_local_server, as the tests use it)."""
    from demo.local_sftp import settings_for_local_server

    settings = settings_for_local_server(servers.sftp, root, db_path, prefix)
    settings["sftp"].update(retries=1, retry_backoff_seconds=0.5)
    settings["reports"]["deliver_to"] = ["share"]   # the share's copy is what the floor repeats
    settings["receive"] = {"poll_seconds": poll, "settle_seconds": settle,
                           "max_wait_hours": 0.1}
    if servers.mail_port:
        settings["mail"].update(enabled=True, host="127.0.0.1", port=servers.mail_port,
                                recipients=["reports@bench.example"])
    return settings


def make_workspace(work: Path, name: str, db_path: Path, servers: Servers,
                   poll: float = FAST_POLL_SECONDS,
                   settle: float = FAST_SETTLE_SECONDS, processes: int | None = None
                   ) -> Workspace:
    root = work / name
    root.mkdir(parents=True)
    (root / "share").mkdir()     # the product never creates the share
    prefix = f"bench_{name}"
    config_path = root / "dps_config.yml"
    settings = exchange_settings(root, db_path, servers, prefix, poll, settle)
    if processes is not None:
        settings["run"]["processes"] = processes
    config_path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return Workspace(root, config_path, prefix, db_path)


def only_manifest(workspace: Workspace, step: str) -> dict[str, Any]:
    folder = workspace.folder("state") / "manifests" / step
    paths = sorted(folder.glob("*.json"))
    if len(paths) != 1:
        raise BenchError(f"{folder}: expected one {step} manifest, found {len(paths)}")
    return json.loads(paths[0].read_text(encoding="utf-8"))


def step_seconds(manifest: dict[str, Any]) -> dict[str, float]:
    return {name: float(record.get("seconds", 0.0))
            for name, record in manifest.get("steps", {}).items()}


# ---------------------------------------------------------------------------
# One exchange: send, the simulated DPS, receive
# ---------------------------------------------------------------------------


@dataclass
class ScriptRun:
    measured: Measured
    manifest: dict[str, Any]

    @property
    def steps(self) -> dict[str, float]:
        return step_seconds(self.manifest)


@dataclass
class PreparedAnswer:
    config: dict[str, Any]
    settings: Any              # demo.dps_simulator.SimulatorSettings
    results: bytes
    counts: bytes


@dataclass
class Exchange:
    workspace: Workspace
    send: ScriptRun
    receive: ScriptRun
    answer: PreparedAnswer
    answer_complete_at: float       # time.time() when the simulated DPS finished writing
    answer_phase_ok: bool           # the gate's condition held (e.g. right after a poll)


def run_script(workspace: Workspace, script: str, outcome: str) -> ScriptRun:
    step = "send" if script.startswith("send") else "receive"
    command = [sys.executable, str(REPO / script), "--config", str(workspace.config_path),
               "--as-of", AS_OF]
    measured = run_measured(command, workspace.root, workspace.root / f"{step}.out")
    if measured.code != 0:
        raise BenchError(f"{script} exited {measured.code}:\n{tail(measured.output)}")
    manifest = only_manifest(workspace, step)
    if manifest.get("outcome") != outcome:
        raise BenchError(f"{script}: outcome {manifest.get('outcome')!r}, expected {outcome!r}")
    return ScriptRun(measured, manifest)


def prepare_answer(workspace: Workspace) -> PreparedAnswer:
    """Play DPS up to the moment of writing: read our upload, make the answer (untimed)."""
    import util
    from demo import dps_simulator as sim

    config = util.load_config(workspace.config_path)
    settings = sim.SimulatorSettings(delay_seconds=0, chunk_lines=5000, chunk_pause_seconds=0,
                                     poll_seconds=0.1)
    upload = util.join_remote(config.sftp.upload_folder, config.dps_file.send_name)
    sent = sim.wait_for_upload(config, upload, 30, settings)
    answer = sim.make_answer(sent, workspace.db_path, settings, dt.date.fromisoformat(AS_OF),
                             config.dps_file)
    return PreparedAnswer(config, settings, answer.results, answer.counts)


class AnswerWriter(threading.Thread):
    """The simulated DPS writing its answer once `gate` returns; records when it finished."""

    def __init__(self, answer: PreparedAnswer, gate: Callable[[], bool]) -> None:
        super().__init__(name="dps-simulator", daemon=True)
        self.answer = answer
        self.gate = gate
        self.phase_ok = False
        self.completed_at: float | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        from demo import dps_simulator as sim

        try:
            self.phase_ok = self.gate()
            sim.write_answer(self.answer.config, self.answer.settings,
                             dt.date.fromisoformat(AS_OF), self.answer.results,
                             self.answer.counts)
            self.completed_at = time.time()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc

    def finished_at(self) -> float:
        self.join(timeout=120)
        if self.error is not None:
            raise BenchError(f"the simulated DPS failed: {self.error!r}") from self.error
        if self.completed_at is None:
            raise BenchError("the simulated DPS did not finish writing its answer")
        return self.completed_at


def run_exchange(workspace: Workspace, gate: Callable[[Workspace], Callable[[], bool]]
                 ) -> Exchange:
    """send2dps.py; the simulated DPS answers when gate(workspace) lets it; receivedps.py."""
    send = run_script(workspace, "send2dps.py", "uploaded")
    answer = prepare_answer(workspace)
    writer = AnswerWriter(answer, gate(workspace))
    writer.start()
    receive = run_script(workspace, "receivedps.py", "reported")
    completed_at = writer.finished_at()
    return Exchange(workspace, send, receive, answer, completed_at, writer.phase_ok)


def after_delay(_: Workspace) -> Callable[[], bool]:
    def gate() -> bool:
        time.sleep(ANSWER_DELAY_SECONDS)
        return True

    return gate


def right_after_first_poll(workspace: Workspace) -> Callable[[], bool]:
    """Answer just after the receive's first look: the worst phase of the poll cycle."""
    return lambda: wait_for_log_text(workspace.folder("logs"), "receive_*.log", FIRST_POLL_TEXT,
                                     FIRST_POLL_TIMEOUT_SECONDS)


def wait_for_log_text(folder: Path, pattern: str, text: str, timeout: float) -> bool:
    """True once `text` is in a log file; False (and a warning) when it never comes, so a
    changed log line costs the phase, not the run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in folder.glob(pattern):
            if text in path.read_text(encoding="utf-8", errors="replace"):
                return True
        time.sleep(0.02)
    log.warning("%s/%s: %r not logged within %g s; answering anyway (phase unknown)", folder,
                pattern, text, timeout)
    return False


# ---------------------------------------------------------------------------
# Floors: specs built here, run by a fresh worker process
# ---------------------------------------------------------------------------


@dataclass
class FloorResult:
    steps: dict[str, float]           # step -> floor seconds
    references: dict[str, float]      # e.g. workbook (XlsxWriter) seconds, not in totals
    startup: float                    # spawn -> main(), imports, and interpreter exit
    measured: Measured

    @property
    def total(self) -> float:
        return self.startup + sum(self.steps.values())


def sftp_command(server: Any, batch: Path, verbose: bool = False) -> list[str]:
    """OpenSSH sftp with the product's key and pinned host key, and no user ssh config."""
    return [SFTP, "-v" if verbose else "-q", "-F", "/dev/null", "-b", str(batch),
            "-i", str(server.client_key), "-P", str(server.port),
            "-o", f"UserKnownHostsFile={server.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            f"{server.username}@{server.host}"]


def write_batch(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def save_cells(path: Path, data: Any) -> str:
    """Cell values as JSON for the floor worker; dates and times tagged so they come back."""
    def tagged(value: Any) -> Any:
        if isinstance(value, dt.datetime):
            return {"__datetime__": value.isoformat()}
        if isinstance(value, dt.date):
            return {"__date__": value.isoformat()}
        raise TypeError(type(value).__name__)

    path.write_text(json.dumps(data, default=tagged), encoding="utf-8")
    return str(path)


def workbook_cells(path: Path) -> list[tuple[str, list[list[Any]]]]:
    """Every sheet's cell values, as the pipeline wrote them (dates back to dates)."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    try:
        return [(sheet.title, [[_plain_cell(v) for v in row]
                               for row in sheet.iter_rows(values_only=True)])
                for sheet in workbook.worksheets]
    finally:
        workbook.close()


def _plain_cell(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.time() == dt.time(0):
        return value.date()
    return value


def text_cells(path: Path, delimiter: str, line_end: str) -> list[list[str]]:
    lines = path.read_bytes().decode("ascii").split(line_end)
    if lines and lines[-1] == "":
        lines.pop()
    return [line.split(delimiter) for line in lines]


def sql_op(step: str, url: str, queries: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
    return {"step": step, "kind": "sql", "url": url,
            "queries": [{"file": str(REPO / "sql" / f"{name}.sql"), "params": params}
                        for name, params in queries]}


def workbook_ops(step: str, books: list[Path], scratch: Path
                 ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The openpyxl floor and the XlsxWriter reference for the cells of the pipeline's
    workbooks."""
    cells = [{"path": str(scratch / f"{book.name}.openpyxl.xlsx"),
              "reference_path": str(scratch / f"{book.name}.xlsxwriter.xlsx"),
              "sheets": workbook_cells(book)} for book in books]
    data = save_cells(scratch / f"{step}.cells.json", cells)
    return ({"step": step, "kind": "openpyxl", "data": data},
            {"step": step, "kind": "xlsxwriter", "data": data})


def sftp_op(step: str, server: Any, batch: Path, lines: list[str]) -> dict[str, Any]:
    return {"step": step, "kind": "command",
            "command": sftp_command(server, write_batch(batch, lines))}


def copy_op(step: str, sources: list[Path], target_dir: Path) -> dict[str, Any]:
    target_dir.mkdir(parents=True, exist_ok=True)
    return {"step": step, "kind": "copy",
            "files": [[str(p), str(target_dir / p.name)] for p in sources]}


def send_floor_spec(exchange: Exchange, scratch: Path, server: Any) -> dict[str, Any]:
    """The floor of every send step that has one, in the pipeline's order."""
    import util

    workspace = exchange.workspace
    config = util.load_config(workspace.config_path)
    period = util.parse_period(exchange.send.manifest["period"])
    file_config = config.dps_file
    # the send's files as archived (a send leaves nothing in its outbox; the archive is plain)
    roles = {role: Path(path) for role, path in exchange.send.manifest["archived_roles"].items()}
    text_path, export_path = roles["dps_text"], roles["export"]
    texts = [{"path": str(scratch / file_config.send_name), "delimiter": file_config.delimiter,
              "line_end": file_config.line_ending,
              "rows": text_cells(text_path, file_config.delimiter,
                                 file_config.line_ending)}]
    texts += [{"path": str(scratch / f"{role}.csv"), "delimiter": ",", "line_end": "\n",
               "rows": text_cells(roles[role], ",", "\n")}
              for role in ("excluded_index", "sent_index")]
    written = [roles[role] for role in ("dps_text", "export", "sent_index", "excluded_index")]
    workbook, reference = workbook_ops("workbook", [export_path], scratch)
    remote = f"{workspace.prefix}/FLOOR_UP"
    return {"ops": [
        sql_op("query", config.database.url, [("send_children", {
            "period_start": period.start.isoformat(),
            "period_end_next": (period.end + dt.timedelta(days=1)).isoformat()})]),
        {"step": "text_file", "kind": "text",
         "data": save_cells(scratch / "text_file.json", texts)},
        workbook,
        sftp_op("upload", server, scratch / "upload.batch",
                [f'-mkdir "{remote}"', f'put "{text_path}" "{remote}/{file_config.send_name}"']),
        copy_op("archive", written, scratch / "archive"),
    ], "references": [reference]}


def receive_floor_spec(exchange: Exchange, scratch: Path, server: Any) -> dict[str, Any]:
    """The floor of every receive step that has one, in the pipeline's order."""
    import util

    workspace = exchange.workspace
    config = util.load_config(workspace.config_path)
    manifest = exchange.receive.manifest
    from exchange.rules import Rules

    period = util.parse_period(manifest["period"])
    from_date, to_date = Rules.from_config(config).fetch_range(
        period.start, period.end, dt.date.fromisoformat(manifest["run_date"]))
    names = [config.dps_file.results_name, config.dps_file.counts_name]
    answer = {names[0]: exchange.answer.results, names[1]: exchange.answer.counts}
    remote_dir = f"{workspace.prefix}/FLOOR_FETCH"
    (server.root / remote_dir).mkdir(parents=True)
    local_answer = scratch / "answer"
    local_answer.mkdir()
    for name, data in answer.items():
        (server.root / remote_dir / name).write_bytes(data)
        (local_answer / name).write_bytes(data)
    remote = [f"{remote_dir}/{name}" for name in names]
    fetched = scratch / "fetch"
    fetched.mkdir()
    reports = sorted(workspace.folder("share").glob("*.xlsx"))
    workbook, reference = workbook_ops("reports", reports, scratch)
    return {"ops": [
        sftp_op("fetch", server, scratch / "fetch.batch",
                [f'get "{path}" "{fetched / name}"' for path, name in zip(remote, names,
                                                                          strict=True)]),
        sql_op("sources", config.database.url, [
            ("sa_98", {"from_date": from_date.isoformat(),
                       "to_date_next": (to_date + dt.timedelta(days=1)).isoformat()}),
            ("county_region", {}),
            *([(config.database.caseworker_query, {"run_date": manifest["run_date"]})]
              if config.database.caseworker_query else [])]),
        workbook,
        copy_op("archive", [local_answer / name for name in names], scratch / "archive"),
        copy_op("deliver", reports, scratch / "deliver"),
        sftp_op("remote_cleanup", server, scratch / "cleanup.batch",
                [f'rename "{path}" "{path}.floor"' for path in remote]),
    ], "references": [reference]}


def run_floor_worker(spec: dict[str, Any], scratch: Path, name: str) -> FloorResult:
    spec_path = scratch / f"{name}.spec.json"
    result_path = scratch / f"{name}.result.json"
    spec["result"] = str(result_path)
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    command = [sys.executable, str(Path(__file__).resolve()), "--floor-worker", str(spec_path)]
    measured = run_measured(command, scratch, scratch / f"{name}.out")
    if measured.code != 0:
        raise BenchError(f"floor worker {name} exited {measured.code}:\n{tail(measured.output)}")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    startup = max(0.0, result["entered_at"] - measured.spawned_at) + result["imports"]
    exited_at = measured.spawned_at + measured.wall
    teardown = max(0.0, exited_at - result["exiting_at"])
    return FloorResult(result["steps"], result["references"], startup + teardown, measured)


def measure_floors(exchange: Exchange, work: Path, server: Any, name: str
                   ) -> tuple[FloorResult, FloorResult]:
    scratch_send = work / f"{name}_floor_send"
    scratch_receive = work / f"{name}_floor_receive"
    scratch_send.mkdir()
    scratch_receive.mkdir()
    started = time.perf_counter()
    send_spec = send_floor_spec(exchange, scratch_send, server)
    receive_spec = receive_floor_spec(exchange, scratch_receive, server)
    log.debug("floors of %s: cells read back in %.1f s", name, time.perf_counter() - started)
    send = run_floor_worker(send_spec, scratch_send, "send")
    receive = run_floor_worker(receive_spec, scratch_receive, "receive")
    return send, receive


# ---------------------------------------------------------------------------
# The floor worker (a separate process: python bench/benchmark.py --floor-worker SPEC)
# ---------------------------------------------------------------------------


def floor_worker_main(spec_path: Path, entered_at: float) -> int:
    """Import the libraries (timed: they count in the floor's start-up row), load every op's
    data (untimed), then time each op on its own."""
    started = time.perf_counter()
    import_floor_libraries()
    imports = time.perf_counter() - started
    spec = json.loads(spec_path.read_text(encoding="utf-8"))
    loaded = {op["data"]: _load_cells(op["data"])
              for op in spec["ops"] + spec["references"] if "data" in op}
    steps = {op["step"]: _timed(op, loaded) for op in spec["ops"]}
    references = {op["step"]: _timed(op, loaded) for op in spec["references"]}
    loaded.clear()   # the inputs are the benchmark's, not the work's: freed untimed
    gc.collect()
    Path(spec["result"]).write_text(json.dumps({
        "steps": steps, "references": references, "entered_at": entered_at,
        "imports": imports, "exiting_at": time.time()}), encoding="utf-8")
    return 0


def import_floor_libraries() -> None:
    """What the scripts import too: pandas, SQLAlchemy, openpyxl (paramiko's counterpart, the
    sftp binary, is started inside its op)."""
    import openpyxl
    import pandas
    import sqlalchemy

    del openpyxl, pandas, sqlalchemy


def _load_cells(path: str) -> Any:
    def untagged(value: dict[str, Any]) -> Any:
        if "__datetime__" in value:
            return dt.datetime.fromisoformat(value["__datetime__"])
        if "__date__" in value:
            return dt.date.fromisoformat(value["__date__"])
        return value

    return json.loads(Path(path).read_text(encoding="utf-8"), object_hook=untagged)


def _timed(op: dict[str, Any], loaded: dict[str, Any]) -> float:
    runner = {"sql": _floor_sql, "text": _floor_text, "openpyxl": _floor_openpyxl,
              "xlsxwriter": _floor_xlsxwriter, "command": _floor_command,
              "copy": _floor_copy}[op["kind"]]
    started = time.perf_counter()
    runner(op, loaded.get(op.get("data", "")))
    return time.perf_counter() - started


def _floor_sql(op: dict[str, Any], _: Any) -> None:
    """The same SQL files with the same binds, through SQLAlchemy into pandas."""
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(op["url"])
    try:
        with engine.connect() as connection:
            for query in op["queries"]:
                text = Path(query["file"]).read_text(encoding="utf-8")
                sql = "\n".join(line for line in text.splitlines()
                                if not line.lstrip().startswith("--")).strip().rstrip(";")
                pd.read_sql_query(sqlalchemy.text(sql), connection, params=query["params"])
    finally:
        engine.dispose()


def _floor_text(_: dict[str, Any], files: list[dict[str, Any]]) -> None:
    """The same cells joined into the same bytes, written and fsynced."""
    for file in files:
        line_end, delimiter = file["line_end"], file["delimiter"]
        data = (line_end.join(delimiter.join(row) for row in file["rows"]) + line_end)
        with open(file["path"], "wb") as handle:
            handle.write(data.encode("ascii"))
            handle.flush()
            os.fsync(handle.fileno())


def _floor_openpyxl(_: dict[str, Any], books: list[dict[str, Any]]) -> None:
    """openpyxl's fastest mode: write-only, no styles, no widths, no filters."""
    from openpyxl import Workbook

    for book in books:
        workbook = Workbook(write_only=True)
        for title, rows in book["sheets"]:
            sheet = workbook.create_sheet(title)
            for row in rows:
                sheet.append(row)
        workbook.save(book["path"])


def _floor_xlsxwriter(_: dict[str, Any], books: list[dict[str, Any]]) -> None:
    """The reference line: XlsxWriter with constant_memory, row by row."""
    import xlsxwriter

    for book in books:
        workbook = xlsxwriter.Workbook(book["reference_path"], {
            "constant_memory": True, "default_date_format": "yyyy-mm-dd"})
        for title, rows in book["sheets"]:
            sheet = workbook.add_worksheet(title)
            for number, row in enumerate(rows):
                sheet.write_row(number, 0, row)
        workbook.close()


def _floor_command(op: dict[str, Any], _: Any) -> None:
    done = subprocess.run(op["command"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{op['command'][0]} exited {done.returncode}: {done.stderr.strip()}")


def _floor_copy(op: dict[str, Any], _: Any) -> None:
    """A plain copy, fsynced: the least a durable delivery or archive needs."""
    for source, target in op["files"]:
        shutil.copyfile(source, target)
        with open(target, "rb+") as handle:
            os.fsync(handle.fileno())


# ---------------------------------------------------------------------------
# Per scale: databases, exchanges and floors
# ---------------------------------------------------------------------------


@dataclass
class Sample:
    """One exchange with its floors."""

    exchange: Exchange
    send_floor: FloorResult
    receive_floor: FloorResult


@dataclass
class ScaleRun:
    scale: float
    db_counts: dict[str, int]
    db_build_seconds: float
    db_path: Path
    samples: list[Sample] = field(default_factory=list)


def build_database(work: Path, scale: float) -> tuple[Path, dict[str, int], float]:
    from demo.build_demo_db import build_demo_database

    path = work / f"impact_scale{scale_label(scale)}.sqlite"
    started = time.perf_counter()
    counts = build_demo_database(path, scale=scale)
    seconds = time.perf_counter() - started
    log.info("scale %s: demo database built in %.1f s %s", scale_label(scale), seconds, counts)
    return path, counts, seconds


def run_scale(work: Path, scale: float, repeats: int, servers: Servers,
              processes: int | None = None) -> ScaleRun:
    db_path, counts, seconds = build_database(work, scale)
    run = ScaleRun(scale, counts, seconds, db_path)
    for repeat in range(1, repeats + 1):
        name = f"s{scale_label(scale).replace('.', '_')}_r{repeat}"
        workspace = make_workspace(work, name, db_path, servers, processes=processes)
        exchange = run_exchange(workspace, after_delay)
        send_floor, receive_floor = measure_floors(exchange, work, servers.sftp, name)
        run.samples.append(Sample(exchange, send_floor, receive_floor))
        log.info("scale %s run %d/%d: send %.1f s (floor %.1f s), receive %.1f s "
                 "(floor %.1f s)", scale_label(scale), repeat, repeats,
                 side_total(exchange.send), send_floor.total, side_total(exchange.receive),
                 receive_floor.total)
    return run


def side_total(run: ScriptRun) -> float:
    """A script's wall time, its waiting excluded."""
    steps = run.steps
    return run.measured.wall - sum(steps.get(name, 0.0) for name in EXCLUDED_STEPS)


# ---------------------------------------------------------------------------
# SFTP throughput: paramiko (the product's code) against OpenSSH sftp
# ---------------------------------------------------------------------------


def make_big_file(path: Path, mib: int) -> Path:
    with open(path, "wb") as handle:
        for _ in range(mib):
            handle.write(os.urandom(MIB))
    return path


def cpu_seconds() -> float:
    """User + system CPU of this process (all threads) and of its waited-for children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@contextmanager
def stopwatch(times: dict[str, list[float]], cpu: dict[str, list[float]], key: str
              ) -> Iterator[None]:
    """Wall and client CPU seconds of one transfer (sftp's ssh child included)."""
    os.sync()   # start each transfer with no dirty pages left by the one before
    started, cpu_started = time.perf_counter(), cpu_seconds()
    yield
    times[key].append(time.perf_counter() - started)
    cpu[key].append(cpu_seconds() - cpu_started)


def openssh_transfer(server: Any, batch: Path, line: str) -> None:
    done = subprocess.run(sftp_command(server, write_batch(batch, [line])), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"sftp {line}: exit {done.returncode}: {done.stderr.strip()}")


def openssh_cipher(server: Any, batch: Path) -> str:
    done = subprocess.run(sftp_command(server, write_batch(batch, ["pwd"]), verbose=True),
                          capture_output=True, text=True, check=False)
    for line in done.stderr.splitlines():
        if "kex: client->server cipher:" in line:
            return line.split("cipher:", 1)[1].split()[0]
    return "unknown"


def measure_sftp(work: Path, servers: Servers, db_path: Path, mib: int, repeats: int
                 ) -> dict[str, Any]:
    """Median seconds of a connect + transfer of `mib` MiB, both directions, both clients.

    paramiko goes through util.connect_sftp and SftpSession.upload/download, exactly what the
    scripts run (.part + rename + size check; download with the configured prefetch and
    fsync); the raw paramiko put and getfo (prefetch uncapped, paramiko's default) are for
    reference."""
    import util

    workspace = make_workspace(work, "sftp", db_path, servers)
    config = util.load_config(workspace.config_path).sftp
    server = servers.sftp
    local = workspace.root / "local"
    local.mkdir()
    big = make_big_file(local / "big.bin", mib)
    remote_dir = f"{workspace.prefix}/big"
    (server.root / remote_dir).mkdir(parents=True)
    keys = ("openssh_up", "paramiko_up", "paramiko_raw_up",
            "openssh_down", "paramiko_down", "paramiko_raw_down")
    times: dict[str, list[float]] = {key: [] for key in keys}
    cpu: dict[str, list[float]] = {key: [] for key in keys}
    batch = workspace.root / "sftp.batch"
    paramiko_cipher = ""
    for repeat in range(repeats):
        with stopwatch(times, cpu, "openssh_up"):
            openssh_transfer(server, batch, f'put "{big}" "{remote_dir}/openssh.bin"')
        with stopwatch(times, cpu, "paramiko_up"), util.connect_sftp(config) as session:
            session.upload(big, remote_dir, "paramiko.bin")
            paramiko_cipher = session.client.get_transport().local_cipher
        with stopwatch(times, cpu, "paramiko_raw_up"), util.connect_sftp(config) as session:
            session.sftp.put(str(big), f"{remote_dir}/raw.bin", confirm=True)
        with stopwatch(times, cpu, "openssh_down"):
            openssh_transfer(server, batch, f'get "{remote_dir}/openssh.bin" "{local}/o.bin"')
        with stopwatch(times, cpu, "paramiko_down"), util.connect_sftp(config) as session:
            remote = session.stat_file(f"{remote_dir}/paramiko.bin")
            session.download(remote, local / "p", config.download_prefetch,
                             config.max_concurrent_prefetch_requests)
        with stopwatch(times, cpu, "paramiko_raw_down"), util.connect_sftp(config) as session, \
                open(local / "raw.bin", "wb") as handle:
            session.sftp.getfo(f"{remote_dir}/raw.bin", handle, prefetch=True)
        for leftover in (local / "o.bin", local / "p" / "paramiko.bin", local / "raw.bin"):
            leftover.unlink(missing_ok=True)
        log.info("sftp %d MiB run %d/%d: %s", mib, repeat + 1, repeats,
                 ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    medians = {key: statistics.median(values) for key, values in times.items()}
    return {"mib": mib, "repeats": repeats, "seconds": medians, "runs": times,
            "client_cpu_seconds": {key: statistics.median(values) for key, values in cpu.items()},
            "mib_per_s": {key: mib / value for key, value in medians.items()},
            "ratio_up": medians["openssh_up"] / medians["paramiko_up"],
            "ratio_down": medians["openssh_down"] / medians["paramiko_down"],
            "cipher": {"paramiko": paramiko_cipher,
                       "openssh": openssh_cipher(server, batch)},
            "download_prefetch": config.download_prefetch,
            "max_concurrent_prefetch_requests": config.max_concurrent_prefetch_requests}


# ---------------------------------------------------------------------------
# Time-to-report at the default poll interval
# ---------------------------------------------------------------------------


def default_poll_settle() -> tuple[float, float]:
    """The product's default poll and settle seconds (exchange.config.ReceiveSettings)."""
    from exchange.config import ReceiveSettings

    defaults = ReceiveSettings()
    return defaults.poll_seconds, defaults.settle_seconds


def measure_time_to_report(work: Path, servers: Servers, db_path: Path, scale: float
                           ) -> dict[str, Any]:
    """DPS's answer completes just after the receive's first look (the worst phase of the
    poll cycle); measured until the last report is on the share (its mtime)."""

    poll, settle = default_poll_settle()
    workspace = make_workspace(work, "ttr", db_path, servers, poll=poll, settle=settle)
    log.info("time-to-report: poll %g s, settle %g s (the product's defaults); about %g s",
             poll, settle, poll + settle)
    exchange = run_exchange(workspace, right_after_first_poll)
    reports = list(workspace.folder("share").glob("*.xlsx"))
    on_share = max(p.stat().st_mtime for p in reports)
    seconds = on_share - exchange.answer_complete_at
    steps = exchange.receive.steps
    processing = sum(v for k, v in steps.items() if k in REPORT_PATH_STEPS)
    log.info("time-to-report: %.1f s (processing after the wait %.1f s)", seconds, processing)
    phase = "answer complete just after the first look (worst case)" \
        if exchange.answer_phase_ok else "phase unknown (the first look was not seen in the log)"
    return {"scale": scale, "seconds": seconds, "poll_seconds": poll, "settle_seconds": settle,
            "phase": phase,
            "wait_step_seconds": steps.get("wait", 0.0),
            "processing_seconds": processing, "reports": len(reports)}


# ---------------------------------------------------------------------------
# An oversized answer: the receive's wall time and peak memory
# ---------------------------------------------------------------------------


def prepare_big_answer(workspace: Workspace, mib: int, in_period: float) -> PreparedAnswer:
    """The simulator's answer to our upload, grown to `mib` MiB with more records of the same
    children (the share `in_period` of them dated in the period) and NCIC-width padded fields
    (demo.dps_simulator.oversized_answer); untimed."""
    import util
    from demo import dps_simulator as sim

    config = util.load_config(workspace.config_path)
    settings = sim.SimulatorSettings(delay_seconds=0, chunk_lines=20000, chunk_pause_seconds=0,
                                     poll_seconds=0.1)
    upload = util.join_remote(config.sftp.upload_folder, config.dps_file.send_name)
    sent = sim.wait_for_upload(config, upload, 30, settings)
    period = util.parse_period(only_manifest(workspace, "send")["period"])
    answer = sim.oversized_answer(sent, workspace.db_path, settings, dt.date.fromisoformat(AS_OF),
                                  config.dps_file, mib * MIB, (period.start, period.end),
                                  in_period)
    return PreparedAnswer(config, settings, answer.results, answer.counts)


def measure_big_answer(work: Path, servers: Servers, db_path: Path, scale: float, mib: int,
                       in_period: float = BIG_ANSWER_IN_PERIOD) -> dict[str, Any]:
    """send2dps.py, then receivedps.py on a `mib` MiB answer from the simulated DPS: wall time
    and peak memory (wait4) of the receive, its steps, and how many rows the reports got."""
    workspace = make_workspace(work, "big_answer", db_path, servers)
    run_script(workspace, "send2dps.py", "uploaded")
    started = time.perf_counter()
    answer = prepare_big_answer(workspace, mib, in_period)
    log.info("big answer: %.1f MiB, %d lines, built in %.1f s", len(answer.results) / MIB,
             answer.results.count(b"\n") - 1, time.perf_counter() - started)
    writer = AnswerWriter(answer, after_delay(workspace))
    writer.start()
    receive = run_script(workspace, "receivedps.py", "reported")
    writer.finished_at()
    manifest = receive.manifest
    steps = receive.steps
    result = {"scale": scale, "mib": len(answer.results) / MIB, "in_period_share": in_period,
              "results_lines": manifest.get("results_lines"),
              "summary": manifest.get("summary"), "exceptions": manifest.get("exceptions"),
              "wall": receive.measured.wall, "wait": steps.get("wait", 0.0),
              "total": side_total(receive), "peak_rss": receive.measured.peak_rss,
              "steps": steps}
    log.info("big answer: receive %.1f s (%.1f s waiting), peak %.0f MiB", result["wall"],
             result["wait"], result["peak_rss"] / MIB)
    return result


# ---------------------------------------------------------------------------
# Profiles (untimed, on request): where the time of a step goes
# ---------------------------------------------------------------------------


def profile_scripts(scale_runs: list[ScaleRun], folder: Path) -> None:
    """pyinstrument over a dry-run send and a forced dry-run receive (from the archived
    answer, so no waiting) of each scale's last exchange."""
    folder.mkdir(parents=True, exist_ok=True)
    for run in scale_runs:
        workspace = run.samples[-1].exchange.workspace
        label = scale_label(run.scale)
        for script, extra in (("send2dps.py", ["--dry-run"]),
                              ("receivedps.py", ["--dry-run", "--force"])):
            report = folder / f"{script.split('.')[0]}_scale{label}.txt"
            command = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(report),
                       str(REPO / script), "--config", str(workspace.config_path),
                       "--as-of", AS_OF, *extra]
            measured = run_measured(command, workspace.root, workspace.root / "profile.out")
            if measured.code != 0:
                raise BenchError(f"profiling {script} exited {measured.code}:\n"
                                 f"{tail(measured.output)}")
            log.info("profile of %s at scale %s: %s", script, label, report)


# ---------------------------------------------------------------------------
# Summaries: medians, ratios, targets
# ---------------------------------------------------------------------------


def ordered_steps(names: set[str], order: tuple[str, ...]) -> list[str]:
    return [n for n in order if n in names] + sorted(names - set(order))


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def ratio(pipeline: float | None, floor: float | None) -> float | None:
    if pipeline is None or not floor:
        return None
    return pipeline / floor


def summarize_side(runs: list[ScriptRun], floors: list[FloorResult], order: tuple[str, ...]
                   ) -> dict[str, Any]:
    """Per step: median pipeline and floor seconds. Totals: the script's wall time minus its
    waiting, over the floor worker's startup plus every floor; steps without a floor count in
    the pipeline total only."""
    names = set().union(*(r.steps for r in runs))
    rows = []
    for name in ordered_steps(names, order):
        pipeline = median_or_none([r.steps[name] for r in runs if name in r.steps])
        floor = median_or_none([f.steps[name] for f in floors if name in f.steps])
        rows.append({"step": name, "pipeline": pipeline, "floor": floor,
                     "ratio": ratio(pipeline, floor), "excluded": name in EXCLUDED_STEPS})
    startup = median_or_none([r.measured.wall - sum(r.steps.values()) for r in runs])
    floor_startup = median_or_none([f.startup for f in floors])
    rows.append({"step": STARTUP_ROW, "pipeline": startup, "floor": floor_startup,
                 "ratio": ratio(startup, floor_startup), "excluded": False})
    total = statistics.median([side_total(r) for r in runs])
    floor_total = statistics.median([f.total for f in floors])
    references = {name: median_or_none([f.references[name] for f in floors])
                  for name in floors[0].references}
    return {"rows": rows, "total": total, "floor_total": floor_total,
            "ratio": total / floor_total, "references": references,
            "peak_rss": max(r.measured.peak_rss for r in runs),
            "floor_peak_rss": max(f.measured.peak_rss for f in floors),
            "runs": [{"wall": r.measured.wall, "steps": r.steps, "peak_rss": r.measured.peak_rss,
                      "floor_steps": f.steps, "floor_startup": f.startup,
                      "floor_references": f.references}
                     for r, f in zip(runs, floors, strict=True)]}


def summarize_scale(run: ScaleRun) -> dict[str, Any]:
    exchanges = [s.exchange for s in run.samples]
    first = exchanges[0]
    return {
        "scale": run.scale, "repeats": len(run.samples),
        "database": {"counts": run.db_counts, "build_seconds": run.db_build_seconds},
        "rows": {"removal_rows": first.send.manifest.get("rows_queried"),
                 "children_sent": first.send.manifest.get("rows_sent"),
                 "dps_result_lines": first.receive.manifest.get("results_lines"),
                 "sa98_episodes": first.receive.manifest.get("episodes")},
        "send": summarize_side([e.send for e in exchanges], [s.send_floor for s in run.samples],
                               SEND_ORDER),
        "receive": summarize_side([e.receive for e in exchanges],
                                  [s.receive_floor for s in run.samples], RECEIVE_ORDER),
    }


def target(name: str, value: float | None, limit: float, unit: str, higher_is_better: bool
           ) -> dict[str, Any]:
    met = None if value is None else (value >= limit if higher_is_better else value <= limit)
    return {"target": name, "value": value, "limit": limit, "unit": unit,
            "direction": ">=" if higher_is_better else "<=", "met": met}


def evaluate_targets(scales: dict[str, dict[str, Any]], sftp: dict[str, Any] | None,
                     ttr: dict[str, Any] | None, big: dict[str, Any] | None = None
                     ) -> list[dict[str, Any]]:
    targets = []
    for label, summary in scales.items():
        for side in ("send", "receive"):
            targets.append(target(f"{side} pipeline / floor, scale {label}",
                                  summary[side]["ratio"], RATIO_TARGET, "x", False))
    for label, summary in scales.items():
        if summary["scale"] >= MEMORY_TARGET_FROM_SCALE:
            for side in ("send", "receive"):
                targets.append(target(f"{side} peak memory, scale {label}",
                                      summary[side]["peak_rss"] / MIB, MEMORY_TARGET / MIB,
                                      "MiB", False))
    if big:
        targets.append(target(f"receive peak memory, {big['mib']:.0f} MiB answer",
                              big["peak_rss"] / MIB, MEMORY_TARGET / MIB, "MiB", False))
    targets.extend(scaling_targets(scales))
    if sftp:
        targets.append(target("paramiko / OpenSSH throughput, upload", sftp["ratio_up"],
                              SFTP_TARGET, "x", True))
        targets.append(target("paramiko / OpenSSH throughput, download", sftp["ratio_down"],
                              SFTP_TARGET, "x", True))
    if ttr:
        targets.append(target(f"time-to-report, poll {ttr['poll_seconds']:g} s / settle "
                              f"{ttr['settle_seconds']:g} s", ttr["seconds"], TTR_TARGET,
                              "s", False))
    return targets


def scaling_targets(scales: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """time(largest scale) <= 1.2 x (largest / smallest) x time(smallest scale)."""
    if len(scales) < 2:
        return []
    ordered = sorted(scales.values(), key=lambda s: s["scale"])
    small, large = ordered[0], ordered[-1]
    factor = large["scale"] / small["scale"]
    out = []
    for side in ("send", "receive"):
        value = large[side]["total"] / small[side]["total"]
        out.append(target(f"{side} time, scale {scale_label(large['scale'])} / scale "
                          f"{scale_label(small['scale'])}", value, SCALING_SLACK * factor,
                          "x", False))
    return out


# ---------------------------------------------------------------------------
# Rendering: the markdown table
# ---------------------------------------------------------------------------


def fmt_seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def fmt_met(met: bool | None) -> str:
    return "—" if met is None else ("yes" if met else "**no**")


def step_table(label: str, summary: dict[str, Any]) -> list[str]:
    lines = [f"### Scale {label}: {_scale_caption(summary)}", "",
             "| step | pipeline s | floor s | ratio | target | met? |",
             "|---|---:|---:|---:|---|---|"]
    for side in ("send", "receive"):
        part = summary[side]
        for row in part["rows"]:
            note = "excluded (waiting)" if row["excluded"] else ("" if row["floor"] is not None
                                                                 else "no floor")
            lines.append(f"| {side}: {row['step']} | {fmt_seconds(row['pipeline'])} | "
                         f"{fmt_seconds(row['floor'])} | {fmt_ratio(row['ratio'])} | {note} | |")
        for name, seconds in part["references"].items():
            lines.append(f"| {side}: {name}, XlsxWriter constant_memory (reference) | | "
                         f"{fmt_seconds(seconds)} | | not in totals | |")
        met = part["ratio"] <= RATIO_TARGET
        lines.append(f"| **{side} total, waiting excluded** | **{part['total']:.2f}** | "
                     f"**{part['floor_total']:.2f}** | **{part['ratio']:.2f}** | "
                     f"≤ {RATIO_TARGET:g} | {fmt_met(met)} |")
        lines.append(f"| {side}: peak memory (MiB) | {part['peak_rss'] / MIB:.0f} | "
                     f"{part['floor_peak_rss'] / MIB:.0f} | | | |")
    return lines


def _scale_caption(summary: dict[str, Any]) -> str:
    counts = summary["database"]["counts"]
    rows = summary["rows"]
    return (f"{counts.get('person', 0):,} persons, {counts.get('runaway_episode', 0):,} "
            f"episodes in the database; {rows['children_sent'] or 0:,} children sent, "
            f"{rows['dps_result_lines'] or 0:,} DPS result lines, {rows['sa98_episodes'] or 0:,} "
            f"sa_98 episodes; median of {summary['repeats']} run(s)")


def sftp_table(sftp: dict[str, Any]) -> list[str]:
    labels = {"openssh_up": "OpenSSH sftp -b put", "paramiko_up": "paramiko, SftpSession.upload",
              "paramiko_raw_up": "paramiko, raw put (reference)",
              "openssh_down": "OpenSSH sftp -b get",
              "paramiko_down": "paramiko, SftpSession.download (prefetch, fsync)",
              "paramiko_raw_down": "paramiko, raw getfo, prefetch uncapped (reference)"}
    lines = [f"### SFTP, {sftp['mib']} MiB, connect included, median of {sftp['repeats']} "
             f"(cipher: paramiko {sftp['cipher']['paramiko']}, OpenSSH "
             f"{sftp['cipher']['openssh']})", "",
             "| transfer | s | MiB/s | client CPU s |", "|---|---:|---:|---:|"]
    for key, label in labels.items():
        lines.append(f"| {label} | {sftp['seconds'][key]:.2f} | {sftp['mib_per_s'][key]:.0f} | "
                     f"{sftp['client_cpu_seconds'][key]:.2f} |")
    lines += ["", f"paramiko ÷ OpenSSH throughput: upload {sftp['ratio_up']:.2f}, download "
                  f"{sftp['ratio_down']:.2f} (download_prefetch "
                  f"{sftp['download_prefetch']}, max_concurrent_prefetch_requests "
                  f"{sftp['max_concurrent_prefetch_requests']})."]
    return lines


def targets_table(targets: list[dict[str, Any]]) -> list[str]:
    lines = ["### Targets", "", "| target | value | limit | met? |", "|---|---:|---:|---|"]
    for item in targets:
        value = "—" if item["value"] is None else f"{item['value']:.2f} {item['unit']}"
        lines.append(f"| {item['target']} | {value} | {item['direction']} {item['limit']:g} "
                     f"{item['unit']} | {fmt_met(item['met'])} |")
    return lines


def big_answer_table(big: dict[str, Any]) -> list[str]:
    met = big["peak_rss"] <= MEMORY_TARGET
    return [f"### An oversized answer: {big['mib']:.1f} MiB, {big['results_lines']:,} result "
            f"lines, {big['in_period_share']:.0%} of the added records in the period (scale "
            f"{scale_label(big['scale'])}; {big['summary']}; {big['exceptions']:,} exceptions)",
            "",
            "| receivedps.py | value | target | met? |", "|---|---:|---|---|",
            f"| wall time, s (spawn to exit) | {big['wall']:.1f} | | |",
            f"| of which waiting for the answer, s | {big['wait']:.1f} | | |",
            f"| work, waiting excluded, s | {big['total']:.1f} | | |",
            *[f"| step {name}, s | {big['steps'][name]:.1f} | | |"
              for name in ordered_steps(set(big["steps"]), RECEIVE_ORDER) if name != "wait"],
            f"| **peak memory, MiB** (ru_maxrss) | **{big['peak_rss'] / MIB:.0f}** | "
            f"≤ {MEMORY_TARGET / MIB:.0f} | {fmt_met(met)} |"]


def ttr_lines(ttr: dict[str, Any]) -> list[str]:
    lines = [f"Time-to-report (scale {scale_label(ttr['scale'])}, poll {ttr['poll_seconds']:g} "
             f"s, settle {ttr['settle_seconds']:g} s, {ttr['phase']}): "
             f"**{ttr['seconds']:.1f} s**, of which {ttr['processing_seconds']:.1f} s is the "
             f"receive's work after the wait."]
    for label, bound in ttr.get("bounds", {}).items():
        lines.append(f"Worst case at scale {label}: poll + settle + the receive's work after "
                     f"the wait (median) = {bound:.1f} s.")
    return lines


def ttr_bounds(ttr: dict[str, Any], scales: dict[str, dict[str, Any]]) -> dict[str, float]:
    """poll + settle + the median work after the wait (up to delivery) at every scale."""
    bounds = {}
    for label, summary in scales.items():
        work = sum(row["pipeline"] or 0.0 for row in summary["receive"]["rows"]
                   if row["step"] in REPORT_PATH_STEPS)
        bounds[label] = ttr["poll_seconds"] + ttr["settle_seconds"] + work
    return bounds


def render_markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [f"## Benchmark ({results['mode']}, {results['seconds']:.0f} s, "
             f"{results['finished_at']})", "",
             f"Machine: {machine['nproc']} CPU ({machine['cpu_model']}), "
             f"{machine['ram_gib']} GiB RAM, {machine['os']}, Python {machine['python']}, "
             + ", ".join(f"{k} {v}" for k, v in machine["libraries"].items())
             + f", {machine['openssh']}", "",
             f"Receive: {results.get('processes', 1)} processes at a time (`run.processes`: "
             f"IMPACT's queries while the answer is checked, workbooks built side by side); "
             f"the floor does each piece in turn.", ""]
    for label, summary in results["scales"].items():
        lines += step_table(label, summary) + [""]
    if results.get("sftp"):
        lines += sftp_table(results["sftp"]) + [""]
    if results.get("time_to_report"):
        lines += ttr_lines(results["time_to_report"]) + [""]
    if results.get("big_answer"):
        lines += big_answer_table(results["big_answer"]) + [""]
    lines += targets_table(results["targets"]) + [""]
    lines.append("Totals: a script's wall time (process start to exit, its `wait` step "
                 "excluded) over the floor worker's start-up plus every floor; steps without "
                 "a floor (wrangle, checks, reconcile, mail) count in the pipeline total only.")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------


@contextmanager
def local_servers(work: Path) -> Iterator[Servers]:
    """A local OpenSSH sshd, and an SMTP server when aiosmtpd is installed."""
    from demo.local_sftp import find_free_port, start_local_sftp_server

    sftp = start_local_sftp_server(work / "sftp_root", work / "sftp_state", kind="openssh")
    controller = None
    mail_port = None
    try:
        try:
            from aiosmtpd.controller import Controller
            from aiosmtpd.handlers import Sink
        except ImportError:
            log.warning("aiosmtpd is not installed: the receive's mail step does not send")
        else:
            mail_port = find_free_port()
            controller = Controller(Sink(), hostname="127.0.0.1", port=mail_port)
            controller.start()
        yield Servers(sftp, mail_port)
    finally:
        if controller is not None:
            controller.stop()
        sftp.stop()


def run_benchmark(work: Path, options: Options) -> dict[str, Any]:
    scales: dict[str, dict[str, Any]] = {}
    with local_servers(work) as servers:
        scale_runs = []
        for scale in options.scales:
            scale_run = run_scale(work, scale, options.repeats_for(scale), servers,
                                  options.processes)
            scale_runs.append(scale_run)
            scales[scale_label(scale)] = summarize_scale(scale_run)
        smallest = scale_runs[0]
        sftp = measure_sftp(work, servers, smallest.db_path, options.sftp_mib,
                            options.sftp_repeats) if options.sftp else None
        ttr = measure_time_to_report(work, servers, smallest.db_path,
                                     smallest.scale) if options.ttr else None
        if ttr:
            ttr["bounds"] = ttr_bounds(ttr, scales)
        big = measure_big_answer(work, servers, smallest.db_path, smallest.scale,
                                 options.big_answer_mib, options.big_answer_in_period) \
            if options.big_answer_mib else None
        if options.profile:
            profile_scripts(scale_runs, options.profile)
    return {"scales": scales, "sftp": sftp, "time_to_report": ttr, "big_answer": big,
            "targets": evaluate_targets(scales, sftp, ttr, big),
            "processes": options.processes or shipped_processes()}


def shipped_processes() -> int:
    """run.processes as the shipped config sets it (the timed exchanges' default)."""
    from exchange.settings import RunSettings

    shipped = yaml.safe_load((REPO / "dps_config.yml").read_text(encoding="utf-8"))
    return int((shipped.get("run") or {}).get("processes", RunSettings.processes))


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s bench %(levelname)s %(name)s: %(message)s")
    for noisy in ("paramiko", "util", "demo.dps_simulator", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


def put_repo_on_path() -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    log.info("wrote %s", path)


def main(argv: list[str] | None = None) -> int:
    entered_at = time.time()
    args = build_parser().parse_args(argv)
    if args.floor_worker:
        return floor_worker_main(args.floor_worker, entered_at)
    configure_logging(args.verbose)
    put_repo_on_path()
    options = resolve_options(args)
    started = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="dps-bench-"))
    log.info("work folder %s; scales %s, %d repeat(s) (%d at scale >= %d)", work,
             ",".join(scale_label(s) for s in options.scales), options.repeats,
             options.large_repeats, MEMORY_TARGET_FROM_SCALE)
    try:
        results = run_benchmark(work, options)
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if options.keep:
            log.info("work folder kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results.update(mode="quick" if options.quick else "full", options=vars(options),
                   seconds=time.perf_counter() - started, machine=machine_info(),
                   finished_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    print(render_markdown(results))
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
