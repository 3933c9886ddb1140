"""Write a file's columns as one Delta commit: clean names, lake types, lineage columns.

The commit carries the load id and the source's fingerprint in its ``commitInfo``, so the table
itself says which file content it holds. A read that fails halfway raises before the commit:
the table stays at its previous version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from autoflux.exceptions import AutoFluxError, IngestError
from autoflux.ingest.readers import Columns, WidenColumns
from autoflux.ingest.schema import lineage_schema, table_schema
from autoflux.lake import Lake

MAX_WIDENINGS = 50
FINGERPRINT_KEY = "autoflux.fingerprint"
LOAD_ID_KEY = "autoflux.load_id"


@dataclass(frozen=True)
class Lineage:
    load_id: str
    source_file: str
    ingested_at: datetime


@dataclass(frozen=True)
class Written:
    rows: int
    version: int
    schema: pa.Schema
    widened: dict[str, str]


def write_table(
    lake: Lake,
    schema_name: str,
    table: str,
    open_columns: Callable[[dict[str, pa.DataType]], Columns],
    *,
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    commit_metadata: Mapping[str, str],
    on_batch: Callable[[int, int | None], None] | None = None,
) -> Written:
    """Replace ``schema_name.table`` with the columns ``open_columns(types)`` reads, in one commit.

    ``open_columns`` is called again with wider column types when a CSV value does not fit the
    inferred type (see :mod:`autoflux.ingest.readers`).
    """
    from deltalake import CommitProperties, write_deltalake
    from deltalake.exceptions import DeltaError

    widened: dict[str, pa.DataType] = {}
    for _ in range(MAX_WIDENINGS):
        failure: list[BaseException] = []
        rows = [0]
        try:
            columns = open_columns(dict(hints) | widened)
            schema = lineage_schema(table_schema(columns.names, columns.types, {**hints, **widened}))
            batches = _conform(columns, schema, lineage, rows, failure, on_batch)
            write_deltalake(
                lake.table_uri(schema_name, table),
                pa.RecordBatchReader.from_batches(schema, batches),
                mode="overwrite",
                schema_mode="overwrite",
                description=f"raw data from {lineage.source_file}",
                storage_options=lake.storage_options or None,
                commit_properties=CommitProperties(custom_metadata=dict(commit_metadata)),
            )
        except WidenColumns as widen:
            widened |= widen.types
            continue
        except Exception as error:
            if failure and isinstance(failure[0], WidenColumns):
                widened |= failure[0].types
                continue
            if failure:
                raise _read_error(failure[0], lineage.source_file) from None
            if not isinstance(error, DeltaError | OSError):
                raise
            raise IngestError(f"cannot write table {schema_name}.{table}: {error}", path=lineage.source_file) from None
        version = lake.open(schema_name, table).version()
        return Written(rows[0], version, schema, {k: str(v) for k, v in widened.items()})
    raise IngestError("column types kept changing while reading", path=lineage.source_file, hint="set ingest.types for its columns")


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
    schema: pa.Schema,
    lineage: Lineage,
    rows: list[int],
    failure: list[BaseException],
    on_batch: Callable[[int, int | None], None] | None,
) -> Iterator[pa.RecordBatch]:
    """Batches renamed and cast to ``schema``, lineage appended; errors are kept in ``failure``."""
    data_fields = list(schema)[: len(columns.names)]
    load_id = pa.scalar(lineage.load_id, pa.string())
    source = pa.scalar(lineage.source_file, pa.string())
    at = pa.scalar(lineage.ingested_at, pa.timestamp("us", tz="UTC"))
    try:
        for batch in columns.batches:
            arrays = [_cast(batch.column(i), field, lineage) for i, field in enumerate(data_fields)]
            n = batch.num_rows
            arrays += [pa.repeat(load_id, n), pa.repeat(source, n), pa.repeat(at, n)]
            rows[0] += n
            if on_batch:
                on_batch(n, columns.bytes_read() if columns.bytes_read else None)
            yield pa.record_batch(arrays, schema=schema)
    except BaseException as error:
        failure.append(error)
        raise


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
