"""HTTP(S) downloads: streamed, retried with backoff, resumed with Range, verified by sha256.

A download is written to ``.partial/download.part`` in the source's cache slot, next to a small
state file holding the server's ETag / Last-Modified. A retry (in the same call or a later one)
asks for the missing bytes with ``Range`` and ``If-Range``, so bytes of another version are never
appended. The Kaggle source uses :func:`download` too.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit

from autoflux.acquire import archives, cache
from autoflux.acquire.base import Acquired, Progress, RetryPolicy
from autoflux.exceptions import AcquireError, CredentialsError, SourceNotFoundError

if TYPE_CHECKING:
    import requests

T = TypeVar("T")
Opener = Callable[[int, "str | None"], "requests.Response"]

_CHUNK = 1 << 16
_TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


class _Truncated(Exception):
    """The body ended before Content-Length bytes arrived."""


class _TransientStatus(Exception):
    def __init__(self, status: int, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class Download:
    """A completed download, still at ``path`` (the .part file) until the caller moves it."""

    path: Path
    name: str
    size: int
    received: int
    sha256: str
    etag: str | None
    last_modified: str | None
    length: int | None = None


def acquire_http(
    url: str,
    *,
    cache_dir: Path,
    refresh: bool,
    max_archive_bytes: int,
    sha256: str | None,
    on_progress: Progress,
    retry: RetryPolicy,
) -> Acquired:
    """Download ``url`` into the cache (resuming a partial download) and unpack it if an archive.

    A cached copy is checked with the server first (:func:`_revalidate`): a conditional GET with
    ``If-None-Match`` / ``If-Modified-Since`` when the copy has an ETag or Last-Modified, else a
    ``HEAD`` comparing the length; a server giving neither validator nor length is downloaded
    again. Unchanged: the cache is used and nothing is downloaded. When the server cannot be
    reached, the cached copy is used and ``note`` says it could not be checked.
    ``refresh=True`` downloads anew without asking.
    """
    import requests

    slot = cache.slot(cache_dir, url, kind="http")
    hit = None if refresh else slot.complete()
    if hit and sha256 is not None and hit.info.get("sha256") != sha256:
        hit = None
    if refresh:
        slot.clear_partial()
    note = None

    with requests.Session() as session:

        def open_response(offset: int, validator: str | None) -> requests.Response:
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
                if validator:
                    headers["If-Range"] = validator
            return session.get(url, headers=headers, stream=True, timeout=retry.timeout)

        first = None
        if hit is not None:
            try:
                check = _revalidate(session, url, hit.info, retry)
            except requests.HTTPError as error:
                raise http_error(url, error) from None
            except AcquireError as error:
                if not error.retryable:
                    raise
                when = hit.info.get("completed_at", "earlier")
                reason = error.message.rsplit("(", 1)[-1].rstrip(")") if "(" in error.message else error.message
                return Acquired(url, hit.data, True, 0, note=f"could not check with the server ({reason}); using the copy cached at {when}")
            if check.unchanged:
                return Acquired(url, hit.data, True, 0)
            first, note = check.response, check.reason
        try:
            got = download(
                open_response,
                slot.partial / "download.part",
                label=url_file_name(url),
                retry=retry,
                on_progress=on_progress,
                source=url,
                first=first,
            )
        except requests.HTTPError as error:
            slot.prune()
            raise http_error(url, error) from None
        except AcquireError:
            slot.prune()
            raise

    if sha256 is not None and got.sha256 != sha256:
        got.path.unlink()
        slot.prune()
        raise AcquireError(
            f"sha256 mismatch: expected {sha256}, downloaded {got.sha256}; nothing was kept",
            path=url,
            hint="check the URL and the expected checksum",
        )
    if hit is not None and got.sha256 == hit.info.get("sha256"):
        note = f"{note}; the same bytes as the cached copy"
    elif hit is not None:
        note = f"{note}; downloaded the new file"
    with slot.stage() as tmp:
        got.path.replace(tmp / "data" / got.name)
        archives.unpack_all(tmp / "data", max_bytes=max_archive_bytes, label=url, on_progress=on_progress)
        entry = slot.publish(tmp, sha256=got.sha256, size=got.size, etag=got.etag, last_modified=got.last_modified, length=got.length)
    return Acquired(url, entry.data, False, got.received, note=note)


@dataclass(frozen=True)
class _Check:
    """What the server said about a cached copy: unchanged, or changed with ``reason`` (and the
    response of the conditional GET, whose body is the new file, when there is one)."""

    unchanged: bool
    reason: str = ""
    response: requests.Response | None = None


def _revalidate(session: requests.Session, url: str, info: dict[str, Any], retry: RetryPolicy) -> _Check:
    """Ask the server whether the cached copy described by ``info`` (its marker) is still current.

    Raises ``requests.HTTPError`` on a 4xx answer, and a retryable AcquireError when the server
    cannot be reached (two tries: a check must not hold up an offline run).
    """
    checking = RetryPolicy(
        attempts=min(retry.attempts, 2), backoff=retry.backoff, max_backoff=retry.max_backoff, timeout=min(retry.timeout, 15.0)
    )
    etag, modified = info.get("etag"), info.get("last_modified")
    if etag or modified:
        headers = {"Accept-Encoding": "identity"}
        if etag:
            headers["If-None-Match"] = etag
        if modified:
            headers["If-Modified-Since"] = modified

        def conditional_get() -> requests.Response:
            response = session.get(url, headers=headers, stream=True, timeout=checking.timeout)
            _close_on_error(response)
            return response

        response = retrying(conditional_get, retry=checking, source=url)
        if response.status_code == 304:
            response.close()
            return _Check(True)
        now = _state_of(response)
        if (etag and now["etag"] == etag) or (not etag and not now["etag"] and now["last_modified"] == modified):
            response.close()  # a server ignoring the condition, with the same validator: unchanged
            return _Check(True)
        if etag and now["etag"]:
            reason = f"changed on the server (ETag {etag} → {now['etag']})"
        elif modified and now["last_modified"]:
            reason = f"changed on the server (Last-Modified {modified} → {now['last_modified']})"
        else:
            reason = "changed on the server (it no longer gives the cached copy's validator)"
        return _Check(False, reason, response)
    length = info.get("length")
    if length is not None:

        def head() -> requests.Response:
            response = session.head(url, headers={"Accept-Encoding": "identity"}, allow_redirects=True, timeout=checking.timeout)
            _close_on_error(response, passing={405, 501})
            return response

        response = retrying(head, retry=checking, source=url)
        response.close()
        now = _state_of(response)
        size = response.headers.get("Content-Length")
        if response.ok and not now["etag"] and not now["last_modified"] and size == str(length):
            return _Check(True)
        if size and size.isdigit() and int(size) != length:
            return _Check(False, f"changed on the server (length {length} → {size} bytes)")
        return _Check(False, "the server's HEAD answer cannot confirm the cached copy: downloaded again")
    return _Check(False, "the server gives no ETag, Last-Modified or length to check the cached copy against: downloaded again")


def _close_on_error(response: requests.Response, passing: frozenset[int] | set[int] = frozenset()) -> None:
    """Raise (for :func:`retrying`) on a 4xx or 5xx answer, except the statuses in ``passing``."""
    if response.status_code in passing:
        return
    try:
        _check_status(response)
    except Exception:
        response.close()
        raise


def download(
    open_response: Opener,
    part: Path,
    *,
    label: str,
    retry: RetryPolicy,
    on_progress: Progress,
    source: str,
    first: requests.Response | None = None,
) -> Download:
    """Stream a response body into ``part``, retrying transient failures and resuming with Range.

    ``open_response(offset, validator)`` opens the response, asking for bytes from ``offset`` on
    when ``offset`` > 0; ``first`` is an already opened full response. A 4xx answer is raised as
    ``requests.HTTPError`` for the caller to explain; running out of tries raises AcquireError.
    """
    import requests

    state = _load_state(part)
    received = 0
    attempt = 0
    response = first
    while True:
        try:
            offset = part.stat().st_size if state is not None and part.exists() else 0
            if response is not None and offset and _validator(state) != _validator(_state_of(response)):
                offset, state = 0, None
            if response is not None and offset:
                response.close()
                response = None
            if response is None:
                response = open_response(offset, _validator(state) if offset else None)
            if response.status_code == 416 and offset:
                response.close()
                response, state = None, None
                part.unlink(missing_ok=True)
                continue
            _check_status(response)
            if response.status_code == 206 and (not offset or _range_start(response) != offset):
                part.unlink(missing_ok=True)
                state = None
                raise _Truncated("the server sent another byte range than asked")
            if offset and response.status_code == 206:
                mode, digest = "ab", _hash_file(part)
            else:
                mode, digest, offset = "wb", hashlib.sha256(), 0
                state = _state_of(response)
                _save_state(part, state)
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            with open(part, mode) as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    offset += len(chunk)
                    received += len(chunk)
                    on_progress(label, offset, total)
            response.close()
            response = None
            if total is not None and offset != total:
                raise _Truncated(f"connection closed after {offset} of {total} bytes")
            _state_path(part).unlink(missing_ok=True)
            return Download(
                part,
                state["name"],
                offset,
                received,
                digest.hexdigest(),
                state.get("etag"),
                state.get("last_modified"),
                offset if state.get("length") is not None else None,
            )
        except (requests.RequestException, _Truncated, _TransientStatus) as error:
            if response is not None:
                response.close()
                response = None
            if not _is_transient(error):
                raise
            attempt = _count_failure(
                attempt,
                error,
                retry=retry,
                source=source,
                what="download",
                hint="check the network or the server and run again; it resumes where the server allows it",
            )


def _count_failure(attempt: int, error: Exception, *, retry: RetryPolicy, source: str, what: str, hint: str) -> int:
    """Count a failed try: wait before the next one, or raise a retryable error once the tries are used up."""
    attempt += 1
    if attempt >= retry.attempts:
        failure = AcquireError(f"{what} failed after {attempt} tries ({_reason(error)})", path=source, hint=hint)
        failure.retryable = True
        failure.status = _status(error)
        raise failure from None
    wait = _retry_after(error)
    time.sleep(retry.delay(attempt) if wait is None else min(wait, retry.max_backoff))
    return attempt


def _status(error: BaseException) -> int | None:
    if isinstance(error, _TransientStatus):
        return error.status
    response = getattr(error, "response", None)
    return response.status_code if response is not None else None


def _retry_after(error: BaseException) -> float | None:
    """Seconds a 429/503 answer asked to wait (``Retry-After`` in seconds), if it said."""
    if isinstance(error, _TransientStatus):
        return error.retry_after
    response = getattr(error, "response", None)
    value = response.headers.get("Retry-After", "") if response is not None else ""
    return float(value) if value.strip().isdigit() else None


def retrying(call: Callable[[], T], *, retry: RetryPolicy, source: str) -> T:
    """Run ``call``, retrying transient network failures and 408/429/5xx answers with backoff."""
    import requests

    attempt = 0
    while True:
        try:
            return call()
        except (requests.RequestException, _TransientStatus) as error:
            if not _is_transient(error):
                raise
            attempt = _count_failure(
                attempt, error, retry=retry, source=source, what="request", hint="check the network or the server and run again"
            )


def http_error(url: str, error: requests.HTTPError) -> AcquireError:
    """A one-line AutoFlux error for a 4xx answer to a plain URL."""
    status = error.response.status_code if error.response is not None else None
    if status == 404 or status == 410:
        return SourceNotFoundError(f"the server has no such file (HTTP {status})", path=url, hint="check the URL")
    if status in (401, 403):
        return CredentialsError(
            f"the server refused access (HTTP {status})",
            path=url,
            hint="the URL needs credentials AutoFlux does not send; use a pre-signed or public URL",
        )
    return AcquireError(f"the server answered HTTP {status}", path=url, hint="check the URL")


def url_file_name(url: str) -> str:
    """The file name a URL points at (last path segment, decoded), or ``download``."""
    return _safe_name(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))


def _check_status(response: requests.Response) -> None:
    import requests

    status = response.status_code
    if status in _TRANSIENT_STATUS or status >= 500:
        value = response.headers.get("Retry-After", "")
        raise _TransientStatus(status, float(value) if value.strip().isdigit() else None)
    if status >= 400:
        raise requests.HTTPError(f"HTTP {status}", response=response)


def _is_transient(error: BaseException) -> bool:
    import requests

    if isinstance(error, (_Truncated, _TransientStatus)):
        return True
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else 0
        return status in _TRANSIENT_STATUS or status >= 500
    return isinstance(error, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError))


def _reason(error: BaseException) -> str:
    import requests

    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError) and not isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "could not connect"
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection dropped"
    return str(error)


def _hash_file(path: Path) -> Any:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest


def _range_start(response: requests.Response) -> int | None:
    match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _state_of(response: requests.Response) -> dict[str, Any]:
    headers = response.headers
    length = headers.get("Content-Length") if response.status_code == 200 else None
    if response.status_code == 206:
        match = _CONTENT_RANGE.match(headers.get("Content-Range", ""))
        length = match.group(3) if match else None
    return {
        "name": _response_file_name(response),
        "etag": headers.get("ETag"),
        "last_modified": headers.get("Last-Modified"),
        "length": int(length) if length and length.isdigit() else None,
    }


def _validator(state: dict[str, Any] | None) -> str | None:
    if not state:
        return None
    return state.get("etag") or state.get("last_modified")


def _state_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _load_state(part: Path) -> dict[str, Any] | None:
    """The saved state of a partial download, or None (and no partial) when it cannot be resumed."""
    try:
        state = json.loads(_state_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    usable = isinstance(state, dict) and _validator(state) and isinstance(state.get("name"), str)
    if not usable or not part.exists():
        part.unlink(missing_ok=True)
        _state_path(part).unlink(missing_ok=True)
        return None
    return state


def _save_state(part: Path, state: dict[str, Any]) -> None:
    part.parent.mkdir(parents=True, exist_ok=True)
    _state_path(part).write_text(json.dumps(state), encoding="utf-8")


def _response_file_name(response: requests.Response) -> str:
    disposition = response.headers.get("Content-Disposition")
    if disposition:
        message = Message()
        message["Content-Disposition"] = disposition
        with suppress(Exception):
            name = message.get_filename()
            if name:
                return _safe_name(name)
    return url_file_name(response.url)


def _safe_name(name: str) -> str:
    name = PurePosixPath(name.replace("\\", "/")).name.strip()
    return name if name not in ("", ".", "..") else "download"
