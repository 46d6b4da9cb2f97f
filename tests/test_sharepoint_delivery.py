"""SharePoint as a second delivery target (README "SharePoint"), end to end: a real sshd, the
Graph stand-in (real HTTPS on 127.0.0.1, demo/graph_standin.py), a real SMTP server. Each
target is delivered and recorded on its own; a target that is down costs the others nothing,
and the next run delivers only what is missing, then mails."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.graph_standin import GraphStandIn, ensure_certificates, start_graph_standin
from tests.scenario import report_file, report_files, scenario_answer

pytestmark = pytest.mark.reliability("sharepoint delivery")

AS_OF = ("--as-of", "2025-06-20")
TENANT, CLIENT = "tenant-0001", "client-0001"
SITE_HOST, SITE_PATH, LIBRARY = "contoso.sharepoint.com", "/sites/ChildWelfare", "Documents"
REPORTS = report_files()   # every report of the registry, as the share lists them
FOLDER = Path("DPS Reconciliation") / "FY2025" / "Q3"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("graph_certs")
    ensure_certificates(folder)
    return folder


@pytest.fixture
def standin(tmp_path: Path, certificates: Path) -> Iterator[GraphStandIn]:
    server = start_graph_standin(tmp_path / "sharepoint", TENANT, CLIENT, SITE_HOST, SITE_PATH,
                                 LIBRARY, state_dir=certificates)
    yield server
    server.stop()


@pytest.fixture
def both(workspace, standin, smtp_server):
    """A workspace delivering to the share and to the stand-in, mail on; the send is done."""
    port, mailbox = smtp_server
    workspace.configure(
        reports={"deliver_to": ["share", "sharepoint"]},
        sharepoint={"tenant_id": TENANT, "client_id": CLIENT, "login_host": standin.login_host,
                    "graph_host": standin.host, "certificate_file": str(standin.client_cert_file),
                    "private_key_file": str(standin.client_key_file),
                    "ca_file": str(standin.ca_file), "site_host": SITE_HOST,
                    "site_path": SITE_PATH, "library": LIBRARY, "max_tries": 2,
                    "timeout_seconds": 5},
        mail={"enabled": True, "host": "127.0.0.1", "port": port,
              "recipients": ["analyst@dfps.example"]})
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    workspace.mailbox = mailbox
    return workspace


READY = "[DPS exchange] reports for FY2025Q3 are ready"


def subjects(space) -> list[str]:
    return [message["Subject"] for message in space.mailbox.messages]


def in_library(standin: GraphStandIn) -> list[str]:
    folder = standin.library_folder / FOLDER
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def uploads(standin: GraphStandIn) -> int:
    return sum(1 for r in standin.records if r.method == "POST" and
               r.path.endswith(":/createUploadSession"))


def test_both_targets_get_every_report_and_the_mail_says_where(both, standin):
    assert both.receive(*AS_OF) == 0
    assert sorted(p.name for p in both.folder("share").iterdir()) == REPORTS
    assert in_library(standin) == REPORTS
    for name in REPORTS:
        assert (standin.library_folder / FOLDER / name).read_bytes() == \
            (both.folder("share") / name).read_bytes()
    run = both.manifests("receive")[-1]
    assert sorted(run["delivered_to"]) == ["share", "sharepoint"]
    links = run["delivered_to"]["sharepoint"]
    assert sorted(links) == REPORTS
    assert all(link.startswith("https://") for link in links.values())
    [message] = both.mailbox.messages
    text = both.mailbox.bodies()[0]
    impact = report_file("impact")
    assert links[impact] in text and str(both.folder("share") / impact) in text
    assert message["Subject"] == READY


def test_sharepoint_down_the_share_is_served_and_the_next_run_catches_up(both, standin,
                                                                         capsys):
    ports = [int(host.rsplit(":", 1)[1]) for host in (standin.host, standin.login_host)]
    standin.stop_login()
    result = both.cli("receivedps.py", *AS_OF)
    assert result.returncode == 1
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(r"receivedps\.py: error: sharepoint: .+", last), last
    assert sorted(p.name for p in both.folder("share").iterdir()) == REPORTS
    assert in_library(standin) == []
    # the failure alert goes out; the summary mail waits until every target has the reports
    assert subjects(both) == ["[DPS exchange] receive FAILED FY2025Q3"]
    shared = {p.name: p.stat().st_mtime_ns for p in both.folder("share").iterdir()}

    standin.stop()
    standin.start(*ports)                               # SharePoint is back
    assert both.receive(*AS_OF) == 0
    assert in_library(standin) == REPORTS
    assert {p.name: p.stat().st_mtime_ns for p in both.folder("share").iterdir()} == shared
    assert subjects(both)[1:] == [READY]
    assert list((both.folder("outbox") / "reports").rglob("*.xlsx")) == []
    assert both.receive("--status") == 0
    assert (f"delivered ({len(REPORTS)} to the share, {len(REPORTS)} to SharePoint)"
            in capsys.readouterr().out)


def test_share_down_sharepoint_is_served_and_the_next_run_catches_up(both, standin):
    share = both.folder("share")
    share.rename(both.root / "share_offline")
    assert both.receive(*AS_OF) == 1
    assert both.manifests("receive")[-1]["error"].startswith(f"share {share}: not reachable")
    assert in_library(standin) == REPORTS
    sessions = uploads(standin)
    (both.root / "share_offline").rename(share)
    assert both.receive(*AS_OF) == 0
    assert sorted(p.name for p in share.iterdir()) == REPORTS
    assert uploads(standin) == sessions                 # nothing uploaded twice
    assert subjects(both) == ["[DPS exchange] receive FAILED FY2025Q3", READY]


def test_a_rerun_uploads_nothing_and_force_replaces(both, standin):
    assert both.receive(*AS_OF) == 0
    sessions = uploads(standin)
    assert both.receive(*AS_OF) == 0
    assert both.manifests("receive")[-1]["outcome"] == "nothing new"
    assert uploads(standin) == sessions
    assert both.receive(*AS_OF, "--force") == 0
    assert uploads(standin) == sessions + len(REPORTS)
    assert in_library(standin) == REPORTS


def test_bad_credentials_are_one_line_naming_sharepoint(both, standin):
    standin.reject_credentials = True
    result = both.cli("receivedps.py", *AS_OF)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == (
        "receivedps.py: error: sharepoint: sign-in failed (invalid_client, HTTP 401)")


def test_no_token_secret_or_upload_url_in_logs_records_or_mail(both, standin):
    standin.cut_next_upload(2_000)                      # a resume, to log the most
    assert both.receive(*AS_OF) == 0
    texts = [p.read_text(encoding="utf-8") for p in both.folder("logs").rglob("*")
             if p.is_file()]
    texts += [p.read_text(encoding="utf-8") for p in both.folder("state").rglob("*.json")]
    texts += [p.read_text(encoding="utf-8") for p in
              (both.folder("outbox") / "reports").rglob(".delivered.json")]
    texts += both.mailbox.bodies()
    blob = "\n".join(texts)
    assert "tempauth" not in blob
    assert "eyJ" not in blob                            # no JWT (token or client assertion)
    assert standin.client_secret not in blob
    assert "Bearer" not in blob
    run = both.manifests("receive")[-1]
    assert json.dumps(run["delivery_proofs"]).count("quick") == 2 * len(REPORTS)


def test_config_refuses_a_library_or_folder_that_leaves_the_library(both):
    both.configure(sharepoint={"folder": "DPS Reconciliation/../../Other"})
    result = both.cli("receivedps.py", *AS_OF)
    assert (result.returncode, result.stderr) == (
        2, f"receivedps.py: error: config {both.config_path}: sharepoint.folder: '..' or '.' "
           f"would leave the folder\n")
    both.configure(sharepoint={"folder": "Reports", "library": "Documents/Other"})
    result = both.cli("receivedps.py", *AS_OF)
    assert result.stderr == (f"receivedps.py: error: config {both.config_path}: "
                             f"sharepoint.library: a library name, not a path\n")


def test_attachments_with_sharepoint_only_come_from_the_delivered_reports(both):
    """deliver_to: [sharepoint] with attachments on: the share is not read (it may not exist);
    the attachments are the reports every target got, read back from the archive."""
    both.configure(reports={"deliver_to": ["sharepoint"]},
                   mail={"attachments": True, "allowed_domains": ["dfps.example"]})
    assert both.receive(*AS_OF) == 0
    message = both.mailbox.messages[-1]
    attached = {p.get_filename(): p.get_payload(decode=True) for p in message.walk()
                if p.get_filename()}
    assert sorted(attached) == REPORTS
    assert all(content.startswith(b"PK") for content in attached.values())
    assert both.manifests("receive")[-1]["where"] == \
        f"SharePoint {SITE_HOST}{SITE_PATH} ({LIBRARY})"
