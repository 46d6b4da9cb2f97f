"""Issue 20, item 7: a missing key-check file never makes a wrong key acceptable. With files
in the archive under that key id, the run is refused with one line saying how to re-create
the check file deliberately; that command proves the key on an archived file first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exchange.vault import new_key
from tests.conftest import REPO
from tests.scenario import scenario_answer

security = pytest.mark.reliability("security")
AS_OF = ("--as-of", "2025-06-20")


def archived(space) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in space.folder("archive").rglob("*") if p.is_file()}


def encrypted_exchange(space) -> Path:
    key = space.root / "archive.key"
    key.write_text(new_key() + "\n")
    key.chmod(0o600)
    space.configure(archive={"encrypt": True, "key_id": "2026-12", "key_file": str(key)})
    assert space.send(*AS_OF) == 0
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0
    return key


def recreate(space) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "exchange.archive", "--recreate-key-check",
                           "--config", str(space.config_path)], capture_output=True, text=True,
                          cwd=REPO, timeout=60, check=False)


@security
def test_a_wrong_key_with_its_check_file_deleted_is_refused(workspace):
    key = encrypted_exchange(workspace)
    check = workspace.folder("archive") / ".key-check-2026-12"
    check.unlink()
    key.write_text(new_key() + "\n")               # another key under the same id
    before = archived(workspace)
    result = workspace.cli("send2dps.py", *AS_OF, "--force")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"send2dps.py: error: archive key '2026-12': its check file {check} is missing, but "
        f"the archive holds files written under this key id; if archive.key_file / "
        f"archive.key_env is the right key, re-create the check file with: "
        f".venv/bin/python -m exchange.archive --recreate-key-check --config "
        f"{workspace.config_path}")
    assert archived(workspace) == before
    result = recreate(workspace)                    # the wrong key cannot re-create it
    assert result.returncode == 2
    assert "does not open" in result.stderr.splitlines()[-1]
    assert not check.exists()


@security
def test_the_right_key_re_creates_its_check_file_deliberately(workspace):
    encrypted_exchange(workspace)
    check = workspace.folder("archive") / ".key-check-2026-12"
    check.unlink()
    assert workspace.cli("send2dps.py", *AS_OF, "--force").returncode == 2   # refused too
    result = recreate(workspace)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == (
        f"re-created {check}: key '2026-12' opened an archived file written with it")
    assert check.is_file()
    assert workspace.send(*AS_OF, "--force") == 0
