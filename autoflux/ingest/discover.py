"""Find the data files under a source and give each the raw table it becomes.

``train.csv`` → ``train``; ``extra/stores.parquet`` → ``extra_stores``; a workbook with several
sheets gives one table per sheet (``book_<sheet>``). Files that are parts of one dataset become
one table (:func:`group_files`): a folder of parts (``events/part-00001.csv`` … → ``events``),
Hive-style folders (``events/year=2019/month=01/…`` → ``events``, with columns ``year`` and
``month``), a series at one level (``sales_2019-01.csv``, ``sales_2019-02.csv`` → ``sales``), or
the files an ``ingest.tables.<table>.files`` glob names. Two files that would otherwise become the
same table are an error, never a silent overwrite.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote

from autoflux.exceptions import IngestError, SourceNotFoundError, TableNameClashError
from autoflux.ingest.readers import FORMATS
from autoflux.ingest.readers.encoding import COMPRESSIONS, split_suffixes
from autoflux.ingest.schema import identifier

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class DataFile:
    """One file (or workbook sheet) to ingest, and the raw table it becomes."""

    path: Path
    relative: str
    table: str
    format: str
    sheet: str | None = None
    reader: str | None = None
    group: str | None = None
    partition: tuple[tuple[str, str | None], ...] = ()

    @property
    def grouped(self) -> bool:
        """Whether the file is one of the parts of its table (whose content is the union of its files)."""
        return self.group is not None


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def discover(
    root: Path,
    *,
    readers: Iterable[tuple[str, str]] = (),
    exclude: Iterable[str] = (),
    tables: Mapping[str, Iterable[str]] | None = None,
    group: bool = False,
) -> tuple[list[DataFile], list[Skipped]]:
    """Data files under ``root`` (a folder or one file), and the files passed over with the reason.

    ``readers`` are ``(glob pattern, reader spec)`` pairs that claim files before the built-in
    formats; ``exclude`` globs are matched against the path relative to ``root``. ``tables`` maps
    a table to globs of its files and ``group`` applies the grouping rules (:func:`group_files`).
    """
    if not root.exists():
        raise SourceNotFoundError(f"no such file or folder: {root}", hint="check the path")
    readers, exclude = list(readers), list(exclude)
    if root.is_file():
        data_file = _classify(root, root.name, readers)
        if isinstance(data_file, Skipped):
            raise IngestError(data_file.reason, path=root, hint="add a reader for it under ingest.readers in autoflux.yml")
        return group_files(_expand_sheets(data_file), root.name, tables=tables or {}, group=False), []
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
    return group_files(found, root.name, tables=tables or {}, group=group), skipped


def check_unique_tables(files: Iterable[DataFile]) -> None:
    """Raise :class:`TableNameClashError` when two files would become the same table (other than as parts of one group)."""
    owners: dict[str, DataFile] = {}
    for data_file in files:
        other = owners.setdefault(data_file.table, data_file)
        if other is not data_file and (other.group is None or other.group != data_file.group):
            raise TableNameClashError(
                f"{other.path} and {data_file.path} would both become table raw.{data_file.table}",
                hint="rename one of them, exclude one with ingest.exclude, or name a table's files with "
                f"ingest.tables.{data_file.table}.files in autoflux.yml",
            )


# ---------------------------------------------------------------------------------- grouping

_PART_WORDS = {"part", "parts", "chunk", "shard", "segment", "batch", "partition"}
_MONTH = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
_DATE = rf"\d{{4}}[-_.]?(?:\d{{2}}|{_MONTH})(?:[-_.]?\d{{2}})?|(?:{_MONTH})[-_.]?\d{{4}}"
# A series' last token: a date (``sales_2019-01``, ``2019-Oct``), or a number after a separator or
# alone (``part_3``, ``0001``) — a number glued to a word (``utf8``, ``utf16``) names a kind, not a part.
_SERIES = (
    re.compile(rf"(?P<prefix>.*?)[-_. ]*(?:{_DATE})", re.IGNORECASE),
    re.compile(r"(?:(?P<prefix>.*?)[-_. ]+)?\d+"),
)
_SPARK_PART = re.compile(r"part-\d+(?:-.*)?", re.IGNORECASE)
_HIVE = re.compile(r"(?P<key>[^=]+)=(?P<value>.*)")
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def group_files(files: list[DataFile], root_name: str, *, tables: Mapping[str, Iterable[str]], group: bool) -> list[DataFile]:
    """``files`` with the tables of groups: files a ``tables`` glob names first, then, with ``group``, the rules.

    Rules, for files that are not workbooks: files under Hive-style folders (``key=value``)
    are one table named after the folders above the first such folder (or ``root_name``); files
    of one format in one folder named as parts (``part-00001``, ``part_3``, ``0001``, ``2019-10-01``)
    are one table named after the folder; two or more files of one format at one level named as
    a series (``sales_2019-01``, ``sales_2019-02``) are one table named after their common stem,
    unless another file of that folder already has that name. Hive keys are kept in ``partition``.
    """
    globs = {table: [_glob_regex(g) for g in patterns] for table, patterns in tables.items()}
    result: list[DataFile | None] = [None] * len(files)
    rest: list[int] = []
    for i, data_file in enumerate(files):
        table = next((t for t, regexes in globs.items() if any(r.fullmatch(data_file.relative) for r in regexes)), None)
        if table is not None:
            result[i] = replace(data_file, table=table, group=f"ingest.tables.{table}.files", partition=_partition(data_file.relative))
        elif not group or data_file.format == "excel":
            result[i] = data_file
        else:
            rest.append(i)
    series: dict[tuple[str, str, str], list[int]] = {}
    for i in rest:
        data_file = files[i]
        folders = data_file.relative.split("/")[:-1]
        hive = next((n for n, part in enumerate(folders) if _HIVE.fullmatch(part)), None)
        if hive is not None:
            table = _folder_table(folders[:hive], root_name)
            result[i] = replace(
                data_file, table=table, group=f"{'/'.join(folders[:hive])}/ (Hive folders)", partition=_partition(data_file.relative)
            )
            continue
        stem = _stem(data_file)
        if _SPARK_PART.fullmatch(stem):
            prefix = "part"
        elif match := _SERIES[0].fullmatch(stem) or _SERIES[1].fullmatch(stem):
            prefix = match["prefix"] or ""
        else:
            result[i] = data_file
            continue
        series.setdefault(("/".join(folders), identifier(prefix, fallback="") if prefix else "", data_file.format), []).append(i)
    for (folder, prefix, _), members in series.items():
        folders = folder.split("/") if folder else []
        own = not prefix or prefix in _PART_WORDS or bool(folders and prefix == identifier(folders[-1], fallback=""))
        table = None
        if own and (folders or len(members) > 1):
            table = _folder_table(folders, root_name)
        elif len(members) > 1:
            table = identifier("_".join([*folders, prefix]), fallback="table")
        chosen = set(members)
        taken = table is not None and any(f.table == table for n, f in enumerate(files) if n not in chosen)
        for i in members:
            grouped = table is not None and not taken
            result[i] = (
                replace(files[i], table=table, group=f"{folder or '.'}/ ({'parts' if own else prefix + '*'})") if grouped else files[i]
            )
    return [r for r in result if r is not None]


def _stem(data_file: DataFile) -> str:
    name = data_file.relative.rsplit("/", 1)[-1]
    while (suffix := os.path.splitext(name)[1].lower()) and (suffix in FORMATS or suffix in COMPRESSIONS or suffix == ".snappy"):
        name = os.path.splitext(name)[0]
    return name


def _folder_table(folders: list[str], root_name: str) -> str:
    return identifier("_".join(folders) if folders else root_name, fallback="table")


def _partition(relative: str) -> tuple[tuple[str, str | None], ...]:
    """The Hive keys of ``relative``'s folders: ``(key, value)``, values unescaped as Spark writes them, None for Hive's null."""
    pairs = []
    for part in relative.split("/")[:-1]:
        if match := _HIVE.fullmatch(part):
            value = unquote(match["value"])
            pairs.append((unquote(match["key"]), None if value in (HIVE_NULL, "") else value))
    return tuple(pairs)


def partition_value(data_file: DataFile, key: str, value: str | None, kind: pa.DataType) -> pa.Scalar:
    """The Hive folder value ``key=value`` of ``data_file`` as type ``kind``; an IngestError naming the file when it does not fit."""
    import pyarrow as pa

    try:
        return pa.array([value], pa.string()).cast(kind)[0]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise IngestError(
            f"the folder value {key}={value} does not fit type {kind}",
            path=data_file.path,
            column=key,
            hint=f"change ingest.types.{data_file.table}.{key} in autoflux.yml",
        ) from None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over paths inside a source: ``*`` and ``?`` within a folder name, ``**/`` any folders (none too)."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out).removeprefix(re.escape("./")))


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
    while (suffix := os.path.splitext(stem)[1].lower()) and (suffix in FORMATS or suffix in COMPRESSIONS or custom):
        custom = custom and (suffix in FORMATS or suffix in COMPRESSIONS)
        stem = os.path.splitext(stem)[0]
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
