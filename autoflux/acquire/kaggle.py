"""Kaggle competitions and datasets, through the official client (``kagglesdk``, from ``kaggle``).

Sources: ``kaggle:competition/<slug>`` (all files), ``kaggle:competition/<slug>/<file>`` (one
file), ``kaggle:dataset/<owner>/<slug>[@<version>]`` and ``…/<slug>[@<version>]/<file>``.
Credentials come from KAGGLE_API_TOKEN, ~/.kaggle/access_token, KAGGLE_USERNAME and KAGGLE_KEY,
or kaggle.json in KAGGLE_CONFIG_DIR (else ~/.kaggle, ~/.config/kaggle); they are never printed.
``KAGGLE_API_ENVIRONMENT`` picks the Kaggle endpoint as in the official client.

A dataset version never changes, so a cached ``@<version>`` is used without asking Kaggle.
Otherwise each call asks Kaggle for the download (one request, redirected to the file, as the
official client does); when its ETag / Last-Modified / size match the cached version, the
response is closed unread and the cache is used.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from autoflux.acquire import archives, cache, http
from autoflux.acquire.base import Acquired, Progress, RetryPolicy
from autoflux.exceptions import (
    AcquireError,
    CredentialsError,
    MissingDependencyError,
    SourceNotFoundError,
)

if TYPE_CHECKING:
    import requests

_SLUG = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_COMPETITION = re.compile(rf"^competitions?/(?P<slug>{_SLUG})(?:/(?P<file>.+))?$")
_DATASET = re.compile(rf"^datasets?/(?P<owner>{_SLUG})/(?P<slug>{_SLUG})(?:@(?P<version>\d+))?(?:/(?P<file>.+))?$")
_FORMS = "kaggle:competition/<slug>[/<file>] or kaggle:dataset/<owner>/<slug>[@<version>][/<file>]"
_TOKEN_PAGE = "https://www.kaggle.com/settings/api"


@dataclass(frozen=True)
class KaggleRef:
    """A parsed ``kaggle:`` source."""

    kind: Literal["competition", "dataset"]
    slug: str
    owner: str | None = None
    version: int | None = None
    file: str | None = None

    @property
    def canonical(self) -> str:
        if self.kind == "competition":
            base = f"kaggle:competition/{self.slug}"
        else:
            base = f"kaggle:dataset/{self.owner}/{self.slug}" + (f"@{self.version}" if self.version else "")
        return f"{base}/{self.file}" if self.file else base

    @property
    def page(self) -> str:
        if self.kind == "competition":
            return f"https://www.kaggle.com/competitions/{self.slug}"
        return f"https://www.kaggle.com/datasets/{self.owner}/{self.slug}"


@dataclass(frozen=True)
class Credentials:
    """Kaggle credentials and where they came from; ``repr`` never shows the secrets."""

    origin: str
    username: str | None = field(default=None, repr=False)
    key: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)


def parse(source: str) -> KaggleRef:
    """Parse a ``kaggle:`` source string; AcquireError names the accepted forms."""
    rest = source.removeprefix("kaggle:").strip().strip("/")
    if match := _COMPETITION.match(rest):
        return KaggleRef("competition", match["slug"], file=_file(match["file"], source))
    if match := _DATASET.match(rest):
        version = int(match["version"]) if match["version"] else None
        if version == 0:
            raise AcquireError("Kaggle dataset versions start at 1", path=source, hint=f"use {_FORMS}")
        return KaggleRef("dataset", match["slug"], match["owner"], version, _file(match["file"], source))
    raise AcquireError("not a Kaggle source AutoFlux understands", path=source, hint=f"use {_FORMS}")


def credentials() -> Credentials:
    """Find Kaggle credentials the way the official client does, without printing them."""
    token = os.environ.get("KAGGLE_API_TOKEN", "").strip()
    if token:
        if Path(token).expanduser().is_file():
            return Credentials("the file named by KAGGLE_API_TOKEN", token=_read(Path(token).expanduser()))
        return Credentials("KAGGLE_API_TOKEN", token=token)
    for name in ("access_token", "access_token.txt"):
        path = Path("~/.kaggle").expanduser() / name
        if path.is_file() and _read(path):
            return Credentials(f"~/.kaggle/{name}", token=_read(path))
    username = os.environ.get("KAGGLE_USERNAME", "").strip()
    key = os.environ.get("KAGGLE_KEY", "").strip()
    if username and key:
        return Credentials("KAGGLE_USERNAME and KAGGLE_KEY", username=username, key=key)
    if username or key:
        missing = "KAGGLE_KEY" if username else "KAGGLE_USERNAME"
        raise CredentialsError(
            f"{missing} is not set while {'KAGGLE_USERNAME' if username else 'KAGGLE_KEY'} is",
            hint=f"set both (the key is in the kaggle.json you get at {_TOKEN_PAGE})",
        )
    for path in _kaggle_json_paths():
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                return Credentials(str(path), username=str(data["username"]), key=str(data["key"]))
            except (OSError, ValueError, KeyError, TypeError):
                raise CredentialsError(
                    "kaggle.json is not JSON with a username and a key",
                    path=path,
                    hint=f"download a new one at {_TOKEN_PAGE}",
                ) from None
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    where = f"{config_dir}/kaggle.json (KAGGLE_CONFIG_DIR)" if config_dir else "~/.kaggle/kaggle.json"
    raise CredentialsError(
        "no Kaggle credentials found",
        hint=f"create an API token at {_TOKEN_PAGE} and save kaggle.json as {where}, "
        "or set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN)",
    )


def acquire_kaggle(
    source: str,
    *,
    cache_dir: Path,
    refresh: bool,
    max_archive_bytes: int,
    sha256: str | None,
    on_progress: Progress,
    retry: RetryPolicy,
) -> Acquired:
    """Download a Kaggle competition's or dataset's files (or one file) and unpack the zips."""
    ref = parse(source)
    if sha256 is not None:
        raise AcquireError("sha256 is checked for http(s) URLs and local files only", path=source, hint="drop sha256")
    slot = cache.slot(cache_dir, ref.canonical, kind="kaggle")
    if ref.version is not None and not refresh:
        hit = slot.complete()
        if hit:
            return Acquired(source, hit.data, True, 0)
    creds = credentials()
    try:
        from kagglesdk import KaggleClient
    except ImportError:
        raise MissingDependencyError("Kaggle sources", extra="kaggle", package="kaggle") from None
    import requests

    try:
        client = KaggleClient(username=creds.username, password=creds.key, api_token=creds.token, verbose=False)
    except Exception as error:
        raise AcquireError(f"the Kaggle client could not start ({error})", path=source) from None

    with client, requests.Session() as session:

        def ask() -> requests.Response:
            return _request(client, ref)

        def open_response(offset: int, validator: str | None) -> requests.Response:
            if not offset or not first.history or first.request.method != "GET":
                return ask()
            headers = {"Accept-Encoding": "identity", "Range": f"bytes={offset}-"}
            if validator:
                headers["If-Range"] = validator
            return session.get(first.url, headers=headers, stream=True, timeout=retry.timeout)

        try:
            first = http.retrying(ask, retry=retry, source=source)
            version = "" if ref.version is not None else _version(first)
            hit = None if refresh else slot.complete(version)
            if hit:
                first.close()
                return Acquired(source, hit.data, True, 0)
            if refresh:
                slot.clear_partial()
            got = http.download(
                open_response,
                slot.partial / "download.part",
                label=http.url_file_name(first.url),
                retry=retry,
                on_progress=on_progress,
                source=source,
                first=first,
            )
        except requests.HTTPError as error:
            slot.prune()
            raise _error(ref, source, creds, error) from None
        except AcquireError as error:
            slot.prune()
            if getattr(error, "status", None) == 429:
                limited = AcquireError(
                    f"Kaggle is limiting this account's requests (HTTP 429, still after {retry.attempts} tries with backoff)",
                    path=source,
                    hint="wait a few minutes, then run again; nothing was loaded",
                )
                limited.retryable = True
                raise limited from None
            if error.retryable:
                error.hint = "run again: the download resumes where it stopped; nothing was loaded"
            raise

    with slot.stage() as tmp:
        target = tmp / "data" / got.name
        got.path.replace(target)
        archives.unpack_all(tmp / "data", max_bytes=max_archive_bytes, label=source, on_progress=on_progress)
        entry = slot.publish(tmp, version=version, sha256=got.sha256, size=got.size, etag=got.etag, last_modified=got.last_modified)
    return Acquired(source, entry.data, False, got.received)


def _request(client, ref: KaggleRef) -> requests.Response:
    if ref.kind == "competition":
        api = client.competitions.competition_api_client
        if ref.file:
            from kagglesdk.competitions.types.competition_api_service import (
                ApiDownloadDataFileRequest,
            )

            request = ApiDownloadDataFileRequest()
            request.competition_name = ref.slug
            request.file_name = ref.file
            return api.download_data_file(request)
        from kagglesdk.competitions.types.competition_api_service import (
            ApiDownloadDataFilesRequest,
        )

        request = ApiDownloadDataFilesRequest()
        request.competition_name = ref.slug
        return api.download_data_files(request)
    from kagglesdk.datasets.types.dataset_api_service import ApiDownloadDatasetRequest

    request = ApiDownloadDatasetRequest()
    request.owner_slug = ref.owner
    request.dataset_slug = ref.slug
    request.dataset_version_number = ref.version
    request.file_name = ref.file
    return client.datasets.dataset_api_client.download_dataset(request)


def _version(response: requests.Response) -> str:
    """What identifies the file Kaggle is about to send: its URL path, ETag, date and size."""
    headers = response.headers
    path = response.url.split("?", 1)[0]
    parts = [path, headers.get("ETag"), headers.get("Last-Modified"), headers.get("Content-Length")]
    return "|".join(part or "" for part in parts)


def _error(ref: KaggleRef, source: str, creds: Credentials, error: requests.HTTPError) -> AcquireError:
    status = error.response.status_code if error.response is not None else None
    what = "competition" if ref.kind == "competition" else "dataset"
    if status == 401:
        return CredentialsError(
            f"Kaggle refused the credentials from {creds.origin} (401 Unauthorized)",
            path=source,
            hint=f"check the username and key, or create a new API token at {_TOKEN_PAGE}",
        )
    if status == 403 and ref.kind == "competition":
        return CredentialsError(
            "Kaggle refused access to the competition data (403 Forbidden)",
            path=source,
            hint=f"accept the competition rules at {ref.page}/rules with this account, then run again",
        )
    if status == 403:
        return CredentialsError(
            "Kaggle refused access to the dataset (403 Forbidden)",
            path=source,
            hint=f"check that this account can open {ref.page}",
        )
    if status == 404:
        thing = f"file {ref.file!r} in this {what}" if ref.file else what
        version = f" version {ref.version}" if ref.version else ""
        return SourceNotFoundError(
            f"Kaggle has no such {thing}{version} (404 Not Found)",
            path=source,
            hint=f"check the name at {ref.page}",
        )
    return AcquireError(f"Kaggle answered HTTP {status}", path=source, hint="run again later")


def _file(name: str | None, source: str) -> str | None:
    if name is None:
        return None
    parts = name.replace("\\", "/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise AcquireError(f"file name {name!r} is not a plain relative path", path=source, hint=f"use {_FORMS}")
    return "/".join(parts)


def _kaggle_json_paths() -> list[Path]:
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    if config_dir:
        return [Path(config_dir).expanduser() / "kaggle.json"]
    xdg = os.environ.get("XDG_CONFIG_HOME") or "~/.config"
    return [Path("~/.kaggle/kaggle.json").expanduser(), Path(xdg).expanduser() / "kaggle" / "kaggle.json"]


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
