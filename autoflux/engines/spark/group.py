"""Grouped tables on Spark: the files of one dataset read by one reader, the table's new version written once.

The rules are the embedded engine's (:meth:`autoflux.ingest.store.RawStore.write_group`), applied to
DataFrames with the single-file writer's pieces (:mod:`.writer`):

1. The files to load are sorted by shape — format; for CSV the dialect and header; for Parquet the
   schema — and the files of each shape are read by ONE Spark reader (:func:`.ingest.read_group`),
   each row's ``_source_file`` its file's path in the source and the Hive keys typed columns.
   Each shape's rows are planned as a load appended to the table (its schema policy; the first
   shape read settles the types of a new table), staged as Parquet in
   ``<lake>/_autoflux/staging/<table>`` and counted per file in one aggregation.
2. A file fails alone: when a read fails naming one file (Spark names the file it failed on;
   a bad folder value, a value that does not fit its type hint, invalid JSON), that file is set
   aside and its shape read again without it; a failure that names no file (Sail's parse errors)
   splits the shape's files in halves, read apart, until it is down to the file; a file over the
   bad-row limits is left out of the new version. Bad rows within the
   limits go to the quarantine with their file and line, as for one file.
3. The new version is the table's rows of files neither loaded nor removed, and the staged rows
   of the files that loaded, in the union of their columns (:func:`~autoflux.ingest.writer.union_schema`):
   with ``format: parquet`` a new ``v<N>`` folder swapped into the catalog, with Delta one
   overwrite commit. The files manifest (:mod:`autoflux.ingest.state`) is named by that version's
   metadata; its ``data`` lists stay empty (a version's Parquet files are not tied to source files).

Spark Connect on Sail cannot tell a row's file (no ``input_file_name()`` nor ``_metadata``), so there
each file has a reader of its own, and the readers are one union: one job, one write.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import reduce
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa

from autoflux.engines.spark.writer import (
    CORRUPT,
    RESCUED_COUNT,
    Store,
    _in_columns,
    _metadata,
    _misfit,
    aligned,
    arrow_schema,
    spark_struct,
)
from autoflux.exceptions import AutoFluxError, IngestError
from autoflux.ingest.policy import plan, reader_types
from autoflux.ingest.readers.csv import CsvOptions, sniff_csv
from autoflux.ingest.readers.encoding import read_head, split_suffixes
from autoflux.ingest.rules import set_aside
from autoflux.ingest.schema import LINEAGE_COLUMNS, lineage_schema
from autoflux.lake import SYSTEM

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from autoflux.ingest.rules import TableLoad
    from autoflux.ingest.store import GroupLoad, GroupWritten

SOURCE = LINEAGE_COLUMNS[1]


@dataclass
class _Shape:
    """The staged rows of the files of one shape that loaded, in their planned schema."""

    rows: DataFrame
    schema: pa.Schema
    loaded: list[str]


def load(
    store: Store,
    table_load: TableLoad,
    loads: Sequence[GroupLoad],
    *,
    drop: Collection[str],
    owners: Mapping[str, Collection[str]] | None,
    metadata: Callable[[dict[str, list[str]], Mapping[str, Any]], Mapping[str, str]],
) -> GroupWritten:
    """Write grouped table ``raw.<table_load.table>`` as :meth:`RawStore.write_group` says, reading with Spark (see the module docstring)."""
    from pyspark.sql import functions as F

    from autoflux.ingest.store import GroupWritten
    from autoflux.ingest.writer import schema_changes, union_schema

    options = CsvOptions.of(store.settings.csv)
    table, on_batch = table_load.table, table_load.on_batch
    table_load = replace(table_load, rules=table_load.rules.appended())
    old = store.current(table) if owners is not None else None  # without a files manifest the table is rebuilt
    existing = arrow_schema(old.schema) if old is not None else None
    results: dict[str, Any] = {}
    staging = f"{store.lake.table_uri(SYSTEM, 'staging')}/{table}"
    shapes: list[_Shape] = []
    try:
        base = existing
        for number, members in enumerate(_shapes(loads, options, results)):
            staged = _stage_shape(store, table_load, members, f"{staging}/s{number}", base, options, results)
            shapes += staged
            base = base if base is not None or not staged else staged[0].schema
        if on_batch:
            for name in (n for s in shapes for n in s.loaded):
                on_batch(results[name].rows, None)
        files = dict(results)
        if not shapes and not drop:
            return GroupWritten(None, files, {})
        final = existing
        for shape in shapes:
            final = shape.schema if final is None else union_schema(table, final, shape.schema)
        if final is None:
            return GroupWritten(None, files, {})
        column_metadata = _metadata(shapes[0].rows, old) if shapes else _metadata(old, None)
        for shape in shapes[1:]:
            column_metadata = _metadata(shape.rows, None) | column_metadata
        struct = spark_struct(final, metadata=column_metadata)
        loaded = [name for shape in shapes for name in shape.loaded]
        parts = [aligned(shape.rows.where(F.col(SOURCE).isin(shape.loaded)), struct) for shape in shapes]
        if old is not None:
            gone = sorted({*drop, *loaded})
            parts.insert(0, aligned(old.where(~F.col(SOURCE).isin(gone)) if gone else old, struct))
        content = reduce(lambda a, b: a.unionByName(b), parts)
        written = metadata({name: [] for name in loaded}, files)
        version = store.commit(content, table, written, mode="overwrite", where=f"the files of raw.{table}")
    finally:
        store.remove(staging)
    changes = schema_changes(existing, final) if existing is not None else ()
    return GroupWritten(version, files, {name: [] for name in loaded}, changes)


def _shapes(loads: Sequence[GroupLoad], options: CsvOptions, results: dict[str, Any]) -> list[list[GroupLoad]]:
    """``loads`` by shape (files one reader reads together), in the order of their first file; a file whose shape
    cannot be told (or that Spark has no reader for) fails alone, in ``results``."""
    from autoflux.engines.spark.ingest import can_read

    shapes: dict[Any, list[GroupLoad]] = {}
    for one in loads:
        data_file = one.data_file
        try:
            if not can_read(data_file):
                raise IngestError(
                    f"Spark has no reader for this file ({data_file.format}, {split_suffixes(data_file.path)[1] or 'uncompressed'}) "
                    "in a table of several files",
                    path=data_file.path,
                    hint="convert it to CSV, JSON or Parquet (gzip or bz2), exclude it with ingest.exclude, or set ingest.group: false",
                )
            shapes.setdefault(_shape_key(one, options), []).append(one)
        except AutoFluxError as error:
            results[one.lineage.source_file] = _named(error, one)
    return list(shapes.values())


def _shape_key(one: GroupLoad, options: CsvOptions) -> Any:
    data_file = one.data_file
    path = data_file.path
    if not path.is_file():
        raise IngestError("the file is missing or not a regular file", path=path, hint="check the path")
    if data_file.format == "csv":
        return "csv", sniff_csv(path, options, scan=True)
    if data_file.format == "json":
        head = read_head(path, 1 << 16).lstrip()
        if not head:
            raise IngestError("the file is empty", path=path, hint="remove it or replace it with data")
        return "json", head[:1] == b"["
    import pyarrow.parquet as pq

    try:
        return "parquet", str(pq.read_schema(path))
    except (OSError, pa.ArrowException) as error:
        raise IngestError(f"not a readable Parquet file ({error})", path=path, hint="check the file is complete") from None


def _stage_shape(store, table_load, members, target, base, options, results) -> list[_Shape]:  # noqa: ANN001
    """Read, plan and stage the files of one shape. A file a failure names is set aside and the rest read again; a failure
    that names no file splits the files in halves, read apart, until it is down to one file."""
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    from autoflux.engines.spark.ingest import read_error

    pending = list(members)
    while pending:
        try:
            return [_stage_once(store, table_load, pending, target, base, options, results)]
        except (AutoFluxError, PySparkException, Py4JError) as error:  # Spark's errors name the file they failed on
            culprit = _culprit(error, pending)
            if culprit is None and len(pending) > 1:
                half = len(pending) // 2
                first = _stage_shape(store, table_load, pending[:half], f"{target}a", base, options, results)
                base = base if base is not None or not first else first[0].schema
                return first + _stage_shape(store, table_load, pending[half:], f"{target}b", base, options, results)
            if not isinstance(error, AutoFluxError):
                error = read_error(error, culprit.data_file.path if culprit else pending[0].data_file.path)
            results[(culprit or pending[0]).lineage.source_file] = _named(error, culprit or pending[0])
            pending = [one for one in pending if one is not (culprit or pending[0])]
    return []


def _stage_once(store, table_load, pending, target, base, options, results) -> _Shape:  # noqa: ANN001
    from pyspark.sql import functions as F

    from autoflux.engines.spark import ingest
    from autoflux.ingest.writer import Written

    spark = store.spark
    table, rules, policy = table_load.table, table_load.rules, table_load.rules.policy
    text = policy.schema == "rescue" and base is not None
    csv = pending[0].data_file.format == "csv"
    corrupt = CORRUPT if csv and not store.remote else None
    frame = ingest.read_group(
        spark,
        [one.data_file for one in pending],
        options=options,
        hints=table_load.hints,
        lineage=pending[0].lineage,
        partitions=pending[0].partitions,
        table_types={} if text else reader_types(policy, base),
        text=text,
        corrupt=corrupt,
    )
    kept = [corrupt] if corrupt else []
    incoming = arrow_schema(frame.schema, exclude=(*LINEAGE_COLUMNS, *kept))
    planned = plan(policy, table, base, incoming)
    schema = lineage_schema(planned.schema)
    struct = spark_struct(schema, metadata=_metadata(frame, None))
    rows = _in_columns(frame, schema, struct, incoming, planned.rescue, kept)
    rows.write.mode("overwrite").parquet(target)
    rows = spark.read.parquet(target)
    measures = [F.count(F.lit(1)).alias("read")]
    measures += [F.count(F.col(CORRUPT)).alias("corrupt")] if corrupt else []
    measures += [F.sum(F.col(RESCUED_COUNT)).alias("rescued")] if planned.rescue else []
    counts = {row[SOURCE]: row.asDict() for row in rows.groupBy(SOURCE).agg(*measures).collect()}
    loaded = []
    for one in pending:
        name, lineage = one.lineage.source_file, one.lineage
        found = counts.get(name, {})
        bad, read = None, found.get("read") or 0
        try:
            if found.get("corrupt"):
                bad = ingest.bad_rows(spark, one.data_file.path, options, CORRUPT)
                if len(bad) < found["corrupt"]:  # not a ragged row: a value that does not fit its type hint
                    raise _misfit(rows.where(F.col(SOURCE) == name), bad, one.data_file)
                set_aside(rules, bad, read, table, lineage)
        except AutoFluxError as error:
            results[name] = _named(error, one)
            continue
        quarantined = len(bad) if bad is not None else 0
        results[name] = Written(read - quarantined, -1, schema, {}, quarantined, int(found.get("rescued") or 0), planned.changes)
        loaded.append(name)
    clean = rows.where(F.col(CORRUPT).isNull()).drop(CORRUPT) if corrupt else rows
    return _Shape(clean.drop(RESCUED_COUNT) if planned.rescue else clean, schema, loaded)


def _culprit(error: BaseException, pending: list[GroupLoad]) -> GroupLoad | None:
    """The file of ``pending`` an error names (its ``path``, else the first path in its text), if any."""
    path = getattr(error, "path", None)
    for one in pending:
        if path is not None and str(path) == str(one.data_file.path):
            return one
    text = unquote(str(error))
    named = [(text.find(str(one.data_file.path)), one) for one in pending if str(one.data_file.path) in text]
    return min(named, key=lambda pair: pair[0])[1] if named else None


def _named(error: AutoFluxError, one: GroupLoad) -> AutoFluxError:
    """``error`` as the error of file ``one`` (a copy naming it, when it names no file or a shape of several)."""
    if error.path is not None and str(error.path) == str(one.data_file.path):
        return error
    named = copy.copy(error)
    named.path = one.lineage.source_file
    return named


__all__ = ["load"]
