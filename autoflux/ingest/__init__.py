"""Ingest: every data file under the sources becomes a Delta table ``raw.<name>`` in the lake.

Files are independent: one that fails is reported with its reason and leaves its table as it
was, and the others still load. Unchanged files (same bytes, same settings) do no work.

Each file is one Delta commit (:mod:`.writer`, as :mod:`.policy` says); after the files, the run
publishes their quarantined rows (:mod:`.quarantine`) and then appends to the load log. A run
killed at any point leaves every table at a committed version; the next run first finishes what
it left: it publishes the bad rows of loads that committed and logs the loads the log lacks.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

from autoflux.exceptions import AutoFluxError, IngestError
from autoflux.faults import fault
from autoflux.ingest import quarantine
from autoflux.ingest.discover import DataFile, Skipped, check_unique_tables, discover, partition_value
from autoflux.ingest.readers import Columns, ReadAgain
from autoflux.ingest.readers.csv import CsvOptions, read_csv
from autoflux.ingest.readers.custom import load_callable, read_custom
from autoflux.ingest.readers.encoding import first_invalid_line, open_bytes, split_suffixes
from autoflux.ingest.readers.excel import read_excel
from autoflux.ingest.readers.json import read_json
from autoflux.ingest.readers.parquet import read_parquet
from autoflux.ingest.rules import Lineage, TableLoad
from autoflux.ingest.schema import hint_type, identifier
from autoflux.ingest.state import MANIFEST_KEY, LoadMetadata, LogEntry, append_log, fingerprint
from autoflux.ingest.store import GroupLoad, RawStore
from autoflux.lake import RAW

if TYPE_CHECKING:
    from autoflux.workspace import Workspace

Outcome = Literal["loaded", "unchanged", "failed", "removed"]


@dataclass(frozen=True)
class FileResult:
    """What happened to one data file; for a loaded one, ``rows_read`` = ``rows`` (loaded) + ``quarantined``.

    ``removed``: a file of a grouped table that is gone, whose rows the table no longer holds.
    """

    table: str
    source_file: str
    outcome: Outcome
    rows: int | None = None
    rows_read: int | None = None
    quarantined: int | None = None
    bytes: int = 0
    seconds: float = 0.0
    version: int | None = None
    message: str | None = None
    notes: tuple[str, ...] = ()
    fingerprint: str | None = None


@dataclass
class IngestReport:
    """The outcome of one ingest run."""

    load_id: str
    files: list[FileResult] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0
    recovered: list[LogEntry] = field(default_factory=list)

    @property
    def failed(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == "failed"]

    @property
    def loaded(self) -> list[FileResult]:
        return [f for f in self.files if f.outcome == "loaded"]


ProgressCallback = Callable[[DataFile, int, int | None], None]


def new_load_id() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def ingest_paths(
    workspace: Workspace,
    roots: Sequence[Path],
    *,
    store: RawStore,
    force: bool = False,
    on_file: Callable[[DataFile], None] | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest the data files under local ``roots`` into ``raw`` tables of the workspace's lake.

    ``store`` (the raw store of the workspace's engine) writes the tables and knows what each last loaded.
    Raises :class:`TableNameClashError` (before anything is written) when two files would become
    the same table; every other per-file problem is reported in the result.
    """
    started = time.perf_counter()
    report = IngestReport(new_load_id())
    found, report.skipped = find_files(workspace, roots)
    report.recovered = _finish_interrupted(workspace, store)
    singles, groups = _split_groups(found)
    for data_file in singles:
        if on_file:
            on_file(data_file)
        progress = (lambda rows, done, f=data_file: on_progress(f, rows, done)) if on_progress else None
        report.files.append(_ingest_file(workspace, store, data_file, report.load_id, force=force, on_batch=progress))
    for table, files in groups.items():
        if on_file:
            on_file(files[0])
        progress = (lambda rows, done, f=files[0]: on_progress(f, rows, None)) if on_progress else None
        report.files += _ingest_group(workspace, store, table, files, report.load_id, force=force, on_batch=progress)
    _publish_quarantine(workspace, store)
    fault("log")
    grouped = set(groups)
    append_log(
        workspace.lake,
        report.recovered
        + [
            LogEntry(
                report.load_id,
                r.table,
                r.source_file,
                r.outcome,
                r.rows,
                r.bytes,
                r.seconds,
                r.version,
                r.fingerprint,
                r.message,
                datetime.now(UTC),
                r.quarantined,
            )
            for r in report.files
            if r.outcome != "unchanged" or r.table not in grouped  # a table of 10,000 files does not log them all each run
        ],
    )
    report.seconds = time.perf_counter() - started
    return report


def find_files(workspace: Workspace, roots: Sequence[Path]) -> tuple[list[DataFile], list[Skipped]]:
    """The data files under ``roots`` with their tables (grouped as ``ingest`` config says), and the files skipped.

    Raises :class:`TableNameClashError` when two files that are not parts of one group would become one table.
    """
    settings = workspace.config.ingest
    readers = [(r.pattern, r.reader) for r in settings.readers]
    mapping = {table: own.files for table, own in settings.tables.items() if own.files}
    found: list[DataFile] = []
    skipped: list[Skipped] = []
    for root in roots:
        files, passed = discover(root, readers=readers, exclude=settings.exclude, tables=mapping, group=settings.group)
        found += files
        skipped += passed
    check_unique_tables(found)
    return found, skipped


def _split_groups(found: list[DataFile]) -> tuple[list[DataFile], dict[str, list[DataFile]]]:
    """The files of tables of their own, and the files of each grouped table."""
    singles: list[DataFile] = []
    groups: dict[str, list[DataFile]] = {}
    for data_file in found:
        if data_file.grouped:
            groups.setdefault(data_file.table, []).append(data_file)
        else:
            singles.append(data_file)
    return singles, groups


@dataclass(frozen=True)
class Planned:
    """What an ingest would do with one file: ``load`` (new or changed), ``unchanged``, ``remove`` or ``keep`` (a grouped table's file that is gone)."""

    table: str
    source_file: str
    action: Literal["load", "unchanged", "remove", "keep"]
    reason: str
    fingerprint: str | None = None
    stat: tuple[int, int] | None = None
    data_file: DataFile | None = None
    shape: str | None = None  # digest of the settings that shape the file's table (:func:`_shape`)


def plan_ingest(workspace: Workspace, roots: Sequence[Path], *, store: RawStore, force: bool = False) -> list[Planned]:
    """The file → table mapping of an ingest of ``roots``, and what it would load, without writing anything."""
    found, _ = find_files(workspace, roots)
    planned: list[Planned] = []
    singles, groups = _split_groups(found)
    for data_file in singles:
        try:
            print_ = fingerprint(data_file.path, _shape(workspace, data_file))
        except (OSError, AutoFluxError) as error:
            planned.append(Planned(data_file.table, data_file.relative, "load", f"unreadable: {error}", data_file=data_file))
            continue
        committed, _ = store.state(data_file.table)
        action, reason = (
            ("unchanged", "unchanged") if committed == print_ and not force else ("load", "new" if committed is None else "changed")
        )
        planned.append(Planned(data_file.table, data_file.relative, action, reason, print_, data_file=data_file))
    for table, files in groups.items():
        planned += _plan_group(workspace, store, table, files, force=force)[0]
    return planned


def _plan_group(
    workspace: Workspace, store: RawStore, table: str, files: list[DataFile], *, force: bool
) -> tuple[list[Planned], dict[str, Any] | None]:
    """Each file of a grouped table against the files manifest of its last load: size and mtime first, the hash only when they changed."""
    previous = store.files(table)
    known: dict[str, dict[str, Any]] = (previous or {}).get("files", {})
    own = workspace.config.ingest.tables.get(table)
    planned = []
    for data_file in files:
        entry = known.get(data_file.relative)
        shape_fields = _shape(workspace, data_file)
        shape = hashlib.sha256(json.dumps(shape_fields, sort_keys=True, default=str).encode()).hexdigest()[:16]
        try:
            stat = data_file.path.stat()
        except OSError as error:
            planned.append(Planned(table, data_file.relative, "load", f"unreadable: {error.strerror}", data_file=data_file, shape=shape))
            continue
        now = (stat.st_size, stat.st_mtime_ns)
        same_shape = entry is not None and entry.get("shape") == shape
        if not force and same_shape and (entry["size"], entry["mtime_ns"]) == now:
            planned.append(Planned(table, data_file.relative, "unchanged", "unchanged", entry["fingerprint"], now, data_file, shape))
            continue
        try:
            print_ = fingerprint(data_file.path, shape_fields)
        except OSError as error:
            planned.append(Planned(table, data_file.relative, "load", f"unreadable: {error.strerror}", data_file=data_file, shape=shape))
            continue
        if not force and same_shape and entry["fingerprint"] == print_:
            planned.append(Planned(table, data_file.relative, "unchanged", "unchanged (touched)", print_, now, data_file, shape))
        else:
            reason = "new" if entry is None else "changed"
            planned.append(Planned(table, data_file.relative, "load", reason, print_, now, data_file, shape))
    present = {f.relative for f in files}
    keep = own is not None and own.on_missing == "keep"
    for gone in sorted(set(known) - present):
        if keep:
            planned.append(Planned(table, gone, "keep", "gone; its rows kept (on_missing: keep)", known[gone]["fingerprint"]))
        else:
            planned.append(Planned(table, gone, "remove", "gone; its rows removed", known[gone]["fingerprint"]))
    return planned, previous


def _ingest_group(
    workspace: Workspace,
    store: RawStore,
    table: str,
    files: list[DataFile],
    load_id: str,
    *,
    force: bool,
    on_batch: Callable[[int, int | None], None] | None,
) -> list[FileResult]:
    """Bring grouped table ``raw.<table>`` in line with its ``files``, in one commit: new files' rows added,
    changed files' rows replaced, gone files' rows removed (or kept); unchanged files are not read."""
    from autoflux.ingest.state import write_files_manifest

    started = time.perf_counter()
    try:
        planned, previous = _plan_group(workspace, store, table, files, force=force)
        hints = _hints(workspace, files[0])
        partitions = partition_types(files, hints)
    except AutoFluxError as error:
        return [FileResult(table, f.relative, "failed", message=str(error)) for f in files]
    known: dict[str, dict[str, Any]] = (previous or {}).get("files", {})
    by_name = {p.source_file: p for p in planned}
    loading = [p for p in planned if p.action == "load"]
    gone = [p.source_file for p in planned if p.action == "remove"]
    unchanged = [
        FileResult(table, p.source_file, "unchanged", bytes=(p.stat or (0, 0))[0], fingerprint=p.fingerprint)
        for p in planned
        if p.action in ("unchanged", "keep")
    ]
    if not loading and not gone:
        version = store.state(table)[1]
        return [replace(r, version=version, seconds=time.perf_counter() - started) for r in unchanged]
    at = datetime.now(UTC)
    loads = [
        GroupLoad(
            p.data_file,
            lambda types, f=p.data_file, **read: _open(workspace, f, types, partitions=partitions, **read),
            Lineage(load_id, p.source_file, at),
            partitions,
        )
        for p in loading
        if p.data_file is not None
    ]
    unreadable = {p.source_file: p.reason for p in loading if p.fingerprint is None}
    loads = [g for g in loads if g.lineage.source_file not in unreadable]

    def metadata(data_files: dict[str, list[str]], written: Mapping[str, Any]) -> dict[str, str]:
        entries = {}
        for p in planned:
            result = written.get(p.source_file)
            if p.action == "load" and result is not None and not isinstance(result, AutoFluxError):
                size, mtime = p.stat or (0, 0)
                entries[p.source_file] = {"size": size, "mtime_ns": mtime, "fingerprint": p.fingerprint, "rows": result.rows}
            elif p.source_file in known and p.action != "remove":
                entries[p.source_file] = dict(known[p.source_file])  # unchanged, kept, or failed: its earlier rows stay
                if p.action == "unchanged" and p.stat:
                    entries[p.source_file]["size"], entries[p.source_file]["mtime_ns"] = p.stat
            else:
                continue
            entries[p.source_file]["shape"] = p.shape if p.data_file else known[p.source_file].get("shape")
            entries[p.source_file]["data"] = data_files.get(p.source_file, [])
        loaded = [p.source_file for p in loading if p.source_file in data_files]
        manifest = {
            "files": entries,
            "added": [f for f in loaded if f not in known],
            "replaced": [f for f in loaded if f in known],
            "removed": gone,
        }
        name = write_files_manifest(workspace.lake, RAW, table, load_id, manifest)
        digest = hashlib.sha256(json.dumps(sorted((k, v["fingerprint"]) for k, v in entries.items())).encode()).hexdigest()
        added = sum(written[f].rows for f in loaded)
        return LoadMetadata(load_id, digest, f"{len(entries)} files", "files", added).to_dict() | {MANIFEST_KEY: name}

    owners = None
    if previous is not None:
        owners = {}
        for source, entry in known.items():
            for path in entry.get("data", []):
                owners.setdefault(path, set()).add(source)
    try:
        load = TableLoad(table, Lineage(load_id, f"the files of raw.{table}", at), hints, store.rules(table), on_batch=on_batch)
        outcome = store.write_group(load, loads, drop=gone, owners=owners, metadata=metadata)
    except AutoFluxError as error:
        return [FileResult(table, p.source_file, "failed", message=str(error), fingerprint=p.fingerprint) for p in loading] + unchanged
    fault("commit")
    seconds = time.perf_counter() - started
    results = []
    for p in loading:
        result = outcome.files.get(p.source_file)
        size = (p.stat or (0, 0))[0]
        if p.source_file in unreadable or isinstance(result, AutoFluxError) or result is None:
            message = (
                str(result) if isinstance(result, AutoFluxError) else f"{p.source_file}: {unreadable.get(p.source_file, 'not loaded')}"
            )
            missing = "keeps this file's earlier rows" if p.source_file in known else "was loaded without this file's rows"
            results.append(FileResult(table, p.source_file, "failed", bytes=size, message=f"{message} (raw.{table} {missing})",
                                      fingerprint=p.fingerprint, seconds=seconds))  # fmt: skip
            continue
        results.append(
            FileResult(
                table,
                p.source_file,
                "loaded",
                rows=result.rows,
                rows_read=result.rows + result.quarantined,
                quarantined=result.quarantined,
                bytes=size,
                seconds=seconds,
                version=outcome.version,
                notes=_notes(result) + tuple(f"schema: {c}" for c in outcome.changes if c not in result.changes),
                fingerprint=p.fingerprint,
            )  # fmt: skip
        )
    results += [FileResult(table, f, "removed", version=outcome.version, fingerprint=by_name[f].fingerprint, seconds=seconds) for f in gone]
    return results + [replace(r, version=outcome.version) for r in unchanged]


def partition_types(files: Sequence[DataFile], hints: Mapping[str, pa.DataType]) -> dict[str, pa.DataType]:
    """The type of each Hive key of ``files`` (as Spark's partition discovery): a hint's, else bigint when every value
    is an integer written as such (no leading zero), date when every value is a date ``YYYY-MM-DD``, else string."""
    values: dict[str, list[str]] = {}
    for data_file in files:
        for key, value in data_file.partition:
            values.setdefault(key, [])
            if value is not None:
                values[key].append(value)
    types = {}
    for key, texts in values.items():
        clean = identifier(key, fallback="partition")
        if (hint := hints.get(clean) or hints.get(key)) is not None:
            types[key] = hint
        elif texts and all(_INTEGER.fullmatch(t) for t in texts):
            types[key] = pa.int64()
        elif texts and all(_DATE.fullmatch(t) for t in texts) and _dates(texts):
            types[key] = pa.date32()
        else:
            types[key] = pa.string()
    return types


_INTEGER = re.compile(r"-?(?:0|[1-9]\d{0,17})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _dates(texts: list[str]) -> bool:
    try:
        pa.array(texts, pa.string()).cast(pa.date32())
    except pa.ArrowInvalid:
        return False
    return True


def _with_partition(data_file: DataFile, columns: Columns, types: Mapping[str, pa.DataType]) -> Columns:
    """``columns`` with a column per Hive key of the file's folders, holding its value in every row."""
    if not data_file.partition:
        return columns
    values = []
    for key, value in data_file.partition:
        values.append(partition_value(data_file, key, value, types[key]))
    batches = columns.batches

    def with_values() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            extra = [pa.repeat(v, batch.num_rows) for v in values]
            yield pa.RecordBatch.from_arrays([*batch.columns, *extra], names=[*batch.schema.names, *(k for k, _ in data_file.partition)])

    names = [*columns.names, *(k for k, _ in data_file.partition)]
    return replace(columns, names=names, types=[*columns.types, *(types[k] for k, _ in data_file.partition)], batches=with_values())


def _notes(written: Any) -> tuple[str, ...]:
    """What the summary says of a load: columns read with wider types, schema changes, rescued values, quarantined rows."""
    changed = {change.split()[1] for change in written.changes}
    notes = tuple(f"column {name} read as {kind}" for name, kind in written.widened.items() if name not in changed)
    notes += tuple(f"schema: {change}" for change in written.changes)
    if written.rescued:
        notes += (f"{written.rescued} values did not fit their column: kept as text in _rescued_data",)
    if written.quarantined:
        notes += (
            f"{written.rows + written.quarantined} rows read: {written.rows} loaded, "
            f"{written.quarantined} that could not be parsed set aside in _autoflux.quarantine",
        )
    return notes


def _finish_interrupted(workspace: Workspace, store: RawStore) -> list[LogEntry]:
    """What an interrupted run left: its staged bad rows published or dropped, log entries for its loads."""
    store.recover()
    _publish_quarantine(workspace, store)
    return store.unlogged_loads()


def _publish_quarantine(workspace: Workspace, store: RawStore) -> None:
    quarantine.publish(workspace.lake, quarantine.staging_dir(workspace.state_dir), store.committed_load)


def _ingest_file(
    workspace: Workspace,
    store: RawStore,
    data_file: DataFile,
    load_id: str,
    *,
    force: bool,
    on_batch: Callable[[int, int | None], None] | None,
) -> FileResult:
    started = time.perf_counter()
    size = data_file.path.stat().st_size if data_file.path.exists() else 0
    base = {"table": data_file.table, "source_file": str(data_file.path), "bytes": size}
    print_ = None
    try:
        hints = _hints(workspace, data_file)
        shape = _shape(workspace, data_file)
        committed, version = store.state(data_file.table)
        if committed is None or force:  # nothing to compare it with: the file is hashed while its rows load
            fingerprint_of = _in_background(lambda: _fingerprint(data_file, shape))
        else:
            print_ = _fingerprint(data_file, shape)
            if print_ == committed:
                return FileResult(outcome="unchanged", version=version, fingerprint=print_, seconds=time.perf_counter() - started, **base)
            fingerprint_of = lambda: print_  # noqa: E731 - known already
        rules = store.rules(data_file.table)
        metadata = _Later(lambda: LoadMetadata(load_id, fingerprint_of(), data_file.relative, rules.policy.mode).to_dict())
        lineage = Lineage(load_id, data_file.relative, datetime.now(UTC))
        load = TableLoad(data_file.table, lineage, hints, rules, metadata, on_batch)
        written = store.write(data_file, lambda types, **read: _open(workspace, data_file, types, **read), load)
        print_ = fingerprint_of()
    except AutoFluxError as error:
        if error.path is None:
            error.path = str(data_file.path)
        return FileResult(outcome="failed", message=str(error), fingerprint=print_, seconds=time.perf_counter() - started, **base)
    fault("commit")
    notes = _notes(written)
    return FileResult(
        outcome="loaded",
        rows=written.rows,
        rows_read=written.rows + written.quarantined,
        quarantined=written.quarantined,
        version=written.version,
        notes=notes,
        fingerprint=print_,
        seconds=time.perf_counter() - started,
        **base,
    )


def _fingerprint(data_file: DataFile, shape: dict[str, Any]) -> str:
    try:
        return fingerprint(data_file.path, shape)
    except OSError as error:
        raise IngestError(f"cannot read the file: {error.strerror}", path=data_file.path, hint="check it exists and is readable") from None


def _in_background(make: Callable[[], str]) -> Callable[[], str]:
    """``make()`` run in a thread of its own (hashing lets go of the GIL); call the result to wait for its value.

    A daemon thread: a process that stops (Ctrl-C, a failed load) does not wait for a hash it no longer needs.
    """
    from concurrent.futures import Future

    future: Future[str] = Future()

    def run() -> None:
        try:
            future.set_result(make())
        except BaseException as error:  # noqa: BLE001 - raised where the value is asked for
            future.set_exception(error)

    threading.Thread(target=run, name="autoflux-fingerprint", daemon=True).start()
    return future.result


class _Later(Mapping[str, str]):
    """A mapping made when first read: a load's commit metadata, whose fingerprint only the commit waits for."""

    def __init__(self, make: Callable[[], Mapping[str, str]]) -> None:
        self._make = make
        self._made: Mapping[str, str] | None = None

    def _mapping(self) -> Mapping[str, str]:
        if self._made is None:
            self._made = self._make()
        return self._made

    def __getitem__(self, key: str) -> str:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())


def _shape(workspace: Workspace, data_file: DataFile) -> dict[str, Any]:
    """The settings that shape a file's table, part of its fingerprint: sheet, reader, CSV options, type hints."""
    settings = workspace.config.ingest
    reader = next((r for r in settings.readers if r.reader == data_file.reader), None)
    return {
        "sheet": data_file.sheet,
        "reader": reader.model_dump() if reader else None,
        "csv": settings.csv.model_dump(),
        "hints": {k: str(v) for k, v in _hints(workspace, data_file).items()},
    }


def _hints(workspace: Workspace, data_file: DataFile) -> dict[str, pa.DataType]:
    """Type hints for this file's table, from ``ingest.types`` (``"*"`` applies to every table)."""
    types = workspace.config.ingest.types
    merged = {**types.get("*", {}), **types.get(data_file.table, {})}
    return {column: hint_type(kind, where=f"ingest.types.{data_file.table}.{column}") for column, kind in merged.items()}


def _open(
    workspace: Workspace,
    data_file: DataFile,
    types: dict[str, pa.DataType],
    *,
    block_size: int | None = None,
    text: bool = False,
    by_value: bool = False,
    partitions: Mapping[str, pa.DataType] | None = None,
) -> Columns:
    """The file's columns; any failure to read it, now or while streaming, is an IngestError naming it.

    ``block_size`` overrides ``ingest.csv.block_size``; ``text`` reads a CSV's unhinted columns as
    strings; ``by_value`` parses JSON lines one by one (see :func:`~autoflux.ingest.readers.json.read_json`).
    """
    path = data_file.path
    if not path.is_file():
        raise IngestError("the file is missing or not a regular file", path=path, hint="check the path")
    row_errors = _RowCallbackErrors.watch()
    keys = {k for k, _ in data_file.partition}
    try:
        columns = _read(
            workspace, data_file, {k: v for k, v in types.items() if k not in keys}, block_size=block_size, text=text, by_value=by_value
        )
        columns = _with_partition(data_file, columns, partitions or {})
    except Exception as error:  # OSError, Arrow's errors, and those of Python code under Arrow (its transcoder's codec)
        raise _failure(path, error, row_errors, custom=data_file.reader is not None) from None
    columns.batches = _guarded(path, columns.batches, row_errors, custom=data_file.reader is not None)
    return columns


def _guarded(path: Path, batches: Iterator[pa.RecordBatch], row_errors: list[BaseException], *, custom: bool) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except Exception as error:
        raise _failure(path, error, row_errors, custom=custom) from None


def _failure(path: Path, error: Exception, row_errors: list[BaseException], *, custom: bool) -> Exception:
    """What reading ``path`` failed with: the error under Arrow's row callback when there was one
    (Arrow then fails the row, which is not the cause), else ``error`` as an IngestError."""
    if row_errors:
        cause = row_errors[0]
        if isinstance(cause, UnicodeDecodeError):  # a bad row's text, which Arrow decodes as UTF-8
            cause = _decode_error(path, cause.encoding) or cause
        return cause if isinstance(cause, AutoFluxError) else _unreadable(path, cause, custom=custom)
    if isinstance(error, AutoFluxError | ReadAgain):
        return error
    return _unreadable(path, error, custom=custom)


class _RowCallbackErrors:
    """Keeps what is raised under Arrow's CSV row callback, which Python would print as a traceback.

    Arrow decodes a ragged row's text as UTF-8 before it calls the row handler: a row holding bytes
    that are not UTF-8 (a file cut in the middle of a character) raises there, as may the handler.
    Arrow reports such an exception as unraisable and fails the row. This hook on
    ``sys.unraisablehook`` keeps those of the file being read for its error; any other goes on to
    the hook it replaced.
    """

    def __init__(self, previous: Callable[[sys.UnraisableHookArgs], object]) -> None:
        self.previous = previous
        self.caught: dict[int, list[BaseException]] = {}

    @classmethod
    def watch(cls) -> list[BaseException]:
        """A new list of what the row callback raises in this thread, from now until its next file is read."""
        hook = sys.unraisablehook
        if not isinstance(hook, cls):
            hook = sys.unraisablehook = cls(hook)
        caught = hook.caught[threading.get_ident()] = []
        return caught

    def __call__(self, unraisable: sys.UnraisableHookArgs) -> None:
        trace = unraisable.exc_traceback
        while trace is not None and not trace.tb_frame.f_code.co_name.endswith("_csv._handle_invalid_row"):
            trace = trace.tb_next
        if trace is not None and unraisable.exc_value is not None:
            mine = self.caught.get(threading.get_ident())  # Arrow may call the row handler from a thread of its own:
            for caught in [mine] if mine is not None else self.caught.values():  # then every file being read hears of it
                caught.append(unraisable.exc_value)
        else:
            self.previous(unraisable)


def _decode_error(path: Path, encoding: str) -> UnicodeDecodeError | None:
    """The first error decoding the whole file from ``encoding``, if any (None too when it cannot be read)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with open_bytes(path) as stream:
            while chunk := stream.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        return error
    except Exception:  # noqa: BLE001 - then the caller reports the error it has
        return None
    return None


_TESTER = {"gzip": "gzip -t", "bz2": "bzip2 -t", "zstd": "zstd -t"}
_DECOMPRESSION = re.compile(r"compress|inflate|zlib|gzip|bz2|zstd|lz4|snappy|header check|data check", re.IGNORECASE)


def _unreadable(path: Path, error: BaseException, *, custom: bool = False) -> IngestError:
    text = " ".join(str(error).split())
    if custom:
        return IngestError(
            f"cannot read the file ({type(error).__name__}: {text})", path=path, hint="fix the custom reader, or check the file"
        )
    if isinstance(error, UnicodeDecodeError):
        return _undecodable(path, error)
    compression = split_suffixes(path)[1]
    if compression and isinstance(error, OSError | pa.ArrowException) and _DECOMPRESSION.search(str(error)):
        return IngestError(
            f"cannot read the file: its {compression} data is damaged or cut short ({text})",
            path=path,
            hint=f"get the file again (an interrupted download or copy cuts it short); `{_TESTER[compression]} FILE` checks it",
        )
    return IngestError(
        f"cannot read the file ({type(error).__name__}: {text})", path=path, hint="check that the file is complete and well-formed"
    )


def _undecodable(path: Path, error: UnicodeDecodeError) -> IngestError:
    """Bytes the file's text encoding cannot decode, as Arrow's transcoder (a Python codec) met them.

    A file that ends in the middle of a character (a UTF-16 file with an odd number of bytes) is
    most likely cut short: an interrupted download or copy.
    """
    encoding = re.sub(r"[-_](le|be)$", "", error.encoding)
    try:
        line = first_invalid_line(path, error.encoding)
    except Exception:  # noqa: BLE001 - the line is a detail; the error must still be reported
        line = None
    if error.reason in ("truncated data", "unexpected end of data"):
        return IngestError(
            f"bytes that are not valid {encoding}: the file ends in the middle of a character",
            path=path,
            line=line,
            hint=f"the file looks cut short (an interrupted download or copy): get it again; if it is not {encoding}, "
            "set ingest.csv.encoding in autoflux.yml",
        )
    return IngestError(
        f"bytes that are not valid {encoding}",
        path=path,
        line=line,
        hint="fix those bytes, or set ingest.csv.encoding in autoflux.yml to the file's encoding",
    )


def _read(
    workspace: Workspace, data_file: DataFile, types: dict[str, pa.DataType], *, block_size: int | None, text: bool, by_value: bool
) -> Columns:
    path = data_file.path
    if data_file.format == "csv":
        options = CsvOptions.of(workspace.config.ingest.csv, block_size=block_size)
        return read_csv(path, options, types, strict=_hints(workspace, data_file).keys(), text=text)
    if data_file.format == "parquet":
        return read_parquet(path)
    if data_file.format == "json":
        return read_json(path, types, by_value=by_value)
    if data_file.format == "excel":
        return read_excel(path, data_file.sheet)
    spec = next(r for r in workspace.config.ingest.readers if r.reader == data_file.reader)
    return read_custom(path, load_callable(spec.reader, base_dir=workspace.root), spec.options)
