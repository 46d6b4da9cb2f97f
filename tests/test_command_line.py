"""What a user meets on the command line (README "Options", "Exit codes", "--status"): one
error style, argument errors that leave no trace, dry runs that never stand for a step.

These need no SFTP server: the scenario's SFTP port has nobody listening."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AS_OF = ("--as-of", "2025-06-20")


def traces(space) -> list[Path]:
    """Run records and log files a run left behind."""
    return sorted(space.folder("state").rglob("*.json")) + sorted(space.folder("logs").glob("*"))


@pytest.mark.parametrize("script, args, message", [
    ("send2dps.py", ("--period", "FY2025Q5"),
     "send2dps.py: error: --period 'FY2025Q5': expected a fiscal quarter like FY2025Q3\n"),
    ("send2dps.py", ("--period", ""),
     "send2dps.py: error: --period '': expected a fiscal quarter like FY2025Q3\n"),
    ("receivedps.py", ("--period", ""),
     "receivedps.py: error: --period '': expected a fiscal quarter like FY2025Q3\n"),
    ("send2dps.py", ("--as-of", "2025-13-01"),
     "send2dps.py: error: --as-of '2025-13-01': expected a date like 2025-06-20\n"),
    ("receivedps.py", ("--as-of", "yesterday"),
     "receivedps.py: error: --as-of 'yesterday': expected a date like 2025-06-20\n"),
    ("send2dps.py", ("--perod", "FY2025Q3"),
     "send2dps.py: error: unrecognized arguments: --perod FY2025Q3 (see --help)\n"),
    ("receivedps.py", ("--period", "FY2025Q3", *AS_OF),
     "receivedps.py: error: no upload recorded in the send manifests; run send2dps.py "
     "first\n"),
])
def test_an_argument_error_is_one_line_exit_2_and_leaves_no_record(scenario, script, args,
                                                                    message):
    result = scenario.cli(script, *args)
    if "no upload recorded" in message:
        # not an argument error: the run starts, finds nothing to answer, and is recorded
        assert result.returncode == 1
        assert result.stderr.splitlines()[-1] + "\n" == message
        return
    assert (result.returncode, result.stderr) == (2, message)
    assert traces(scenario) == []


def test_a_config_failure_during_the_run_is_recorded_and_alerted(scenario, smtp_server):
    """Cron's exit 2 at 03:30 must still show: recorded, alerted, not a silent usage error."""
    port, mailbox = smtp_server
    scenario.configure(dps_file={"columns": ["PID", "SHOE_SIZE"]},
                       mail={"enabled": True, "host": "127.0.0.1", "port": port,
                             "recipients": ["ops@dfps.example"]})
    assert scenario.send(*AS_OF) == 2
    run = scenario.manifests("send")[-1]
    assert (run["outcome"], run["exit_code"], run["error"]) == (
        "failed", 2, "dps_file.columns: unknown column SHOE_SIZE")
    assert [m["Subject"] for m in mailbox.messages] == ["[DPS exchange] send FAILED FY2025Q3"]


def test_lower_case_periods_are_accepted(scenario):
    assert scenario.send(*AS_OF, "--dry-run", "--period", "fy2025_q3") == 0
    assert scenario.manifests("send")[-1]["period"] == "FY2025Q3"


def test_a_dry_run_never_stands_for_the_latest_send(scenario, capsys):
    assert scenario.send(*AS_OF) == 1          # nothing listens on the SFTP port: a failure
    assert scenario.send(*AS_OF, "--dry-run") == 0
    capsys.readouterr()
    assert scenario.send("--status") == 1
    out = capsys.readouterr().out
    assert "latest send: FAILED (exit 1): sftp 127.0.0.1:" in out
    assert " dry run " in out                  # listed, but not taken as the latest


def test_only_dry_runs_is_healthy(scenario, capsys):
    assert scenario.send(*AS_OF, "--dry-run") == 0
    capsys.readouterr()
    assert scenario.send("--status") == 0
    assert "latest send: none recorded (dry runs only)" in capsys.readouterr().out


@pytest.mark.parametrize("script", ["send2dps.py", "receivedps.py"])
def test_outside_the_venv_a_missing_module_is_named_with_the_setup_command(tmp_path, script):
    """A Python without the project's packages (here: one that cannot import yaml)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "yaml.py").write_text("raise ModuleNotFoundError(\"No module named 'yaml'\", "
                                     "name='yaml')\n")
    env = dict(os.environ, PYTHONPATH=str(blocker))
    result = subprocess.run([sys.executable, str(REPO / script), "--help"], capture_output=True,
                            text=True, env=env, check=False, cwd=tmp_path)
    assert result.returncode == 2     # a setup error, like a config error (issue 21 §3.10)
    assert result.stderr == (f"{script}: error: Python module 'yaml' is missing; set up the "
                             f"project's environment with 'bash demo/setup_venv.sh' and run "
                             f"'.venv/bin/python {script}' or "
                             f"'run_{'send' if script.startswith('send') else 'receive'}.sh'\n")


@pytest.mark.parametrize("script, flag", [("send2dps.py", "--dry"), ("send2dps.py", "--stat"),
                                          ("receivedps.py", "--no-w"), ("receivedps.py", "--chec")])
def test_a_shortened_flag_is_refused_not_guessed(scenario, script, flag):
    """Issue 21 §3.6: `--dry` ran a dry run and `--stat` ran --status; now they are refused."""
    done = scenario.cli(script, *AS_OF, flag)
    assert done.returncode == 2
    assert done.stderr == f"{script}: error: unrecognized arguments: {flag} (see --help)\n"
    assert traces(scenario) == []


@pytest.mark.parametrize("script", ["send2dps.py", "receivedps.py"])
def test_a_fresh_clone_is_told_to_run_the_demo_first(tmp_path, script):
    """Issue 21 §3.5: the shipped config names the demo's keys, which a fresh clone lacks."""
    config = tmp_path / "dps_config.yml"
    config.write_text((REPO / "dps_config.yml").read_text(encoding="utf-8"), encoding="utf-8")
    result = subprocess.run([sys.executable, str(REPO / script), "--config", str(config)],
                            capture_output=True, text=True, check=False, cwd=tmp_path,
                            env={k: v for k, v in os.environ.items() if not k.startswith("DPS_")})
    assert result.returncode == 2
    assert result.stderr == (
        f"{script}: error: config {config}: sftp.key_file: file not found: "
        f"{tmp_path}/var/demo_sftp/client_ed25519_key (the demo makes it: run "
        "'bash demo/run_demo.sh' first, or set your own file)\n")


def test_a_port_whose_last_connection_is_still_closing_is_free_for_the_demo():
    """A port the demo's server closed a moment ago (its side in TIME_WAIT) can be listened on
    again (SO_REUSEADDR, as sshd does): --serve right after a demo keeps port 2222."""
    import socket

    from demo.run_demo import port_is_free

    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()                 # the server's side closes first: TIME_WAIT on `port`
        client.recv(1)
        client.close()
    assert port_is_free(port)
