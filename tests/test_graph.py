"""SharePoint delivery through Microsoft Graph, against the stand-in (real HTTPS on 127.0.0.1).

Each test starts its own stand-in (demo/graph_standin.py): a login host that checks msal's
signed assertion, and a Graph host with real upload-session byte ranges and fault switches.
QuickXorHash is checked against the independent `quickxorhash` package (C).
"""

from __future__ import annotations

import base64
import logging
import os
import random
import signal
import ssl
import subprocess
import sys
import time
import traceback
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import quickxorhash
import requests

from demo.graph_standin import (
    GraphStandIn,
    certificate_files,
    ensure_certificates,
    start_graph_standin,
    write_ca_and_server_pair,
    write_client_pair,
)
from exchange.errors import ConfigError, DeliveryError
from exchange.graph import (
    GraphClient,
    GraphSettings,
    certificate_rejected,
    connect,
    quiet_http_loggers,
)
from exchange.quickxor import QuickXorHash, quickxor_bytes, quickxor_file

pytestmark = pytest.mark.reliability("sharepoint delivery")

REPO = Path(__file__).resolve().parent.parent
TENANT = "tenant-0001"
CLIENT = "client-0001"
SITE_HOST = "contoso.sharepoint.com"
SITE_PATH = "/sites/ChildWelfare"
LIBRARY = "Documents"
FOLDER = "DPS Reconciliation/FY2025/Q3"
UNIT = 327680
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                   "all_proxy")


def reference_quickxor(data: bytes) -> str:
    hasher = quickxorhash.quickxorhash()
    hasher.update(data)
    return base64.b64encode(hasher.digest()).decode()


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One set of stand-in certificates for the whole session (key generation is slow)."""
    folder = tmp_path_factory.mktemp("graph_certs")
    ensure_certificates(folder)
    return folder


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to 127.0.0.1 must not go through a proxy from the environment."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def standin(tmp_path: Path, certificates: Path) -> Iterator[GraphStandIn]:
    server = start_graph_standin(tmp_path / "sharepoint", TENANT, CLIENT, SITE_HOST,
                                 SITE_PATH, LIBRARY, state_dir=certificates)
    yield server
    server.stop()


@pytest.fixture
def settings(standin: GraphStandIn) -> GraphSettings:
    return GraphSettings(
        tenant_id=TENANT, client_id=CLIENT, login_host=standin.login_host,
        graph_host=standin.host, certificate_file=standin.client_cert_file,
        private_key_file=standin.client_key_file, ca_file=standin.ca_file,
        site_host=SITE_HOST, site_path=SITE_PATH, library=LIBRARY, timeout_seconds=10,
        max_tries=3, chunk_bytes=UNIT)


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(settings: GraphSettings, sleeps: list[float]) -> Iterator[GraphClient]:
    with connect(settings, sleep=sleeps.append) as graph:
        yield graph


def make_file(folder: Path, name: str, size: int, seed: int = 1) -> Path:
    path = folder / name
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def make_workbook(folder: Path, name: str = "IMPACT_not_in_DPS_FY2025_Q3.xlsx") -> Path:
    """A small zip shaped like an .xlsx (what SharePoint rewrites)."""
    path = folder / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>" * 50)
    return path


def stored(standin: GraphStandIn, name: str, folder: str = FOLDER) -> Path:
    return standin.library_folder / folder / name


def puts(standin: GraphStandIn) -> list[Any]:
    return [r for r in standin.records if r.method == "PUT" and r.path.startswith("/upload/")]


def one_line(error: pytest.ExceptionInfo[Exception]) -> str:
    text = str(error.value)
    assert "\n" not in text
    return text


# ----------------------------------------------------------------------------- QuickXorHash


def test_quickxor_matches_the_reference_package_at_edge_lengths() -> None:
    rng = random.Random(7)
    for length in (0, 1, 2, 19, 20, 21, 159, 160, 161, 319, 320, 321, 4096, 100_003, 1 << 20):
        data = rng.randbytes(length)
        assert quickxor_bytes(data) == reference_quickxor(data), length


def test_quickxor_fed_in_uneven_pieces_equals_one_piece() -> None:
    rng = random.Random(8)
    data = rng.randbytes(250_000)
    hasher, position = QuickXorHash(), 0
    while position < len(data):
        step = rng.choice((1, 7, 160, 161, 999, 65_536))
        hasher.update(data[position:position + step])
        position += step
    assert hasher.base64() == reference_quickxor(data)


def test_quickxor_known_values() -> None:
    """Fixed values (computed with the reference package) guard against regressions."""
    assert quickxor_bytes(b"") == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert quickxor_bytes(b"hello") == "aCgDG9jwBgAAAAAABQAAAAAAAAA="
    assert quickxor_bytes(b"hello") == reference_quickxor(b"hello")


def test_quickxor_of_a_25_mb_file_takes_well_under_a_second(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(25 * 1024 * 1024))
    started = time.perf_counter()
    value = quickxor_file(path)
    elapsed = time.perf_counter() - started
    assert value == reference_quickxor(path.read_bytes())
    assert elapsed < 1.0, f"{elapsed:.2f} s"


# ----------------------------------------------------------------------------- uploads


def test_upload_stores_the_exact_bytes_and_reports_the_item(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    path = make_file(tmp_path, "DPS_total_runaway_events.csv", 5000)
    item = client.upload(path, FOLDER)
    assert stored(standin, path.name).read_bytes() == path.read_bytes()
    assert item.name == path.name
    assert item.web_url == ("https://contoso.sharepoint.com/sites/ChildWelfare/Documents/"
                            "DPS%20Reconciliation/FY2025/Q3/DPS_total_runaway_events.csv")
    assert item.size == 5000
    assert item.local_quick_xor == item.remote_quick_xor == reference_quickxor(
        path.read_bytes())
    assert item.office_rewritten is False
    assert item.item_id


def test_a_file_bigger_than_one_chunk_goes_in_320_kib_fragments_without_bearer_token(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    path = make_file(tmp_path, "big.txt", 1_000_000)
    client.upload(path, FOLDER)
    ranges = [r.content_range for r in puts(standin)]
    assert ranges == ["bytes 0-327679/1000000", "bytes 327680-655359/1000000",
                      "bytes 655360-983039/1000000", "bytes 983040-999999/1000000"]
    assert [r.status for r in puts(standin)] == [202, 202, 202, 201]
    assert not any(r.had_authorization for r in puts(standin))
    assert stored(standin, "big.txt").read_bytes() == path.read_bytes()


def test_upload_replaces_an_existing_file_of_the_same_name(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    first = client.upload(make_file(tmp_path, "report.txt", 1000, seed=1), FOLDER)
    second = client.upload(make_file(tmp_path, "report.txt", 700, seed=2), FOLDER)
    assert second.item_id == first.item_id
    assert second.size == 700
    assert stored(standin, "report.txt").read_bytes() == (tmp_path / "report.txt").read_bytes()
    assert [r.status for r in puts(standin)] == [201, 200]  # created, then replaced


def test_an_empty_file_is_uploaded_with_a_simple_put(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    item = client.upload(make_file(tmp_path, "empty.txt", 0), FOLDER)
    assert item.size == 0
    assert stored(standin, "empty.txt").read_bytes() == b""


# ----------------------------------------------------------------------------- folders


def test_missing_folders_are_created_one_by_one(
        client: GraphClient, standin: GraphStandIn) -> None:
    folder_id = client.ensure_folder(FOLDER)
    assert (standin.library_folder / FOLDER).is_dir()
    creations = [r for r in standin.records if r.method == "POST" and r.path.endswith(
        "/children")]
    assert [r.status for r in creations] == [201, 201, 201]
    assert client.ensure_folder(FOLDER) == folder_id  # remembered: no second request
    assert len(standin.records) == len(creations) + 5  # sign-in (2), site, drives, root


def test_existing_folders_are_found_after_409(
        settings: GraphSettings, standin: GraphStandIn) -> None:
    (standin.library_folder / FOLDER).mkdir(parents=True)
    with connect(settings) as graph:
        folder_id = graph.ensure_folder(FOLDER)
    conflicts = [r for r in standin.records if r.status == 409]
    assert len(conflicts) == 3
    assert folder_id == standin.item_id(FOLDER)


def test_a_file_where_a_folder_should_be_fails_clearly(
        client: GraphClient, standin: GraphStandIn) -> None:
    (standin.library_folder / "DPS Reconciliation").write_text("not a folder")
    with pytest.raises(DeliveryError) as error:
        client.ensure_folder(FOLDER)
    assert one_line(error) == ("sharepoint: DPS Reconciliation exists in the library but is "
                               "not a folder")


def test_a_folder_name_sharepoint_forbids_is_a_config_error(client: GraphClient) -> None:
    with pytest.raises(ConfigError, match="'FY2025:Q3' is not allowed"):
        client.ensure_folder("DPS Reconciliation/FY2025:Q3")


# ----------------------------------------------------------------------------- faults


def test_a_connection_cut_mid_fragment_resumes_where_the_server_stands(
        settings: GraphSettings, standin: GraphStandIn, sleeps: list[float],
        tmp_path: Path) -> None:
    path = make_file(tmp_path, "resume.txt", 1_500_000)
    standin.cut_next_upload(after_bytes=UNIT)  # the server keeps 320 KiB of the first PUT
    with connect(replace(settings, chunk_bytes=2 * UNIT), sleep=sleeps.append) as graph:
        item = graph.upload(path, FOLDER)
    assert stored(standin, "resume.txt").read_bytes() == path.read_bytes()
    assert item.size == 1_500_000
    upload_calls = [(r.method, r.content_range, r.status) for r in standin.records
                    if r.path.startswith("/upload/")]
    assert upload_calls == [("PUT", "bytes 0-655359/1500000", 0),  # cut: no answer
                            ("GET", "", 200),  # where does the server stand?
                            ("PUT", "bytes 327680-983039/1500000", 202),
                            ("PUT", "bytes 983040-1499999/1500000", 201)]
    assert sleeps == [1.0]


def test_an_expired_upload_session_starts_a_new_one(
        client: GraphClient, standin: GraphStandIn, sleeps: list[float],
        tmp_path: Path) -> None:
    path = make_file(tmp_path, "expire.txt", 800_000)
    standin.expire_sessions_after(fragments=1)
    client.upload(path, FOLDER)
    sessions = [r for r in standin.records if r.path.endswith("createUploadSession")]
    assert len(sessions) == 2
    assert [r.status for r in puts(standin)] == [202, 404, 202, 202, 201]
    assert stored(standin, "expire.txt").read_bytes() == path.read_bytes()
    assert sleeps == []


def test_sessions_that_keep_expiring_give_up_after_max_tries(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    path = make_file(tmp_path, "flaky.txt", 800_000)
    standin.expire_sessions_after(fragments=1)
    original = standin.count_fragment

    def expire_again() -> None:  # every session vanishes after its first fragment
        original()
        standin.expire_sessions_after(fragments=1)

    standin.count_fragment = expire_again  # type: ignore[method-assign]
    with pytest.raises(DeliveryError) as error:
        client.upload(path, FOLDER)
    assert one_line(error) == ("sharepoint: upload of flaky.txt failed: the upload session "
                               "expired 3 times")


def test_a_failed_upload_leaves_no_half_file(
        settings: GraphSettings, standin: GraphStandIn, tmp_path: Path) -> None:
    path = make_file(tmp_path, "half.txt", 700_000)
    standin.cut_next_upload(after_bytes=UNIT)
    with connect(replace(settings, max_tries=1)) as graph, pytest.raises(DeliveryError) as error:
        graph.upload(path, FOLDER)
    assert one_line(error) == "sharepoint: upload of half.txt failed: connection dropped"
    assert list((standin.library_folder / FOLDER).iterdir()) == []


def test_429_waits_for_retry_after_then_succeeds(
        client: GraphClient, standin: GraphStandIn, sleeps: list[float],
        tmp_path: Path) -> None:
    standin.throttle(1, retry_after=7)
    client.upload(make_file(tmp_path, "a.txt", 100), FOLDER)
    assert sleeps == [7.0]
    assert [r.status for r in standin.records].count(429) == 1


def test_429_on_an_upload_fragment_waits_for_retry_after(
        client: GraphClient, standin: GraphStandIn, sleeps: list[float],
        tmp_path: Path) -> None:
    path = make_file(tmp_path, "b.txt", 700_000)
    standin.throttle(2, retry_after=3, uploads_only=True)
    client.upload(path, FOLDER)
    assert sleeps == [3.0, 3.0]
    assert [r.status for r in puts(standin)] == [429, 429, 202, 202, 201]
    assert stored(standin, "b.txt").read_bytes() == path.read_bytes()


def test_503_is_retried_like_429(client: GraphClient, standin: GraphStandIn,
                                 sleeps: list[float], tmp_path: Path) -> None:
    standin.throttle(1, retry_after=2, status=503)
    client.upload(make_file(tmp_path, "c.txt", 100), FOLDER)
    assert sleeps == [2.0]


def test_throttling_gives_up_after_max_tries(
        client: GraphClient, standin: GraphStandIn, sleeps: list[float],
        tmp_path: Path) -> None:
    standin.throttle(100, retry_after=5)
    with pytest.raises(DeliveryError) as error:
        client.upload(make_file(tmp_path, "d.txt", 100), FOLDER)
    assert one_line(error) == ("sharepoint: open the library's root folder failed: HTTP 429 "
                               "(activityLimitReached) after 3 tries")
    assert sleeps == [5.0, 5.0]


def test_throttled_fragments_give_up_after_max_tries(
        client: GraphClient, standin: GraphStandIn, sleeps: list[float],
        tmp_path: Path) -> None:
    standin.throttle(100, retry_after=1, uploads_only=True)
    with pytest.raises(DeliveryError) as error:
        client.upload(make_file(tmp_path, "e.txt", 100), FOLDER)
    assert one_line(error) == ("sharepoint: upload of e.txt failed: HTTP 429 "
                               "(activityLimitReached) after 3 tries")
    assert sleeps == [1.0, 1.0]


def test_an_office_file_rewritten_by_sharepoint_is_recorded_not_failed(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    standin.enrich_office_files = True
    path = make_workbook(tmp_path)
    item = client.upload(path, FOLDER)
    on_disk = stored(standin, path.name).read_bytes()
    assert item.office_rewritten is True
    assert item.local_quick_xor == reference_quickxor(path.read_bytes())
    assert item.remote_quick_xor == reference_quickxor(on_disk)
    assert item.remote_quick_xor != item.local_quick_xor
    assert item.size == len(on_disk) != path.stat().st_size


def test_an_office_file_stored_unchanged_is_not_flagged(
        client: GraphClient, tmp_path: Path) -> None:
    item = client.upload(make_workbook(tmp_path), FOLDER)
    assert item.office_rewritten is False
    assert item.remote_quick_xor == item.local_quick_xor


def test_a_wrong_hash_for_a_plain_file_fails_naming_the_file(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    standin.wrong_hash_for_plain_files = True
    with pytest.raises(DeliveryError) as error:
        client.upload(make_file(tmp_path, "counts.txt", 1234), FOLDER)
    assert one_line(error) == ("sharepoint: counts.txt was stored differently from what was "
                               "sent (sent 1234 bytes, stored 1234; QuickXorHash differs)")


# ----------------------------------------------------------------------------- signing in


def test_the_assertion_is_ps256_with_the_sha256_thumbprint(
        client: GraphClient, standin: GraphStandIn) -> None:
    header = standin.last_assertion_header
    assert header["alg"] == "PS256"
    assert "x5t#S256" in header and "x5c" in header
    assert "x5t" not in header  # the SHA-1 thumbprint path is not used


def test_bad_credentials_are_one_delivery_error_line(
        settings: GraphSettings, standin: GraphStandIn) -> None:
    standin.reject_credentials = True
    with pytest.raises(DeliveryError) as error:
        connect(settings)
    assert one_line(error) == "sharepoint: sign-in failed (invalid_client, HTTP 401)"


def test_a_certificate_not_registered_for_the_app_is_refused(
        settings: GraphSettings, tmp_path: Path) -> None:
    write_client_pair(tmp_path / "other.pem", tmp_path / "other.key")
    other = replace(settings, certificate_file=tmp_path / "other.pem",
                    private_key_file=tmp_path / "other.key")
    with pytest.raises(DeliveryError) as error:
        connect(other)
    assert one_line(error) == "sharepoint: sign-in failed (invalid_client, HTTP 401)"


def test_a_passphrase_protected_key_signs_in(
        settings: GraphSettings, standin: GraphStandIn, tmp_path: Path) -> None:
    write_client_pair(tmp_path / "app.pem", tmp_path / "app.key", passphrase="open sesame")
    standin.register_certificate(tmp_path / "app.pem")
    protected = replace(settings, certificate_file=tmp_path / "app.pem",
                        private_key_file=tmp_path / "app.key",
                        private_key_passphrase="open sesame")
    with connect(protected) as graph:
        assert graph.ensure_folder("")


def test_a_wrong_passphrase_is_a_config_error(
        settings: GraphSettings, tmp_path: Path) -> None:
    write_client_pair(tmp_path / "app.pem", tmp_path / "app.key", passphrase="right")
    wrong = replace(settings, certificate_file=tmp_path / "app.pem",
                    private_key_file=tmp_path / "app.key", private_key_passphrase="wrong")
    with pytest.raises(ConfigError, match="wrong or missing passphrase"):
        connect(wrong)


def test_a_key_of_another_certificate_is_a_config_error(
        settings: GraphSettings, tmp_path: Path) -> None:
    write_client_pair(tmp_path / "other.pem", tmp_path / "other.key")
    mixed = replace(settings, private_key_file=tmp_path / "other.key")
    with pytest.raises(ConfigError, match="does not belong to certificate_file"):
        connect(mixed)


def test_a_client_secret_signs_in(settings: GraphSettings, standin: GraphStandIn) -> None:
    with_secret = replace(settings, certificate_file=None, private_key_file=None,
                          client_secret=standin.client_secret)
    with connect(with_secret) as graph:
        assert graph.ensure_folder("")


def test_a_wrong_client_secret_is_refused(settings: GraphSettings) -> None:
    wrong = replace(settings, certificate_file=None, private_key_file=None,
                    client_secret="not-the-secret")
    with pytest.raises(DeliveryError) as error:
        connect(wrong)
    assert one_line(error) == "sharepoint: sign-in failed (invalid_client, HTTP 401)"


def test_login_host_down_is_one_delivery_error_line(
        settings: GraphSettings, standin: GraphStandIn) -> None:
    standin.stop_login()
    with pytest.raises(DeliveryError) as error:
        connect(settings)
    assert one_line(error) == (f"sharepoint: sign-in failed (login host {settings.login_host}"
                               ": connection failed)")


def test_an_unknown_tenant_is_one_delivery_error_line(settings: GraphSettings) -> None:
    with pytest.raises(DeliveryError) as error:
        connect(replace(settings, tenant_id="no-such-tenant"))
    assert one_line(error) == ("sharepoint: sign-in failed (the tenant's OpenID configuration "
                               "could not be read, HTTP 400)")


def test_a_missing_local_file_fails_before_anything_is_created(
        client: GraphClient, standin: GraphStandIn, tmp_path: Path) -> None:
    with pytest.raises(DeliveryError) as error:
        client.upload(tmp_path / "missing.txt", FOLDER)
    assert one_line(error) == "sharepoint: missing.txt cannot be read for upload"
    assert not (standin.library_folder / "DPS Reconciliation").exists()


def test_an_unknown_site_fails_with_status_and_code(settings: GraphSettings) -> None:
    with pytest.raises(DeliveryError) as error:
        connect(replace(settings, site_path="/sites/Nowhere"))
    assert one_line(error) == ("sharepoint: find site contoso.sharepoint.com/sites/Nowhere "
                               "failed: HTTP 404 (itemNotFound)")


def test_an_unknown_library_names_the_libraries_found(settings: GraphSettings) -> None:
    with pytest.raises(DeliveryError) as error:
        connect(replace(settings, library="Reports"))
    assert one_line(error) == ("sharepoint: no document library named 'Reports' on "
                               "contoso.sharepoint.com/sites/ChildWelfare (found: Documents, "
                               "Site Assets)")


# ----------------------------------------------------------------------------- TLS


def test_a_bogus_requests_ca_bundle_in_the_environment_changes_nothing(
        settings: GraphSettings, standin: GraphStandIn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "no-such-bundle.pem"))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tmp_path / "no-such-bundle.pem"))
    with connect(settings) as graph:
        graph.upload(make_file(tmp_path, "tls.txt", 100), FOLDER)
    assert stored(standin, "tls.txt").exists()


def untrusted_ca(folder: Path) -> Path:
    """A CA file from another CA (the stand-in's server certificate is not signed by it)."""
    other = folder / "other-ca"
    other.mkdir()
    files = certificate_files(other)
    write_ca_and_server_pair(files)
    return files.ca_file


def test_a_wrong_ca_file_fails_verification(
        settings: GraphSettings, tmp_path: Path) -> None:
    with pytest.raises(DeliveryError) as error:
        connect(replace(settings, ca_file=untrusted_ca(tmp_path)))
    assert one_line(error) == (f"sharepoint: sign-in failed (login host {settings.login_host}"
                               ": TLS certificate verification failed)")


def test_the_environment_cannot_make_an_untrusted_server_trusted(
        settings: GraphSettings, standin: GraphStandIn, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(standin.ca_file))  # would trust it
    with pytest.raises(DeliveryError, match="TLS certificate verification failed"):
        connect(replace(settings, ca_file=untrusted_ca(tmp_path)))


def test_without_ca_file_certifi_is_used_not_the_environment(
        settings: GraphSettings, standin: GraphStandIn,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(standin.ca_file))
    with pytest.raises(DeliveryError, match="TLS certificate verification failed"):
        connect(replace(settings, ca_file=None))


def requests_ssl_error(inner: Exception) -> requests.exceptions.SSLError:
    """An SSLError shaped as requests raises it (requests <- urllib3 MaxRetryError <- ssl)."""
    from urllib3.exceptions import MaxRetryError
    from urllib3.exceptions import SSLError as Urllib3SslError

    return requests.exceptions.SSLError(MaxRetryError(None, "/x", Urllib3SslError(inner)))


def test_a_tls_connection_cut_is_a_drop_not_a_certificate_failure() -> None:
    """requests reports a TLS stream cut mid-upload as SSLError too (seen with the stand-in)."""
    cut = requests_ssl_error(ssl.SSLEOFError(8, "EOF occurred in violation of protocol"))
    refused = requests_ssl_error(ssl.SSLCertVerificationError(1, "certificate verify failed"))
    assert not certificate_rejected(cut)
    assert certificate_rejected(refused)


def test_a_missing_ca_file_is_a_config_error(settings: GraphSettings, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        connect(replace(settings, ca_file=tmp_path / "missing.pem"))


# ----------------------------------------------------------------------------- secrets in logs


def secret_texts(standin: GraphStandIn) -> list[str]:
    return ["tempauth", "client_assertion", "eyJ", "Bearer", standin.client_secret,
            *standin.issued_tokens]


def test_no_upload_url_token_secret_or_assertion_reaches_a_log_record(
        settings: GraphSettings, standin: GraphStandIn, sleeps: list[float], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = make_file(tmp_path, "logs.txt", 1_000_000)
    with connect(settings, sleep=sleeps.append) as graph:
        standin.cut_next_upload(after_bytes=UNIT // 2)
        standin.expire_sessions_after(fragments=2)
        graph.upload(path, FOLDER)
        standin.throttle(1, uploads_only=True)
        graph.upload(path, FOLDER)
    with_secret = replace(settings, certificate_file=None, private_key_file=None,
                          client_secret=standin.client_secret)
    with connect(with_secret, sleep=sleeps.append) as graph:
        graph.upload(path, FOLDER)
    logged = caplog.text + "".join(repr(r.args) for r in caplog.records)
    assert "resuming logs.txt" in logged  # the faults did happen
    for text in secret_texts(standin):
        assert text not in logged, text


def test_the_scan_would_see_urllib3_debug_lines(
        client: GraphClient, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Why quiet_http_loggers exists: urllib3 at DEBUG logs the upload URL's tempauth."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("urllib3.connectionpool").setLevel(logging.DEBUG)
    try:
        client.upload(make_file(tmp_path, "loud.txt", 100), FOLDER)
    finally:
        quiet_http_loggers()
    assert "tempauth" in caplog.text


def test_quiet_http_loggers_keeps_urllib3_and_msal_at_warning() -> None:
    logging.getLogger("urllib3.connectionpool").setLevel(logging.DEBUG)
    logging.getLogger("msal").setLevel(logging.INFO)
    quiet_http_loggers()
    for name in ("urllib3", "urllib3.connectionpool", "msal", "msal.application"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING, name


def test_a_failure_traceback_never_quotes_the_upload_url(
        settings: GraphSettings, standin: GraphStandIn, tmp_path: Path) -> None:
    standin.cut_next_upload(after_bytes=10)
    with connect(replace(settings, max_tries=1)) as graph, pytest.raises(DeliveryError) as error:
        graph.upload(make_file(tmp_path, "tb.txt", 1000), FOLDER)
    text = "".join(traceback.format_exception(error.value))
    assert "connection dropped" in text
    assert "tempauth" not in text and "/upload/" not in text


def test_settings_never_show_secrets_in_their_repr(settings: GraphSettings) -> None:
    shown = repr(replace(settings, client_secret="s3cret", private_key_passphrase="pp"))
    assert "s3cret" not in shown and "pp'" not in shown


# ----------------------------------------------------------------------------- settings


def test_chunk_bytes_must_be_a_multiple_of_320_kib(settings: GraphSettings) -> None:
    with pytest.raises(ConfigError, match="chunk_bytes must be a multiple of 327680"):
        replace(settings, chunk_bytes=1_000_000)


def test_settings_need_a_certificate_or_a_secret(settings: GraphSettings) -> None:
    with pytest.raises(ConfigError, match="or a client secret"):
        replace(settings, certificate_file=None, private_key_file=None)


def test_hosts_are_names_not_urls(settings: GraphSettings) -> None:
    with pytest.raises(ConfigError, match="graph_host must be a host name"):
        replace(settings, graph_host="https://graph.microsoft.com")


# ----------------------------------------------------------------------------- the stand-in


def bearer(standin: GraphStandIn) -> dict[str, str]:
    return {"Authorization": f"Bearer {standin.issue_token()}"}


def new_upload_url(standin: GraphStandIn, client: GraphClient, name: str) -> str:
    parent = client.ensure_folder(FOLDER)
    url = (f"{standin.url}/v1.0/drives/{standin.drive_id()}/items/{parent}:/{name}:"
           "/createUploadSession")
    reply = requests.post(url, json={}, headers=bearer(standin), verify=str(standin.ca_file),
                          timeout=10)
    return str(reply.json()["uploadUrl"])


def test_standin_refuses_a_fragment_that_does_not_start_at_the_next_byte(
        client: GraphClient, standin: GraphStandIn) -> None:
    url = new_upload_url(standin, client, "x.txt")
    answer = requests.put(url, data=b"a" * 10, headers={"Content-Range": "bytes 10-19/20"},
                          verify=str(standin.ca_file), timeout=10)
    assert answer.status_code == 416


def test_standin_refuses_a_fragment_that_is_not_a_multiple_of_320_kib(
        client: GraphClient, standin: GraphStandIn) -> None:
    url = new_upload_url(standin, client, "y.txt")
    answer = requests.put(url, data=b"a" * 1000, headers={"Content-Range": "bytes 0-999/5000"},
                          verify=str(standin.ca_file), timeout=10)
    assert answer.status_code == 400
    assert not stored(standin, "y.txt").exists()


def test_standin_refuses_a_bearer_token_on_the_upload_url(
        client: GraphClient, standin: GraphStandIn) -> None:
    url = new_upload_url(standin, client, "z.txt")
    answer = requests.put(url, data=b"abc", headers={"Content-Range": "bytes 0-2/3",
                                                     **bearer(standin)},
                          verify=str(standin.ca_file), timeout=10)
    assert answer.status_code == 401


def test_standin_runs_as_a_process_and_stops_on_sigterm(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "demo.graph_standin", "--root", str(tmp_path / "sp")]
    with subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            lines = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(12))
            assert lines["graph_host"].startswith("127.0.0.1:")
            assert Path(lines["ca_file"]).is_file()
            assert Path(lines["client_key_file"]).is_file()
            assert Path(lines["client_secret_file"]).stat().st_mode & 0o077 == 0
        finally:
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
