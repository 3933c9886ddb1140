"""Object stores and other fsspec file systems: ``s3://``, ``gs://``, ``az://``, ``memory://``, …

The URI names one object, a folder (every object under it) or a glob (``s3://b/raw/*.csv``,
``**`` for any depth). Credentials come from the backend's usual environment; for S3,
AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL points at another server (MinIO, a local moto).
The listing (names, sizes, ETags or dates) is the cache version: an unchanged listing is
served from the cache without reading any object.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from pathlib import Path
from typing import Any

from autoflux.acquire import archives, cache
from autoflux.acquire.base import Acquired, Progress
from autoflux.exceptions import (
    AcquireError,
    CredentialsError,
    MissingDependencyError,
    SourceNotFoundError,
)
from autoflux.lake import s3_endpoint

_BACKENDS = {
    "s3": ("s3", "s3fs"),
    "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "az": ("azure", "adlfs"),
    "abfs": ("azure", "adlfs"),
    "abfss": ("azure", "adlfs"),
    "adl": ("azure", "adlfs"),
}
_MAGIC = re.compile(r"[*?\[]")
_CHUNK = 1 << 20
_VERSION_KEYS = (
    "ETag",
    "etag",
    "md5Hash",
    "version_id",
    "LastModified",
    "last_modified",
    "mtime",
    "updated",
    "created",
)


def acquire_objectstore(
    uri: str,
    *,
    cache_dir: Path,
    refresh: bool,
    max_archive_bytes: int,
    sha256: str | None,
    on_progress: Progress,
) -> Acquired:
    """Copy the objects ``uri`` names into the cache, keeping their layout under the glob's base.

    Progress counts the bytes of all the objects together, labelled with the current object.
    """
    if sha256 is not None:
        raise AcquireError("sha256 is checked for http(s) URLs and local files only", path=uri, hint="drop sha256")
    fs, path = open_filesystem(uri)
    objects = list_objects(fs, path, uri)
    listing = [[rel, info.get("size"), _token(info)] for _, rel, info in objects]
    version = hashlib.sha256(json.dumps(listing, default=str).encode()).hexdigest()
    protocol = uri.split("://", 1)[0].lower()
    slot = cache.slot(cache_dir, uri, kind=protocol)
    if not refresh:
        hit = slot.complete(version)
        if hit:
            return Acquired(uri, hit.data, True, 0)
    sizes = [info.get("size") for _, _, info in objects]
    total = sum(sizes) if all(isinstance(size, int) for size in sizes) else None
    received = 0
    with slot.stage() as tmp:
        for remote, rel, _ in objects:
            received = _copy(fs, remote, tmp / "data" / rel, label=rel, done=received, total=total, on_progress=on_progress)
        archives.unpack_all(tmp / "data", max_bytes=max_archive_bytes, label=uri, on_progress=on_progress)
        entry = slot.publish(tmp, version=version, objects=len(objects))
    return Acquired(uri, entry.data, False, received)


def open_filesystem(uri: str) -> tuple[Any, str]:
    """The fsspec file system and path for ``uri``; a missing backend raises MissingDependencyError."""
    import fsspec

    protocol = uri.split("://", 1)[0].lower()
    options: dict[str, Any] = {}
    if protocol in ("s3", "s3a") and (endpoint := s3_endpoint()):
        options["endpoint_url"] = endpoint
    try:
        fs, path = fsspec.core.url_to_fs(uri, **options)
    except ImportError as error:
        if protocol in _BACKENDS:
            extra, package = _BACKENDS[protocol]
            raise MissingDependencyError(f"{protocol}:// sources", extra=extra, package=package) from None
        raise AcquireError(f"{protocol}:// needs a package that is not installed ({error})", path=uri) from None
    except ValueError as error:
        raise AcquireError(
            f"unknown protocol {protocol!r} ({error})",
            path=uri,
            hint="use a local path, kaggle:…, an http(s) URL or an fsspec URI such as s3://bucket/key",
        ) from None
    fs.invalidate_cache()
    return fs, path


def list_objects(fs: Any, path: str, uri: str) -> list[tuple[str, str, dict[str, Any]]]:
    """The files ``path`` names as ``(remote path, relative name, info)``, sorted by name."""
    try:
        if _MAGIC.search(path):
            parts = path.split("/")
            first = next(i for i, part in enumerate(parts) if _MAGIC.search(part))
            base = "/".join(parts[:first])
            found = fs.glob(path, detail=True)
        elif fs.isdir(path):
            base = path.rstrip("/")
            found = fs.find(path, detail=True)
        else:
            info = fs.info(path)
            base = posixpath.dirname(path.rstrip("/"))
            found = {info.get("name", path): info}
    except FileNotFoundError:
        raise SourceNotFoundError("no such bucket, folder or object", path=uri, hint="check the URI") from None
    except PermissionError as error:
        raise CredentialsError(f"access denied ({error})", path=uri, hint=_credentials_hint(uri)) from None
    except Exception as error:
        if "Credentials" in type(error).__name__:
            raise CredentialsError("no credentials found", path=uri, hint=_credentials_hint(uri)) from None
        raise AcquireError(f"listing failed ({type(error).__name__}: {error})", path=uri) from None
    objects = []
    for remote, info in sorted(found.items()):
        if info.get("type") != "file":
            continue
        rel = remote[len(base) :].lstrip("/") if base and remote.startswith(base) else posixpath.basename(remote)
        objects.append((remote, _safe_rel(rel, uri), info))
    if not objects:
        raise SourceNotFoundError("no object matches", path=uri, hint="check the bucket, prefix and pattern")
    return objects


def _copy(fs: Any, remote: str, target: Path, *, label: str, done: int, total: int | None, on_progress: Progress) -> int:
    """Copy one object, reporting the bytes of the whole source so far; return that count."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with fs.open(remote, "rb") as src, open(target, "xb") as out:
        while chunk := src.read(_CHUNK):
            out.write(chunk)
            done += len(chunk)
            on_progress(label, done, total)
    return done


def _token(info: dict[str, Any]) -> str:
    for key in _VERSION_KEYS:
        if info.get(key) is not None:
            return f"{key}={info[key]}"
    return ""


def _safe_rel(rel: str, uri: str) -> str:
    clean = posixpath.normpath(rel.replace("\\", "/"))
    if clean in (".", "..") or clean.startswith(("../", "/")):
        raise AcquireError(f"object name {rel!r} would land outside the cache folder", path=uri)
    return clean


def _credentials_hint(uri: str) -> str:
    protocol = uri.split("://", 1)[0].lower()
    if protocol in ("s3", "s3a"):
        return "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), and AWS_ENDPOINT_URL_S3 for a non-AWS server"
    if protocol in ("gs", "gcs"):
        return "set GOOGLE_APPLICATION_CREDENTIALS or run gcloud auth application-default login"
    if protocol in ("az", "abfs", "abfss", "adl"):
        return "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a connection string)"
    return "check the file system's credentials"
