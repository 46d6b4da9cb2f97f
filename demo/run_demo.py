"""The whole workflow on the embedded defaults: demo database, local SFTP server, simulated DPS.

    bash demo/run_demo.sh                  # set up, then send -> DPS answers -> receive
    bash demo/run_demo.sh --break-totals   # DPS answers with control totals that disagree
    bash demo/run_demo.sh --serve          # ... and keep the stand-ins up for everyday commands
    bash demo/run_demo.sh --stop           # stop the stand-ins that --serve left running
    bash demo/run_demo.sh --quarters 4     # four exchanges, FY2024Q4 ... FY2025Q3, for the trend

It runs on a fixed date (--as-of, default 2025-06-20, so the period is FY2025Q3, the last
full quarter then) so its output is the same every day. With --quarters N it first runs the
exchange for the N - 1 quarters before, oldest first, each as of the date that makes it the
send's default period (2024-09-20 for FY2024Q4, 2024-12-20, 2025-03-20), so the reports'
quarter-over-quarter Trend shows N quarters; the last exchange is always the --as-of one.
Everything it writes stays under var/ in the repository; the scripts run exactly as cron would
run them, with dps_config.yml.
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import datetime as dt
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exchange.periods import Period

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
DEMO_DB = VAR / "impact_demo.sqlite"
SFTP_STATE = VAR / "demo_sftp"
SFTP_ROOT = SFTP_STATE / "root"
SIMULATOR_PID = SFTP_STATE / "dps_simulator.pid"
SIMULATOR_LOG = SFTP_STATE / "dps_simulator.log"
GRAPH_STATE = VAR / "demo_graph"          # the stand-in's CA and the app's certificate
GRAPH_ROOT = VAR / "sharepoint"           # the stand-in's document library, on disk
GRAPH_PID = GRAPH_STATE / "graph_standin.pid"
GRAPH_LOG = GRAPH_STATE / "graph_standin.log"
GRAPH_PORTS = (8443, 8444)                # graph host, login host (dps_config.yml's defaults)
DEFAULT_PORT = 2222
MAX_QUARTERS = 8   # the Trend sheet shows the last 8 recorded quarters
PERIOD_IN_NAME = re.compile(r"FY\d{4}_Q[1-4]")

log = logging.getLogger("demo")

EXIT_INTERRUPTED = 130   # 128 + SIGINT, as a shell reports Ctrl-C


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", default="2025-06-20", type=run_date_argument,
                        help="run date of the (last) exchange (default 2025-06-20)")
    parser.add_argument("--quarters", type=quarter_count, default=1, metavar="N",
                        help="run the exchange for N quarters in turn, oldest first, each as of "
                             "the date that makes it the send's default period; the last is "
                             "the --as-of one (e.g. 4: FY2024Q4, FY2025Q1, FY2025Q2, FY2025Q3), "
                             "so the reports' Trend sheet shows N quarters; 1 to "
                             f"{MAX_QUARTERS} (default 1; each adds about as long as one "
                             "exchange)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="size of the demo database (1 = about 50,000 children a year)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the demo database")
    parser.add_argument("--break-totals", action="store_true",
                        help="make the simulated DPS answer with wrong control totals")
    parser.add_argument("--delay", type=float, default=3.0,
                        help="seconds the simulated DPS takes to answer (default 3)")
    parser.add_argument("--kind", default="auto", choices=["auto", "openssh", "paramiko"],
                        help="local SFTP server: OpenSSH sshd when installed, else pure Python")
    parser.add_argument("--serve", action="store_true",
                        help="after the demo, keep the local SFTP server up and a simulated DPS "
                             "answering every new upload, so the README's everyday commands "
                             "work; stop them with --stop")
    parser.add_argument("--stop", action="store_true",
                        help="stop the stand-ins that --serve left running, and exit")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help="run the exchange with this copy of dps_config.yml (e.g. one with "
                             "archive.encrypt: true); default: the shipped one")
    parser.add_argument("--sharepoint-down", action="store_true",
                        help="stop only the SharePoint (Graph) stand-in that --serve left "
                             "running, to see a run serve the share and name SharePoint; exit")
    parser.add_argument("--sharepoint-up", action="store_true",
                        help="start the SharePoint (Graph) stand-in again on the config's "
                             "ports (DPS_SP_GRAPH_HOST / DPS_SP_LOGIN_HOST when set); exit")
    return parser


def run_date_argument(text: str) -> dt.date:
    """--as-of: a date like 2025-06-20."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a date like 2025-06-20") from None


def quarter_count(text: str) -> int:
    """--quarters: a whole number from 1 to MAX_QUARTERS."""
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_QUARTERS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_QUARTERS}")
    return count


def ensure_demo_database(scale: float, rebuild: bool) -> None:
    from demo.build_demo_db import build_demo_database

    if DEMO_DB.exists() and not rebuild:
        log.info("demo database: %s (kept; --rebuild to make it again)", DEMO_DB)
        return
    log.info("building the demo database at scale %g (once) ...", scale)
    counts = build_demo_database(DEMO_DB, scale=scale)
    log.info("demo database: %s %s", DEMO_DB, counts)


def ensure_archive_key() -> None:
    """The demo's archive key (dps_config.yml's archive.key_file), so that archive.encrypt:
    true is the one setting that turns encryption on."""
    from exchange.vault import new_key

    key = VAR / "demo_archive.key"
    if not key.exists():
        key.write_text(new_key() + "\n")
        key.chmod(0o600)


def port_is_free(port: int) -> bool:
    """Whether a server could listen on `port` now. SO_REUSEADDR, as sshd sets it: a port
    whose last connections are still closing (TIME_WAIT, up to a minute after a demo) is
    free to listen on."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def demo_environment(port: int) -> dict[str, str]:
    """What the scripts read through ${VAR} in dps_config.yml: the demo server's port, quick
    polling so the demo finishes in seconds."""
    env = dict(os.environ)
    env.update(DPS_SFTP_PORT=str(port), DPS_POLL_SECONDS="1", DPS_SETTLE_SECONDS="2")
    no_proxy = [part for part in env.get("NO_PROXY", "").split(",") if part]
    env["NO_PROXY"] = ",".join([*no_proxy, "127.0.0.1", "localhost"])   # the stand-ins are local
    return env


def run_script(command: list[str], env: dict[str, str]) -> int:
    log.info("$ %s", " ".join(command))
    return subprocess.run(command, env=env, cwd=REPO, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="demo: %(message)s")
    args = build_parser().parse_args(argv)
    from demo.local_sftp import start_local_sftp_server

    if args.stop:
        return stop_stand_ins()
    if args.sharepoint_down or args.sharepoint_up:
        return switch_sharepoint(up=args.sharepoint_up)
    os.umask(0o077)   # the demo's data stands for children's records: the owner's only
    ensure_demo_database(args.scale, args.rebuild)
    DEMO_DB.chmod(0o600)
    ensure_archive_key()
    for folder in (VAR, VAR / "share"):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    stop_simulator()
    stop_recorded_process(GRAPH_PID, b"graph_standin")
    wanted = int(os.environ.get("DPS_SFTP_PORT", DEFAULT_PORT))
    port = wanted if port_is_free(wanted) else None
    server = start_local_sftp_server(SFTP_ROOT, SFTP_STATE, port=port, kind=args.kind)
    log.info("local %s SFTP server on 127.0.0.1:%d serving %s (host key pinned in %s)",
             server.kind, server.port, SFTP_ROOT, server.known_hosts)
    env = demo_environment(server.port)
    graph = start_graph_standin_process(env, wanted_graph_ports(env))
    try:
        code = run_exchanges(args, env)
    except KeyboardInterrupt:
        args.serve = False
        code = EXIT_INTERRUPTED
    finally:
        if not args.serve:
            server.stop()
            stop_recorded_process(GRAPH_PID, b"graph_standin")
    if code == EXIT_INTERRUPTED:
        log.info("interrupted (Ctrl-C): the stand-ins are stopped; run the demo again to "
                 "start over")
        return code
    print_where_things_are(code)
    if args.serve:
        serve_stand_ins(env, server.port, wanted, graph, args.as_of)
    return code


def switch_sharepoint(up: bool) -> int:
    """Stop the Graph stand-in, or start it again detached (it keeps its certificates)."""
    stopped = stop_recorded_process(GRAPH_PID, b"graph_standin")
    if not up:
        if not stopped:
            log.info("SharePoint stand-in was not running; nothing to stop (it runs while the "
                     "demo runs, and after it with --serve)")
            return 0
        log.info("SharePoint stand-in stopped: a receive now serves the share and fails naming "
                 "sharepoint; bring it back with --sharepoint-up")
        return 0
    env = dict(os.environ)
    start_graph_standin_process(env, wanted_graph_ports(env))
    return 0


def wanted_graph_ports(env: dict[str, str]) -> tuple[int, int]:
    """The stand-in's ports: those of DPS_SP_GRAPH_HOST / DPS_SP_LOGIN_HOST when set (as
    dps_config.yml reads them), else the config's defaults."""
    names = ("DPS_SP_GRAPH_HOST", "DPS_SP_LOGIN_HOST")
    graph, login = (int(env.get(name, f"127.0.0.1:{port}").rsplit(":", 1)[1])
                    for name, port in zip(names, GRAPH_PORTS, strict=True))
    return graph, login


def start_graph_standin_process(env: dict[str, str], wanted: tuple[int, int] = GRAPH_PORTS
                                ) -> subprocess.Popen:
    """The Graph stand-in (demo/graph_standin.py) as its own process, on the config's ports
    when they are free; env gets the hosts it listens on. It changes Office files it stores,
    as SharePoint does."""
    ports = wanted if all(port_is_free(p) for p in wanted) else (0, 0)
    GRAPH_STATE.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "demo.graph_standin", "--root", str(GRAPH_ROOT),
               "--state-dir", str(GRAPH_STATE), "--graph-port", str(ports[0]),
               "--login-port", str(ports[1]), "--enrich-office"]
    with open(GRAPH_LOG, "ab") as log_file:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log_file,
                                   start_new_session=True)
    GRAPH_PID.write_text(f"{process.pid}\n")
    described = read_description(process)
    env.update(DPS_SP_GRAPH_HOST=described["graph_host"],
               DPS_SP_LOGIN_HOST=described["login_host"])
    log.info("Graph stand-in (SharePoint) on https://%s, library on disk: %s",
             described["graph_host"], described["library_folder"])
    return process


def read_description(process: subprocess.Popen) -> dict[str, str]:
    """The `name: value` lines the stand-in prints once it listens."""
    described: dict[str, str] = {}
    while "library_folder" not in described:
        line = process.stdout.readline().decode() if process.stdout else ""
        if not line:
            raise RuntimeError(f"the Graph stand-in did not start; see {GRAPH_LOG}")
        name, _, value = line.strip().partition(": ")
        described[name] = value
    return described


def close_lag_days() -> int:
    """run.close_lag_days of the shipped config: the send's default period is the quarter
    holding (run date - this many days)."""
    import util

    return util.load_config(REPO / "dps_config.yml", lenient=True).run.close_lag_days


def exchange_run_dates(last_run_date: dt.date, quarters: int, lag_days: int) -> list[dt.date]:
    """One run date per quarter, oldest first, ending with last_run_date, each making its own
    quarter the send's default period (the quarter holding run date - lag_days): the same day
    of the month 3, 6, 9 ... months earlier (2025-06-20, FY2025Q3: FY2025Q2 as of 2025-03-20,
    FY2025Q1 as of 2024-12-20, FY2024Q4 as of 2024-09-20)."""
    from exchange.periods import period_containing

    lag = dt.timedelta(days=lag_days)
    period = period_containing(last_run_date - lag)
    dates = [last_run_date]
    for back in range(1, quarters):
        period = period_containing(period.start - dt.timedelta(days=1))
        dates.insert(0, run_date_for(period, months_earlier(last_run_date, 3 * back), lag))
    return dates


def months_earlier(day: dt.date, months: int) -> dt.date:
    """The same day of the month, `months` months earlier (a 31st in a shorter month becomes
    that month's last day)."""
    year, month_index = divmod(day.year * 12 + day.month - 1 - months, 12)
    last_day = calendar.monthrange(year, month_index + 1)[1]
    return dt.date(year, month_index + 1, min(day.day, last_day))


def run_date_for(period: Period, candidate: dt.date, lag: dt.timedelta) -> dt.date:
    """candidate when it makes `period` the send's default period, else period.end + lag
    (a date minus the lag that is the period's last day)."""
    from exchange.periods import period_containing

    return candidate if period_containing(candidate - lag) == period else period.end + lag


def run_exchanges(args: argparse.Namespace, env: dict[str, str]) -> int:
    """The exchange for each of the --quarters quarters in turn, oldest first; stops at the
    first one that fails. --break-totals breaks only the last (the one the demo is about)."""
    run_dates = exchange_run_dates(args.as_of, args.quarters, close_lag_days())
    code = 0
    for number, run_date in enumerate(run_dates, start=1):
        if len(run_dates) > 1:
            log.info("exchange %d of %d, as of %s", number, len(run_dates), run_date)
        last = number == len(run_dates)
        code = run_exchange(run_date.isoformat(), args.delay, args.break_totals and last, env,
                            args.config)
        if code != 0:
            break
    return code


def run_exchange(as_of: str, delay: float, break_totals: bool, env: dict[str, str],
                 config: Path | None = None) -> int:
    """send (forced: the demo always uploads) -> the simulated DPS answers -> receive."""
    python = sys.executable
    chosen = ["--config", str(config.resolve())] if config else []
    code = run_script([python, "send2dps.py", *chosen, "--as-of", as_of, "--force"], env)
    if code != 0:
        return code
    simulator = [python, "-m", "demo.dps_simulator", *chosen, "--as-of", as_of,
                 "--delay", str(delay), "--database", str(DEMO_DB)]
    if break_totals:
        simulator.append("--break-totals")
    log.info("$ %s &", " ".join(simulator))
    # Its own session: Ctrl-C reaches the runner, which stops it (no traceback of its own).
    dps = subprocess.Popen(simulator, env=env, cwd=REPO, start_new_session=True)
    try:
        code = run_script([python, "receivedps.py", *chosen, "--as-of", as_of], env)
        dps.wait(timeout=120)
    finally:
        stop_child(dps)     # interrupted: the simulated DPS must not go on retrying alone
    return code


def stop_child(process: subprocess.Popen) -> None:
    """End a child process that is still running (SIGTERM, then SIGKILL after 5 s)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_stand_ins(env: dict[str, str], port: int, wanted: int,
                    graph: subprocess.Popen, as_of: dt.date) -> None:
    """Leave the SFTP server and the Graph stand-in up and start a simulated DPS that answers
    every new upload as of the demo's run date (the README's everyday commands run as of it:
    DPS's dates then never lie after their run date)."""
    command = [sys.executable, "-m", "demo.dps_simulator", "--watch", "--delay", "2",
               "--chunk-pause", "0", "--database", str(DEMO_DB), "--as-of", as_of.isoformat()]
    with open(SIMULATOR_LOG, "ab") as log_file:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    SIMULATOR_PID.write_text(f"{process.pid}\n")
    lines = ["", "The stand-ins stay up for the README's everyday commands:",
             f"  SFTP server:      127.0.0.1:{port}",
             f"  simulated DPS:    answers each new upload in a few seconds, as of "
             f"{as_of} (log: {SIMULATOR_LOG})",
             f"  SharePoint:       the Graph stand-in on https://{env['DPS_SP_GRAPH_HOST']} "
             f"(login host https://{env['DPS_SP_LOGIN_HOST']})",
             "  stop them with:   bash demo/run_demo.sh --stop"]
    if port != wanted:
        lines.insert(3, f"  port {wanted} was taken: run the everyday commands with "
                        f"DPS_SFTP_PORT={port}")
    if env["DPS_SP_GRAPH_HOST"] != os.environ.get("DPS_SP_GRAPH_HOST",
                                                  f"127.0.0.1:{GRAPH_PORTS[0]}"):
        lines.insert(3, f"  ports {GRAPH_PORTS} were taken: run the everyday commands with "
                        f"DPS_SP_GRAPH_HOST={env['DPS_SP_GRAPH_HOST']} "
                        f"DPS_SP_LOGIN_HOST={env['DPS_SP_LOGIN_HOST']}")
    print("\n".join(lines))


def stop_simulator() -> bool:
    """Stop the simulated DPS that --serve started."""
    return stop_recorded_process(SIMULATOR_PID, b"dps_simulator")


def stop_recorded_process(pid_file: Path, marker: bytes) -> bool:
    """Stop the process whose pid the file records, only if its command line still names
    `marker` (a stale pid file never kills an unrelated process)."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        pid_file.unlink(missing_ok=True)
        return False
    if marker in command:
        os.kill(pid, signal.SIGTERM)
        wait_until_gone(pid)
    pid_file.unlink(missing_ok=True)
    return marker in command


def wait_until_gone(pid: int, seconds: float = 10) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)


def stop_stand_ins() -> int:
    from demo.local_sftp import stop_recorded_server

    simulator = stop_simulator()
    graph = stop_recorded_process(GRAPH_PID, b"graph_standin")
    server = stop_recorded_server(SFTP_STATE)
    log.info("stopped: simulated DPS %s, SFTP server %s, Graph stand-in %s",
             *("yes" if done else "not running" for done in (simulator, server, graph)))
    return 0


def period_then_name(path: Path) -> tuple[str, str]:
    """Sort key of a report: its period (FY2025_Q3 in the name sorts in time), then its name."""
    found = PERIOD_IN_NAME.search(path.name)
    return (found.group() if found else "", path.name)


def print_where_things_are(code: int) -> None:
    share = VAR / "share"
    lines = ["", "Where things are:",
             f"  sent to DPS:      {SFTP_ROOT / 'FROM_DFPS' / 'End_txt_file.txt'}",
             f"  outbox:           {VAR / 'outbox'}",
             f"  archive:          {VAR / 'archive'}",
             f"  run manifests:    {VAR / 'state' / 'manifests'}",
             f"  logs:             {REPO / 'logs'}"]
    reports = sorted(share.glob("*.xlsx"), key=period_then_name)
    library = GRAPH_ROOT / "Documents" / "DPS Reconciliation"
    if code == 0 and reports:
        lines.append(f"  reports (share):  {share}")
        lines += [f"    {p.name}" for p in reports]
        lines.append(f"  reports (SharePoint stand-in, on disk): {library}")
        lines.append("    links: receivedps.py --status, or the run's manifest (delivered_to)")
    else:
        lines.append(f"  the receive step exited {code}: no report published (see the log above)")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:   # before or after the exchanges: one line, no traceback
        print("demo: interrupted (Ctrl-C)", file=sys.stderr)
        raise SystemExit(EXIT_INTERRUPTED) from None
