"""Local sources: a folder or file is used where it is; a local archive is unpacked into the cache."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from autoflux.acquire import archives, cache
from autoflux.acquire.base import Acquired, Progress
from autoflux.exceptions import AcquireError, SourceNotFoundError
from autoflux.lock import folder_lock


def local_path(source: str) -> Path:
    """The path a local source names (``file://`` URLs and ``~`` included)."""
    if source.lower().startswith("file://"):
        return Path(unquote(urlsplit(source).path))
    return Path(source).expanduser()


def acquire_local(
    source: str,
    *,
    cache_dir: Path,
    refresh: bool,
    max_archive_bytes: int,
    sha256: str | None,
    on_progress: Progress,
) -> Acquired:
    """Return a local folder or data file as is; unpack a local archive into the cache.

    The unpacked copy is keyed by the archive's path, size and modification time, so a changed
    archive is unpacked again and an unchanged one is not (``from_cache=True``).
    """
    path = local_path(source)
    if not path.exists():
        raise SourceNotFoundError("no such file or folder", path=source, hint="check the path")
    if path.is_dir():
        if sha256 is not None:
            raise AcquireError("sha256 checks a single file, not a folder", path=source, hint="drop sha256")
        return Acquired(source, path, False, 0)
    if sha256 is not None:
        actual = cache.file_sha256(path)
        if actual != sha256:
            raise AcquireError(
                f"sha256 mismatch: expected {sha256}, the file has {actual}",
                path=source,
                hint="check that this is the file you meant",
            )
    if archives.archive_kind(path) is None:
        return Acquired(source, path, False, 0)

    with folder_lock(cache_dir):
        return _unpack(source, path, cache_dir, refresh=refresh, max_archive_bytes=max_archive_bytes, on_progress=on_progress)


def _unpack(source: str, path: Path, cache_dir: Path, *, refresh: bool, max_archive_bytes: int, on_progress: Progress) -> Acquired:
    info = path.stat()
    slot = cache.slot(cache_dir, str(path.resolve()), kind="local")
    version = f"{info.st_size}:{info.st_mtime_ns}"
    if not refresh:
        hit = slot.complete(version)
        if hit:
            return Acquired(source, hit.data, True, 0)
    with slot.stage() as tmp:
        budget = archives.Budget(max_archive_bytes)
        data = tmp / "data"
        archives.extract(path, data, max_bytes=max_archive_bytes, label=source, on_progress=on_progress, budget=budget)
        archives.unpack_all(data, max_bytes=max_archive_bytes, label=source, on_progress=on_progress, levels=1, budget=budget)
        entry = slot.publish(tmp, version=version, archive=str(path.resolve()))
    return Acquired(source, entry.data, False, 0)
