"""A Microsoft Graph stand-in on 127.0.0.1 for the tests and the demo (real HTTPS, no cloud).

It plays two hosts, each its own HTTPS listener:

* the **login host** (Entra ID): the OpenID configuration msal reads, and the token endpoint
  for the client-credentials grant. It checks the app's signed JWT assertion against the
  registered certificate (PS256, `x5t#S256`, aud = the token endpoint, iss = sub = client id,
  not expired) or a registered client secret, and hands out opaque bearer tokens.
* the **Graph host**: the site (`/v1.0/sites/{host}:{path}`), its document libraries
  (`/drives`), folders (children listing and creation), upload sessions with real byte-range
  rules, and the upload URLs themselves. Upload URLs carry a secret in their query string
  (`?tempauth=...`), as Graph's do, so a test that scans logs for it catches a leak.

The library's files are mirrored on disk under `root/<library>/<folder path>`; a file is
written there only when its last byte arrives (written beside it, then renamed).

Fault switches, settable while it runs (see `GraphStandIn`): `throttle()`, `cut_next_upload()`,
`expire_sessions_after()`, `expire_all_sessions()`, `stop_login()`, and the attributes
`wrong_hash_for_plain_files`, `enrich_office_files`, `reject_credentials`.

Command line (the demo runs it as a process; it prints where things are, stops on SIGTERM)::

    python -m demo.graph_standin --root R [--tenant T --client-id C --site-host H
        --site-path P --library L --state-dir S --enrich-office]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange.quickxor import quickxor_bytes, quickxor_file

LOG = logging.getLogger(__name__)

HOST = "127.0.0.1"
FRAGMENT_UNIT = 327680  # Graph: fragments are multiples of 320 KiB, except the last
MAX_FRAGMENT_BYTES = 60 * 1024 * 1024
MAX_SIMPLE_UPLOAD_BYTES = 4 * 1024 * 1024
TOKEN_LIFETIME_S = 3599
HANDLER_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05  # how soon stop() is noticed
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OFFICE_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".docx", ".docm", ".pptx", ".pptm"})
BAD_NAME = re.compile(r'["*:<>?/\\|]|^\s|\s$|^\.{1,2}$')
PART_PREFIX = ".~"

DEFAULTS = (  # the command line's defaults: (setting, value)
    ("tenant_id", "00000000-0000-4000-8000-00000000d0a5"),
    ("client_id", "11111111-1111-4111-8111-0000000000a9"),
    ("site_host", "contoso.sharepoint.com"),
    ("site_path", "/sites/ChildWelfare"),
    ("library", "Documents"),
)


# ----------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class CertificateFiles:
    """The PEM files the stand-in uses: its CA, its server pair, and the app's client pair."""

    ca_file: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def certificate_files(folder: Path) -> CertificateFiles:
    """Where the PEM files live in a state folder (whether or not they exist yet)."""
    return CertificateFiles(folder / "standin-ca.pem", folder / "standin-server.pem",
                            folder / "standin-server.key", folder / "app-client.pem",
                            folder / "app-client.key")


def ensure_certificates(folder: Path) -> CertificateFiles:
    """Create the CA, the server pair and the app's client pair once; later runs reuse them."""
    files = certificate_files(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (files.ca_file.exists() and files.server_cert.exists() and files.server_key.exists()):
        write_ca_and_server_pair(files)
    if not (files.client_cert.exists() and files.client_key.exists()):
        write_client_pair(files.client_cert, files.client_key)
    return files


def write_ca_and_server_pair(files: CertificateFiles) -> None:
    """A private CA and a server certificate for 127.0.0.1 / localhost signed by it."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = ca_certificate(ca_key, "DPS exchange Graph stand-in CA")
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = server_certificate(server_key, ca_key, ca_cert)
    write_pem(files.ca_file, ca_cert.public_bytes(serialization.Encoding.PEM))
    write_pem(files.server_cert, server_cert.public_bytes(serialization.Encoding.PEM))
    write_pem(files.server_key, private_key_pem(server_key, None))


def write_client_pair(cert_file: Path, key_file: Path, passphrase: str | None = None) -> None:
    """The app's self-signed RSA certificate (what one uploads to the app registration).

    RSA because msal signs the client assertion PS256 when given the public certificate.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dps-exchange app (stand-in)")])
    cert = (certificate_builder(name, name, key.public_key(), days=365)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    write_pem(cert_file, cert.public_bytes(serialization.Encoding.PEM))
    write_pem(key_file, private_key_pem(key, passphrase))


def certificate_builder(subject: x509.Name, issuer: x509.Name, public_key: Any,
                        days: int) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def ca_certificate(key: ec.EllipticCurvePrivateKey, common_name: str) -> x509.Certificate:
    """A self-signed CA certificate (also used by tests to make a CA that is not trusted)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=True, crl_sign=True, encipher_only=False,
                          decipher_only=False)
    return (certificate_builder(name, name, key.public_key(), days=3650)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .sign(key, hashes.SHA256()))


def server_certificate(key: ec.EllipticCurvePrivateKey, ca_key: ec.EllipticCurvePrivateKey,
                       ca_cert: x509.Certificate) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    names = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST)),
                                         x509.DNSName("localhost")])
    usage = x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=False, crl_sign=False, encipher_only=False,
                          decipher_only=False)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (certificate_builder(name, ca_cert.subject, key.public_key(), days=825)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(names, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))


def private_key_pem(key: Any, passphrase: str | None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
        else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             encryption)


def write_pem(path: Path, data: bytes) -> None:
    """Write a PEM file readable only by its owner."""
    path.write_bytes(data)
    path.chmod(0o600)


def sha256_thumbprint(cert_file: Path) -> str:
    """The certificate's `x5t#S256` as msal writes it: base64url of SHA-256(DER), no padding."""
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# ----------------------------------------------------------------------------- state


@dataclass
class UploadSession:
    """One upload session: where the file goes and the bytes received so far."""

    session_id: str
    tempauth: str
    parent_rel: str
    name: str
    conflict_behavior: str
    received: bytearray = field(default_factory=bytearray)
    total: int | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One request the stand-in answered (path without query string); tests read these."""

    listener: str
    method: str
    path: str
    status: int
    content_range: str
    had_authorization: bool


@dataclass
class ClientRegistration:
    """The app as the login host knows it: its certificates (x5t#S256 -> PEM) and secrets."""

    client_id: str
    certificates: dict[str, bytes] = field(default_factory=dict)
    secrets: set[str] = field(default_factory=set)


class TrackingServer(ThreadingHTTPServer):
    """A threaded HTTPS server that can cut its open connections when stopped."""

    daemon_threads = True

    def __init__(self, port: int, role: str, standin: GraphStandIn,
                 context: ssl.SSLContext) -> None:
        super().__init__((HOST, port), StandInHandler)
        self.role = role
        self.standin = standin
        self.socket = context.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up or refuses our certificate is normal here: one debug line."""
        LOG.debug("graph stand-in (%s): a connection ended with %s", self.role,
                  type(sys.exc_info()[1]).__name__)

    def stop(self) -> None:
        """Stop listening and cut every open connection (so the host is really gone)."""
        self.shutdown()
        self.server_close()
        with self.sockets_lock:
            open_sockets = list(self.open_sockets)
        for sock in open_sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class GraphStandIn:
    """The running stand-in: addresses, certificate files, fault switches, what it saw.

    Fault switches (plain attributes may be set directly at any time):
      wrong_hash_for_plain_files  the final upload reply of a non-Office file names a wrong
                                  quickXorHash (the stored file itself is right)
      enrich_office_files         Office files are changed on store (size and hash differ),
                                  as SharePoint does with library metadata
      reject_credentials          the token endpoint answers 401 invalid_client
    and the methods throttle(), cut_next_upload(), expire_sessions_after(),
    expire_all_sessions(), stop_login().
    """

    def __init__(self, root: Path, names: dict[str, str], files: CertificateFiles) -> None:
        self.root = root
        self.tenant_id = names["tenant_id"]
        self.site_host = names["site_host"]
        self.site_path = names["site_path"]
        self.library = names["library"]
        self.ca_file = files.ca_file
        self.client_cert_file = files.client_cert
        self.client_key_file = files.client_key
        self.client_secret = "standin-secret-" + secrets.token_urlsafe(24)
        self.registration = ClientRegistration(names["client_id"])
        self.register_certificate(files.client_cert)
        self.registration.secrets.add(self.client_secret)
        self.wrong_hash_for_plain_files = False
        self.enrich_office_files = False
        self.reject_credentials = False
        self.last_assertion_header: dict[str, Any] = {}
        self.issued_tokens: list[str] = []
        self.records: list[RequestRecord] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._sessions: dict[str, UploadSession] = {}
        self._ids: dict[str, str] = {}
        self._throttle: tuple[int, int, int, bool] = (0, 429, 1, False)
        self._cut_after: int | None = None
        self._expire_after: int | None = None
        self._servers: dict[str, TrackingServer] = {}
        self._files = files

    # ----- addresses

    @property
    def host(self) -> str:
        """The Graph host as "127.0.0.1:PORT" (use it as graph_host)."""
        return f"{HOST}:{self._servers['graph'].server_address[1]}"

    @property
    def login_host(self) -> str:
        """The login host as "127.0.0.1:PORT" (use it as login_host)."""
        return f"{HOST}:{self._login_port}"

    @property
    def url(self) -> str:
        return f"https://{self.host}"

    @property
    def token_endpoint(self) -> str:
        return f"https://{self.login_host}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def library_folder(self) -> Path:
        """Where the library's files are mirrored on disk."""
        return self.root / self.library

    # ----- running

    def start(self, graph_port: int = 0, login_port: int = 0) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._files.server_cert, self._files.server_key)
        self.library_folder.mkdir(parents=True, exist_ok=True)
        for role, port in (("graph", graph_port), ("login", login_port)):
            server = TrackingServer(port, role, self, context)
            self._servers[role] = server
            threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL_S,),
                             name=f"graph-standin-{role}", daemon=True).start()
        self._login_port = self._servers["login"].server_address[1]

    def stop_login(self) -> None:
        """Fault: the login host goes away (connections refused from now on)."""
        server = self._servers.pop("login", None)
        if server is not None:
            server.stop()

    def stop(self) -> None:
        for role in list(self._servers):
            self._servers.pop(role).stop()

    def __enter__(self) -> GraphStandIn:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # ----- fault switches

    def throttle(self, count: int, retry_after: int = 1, status: int = 429,
                 uploads_only: bool = False) -> None:
        """Fault: answer the next `count` Graph-host requests (or only requests to upload
        URLs) with `status` (429, 503) and a Retry-After of `retry_after` seconds."""
        with self._lock:
            self._throttle = (count, status, retry_after, uploads_only)

    def cut_next_upload(self, after_bytes: int) -> None:
        """Fault: the next PUT to an upload URL keeps its first `after_bytes` bytes, then the
        connection is closed without an answer (the session stays; its next expected byte
        moves on by what was kept)."""
        with self._lock:
            self._cut_after = after_bytes

    def expire_sessions_after(self, fragments: int) -> None:
        """Fault: after `fragments` more accepted fragments every upload session vanishes."""
        with self._lock:
            self._expire_after = fragments

    def expire_all_sessions(self) -> None:
        """Fault: every upload session vanishes now (404 on its URL)."""
        with self._lock:
            self._sessions.clear()

    def register_certificate(self, cert_file: Path) -> None:
        """Add a certificate to the app registration (as one uploads it in Entra ID)."""
        self.registration.certificates[sha256_thumbprint(cert_file)] = cert_file.read_bytes()

    # ----- used by the handler

    def take_throttle(self, is_upload_url: bool) -> tuple[int, int] | None:
        """(status, retry_after) when this request is to be throttled, else None."""
        with self._lock:
            count, status, retry_after, uploads_only = self._throttle
            if count <= 0 or (uploads_only and not is_upload_url):
                return None
            self._throttle = (count - 1, status, retry_after, uploads_only)
            return status, retry_after

    def take_cut(self) -> int | None:
        with self._lock:
            cut, self._cut_after = self._cut_after, None
            return cut

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self.records.append(entry)

    def issue_token(self) -> str:
        token = "standin-token-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = time.monotonic() + TOKEN_LIFETIME_S
            self.issued_tokens.append(token)
        return token

    def token_is_valid(self, token: str) -> bool:
        with self._lock:
            return self._tokens.get(token, 0.0) > time.monotonic()

    # ----- the library

    def site_id(self) -> str:
        site = uuid.uuid5(uuid.NAMESPACE_URL, f"https://{self.site_host}{self.site_path}")
        web = uuid.uuid5(site, "web")
        return f"{self.site_host},{site},{web}"

    def drive_id(self) -> str:
        raw = uuid.uuid5(uuid.NAMESPACE_URL, f"{self.site_id()}/{self.library}").bytes
        return "b!" + base64.urlsafe_b64encode(raw * 2).decode().rstrip("=")

    def site_json(self) -> dict[str, Any]:
        return {"id": self.site_id(), "name": self.site_path.rsplit("/", 1)[-1],
                "webUrl": f"https://{self.site_host}{self.site_path}"}

    def drives_json(self) -> dict[str, Any]:
        web = f"https://{self.site_host}{self.site_path}"
        return {"value": [
            {"id": self.drive_id(), "name": self.library, "driveType": "documentLibrary",
             "webUrl": f"{web}/{quote_path(self.library)}"},
            {"id": "b!site-assets", "name": "Site Assets", "driveType": "documentLibrary",
             "webUrl": f"{web}/SiteAssets"}]}

    def item_id(self, rel: str) -> str:
        """A stable id for a path in the library ("" is the root)."""
        item_id = "01" + uuid.uuid5(uuid.NAMESPACE_URL, f"{self.drive_id()}/{rel}").hex.upper()
        with self._lock:
            self._ids[item_id] = rel
        return item_id

    def rel_of(self, item_id: str) -> str | None:
        with self._lock:
            return self._ids.get(item_id)

    def disk_path(self, rel: str) -> Path:
        return self.library_folder.joinpath(*[part for part in rel.split("/") if part])

    def item_json(self, rel: str) -> dict[str, Any]:
        """The driveItem for a path that exists on disk."""
        path = self.disk_path(rel)
        parent = rel.rsplit("/", 1)[0] if "/" in rel else ""
        item: dict[str, Any] = {
            "id": self.item_id(rel), "name": path.name if rel else "root",
            "webUrl": (f"https://{self.site_host}{self.site_path}/"
                       f"{quote_path(self.library)}/{quote_path(rel)}").rstrip("/"),
            "parentReference": {"driveId": self.drive_id(), "id": self.item_id(parent)},
        }
        if path.is_dir():
            item["folder"] = {"childCount": len(visible_children(path))}
        else:
            item["size"] = path.stat().st_size
            item["file"] = {"mimeType": "application/octet-stream",
                            "hashes": {"quickXorHash": quickxor_file(path)}}
        return item

    def new_upload_session(self, parent_rel: str, name: str, behavior: str) -> str:
        session = UploadSession(secrets.token_hex(16), "standin-tempauth-"
                                + secrets.token_urlsafe(24), parent_rel, name, behavior)
        with self._lock:
            self._sessions[session.session_id] = session
        return f"{self.url}/upload/{session.session_id}?tempauth={session.tempauth}"

    def upload_session(self, session_id: str) -> UploadSession | None:
        with self._lock:
            return self._sessions.get(session_id)

    def cancel_session(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def accept_fragment(self, session: UploadSession, start: int, data: bytes) -> str:
        """Append a fragment: "ok", "gone" (session vanished) or "range" (wrong start)."""
        with self._lock:
            if self._sessions.get(session.session_id) is not session:
                return "gone"
            if start != len(session.received):
                return "range"
            session.received.extend(data)
            return "ok"

    def count_fragment(self) -> None:
        """The expire-after-N fault's countdown, run after each accepted (non-final) fragment."""
        with self._lock:
            if self._expire_after is None:
                return
            self._expire_after -= 1
            if self._expire_after <= 0:
                self._expire_after = None
                self._sessions.clear()

    def finish_session(self, session: UploadSession) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self._sessions.pop(session.session_id, None)
        rel = f"{session.parent_rel}/{session.name}".lstrip("/")
        return self.store_file(rel, bytes(session.received))

    def store_file(self, rel: str, data: bytes) -> tuple[int, dict[str, Any]]:
        """Write a finished file (beside its place, then renamed); (201 new / 200 replaced)."""
        target = self.disk_path(rel)
        status = 200 if target.exists() else 201
        part = target.with_name(PART_PREFIX + target.name + ".part")
        part.write_bytes(data)
        if self.enrich_office_files and target.suffix.lower() in OFFICE_SUFFIXES:
            enrich_office_file(part)
        os.replace(part, target)
        item = self.item_json(rel)
        if self.wrong_hash_for_plain_files and target.suffix.lower() not in OFFICE_SUFFIXES:
            item["file"]["hashes"]["quickXorHash"] = quickxor_bytes(b"not the uploaded bytes")
        return status, item


def visible_children(folder: Path) -> list[Path]:
    """A folder's entries without half-written upload parts."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith(PART_PREFIX))


def quote_path(path: str) -> str:
    return quote(path, safe="/")


def enrich_office_file(path: Path) -> None:
    """Change an Office file as SharePoint does on store (here: a zip comment, so the file
    stays a valid workbook; a file that is not a zip just gets bytes appended)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path, "a") as archive:
            archive.comment = b"SharePoint library metadata (stand-in)"
    else:
        with path.open("ab") as stream:
            stream.write(b"\n<!-- SharePoint library metadata (stand-in) -->\n")


# ----------------------------------------------------------------------------- HTTP


class StandInHandler(BaseHTTPRequestHandler):
    """Routes one request to the login or the Graph side of the stand-in."""

    protocol_version = "HTTP/1.1"
    timeout = HANDLER_TIMEOUT_S
    server: TrackingServer

    def setup(self) -> None:
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.do_handshake()  # here, in the handler's thread, not in accept()

    @property
    def standin(self) -> GraphStandIn:
        return self.server.standin

    def do_GET(self) -> None:  # http.server calls do_<METHOD>
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def dispatch(self, method: str) -> None:
        self._method, self._recorded = method, False
        split = urlsplit(self.path)
        path, query = unquote(split.path), parse_qs(split.query)
        if self.server.role == "login":
            route_login(self, method, path)
        elif not self.answered_throttled(path.startswith("/upload/")):
            route_graph(self, method, path, query)
        if not self._recorded:  # the connection was cut without an answer
            self.record(0)

    def record(self, status: int) -> None:
        """Note the request before its answer goes out (a test may look right after it)."""
        self._recorded = True
        self.standin.record(RequestRecord(
            self.server.role, self._method, urlsplit(self.path).path, status,
            self.headers.get("Content-Range", ""), "Authorization" in self.headers))

    def answered_throttled(self, is_upload_url: bool) -> bool:
        throttled = self.standin.take_throttle(is_upload_url)
        if throttled is None:
            return False
        status, retry_after = throttled
        self.read_body()
        code = "activityLimitReached" if status == 429 else "serviceNotAvailable"
        self.send_graph_error(status, code, "Throttled (stand-in)",
                              {"Retry-After": str(retry_after)})
        return True

    def read_body(self, limit: int | None = None) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length if limit is None else min(limit, length))

    def read_json(self) -> dict[str, Any]:
        try:
            body = json.loads(self.read_body() or b"{}")
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def send_json(self, status: int, body: dict[str, Any],
                  headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def send_empty(self, status: int) -> None:
        self.record(status)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def send_graph_error(self, status: int, code: str, message: str,
                         headers: dict[str, str] | None = None) -> None:
        self.send_json(status, {"error": {"code": code, "message": message}}, headers)

    def send_oauth_error(self, status: int, error: str, description: str) -> None:
        self.send_json(status, {"error": error, "error_description": description,
                                "error_codes": [7000215]})

    def cut_connection(self) -> None:
        """Hang up without an answer, as a dropped network would."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def log_message(self, format: str, *args: Any) -> None:
        """http.server logs the request line, query string and all: log the path only."""
        LOG.debug("graph stand-in (%s): %s %s", self.server.role,
                  getattr(self, "command", "?"), urlsplit(getattr(self, "path", "")).path)


# ----- login host


def route_login(handler: StandInHandler, method: str, path: str) -> None:
    standin = handler.standin
    tenant = f"/{standin.tenant_id}"
    if method == "GET" and path == f"{tenant}/v2.0/.well-known/openid-configuration":
        handler.send_json(200, openid_configuration(standin))
    elif method == "POST" and path == f"{tenant}/oauth2/v2.0/token":
        answer_token_request(handler, parse_qs(handler.read_body().decode()))
    else:
        handler.read_body()
        handler.send_oauth_error(400, "invalid_tenant", "Unknown tenant or path (stand-in).")


def openid_configuration(standin: GraphStandIn) -> dict[str, Any]:
    base = f"https://{standin.login_host}/{standin.tenant_id}"
    return {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                      "private_key_jwt"]}


def answer_token_request(handler: StandInHandler, form: dict[str, list[str]]) -> None:
    standin = handler.standin
    value = {name: values[0] for name, values in form.items()}
    if value.get("grant_type") != "client_credentials":
        handler.send_oauth_error(400, "unsupported_grant_type", "Stand-in: client credentials.")
    elif value.get("client_id") != standin.registration.client_id:
        handler.send_oauth_error(400, "unauthorized_client", "Application not found.")
    elif value.get("scope") != f"https://{standin.host}/.default":
        handler.send_oauth_error(400, "invalid_scope", "The scope is not the Graph host's.")
    elif standin.reject_credentials or not client_authenticated(handler, value):
        handler.send_oauth_error(401, "invalid_client", "Invalid client credentials.")
    else:
        handler.send_json(200, {"token_type": "Bearer", "expires_in": TOKEN_LIFETIME_S,
                                "ext_expires_in": TOKEN_LIFETIME_S,
                                "access_token": standin.issue_token()})


def client_authenticated(handler: StandInHandler, value: dict[str, str]) -> bool:
    registration = handler.standin.registration
    if value.get("client_assertion_type") == JWT_BEARER:
        return assertion_is_valid(handler.standin, value.get("client_assertion", ""))
    secret = value.get("client_secret") or basic_auth_secret(handler.headers.get(
        "Authorization", ""))
    return bool(secret) and secret in registration.secrets


def basic_auth_secret(header: str) -> str:
    if not header.startswith("Basic "):
        return ""
    try:
        decoded = base64.b64decode(header[6:]).decode()
    except ValueError:
        return ""
    return unquote(decoded.partition(":")[2].replace("+", " "))


def assertion_is_valid(standin: GraphStandIn, assertion: str) -> bool:
    """Check the client's JWT as Entra ID does for a certificate credential."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return False
    standin.last_assertion_header = dict(header)
    thumbprint = str(header.get("x5t#S256", "")).rstrip("=")
    pem = standin.registration.certificates.get(thumbprint)
    if header.get("alg") != "PS256" or pem is None:
        return False
    public_key = x509.load_pem_x509_certificate(pem).public_key()
    client_id = standin.registration.client_id
    try:
        claims = jwt.decode(assertion, public_key, algorithms=["PS256"],  # type: ignore[arg-type]
                            audience=standin.token_endpoint, issuer=client_id,
                            options={"require": ["exp", "aud", "iss", "sub"]})
    except jwt.PyJWTError:
        return False
    return claims.get("sub") == client_id


# ----- Graph host


def route_graph(handler: StandInHandler, method: str, path: str,
                query: dict[str, list[str]]) -> None:
    upload = re.fullmatch(r"/upload/([0-9a-f]+)", path)
    if upload:
        answer_upload_url(handler, method, upload.group(1), query)
        return
    for route_method, pattern, answer in GRAPH_ROUTES:
        match = pattern.match(path)
        if match and method == route_method:
            if bearer_token_is_valid(handler):
                answer(handler, *match.groups())
            return
    handler.read_body()
    handler.send_graph_error(400, "invalidRequest", "Unsupported by the stand-in.")


def bearer_token_is_valid(handler: StandInHandler) -> bool:
    token = handler.headers.get("Authorization", "").removeprefix("Bearer ")
    if handler.standin.token_is_valid(token):
        return True
    handler.read_body()
    handler.send_graph_error(401, "InvalidAuthenticationToken", "Access token is missing.")
    return False


def get_site(handler: StandInHandler, host: str, path: str | None) -> None:
    standin = handler.standin
    if host == standin.site_host and (path or "/") == standin.site_path:
        handler.send_json(200, standin.site_json())
    else:
        handler.send_graph_error(404, "itemNotFound", "Requested site could not be found")


def get_drives(handler: StandInHandler, site_id: str) -> None:
    if site_id != handler.standin.site_id():
        handler.send_graph_error(404, "itemNotFound", "Site not found")
    else:
        handler.send_json(200, handler.standin.drives_json())


def folder_rel(handler: StandInHandler, drive_id: str, item_id: str) -> str | None:
    """The library path of a folder item, or None after answering 404."""
    standin = handler.standin
    rel = standin.rel_of(item_id) if drive_id == standin.drive_id() else None
    if rel is None or not standin.disk_path(rel).is_dir():
        handler.read_body()
        handler.send_graph_error(404, "itemNotFound", "The resource could not be found.")
        return None
    return rel


def get_root(handler: StandInHandler, drive_id: str) -> None:
    if drive_id != handler.standin.drive_id():
        handler.send_graph_error(404, "itemNotFound", "Drive not found")
    else:
        handler.send_json(200, handler.standin.item_json(""))


def get_item(handler: StandInHandler, drive_id: str, item_id: str) -> None:
    standin = handler.standin
    rel = standin.rel_of(item_id) if drive_id == standin.drive_id() else None
    if rel is None or not standin.disk_path(rel).exists():
        handler.send_graph_error(404, "itemNotFound", "The resource could not be found.")
    else:
        handler.send_json(200, standin.item_json(rel))


def delete_item(handler: StandInHandler, drive_id: str, item_id: str) -> None:
    """DELETE of a file (what --check --write-probe does with its probe): 204."""
    standin = handler.standin
    rel = standin.rel_of(item_id) if drive_id == standin.drive_id() else None
    if rel is None or not standin.disk_path(rel).is_file():
        handler.send_graph_error(404, "itemNotFound", "The resource could not be found.")
    else:
        standin.disk_path(rel).unlink()
        handler.send_empty(204)


def get_children(handler: StandInHandler, drive_id: str, item_id: str) -> None:
    rel = folder_rel(handler, drive_id, item_id)
    if rel is not None:
        standin = handler.standin
        children = visible_children(standin.disk_path(rel))
        handler.send_json(200, {"value": [standin.item_json(f"{rel}/{p.name}".lstrip("/"))
                                          for p in children]})


def get_by_path(handler: StandInHandler, drive_id: str, item_id: str, path: str) -> None:
    rel = folder_rel(handler, drive_id, item_id)
    if rel is None:
        return
    target = f"{rel}/{path.strip('/')}".lstrip("/")
    if not handler.standin.disk_path(target).exists():
        handler.send_graph_error(404, "itemNotFound", "The resource could not be found.")
    else:
        handler.send_json(200, handler.standin.item_json(target))


def post_children(handler: StandInHandler, drive_id: str, item_id: str) -> None:
    rel = folder_rel(handler, drive_id, item_id)
    if rel is None:
        return
    body = handler.read_json()
    name = str(body.get("name", ""))
    behavior = body.get("@microsoft.graph.conflictBehavior", "fail")
    target = f"{rel}/{name}".lstrip("/")
    if "folder" not in body or not name or BAD_NAME.search(name):
        handler.send_graph_error(400, "invalidRequest", "Invalid folder request.")
    elif handler.standin.disk_path(target).exists() and behavior != "replace":
        handler.send_graph_error(409, "nameAlreadyExists", "The specified item name already "
                                 "exists.")
    else:
        handler.standin.disk_path(target).mkdir(exist_ok=True)
        handler.send_json(201, handler.standin.item_json(target))


def post_upload_session(handler: StandInHandler, drive_id: str, item_id: str,
                        name: str) -> None:
    rel = folder_rel(handler, drive_id, item_id)
    if rel is None:
        return
    item = handler.read_json().get("item", {})
    behavior = item.get("@microsoft.graph.conflictBehavior", "replace")
    exists = handler.standin.disk_path(f"{rel}/{name}".lstrip("/")).exists()
    if BAD_NAME.search(name) or behavior not in ("replace", "fail"):
        handler.send_graph_error(400, "invalidRequest", "Invalid upload session request.")
    elif exists and behavior == "fail":
        handler.send_graph_error(409, "nameAlreadyExists", "The item already exists.")
    else:
        url = handler.standin.new_upload_session(rel, name, behavior)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
        handler.send_json(200, {"uploadUrl": url, "expirationDateTime": expires.isoformat(),
                                "nextExpectedRanges": ["0-"]})


def put_content(handler: StandInHandler, drive_id: str, item_id: str, name: str) -> None:
    """The simple upload (small files; the client uses it for empty ones)."""
    rel = folder_rel(handler, drive_id, item_id)
    if rel is None:
        return
    length = int(handler.headers.get("Content-Length") or 0)
    if BAD_NAME.search(name) or length > MAX_SIMPLE_UPLOAD_BYTES:
        handler.read_body()
        handler.send_graph_error(400, "invalidRequest", "Invalid simple upload.")
        return
    status, item = handler.standin.store_file(f"{rel}/{name}".lstrip("/"),
                                              handler.read_body())
    handler.send_json(status, item)


GRAPH_ROUTES: tuple[tuple[str, re.Pattern[str], Callable[..., None]], ...] = (
    ("GET", re.compile(r"^/v1\.0/sites/([^/:,]+)()$"), get_site),
    ("GET", re.compile(r"^/v1\.0/sites/([^/:]+):(/.*?)?/?$"), get_site),
    ("GET", re.compile(r"^/v1\.0/sites/([^/:]+)/drives$"), get_drives),
    ("GET", re.compile(r"^/v1\.0/drives/([^/]+)/root$"), get_root),
    ("GET", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+)$"), get_item),
    ("DELETE", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+)$"), delete_item),
    ("GET", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+)/children$"), get_children),
    ("POST", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+)/children$"), post_children),
    ("GET", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+):/(.+?):?$"), get_by_path),
    ("POST", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+):/([^/]+):/createUploadSession$"),
     post_upload_session),
    ("PUT", re.compile(r"^/v1\.0/drives/([^/]+)/items/([^/:]+):/([^/]+):/content$"),
     put_content),
)


# ----- upload URLs


def answer_upload_url(handler: StandInHandler, method: str, session_id: str,
                      query: dict[str, list[str]]) -> None:
    standin = handler.standin
    session = standin.upload_session(session_id)
    if method != "PUT":
        handler.read_body()
    if session is None:
        handler.read_body()
        handler.send_graph_error(404, "itemNotFound", "The upload session was not found.")
    elif query.get("tempauth", [""])[0] != session.tempauth:
        handler.read_body()
        handler.send_graph_error(401, "unauthenticated", "Invalid upload token.")
    elif "Authorization" in handler.headers:
        handler.read_body()
        handler.send_graph_error(401, "unauthenticated", "Do not send Authorization to an "
                                 "upload URL.")
    elif method == "GET":
        handler.send_json(200, session_status(session))
    elif method == "DELETE":
        standin.cancel_session(session_id)
        handler.send_empty(204)
    else:
        answer_fragment(handler, session)


def session_status(session: UploadSession) -> dict[str, Any]:
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    return {"expirationDateTime": expires.isoformat(),
            "nextExpectedRanges": [f"{len(session.received)}-"]}


CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


def content_range(handler: StandInHandler) -> tuple[int, int, int] | None:
    """(first byte, last byte, total) from the Content-Range header, or None."""
    match = CONTENT_RANGE.fullmatch(handler.headers.get("Content-Range", ""))
    if not match:
        return None
    start, end, total = (int(g) for g in match.groups())
    return start, end, total


def fragment_problem(handler: StandInHandler, session: UploadSession) -> str | None:
    """Why a PUT's Content-Range is refused (None when it is acceptable)."""
    parsed = content_range(handler)
    length = int(handler.headers.get("Content-Length") or 0)
    if parsed is None:
        return "Content-Range must be bytes a-b/total"
    start, end, total = parsed
    if end < start or end >= total or end - start + 1 != length:
        return "Content-Range does not match the body"
    if session.total is not None and total != session.total:
        return "The total size changed within the session"
    if length > MAX_FRAGMENT_BYTES or (end + 1 < total and length % FRAGMENT_UNIT):
        return "Fragments must be multiples of 320 KiB (except the last), at most 60 MiB"
    return None


def answer_fragment(handler: StandInHandler, session: UploadSession) -> None:
    problem = fragment_problem(handler, session)
    if problem:
        handler.read_body()
        handler.send_graph_error(400, "invalidRequest", problem)
        return
    start, end, total = content_range(handler) or (0, 0, 0)  # checked just above
    cut = handler.standin.take_cut()
    if cut is not None:
        handler.standin.accept_fragment(session, start, handler.read_body(limit=cut))
        handler.cut_connection()
        return
    outcome = handler.standin.accept_fragment(session, start, handler.read_body())
    session.total = total
    answer_fragment_outcome(handler, session, outcome, end + 1 == total)


def answer_fragment_outcome(handler: StandInHandler, session: UploadSession, outcome: str,
                            last: bool) -> None:
    standin = handler.standin
    if outcome == "gone":
        handler.send_graph_error(404, "itemNotFound", "The upload session was not found.")
    elif outcome == "range":
        handler.send_graph_error(416, "invalidRange", "The fragment does not start at the "
                                 "next expected byte.")
    elif last:
        status, item = standin.finish_session(session)
        handler.send_json(status, item)
    else:
        standin.count_fragment()  # before answering: the next PUT may come at once
        handler.send_json(202, session_status(session))


# ----------------------------------------------------------------------------- starting


def start_graph_standin(root: Path, tenant_id: str, client_id: str, site_host: str,
                        site_path: str, library: str, state_dir: Path | None = None,
                        graph_port: int = 0, login_port: int = 0) -> GraphStandIn:
    """Start both listeners on 127.0.0.1 (free ports unless given); stop() ends them.

    The certificates live in `state_dir` (default `root/.graph-standin`) and are reused when
    they exist, so a demo run and the next one trust the same CA.
    """
    files = ensure_certificates(state_dir or root / ".graph-standin")
    names = {"tenant_id": tenant_id, "client_id": client_id, "site_host": site_host,
             "site_path": site_path, "library": library}
    standin = GraphStandIn(root, names, files)
    standin.start(graph_port, login_port)
    return standin


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run the Graph stand-in until SIGTERM.")
    parser.add_argument("--root", type=Path, required=True, help="folder mirroring the library")
    parser.add_argument("--state-dir", type=Path, help="certificates (default ROOT/.graph-standin)")
    for name, default in DEFAULTS:
        parser.add_argument("--" + name.replace("_", "-"), default=default)
    parser.add_argument("--graph-port", type=int, default=0)
    parser.add_argument("--login-port", type=int, default=0)
    parser.add_argument("--enrich-office", action="store_true",
                        help="change Office files on store, as SharePoint does")
    return parser.parse_args(argv)


def describe(standin: GraphStandIn, secret_file: Path) -> str:
    """What a caller needs, one `name: value` a line (no secret: that is in a 0600 file)."""
    lines = {"graph_host": standin.host, "login_host": standin.login_host,
             "tenant_id": standin.tenant_id, "client_id": standin.registration.client_id,
             "site_host": standin.site_host, "site_path": standin.site_path,
             "library": standin.library, "ca_file": standin.ca_file,
             "client_cert_file": standin.client_cert_file,
             "client_key_file": standin.client_key_file, "client_secret_file": secret_file,
             "library_folder": standin.library_folder}
    return "\n".join(f"{name}: {value}" for name, value in lines.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    standin = start_graph_standin(args.root, args.tenant_id, args.client_id, args.site_host,
                                  args.site_path, args.library, args.state_dir,
                                  args.graph_port, args.login_port)
    standin.enrich_office_files = args.enrich_office
    secret_file = (args.state_dir or args.root / ".graph-standin") / "client-secret.txt"
    write_pem(secret_file, standin.client_secret.encode())
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    print(describe(standin, secret_file), flush=True)
    stopped.wait()
    standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
