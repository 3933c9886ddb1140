"""The download cache: one folder per source, one complete version inside it.

Layout under ``cache_dir``::

    <kind>/<name>-<hash of source>/     the slot of one source
        .partial/                       resumable downloads (``download.part`` + state)
        .tmp-*/                         a version being built (removed on failure, or by the next build
                                        when a killed process left it)
        current/ or v-<hash>/           a complete version: ``data/`` + ``autoflux-complete.json``

A version is built in a temp folder, its marker written last, then renamed into place, so a
folder without a valid marker (or with a listed file missing) is never taken for complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MARKER = "autoflux-complete.json"
PARTIAL = ".partial"


@dataclass(frozen=True)
class Entry:
    """A complete cached version of a source."""

    root: Path
    info: dict[str, Any]

    @property
    def data(self) -> Path:
        return self.root / "data"


@dataclass(frozen=True)
class Slot:
    """The cache folder of one source."""

    root: Path
    source: str

    @property
    def partial(self) -> Path:
        return self.root / PARTIAL

    def entry_dir(self, version: str = "") -> Path:
        return self.root / (f"v-{_digest(version)[:16]}" if version else "current")

    def complete(self, version: str = "") -> Entry | None:
        """The complete entry for ``version``, or None when absent, unfinished or damaged."""
        folder = self.entry_dir(version)
        try:
            info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(info, dict) or info.get("source") != self.source or info.get("version") != version:
            return None
        files = info.get("files")
        if not isinstance(files, dict):
            return None
        data = folder / "data"
        for name, size in files.items():
            try:
                if (data / name).stat().st_size != size:
                    return None
            except OSError:
                return None
        return Entry(folder, info)

    @contextlib.contextmanager
    def stage(self) -> Iterator[Path]:
        """A fresh temp folder (with an empty ``data/``) to build a version in; removed on failure.

        Folders an earlier, killed build left are removed first: the caller holds the source's
        lock (:func:`autoflux.acquire.acquire` takes it), so no one else is building here.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        (tmp / "data").mkdir()
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self.prune()

    def publish(self, staged: Path, *, version: str = "", **info: Any) -> Entry:
        """Mark ``staged`` complete and move it into place as ``version``, dropping other versions."""
        data = staged / "data"
        files = {
            path.relative_to(data).as_posix(): path.stat().st_size
            for path in sorted(data.rglob("*"))
            if path.is_file() and not path.is_symlink()
        }
        marker = {
            "source": self.source,
            "version": version,
            "completed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            **info,
        }
        with open(staged / MARKER, "w", encoding="utf-8") as handle:
            json.dump(marker, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        final = self.entry_dir(version)
        old = None
        if final.exists():
            old = self.root / f".old-{uuid.uuid4().hex}"
            final.rename(old)
        staged.rename(final)
        for other in self.root.iterdir():
            if other != final and (other.name == "current" or other.name.startswith(("v-", ".old-"))):
                shutil.rmtree(other, ignore_errors=True)
        return Entry(final, marker)

    def clear_partial(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def prune(self) -> None:
        """Remove this slot's empty folders, so a failed first fetch leaves nothing behind."""
        for folder in (self.partial, self.root, self.root.parent):
            with contextlib.suppress(OSError):
                folder.rmdir()


def slot(cache_dir: Path, source: str, *, kind: str) -> Slot:
    """The cache slot of ``source`` (a canonical source string) under ``cache_dir/kind``."""
    tail = re.split(r"[?#]", source.split("://", 1)[-1], maxsplit=1)[0]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", tail)[-48:].strip("-.") or kind
    return Slot(Path(cache_dir) / kind / f"{name}-{_digest(source)[:12]}", source)


def file_sha256(path: Path) -> str:
    """The sha256 of a file, as 64 lowercase hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
