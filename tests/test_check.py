"""`--check` (issue 21 §1): one line per configured system, ready or not, changing nothing a
partner sees; exit 0 when all are ready, 1 otherwise; secrets never printed. Each real
component up and down: sshd, SMTP, the Graph stand-in, PostgreSQL and SQLite."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.graph_standin import GraphStandIn, ensure_certificates, start_graph_standin
from demo.local_sftp import find_free_port
from exchange.preflight import static_folder

TENANT, CLIENT = "tenant-0001", "client-0001"
SITE_HOST, SITE_PATH, LIBRARY = "contoso.sharepoint.com", "/sites/ChildWelfare", "Documents"
SECRET = "s3cret-Pa55word-xyz"


def check(space, *args: str, env: dict[str, str] | None = None):
    done = space.cli("send2dps.py", "--check", *args, env=env)
    return done.returncode, done.stdout.splitlines(), done.stderr


def line_for(lines: list[str], system: str) -> str:
    found = [line for line in lines if re.match(rf"send2dps\.py --check: \S+( READY)?\s+"
                                                 rf"{system}\s", line)]
    assert len(found) == 1, lines
    return found[0]


def make_remote_folders(space) -> None:
    """The partner's folders, as DPS provisions them."""
    for folder in ("FROM_DFPS", "TO_DFPS"):
        (space.server.root / space.remote_prefix / folder).mkdir(parents=True, exist_ok=True)


@pytest.fixture
def ready(workspace):
    make_remote_folders(workspace)
    return workspace


@pytest.fixture
def typed_ready(typed_workspace):
    make_remote_folders(typed_workspace)
    return typed_workspace


def remote_tree(space) -> list[str]:
    root = space.server.root / space.remote_prefix
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("check_certs")
    ensure_certificates(folder)
    return folder


@pytest.fixture
def standin(tmp_path: Path, certificates: Path) -> Iterator[GraphStandIn]:
    server = start_graph_standin(tmp_path / "sharepoint", TENANT, CLIENT, SITE_HOST, SITE_PATH,
                                 LIBRARY, state_dir=certificates)
    yield server
    server.stop()


def with_sharepoint(space, standin: GraphStandIn) -> None:
    space.configure(
        reports={"deliver_to": ["share", "sharepoint"]},
        sharepoint={"tenant_id": TENANT, "client_id": CLIENT, "login_host": standin.login_host,
                    "graph_host": standin.host, "certificate_file": str(standin.client_cert_file),
                    "private_key_file": str(standin.client_key_file),
                    "ca_file": str(standin.ca_file), "site_host": SITE_HOST,
                    "site_path": SITE_PATH, "library": LIBRARY, "max_tries": 1,
                    "timeout_seconds": 5})


def with_mail(space, port: int) -> None:
    space.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                          "recipients": ["analyst@dfps.example"]})


# ----------------------------------------------------------------------------- all ready


def test_all_ready_is_one_line_each_and_exit_0(ready, smtp_server):
    with_mail(ready, smtp_server[0])
    code, lines, stderr = check(ready)
    assert code == 0, (lines, stderr)
    assert [line.split()[2:4] for line in lines[:-1]] == [
        ["ready", "database"], ["ready", "sftp"], ["ready", "share"], ["ready", "mail"]]
    assert lines[-1] == "send2dps.py --check: all 4 ready"
    assert "send_children return their contract columns (no rows read)" in \
        line_for(lines, "database")
    sftp = line_for(lines, "sftp")
    assert "host key matches" in sftp and "logged in" in sftp
    assert f"{ready.remote_prefix}/FROM_DFPS" in sftp or "listable" in sftp


def test_check_changes_nothing(ready, smtp_server):
    """No run record, no outbox, no log of a run, nothing on the server, no mail."""
    port, mailbox = smtp_server
    with_mail(ready, port)
    before = remote_tree(ready)
    code, _, _ = check(ready)
    assert code == 0
    assert remote_tree(ready) == before
    assert not ready.folder("outbox").exists() and not ready.folder("state").exists()
    assert list(ready.folder("share").iterdir()) == []
    assert mailbox.messages == []


def test_receive_check_asks_the_receive_queries(ready):
    done = ready.cli("receivedps.py", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sa_98, county_region, caseworker return their contract columns" in done.stdout
    assert done.stdout.splitlines()[-1] == "receivedps.py --check: all 3 ready"


# ------------------------------------------------------------------------------ SFTP


def test_sftp_down_is_not_ready_and_exit_1(ready):
    ready.configure(sftp={"port": find_free_port()})
    code, lines, _ = check(ready)
    assert code == 1
    assert line_for(lines, "sftp").startswith("send2dps.py --check: NOT READY  sftp        "
                                              "sftp 127.0.0.1:")
    assert "cannot connect after 1 attempt(s)" in line_for(lines, "sftp")
    assert line_for(lines, "database").split()[2] == "ready"
    assert lines[-1] == "send2dps.py --check: 1 of 3 not ready: sftp"


def test_sftp_host_key_that_does_not_match_is_not_ready(workspace, tmp_path):
    other = tmp_path / "other_known_hosts"
    port = workspace.settings["sftp"]["port"]
    other.write_text(f"[127.0.0.1]:{port} ssh-ed25519 "
                     "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    workspace.configure(sftp={"known_hosts_file": str(other)})
    code, lines, _ = check(workspace)
    assert code == 1
    assert "host key does not match the one pinned in" in line_for(lines, "sftp")


def test_a_missing_answer_folder_is_not_ready(workspace):
    (workspace.server.root / workspace.remote_prefix / "FROM_DFPS").mkdir(parents=True)
    code, lines, _ = check(workspace)
    assert code == 1
    assert line_for(lines, "sftp").endswith(f"folder {workspace.remote_prefix}/TO_DFPS is "
                                            "missing on the server")


def test_write_probe_writes_and_removes_a_part_file(ready):
    code, lines, _ = check(ready, "--write-probe")
    assert code == 0, lines
    assert line_for(lines, "sftp").endswith(f"a write probe in {ready.remote_prefix}/"
                                            "FROM_DFPS was written and removed")
    assert remote_tree(ready) == ["FROM_DFPS", "TO_DFPS"]


def test_write_probe_without_check_is_a_usage_error(workspace):
    done = workspace.cli("send2dps.py", "--write-probe")
    assert done.returncode == 2
    assert done.stderr.strip() == ("send2dps.py: error: --write-probe and --send-test-mail go "
                                   "with --check")


# ----------------------------------------------------------------------------- SMTP


def test_smtp_down_is_not_ready(ready):
    with_mail(ready, find_free_port())
    code, lines, _ = check(ready)
    assert code == 1
    mail = line_for(lines, "mail")
    assert "NOT READY" in mail and "127.0.0.1:" in mail and "ConnectionRefusedError" in mail
    assert ": cannot connect: ConnectionRefusedError (Connection refused)" in mail


def test_send_test_mail_with_mail_off_says_no_test_mail_was_sent(ready):
    code, lines, _ = check(ready, "--send-test-mail")
    assert code == 0, lines
    assert "send2dps.py --check: mail is off (mail.enabled: false): no test mail sent" in lines


def test_send_test_mail_sends_one_mail(ready, smtp_server):
    port, mailbox = smtp_server
    with_mail(ready, port)
    code, lines, _ = check(ready, "--send-test-mail")
    assert code == 0, lines
    assert line_for(lines, "mail").endswith("connected, a test mail went to 1 recipient(s)")
    assert [m["Subject"] for m in mailbox.messages] == ["[DPS exchange] test mail from --check"]


# ------------------------------------------------------------------------- SharePoint


def test_sharepoint_up_is_ready_and_down_is_not(ready, standin):
    with_sharepoint(ready, standin)
    code, lines, _ = check(ready)
    assert code == 0, lines
    assert line_for(lines, "sharepoint").endswith(
        f"signed in; site {SITE_HOST}{SITE_PATH}, library 'Documents' found; folder "
        "'DPS Reconciliation' is missing (the first delivery creates it)")
    standin.stop()
    code, lines, _ = check(ready)
    assert code == 1
    assert "NOT READY" in line_for(lines, "sharepoint")
    assert "sign-in failed" in line_for(lines, "sharepoint")


def test_sharepoint_write_probe_uploads_and_removes(ready, standin):
    with_sharepoint(ready, standin)
    code, lines, _ = check(ready, "--write-probe")
    code, lines, _ = check(ready, "--write-probe")
    assert code == 0, lines
    assert line_for(lines, "sharepoint").endswith(
        "folder 'DPS Reconciliation' found; a write probe in DPS Reconciliation was uploaded "
        "and removed")
    library = standin.root
    assert [p.name for p in library.rglob("*") if p.is_file() and "dps-check" in p.name] == []


def test_the_fixed_part_of_the_sharepoint_folder():
    assert static_folder("DPS Reconciliation/{fiscal_year}/{quarter}") == "DPS Reconciliation"
    assert static_folder("Reports/FY{fiscal_year}") == "Reports"
    assert static_folder("{fiscal_year}") == ""
    assert static_folder("Fixed/Folder") == "Fixed/Folder"


# --------------------------------------------------------------------------- databases


def test_sqlite_file_missing_is_not_ready(ready, tmp_path):
    ready.configure(database={"url": f"sqlite:///{tmp_path / 'gone.sqlite'}"})
    code, lines, _ = check(ready)
    assert code == 1
    assert line_for(lines, "database").endswith("gone.sqlite: file not found")


def test_a_query_lacking_a_contract_column_is_not_ready(ready, tmp_path):
    sql = tmp_path / "sql"
    sql.mkdir()
    for source in (Path(__file__).resolve().parent.parent / "sql").glob("*.sql"):
        (sql / source.name).write_text(source.read_text().replace("AS SEX,", "AS GENDER,"))
    ready.configure(database={"sql_folder": str(sql)})
    code, lines, _ = check(ready)
    assert code == 1
    assert line_for(lines, "database").endswith("send_children.sql: result lacks column SEX")


def test_postgres_up_is_ready_and_down_is_not(typed_ready, postgres_server):
    code, lines, _ = check(typed_ready)
    assert code == 0, lines
    assert f"postgresql+psycopg://postgres@127.0.0.1:{postgres_server.port}/" in \
        line_for(lines, "database")
    typed_ready.configure(database={
        "url": f"postgresql+psycopg://postgres@127.0.0.1:{find_free_port()}/impact"})
    code, lines, _ = check(typed_ready)
    assert code == 1
    database = line_for(lines, "database")
    assert "NOT READY" in database and "query send_children" in database


def test_secrets_are_never_printed(ready, smtp_server):
    """A database password and a mail login from the environment: not on stdout or stderr."""
    port, _ = smtp_server
    with_mail(ready, port)
    ready.configure(
        database={"url": f"postgresql+psycopg://dps@127.0.0.1:{find_free_port()}/impact",
                  "password_env": "DPS_DB_PASSWORD"},
        mail={"username_env": "DPS_MAIL_USER", "password_env": "DPS_MAIL_PASSWORD"})
    env = {**os.environ, "DPS_DB_PASSWORD": SECRET, "DPS_MAIL_USER": "mailer",
           "DPS_MAIL_PASSWORD": SECRET + "-mail"}
    code, lines, stderr = check(ready, env=env)
    assert code == 1
    assert SECRET not in "\n".join(lines) + stderr
    assert "postgresql+psycopg://dps:***@127.0.0.1" in line_for(lines, "database")
    assert "NOT READY" in line_for(lines, "mail")   # aiosmtpd offers no AUTH without TLS


# ------------------------------------------------------------------ archive key, health URL


def with_key(space, tmp_path, name: str) -> None:
    from exchange.vault import new_key

    key = tmp_path / name
    key.write_text(new_key() + "\n")
    key.chmod(0o600)
    space.configure(archive={"encrypt": True, "key_id": "2026-12", "key_file": str(key)})


def test_archive_key_matching_its_key_check_is_ready_and_another_key_is_not(ready, tmp_path):
    with_key(ready, tmp_path, "key_a")
    code, lines, _ = check(ready)
    assert code == 0, lines
    assert line_for(lines, "archive").endswith(
        "key(s) readable; 2026-12: no key check yet (the first run writes it)")
    assert ready.send("--as-of", "2025-06-20") == 0       # the first run writes the check
    code, lines, _ = check(ready)
    assert line_for(lines, "archive").endswith("2026-12: matches its key check")
    with_key(ready, tmp_path, "key_b")
    code, lines, _ = check(ready)
    assert code == 1
    assert "archive key '2026-12' does not open" in line_for(lines, "archive")


def test_health_url_answering_is_ready_and_silent_is_not(ready, smtp_server):
    ready.configure(health={"url": f"http://127.0.0.1:{smtp_server[0]}/ping/abc"})
    code, lines, _ = check(ready)
    assert code == 0, lines
    assert line_for(lines, "health").endswith(f"http://127.0.0.1:{smtp_server[0]}: answers "
                                              "(no ping sent)")
    ready.configure(health={"url": f"http://127.0.0.1:{find_free_port()}/ping/abc"})
    code, lines, _ = check(ready)
    assert code == 1
    assert "no answer (Connection refused)" in line_for(lines, "health")


def test_an_sa98_extract_is_checked_for_its_columns(ready):
    extract = ready.root / "sa98_extract.csv"
    extract.write_text("Episode,Child PID,Last,First,Birth,Ran,Back,County\n"
                       "504,1004,X,Y,2010-07-20,2025-05-20,2025-05-25,71\n", encoding="utf-8")
    columns = {"Episode": "EPISODE_ID", "Child PID": "PID", "Last": "LAST_NAME",
               "First": "FIRST_NAME", "Birth": "DOB", "Ran": "RUNAWAY_DATE",
               "Back": "RETURN_DATE", "County": "COUNTY_CODE"}
    ready.configure(sa_98={"source": "file", "extract_file": str(extract), "columns": columns})
    done = ready.cli("receivedps.py", "--check")
    assert done.returncode == 0, done.stdout
    assert "county_region, caseworker return their contract columns (no rows read); sa_98 " \
           "extract sa98_extract.csv: 1 row(s) with its contract columns" in done.stdout
    del columns["County"]
    ready.configure(sa_98={"columns": columns})
    done = ready.cli("receivedps.py", "--check")
    assert done.returncode == 1
    assert f"{extract}: missing column COUNTY_CODE (map it in sa_98.columns)" in done.stdout
