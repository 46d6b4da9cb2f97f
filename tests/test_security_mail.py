"""Issue 20, items 10 and 12 (mail): a mail secret whose environment variable is unset, and a
login that would cross the network in plain text, are found before anything is sent or
delivered: one line, a run record and an audit line with the same exit code."""

from __future__ import annotations

import json

import pytest

from tests.scenario import scenario_answer

security = pytest.mark.reliability("security")
AS_OF = ("--as-of", "2025-06-20")


def mail_to(space, port: int, **extra) -> None:
    space.configure(mail={"enabled": True, "host": "127.0.0.1", "port": port,
                          "recipients": ["analyst@dfps.example"], **extra})


def last_audit_line(space) -> dict:
    return json.loads((space.folder("logs") / "audit.jsonl").read_text().splitlines()[-1])


@security
def test_an_unset_mail_password_variable_stops_the_receive_before_delivery(workspace,
                                                                           smtp_server):
    port, mailbox = smtp_server
    assert workspace.send(*AS_OF) == 0
    workspace.put_answer(*scenario_answer())
    mail_to(workspace, port, starttls=True, username_env="DPS_TEST_SMTP_USER",
            password_env="DPS_TEST_SMTP_PASSWORD_UNSET")
    env = {"PATH": "/usr/bin:/bin", "DPS_TEST_SMTP_USER": "dfps"}
    result = workspace.cli("receivedps.py", *AS_OF, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "receivedps.py: error: mail.password_env: environment variable "
        "DPS_TEST_SMTP_PASSWORD_UNSET is not set; no mail could be sent, so the run stops "
        "before it sends or delivers anything")
    assert "Traceback" not in result.stderr
    record = workspace.manifests("receive")[-1]
    assert (record["exit_code"], record["outcome"]) == (2, "failed")
    assert (last_audit_line(workspace)["exit_code"], last_audit_line(workspace)["run_id"]) == \
        (2, record["run_id"])
    assert list(workspace.folder("share").iterdir()) == []
    assert mailbox.messages == []


@security
def test_an_smtp_login_without_starttls_is_refused_unless_allowed(workspace, smtp_server):
    port, _ = smtp_server
    mail_to(workspace, port, username_env="DPS_TEST_SMTP_USER",
            password_env="DPS_TEST_SMTP_PASSWORD")
    env = {"PATH": "/usr/bin:/bin", "DPS_TEST_SMTP_USER": "dfps",
           "DPS_TEST_SMTP_PASSWORD": "not-a-real-password"}
    result = workspace.cli("send2dps.py", *AS_OF, env=env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "send2dps.py: error: mail: a login (mail.username_env / mail.password_env) without "
        "mail.starttls would send the password in plain text; set mail.starttls: true, or "
        "mail.allow_plain_login: true for a relay on a trusted network")
    assert "not-a-real-password" not in result.stderr + workspace.log_text()
    assert not workspace.upload_dir.exists()
    workspace.configure(mail={"allow_plain_login": True, "enabled": False})
    assert workspace.cli("send2dps.py", *AS_OF, env=env).returncode == 0
