"""Find the data files under a source and give each the raw table it becomes.

``train.csv`` → ``train``; ``extra/stores.parquet`` → ``extra_stores``; a workbook with several
sheets gives one table per sheet (``book_<sheet>``). Two files that would become the same table
are an error, never a silent overwrite.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from autoflux.exceptions import IngestError, SourceNotFoundError, TableNameClashError
from autoflux.ingest.readers import COMPRESSIONS, FORMATS, split_suffixes
from autoflux.ingest.schema import identifier


@dataclass(frozen=True)
class DataFile:
    """One file (or workbook sheet) to ingest, and the raw table it becomes."""

    path: Path
    relative: str
    table: str
    format: str
    sheet: str | None = None
    reader: str | None = None


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def discover(root: Path, *, readers: Iterable[tuple[str, str]] = (), exclude: Iterable[str] = ()) -> tuple[list[DataFile], list[Skipped]]:
    """Data files under ``root`` (a folder or one file), and the files passed over with the reason.

    ``readers`` are ``(glob pattern, reader spec)`` pairs that claim files before the built-in
    formats; ``exclude`` globs are matched against the path relative to ``root``.
    """
    if not root.exists():
        raise SourceNotFoundError(f"no such file or folder: {root}", hint="check the path")
    readers, exclude = list(readers), list(exclude)
    if root.is_file():
        data_file = _classify(root, root.name, readers)
        if isinstance(data_file, Skipped):
            raise IngestError(data_file.reason, path=root, hint="add a reader for it under ingest.readers in autoflux.yml")
        return _expand_sheets(data_file), []
    found: list[DataFile] = []
    skipped: list[Skipped] = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() or _is_broken_link(p)):
        relative = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if any(fnmatch.fnmatch(relative, pattern) for pattern in exclude):
            skipped.append(Skipped(path, "excluded by ingest.exclude"))
            continue
        result = _classify(path, relative, readers)
        if isinstance(result, Skipped):
            skipped.append(result)
        else:
            found.extend(_expand_sheets(result))
    return found, skipped


def check_unique_tables(files: Iterable[DataFile]) -> None:
    """Raise :class:`TableNameClashError` when two files would become the same table."""
    owners: dict[str, DataFile] = {}
    for data_file in files:
        if (other := owners.setdefault(data_file.table, data_file)) is not data_file:
            raise TableNameClashError(
                f"{other.path} and {data_file.path} would both become table raw.{data_file.table}",
                hint="rename one of them, or exclude one with ingest.exclude in autoflux.yml",
            )


def _is_broken_link(path: Path) -> bool:
    """A symlink to nothing: listed, so that reading it fails with its name, never ignored."""
    return path.is_symlink() and not path.exists()


def _classify(path: Path, relative: str, readers: list[tuple[str, str]]) -> DataFile | Skipped:
    for pattern, reader in readers:
        if fnmatch.fnmatch(relative, pattern) or fnmatch.fnmatch(path.name, pattern):
            return DataFile(path, relative, _table_name(relative, custom=True), "custom", reader=reader)
    suffix, _ = split_suffixes(path)
    data_format = FORMATS.get(suffix)
    if data_format is None:
        kind = f"extension {suffix!r}" if suffix else "no extension"
        return Skipped(path, f"unknown file type ({kind})")
    return DataFile(path, relative, _table_name(relative), data_format)


def _table_name(relative: str, *, custom: bool = False) -> str:
    """Folders and file name without its format and compression suffixes (a custom reader's file: its own)."""
    parts = relative.split("/")
    stem = parts[-1]
    while (suffix := Path(stem).suffix.lower()) and (suffix in FORMATS or suffix in COMPRESSIONS or custom):
        custom = custom and (suffix in FORMATS or suffix in COMPRESSIONS)
        stem = Path(stem).stem
    return identifier("_".join([*parts[:-1], stem]), fallback="table")


def _expand_sheets(data_file: DataFile) -> list[DataFile]:
    if data_file.format != "excel":
        return [data_file]
    from python_calamine import CalamineWorkbook

    try:
        sheets = CalamineWorkbook.from_path(str(data_file.path)).sheet_names
    except Exception:  # calamine raises its own types; reading the file reports it
        return [data_file]
    if len(sheets) == 1:
        return [DataFile(data_file.path, data_file.relative, data_file.table, "excel", sheet=sheets[0])]
    return [
        DataFile(data_file.path, data_file.relative, identifier(f"{data_file.table}_{s}", fallback="sheet"), "excel", sheet=s)
        for s in sheets
    ]
