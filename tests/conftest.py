"""Real components for the tests: an OpenSSH sshd on 127.0.0.1, an SMTP server, SQLite files.

Each test gets its own folders and its own remote folders on the one session-wide sshd.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from demo.local_sftp import (  # noqa: E402
    LocalSftpServer,
    find_free_port,
    settings_for_local_server,
    start_local_sftp_server,
)
from tests.scenario import build_scenario_db  # noqa: E402


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> LocalSftpServer:
    """A real OpenSSH sshd. In CI a missing sshd fails the suite instead of skipping."""
    if not Path("/usr/sbin/sshd").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("/usr/sbin/sshd is missing: CI must install openssh-server")
        pytest.skip("/usr/sbin/sshd is not installed (apt-get install openssh-server)")
    root = tmp_path_factory.mktemp("sftp_root")
    state = tmp_path_factory.mktemp("sftp_state")
    server = start_local_sftp_server(root, state, kind="openssh")
    yield server
    server.stop()


@dataclass
class Mailbox:
    messages: list[Any] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import email
        import email.policy

        self.messages.append(email.message_from_bytes(envelope.content,
                                                      policy=email.policy.default))
        return "250 OK"

    def bodies(self) -> list[str]:
        texts = []
        for message in self.messages:
            for part in message.walk():
                if part.get_content_maintype() == "text":
                    texts.append(part.get_content())
        return texts


@pytest.fixture
def smtp_server() -> Any:
    """A real SMTP server (aiosmtpd) on a free 127.0.0.1 port; yields (port, Mailbox)."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = find_free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mailbox
    controller.stop()


@dataclass
class Workspace:
    """One test's world: a config file, a scenario database, folders, remote folders."""

    root: Path
    config_path: Path
    db_path: Path
    server: LocalSftpServer | None    # None: an offline scenario (no SFTP server)
    remote_prefix: str
    settings: dict[str, Any]

    @property
    def upload_dir(self) -> Path:
        return self.server.root / self.remote_prefix / "FROM_DFPS"

    @property
    def answer_dir(self) -> Path:
        return self.server.root / self.remote_prefix / "TO_DFPS"

    def folder(self, name: str) -> Path:
        return self.root / name

    def configure(self, **sections: dict[str, Any]) -> None:
        """Change settings, e.g. configure(sanity={"min_rows": 5})."""
        for section, values in sections.items():
            self.settings.setdefault(section, {}).update(values)
        self.config_path.write_text(yaml.safe_dump(self.settings, allow_unicode=True))

    def send(self, *args: str) -> int:
        import send2dps

        return send2dps.main(["--config", str(self.config_path), *args])

    def receive(self, *args: str) -> int:
        import receivedps

        return receivedps.main(["--config", str(self.config_path), *args])

    def cli(self, script: str, *args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run a script as a user would, in a separate process."""
        return subprocess.run([sys.executable, str(REPO / script), "--config",
                               str(self.config_path), *args], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=self.root, check=False)

    def put_answer(self, results: bytes, counts: bytes) -> None:
        """Play DPS: write the answer files into TO_DFPS (on the server's disk, as DPS would)."""
        self.answer_dir.mkdir(parents=True, exist_ok=True)
        (self.answer_dir / "Dfps-missing-person-results.txt").write_bytes(results)
        (self.answer_dir / "Dfps-missing-person-counts.txt").write_bytes(counts)

    def manifests(self, step: str) -> list[dict[str, Any]]:
        import util

        return util.read_manifests(self.folder("state"), step)

    def log_text(self) -> str:
        return "\n".join(p.read_text(encoding="utf-8") for p in
                         sorted(self.folder("logs").glob("*.log")))


def base_settings(root: Path, db_path: Path, server: LocalSftpServer, prefix: str
                  ) -> dict[str, Any]:
    shipped = settings_for_local_server(server, root, db_path, prefix)
    shipped["sftp"].update(retries=1, retry_backoff_seconds=0.1, connect_timeout_seconds=5,
                           banner_timeout_seconds=5, auth_timeout_seconds=5,
                           channel_timeout_seconds=10)
    shipped["receive"] = {"poll_seconds": 0.2, "settle_seconds": 0.2, "max_wait_hours": 0.002}
    shipped["reports"]["deliver_to"] = ["share"]   # SharePoint tests add their stand-in
    return shipped


def offline_settings(root: Path, db_path: Path) -> dict[str, Any]:
    """The shipped config pointed at a SQLite file and folders under root, and at an SFTP port
    where nothing listens (with stand-in key files): for tests that never connect."""
    keys = root / "keys"
    keys.mkdir()
    (keys / "client_key").write_text("not a key: this scenario never connects\n")
    (keys / "known_hosts").write_text("")
    settings = yaml.safe_load((REPO / "dps_config.yml").read_text(encoding="utf-8"))
    settings["database"].update(url=f"sqlite:///{db_path}", sql_folder=str(REPO / "sql"))
    settings["reports"]["ori_directory"] = str(REPO / settings["reports"]["ori_directory"])
    settings["sftp"].update(host="127.0.0.1", port=find_free_port(), username="nobody",
                            key_file=str(keys / "client_key"),
                            known_hosts_file=str(keys / "known_hosts"), retries=0)
    settings["folders"] = {name: str(root / name) for name in
                           ("outbox", "staging", "archive", "state", "logs", "share")}
    settings["reports"]["deliver_to"] = ["share"]
    return settings


@pytest.fixture
def scenario(tmp_path: Path) -> Workspace:
    """The scenario database, folders and a config, without an SFTP server: for the tests
    that never connect (dry runs, config errors, wrangling, --status)."""
    db_path = build_scenario_db(tmp_path / "impact.sqlite")
    (tmp_path / "share").mkdir()
    space = Workspace(tmp_path, tmp_path / "dps_config.yml", db_path, None, "",
                      offline_settings(tmp_path, db_path))
    space.configure()
    return space


@pytest.fixture
def workspace(tmp_path: Path, sftp_server: LocalSftpServer, request: pytest.FixtureRequest
              ) -> Workspace:
    """The scenario with a real sshd: its own remote folders on the session-wide server."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    prefix = "t_" + re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:50] + "_" + digest
    db_path = build_scenario_db(tmp_path / "impact.sqlite")
    (tmp_path / "share").mkdir()
    settings = base_settings(tmp_path, db_path, sftp_server, prefix)
    space = Workspace(tmp_path, tmp_path / "dps_config.yml", db_path, sftp_server, prefix,
                      settings)
    space.configure()
    return space


# ---------------------------------------------------------------------------
# The reliability figures (README "Reliability"): tests marked
# @pytest.mark.reliability("category") are counted per category and printed at the end of the
# run; the README quotes this table.
# ---------------------------------------------------------------------------

RELIABILITY_CATEGORIES = ["transfer faults", "local faults", "bad inbound corpus",
                          "bad source rows", "overlapping runs", "crash and resume", "security",
                          "sharepoint delivery", "audit and archive"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: starts a server, a subprocess or the demo (left "
                                       "out by the fast lane, -m 'not slow')")
    config.addinivalue_line("markers", "reliability(category): counted in the reliability "
                                       "table printed at the end of the run")
    # What the product leaves open or warns about is an error here, so it stays gone; the
    # libraries' own deprecations are not (the requirements are not pinned).
    for rule in ("error::pytest.PytestUnraisableExceptionWarning", "error::ResourceWarning",
                 r"error::Warning:(exchange|send2dps|receivedps|util)(\.|$)"):
        config.addinivalue_line("filterwarnings", rule)


# The fast lane (README "Tests"): `pytest -m "not slow"` leaves out every test that starts a
# server (sshd, the Graph stand-in), a subprocess or the demo; the full command runs them all.
SLOW_FIXTURES = {"sftp_server", "workspace", "standin", "clone", "smtp_server", "share",
                 "postgres_server", "typed_workspace", "proftpd_server", "proftpd_workspace"}
SLOW_MODULES = {"test_demo", "test_cron", "test_local_sftp", "test_reliability", "test_graph",
                "test_postgres", "test_proftpd", "test_check"}


def is_slow(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return bool(fixtures & SLOW_FIXTURES) or item.module.__name__.split(".")[-1] in SLOW_MODULES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if is_slow(item):
            item.add_marker(pytest.mark.slow)
        marker = item.get_closest_marker("reliability")
        if marker is not None:
            assert marker.args[0] in RELIABILITY_CATEGORIES, marker.args[0]
            item.user_properties.append(("reliability", marker.args[0]))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    table: dict[str, dict[str, int]] = {}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            category = dict(getattr(report, "user_properties", [])).get("reliability")
            if category is None or (outcome == "passed" and report.when != "call"):
                continue
            counts = table.setdefault(category, {"cases": 0, "passed": 0, "failed": 0,
                                                 "skipped": 0})
            counts["cases"] += 1
            counts["failed" if outcome in ("failed", "error") else outcome] += 1
    if not table:
        return
    terminalreporter.write_sep("-", "reliability cases (README: Reliability)")
    terminalreporter.write_line(f"{'category':22} {'cases':>6} {'passed':>7} {'failed':>7} "
                                f"{'skipped':>8}")
    for category in RELIABILITY_CATEGORIES:
        if category in table:
            c = table[category]
            terminalreporter.write_line(f"{category:22} {c['cases']:>6} {c['passed']:>7} "
                                        f"{c['failed']:>7} {c['skipped']:>8}")


# ---------------------------------------------------------------------------
# Production-shaped systems (tests/real_servers.py): PostgreSQL with typed columns, ProFTPD.
# In CI a missing one fails the suite instead of skipping, as sshd does.
# ---------------------------------------------------------------------------

def require_component(available: bool, what: str, package: str) -> None:
    if not available:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{what} is missing: CI must install {package}")
        pytest.skip(f"{what} is not installed (apt-get install {package})")


@pytest.fixture(scope="session")
def postgres_server() -> Any:
    """A real PostgreSQL 15 server on a free 127.0.0.1 port for the whole session."""
    from tests.real_servers import postgres_available, start_postgres

    require_component(postgres_available(), "PostgreSQL 15 (initdb, pg_ctl)", "postgresql")
    server = start_postgres()
    yield server
    server.stop()


def typed_copy_url(postgres_server: Any, sqlite_path: Path, label: str) -> str:
    """Copy a SQLite database into a new typed PostgreSQL database; return its URL."""
    from tests.real_servers import copy_sqlite_to_postgres

    name = "t_" + hashlib.sha256(f"{label}{sqlite_path}".encode()).hexdigest()[:12]
    copy_sqlite_to_postgres(sqlite_path, postgres_server, name)
    return postgres_server.url(name)


@pytest.fixture
def typed_workspace(tmp_path: Path, sftp_server: LocalSftpServer, postgres_server: Any,
                    request: pytest.FixtureRequest) -> Workspace:
    """The scenario copied into PostgreSQL (typed columns, dates at 14:35), with a real sshd."""
    root = tmp_path / "typed"
    root.mkdir()
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    prefix = "pg_" + re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:50] + "_" + digest
    db_path = build_scenario_db(root / "impact.sqlite")
    (root / "share").mkdir()
    settings = base_settings(root, db_path, sftp_server, prefix)
    settings["database"]["url"] = typed_copy_url(postgres_server, db_path, request.node.nodeid)
    space = Workspace(root, root / "dps_config.yml", db_path, sftp_server, prefix, settings)
    space.configure()
    return space


@pytest.fixture(scope="session")
def proftpd_server(tmp_path_factory: pytest.TempPathFactory) -> LocalSftpServer:
    """ProFTPD's mod_sftp (a second SFTP implementation) on a free 127.0.0.1 port."""
    from tests.real_servers import proftpd_available, start_proftpd

    require_component(proftpd_available(), "ProFTPD with mod_sftp",
                      "proftpd-core proftpd-mod-crypto")
    server = start_proftpd(tmp_path_factory.mktemp("proftpd_root"),
                           tmp_path_factory.mktemp("proftpd_state"))
    yield server
    server.stop()


@pytest.fixture
def proftpd_workspace(tmp_path: Path, proftpd_server: LocalSftpServer,
                      request: pytest.FixtureRequest) -> Workspace:
    """The scenario with ProFTPD as the partner's server: its own remote folders."""
    digest = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8]
    prefix = "p_" + re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:50] + "_" + digest
    db_path = build_scenario_db(tmp_path / "impact.sqlite")
    (tmp_path / "share").mkdir()
    settings = base_settings(tmp_path, db_path, proftpd_server, prefix)
    space = Workspace(tmp_path, tmp_path / "dps_config.yml", db_path, proftpd_server, prefix,
                      settings)
    space.configure()
    return space
