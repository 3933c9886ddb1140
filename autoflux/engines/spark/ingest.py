"""Ingest on Spark: Spark's own CSV, JSON and Parquet readers, AutoFlux's naming and typing rules.

Nothing is collected to the driver (but the text of CSV rows that cannot be parsed, for the
quarantine) and there is no pandas round trip, so a load scales with the cluster. The rules are those of :mod:`autoflux.ingest.schema`, applied to Spark types by way of
Arrow: a column's Spark type goes to Arrow, :func:`~autoflux.ingest.schema.lake_type` picks the
stored type, and that comes back to Spark. CSV types are inferred from the file's first 4 MiB (as
the embedded engine infers from its first block); when a later value does not fit, the load is
done again with types inferred over all values (Spark's inference pass). Integers read from text
are ``bigint``, as on the embedded engine. Hints in ``ingest.types`` win, and a value that does not fit one fails
the load. Formats Spark has no reader for (Excel, custom readers, zstd) go through AutoFlux's
Arrow readers and reach Spark as Arrow.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.policy import RESCUED_COLUMN, rescue, rescued_json, widen
from autoflux.ingest.readers import (
    BadRow,
    BadRows,
    _csv_header,
    detect_delimiter,
    detect_encoding,
    read_head,
    split_suffixes,
)
from autoflux.ingest.schema import (
    LINEAGE_COLUMNS,
    SOURCE_NAME_KEY,
    lake_type,
    unique_column_names,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.writer import Lineage

SPARK_FORMATS = {"csv", "json", "parquet"}
SPARK_COMPRESSIONS = {None, "gzip", "bz2"}
SAMPLE_BYTES = 4 << 20


@dataclass(frozen=True)
class CsvDialect:
    delimiter: str | None = None
    encoding: str | None = None


def can_read(data_file: DataFile) -> bool:
    """Whether Spark's own readers take this file."""
    return data_file.format in SPARK_FORMATS and split_suffixes(data_file.path)[1] in SPARK_COMPRESSIONS


def read_file(
    spark: SparkSession,
    data_file: DataFile,
    *,
    dialect: CsvDialect,
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    sample: bool = True,
    table_types: Mapping[str, pa.DataType] | None = None,
    text: bool = False,
    corrupt: str | None = None,
) -> DataFrame:
    """The file as a DataFrame with clean names, lake types, hints applied and the lineage columns.

    With ``sample`` (classic Spark), CSV types are inferred from the file's first
    :data:`SAMPLE_BYTES` only, which saves a pass over the file; a value further on that does not
    fit fails the load, and the caller reads again with ``sample=False`` (types over all values).

    CSV only: ``table_types`` (by clean name) are the types of the table the file loads into; a
    column is read with the type that holds both its own and the table's values
    (:func:`~autoflux.ingest.policy.widen`), so text stays text in a text column. ``text`` reads
    the columns without a hint as strings. ``corrupt`` names a column, after the lineage columns,
    that holds the text of each row Spark cannot parse (its other values are then not to be
    used): PERMISSIVE mode, where a row with the wrong number of fields or a value that does not
    fit its type is such a row.
    """
    path = data_file.path
    if not path.is_file():
        raise IngestError("the file is missing or not a regular file", path=path, hint="check the path")
    if data_file.format == "csv":
        frame, names, as_text = _read_csv(spark, path, dialect, hints, sample, table_types or {}, text, corrupt)
    elif data_file.format == "json":
        frame, names, as_text = _read_json(spark, path), None, True
    else:
        frame, names, as_text = _read_parquet(spark, path), None, False
    kept = [corrupt] if corrupt and data_file.format == "csv" else []
    data_names = names or [c for c in frame.columns if c not in kept]
    return conform(frame, data_names, hints, lineage, text=as_text, keep=kept)


def conform(
    frame: DataFrame,
    source_names: list[str],
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    *,
    text: bool = False,
    keep: list[str] | tuple[str, ...] = (),
) -> DataFrame:
    """Rename, retype and annotate ``frame``'s columns by the ingest rules; append the lineage columns.

    The columns named in ``keep`` (after the file's) come last, as they are.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType

    columns = []
    fields = frame.schema.fields[: len(source_names)]
    for index, (field, source, clean) in enumerate(zip(fields, source_names, unique_column_names(source_names), strict=True)):
        hinted = hints.get(clean) or hints.get(source)
        if hinted is not None:
            target = spark_type(hinted)
        elif text and isinstance(field.dataType, IntegerType | ShortType | ByteType):
            target = LongType()
        else:
            target = lake_spark_type(field.dataType)
        metadata = {SOURCE_NAME_KEY: source, "comment": f"source column {source!r}"}
        column = F.col(quoted(frame.columns[index]))
        if target != field.dataType:
            column = column.cast(target)
        columns.append(column.alias(clean, metadata=metadata))
    lineage_values = [
        F.lit(lineage.load_id).alias(LINEAGE_COLUMNS[0]),
        F.lit(lineage.source_file).alias(LINEAGE_COLUMNS[1]),
        F.lit(lineage.ingested_at).cast("timestamp").alias(LINEAGE_COLUMNS[2]),
    ]
    return frame.select(*columns, *lineage_values, *[F.col(quoted(name)) for name in keep])


def quoted(name: str) -> str:
    """``name`` as a Spark column reference, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"


def lake_spark_type(data_type: Any) -> Any:
    """The Spark type a column of ``data_type`` is stored as: :func:`lake_type` through Arrow."""
    from pyspark.sql.pandas.types import to_arrow_type

    try:
        arrow = to_arrow_type(data_type, timezone="UTC")
    except Exception:
        from pyspark.sql.types import StringType

        return StringType()
    return spark_type(lake_type(arrow))


def spark_type(arrow_type: pa.DataType) -> Any:
    from pyspark.sql.pandas.types import from_arrow_type

    return from_arrow_type(arrow_type, prefer_timestamp_ntz=False)


def _csv_options(path: Path, dialect: CsvDialect) -> tuple[dict[str, str], list[str], str, str]:
    """Spark's CSV options for the file, its header's names, encoding and delimiter."""
    head = read_head(path)
    if not head.strip():
        raise IngestError("the file is empty", path=path, hint="remove it or replace it with data")
    encoding = dialect.encoding or detect_encoding(path, head)
    delimiter = dialect.delimiter or detect_delimiter(path, head.decode(encoding, errors="replace"))
    names = _csv_header(path, head, encoding, delimiter)
    options = {
        "header": "true",
        "sep": delimiter,
        "encoding": encoding,
        "quote": '"',
        "escape": '"',
        "multiLine": "false",
        "mode": "FAILFAST",
        "enforceSchema": "true",
    }
    return options, names, encoding, delimiter


def _read_csv(
    spark: SparkSession,
    path: Path,
    dialect: CsvDialect,
    hints: Mapping[str, pa.DataType],
    sample: bool,
    table_types: Mapping[str, pa.DataType],
    text: bool,
    corrupt: str | None,
):
    from pyspark.sql.types import StringType, StructField, StructType

    options, names, _, _ = _csv_options(path, dialect)
    positional = [f"c{i}" for i in range(len(names))]
    clean = unique_column_names(names)
    if text or all((c in hints or n in hints) for c, n in zip(clean, names, strict=True)):
        inferred = StructType([StructField(p, StringType()) for p in positional])
    elif sample and not type(spark).__module__.startswith("pyspark.sql.connect"):
        lines = _sample_lines(path, options["encoding"])
        rows = spark.sparkContext.parallelize(lines, 1)
        inferred = _infer(spark.read.options(**options, inferSchema="true").csv(rows), positional, path)
    else:
        inferred = _infer(spark.read.options(**options, inferSchema="true").csv(str(path)), positional, path)
    fields = []
    for field, source, name in zip(inferred.fields, names, clean, strict=True):
        hinted = hints.get(name) or hints.get(source)
        if hinted is not None:
            data_type = spark_type(hinted)
        elif name in table_types and (wider := widen(table_types[name], _csv_arrow_type(field.dataType))) is not None:
            data_type = spark_type(wider)
        else:
            data_type = field.dataType
        fields.append(StructField(field.name, data_type))
    if corrupt:
        fields.append(StructField(corrupt, StringType()))
        options |= {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": corrupt}
    frame = spark.read.options(**options).schema(StructType(fields)).csv(str(path))
    return frame, names, True


def _csv_arrow_type(data_type: Any) -> pa.DataType:
    """The lake type of a column Spark inferred from CSV text (integers are ``bigint``, as :func:`conform` stores them)."""
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType

    if isinstance(data_type, ByteType | ShortType | IntegerType | LongType):
        return pa.int64()
    from pyspark.sql.pandas.types import to_arrow_type

    return lake_type(to_arrow_type(data_type, timezone="UTC"))


def bad_rows(spark: SparkSession, path: Path, dialect: CsvDialect, corrupt: str) -> BadRows:
    """The CSV rows with another number of fields than the header, with the reason (one more pass over the file)."""
    import csv

    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    options, names, encoding, delimiter = _csv_options(path, dialect)
    options |= {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": corrupt}
    schema = StructType([*(StructField(f"c{i}", StringType()) for i in range(len(names))), StructField(corrupt, StringType())])
    frame = spark.read.options(**options).schema(schema).csv(str(path))
    try:
        rows = frame.where(F.col(corrupt).isNotNull()).collect()  # every column: Spark parses all fields then
    except Exception as error:
        raise read_error(error, path) from None
    found = BadRows(path, encoding)
    for row in rows:
        text = row[corrupt]
        fields = len(next(csv.reader([text], delimiter=delimiter, quotechar='"', doublequote=True), []))
        if fields != len(names):
            found.rows.append(BadRow(f"a row has {fields} fields where the header has {len(names)}", text))
    return found


def rescue_batches(
    batches: Iterator[pa.RecordBatch], *, fields: list[pa.Field], names: list[str], passed: list[str], count: str
) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: the file's columns ``names`` in the table's ``fields`` by :func:`~autoflux.ingest.policy.rescue`.

    Yields the fields, ``_rescued_data``, ``count`` (values rescued per row) and the ``passed`` columns as they are.
    """
    for batch in batches:
        length = batch.num_rows
        arrays, rescued = rescue({name: batch.column(name) for name in names}, fields, length)
        counts = pa.array([len(rescued.get(i, ())) for i in range(length)], pa.int32())
        passed_arrays = [batch.column(name) for name in passed]
        yield pa.RecordBatch.from_arrays(
            [*arrays, rescued_json(rescued, length), counts, *passed_arrays],
            names=[*(f.name for f in fields), RESCUED_COLUMN, count, *passed],
        )


def _sample_lines(path: Path, encoding: str) -> list[str]:
    """The file's first lines (at most :data:`SAMPLE_BYTES`, whole lines only), header included."""
    head = read_head(path, SAMPLE_BYTES)
    lines = head.decode(encoding, errors="replace").lstrip("\ufeff").splitlines()
    return lines[:-1] if len(head) >= SAMPLE_BYTES and len(lines) > 2 else lines


def _infer(frame: DataFrame, positional: list[str], path: Path):
    from pyspark.sql.types import StructField, StructType

    try:
        schema = frame.schema
    except Exception as error:
        raise read_error(error, path) from None
    if len(schema.fields) != len(positional):
        raise IngestError(
            f"the header has {len(positional)} fields but Spark found {len(schema.fields)}",
            path=path,
            hint="check the delimiter (ingest.csv.delimiter) and the quoting of the header",
        )
    return StructType([StructField(p, f.dataType) for p, f in zip(positional, schema.fields, strict=True)])


def _read_json(spark: SparkSession, path: Path) -> DataFrame:
    head = read_head(path, 1 << 16).lstrip()
    if not head:
        raise IngestError("the file is empty", path=path, hint="remove it or replace it with data")
    array = head[:1] == b"["
    frame = spark.read.options(multiLine=str(array).lower(), mode="FAILFAST").json(str(path))
    try:
        columns = frame.columns
    except Exception as error:
        raise read_error(error, path) from None
    if "_corrupt_record" in columns:
        raise IngestError("invalid JSON", path=path, hint="one JSON object per line, or one array of objects, is expected")
    first = _first_keys(head, array)
    ordered = [c for c in first if c in columns] + [c for c in columns if c not in first]
    return frame.select(*[quoted(c) for c in ordered])


def _first_keys(head: bytes, array: bool) -> list[str]:
    """The keys of the first record, in file order (Spark sorts inferred JSON fields by name)."""
    text = head.decode("utf-8", errors="replace")
    try:
        if array:
            decoder = json.JSONDecoder()
            record, _ = decoder.raw_decode(text[1:].lstrip())
        else:
            record = json.loads(next(line for line in io.StringIO(text) if line.strip()))
    except (ValueError, StopIteration):
        return []
    return list(record) if isinstance(record, dict) else []


def _read_parquet(spark: SparkSession, path: Path) -> DataFrame:
    frame = spark.read.parquet(str(path))
    try:
        frame.schema  # noqa: B018 - reads the footer now, so a bad file fails here
    except Exception as error:
        raise IngestError(f"not a readable Parquet file ({first_line(error)})", path=path, hint="check the file is complete") from None
    return frame


def read_error(error: BaseException, path: Path | str) -> IngestError:
    """A Spark read or write failure as an IngestError naming the file (and the value, when Spark says)."""
    message = first_line(error)
    cause = _root_cause(error)
    if "MALFORMED_RECORD" in message or "Malformed" in message or "CANNOT_PARSE" in message:
        detail = f": {cause}" if cause and cause not in message else ""
        return IngestError(
            f"a row cannot be parsed{detail}",
            path=path,
            hint="fix the row (fields per row, quoting), or the value, or its type in ingest.types of autoflux.yml",
        )
    return IngestError(f"Spark failed to load the file: {message}", path=path, hint="check that it is complete and well-formed")


def _root_cause(error: BaseException) -> str:
    text = str(error)
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith(("Caused by:", "org.apache", "java.")) and ":" in line:
            return line.split(":", 2)[-1].strip()[:200]
    return ""


def first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return text[:400]
