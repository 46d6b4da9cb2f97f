"""Deliver files to a SharePoint document library through Microsoft Graph (app-only sign-in).

How a delivery goes:

1. `connect(settings)` signs in as the app (msal, client credentials: a certificate, or a
   client secret), finds the SharePoint site and its document library (a Graph "drive").
2. `client.upload(path, "DPS Reconciliation/FY2025/Q3")` creates the folders that are
   missing, then sends the file through an *upload session*: Graph hands out an upload URL
   and the file goes up in fragments (multiples of 320 KiB). The server says after each
   fragment which byte it expects next, so a dropped connection resumes where the server
   stands, and a session that expired starts again.
3. The last fragment's reply carries the stored item. Its size and QuickXorHash are compared
   with the local file: a plain file must match exactly; SharePoint rewrites Office files it
   stores (library metadata), so for those a difference is recorded, not an error.

Things that are easy to get wrong, and are handled here:

* requests lets `REQUESTS_CA_BUNDLE` / `CURL_CA_BUNDLE` in the environment replace a
  session's `verify` (even an explicit `verify=True`). Every request here is given a CA
  *file path* explicitly (`ca_file`, or certifi's bundle), which the environment cannot
  replace. TLS verification is never switched off.
* An upload URL carries a credential (`tempauth`) in its query string: it is never logged,
  never put in an error message, and urllib3 (which logs whole URLs at DEBUG) is kept at
  WARNING by `quiet_http_loggers()`. The upload URL is PUT to *without* our bearer token.
* msal reports a refused sign-in as a dict, not an exception; only its error code (and the
  HTTP status) reaches the message, never its description, which may quote what was sent.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO
from urllib.parse import quote

import msal
import requests
from msal.exceptions import MsalError

from exchange.errors import DeliveryError
from exchange.graph_auth import (
    BAD_NAME,
    OFFICE_SUFFIXES,
    PREFIX,
    RETRY_STATUSES,
    GraphSettings,
    PinnedTlsSession,
    Sleep,
    after_tries,
    backoff_seconds,
    build_msal_app,
    certificate_rejected,
    folder_segments,
    graph_code,
    graph_failure,
    graph_scope,
    open_session,
    quiet_http_loggers,
    response_json,
    retry_after_seconds,
    sign_in_failure,
    transport_reason,
    withheld,
)
from exchange.quickxor import quickxor_file

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadedItem:
    """A delivered file as SharePoint reports it (`size` is the stored size)."""

    name: str
    item_id: str
    web_url: str
    size: int
    local_quick_xor: str
    remote_quick_xor: str | None
    office_rewritten: bool  # an Office file SharePoint stored changed (size or hash)


@dataclass
class Transfer:
    """One file's upload in progress: where it goes and how far the server has it."""

    path: Path
    parent_id: str
    size: int
    upload_url: str = ""  # carries a credential: never log it
    offset: int = 0
    failures: int = 0  # in a row, without an acknowledged fragment
    sessions: int = 0
    fragments: int = 0
    last_drop: Exception | None = None


# ----------------------------------------------------------------------------- the client


class GraphClient:
    """A signed-in connection to one SharePoint document library. Use `connect()`."""

    def __init__(self, settings: GraphSettings, app: msal.ConfidentialClientApplication,
                 session: PinnedTlsSession, sleep: Sleep) -> None:
        self._settings = settings
        self._app = app
        self._session = session
        self._sleep = sleep
        self._base = f"https://{settings.graph_host}/v1.0"
        self._drive_id = ""
        self._folder_ids: dict[str, str] = {}

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    # ----- requests

    def access_token(self) -> str:
        """A bearer token for Graph (msal keeps it until shortly before it expires)."""
        try:
            result = self._app.acquire_token_for_client(scopes=[graph_scope(self._settings)])
        except requests.RequestException as exc:
            raise DeliveryError(f"{PREFIX}: sign-in failed (login host "
                                f"{self._settings.login_host}: {transport_reason(exc)})"
                                ) from exc
        except (ValueError, MsalError) as exc:
            status = self._session.last_status
            raise DeliveryError(f"{PREFIX}: sign-in failed (no usable answer from the login "
                                f"host{f', HTTP {status}' if status else ''})") from exc
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            raise sign_in_failure(result, self._session.last_status)
        return str(token)

    def send(self, method: str, url: str, what: str, *, auth: bool = True,
             **kwargs: Any) -> requests.Response:
        """One request with retries: 429/503 wait for Retry-After, a dropped connection
        waits a little; at most max_tries attempts. Any other status is returned as is."""
        tries = self._settings.max_tries
        for attempt in range(1, tries + 1):
            headers = {"Authorization": f"Bearer {self.access_token()}"} if auth else {}
            try:
                response = self._session.request(method, url, headers=headers, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                cause = exc if auth else withheld(exc)  # no auth: an upload URL
                if attempt == tries or certificate_rejected(exc):
                    raise DeliveryError(f"{PREFIX}: {what} failed: {transport_reason(exc)}"
                                        f"{after_tries(attempt)}") from cause
                self.pause(backoff_seconds(attempt), what, "connection failed", attempt)
                continue
            if response.status_code not in RETRY_STATUSES or attempt == tries:
                return response
            self.pause(retry_after_seconds(response, attempt), what,
                       f"HTTP {response.status_code}", attempt)
        raise AssertionError("unreachable: the loop returns or raises")

    def pause(self, seconds: float, what: str, problem: str, attempt: int) -> None:
        LOG.warning("%s: %s: %s; waiting %.1f s (try %d of %d)", PREFIX, what, problem,
                    seconds, attempt, self._settings.max_tries)
        self._sleep(seconds)

    def graph_json(self, method: str, url: str, what: str, ok: tuple[int, ...] = (200,),
                   **kwargs: Any) -> dict[str, Any]:
        """A Graph API call whose answer must have one of the `ok` statuses: its JSON."""
        response = self.send(method, url, what, **kwargs)
        if response.status_code not in ok:
            raise graph_failure(what, response, self._settings.max_tries)
        return response_json(response)

    def drive_url(self, tail: str) -> str:
        return f"{self._base}/drives/{quote(self._drive_id, safe='!')}{tail}"

    # ----- the site and its library

    def find_library(self) -> None:
        """Find the site and the document library (drive) named in the settings."""
        settings = self._settings
        site_path = quote(settings.site_path.rstrip("/"), safe="/")
        where = f"{settings.site_host}{settings.site_path}"
        url = (f"{self._base}/sites/{settings.site_host}:{site_path}" if site_path
               else f"{self._base}/sites/{settings.site_host}")
        site = self.graph_json("GET", url, f"find site {where}")
        drives = self.list_drives(str(site.get("id", "")))
        self._drive_id = pick_drive(drives, settings.library, where)
        LOG.info("%s: signed in; site %s, library %r found", PREFIX, where, settings.library)

    def list_drives(self, site_id: str) -> list[dict[str, Any]]:
        url: str | None = f"{self._base}/sites/{quote(site_id, safe=',')}/drives"
        drives: list[dict[str, Any]] = []
        while url:
            if not url.startswith(self._base + "/"):  # the token goes only to the Graph host
                raise DeliveryError(f"{PREFIX}: list libraries failed: a next page on "
                                    "another host")
            body = self.graph_json("GET", url, "list the site's libraries")
            drives.extend(d for d in body.get("value", []) if isinstance(d, dict))
            url = body.get("@odata.nextLink")
        return drives

    # ----- folders

    def ensure_folder(self, folder_path: str) -> str:
        """The item id of a folder in the library, creating each missing folder on the way."""
        parent = self._folder_ids.get("")
        if parent is None:
            parent = str(self.graph_json("GET", self.drive_url("/root"),
                                         "open the library's root folder").get("id", ""))
            self._folder_ids[""] = parent
        walked: list[str] = []
        for segment in folder_segments(folder_path):
            walked.append(segment)
            key = "/".join(walked)
            if key not in self._folder_ids:
                self._folder_ids[key] = self.child_folder(parent, segment, key)
            parent = self._folder_ids[key]
        return parent

    def child_folder(self, parent_id: str, name: str, shown: str) -> str:
        """Create folder `name` (conflictBehavior fail); 409 means it exists: look it up."""
        what = f"create folder {shown}"
        body = {"name": name, "folder": {}, "@microsoft.graph.conflictBehavior": "fail"}
        response = self.send("POST", self.drive_url(f"/items/{parent_id}/children"), what,
                             json=body)
        if response.status_code == 201:
            LOG.info("%s: created folder %s", PREFIX, shown)
            return str(response_json(response).get("id", ""))
        if response.status_code != 409:
            raise graph_failure(what, response, self._settings.max_tries)
        item = self.graph_json("GET", self.drive_url(f"/items/{parent_id}:/{quote(name)}"),
                               f"open folder {shown}")
        if "folder" not in item:
            raise DeliveryError(f"{PREFIX}: {shown} exists in the library but is not a folder")
        return str(item.get("id", ""))

    # ----- uploads

    def upload(self, local_path: Path, folder_path: str) -> UploadedItem:
        """Deliver one file into the folder (created when missing); replaces a file of the
        same name. Returns what SharePoint stored, checked against the local file."""
        name = local_path.name
        if BAD_NAME.search(name):
            raise DeliveryError(f"{PREFIX}: file name {name!r} is not allowed in SharePoint")
        try:
            size = local_path.stat().st_size
            local_hash = quickxor_file(local_path)
        except OSError as exc:
            raise DeliveryError(f"{PREFIX}: {name} cannot be read for upload") from exc
        parent_id = self.ensure_folder(folder_path)
        item = (self.upload_in_fragments(Transfer(local_path, parent_id, size)) if size
                else self.upload_empty(local_path, parent_id))
        delivered = checked_item(local_path, self.with_hash(item), size, local_hash)
        LOG.info("%s: delivered %s to %s (%d bytes stored%s)", PREFIX, name, folder_path,
                 delivered.size, "; SharePoint rewrote it" if delivered.office_rewritten
                 else "; size and QuickXorHash match")
        return delivered

    def upload_empty(self, path: Path, parent_id: str) -> dict[str, Any]:
        """Upload sessions cannot take zero bytes: an empty file goes as a simple PUT."""
        url = self.drive_url(f"/items/{parent_id}:/{quote(path.name)}:/content")
        return self.graph_json("PUT", url, f"upload {path.name}", ok=(200, 201), data=b"")

    def with_hash(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item, read again once if the upload's reply carried no QuickXorHash."""
        if item_hash(item) or not item.get("id"):
            return item
        return self.graph_json("GET", self.drive_url(f"/items/{item['id']}"),
                               f"read back {item.get('name', 'the item')}")

    def start_session(self, transfer: Transfer) -> None:
        """A new upload session (from byte 0); at most max_tries of them for one file."""
        name = transfer.path.name
        if transfer.sessions >= self._settings.max_tries:
            raise DeliveryError(f"{PREFIX}: upload of {name} failed: the upload session "
                                f"expired {transfer.sessions} times")
        transfer.sessions += 1
        url = self.drive_url(f"/items/{transfer.parent_id}:/{quote(name)}:/createUploadSession")
        body = {"item": {"@microsoft.graph.conflictBehavior": "replace"}}
        reply = self.graph_json("POST", url, f"start the upload of {name}", json=body)
        if not str(reply.get("uploadUrl", "")).startswith("https://"):
            raise DeliveryError(f"{PREFIX}: start the upload of {name} failed: no https "
                                "upload URL in the reply")
        transfer.upload_url = reply["uploadUrl"]
        transfer.offset = 0

    def upload_in_fragments(self, transfer: Transfer) -> dict[str, Any]:
        """Send the file through an upload session until the server returns the item."""
        self.start_session(transfer)
        with transfer.path.open("rb") as stream:
            while True:
                response = self.put_fragment(transfer, stream)
                if response is None:
                    self.recover_from_drop(transfer)
                elif response.status_code in (200, 201):
                    return final_item(response, transfer)
                elif response.status_code == 202:
                    transfer.offset = next_offset(response_json(response), transfer)
                    transfer.failures = 0
                else:
                    self.recover(transfer, response)

    def put_fragment(self, transfer: Transfer, stream: BinaryIO) -> requests.Response | None:
        """PUT the next fragment to the upload URL (no Authorization header: the URL is the
        credential). None when the connection dropped."""
        length = min(self._settings.chunk_bytes, transfer.size - transfer.offset)
        stream.seek(transfer.offset)
        data = stream.read(length)
        if len(data) != length:
            raise DeliveryError(f"{PREFIX}: {transfer.path.name} changed while it was uploaded")
        last = transfer.offset + length - 1
        headers = {"Content-Range": f"bytes {transfer.offset}-{last}/{transfer.size}"}
        try:
            response = self._session.request("PUT", transfer.upload_url, data=data,
                                             headers=headers)
        except (requests.ConnectionError, requests.Timeout) as exc:
            if certificate_rejected(exc):
                raise DeliveryError(f"{PREFIX}: upload of {transfer.path.name} failed: "
                                    f"{transport_reason(exc)}") from withheld(exc)
            transfer.last_drop = withheld(exc)
            return None
        transfer.fragments += 1
        LOG.debug("%s: %s bytes %d-%d/%d: HTTP %d", PREFIX, transfer.path.name,
                  transfer.offset, last, transfer.size, response.status_code)
        return response

    def count_failure(self, transfer: Transfer, problem: str) -> None:
        """One more failed try for this file; give up after max_tries in a row."""
        transfer.failures += 1
        if transfer.failures >= self._settings.max_tries:
            raise DeliveryError(f"{PREFIX}: upload of {transfer.path.name} failed: {problem}"
                                f"{after_tries(transfer.failures)}") from transfer.last_drop

    def recover_from_drop(self, transfer: Transfer) -> None:
        """The connection dropped mid-fragment: wait a little, then ask where to go on."""
        self.count_failure(transfer, "connection dropped")
        self.pause(backoff_seconds(transfer.failures), f"upload of {transfer.path.name}",
                   "connection dropped", transfer.failures)
        self.resume(transfer)

    def recover(self, transfer: Transfer, response: requests.Response) -> None:
        """A fragment was refused: wait (429/503), start again (404: the session is gone),
        ask where the server stands (416), or fail (anything else)."""
        name, status = transfer.path.name, response.status_code
        problem = f"HTTP {status} ({graph_code(response)})"
        if status not in (404, 416, *RETRY_STATUSES):
            raise DeliveryError(f"{PREFIX}: upload of {name} failed: {problem}")
        transfer.last_drop = None
        self.count_failure(transfer, problem)
        if status in RETRY_STATUSES:
            self.pause(retry_after_seconds(response, transfer.failures), f"upload of {name}",
                       problem, transfer.failures)
        elif status == 404:
            LOG.warning("%s: the upload session of %s is gone; starting a new one", PREFIX, name)
            self.start_session(transfer)
        else:
            self.resume(transfer)

    def resume(self, transfer: Transfer) -> None:
        """Ask the upload URL where to go on; a vanished session starts a new one."""
        name = transfer.path.name
        response = self.send("GET", transfer.upload_url, f"upload status of {name}",
                             auth=False)
        if response.status_code == 404:
            LOG.warning("%s: the upload session of %s is gone; starting a new one", PREFIX, name)
            self.start_session(transfer)
        elif response.status_code == 200:
            transfer.offset = next_offset(response_json(response), transfer)
            LOG.info("%s: resuming %s at byte %d", PREFIX, name, transfer.offset)
        else:
            raise graph_failure(f"upload status of {name}", response, self._settings.max_tries)


# ----------------------------------------------------------------------------- replies


def pick_drive(drives: list[dict[str, Any]], library: str, where: str) -> str:
    """The id of the library named `library` (exact name first, then ignoring case)."""
    for matches in (lambda d: d.get("name") == library,
                    lambda d: str(d.get("name", "")).casefold() == library.casefold()):
        found = [d for d in drives if matches(d)]
        if found:
            return str(found[0].get("id", ""))
    names = ", ".join(sorted(str(d.get("name", "?")) for d in drives)) or "none"
    raise DeliveryError(f"{PREFIX}: no document library named {library!r} on {where} "
                        f"(found: {names})")


def next_offset(status: dict[str, Any], transfer: Transfer) -> int:
    """The first byte the server still expects, from `nextExpectedRanges` ("1048576-")."""
    starts = []
    for text in status.get("nextExpectedRanges") or []:
        match = re.match(r"(\d+)-", str(text))
        if match:
            starts.append(int(match.group(1)))
    if not starts or not 0 <= min(starts) < transfer.size:
        raise DeliveryError(f"{PREFIX}: upload of {transfer.path.name} failed: the server's "
                            "nextExpectedRanges cannot be used")
    return min(starts)


def final_item(response: requests.Response, transfer: Transfer) -> dict[str, Any]:
    """The last fragment's reply must carry the stored item: the proof of delivery."""
    item = response_json(response)
    if not item.get("id"):
        raise DeliveryError(f"{PREFIX}: upload of {transfer.path.name} failed: the last "
                            f"reply (HTTP {response.status_code}) carried no item")
    return item


def item_hash(item: dict[str, Any]) -> str | None:
    hashes = (item.get("file") or {}).get("hashes") or {}
    value = hashes.get("quickXorHash")
    return value if isinstance(value, str) and value else None


def checked_item(path: Path, item: dict[str, Any], size: int, local_hash: str) -> UploadedItem:
    """Compare what SharePoint stored with the local file.

    Plain files must match in size and QuickXorHash. SharePoint changes Office files when it
    stores them (library metadata), so for those a difference is recorded, not an error.
    """
    remote_hash, remote_size = item_hash(item), item.get("size")
    same = remote_size == size and remote_hash == local_hash
    office = path.suffix.lower() in OFFICE_SUFFIXES
    if not same and not office:
        raise DeliveryError(f"{PREFIX}: {path.name} was stored differently from what was sent "
                            f"(sent {size} bytes, stored {remote_size}; QuickXorHash "
                            f"{'matches' if remote_hash == local_hash else 'differs'})")
    return UploadedItem(name=str(item.get("name", path.name)), item_id=str(item["id"]),
                        web_url=str(item.get("webUrl", "")),
                        size=int(remote_size) if isinstance(remote_size, int) else -1,
                        local_quick_xor=local_hash, remote_quick_xor=remote_hash,
                        office_rewritten=office and not same)


# ----------------------------------------------------------------------------- connecting


def connect(settings: GraphSettings, sleep: Sleep = time.sleep) -> GraphClient:
    """Sign in, find the site and its library; the client is ready to upload.

    Every failure is one DeliveryError line (ConfigError for unreadable key files).
    """
    quiet_http_loggers()
    session = open_session(settings)
    try:
        client = GraphClient(settings, build_msal_app(settings, session), session, sleep)
        client.access_token()  # bad credentials fail here, before any Graph call
        client.find_library()
    except BaseException:
        session.close()
        raise
    return client
