"""A second SFTP server implementation, ProFTPD's mod_sftp (authorized keys in RFC 4716 form):
the whole exchange against it, a partner that forbids overwriting, and sessions closed cleanly."""

import sqlite3
from pathlib import Path

import pytest

from tests.real_servers import start_proftpd
from tests.scenario import report_files, scenario_answer

AS_OF = ("--as-of", "2025-06-20")
REPORTS = report_files()   # every report of the registry, as the share lists them


def log_size(server):
    return server.log_file.stat().st_size if server.log_file.exists() else 0


def log_since(server, offset):
    with server.log_file.open("rb") as handle:
        handle.seek(offset)
        return handle.read().decode("utf-8", errors="replace")


@pytest.fixture
def no_overwrite_server(tmp_path):
    """A partner whose server forbids overwriting a file (AllowOverwrite off)."""
    server = start_proftpd(tmp_path / "np_root", tmp_path / "np_state", allow_overwrite=False)
    yield server
    server.stop()


def test_a_whole_exchange_against_proftpd(proftpd_workspace):
    space = proftpd_workspace
    assert space.send(*AS_OF) == 0
    sent = (space.upload_dir / "End_txt_file.txt").read_bytes()
    archived = Path(space.manifests("send")[-1]["archived_roles"]["dps_text"])
    assert sent == archived.read_bytes()          # the outbox is cleared after a send
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0
    assert sorted(p.name for p in space.folder("share").iterdir()) == REPORTS
    assert sorted(p.name for p in space.answer_dir.iterdir()) == ["processed"]


def test_our_sessions_end_with_a_disconnect_not_a_reset(proftpd_workspace):
    space = proftpd_workspace
    before = log_size(space.server)
    assert space.send(*AS_OF) == 0
    space.put_answer(*scenario_answer())
    assert space.receive(*AS_OF) == 0
    assert space.send(*AS_OF, "--status") == 0
    logged = log_since(space.server, before)
    assert "session opened" in logged.lower() or "using sftp protocol" in logged.lower()
    assert "Connection reset by peer" not in logged


def use_server(space, server):
    space.server = server
    space.configure(sftp={"port": server.port, "known_hosts_file": str(server.known_hosts),
                          "key_file": str(server.client_key)})


def test_a_resend_to_a_partner_that_forbids_overwriting_replaces_by_rename(
        proftpd_workspace, no_overwrite_server):
    """ProFTPD's AllowOverwrite guards writing into an existing file; our upload writes a new
    .part and renames it over the old file (posix-rename), which it allows."""
    space = proftpd_workspace
    use_server(space, no_overwrite_server)
    assert space.send(*AS_OF) == 0
    with sqlite3.connect(space.db_path) as connection:
        connection.execute("DELETE FROM removal WHERE person_id = 1007")
    done = space.cli("send2dps.py", *AS_OF, "--force")
    assert done.returncode == 0, done.stderr
    assert b"|1007|" not in (space.upload_dir / "End_txt_file.txt").read_bytes()


def test_a_part_file_left_by_a_broken_upload_is_removed_first(proftpd_workspace,
                                                              no_overwrite_server):
    space = proftpd_workspace
    use_server(space, no_overwrite_server)
    space.upload_dir.mkdir(parents=True)
    (space.upload_dir / "End_txt_file.txt.part").write_bytes(b"left by a broken upload")
    assert space.send(*AS_OF) == 0
    assert sorted(p.name for p in space.upload_dir.iterdir()) == ["End_txt_file.txt"]
    assert "removing " in space.log_text()


def test_a_file_the_partner_will_not_let_us_replace_is_one_clear_line(proftpd_workspace,
                                                                      tmp_path):
    """AllowOverwrite off and no deleting: a .part there cannot be written into."""
    server = start_proftpd(tmp_path / "nd_root", tmp_path / "nd_state", allow_overwrite=False,
                           allow_delete=False)
    try:
        space = proftpd_workspace
        use_server(space, server)
        space.upload_dir.mkdir(parents=True)
        (space.upload_dir / "End_txt_file.txt.part").write_bytes(b"left by a broken upload")
        done = space.cli("send2dps.py", *AS_OF)
    finally:
        server.stop()
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("send2dps.py: error: sftp 127.0.0.1:")
    assert "the server refused to write" in last and "/FROM_DFPS/End_txt_file.txt" in last
    assert "may forbid overwriting or removing files there" in last
