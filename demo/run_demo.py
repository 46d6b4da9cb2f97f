"""The whole workflow on the embedded defaults: demo database, local SFTP server, simulated DPS.

    bash demo/run_demo.sh                  # set up, then send -> DPS answers -> receive
    bash demo/run_demo.sh --break-totals   # DPS answers with control totals that disagree
    bash demo/run_demo.sh --serve          # ... and keep the stand-ins up for everyday commands
    bash demo/run_demo.sh --stop           # stop the stand-ins that --serve left running

It runs on a fixed date (--as-of, default 2025-06-20, so the period is FY2025Q3, the last
full quarter then) so its output is the same every day. Everything it writes stays under
var/ in the repository; the scripts run exactly as cron would run them, with dps_config.yml.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
DEMO_DB = VAR / "impact_demo.sqlite"
SFTP_STATE = VAR / "demo_sftp"
SFTP_ROOT = SFTP_STATE / "root"
SIMULATOR_PID = SFTP_STATE / "dps_simulator.pid"
SIMULATOR_LOG = SFTP_STATE / "dps_simulator.log"
DEFAULT_PORT = 2222

log = logging.getLogger("demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", default="2025-06-20", help="run date (default 2025-06-20)")
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
    return parser


def ensure_demo_database(scale: float, rebuild: bool) -> None:
    from demo.build_demo_db import build_demo_database

    if DEMO_DB.exists() and not rebuild:
        log.info("demo database: %s (kept; --rebuild to make it again)", DEMO_DB)
        return
    log.info("building the demo database at scale %g (once) ...", scale)
    counts = build_demo_database(DEMO_DB, scale=scale)
    log.info("demo database: %s %s", DEMO_DB, counts)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
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
    os.umask(0o077)   # the demo's data stands for children's records: the owner's only
    ensure_demo_database(args.scale, args.rebuild)
    DEMO_DB.chmod(0o600)
    for folder in (VAR, VAR / "share"):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    stop_simulator()
    wanted = int(os.environ.get("DPS_SFTP_PORT", DEFAULT_PORT))
    port = wanted if port_is_free(wanted) else None
    server = start_local_sftp_server(SFTP_ROOT, SFTP_STATE, port=port, kind=args.kind)
    log.info("local %s SFTP server on 127.0.0.1:%d serving %s (host key pinned in %s)",
             server.kind, server.port, SFTP_ROOT, server.known_hosts)
    env = demo_environment(server.port)
    try:
        code = run_exchange(args, env)
    finally:
        if not args.serve:
            server.stop()
    print_where_things_are(code)
    if args.serve:
        serve_stand_ins(env, server.port, wanted)
    return code


def run_exchange(args: argparse.Namespace, env: dict[str, str]) -> int:
    """send (forced: the demo always uploads) -> the simulated DPS answers -> receive."""
    python = sys.executable
    code = run_script([python, "send2dps.py", "--as-of", args.as_of, "--force"], env)
    if code != 0:
        return code
    simulator = [python, "-m", "demo.dps_simulator", "--as-of", args.as_of,
                 "--delay", str(args.delay), "--database", str(DEMO_DB)]
    if args.break_totals:
        simulator.append("--break-totals")
    log.info("$ %s &", " ".join(simulator))
    dps = subprocess.Popen(simulator, env=env, cwd=REPO)
    code = run_script([python, "receivedps.py", "--as-of", args.as_of], env)
    dps.wait(timeout=120)
    return code


def serve_stand_ins(env: dict[str, str], port: int, wanted: int) -> None:
    """Leave the SFTP server up and start a simulated DPS that answers every new upload."""
    command = [sys.executable, "-m", "demo.dps_simulator", "--watch", "--delay", "2",
               "--chunk-pause", "0", "--database", str(DEMO_DB)]
    with open(SIMULATOR_LOG, "ab") as log_file:
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log_file,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    SIMULATOR_PID.write_text(f"{process.pid}\n")
    lines = ["", "The stand-ins stay up for the README's everyday commands:",
             f"  SFTP server:      127.0.0.1:{port}",
             f"  simulated DPS:    answers each new upload in a few seconds (log: "
             f"{SIMULATOR_LOG})",
             "  stop them with:   bash demo/run_demo.sh --stop"]
    if port != wanted:
        lines.insert(3, f"  port {wanted} was taken: run the everyday commands with "
                        f"DPS_SFTP_PORT={port}")
    print("\n".join(lines))


def stop_simulator() -> bool:
    """Stop the simulated DPS that --serve started (only if the pid is still that process)."""
    try:
        pid = int(SIMULATOR_PID.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        SIMULATOR_PID.unlink(missing_ok=True)
        return False
    if b"dps_simulator" in command:
        os.kill(pid, signal.SIGTERM)
    SIMULATOR_PID.unlink(missing_ok=True)
    return b"dps_simulator" in command


def stop_stand_ins() -> int:
    from demo.local_sftp import stop_recorded_server

    simulator = stop_simulator()
    server = stop_recorded_server(SFTP_STATE)
    log.info("stopped: simulated DPS %s, SFTP server %s", "yes" if simulator else "not running",
             "yes" if server else "not running")
    return 0


def print_where_things_are(code: int) -> None:
    share = VAR / "share"
    lines = ["", "Where things are:",
             f"  sent to DPS:      {SFTP_ROOT / 'FROM_DFPS' / 'End_txt_file.txt'}",
             f"  outbox:           {VAR / 'outbox'}",
             f"  archive:          {VAR / 'archive'}",
             f"  run manifests:    {VAR / 'state' / 'manifests'}",
             f"  logs:             {REPO / 'logs'}"]
    reports = sorted(share.glob("*.xlsx"))
    if code == 0 and reports:
        lines.append(f"  reports (share):  {share}")
        lines += [f"    {p.name}" for p in reports]
    else:
        lines.append(f"  the receive step exited {code}: no report published (see the log above)")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
