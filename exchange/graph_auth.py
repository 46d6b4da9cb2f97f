"""Microsoft Graph plumbing for SharePoint delivery: the settings, app-only sign-in with msal,
an HTTP session whose TLS checks the environment cannot loosen, and one-line error messages
that never carry a token, a secret or an upload URL. exchange/graph.py uses it to upload.
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from msal.exceptions import MsalError

from exchange.errors import ConfigError, DeliveryError

LOG = logging.getLogger(__name__)

PREFIX = "sharepoint"
FRAGMENT_UNIT = 327680  # 320 KiB: Graph wants fragments in multiples of it (except the last)
MAX_FRAGMENT_BYTES = 192 * FRAGMENT_UNIT  # 60 MiB, Graph's limit for one fragment
RETRY_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_S = 300.0
MAX_BACKOFF_S = 30.0
HTTP_LOGGERS = ("urllib3", "requests", "msal")
OFFICE_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xltx", ".xltm", ".docx", ".docm",
                             ".dotx", ".dotm", ".pptx", ".pptm", ".potx", ".ppsx", ".vsdx"})
SAFE_CODE = re.compile(r"[A-Za-z0-9_.\-]{1,80}")
HOST_PATTERN = re.compile(r"[A-Za-z0-9.\-]+(:\d{1,5})?")
BAD_NAME = re.compile(r'["*:<>?/\\|]|^\s|\s$|^\.{1,2}$')
Sleep = Callable[[float], None]


@dataclass(frozen=True, kw_only=True)
class GraphSettings:
    """Where to deliver and how to sign in. Secrets come from the environment (the caller)."""

    tenant_id: str
    client_id: str
    login_host: str = "login.microsoftonline.com"
    graph_host: str = "graph.microsoft.com"
    certificate_file: Path | None = None  # the app's public certificate (PEM)
    private_key_file: Path | None = None  # its private key (PEM)
    private_key_passphrase: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    ca_file: Path | None = None  # a private CA bundle; None: certifi's bundle
    site_host: str
    site_path: str
    library: str
    timeout_seconds: float = 60.0
    max_tries: int = 5  # for 429/503 and dropped connections
    chunk_bytes: int = 10 * FRAGMENT_UNIT

    def __post_init__(self) -> None:
        check_settings(self)


# ----------------------------------------------------------------------------- settings


def check_settings(settings: GraphSettings) -> None:
    """Refuse settings that cannot work, with one line naming the setting."""
    chunk = settings.chunk_bytes
    if chunk <= 0 or chunk % FRAGMENT_UNIT or chunk > MAX_FRAGMENT_BYTES:
        raise ConfigError(f"{PREFIX}: chunk_bytes must be a multiple of {FRAGMENT_UNIT} "
                          f"(320 KiB) up to {MAX_FRAGMENT_BYTES}, not {chunk}")
    if settings.max_tries < 1 or settings.timeout_seconds <= 0:
        raise ConfigError(f"{PREFIX}: max_tries must be at least 1 and timeout_seconds > 0")
    for name in ("login_host", "graph_host", "site_host"):
        if not HOST_PATTERN.fullmatch(getattr(settings, name)):
            raise ConfigError(f"{PREFIX}: {name} must be a host name (an optional :port), "
                              "without https:// or a path")
    if not settings.site_path.startswith("/"):
        raise ConfigError(f"{PREFIX}: site_path must start with / (e.g. /sites/ChildWelfare)")
    if not (settings.tenant_id and settings.client_id and settings.library):
        raise ConfigError(f"{PREFIX}: tenant_id, client_id and library must be set")
    if (settings.certificate_file is None) != (settings.private_key_file is None):
        raise ConfigError(f"{PREFIX}: certificate_file and private_key_file go together")
    if settings.certificate_file is None and not settings.client_secret:
        raise ConfigError(f"{PREFIX}: set certificate_file and private_key_file (preferred) "
                          "or a client secret")


def folder_segments(folder_path: str) -> list[str]:
    """ "DPS Reconciliation/FY2025/Q3" -> its names, each checked against SharePoint's rules."""
    segments = [part for part in folder_path.replace("\\", "/").split("/") if part]
    for segment in segments:
        if BAD_NAME.search(segment):
            raise ConfigError(f"{PREFIX}: folder name {segment!r} is not allowed in "
                              'SharePoint (no " * : < > ? / \\ | or surrounding spaces)')
    return segments


def read_pem(path: Path, setting: str) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{PREFIX}: {setting} {path} cannot be read as PEM text") from exc


def client_credential(settings: GraphSettings) -> dict[str, str] | str:
    """msal's credential: the certificate when one is set (preferred), else the secret.

    Given the public certificate, msal signs its assertion PS256 with the certificate's
    SHA-256 (x5t#S256); given only a SHA-1 thumbprint it would fall back to RS256 + SHA-1.
    The key is checked here first, so a wrong passphrase or a key that does not belong to the
    certificate is a config error now rather than an obscure failure inside msal later.
    """
    if settings.certificate_file is None or settings.private_key_file is None:
        return settings.client_secret or ""
    cert_pem = read_pem(settings.certificate_file, "certificate_file")
    key_pem = read_pem(settings.private_key_file, "private_key_file")
    check_key_pair(cert_pem, key_pem, settings)
    credential = {"private_key": key_pem, "public_certificate": cert_pem}
    if settings.private_key_passphrase:
        credential["passphrase"] = settings.private_key_passphrase
    return credential


def check_key_pair(cert_pem: str, key_pem: str, settings: GraphSettings) -> None:
    passphrase = settings.private_key_passphrase
    try:
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
    except ValueError as exc:
        raise ConfigError(f"{PREFIX}: certificate_file {settings.certificate_file} "
                          "holds no PEM certificate") from exc
    try:
        key = serialization.load_pem_private_key(
            key_pem.encode(), passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{PREFIX}: private_key_file {settings.private_key_file} cannot "
                          "be opened (not a PEM key, or a wrong or missing passphrase)") from exc
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigError(f"{PREFIX}: private_key_file must hold an RSA key (Entra ID)")
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise ConfigError(f"{PREFIX}: private_key_file does not belong to certificate_file")


# ----------------------------------------------------------------------------- HTTP session


class PinnedTlsSession(requests.Session):
    """A requests Session that verifies every request against one CA file, whatever the
    environment says, and remembers the last HTTP status (for sign-in error messages)."""

    def __init__(self, ca_bundle: str, timeout: float) -> None:
        super().__init__()
        self._ca_bundle = ca_bundle
        self._timeout = timeout
        self.verify = ca_bundle
        self.auth = keep_request_as_is  # never add credentials from ~/.netrc
        self.last_status: int | None = None
        self.hooks["response"].append(self._remember_status)

    def request(self, method: str | bytes, url: str | bytes,  # type: ignore[override]
                **kwargs: Any) -> requests.Response:
        """Every request, msal's included: verify= a path (not True, which the environment's
        REQUESTS_CA_BUNDLE would replace), and a timeout."""
        kwargs["verify"] = self._ca_bundle
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, **kwargs)

    def _remember_status(self, response: requests.Response, *args: Any,
                         **kwargs: Any) -> None:
        self.last_status = response.status_code


def keep_request_as_is(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


def open_session(settings: GraphSettings) -> PinnedTlsSession:
    if settings.ca_file is None:
        bundle = requests.certs.where()
    elif settings.ca_file.is_file():
        bundle = str(settings.ca_file)
    else:
        raise ConfigError(f"{PREFIX}: ca_file {settings.ca_file} does not exist")
    return PinnedTlsSession(bundle, settings.timeout_seconds)


def quiet_http_loggers() -> None:
    """Keep urllib3, requests and msal at WARNING or above.

    urllib3 logs every request's whole URL at DEBUG, and Graph upload URLs carry a credential
    in their query string; msal's debug lines describe the sign-in.
    """
    names = [name for name in logging.root.manager.loggerDict
             if name.split(".")[0] in HTTP_LOGGERS]
    for name in [*HTTP_LOGGERS, *names]:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET (0) included
            logger.setLevel(logging.WARNING)


# ----------------------------------------------------------------------------- messages


def safe_code(value: Any) -> str:
    """An error code fit for a message (codes only: never free text that might quote data)."""
    return value if isinstance(value, str) and SAFE_CODE.fullmatch(value) else "no error code"


def response_json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def graph_code(response: requests.Response) -> str:
    error = response_json(response).get("error")
    return safe_code(error.get("code") if isinstance(error, dict) else None)


def graph_failure(what: str, response: requests.Response, tries: int) -> DeliveryError:
    """One line: what failed, the HTTP status and Graph's error code (never the body)."""
    after = after_tries(tries) if response.status_code in RETRY_STATUSES else ""
    return DeliveryError(f"{PREFIX}: {what} failed: HTTP {response.status_code} "
                         f"({graph_code(response)}){after}")


def after_tries(tries: int) -> str:
    return f" after {tries} tries" if tries > 1 else ""


def certificate_rejected(exc: BaseException) -> bool:
    """True when the server's certificate failed verification.

    requests raises SSLError both for that (final) and for a TLS connection cut mid-stream
    (SSLEOFError: worth resuming), so look for the verification error among the causes.
    """
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None),
                  *current.args)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return False


def transport_reason(exc: Exception) -> str:
    if certificate_rejected(exc):
        return "TLS certificate verification failed"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return type(exc).__name__


def withheld(exc: Exception) -> Exception:
    """Replace an exception whose text quotes the upload URL (it carries a credential)."""
    return requests.ConnectionError(f"{type(exc).__name__} on an upload URL (text withheld: "
                                    "the URL carries a credential)")


def sign_in_failure(result: Any, status: int | None) -> DeliveryError:
    code = safe_code(result.get("error") if isinstance(result, dict) else None)
    http = f", HTTP {status}" if status else ""
    return DeliveryError(f"{PREFIX}: sign-in failed ({code}{http})")


def retry_after_seconds(response: requests.Response, attempt: int) -> float:
    """Graph's Retry-After (seconds), else a growing pause; never more than 5 minutes."""
    try:
        seconds = float(response.headers.get("Retry-After", ""))
    except ValueError:
        return backoff_seconds(attempt)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


def backoff_seconds(attempt: int) -> float:
    return min(2.0 ** (attempt - 1), MAX_BACKOFF_S)


# ----------------------------------------------------------------------------- signing in


def build_msal_app(settings: GraphSettings,
                   session: PinnedTlsSession) -> msal.ConfidentialClientApplication:
    """msal's app. Its constructor already fetches the tenant's OpenID configuration."""
    credential = client_credential(settings)
    try:
        return msal.ConfidentialClientApplication(
            settings.client_id, client_credential=credential,
            authority=f"https://{settings.login_host}/{settings.tenant_id}",
            instance_discovery=False, http_client=session, token_cache=msal.TokenCache())
    except requests.RequestException as exc:
        raise DeliveryError(f"{PREFIX}: sign-in failed (login host {settings.login_host}: "
                            f"{transport_reason(exc)})") from exc
    except (ValueError, RuntimeError, MsalError) as exc:
        status = f", HTTP {session.last_status}" if session.last_status else ""
        raise DeliveryError(f"{PREFIX}: sign-in failed (the tenant's OpenID configuration "
                            f"could not be read{status})") from exc


def graph_scope(settings: GraphSettings) -> str:
    return f"https://{settings.graph_host}/.default"


