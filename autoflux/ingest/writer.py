"""Write a file's rows into a raw Delta table in one commit: clean names, lake types, lineage columns.

How the rows change the table (replace, append or merge) and what a schema difference does
(evolve, freeze or rescue) is :mod:`autoflux.ingest.policy`. The commit carries the load id and
the source's fingerprint in its ``commitInfo``, so the table itself says which file content it
holds. A read that fails halfway, a refused schema or too many bad rows raise before the commit:
the table stays at its previous version. Data files an aborted write left behind are referenced
by no version, so no reader sees them; ``autoflux vacuum`` deletes them.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from autoflux.exceptions import AutoFluxError, IngestError
from autoflux.faults import fault
from autoflux.ingest import quarantine
from autoflux.ingest.policy import (
    RESCUED_COLUMN,
    BadRowLimits,
    Plan,
    TablePolicy,
    empty_key_error,
    key_columns,
    plan,
    reader_types,
    repeated_key_error,
    rescued_json,
)
from autoflux.ingest.policy import rescue as rescue_values
from autoflux.ingest.readers import Columns, ReadAgain
from autoflux.ingest.schema import LINEAGE_COLUMNS, lake_type, lineage_schema, table_schema
from autoflux.ingest.state import LoadMetadata
from autoflux.lake import Lake

MAX_READS = 50
FINGERPRINT_KEY = LoadMetadata.key("fingerprint")
LOAD_ID_KEY = LoadMetadata.key("load_id")


@dataclass(frozen=True)
class Lineage:
    load_id: str
    source_file: str
    ingested_at: datetime


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


def write_table(
    lake: Lake,
    schema_name: str,
    table: str,
    open_columns: Callable[..., Columns],
    *,
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    commit_metadata: Mapping[str, str],
    on_batch: Callable[[int, int | None], None] | None = None,
    policy: TablePolicy | None = None,
    bad_rows: BadRowLimits | None = None,
    staging: Path | None = None,
) -> Written:
    """Load the columns ``open_columns(types)`` reads into ``schema_name.table``, in one commit.

    ``policy`` gives the write mode and schema policy (default: replace, evolve). Bad rows within
    ``bad_rows`` are staged under ``staging`` for the quarantine table (without ``staging`` any bad
    row fails the file). ``open_columns`` is called again with wider column types when a value
    does not fit the inferred type, with ``block_size=`` when a value is longer than a block, or
    with ``by_value=True`` when JSON lines need reading value by value (see :mod:`autoflux.ingest.readers`).
    """
    from deltalake.exceptions import DeltaError

    policy = policy or TablePolicy()
    limits = bad_rows if bad_rows is not None and staging is not None else BadRowLimits()
    existing = _current_schema(lake, schema_name, table)
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
                _set_aside_bad_rows(columns, this, limits, staging, table, lineage)

            batches = _conform(columns, incoming, schema, planned.rescue, lineage, this, limits, on_batch, finish)
            _commit(lake, schema_name, table, policy, planned, existing is not None, schema, incoming, batches, commit_metadata, lineage)
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
        version = lake.open(schema_name, table).version()
        return Written(this.rows, version, schema, {k: str(v) for k, v in widened.items()}, this.quarantined, this.rescued, planned.changes)
    raise IngestError("column types kept changing while reading", path=lineage.source_file, hint="set ingest.types for its columns")


def _current_schema(lake: Lake, schema_name: str, table: str) -> pa.Schema | None:
    if not lake.exists(schema_name, table):
        return None
    return pa.schema(lake.open(schema_name, table).schema().to_arrow())


def _commit(
    lake: Lake,
    schema_name: str,
    table: str,
    policy: TablePolicy,
    planned: Plan,
    exists: bool,
    schema: pa.Schema,
    incoming: pa.Schema,
    batches: Iterator[pa.RecordBatch],
    metadata: Mapping[str, str],
    lineage: Lineage,
) -> None:
    """Make the one commit of this load, as the write mode says."""
    from deltalake import CommitProperties

    def overwrite(stream: Iterator[pa.RecordBatch]) -> None:
        write_in_order(
            lake,
            schema_name,
            table,
            schema,
            stream,
            mode="overwrite",
            metadata=metadata,
            description=f"raw data from {lineage.source_file}",
        )

    if policy.mode == "merge":
        key = key_columns(policy, table, incoming)
        rows = pa.Table.from_batches(list(batches), schema)  # a merge holds the file's rows in memory
        _check_key(rows, key, table, lineage.source_file)
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
        overwrite(batches)
    elif planned.rewrite:
        overwrite(itertools.chain(_kept_rows(lake, schema_name, table, schema), batches))
    else:
        write_in_order(lake, schema_name, table, schema, batches, mode="append", metadata=metadata)


FILE_BYTES = 256 << 20  # a data file is closed and the next one begun past this size


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
    from deltalake.transaction import AddAction, create_table_with_add_actions

    uri = lake.table_uri(schema_name, table)
    filesystem, root = lake.filesystem(uri)
    filesystem.makedirs(root, exist_ok=True)
    adds: list[AddAction] = []
    batches = iter(batches)
    full = True
    while full:
        name = f"part-{len(adds):05d}-{uuid.uuid4()}-c000.snappy.parquet"
        path, rows, full = f"{root}/{name}", 0, False
        with filesystem.open(path, "wb") as handle, pq.ParquetWriter(handle, schema) as parquet:
            for batch in batches:
                parquet.write_batch(batch)
                rows += batch.num_rows
                if handle.tell() >= FILE_BYTES:
                    full = True
                    break
        if rows == 0 and adds:  # the last file was full to the byte
            filesystem.rm(path)
            break
        adds.append(AddAction(name, filesystem.size(path), {}, int(time.time() * 1000), True, json.dumps({"numRecords": rows})))
    rows_written = sum(json.loads(add.stats)["numRecords"] for add in adds)
    commit = CommitProperties(custom_metadata={**metadata, LoadMetadata.key("rows"): str(rows_written)})
    delta_schema = Schema.from_arrow(schema)
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


def _check_key(rows: pa.Table, key: list[str], table: str, source_file: str) -> None:
    for column in key:
        if rows[column].null_count:
            raise empty_key_error(table, column, rows[column].null_count, source_file)
    counts = rows.group_by(key).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    if repeated.num_rows:
        first = repeated.slice(0, 1).to_pylist()[0]
        raise repeated_key_error(table, {k: first[k] for k in key}, first["count_all"], source_file)


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


def _set_aside_bad_rows(columns: Columns, this: _Pass, limits: BadRowLimits, staging: Path | None, table: str, lineage: Lineage) -> None:
    """At the end of the file: fail it if it has too many bad rows, else stage them for the quarantine."""
    bad = columns.bad_rows
    if bad:
        if not limits.allows(len(bad), this.rows + len(bad)) or staging is None:
            raise bad.error(limits if limits.max_count or limits.max_fraction else None)
        quarantine.stage(staging, lineage.load_id, table, lineage.source_file, bad.located())
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
