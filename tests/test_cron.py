"""run_send.sh / run_receive.sh as cron runs them: bare environment, lock, exit codes."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.scenario import report_files, scenario_answer

REPO = Path(__file__).resolve().parent.parent
AS_OF = ("--as-of", "2025-06-20")
CRON_PATH = "/usr/bin:/bin"

overlapping = pytest.mark.reliability("overlapping runs")


def cron_env(workspace) -> dict[str, str]:
    """cron's environment: PATH=/usr/bin:/bin, SHELL=/bin/sh, HOME, nothing else."""
    env = {"PATH": CRON_PATH, "SHELL": "/bin/sh", "HOME": str(workspace.root),
           "LOGNAME": "cron"}
    if not (REPO / ".venv" / "bin" / "python").exists():
        env["DPS_PYTHON"] = sys.executable
    return env


def wrapper(workspace, script, *args):
    return subprocess.Popen(["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in
                                                      cron_env(workspace).items()],
                             str(REPO / script), "--config", str(workspace.config_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd="/")


def finish(run: subprocess.Popen, timeout: float = 180) -> tuple[int, str]:
    """Wait for a wrapper started with wrapper(); its exit code and stderr (pipes closed)."""
    _, stderr = run.communicate(timeout=timeout)
    return run.returncode, stderr


def test_send_then_receive_from_cron_in_a_bare_environment(workspace):
    code, stderr = finish(wrapper(workspace, "run_send.sh", *AS_OF))
    assert code == 0, stderr
    workspace.put_answer(*scenario_answer())
    code, stderr = finish(wrapper(workspace, "run_receive.sh", *AS_OF))
    assert code == 0, stderr
    assert sorted(p.name for p in workspace.folder("share").glob("*.xlsx")) == report_files()


def test_wrapper_passes_the_exit_code_through(workspace):
    code, stderr = finish(wrapper(workspace, "run_receive.sh", *AS_OF, "--no-wait"))
    assert code == 1     # no upload recorded yet
    assert stderr.splitlines()[-1].endswith(
        "no upload recorded in the send manifests; run send2dps.py first")


@overlapping
def test_ten_simultaneous_sends_one_works_nine_exit_75(workspace):
    runs = [finish(run) for run in [wrapper(workspace, "run_send.sh", *AS_OF)
                                    for _ in range(10)]]
    assert sorted(code for code, _ in runs) == [0] + [75] * 9
    for code, stderr in runs:
        if code == 75:
            assert stderr.splitlines() == [
                f"run_send.sh: another send run holds {workspace.root / '.run_send.lock'}; "
                f"not starting"]
    assert [m["outcome"] for m in workspace.manifests("send")] == ["uploaded"]


@overlapping
def test_ten_simultaneous_receives_one_works_nine_exit_75(workspace):
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    runs = [finish(run) for run in [wrapper(workspace, "run_receive.sh", *AS_OF)
                                    for _ in range(10)]]
    assert sorted(code for code, _ in runs) == [0] + [75] * 9
    assert [m["outcome"] for m in workspace.manifests("receive")] == ["reported"]


def test_missing_venv_is_one_line_and_exit_2(workspace):
    env = cron_env(workspace)
    env["DPS_PYTHON"] = "/nonexistent/python"
    result = subprocess.run(["/usr/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()],
                             str(REPO / "run_send.sh")], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 2
    assert result.stderr == ("run_send.sh: /nonexistent/python not found; set up first: "
                             f"bash {REPO}/demo/setup_venv.sh\n")


@overlapping
def test_two_installations_sharing_the_code_do_not_block_each_other(workspace, tmp_path):
    """The wrapper's lock lives beside the config file: test and production run side by side."""
    import yaml

    other = tmp_path / "second_install"
    other.mkdir()
    settings = yaml.safe_load(workspace.config_path.read_text())
    settings["folders"] = {name: str(other / name) for name in settings["folders"]}
    (other / "dps_config.yml").write_text(yaml.safe_dump(settings, allow_unicode=True))
    runs = [wrapper(workspace, "run_send.sh", *AS_OF, "--dry-run"),
            subprocess.Popen([str(REPO / "run_send.sh"), f"--config={other / 'dps_config.yml'}",
                              *AS_OF, "--dry-run"], env=cron_env(workspace),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    assert [finish(run)[0] for run in runs] == [0, 0]
    assert (workspace.root / ".run_send.lock").exists()
    assert (other / ".run_send.lock").exists()
