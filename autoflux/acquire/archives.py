"""Safe unpacking of zip and tar archives and of single ``.bz2`` / ``.xz`` files.

Every archive is unpacked into a temp folder inside the target and moved into place only when
all of it passed: entries with an absolute path or a path leaving the target, links pointing
outside it and special files are refused, and so is an archive whose declared or actually
written size passes the byte limit. Links are created last, so no file is ever written through
one. Single ``.gz`` files are data (ingest reads gzip) and are left alone.
"""

from __future__ import annotations

import bz2
import contextlib
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import uuid
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Literal

from autoflux.exceptions import AcquireError, UnsafeArchiveError

ArchiveKind = Literal["zip", "tar", "bz2", "xz"]

_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tbz", ".tar.xz", ".txz")
_SINGLE = {".bz2": ("bz2", bz2.open), ".xz": ("xz", lzma.open)}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20
_UNSAFE_HINT = "nothing of it was unpacked; only use archives from a source you trust"
_CORRUPT = (
    zipfile.BadZipFile,
    tarfile.TarError,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    NotImplementedError,
)

Progress = Callable[[str, int, "int | None"], None]


def archive_kind(path: Path) -> ArchiveKind | None:
    """The kind of archive ``path`` is by its name, or None for a data file (``.gz`` included)."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(_TAR_SUFFIXES):
        return "tar"
    for suffix, (kind, _) in _SINGLE.items():
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind  # type: ignore[return-value]
    return None


class Budget:
    """Counts bytes written while unpacking, against a limit shared by nested archives."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def check(self, size: int, *, archive: str, entry: str, declared: bool) -> None:
        if self.used + size > self.limit:
            how = "declares" if declared else "expands to"
            raise UnsafeArchiveError(
                f"archive {how} more than the limit of {_human(self.limit)} at entry {entry!r}",
                path=archive,
                hint=f"{_UNSAFE_HINT}, or raise max_archive_bytes if you trust it",
            )

    def take(self, size: int, *, archive: str, entry: str) -> None:
        self.check(size, archive=archive, entry=entry, declared=False)
        self.used += size


def extract(
    archive: Path,
    dest: Path,
    *,
    max_bytes: int,
    label: str | None = None,
    on_progress: Progress | None = None,
    budget: Budget | None = None,
) -> list[Path]:
    """Unpack ``archive`` into ``dest`` (created when missing) and return the top-level paths made.

    Raises UnsafeArchiveError (naming ``label`` or the archive, and the entry) for an entry that
    escapes ``dest``, a link pointing outside it, a special file, or more than ``max_bytes``
    expanded; AcquireError for a corrupt archive or an entry clashing with an existing file.
    Nothing of a refused archive is left in ``dest``.
    """
    kind = archive_kind(archive)
    name = label or str(archive)
    if kind is None:
        raise AcquireError("not an archive AutoFlux can unpack", path=name)
    budget = budget or Budget(max_bytes)
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".autoflux-unpack-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        if kind == "zip":
            _unzip(archive, tmp, name, budget, on_progress)
        elif kind == "tar":
            _untar(archive, tmp, name, budget, on_progress)
        else:
            _decompress(archive, tmp, name, budget, on_progress)
        made = sorted(tmp.iterdir())
        for path in made:
            if (dest / path.name).exists() or (dest / path.name).is_symlink():
                raise AcquireError(
                    f"entry {path.name!r} would overwrite an existing file in {dest}",
                    path=name,
                    hint="unpack it into an empty folder",
                )
        for path in made:
            path.rename(dest / path.name)
        return [dest / path.name for path in made]
    except _CORRUPT as error:
        raise AcquireError(f"archive is corrupt or unreadable ({error})", path=name) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if created:
            with contextlib.suppress(OSError):
                dest.rmdir()


def unpack_all(
    folder: Path,
    *,
    max_bytes: int,
    label: str,
    on_progress: Progress | None = None,
    levels: int = 2,
    budget: Budget | None = None,
) -> None:
    """Unpack every archive under ``folder`` in place and delete it, then archives found inside
    them, down to ``levels`` levels, all within one ``max_bytes`` budget."""
    budget = budget or Budget(max_bytes)
    for _ in range(levels):
        found = [p for p in sorted(folder.rglob("*")) if archive_kind(p) and p.is_file() and not p.is_symlink()]
        if not found:
            return
        for archive in found:
            name = f"{label} ({archive.relative_to(folder).as_posix()})"
            extract(archive, archive.parent, max_bytes=max_bytes, label=name, on_progress=on_progress, budget=budget)
            archive.unlink()


def _unzip(archive: Path, root: Path, name: str, budget: Budget, on_progress: Progress | None) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = [i for i in zf.infolist() if not i.filename.replace("\\", "/").startswith("__MACOSX/")]
        plan = [(info, _member_path(info.filename, name)) for info in infos]
        declared = Budget(budget.limit)
        declared.used = budget.used
        for info, _ in plan:
            if not info.is_dir():
                declared.check(info.file_size, archive=name, entry=info.filename, declared=True)
                declared.used += info.file_size
        total = declared.used - budget.used
        links: list[tuple[str, str, str]] = []
        done = 0
        for info, rel in plan:
            if rel is None:
                continue
            target = root / rel
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif stat.S_ISLNK(info.external_attr >> 16):
                links.append(("sym", rel, zf.read(info).decode("utf-8", "surrogateescape")))
            else:
                with zf.open(info) as src:
                    done = _copy(src, target, name, info.filename, budget, on_progress, done, total)
        _make_links(root, links, name)


def _untar(archive: Path, root: Path, name: str, budget: Budget, on_progress: Progress | None) -> None:
    links: list[tuple[str, str, str]] = []
    done = 0
    declared = budget.used
    with tarfile.open(archive, mode="r|*") as tf:
        for member in tf:
            rel = _member_path(member.name, name)
            if rel is None:
                continue
            if member.isdir():
                (root / rel).mkdir(parents=True, exist_ok=True)
            elif member.issym():
                links.append(("sym", rel, member.linkname))
            elif member.islnk():
                links.append(("hard", rel, member.linkname))
            elif member.isreg():
                budget.check(declared - budget.used + member.size, archive=name, entry=member.name, declared=True)
                declared += member.size
                src = tf.extractfile(member)
                assert src is not None
                with src:
                    done = _copy(src, root / rel, name, member.name, budget, on_progress, done, None)
            else:
                raise UnsafeArchiveError(
                    f"entry {member.name!r} is a device, fifo or other special file", path=name, hint=_UNSAFE_HINT
                )
    _make_links(root, links, name)


def _decompress(archive: Path, root: Path, name: str, budget: Budget, on_progress: Progress | None) -> None:
    suffix = "." + archive.name.rsplit(".", 1)[1].lower()
    opener = _SINGLE[suffix][1]
    out = archive.name[: -len(suffix)]
    with opener(archive, "rb") as src:
        _copy(src, root / out, name, out, budget, on_progress, 0, None)


def _copy(
    src: BinaryIO,
    target: Path,
    name: str,
    entry: str,
    budget: Budget,
    on_progress: Progress | None,
    done: int,
    total: int | None,
) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as out:
        while chunk := src.read(_CHUNK):
            budget.take(len(chunk), archive=name, entry=entry)
            out.write(chunk)
            done += len(chunk)
            if on_progress:
                on_progress(f"unpack {Path(name.rstrip(')')).name}", done, total)
    return done


def _member_path(member: str, name: str) -> str | None:
    """The normalised relative path of an entry, or None for the archive root itself."""
    clean = member.replace("\\", "/")
    if clean.startswith("/") or _DRIVE.match(clean):
        raise UnsafeArchiveError(f"entry {member!r} has an absolute path", path=name, hint=_UNSAFE_HINT)
    rel = posixpath.normpath(clean)
    if rel == ".." or rel.startswith("../"):
        raise UnsafeArchiveError(f"entry {member!r} escapes the target folder", path=name, hint=_UNSAFE_HINT)
    return None if rel == "." else rel


def _make_links(root: Path, links: list[tuple[str, str, str]], name: str) -> None:
    for kind, rel, target in links:
        if kind == "hard":
            source = _member_path(target, name)
            if source is None or not (root / source).is_file() or (root / source).is_symlink():
                raise UnsafeArchiveError(
                    f"entry {rel!r} is a hard link to {target!r}, which is not a file of the archive",
                    path=name,
                    hint=_UNSAFE_HINT,
                )
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(root / source, root / rel)
            continue
        pointed = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target.replace("\\", "/")))
        if target.startswith(("/", "\\")) or _DRIVE.match(target) or pointed == ".." or pointed.startswith("../"):
            raise UnsafeArchiveError(
                f"entry {rel!r} is a link to {target!r}, outside the target folder", path=name, hint=_UNSAFE_HINT
            )
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)
    real_root = os.path.realpath(root)
    for kind, rel, target in links:
        real = os.path.realpath(root / rel)
        if os.path.commonpath([real_root, real]) != real_root:
            raise UnsafeArchiveError(
                f"entry {rel!r} is a link to {target!r}, which resolves outside the target folder",
                path=name,
                hint=_UNSAFE_HINT,
            )


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
