"""Acquire: bring a source's data files to a local folder, cached, resumable and safe.

A source is a local path, ``kaggle:competition/<slug>[/<file>]``,
``kaggle:dataset/<owner>/<slug>[@<version>]``, an ``http(s)://`` URL or an fsspec URI
(``s3://bucket/prefix/*.csv``, ``gs://…``, ``az://…``, ``memory://…``). Every form ends as a
local folder (or file) that ingest reads, with archives already unpacked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from autoflux.acquire.base import Acquired, Progress, RetryPolicy
from autoflux.exceptions import AcquireError
from autoflux.lock import folder_lock

__all__ = ["Acquired", "Progress", "RetryPolicy", "SourceKind", "acquire", "source_kind"]

SourceKind = Literal["local", "kaggle", "http", "fsspec"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def source_kind(source: str) -> SourceKind:
    """Tell which kind of source a source string names, without touching it."""
    if source.startswith("kaggle:"):
        return "kaggle"
    match = _SCHEME.match(source)
    if not match:
        return "local"
    scheme = match.group(1).lower()
    if scheme in ("http", "https"):
        return "http"
    if scheme == "file":
        return "local"
    return "fsspec"


def acquire(
    source: str,
    *,
    cache_dir: Path,
    refresh: bool = False,
    max_archive_bytes: int = 10 * 2**30,
    sha256: str | None = None,
    on_progress: Progress | None = None,
    retry: RetryPolicy | None = None,
) -> Acquired:
    """Fetch ``source`` into ``cache_dir`` (unless it is a plain local path) and return where it is.

    A second call with nothing new downloads nothing (``from_cache=True``); ``refresh=True``
    forces a new download. Archives (zip, tar, tar.gz/bz2/xz, single .bz2/.xz) are unpacked
    safely: entries escaping the target or expanding past ``max_archive_bytes`` are refused with
    :class:`~autoflux.exceptions.UnsafeArchiveError`; single ``.gz`` files are kept as they are.
    ``sha256`` checks the downloaded file of an http(s) source or a local file.
    ``on_progress(label, bytes_done, total_or_None)`` is called as bytes arrive.
    """
    source = source.strip()
    if not source:
        raise AcquireError("the source is empty", hint="give a path, kaggle:…, an http(s) URL or s3://…")
    options = {
        "cache_dir": Path(cache_dir).expanduser(),
        "refresh": refresh,
        "max_archive_bytes": max_archive_bytes,
        "sha256": _checked_sha256(sha256, source),
        "on_progress": on_progress or _no_progress,
    }
    kind = source_kind(source)
    if kind == "local":
        from autoflux.acquire.local import acquire_local

        return acquire_local(source, **options)  # takes the cache's lock when it unpacks an archive
    with folder_lock(options["cache_dir"]):  # a process fetching into this cache finishes first; we then find its copy
        return _download(kind, source, retry, options)


def _download(kind: SourceKind, source: str, retry: RetryPolicy | None, options: dict) -> Acquired:
    if kind == "kaggle":
        from autoflux.acquire.kaggle import acquire_kaggle

        return acquire_kaggle(source, retry=retry or RetryPolicy(), **options)
    if kind == "http":
        from autoflux.acquire.http import acquire_http

        return acquire_http(source, retry=retry or RetryPolicy(), **options)
    from autoflux.acquire.objectstore import acquire_objectstore

    return acquire_objectstore(source, **options)


def _checked_sha256(sha256: str | None, source: str) -> str | None:
    if sha256 is None:
        return None
    digest = sha256.strip().lower().removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise AcquireError(f"sha256 {sha256!r} is not 64 hexadecimal digits", path=source, hint="copy the full sha256 checksum")
    return digest


def _no_progress(label: str, done: int, total: int | None) -> None:
    return None
