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
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from autoflux.acquire.base import Progress
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
    """Bytes written while unpacking, counted against a limit shared by nested archives."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0


@dataclass
class _Job:
    name: str
    budget: Budget
    on_progress: Progress | None
    label: str
    done: int = 0
    total: int | None = None

    def refuse_size(self, entry: str, *, declared: bool) -> UnsafeArchiveError:
        how = "declares" if declared else "expands to"
        return UnsafeArchiveError(
            f"archive {how} more than the limit of {_human(self.budget.limit)} at entry {entry!r}",
            path=self.name,
            hint="nothing of it was unpacked; raise max_archive_bytes if you trust it",
        )

    def copy(self, src: BinaryIO, target: Path, entry: str) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "xb") as out:
            while chunk := src.read(_CHUNK):
                self.budget.used += len(chunk)
                if self.budget.used > self.budget.limit:
                    raise self.refuse_size(entry, declared=False)
                out.write(chunk)
                self.done += len(chunk)
                if self.on_progress:
                    self.on_progress(self.label, self.done, self.total)


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

    Raises UnsafeArchiveError, naming ``label`` (default: the archive path) and the entry, for an
    entry that escapes ``dest``, a link pointing outside it, a special file, or more than
    ``max_bytes`` expanded (declared or actually written); AcquireError for a corrupt or
    encrypted archive or an entry clashing with a file. Nothing of a refused archive is left.
    """
    kind = archive_kind(archive)
    name = label or str(archive)
    if kind is None:
        raise AcquireError("not an archive AutoFlux can unpack", path=name)
    job = _Job(name, budget or Budget(max_bytes), on_progress, f"unpack {archive.name}")
    created = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f".autoflux-unpack-{uuid.uuid4().hex}"
    tmp.mkdir()
    try:
        if kind == "zip":
            _unzip(archive, tmp, job)
        elif kind == "tar":
            _untar(archive, tmp, job)
        else:
            _decompress(archive, tmp, job)
        made = sorted(tmp.iterdir())
        for path in made:
            if os.path.lexists(dest / path.name):
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
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise AcquireError(
            f"archive holds clashing entries ({Path(error.filename or '').name!r} twice, or as file and folder)",
            path=name,
        ) from None
    except OSError as error:
        if error.errno is not None:
            raise
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
    """Unpack every archive under ``folder`` where it lies and delete it, then the archives that
    came out of them, down to ``levels`` levels, all within one ``max_bytes`` budget."""
    budget = budget or Budget(max_bytes)
    for _ in range(levels):
        found = [p for p in sorted(folder.rglob("*")) if archive_kind(p) and p.is_file() and not p.is_symlink()]
        if not found:
            return
        for archive in found:
            name = f"{label} ({archive.relative_to(folder).as_posix()})"
            extract(archive, archive.parent, max_bytes=max_bytes, label=name, on_progress=on_progress, budget=budget)
            archive.unlink()


def _unzip(archive: Path, root: Path, job: _Job) -> None:
    with zipfile.ZipFile(archive) as zf:
        plan = []
        declared = job.budget.used
        for info in zf.infolist():
            if info.filename.replace("\\", "/").startswith("__MACOSX/"):
                continue
            rel = _member_path(info.filename, job.name)
            if info.flag_bits & 0x1:
                raise AcquireError(f"entry {info.filename!r} is encrypted", path=job.name, hint="unpack it by hand")
            if not info.is_dir():
                declared += info.file_size
                if declared > job.budget.limit:
                    raise job.refuse_size(info.filename, declared=True)
            plan.append((info, rel))
        job.total = declared - job.budget.used
        links: list[tuple[str, str, str]] = []
        for info, rel in plan:
            if rel is None:
                continue
            if info.is_dir():
                (root / rel).mkdir(parents=True, exist_ok=True)
            elif stat.S_ISLNK(info.external_attr >> 16):
                links.append(("sym", rel, zf.read(info).decode("utf-8", "surrogateescape")))
            else:
                with zf.open(info) as src:
                    job.copy(src, root / rel, info.filename)
        _make_links(root, links, job.name)


def _untar(archive: Path, root: Path, job: _Job) -> None:
    links: list[tuple[str, str, str]] = []
    declared = job.budget.used
    with tarfile.open(archive, mode="r|*") as tf:
        for member in tf:
            rel = _member_path(member.name, job.name)
            if rel is None:
                continue
            if member.isdir():
                (root / rel).mkdir(parents=True, exist_ok=True)
            elif member.issym():
                links.append(("sym", rel, member.linkname))
            elif member.islnk():
                links.append(("hard", rel, member.linkname))
            elif member.isreg():
                declared += member.size
                if declared > job.budget.limit:
                    raise job.refuse_size(member.name, declared=True)
                src = tf.extractfile(member)
                if src is None:
                    raise AcquireError(f"entry {member.name!r} cannot be read", path=job.name)
                with src:
                    job.copy(src, root / rel, member.name)
            else:
                raise UnsafeArchiveError(f"entry {member.name!r} is a device, fifo or other special file", path=job.name, hint=_UNSAFE_HINT)
    _make_links(root, links, job.name)


def _decompress(archive: Path, root: Path, job: _Job) -> None:
    suffix = "." + archive.name.rsplit(".", 1)[1].lower()
    out = archive.name[: -len(suffix)]
    with _SINGLE[suffix][1](archive, "rb") as src:
        job.copy(src, root / out, out)


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
    """Create hard links first (no symlink exists yet to lead them astray), then symlinks, then
    check that every link really resolves inside ``root``."""
    for kind, rel, target in sorted(links, key=lambda link: link[0] != "hard"):
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
        clean = target.replace("\\", "/")
        pointed = posixpath.normpath(posixpath.join(posixpath.dirname(rel), clean))
        if clean.startswith("/") or _DRIVE.match(clean) or pointed == ".." or pointed.startswith("../"):
            raise UnsafeArchiveError(f"entry {rel!r} is a link to {target!r}, outside the target folder", path=name, hint=_UNSAFE_HINT)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(clean, root / rel)
    real_root = os.path.realpath(root)
    for _, rel, target in links:
        if os.path.commonpath([real_root, os.path.realpath(root / rel)]) != real_root:
            raise UnsafeArchiveError(
                f"entry {rel!r} is a link to {target!r}, which resolves outside the target folder",
                path=name,
                hint=_UNSAFE_HINT,
            )


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"
