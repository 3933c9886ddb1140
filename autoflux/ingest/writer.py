"""Write a file's rows into a raw Delta table in one commit: clean names, lake types, lineage columns.

How the rows change the table (replace, append or merge) and what a schema difference does
(evolve, freeze or rescue) is :mod:`autoflux.ingest.policy`. The commit carries the load id and
the source's fingerprint in its ``commitInfo``, so the table itself says which file content it
holds. A read that fails halfway, a refused schema or too many bad rows raise before the commit:
the table stays at its previous version. Data files an aborted write left behind are referenced
by no version, so no reader sees them; ``autoflux vacuum`` deletes them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from queue import Full, Queue
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from autoflux.exceptions import AutoFluxError, IngestError
from autoflux.faults import fault
from autoflux.ingest.policy import (
    RESCUED_COLUMN,
    BadRowLimits,
    Plan,
    TablePolicy,
    key_columns,
    plan,
    reader_types,
    rescued_json,
)
from autoflux.ingest.policy import rescue as rescue_values
from autoflux.ingest.readers import Columns, ReadAgain
from autoflux.ingest.rules import Lineage, TableLoad, check_key, set_aside
from autoflux.ingest.schema import LINEAGE_COLUMNS, lake_type, lineage_schema, table_schema
from autoflux.ingest.state import LoadMetadata
from autoflux.lake import Lake

MAX_READS = 50
FINGERPRINT_KEY = LoadMetadata.key("fingerprint")
LOAD_ID_KEY = LoadMetadata.key("load_id")


@dataclass(frozen=True)
class Written:
    """One load: rows written, the table's new version and schema, and what happened on the way."""

    rows: int
    version: int
    schema: pa.Schema
    widened: dict[str, str]
    quarantined: int = 0
    rescued: int = 0
    changes: tuple[str, ...] = ()


@dataclass
class _Pass:
    """One read of the file: what it wrote, rescued and set aside, and the error it stopped on."""

    rows: int = 0
    rescued: int = 0
    quarantined: int = 0
    failure: BaseException | None = None


def write_table(lake: Lake, schema_name: str, open_columns: Callable[..., Columns], load: TableLoad) -> Written:
    """Load the columns ``open_columns(types)`` reads into ``schema_name.<load.table>``, in one commit.

    ``load.rules`` give the write mode and schema policy, and the bad rows a file may have (staged
    for the quarantine table). ``open_columns`` is called again with wider column types when a value
    does not fit the inferred type, with ``block_size=`` when a value is longer than a block, or
    with ``by_value=True`` when JSON lines need reading value by value (see :mod:`autoflux.ingest.readers`).
    """
    existing = current_schema(lake, schema_name, load.table)

    def commit(planned: Plan, schema: pa.Schema, incoming: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        _commit(lake, schema_name, load, planned, existing is not None, schema, incoming, batches)

    this, planned, schema, widened = _load(schema_name, open_columns, existing, commit, load)
    version = lake.open(schema_name, load.table).version()
    return Written(this.rows, version, schema, {k: str(v) for k, v in widened.items()}, this.quarantined, this.rescued, planned.changes)


def _load(
    schema_name: str,
    open_columns: Callable[..., Columns],
    existing: pa.Schema | None,
    sink: Callable[[Plan, pa.Schema, pa.Schema, Iterator[pa.RecordBatch]], None],
    load: TableLoad,
) -> tuple[_Pass, Plan, pa.Schema, dict[str, pa.DataType]]:
    """Read the file (again with wider types as long as a value does not fit) and hand its conformed batches to ``sink``."""
    from deltalake.exceptions import DeltaError

    table, lineage, hints, policy = load.table, load.lineage, load.hints, load.rules.policy
    text = policy.schema == "rescue" and existing is not None
    read: dict[str, Any] = {"text": True} if text else {}
    soft = {} if text else reader_types(policy, existing)
    widened: dict[str, pa.DataType] = {}
    for _ in range(MAX_READS):
        this = _Pass()
        try:
            columns = open_columns(soft | dict(hints) | widened, **read)
            incoming = table_schema(columns.names, columns.types, {**hints, **{k: lake_type(v) for k, v in widened.items()}})
            planned = plan(policy, table, existing, incoming)
            schema = lineage_schema(planned.schema)

            def finish(columns: Columns = columns, this: _Pass = this) -> None:
                _set_aside_bad_rows(columns, this, load)

            batches = _conform(columns, incoming, schema, planned.rescue, lineage, this, load.rules.limits, load.on_batch, finish)
            sink(planned, schema, incoming, batches)
        except Exception as error:
            again = error if isinstance(error, ReadAgain) else this.failure  # raised inside delta-rs: kept in this.failure
            if isinstance(again, ReadAgain):
                widened |= again.types
                read |= {"block_size": again.block_size} if again.block_size else {}
                read |= {"by_value": True} if again.by_value else {}
                continue
            if this.failure is not None:
                raise _read_error(this.failure, lineage.source_file) from None
            if isinstance(error, AutoFluxError) or not isinstance(error, DeltaError | OSError):
                raise
            raise IngestError(f"cannot write table {schema_name}.{table}: {error}", path=lineage.source_file) from None
        return this, planned, schema, widened
    raise IngestError("column types kept changing while reading", path=lineage.source_file, hint="set ingest.types for its columns")


def current_schema(lake: Lake, schema_name: str, table: str) -> pa.Schema | None:
    """``schema_name.table``'s columns as Arrow; None when the table does not exist."""
    if not lake.exists(schema_name, table):
        return None
    return pa.schema(lake.open(schema_name, table).schema().to_arrow())


def _commit(
    lake: Lake,
    schema_name: str,
    load: TableLoad,
    planned: Plan,
    exists: bool,
    schema: pa.Schema,
    incoming: pa.Schema,
    batches: Iterator[pa.RecordBatch],
) -> None:
    """Make the one commit of this load, as the write mode says."""
    from deltalake import CommitProperties

    table, policy, metadata, source_file = load.table, load.rules.policy, load.commit_metadata, load.lineage.source_file

    def overwrite(stream: Iterator[pa.RecordBatch]) -> None:
        write_in_order(
            lake,
            schema_name,
            table,
            schema,
            stream,
            mode="overwrite",
            metadata=metadata,
            description=f"raw data from {source_file}",
        )

    if policy.mode == "merge":
        key = key_columns(policy, table, incoming)
        rows = pa.Table.from_batches(list(batches), schema)  # a merge holds the file's rows in memory
        check_key(table, source_file, {k: rows[k].null_count for k in key}, lambda: _repeated_key(rows, key))
        if not exists:
            overwrite(iter(rows.to_batches()))
        elif planned.rewrite:
            overwrite(itertools.chain(_kept_rows(lake, schema_name, table, schema, rows.select(key)), rows.to_batches()))
        else:
            predicate = " and ".join(f"t.{_quote(k)} = s.{_quote(k)}" for k in key)
            commit = CommitProperties(custom_metadata=dict(metadata))
            merger = lake.open(schema_name, table).merge(rows, predicate, source_alias="s", target_alias="t", commit_properties=commit)
            merger.when_matched_update_all().when_not_matched_insert_all().execute()
    elif not exists or policy.mode == "replace":
        overwrite(load.tap(schema, batches) if load.tap else batches)
    elif planned.rewrite:
        overwrite(itertools.chain(_kept_rows(lake, schema_name, table, schema), batches))
    else:
        write_in_order(lake, schema_name, table, schema, batches, mode="append", metadata=metadata)


FILE_BYTES = 256 << 20  # a data file is closed and the next one begun past this size
# Batches (a CSV block each, ~30k rows at 4 MiB) are gathered into row groups of DuckDB's own size
# (its scans of them feed its table writes whole: a mart of 1.25M rows builds in 0.7 s, not 1.0 s at
# 30k rows and 1.3 s at 94k), or of this much Arrow data when rows are wide. Bigger row groups also
# encode faster (~20% at 4 blocks than at one).
ROW_GROUP_ROWS = 122_880
ROW_GROUP_BYTES = 32 << 20
# A column with more distinct values than a 64 KiB dictionary holds is written plain: ~20% less time than
# Arrow's 1 MiB, and files no larger. Judged on a file's first rows (_dictionary_columns), so such a column
# is not hashed into a dictionary Arrow would then drop: 20% off the write of 5M rows of measurements.
DICTIONARY_BYTES = 64 << 10
DICTIONARY_SAMPLE_ROWS = 16_384


def write_in_order(
    lake: Lake,
    schema_name: str,
    table: str,
    schema: pa.Schema,
    batches: Iterator[pa.RecordBatch],
    *,
    mode: Literal["overwrite", "append"],
    metadata: Mapping[str, str],
    description: str | None = None,
) -> None:
    """Write ``batches`` as new Parquet files of the table, rows in the order given, then commit them in
    one version whose info holds ``metadata`` and the rows written (:class:`LoadMetadata`).

    delta-rs's own writer spreads a stream over threads and stores its rows out of order; here
    pyarrow writes the files one after the other and delta-rs only commits them. Files of a write
    that fails before the commit belong to no version (``autoflux vacuum`` deletes them).
    """
    from deltalake import CommitProperties, DeltaTable
    from deltalake.schema import Schema
    from deltalake.transaction import create_table_with_add_actions

    adds = write_files(lake, schema_name, table, schema, batches)
    pa.default_memory_pool().release_unused()  # what the pool kept of the batches, before delta-rs and DuckDB take theirs
    rows_written = sum(json.loads(add.stats)["numRecords"] for add in adds)
    commit = CommitProperties(custom_metadata={**metadata, LoadMetadata.key("rows"): str(rows_written)})
    delta_schema = Schema.from_arrow(schema)
    uri = lake.table_uri(schema_name, table)
    if lake.exists(schema_name, table):
        DeltaTable(uri, storage_options=lake.storage_options or None).create_write_transaction(
            adds, mode=mode, schema=delta_schema, commit_properties=commit
        )
    else:
        create_table_with_add_actions(
            uri,
            delta_schema,
            adds,
            mode="error",
            description=description,
            storage_options=lake.storage_options or None,
            commit_properties=commit,
        )


def write_files(lake: Lake, schema_name: str, table: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> list[Any]:
    """Write ``batches`` as new Parquet files in the table's folder, in order, and return their Delta add actions.

    Nothing is committed: files of a write that fails are deleted, and any a killed process left
    belong to no version (``autoflux vacuum`` deletes them).
    """
    from deltalake.transaction import AddAction

    filesystem, root = lake.filesystem(lake.table_uri(schema_name, table))
    filesystem.makedirs(root, exist_ok=True)
    adds: list[AddAction] = []
    statistics = _with_statistics(schema)
    groups = read_ahead(_row_groups(batches, schema))  # the next row group is read while this one is encoded
    first = next(groups, None)
    dictionary = True if first is None else _dictionary_columns(first)
    groups = itertools.chain([] if first is None else [first], groups)
    full = True
    try:
        while full:
            name = f"part-{len(adds):05d}-{uuid.uuid4()}-c000.snappy.parquet"
            path, rows, full = f"{root}/{name}", 0, False
            with (
                _open_output(filesystem, path) as handle,
                pq.ParquetWriter(
                    handle, schema, use_dictionary=dictionary, dictionary_pagesize_limit=DICTIONARY_BYTES, write_statistics=statistics
                ) as parquet,
            ):
                for group in groups:
                    parquet.write_table(group, row_group_size=group.num_rows)
                    rows += group.num_rows
                    if handle.tell() >= FILE_BYTES:
                        full = True
                        break
            if rows == 0 and adds:  # the last file was full to the byte
                filesystem.rm(path)
                break
            adds.append(AddAction(name, filesystem.size(path), {}, int(time.time() * 1000), True, json.dumps({"numRecords": rows})))
    except BaseException:
        for written in [*(a.path for a in adds), name]:
            if filesystem.exists(f"{root}/{written}"):
                filesystem.rm(f"{root}/{written}")
        raise
    return adds


def _open_output(filesystem: Any, path: str) -> Any:
    """A file to write at ``path``: Arrow's own for a local lake (the Parquet writer then writes without
    Python or its lock, while the reading thread parses), fsspec's elsewhere."""
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(filesystem, LocalFileSystem):
        return pa.output_stream(path, compression=None, buffer_size=1 << 20)
    return filesystem.open(path, "wb")


def _dictionary_columns(group: pa.Table) -> bool | list[str]:
    """The columns to dictionary-encode: all but those whose distinct values in the first
    :data:`DICTIONARY_SAMPLE_ROWS` rows overflow a :data:`DICTIONARY_BYTES` page already. Those are written
    plain from the start, not hashed value by value into a dictionary Arrow drops when it outgrows the page
    (a fifth of the write on columns of measurements); a column that passes is still dropped to plain by
    Arrow if it overflows later. True (Arrow decides per column) when a column is nested: the choice goes by leaf column.
    """
    if any(pa.types.is_nested(f.type) for f in group.schema):
        return True
    sample = group.slice(0, DICTIONARY_SAMPLE_ROWS)
    chosen = []
    for field, values in zip(sample.schema, sample.columns, strict=True):
        if width := _byte_width(field.type):
            size = len(pc.unique(values)) * width
        elif _is_text(field.type):  # each distinct value with its 4-byte length
            distinct = pc.unique(values)
            size = (pc.sum(pc.binary_length(distinct)).as_py() or 0) + 4 * len(distinct)
        else:
            size = 0  # nothing to judge it by: Arrow decides
        if size <= DICTIONARY_BYTES:
            chosen.append(field.name)
    return chosen


def _with_statistics(schema: pa.Schema) -> list[str]:
    """The columns whose row groups get min/max statistics: all but text (a tenth of the write's time for
    little pruning), and the lineage columns (the PostgreSQL engine reads their constants from them)."""
    return [f.name for f in schema if f.name in LINEAGE_COLUMNS or not _is_text(f.type)]


def _byte_width(kind: pa.DataType) -> int:
    """Bytes a value of a fixed-width type takes; 0 for other types, and for booleans (bits, never in a dictionary)."""
    try:
        return kind.bit_width // 8
    except ValueError:
        return 0


def _is_text(kind: pa.DataType) -> bool:
    """Text or bytes, of variable length."""
    return any(is_(kind) for is_ in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary))


def _row_groups(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> Iterator[pa.Table]:
    """``batches`` gathered, in order, into tables of :data:`ROW_GROUP_ROWS` rows (or :data:`ROW_GROUP_BYTES`),
    each written as one row group: a batch that would pass the size is split."""
    group: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in batches:
        while batch.num_rows:
            room = ROW_GROUP_ROWS - rows
            taken, batch = batch.slice(0, room), batch.slice(room)
            group.append(taken)
            rows += taken.num_rows
            size += taken.nbytes
            if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
                yield pa.Table.from_batches(group, schema)
                group, rows, size = [], 0, 0
    if group:
        yield pa.Table.from_batches(group, schema)


def read_ahead(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """``items`` as made by a thread of their own, at most ``depth`` ahead of the caller; an error there is raised here.

    Closing the iterator (the caller stopped or failed) stops the thread before it returns.
    """
    queue: Queue[tuple[bool, Any]] = Queue(depth)
    stop = threading.Event()

    def give(entry: tuple[bool, Any]) -> None:
        while not stop.is_set():
            with contextlib.suppress(Full):
                queue.put(entry, timeout=0.1)
                return

    def make() -> None:
        try:
            for item in items:
                give((False, item))
                if stop.is_set():
                    return
            give((True, None))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            give((True, error))

    thread = threading.Thread(target=make, name="autoflux-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            done, item = queue.get()
            if done:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        thread.join()


def _kept_rows(lake: Lake, schema_name: str, table: str, schema: pa.Schema, replaced: pa.Table | None = None) -> Iterator[pa.RecordBatch]:
    """The table's rows in ``schema`` (types widened, new columns null), without those whose key is in ``replaced``.

    The table is opened now, not while delta-rs pulls the batches (it cannot be re-entered then).
    """
    dataset = lake.open(schema_name, table).to_pyarrow_dataset()
    return _reshaped(dataset.to_batches(), schema, replaced)


def _reshaped(batches: Iterator[pa.RecordBatch], schema: pa.Schema, replaced: pa.Table | None) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        arrays = [batch.column(f.name).cast(f.type) if f.name in batch.schema.names else pa.nulls(batch.num_rows, f.type) for f in schema]
        kept = pa.Table.from_batches([pa.record_batch(arrays, schema=schema)])
        if replaced is not None and kept.num_rows:
            kept = kept.join(replaced, keys=replaced.column_names, join_type="left anti").select(schema.names)
        for part in kept.to_batches():
            yield pa.record_batch(part.columns, schema=schema)


def _repeated_key(rows: pa.Table, key: list[str]) -> tuple[dict[str, Any], int] | None:
    """A key value on more than one of ``rows``, and its number of rows (see :func:`~autoflux.ingest.rules.check_key`)."""
    counts = rows.group_by(key).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if not repeated.num_rows:
        return None
    first = repeated.slice(0, 1).to_pylist()[0]
    return {k: first[k] for k in key}, first["count_all"]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _read_error(error: BaseException, source_file: str) -> BaseException:
    """``error`` raised while reading, as an :class:`IngestError` unless it is one already."""
    if isinstance(error, AutoFluxError) or not isinstance(error, Exception):
        return error
    return IngestError(
        f"reading failed: {type(error).__name__}: {' '.join(str(error).split())}",
        path=source_file,
        hint="check that the file is complete and well-formed (or fix its reader)",
    )


def _conform(
    columns: Columns,
    incoming: pa.Schema,
    schema: pa.Schema,
    rescue: bool,
    lineage: Lineage,
    this: _Pass,
    limits: BadRowLimits,
    on_batch: Callable[[int, int | None], None] | None,
    finish: Callable[[], None],
) -> Iterator[pa.RecordBatch]:
    """The file's batches in ``schema``: renamed, cast (or rescued), lineage appended; errors kept in ``this``."""
    position = {f.name: i for i, f in enumerate(incoming)}
    data_fields = [f for f in schema if f.name not in (*LINEAGE_COLUMNS, RESCUED_COLUMN)]
    load_id = pa.scalar(lineage.load_id, pa.string())
    source = pa.scalar(lineage.source_file, pa.string())
    at = pa.scalar(lineage.ingested_at, pa.timestamp("us", tz="UTC"))
    try:
        for batch in columns.batches:
            fault("parse")
            n = batch.num_rows
            rescued: dict[int, dict[str, str]] = {}
            if rescue:
                arrays, rescued = rescue_values({name: batch.column(i) for name, i in position.items()}, data_fields, n)
            else:
                arrays = [
                    _cast(batch.column(position[field.name]), field, lineage) if field.name in position else pa.nulls(n, field.type)
                    for field in data_fields
                ]
            if RESCUED_COLUMN in schema.names:
                arrays.append(rescued_json(rescued, n))
            arrays += [pa.repeat(load_id, n), pa.repeat(source, n), pa.repeat(at, n)]
            this.rows += n
            this.rescued += sum(map(len, rescued.values()))
            bad = columns.bad_rows
            if bad and limits.counting and len(bad) > limits.max_count:
                raise bad.error(limits if limits.max_count else None)
            if on_batch:
                on_batch(n, columns.bytes_read() if columns.bytes_read else None)
            yield pa.record_batch(arrays, schema=schema)
        finish()
    except BaseException as error:
        this.failure = error
        raise


def _set_aside_bad_rows(columns: Columns, this: _Pass, load: TableLoad) -> None:
    """At the end of the file: fail it if it has too many bad rows, else stage them for the quarantine."""
    bad = columns.bad_rows
    if bad:
        set_aside(load.rules, bad, this.rows + len(bad), load.table, load.lineage)
        this.quarantined = len(bad)
    fault("write")


def _cast(array: pa.Array, field: pa.Field, lineage: Lineage) -> pa.Array:
    if array.type == field.type:
        return array
    try:
        return array.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise IngestError(
            f"values do not fit type {field.type}: {error}",
            path=lineage.source_file,
            column=field.name,
            hint="change or remove its entry in ingest.types of autoflux.yml",
        ) from None


# ------------------------------------------------------------------------------------- groups


@dataclass
class Staged:
    """One file's rows written as Parquet files of a grouped table (its own, or packed with others'), not committed yet."""

    source_file: str
    adds: list[Any]
    schema: pa.Schema
    written: Written
    packed: bool = False


@dataclass(frozen=True)
class Pack:
    """A data file holding the rows of several small source files of a grouped table."""

    add: Any
    schema: pa.Schema
    sources: tuple[str, ...]


PACK_BYTES = 64 << 20  # small files' rows are packed into data files of about this many bytes (in memory)


@dataclass
class _OpenPack:
    schema: pa.Schema
    batches: list[pa.RecordBatch]
    sources: list[str]
    bytes: int = 0


class Packer:
    """Packs the rows of a grouped table's small files into shared data files, written as they fill (thread-safe).

    Thousands of tiny Parquet files would make every engine slow to read the table; packed, a
    file's rows are removed by rewriting its pack without them (:func:`commit_group`).
    """

    def __init__(self, lake: Lake, schema_name: str, table: str, limit: int = PACK_BYTES) -> None:
        self.lake, self.schema_name, self.table, self.limit = lake, schema_name, table, limit
        self.packs: list[Pack] = []
        self._lock = threading.Lock()
        self._open: dict[tuple, _OpenPack] = {}

    def add(self, source_file: str, schema: pa.Schema, batches: list[pa.RecordBatch]) -> None:
        key = tuple((f.name, str(f.type)) for f in schema)
        with self._lock:
            pending = self._open.setdefault(key, _OpenPack(schema, [], []))
            pending.batches.extend(pa.record_batch(b.columns, schema=pending.schema) for b in batches)
            pending.sources.append(source_file)
            pending.bytes += sum(b.nbytes for b in batches)
            full = self._open.pop(key) if pending.bytes >= self.limit else None
        if full is not None:
            self._write(full)

    def flush(self) -> None:
        with self._lock:
            pending, self._open = list(self._open.values()), {}
        for pack in pending:
            self._write(pack)

    def _write(self, pack: _OpenPack) -> None:
        adds = write_files(self.lake, self.schema_name, self.table, pack.schema, iter(pack.batches))
        with self._lock:
            self.packs += [Pack(add, pack.schema, tuple(pack.sources)) for add in adds]


def stage_file(
    lake: Lake,
    schema_name: str,
    open_columns: Callable[..., Columns],
    load: TableLoad,
    *,
    base: pa.Schema | None,
    packer: Packer | None = None,
) -> Staged:
    """Write one file of a grouped table as Parquet files in its folder (or, with ``packer``, into a pack), for :func:`commit_group`.

    The file is read and planned as a load appended to a table of schema ``base`` under the
    table's schema policy (``load.rules``): ``freeze`` refuses a file whose columns differ from ``base`` (naming
    it), ``rescue`` keeps what does not fit ``base`` in ``_rescued_data``, ``evolve`` keeps the
    file's new columns and wider types (:func:`commit_group` then widens the table).
    """
    adds: list[Any] = []
    kept: list[pa.RecordBatch] = []

    def stage(planned: Plan, schema: pa.Schema, incoming: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        if packer is not None:
            kept[:] = list(batches)
        else:
            adds[:] = write_files(lake, schema_name, load.table, schema, batches)

    this, planned, schema, widened = _load(schema_name, open_columns, base, stage, replace(load, rules=load.rules.appended()))
    written = Written(this.rows, -1, schema, {k: str(v) for k, v in widened.items()}, this.quarantined, this.rescued, planned.changes)
    if packer is not None:
        packer.add(load.lineage.source_file, schema, kept)
    return Staged(load.lineage.source_file, adds, schema, written, packed=packer is not None)


def commit_group(
    lake: Lake,
    schema_name: str,
    table: str,
    staged: list[Staged],
    *,
    packs: Sequence[Pack] = (),
    drop: Collection[str],
    owners: Mapping[str, Collection[str]] | None,
    metadata: Callable[[dict[str, list[str]]], Mapping[str, str]],
) -> tuple[int, pa.Schema, tuple[str, ...], dict[str, list[str]]]:
    """Commit the ``staged`` files of a grouped table in place of their earlier rows, and remove the rows of the
    source files in ``drop``, in one version.

    ``packs`` hold the rows of the staged files that were packed. ``owners`` maps each data file of
    the table's current version to the source files whose rows it holds (None: the table is rebuilt
    from ``staged`` alone). A data file of no known owner is read
    (its ``_source_file`` column) to find which it holds; one holding rows of kept and dropped
    source files is rewritten without the dropped rows. When the files' columns differ from the
    table's (evolve), the table's schema widens and its kept rows are rewritten in it. ``metadata``
    gets the source file → data files of the new version and returns the commit's metadata.
    Returns the version, the schema, the schema changes and the source file → data files map.
    """
    from deltalake import CommitProperties, DeltaTable
    from deltalake.schema import Schema
    from deltalake.transaction import RemoveAction, create_table_with_add_actions

    uri = lake.table_uri(schema_name, table)
    exists = lake.exists(schema_name, table)
    delta = DeltaTable(uri, storage_options=lake.storage_options or None) if exists else None
    current = pa.schema(delta.schema().to_arrow()) if delta is not None else None
    final = current if owners is not None else None
    for one in staged:
        final = one.schema if final is None else union_schema(table, final, one.schema)
    active: dict[str, int] = {}
    if delta is not None and owners is not None:
        actions = delta.get_add_actions(flatten=True)
        active = dict(zip(actions.column("path").to_pylist(), actions.column("size_bytes").to_pylist(), strict=True))
    drop = set(drop) | {one.source_file for one in staged}  # a file loaded again replaces its earlier rows
    holds: dict[str, set[str]] = {path: set(owners[path]) if path in owners else _sources(lake, uri, path) for path in active}
    removed = [path for path in active if holds[path] <= drop]
    mixed = [path for path in active if holds[path] & drop and not holds[path] <= drop]
    kept = [path for path in active if not holds[path] & drop]
    rebuild = final is not None and (current is None or owners is None or not _same_columns(current, final))
    after: dict[str, list[str]] = {}
    adds: list[Any] = []

    def place(paths: list[str], sources: Collection[str]) -> None:
        for source in sources:
            after.setdefault(source, []).extend(paths)

    for path in kept if not rebuild else []:
        place([path], holds[path])
    for path in mixed + (kept if rebuild else []):
        rewritten = _rewrite(lake, schema_name, table, uri, path, final, drop)
        adds += rewritten
        place([a.path for a in rewritten], holds[path] - drop)
    filesystem, root = lake.filesystem(uri)
    written = [(one.adds, one.schema, [one.source_file]) for one in staged if not one.packed]
    written += [([pack.add], pack.schema, list(pack.sources)) for pack in packs]
    for own, schema, sources in written:
        if not _same_columns(schema, final):
            rewritten = [a for old in own for a in _rewrite(lake, schema_name, table, uri, old.path, final, set())]
            for old in own:
                filesystem.rm(f"{root}/{old.path}")
            own = rewritten
        adds += own
        place([a.path for a in own], sources)
    commit = CommitProperties(custom_metadata=dict(metadata(after)))
    fault("write")
    if delta is None:
        create_table_with_add_actions(uri, Schema.from_arrow(final), adds, mode="error", storage_options=lake.storage_options or None,
                                      commit_properties=commit)  # fmt: skip
    elif rebuild:
        delta.create_write_transaction(adds, mode="overwrite", schema=Schema.from_arrow(final), commit_properties=commit)
    else:
        now = int(time.time() * 1000)
        removes = [RemoveAction(p, True, now, active[p]) for p in removed + mixed]
        delta.create_write_transaction([*removes, *adds], mode="append", schema=Schema.from_arrow(final), commit_properties=commit)
    changes = schema_changes(current, final) if current is not None else ()
    return lake.open(schema_name, table).version(), final, changes, after


def union_schema(table: str, schema: pa.Schema, other: pa.Schema) -> pa.Schema:
    """The columns of ``schema`` widened to hold ``other``'s too, then ``other``'s new ones (lineage last)."""
    data = pa.schema([f for f in other if f.name not in LINEAGE_COLUMNS and f.name != RESCUED_COLUMN])
    base = pa.schema([f for f in schema if f.name not in LINEAGE_COLUMNS])
    merged = plan(TablePolicy("append", "evolve"), table, base, data).schema
    if RESCUED_COLUMN in other.names and RESCUED_COLUMN not in merged.names:
        merged = merged.append(other.field(RESCUED_COLUMN))
    return lineage_schema(merged)


def _same_columns(a: pa.Schema, b: pa.Schema) -> bool:
    return [(f.name, f.type) for f in a] == [(f.name, f.type) for f in b]


def schema_changes(before: pa.Schema, after: pa.Schema) -> tuple[str, ...]:
    from autoflux.ingest.schema import type_name

    old = {f.name: f.type for f in before}
    changes = [f"+ {f.name} {type_name(f.type)}" for f in after if f.name not in old]
    changes += [f"~ {f.name} {type_name(old[f.name])} → {type_name(f.type)}" for f in after if f.name in old and old[f.name] != f.type]
    return tuple(changes)


def _open_parquet(lake: Lake, uri: str, path: str) -> pq.ParquetFile:
    filesystem, root = lake.filesystem(uri)
    return pq.ParquetFile(filesystem.open(f"{root}/{path}", "rb"))


def _sources(lake: Lake, uri: str, path: str) -> set[str]:
    """The source files whose rows a data file holds (its ``_source_file`` values)."""
    column = _open_parquet(lake, uri, path).read(columns=["_source_file"]).column(0)
    return set(pc.unique(column).to_pylist())


def _rewrite(lake: Lake, schema_name: str, table: str, uri: str, path: str, schema: pa.Schema, drop: set[str]) -> list[Any]:
    """A data file written again in ``schema`` (types widened, new columns null) without the rows of the source files in ``drop``."""
    parquet = _open_parquet(lake, uri, path)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in _reshaped(parquet.iter_batches(), schema, None):
            if drop:
                batch = batch.filter(pc.invert(pc.is_in(batch.column("_source_file"), pa.array(sorted(drop), pa.string()))))
            yield batch

    return write_files(lake, schema_name, table, schema, batches())
