"""Loads on Spark as :mod:`autoflux.ingest.policy` says: write mode, schema policy and bad rows.

The rules are the embedded engine's (:mod:`autoflux.ingest.writer`), applied to DataFrames:

1. The file is read by Spark (:mod:`.ingest`; AutoFlux's Arrow readers for formats Spark lacks)
   with the table's column types where its values fit them, as text under ``rescue``.
   :func:`~autoflux.ingest.policy.plan` gives the table's columns after the load, and the file's
   rows are put in them (under ``rescue`` cast value by value by
   :func:`~autoflux.ingest.policy.rescue`, in Python workers through ``mapInArrow``).
2. The table's complete new content is one DataFrame: the file's rows (replace, first load); the
   table's rows in the new columns and the file's (append); the table's rows whose key the file
   does not hold and the file's (merge).
3. It is written as one new version, and only after what must hold is checked: bad rows within
   ``ingest.bad_rows``, a merge key present, non-null and unique. With ``format: parquet`` the
   version is a new folder ``v<N>``, invisible until it is swapped into the catalog: the content
   is written there at once and counted on the way (a merge first stages the file's rows, as
   below). A Delta commit cannot be taken back, so the file's rows are first written to a
   staging folder, ``<lake>/_autoflux/staging/<table>``, checked there and then
   committed from it: Delta's ``append`` when the table's rows stay as they are, else an
   ``overwrite`` with the whole content. The file is parsed once either way. A failure before
   the swap or commit leaves the table as it was; the staging folder is removed either way.

Bad rows: on classic Spark, CSV is read in PERMISSIVE mode with ``columnNameOfCorruptRecord``;
its columns are read as text (their types are settled over every value before, see
:mod:`.ingest`), so the rows Spark flags are those with the wrong number of fields. When it flags
any, one more pass finds their text; they go to the quarantine with the line where they start
(found by their text, as on the embedded engine). Files read by AutoFlux's Arrow readers
(``.csv.zst``, custom readers) set bad rows aside as on the embedded store.

Differences from the embedded engine:

- A Spark Connect server is asked for FAILFAST parsing (Sail has no PERMISSIVE mode): there, any
  CSV row with the wrong number of fields fails the file, whatever ``ingest.bad_rows`` allows.
- A merge is written as a rewrite of the table (a Delta ``WRITE``, not a ``MERGE`` commit).
- Values of the table's rows cast to a wider type are cast by Spark: a ``double`` column that
  becomes ``string`` holds ``1.0`` where the embedded engine writes ``1``.
- Appending to a ``format: parquet`` table writes all of its rows again (each version is a folder).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from autoflux.engines.spark.ingest import quoted
from autoflux.exceptions import IngestError
from autoflux.ingest.policy import (
    RESCUED_COLUMN,
    Plan,
    TablePolicy,
    key_columns,
    plan,
    reader_types,
)
from autoflux.ingest.readers import BadRows
from autoflux.ingest.readers.csv import CsvOptions
from autoflux.ingest.rules import check_key, set_aside
from autoflux.ingest.schema import LINEAGE_COLUMNS, lineage_schema
from autoflux.lake import RAW, SYSTEM

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from autoflux.config import IngestSettings
    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.readers import Columns
    from autoflux.ingest.rules import TableLoad
    from autoflux.ingest.writer import Written
    from autoflux.lake import Lake


class Store(Protocol):
    """What the writer needs of the Spark engine's raw-table store (:class:`~autoflux.engines.spark.store.SparkRawStore`)."""

    lake: Lake
    settings: IngestSettings
    state_dir: Path

    @property
    def spark(self) -> SparkSession: ...
    @property
    def remote(self) -> bool: ...
    @property
    def delta(self) -> bool: ...
    def current(self, table: str) -> DataFrame | None: ...
    def next_version(self, table: str) -> tuple[int, str]: ...
    def swap(self, table: str, folder: str, version: int, metadata: Mapping[str, str]) -> None: ...
    def commit(self, content: DataFrame, table: str, metadata: Mapping[str, str], *, mode: str, where: Path | str) -> int: ...
    def remove(self, uri: str) -> None: ...


CORRUPT = "_autoflux_corrupt"
RESCUED_COUNT = "_autoflux_rescued"


@dataclass
class _Staged:
    """The file's rows in the planned columns (read back from the staging folder, if any), and what reading them found."""

    rows: DataFrame
    schema: pa.Schema
    struct: StructType
    incoming: pa.Schema
    planned: Plan
    loaded: int
    rescued: int
    bad: BadRows | None
    quarantined: int


def load(store: Store, data_file: DataFile, open_columns: Callable[..., Columns], load: TableLoad) -> Written:
    """Load the file into ``raw.<load.table>`` as one new version, as ``load.rules`` say (see the module docstring)."""
    from autoflux.ingest.writer import Written

    table, lineage, policy = load.table, load.lineage, load.rules.policy
    old = store.current(table)
    direct = not store.delta and policy.mode != "merge"
    if direct:
        version, target = store.next_version(table)
    else:
        target = f"{store.lake.table_uri(SYSTEM, 'staging')}/{table}"  # one per table: a killed load's is overwritten
    try:
        staged = _stage(store, data_file, open_columns, load, old, target, direct)
        if policy.mode == "merge":
            key = key_columns(policy, table, staged.incoming)
            _check_key(staged.rows, key, table, lineage.source_file)
        if staged.bad is not None:
            set_aside(load.rules, staged.bad, staged.loaded + len(staged.bad), table, lineage)
        if direct:
            store.swap(table, target, version, load.commit_metadata)
        else:
            content, mode = _content(store, old, staged.rows, staged, policy, key if policy.mode == "merge" else [])
            version = store.commit(content, table, load.commit_metadata, mode=mode, where=data_file.path)
    except BaseException:
        if direct:
            store.remove(target)
        raise
    finally:
        if not direct:
            store.remove(target)
    return Written(
        staged.loaded,
        version,
        staged.schema,
        {},
        quarantined=staged.quarantined or len(staged.bad or ()),
        rescued=staged.rescued,
        changes=staged.planned.changes,
    )


def _stage(
    store: Store,
    data_file: DataFile,
    open_columns: Callable[..., Columns],
    load: TableLoad,
    old: DataFrame | None,
    target: str,
    direct: bool,
) -> _Staged:
    """Read the file, plan the table's columns and write the file's rows in them to ``target``, counted.

    ``direct``: ``target`` is the table's next version folder (``format: parquet``, not a merge),
    and the table's whole new content is written there; else the file's rows are staged there.
    """
    from pyspark.sql import Observation
    from pyspark.sql import functions as F

    from autoflux.engines.spark import ingest

    spark = store.spark
    policy = load.rules.policy
    existing = arrow_schema(old.schema) if old is not None else None
    text = policy.schema == "rescue" and existing is not None
    table_types = {} if text else reader_types(policy, existing)
    options = CsvOptions.of(store.settings.csv)
    spark_reads = ingest.can_read(data_file)
    permissive = spark_reads and data_file.format == "csv" and not store.remote
    quarantined = 0
    if spark_reads:
        frame = ingest.read_file(
            spark,
            data_file,
            options=options,
            hints=load.hints,
            lineage=load.lineage,
            table_types=table_types,
            text=text,
            corrupt=CORRUPT if permissive else None,
        )
    else:
        frame, quarantined = _arrow_rows(store, data_file, open_columns, load, table_types, text)
    kept = [CORRUPT] if permissive else []
    incoming = arrow_schema(frame.schema, exclude=(*LINEAGE_COLUMNS, *kept))
    planned = plan(policy, data_file.table, existing, incoming)
    schema = lineage_schema(planned.schema)
    struct = spark_struct(schema, metadata=_metadata(frame, old))
    rows = _in_columns(frame, schema, struct, incoming, planned.rescue, kept)
    measures = [F.count(F.lit(1)).alias("read")]
    measures += [F.count(F.col(CORRUPT)).alias("corrupt")] if permissive else []
    measures += [F.sum(F.col(RESCUED_COUNT)).alias("rescued")] if planned.rescue else []
    staged = _Staged(rows, schema, struct, incoming, planned, 0, 0, None, quarantined)
    try:
        if direct:
            observation = Observation("autoflux_rows")
            observed = rows.observe(observation, *measures)
            content, _ = _content(store, old, observed.where(F.col(CORRUPT).isNull()) if permissive else observed, staged, policy, [])
            content.write.mode("overwrite").parquet(target)
            counts = observation.get
        else:
            rows.write.mode("overwrite").parquet(target)
            rows = spark.read.parquet(target)
            counts = rows.agg(*measures).first().asDict()
    except Exception as error:
        raise ingest.read_error(error, data_file.path) from None
    corrupt = counts.get("corrupt") or 0
    if corrupt:
        staged.bad = ingest.bad_rows(spark, data_file.path, options, CORRUPT)
        if len(staged.bad) < corrupt:  # the columns are text or checked values: only ragged rows are expected
            raise _misfit(rows, staged.bad, data_file)
    staged.rows = rows.where(F.col(CORRUPT).isNull()) if permissive else rows
    staged.loaded, staged.rescued = counts["read"] - corrupt, int(counts.get("rescued") or 0)
    return staged


def _content(
    store: Store, old: DataFrame | None, rows: DataFrame, staged: _Staged, policy: TablePolicy, key: list[str]
) -> tuple[DataFrame, str]:
    """The table's new content from the file's ``rows``, and Delta's write mode for it (``append`` adds ``rows`` only)."""
    content = aligned(rows, staged.struct)
    if old is None or policy.mode == "replace":
        return content, "overwrite"
    if store.delta and policy.mode == "append" and not staged.planned.rewrite:
        return content, "append"
    kept = aligned(old, staged.struct)
    if policy.mode == "merge":
        kept = kept.join(content.select(*[quoted(k) for k in key]), on=key, how="left_anti")
    return kept.unionByName(content), "overwrite"


def _in_columns(frame: DataFrame, schema: pa.Schema, struct: StructType, incoming: pa.Schema, rescue: bool, kept: list[str]) -> DataFrame:
    """The file's rows in the planned ``schema`` (Spark's ``struct``; cast, or rescued), with ``kept`` columns after it."""
    from pyspark.sql.types import IntegerType, StructField, StructType

    if not rescue:
        return aligned(frame, struct, keep=kept)
    from autoflux.engines.spark import ingest

    data = [f for f in schema if f.name not in (*LINEAGE_COLUMNS, RESCUED_COLUMN)]
    passed = [*LINEAGE_COLUMNS, *kept]
    by_name = {f.name: f for f in frame.schema.fields}
    output = StructType(
        [
            *(StructField(f.name, struct[f.name].dataType) for f in data),
            StructField(RESCUED_COLUMN, struct[RESCUED_COLUMN].dataType),
            StructField(RESCUED_COUNT, IntegerType()),
            *(StructField(name, by_name[name].dataType) for name in passed),
        ]
    )
    body = partial(ingest.rescue_batches, fields=data, names=incoming.names, passed=passed, count=RESCUED_COUNT)
    return aligned(frame.mapInArrow(body, output), struct, keep=[RESCUED_COUNT, *kept])


def _arrow_rows(store, data_file, open_columns, load, table_types, text) -> tuple[DataFrame, int]:  # noqa: ANN001
    """A file Spark has no reader for, read whole by AutoFlux's readers and writer rules; its bad rows staged for the quarantine."""
    import tempfile

    from autoflux.ingest.writer import write_table
    from autoflux.lake import Lake

    def opened(types: dict[str, pa.DataType], **read: Any) -> Columns:
        return open_columns({**table_types, **types}, **({"text": True} if text else {}), **read)

    with tempfile.TemporaryDirectory(prefix="autoflux-") as folder:
        read_only = replace(load, rules=replace(load.rules, policy=TablePolicy()), commit_metadata={}, on_batch=None)
        written = write_table(Lake(folder), RAW, opened, read_only)
        data = Lake(folder).open(RAW, data_file.table).to_pyarrow_table()
    return store.spark.createDataFrame(data), written.quarantined


def _check_key(rows: DataFrame, key: list[str], table: str, source_file: str) -> None:
    """The merge key is present on every row and unique (the rules and messages of the embedded engine)."""
    from pyspark.sql import functions as F

    empty = rows.agg(*[F.count(F.when(F.col(quoted(k)).isNull(), 1)).alias(f"k{i}") for i, k in enumerate(key)]).first()

    def repeated() -> tuple[dict[str, Any], int] | None:
        counted = rows.groupBy(*[F.col(quoted(k)).alias(f"k{i}") for i, k in enumerate(key)]).agg(F.count(F.lit(1)).alias("rows"))
        found = counted.where(F.col("rows") > 1).limit(1).collect()
        return ({k: found[0][f"k{i}"] for i, k in enumerate(key)}, found[0]["rows"]) if found else None

    check_key(table, source_file, {k: empty[f"k{i}"] for i, k in enumerate(key)}, repeated)


def _misfit(rows: DataFrame, bad: BadRows, data_file: DataFile) -> IngestError:
    """A value that does not fit the type its column is read with (a hint in ``ingest.types``): the file fails.

    ``rows`` are the file's, with the text of the rows Spark could not parse in :data:`CORRUPT`.
    """
    from pyspark.sql import functions as F

    from autoflux.ingest.readers.encoding import locate_lines

    ragged = [row.text for row in bad.rows]
    for row in rows.where(F.col(CORRUPT).isNotNull()).limit(len(ragged) + 1).collect():
        text = row[CORRUPT]
        if text in ragged:
            ragged.remove(text)
            continue
        return IngestError(
            f"a value does not fit its column's type in the row {text[:200]!r}",
            path=data_file.path,
            line=locate_lines(data_file.path, [text], bad.encoding)[0],
            hint="fix the value, or its type in ingest.types of autoflux.yml",
        )
    return IngestError("values do not fit their column's type", path=data_file.path, hint="check ingest.types in autoflux.yml")


# ------------------------------------------------------------------------------------ helpers


def aligned(frame: DataFrame, struct: StructType, keep: list[str] | tuple[str, ...] = ()) -> DataFrame:
    """``frame``'s columns as ``struct`` has them: cast to its types, null where ``frame`` lacks one, its metadata.

    The columns named in ``keep`` follow, as they are.
    """
    from autoflux.engines.spark.ingest import annotated, cast_sql, sql_type

    # one call for the schema: pyspark asks the JVM for it, and parses it whole, at each ``frame.schema``
    present = {field.name: field for field in frame.schema.fields}
    columns = []
    for field in struct.fields:
        found = present.get(field.name)
        value = (
            cast_sql(quoted(field.name), found.dataType, field.dataType)
            if found is not None
            else f"cast(null as {sql_type(field.dataType)})"
        )
        columns.append(f"{value} as {quoted(field.name)}")
    return annotated(frame.selectExpr(*columns, *map(quoted, keep)), [*struct.fields, *(present[name] for name in keep)])


def spark_struct(schema: pa.Schema, metadata: Mapping[str, dict[str, Any]] | None = None) -> StructType:
    """The Spark schema of an Arrow ``schema``; each field's metadata from ``metadata``, else its own."""
    from pyspark.sql.types import StructField, StructType

    from autoflux.engines.spark.ingest import spark_type

    fields = []
    for field in schema:
        own = {k.decode(): v.decode() for k, v in (field.metadata or {}).items()}
        fields.append(StructField(field.name, spark_type(field.type), True, (metadata or {}).get(field.name, own)))
    return StructType(fields)


def arrow_schema(struct: StructType, exclude: tuple[str, ...] = ()) -> pa.Schema:
    """The Arrow schema (lake types, metadata kept) of a Spark schema, without the columns in ``exclude``."""
    from autoflux.engines.spark.ingest import arrow_field

    return pa.schema([arrow_field(f) for f in struct.fields if f.name not in exclude])


def _metadata(frame: DataFrame, old: DataFrame | None) -> dict[str, dict[str, Any]]:
    """Column metadata (source name, comment): the file's where it has the column, else the table's."""
    found = {f.name: dict(f.metadata or {}) for f in old.schema.fields} if old is not None else {}
    found |= {f.name: dict(f.metadata or {}) for f in frame.schema.fields if f.metadata}
    return found


__all__ = ["aligned", "arrow_schema", "load", "spark_struct"]
