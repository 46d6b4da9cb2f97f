"""The README's first command, in a copy of the repository: send -> simulated DPS -> receive."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from demo.local_sftp import find_free_port
from exchange.reports import REPORTS as SPECS
from tests.scenario import report_file, report_files

REPO = Path(__file__).resolve().parent.parent
REPORTS = report_files()   # every report of the registry, as the share lists them


@pytest.fixture
def clone(tmp_path, sftp_server):  # sftp_server: the same sshd check (fail in CI, never skip)
    target = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def run_demo(clone, *args):
    env = dict(os.environ, DPS_SFTP_PORT=str(find_free_port()),
               DPS_SP_GRAPH_HOST=f"127.0.0.1:{find_free_port()}",
               DPS_SP_LOGIN_HOST=f"127.0.0.1:{find_free_port()}")
    return subprocess.run([sys.executable, "-m", "demo.run_demo", "--scale", "0.05",
                           "--delay", "1", "--kind", "openssh", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_demo_produces_the_three_reports(clone):
    result = run_demo(clone)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Authentication (publickey) successful" not in result.stdout + result.stderr
    assert "Connected (version 2.0" not in result.stdout + result.stderr   # paramiko's INFO
    share = clone / "var" / "share"
    assert sorted(p.name for p in share.iterdir()) == REPORTS
    assert f"  reports (share):  {share}" in result.stdout
    totals = openpyxl.load_workbook(share / report_file("totals"))["Totals by region"]
    assert totals.cell(row=13, column=1).value == "STATEWIDE"
    assert totals.cell(row=13, column=5).value > 0
    sent = (clone / "var" / "demo_sftp" / "root" / "FROM_DFPS" / "End_txt_file.txt").read_bytes()
    assert sent.startswith(b"PID|LAST_NAME|FIRST_NAME|MIDDLE_NAME|SUFFIX|DOB|SEX|RACE\r\n")
    modes = {name: (clone / name).stat().st_mode & 0o777
             for name in ("var", "var/share", "logs", "var/impact_demo.sqlite")}
    assert modes == {"var": 0o700, "var/share": 0o700, "logs": 0o700,
                     "var/impact_demo.sqlite": 0o600}

    # Issue 21 §3.2: after the demo (its stand-ins stopped), a receive today looks for
    # nothing: the latest upload's answer was reported, and the reports stay as they are
    # (today's wider sa_98 fetch holds episodes after the range they read).
    published = {p.name: p.read_bytes() for p in share.iterdir()}
    again = subprocess.run(["./run_receive.sh", "--no-wait"], cwd=clone,
                           env=dict(os.environ, DPS_PYTHON=sys.executable),
                           capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-2000:]
    nothing_new = again.stderr.splitlines()[-2:]
    assert nothing_new[0].startswith("receivedps.py: nothing new: FY2025Q3 was already "
                                     "reported from the same inputs (run ")
    assert nothing_new[0].endswith(", run date 2025-06-20); use --force to rebuild the reports "
                                   "as of today")
    assert nothing_new[1] == "receivedps.py: outcome: nothing new"
    assert {p.name: p.read_bytes() for p in share.iterdir()} == published


def test_demo_with_broken_totals_publishes_nothing(clone):
    result = run_demo(clone, "--break-totals")
    assert result.returncode == 1
    assert "control totals disagree, nothing published" in result.stderr
    assert list((clone / "var" / "share").iterdir()) == []
    assert "the receive step exited 1: no report published" in result.stdout


@pytest.mark.reliability("security")
def test_no_name_or_dob_of_the_demo_database_in_any_log_or_manifest(clone):
    import re
    import sqlite3

    result = run_demo(clone)
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(clone / "var" / "impact_demo.sqlite") as db:
        people = db.execute("SELECT last_name, first_name, birth_date FROM person").fetchall()
    words = set()
    for last, first, _ in people:
        for name in (last, first):
            for word in re.split(r"[\s\-']+", name or ""):
                if len(word) >= 4:
                    words.update({word, word.upper()})
    legit_dates = {"2025-03-01", "2025-05-31", "2025-06-20"}   # period and run date
    dobs = {dob for *_, dob in people if dob and dob not in legit_dates}
    dobs |= {dob.replace("-", "") for dob in dobs}
    texts = [p.read_text(encoding="utf-8") for p in (clone / "logs").glob("*")
             if p.is_file()]
    texts += [p.read_text(encoding="utf-8") for p in
              (clone / "var" / "state" / "manifests").rglob("*.json")]
    texts.append(result.stdout + result.stderr)
    assert len(texts) >= 6
    tokens = set()
    for text in texts:
        for own in product_names():   # the product's own file, sheet and column names
            text = text.replace(own, " ")
        tokens.update(re.findall(r"[A-Za-zÀ-ɏ]{4,}|\d{4}-\d\d-\d\d|\d{8}", text))
    assert len(words) > 1000 and len(dobs) > 1000 and len(tokens) > 50   # the scan has teeth
    assert sorted(tokens & (words | dobs)) == []


def product_names() -> list[str]:
    """Names the product gives its own files, sheets and columns (a report stem such as
    `Long_...` holds a word that is also a surname): the privacy scan looks at the values
    around them, not at these. Longest first, so a stem goes before a column inside it."""
    from exchange.reports import REPORTS

    names = {spec.stem for spec in REPORTS}
    names |= {sheet.title for spec in REPORTS for sheet in spec.sheets}
    names |= {column for spec in REPORTS for sheet in spec.sheets for column in sheet.columns}
    return sorted(names, key=len, reverse=True)


def test_the_privacy_scan_ignores_the_product_s_own_names():
    text = "wrote /var/share/Returned_still_active_in_NCIC_FY2025_Q3.xlsx"
    for own in product_names():
        text = text.replace(own, " ")
    assert "Returned" not in text and "Active" not in text and "FY2025_Q3" in text


def everyday_commands() -> list[str]:
    """The commands of the README's "Everyday use" block, in the order listed."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Everyday use", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines()
            if line.strip().startswith("./")]


def test_everyday_commands_work_verbatim_after_the_demo_with_its_stand_ins_up(clone):
    port = find_free_port()
    env = dict(os.environ, DPS_SFTP_PORT=str(port), DPS_PYTHON=sys.executable,
               DPS_POLL_SECONDS="1", DPS_SETTLE_SECONDS="1",
               DPS_SP_GRAPH_HOST=f"127.0.0.1:{find_free_port()}",
               DPS_SP_LOGIN_HOST=f"127.0.0.1:{find_free_port()}")
    demo = subprocess.run([sys.executable, "-m", "demo.run_demo", "--scale", "0.05", "--delay",
                           "1", "--kind", "openssh", "--serve"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    try:
        assert demo.returncode == 0, demo.stderr[-3000:]
        assert "stop them with:   bash demo/run_demo.sh --stop" in demo.stdout
        commands = everyday_commands()
        assert commands[0] == "./run_send.sh --as-of 2025-06-20" and len(commands) == 7
        assert all("--as-of 2025-06-20" in c for c in commands if "--status" not in c)
        results = {}
        for command in commands:
            result = subprocess.run(command.split(), cwd=clone, env=env, capture_output=True,
                                    text=True, timeout=300, check=False)
            assert result.returncode == 0, (command, result.stderr[-2000:])
            results[command] = result
    finally:
        stop = subprocess.run([sys.executable, "-m", "demo.run_demo", "--stop"], cwd=clone,
                              env=env, capture_output=True, text=True, timeout=60, check=False)
    assert stop.returncode == 0
    assert "stopped: simulated DPS yes, SFTP server yes, Graph stand-in yes" in stop.stderr
    # Issue 21 §3.8: they show the demo's data. The default send is the demo's quarter (its
    # file, not sent again); --no-wait finds its answer reported; the chosen quarter's
    # exchange publishes non-zero counts, and --status lists them.
    send, no_wait, chosen, receive, preview, _, status = (results[c] for c in commands)
    assert "identical to upload " in send.stderr and "for FY2025Q3; not uploaded again" \
        in send.stderr
    assert "receivedps.py: nothing new: FY2025Q3 was already reported" in no_wait.stderr
    assert "send2dps.py: outcome: uploaded" in chosen.stderr
    counted = ", ".join(rf"(?P<{spec.key}>\d+) {re.escape(spec.status_label)}" for spec in SPECS)
    counts = re.search(rf"receivedps\.py: {counted};", receive.stderr)
    assert counts is not None, receive.stderr[-2000:]
    assert all(int(counts.group(key)) > 0 for key in ("impact", "dps", "totals")), \
        counts.group(0)
    assert "receive FY2025Q2: answer to upload" in receive.stderr
    assert counts.group(0).split(": ", 1)[1].split(";")[0] in preview.stderr   # the same
    assert re.search(rf"FY2025Q2 .* reported +0  {counts.group('impact')} IMPACT not in DPS",
                     status.stdout)
    assert sorted(p.name for p in (clone / "var" / "share").iterdir()) == sorted(
        report_files() + report_files("FY2025Q2"))


def simulator_pids(clone) -> list[int]:
    """The simulated DPS processes answering this clone's demo (their command line names it)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if proc.name.isdigit() and b"demo.dps_simulator" in command \
                and str(clone).encode() in command:
            pids.append(int(proc.name))
    return pids


def test_sigint_to_the_runner_stops_the_simulator_without_a_traceback(clone):
    """Issue 21 §3.4: SIGINT to the runner left the simulator retrying for 35 s."""
    import signal
    import time

    env = dict(os.environ, DPS_SFTP_PORT=str(find_free_port()),
               DPS_SP_GRAPH_HOST=f"127.0.0.1:{find_free_port()}",
               DPS_SP_LOGIN_HOST=f"127.0.0.1:{find_free_port()}")
    runner = subprocess.Popen([sys.executable, "-m", "demo.run_demo", "--scale", "0.05",
                               "--delay", "60", "--kind", "openssh"], cwd=clone, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not simulator_pids(clone) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert simulator_pids(clone), "the simulated DPS never started"
        runner.send_signal(signal.SIGINT)
        out, err = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, err[-2000:]
    assert "Traceback" not in out + err
    assert "demo: interrupted (Ctrl-C): the stand-ins are stopped" in err
    assert simulator_pids(clone) == []


def test_sharepoint_down_when_nothing_runs_says_so(clone):
    result = subprocess.run([sys.executable, "-m", "demo.run_demo", "--sharepoint-down"],
                            cwd=clone, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stderr == ("demo: SharePoint stand-in was not running; nothing to stop (it "
                             "runs while the demo runs, and after it with --serve)\n")
