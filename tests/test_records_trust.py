"""Records an auditor trusts (README "Security"), end to end on real files and a real sshd:
the archive encrypted at rest, keys rotated, --verify-audit finding tampering, and the
retention schedule applied only by --purge-archive."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from exchange.vault import is_encrypted, new_key, stored_key_id
from tests.scenario import (
    archived_files,
    archived_name,
    in_clear,
    report_files,
    scenario_answer,
)

pytestmark = pytest.mark.reliability("audit and archive")

AS_OF = ("--as-of", "2025-06-20")


def key_file(folder: Path, name: str) -> Path:
    path = folder / name
    path.write_text(new_key() + "\n")
    path.chmod(0o600)
    return path


def encrypt(space, key_id: str, key: Path, old: list | None = None) -> None:
    space.configure(archive={"encrypt": True, "key_id": key_id, "key_file": str(key),
                             "old_keys": old or []})


def archived(space) -> list[Path]:
    return sorted(p for p in space.folder("archive").rglob("*") if p.is_file()
                  and not p.name.startswith(".key-check"))


def exchange(space) -> None:
    assert space.send(*AS_OF) == 0
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0


def test_an_encrypted_archive_holds_no_name_or_dob_in_clear(workspace):
    encrypt(workspace, "2026-12", key_file(workspace.root, "k1"))
    exchange(workspace)
    files = archived(workspace)
    assert sorted(archived_name(p) for p in files) == archived_files()   # sent, answer, reports
    for path in files:
        data = path.read_bytes()
        assert is_encrypted(path) and stored_key_id(path) == "2026-12", path
        assert in_clear(data) == [], path
        assert not zipfile.is_zipfile(path), path     # a workbook cannot be opened as one
    run = workspace.manifests("receive")[-1]
    sums = run["archive_checksums"]
    assert all(v["sha256"] != v["stored_sha256"] for v in sums.values())


def test_regenerating_a_quarter_reads_the_encrypted_archive(workspace):
    encrypt(workspace, "2026-12", key_file(workspace.root, "k1"))
    exchange(workspace)
    assert workspace.receive(*AS_OF, "--period", "FY2025Q3", "--force") == 0
    assert sorted(p.name for p in workspace.folder("share").glob("*.xlsx")) == report_files()


def test_with_encryption_off_again_an_encrypted_period_still_regenerates(workspace):
    """Issue 21 §3.1: the README's encrypted demo, then the shipped config (encrypt: false,
    the same key configured) regenerates that period; new files are stored plain."""
    key = key_file(workspace.root, "k1")
    encrypt(workspace, "2026-12", key)
    exchange(workspace)
    workspace.configure(archive={"encrypt": False})
    assert workspace.receive(*AS_OF, "--period", "FY2025Q3", "--force") == 0
    assert sorted(p.name for p in workspace.folder("share").glob("*.xlsx")) == report_files()
    newest = workspace.manifests("receive")[-1]["archived_reports"]
    assert newest and not any(is_encrypted(Path(p)) for p in newest)


def test_a_wrong_key_is_one_line_exit_2_and_nothing_is_sent(workspace):
    key = key_file(workspace.root, "k1")
    encrypt(workspace, "2026-12", key)
    exchange(workspace)
    before = {p: p.read_bytes() for p in archived(workspace)}
    key.write_text(new_key() + "\n")                 # another key under the same id
    result = workspace.cli("send2dps.py", *AS_OF, "--force")
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"send2dps.py: error: archive key '2026-12' is not the key the archive was written "
        f"with ({workspace.folder('archive') / '.key-check-2026-12'} does not open); check "
        f"archive.key_file / archive.key_env")
    assert workspace.manifests("send")[-1]["steps"] == {}   # stopped before the query
    assert {p: p.read_bytes() for p in archived(workspace)} == before


def test_a_missing_key_file_is_one_line_exit_2(workspace):
    encrypt(workspace, "2026-12", workspace.root / "no-such-key")
    result = workspace.cli("send2dps.py", *AS_OF)
    assert result.returncode == 2
    assert "key '2026-12' (file " in result.stderr.splitlines()[-1]


def test_a_rotated_key_still_reads_the_old_files_and_writes_new_ones(workspace):
    old = key_file(workspace.root, "k1")
    encrypt(workspace, "2026-06", old)
    exchange(workspace)
    encrypt(workspace, "2026-12", key_file(workspace.root, "k2"),
            old=[{"id": "2026-06", "file": str(old)}])
    assert workspace.receive(*AS_OF, "--period", "FY2025Q3", "--force") == 0
    ids = {stored_key_id(p) for p in archived(workspace)}
    assert ids == {"2026-06", "2026-12"}
    assert workspace.send("--verify-audit") == 0


def test_verify_audit_names_an_edited_line_and_a_changed_archived_file(workspace, capsys):
    encrypt(workspace, "2026-12", key_file(workspace.root, "k1"))
    exchange(workspace)
    capsys.readouterr()
    assert workspace.receive("--verify-audit") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "OK: nothing wrong found"
    audit = workspace.folder("logs") / "audit.jsonl"
    lines = audit.read_text().splitlines(keepends=True)
    record = json.loads(lines[0])
    record["rows_sent"] = 5                        # someone edits the first line by hand
    lines[0] = json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n"
    audit.write_text("".join(lines))
    target = archived(workspace)[0]
    data = bytearray(target.read_bytes())
    data[-1] ^= 1
    target.write_bytes(bytes(data))
    assert workspace.receive("--verify-audit") == 1
    out = capsys.readouterr().out
    assert "  line 2: does not follow line 1 (edited, deleted, inserted or reordered)" in out
    assert f"archived file {target}: changed (stored bytes differ from its audit line)" in out
    assert out.splitlines()[-1].startswith("FAILED: ")


def test_lines_cut_from_the_end_are_found_through_the_run_records(workspace, capsys):
    exchange(workspace)
    audit = workspace.folder("logs") / "audit.jsonl"
    audit.write_text("".join(audit.read_text().splitlines(keepends=True)[:-1]))
    assert workspace.send("--verify-audit") == 1
    receive_run = workspace.manifests("receive")[-1]["run_id"]
    assert (f"  run {receive_run}: its audit line is missing (deleted from the end?)"
            in capsys.readouterr().out)


def test_purge_lists_with_dry_run_then_removes_and_verify_calls_them_purged(workspace,
                                                                            capsys):
    workspace.configure(archive={"retention_years": 1})
    exchange(workspace)
    files = archived(workspace)
    capsys.readouterr()
    later = ("--as-of", "2026-06-01")            # FY2025Q3 ended 2025-05-31: a year and a day
    assert workspace.send("--purge-archive", "--dry-run", *later) == 0
    out = capsys.readouterr().out
    *lines, total = out.splitlines()
    listed = [line.split(" (period FY2025Q3, run ")[0].removeprefix("would remove ")
              for line in lines]
    assert sorted(listed) == [str(p) for p in files]
    size = sum(p.stat().st_size for p in files) / 1_048_576
    assert total == (f"would remove {len(files)} file(s) of 1 period(s) (FY2025Q3), "
                     f"{size:.1f} MiB; nothing was removed (without --dry-run they go)")
    assert archived(workspace) == files
    assert workspace.send("--purge-archive", *later) == 0
    assert archived(workspace) == []
    purge = json.loads((workspace.folder("logs") / "audit.jsonl").read_text().splitlines()[-1])
    assert (purge["step"], len(purge["purged"])) == ("purge", len(files))
    assert all(len(item["sha256"]) == 64 for item in purge["purged"])
    capsys.readouterr()
    assert workspace.send("--verify-audit") == 0
    assert f"{len(files)} purged by the retention schedule" in capsys.readouterr().out
    result = workspace.cli("receivedps.py", "--period", "FY2025Q3", "--force", *AS_OF)
    assert result.returncode == 1
    assert "was purged on 2026-06-01 (archive.retention_years); this period can no longer " \
           "be regenerated" in result.stderr.splitlines()[-1]


def test_nothing_is_purged_within_the_schedule_or_with_retention_off(workspace, capsys):
    exchange(workspace)
    files = archived(workspace)
    assert workspace.send("--purge-archive", "--as-of", "2040-01-01") == 0
    assert "retention_years is 0" in capsys.readouterr().out
    workspace.configure(archive={"retention_years": 1})
    assert workspace.send("--purge-archive", "--as-of", "2026-05-31") == 0
    assert archived(workspace) == files


def test_purge_after_a_regeneration_removes_each_file_once_and_marks_every_record(workspace):
    workspace.configure(archive={"retention_years": 1})
    exchange(workspace)
    assert workspace.receive(*AS_OF, "--period", "FY2025Q3", "--force") == 0  # same answer
    assert workspace.send("--purge-archive", "--as-of", "2026-06-01") == 0
    assert archived(workspace) == []
    answer = workspace.manifests("receive")[0]["archived"]
    for run in workspace.manifests("receive"):
        assert set(answer) <= set(run["purged"])
    assert workspace.send("--verify-audit") == 0


def verify_lines(space, capsys) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = space.send("--verify-audit")
    return code, capsys.readouterr().out.splitlines()


def test_verify_says_content_is_stored_plain_when_encryption_is_off(workspace, capsys):
    """Issue 21 §3.9: it said "content checked with the keys" with encryption off."""
    exchange(workspace)
    code, lines = verify_lines(workspace, capsys)
    assert code == 0
    assert lines[-2].endswith("purged by the retention schedule; stored plain, content "
                              "checked against the records")


def test_verify_fails_when_encrypted_files_cannot_be_checked_for_want_of_the_key(workspace,
                                                                                 capsys):
    key = key_file(workspace.root, "k1")
    encrypt(workspace, "2026-12", key)
    exchange(workspace)
    code, lines = verify_lines(workspace, capsys)
    stored = len(archived_files())   # sent files, DPS's answer, every report
    assert code == 0 and lines[-2].endswith(f"content of {stored} encrypted file(s) checked "
                                            "with the keys")
    key.unlink()
    code, lines = verify_lines(workspace, capsys)
    assert code == 1
    assert (f"  {stored} archived file(s) are encrypted but the archive's keys are not "
            "available: their content was not checked (archive.key_file / archive.key_env)"
            ) in lines
    assert lines[-1] == "FAILED: 1 problem(s)"


def test_verify_checks_a_moved_installation_s_archive_where_it_is_now(workspace, capsys):
    """The records name the absolute paths of the first archiving; the archive moved with
    the installation is checked at its new place, and a change there is still found."""
    exchange(workspace)
    moved = workspace.root / "moved_archive"
    workspace.folder("archive").rename(moved)
    workspace.configure(folders={**workspace.settings["folders"], "archive": str(moved)})
    code, lines = verify_lines(workspace, capsys)
    assert code == 0, lines
    sent = next(moved.rglob("*_End_txt_file.txt"))
    sent.write_bytes(sent.read_bytes() + b"x")
    code, lines = verify_lines(workspace, capsys)
    assert code == 1
    assert any(line.endswith("_End_txt_file.txt: changed (stored bytes differ from its audit line)")
               for line in lines)
