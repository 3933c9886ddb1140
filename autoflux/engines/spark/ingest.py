"""Ingest on Spark: Spark's own CSV, JSON and Parquet readers, AutoFlux's naming and typing rules.

Nothing is collected to the driver (but the text of CSV rows that cannot be parsed, for the
quarantine) and there is no pandas round trip, so a load scales with the cluster. The rules are those of :mod:`autoflux.ingest.schema`, applied to Spark types by way of
Arrow: a column's Spark type goes to Arrow, :func:`~autoflux.ingest.schema.lake_type` picks the
stored type, and that comes back to Spark.

CSV is read as the embedded engine reads it, with one decision for both
(:func:`~autoflux.ingest.readers.csv.sniff_csv`): AutoFlux finds the encoding, delimiter and header
names and whether a quoted value spans lines; Spark gets an explicit schema of text columns named
by position (the header line is skipped, never parsed for names, so blank and repeated names are
fine) and ``multiLine`` where quoted line breaks need it. Fields equal to one of
``ingest.csv.null_values`` are null. Each column then gets the embedded engine's type: the type
:func:`~autoflux.ingest.readers.csv.first_block_types` infers from the file's first block (from
every block of a file no bigger than :data:`TYPED_HERE_BYTES`, or of any size with a local master: its types are then
settled without a pass of Spark's, and its number columns written plainly in every value, with no null spelled
but as an empty field, no white space around a value and no infinity, are read as numbers by Spark's parser, which
reads those alike), checked
against every value in one aggregation — a value that does not fit (or would not read back as
written: a leading zero, a ``+``, an integer too long for a double) widens the column, int →
double → string, date → timestamp → string, as on the embedded engine. Integers are ``bigint``.
Hints in ``ingest.types`` win, and a value that does not fit one fails the load. Formats Spark has
no reader for (Excel, custom readers, zstd) go through AutoFlux's Arrow readers and reach Spark as Arrow.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.discover import partition_value
from autoflux.ingest.policy import RESCUED_COLUMN, rescue, rescued_json
from autoflux.ingest.readers import BadRow, BadRows
from autoflux.ingest.readers.csv import INFINITY_WORDS, LONG_INTEGER, CsvDialect, CsvOptions, first_block_types, sniff_csv
from autoflux.ingest.readers.encoding import read_head, split_suffixes
from autoflux.ingest.schema import (
    LINEAGE_COLUMNS,
    SOURCE_NAME_KEY,
    lake_type,
    unique_column_names,
    widen,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.rules import Lineage

SPARK_FORMATS = {"csv", "json", "parquet"}
# A CSV file up to this size is read whole by AutoFlux's reader, here, to type its columns: cheaper than a pass
# of Spark's over it, which is then needed only for type hints. With a local master, a file of any size is
# (LOCAL_TYPED_HERE_BYTES): the driver's cores are all the cluster has, and Arrow's reader types 1M rows
# (139 MB) in 0.7 s where Spark's pass takes 4.5 s (12 s in a new JVM).
TYPED_HERE_BYTES = 4 << 20
LOCAL_TYPED_HERE_BYTES = 1 << 62
SPARK_COMPRESSIONS = {None, "gzip", "bz2"}
FILE = "_autoflux_file"


def can_read(data_file: DataFile) -> bool:
    """Whether Spark's own readers take this file."""
    return data_file.format in SPARK_FORMATS and split_suffixes(data_file.path)[1] in SPARK_COMPRESSIONS


def read_file(
    spark: SparkSession,
    data_file: DataFile,
    *,
    options: CsvOptions,
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    table_types: Mapping[str, pa.DataType] | None = None,
    text: bool = False,
    corrupt: str | None = None,
) -> DataFrame:
    """The file as a DataFrame with clean names, lake types, hints applied and the lineage columns.

    CSV only: ``options`` are ``ingest.csv``'s; ``table_types`` (by clean name) are the types of
    the table the file loads into; a column is read with the type that holds both its own and the
    table's values (:func:`~autoflux.ingest.schema.widen`), so text stays text in a text column.
    ``text`` reads the columns without a hint as strings. ``corrupt`` names a column, after the
    lineage columns, that holds the text of each row with another number of fields than the header
    (its other values are then not to be used): Spark's PERMISSIVE mode.
    """
    path = data_file.path
    if not path.is_file():
        raise IngestError("the file is missing or not a regular file", path=path, hint="check the path")
    frame, names, as_text = _read(spark, data_file.format, [path], options, hints, table_types or {}, text, corrupt)
    kept = [corrupt] if corrupt and data_file.format == "csv" else []
    return conform(frame, names, hints, lineage, text=as_text, keep=kept)


def read_group(
    spark: SparkSession,
    data_files: Sequence[DataFile],
    *,
    options: CsvOptions,
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    partitions: Mapping[str, pa.DataType],
    table_types: Mapping[str, pa.DataType] | None = None,
    text: bool = False,
    corrupt: str | None = None,
) -> DataFrame:
    """Files of one grouped table and one shape (format; for CSV the dialect and header) read by ONE reader.

    As :func:`read_file`, and: ``_source_file`` is each row's file (its path relative to the
    source, ``data_file.relative``), and the files' Hive keys follow their columns, typed by
    ``partitions`` as the embedded engine types them. Classic Spark tells a row's file by
    ``_metadata.file_path``; Spark Connect on Sail has no such column, so there each file gets a
    reader of its own and the readers are one union.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    formats = {f.format for f in data_files}
    if len(formats) != 1:
        raise ValueError(f"files of one shape share a format, not {sorted(formats)}")
    paths = [f.path for f in data_files]
    frame, names, as_text = _read(spark, formats.pop(), paths, options, hints, table_types or {}, text, corrupt, by_file=True)
    keys = list(dict.fromkeys(k for f in data_files for k, _ in f.partition))
    source = "_autoflux_source"
    fields = [StructField(FILE, StringType()), StructField(source, StringType())]
    fields += [StructField(f"_autoflux_p{i}", spark_type(partitions.get(k, pa.string()))) for i, k in enumerate(keys)]
    by_path = {str(f.path): f for f in data_files}
    rows = []
    for key in _file_keys(spark, frame, paths):
        data_file = by_path[str(key_path(spark, key))]
        values = dict(data_file.partition)
        rows.append((key, data_file.relative, *(_partition_value(data_file, k, values.get(k), partitions) for k in keys)))
    files = spark.createDataFrame(rows, StructType(fields))
    kept = [c for c in frame.columns if c == corrupt]
    joined = frame.join(F.broadcast(files), on=FILE, how="inner")
    data = [quoted(c) for c in frame.columns[: len(names)]]
    ordered = joined.select(*data, *[f.name for f in fields[2:]], source, *kept)
    return conform(ordered, [*names, *keys], hints, lineage, text=as_text, keep=kept, source_column=source)


def key_path(spark: SparkSession, key: str) -> Path:
    """The local path of a file a row came from, by its :data:`FILE` key (a URI on classic Spark, the path on Sail)."""
    return Path(key) if _is_remote(spark) else Path(unquote(key))


def _file_keys(spark: SparkSession, frame: DataFrame, paths: list[Path]) -> list[str]:
    """The :data:`FILE` keys of ``frame``'s files (classic Spark: its file index; Sail: the paths)."""
    if _is_remote(spark):
        return [str(p) for p in paths]
    return [_uri_key(uri) for uri in frame.inputFiles()]


def _uri_key(uri: str) -> str:
    import re

    return re.sub(r"^file:/*", "/", uri)


def _partition_value(data_file: DataFile, key: str, value: str | None, partitions: Mapping[str, pa.DataType]) -> Any:
    """A Hive folder value as its key's type (``partitions``, text by default), as a Python value."""
    return None if value is None else partition_value(data_file, key, value, partitions.get(key, pa.string())).as_py()


def _read(
    spark: SparkSession,
    data_format: str,
    paths: list[Path],
    options: CsvOptions,
    hints: Mapping[str, pa.DataType],
    table_types: Mapping[str, pa.DataType],
    text: bool,
    corrupt: str | None,
    *,
    by_file: bool = False,
) -> tuple[DataFrame, list[str], bool]:
    """The files' columns (and ``corrupt``, and with ``by_file`` each row's :data:`FILE` key), their source names, and
    whether they were read as text."""
    if data_format == "csv":
        return _read_csv(spark, paths, options, hints, table_types, text, corrupt, by_file)
    frame = _read_json(spark, paths, by_file) if data_format == "json" else _read_parquet(spark, paths, by_file)
    return frame, [c for c in frame.columns if c != FILE], data_format == "json"


def _scan(spark: SparkSession, read: Callable[[list[str]], DataFrame], paths: list[Path], by_file: bool) -> DataFrame:
    """``read`` over ``paths``; with ``by_file``, each row's :data:`FILE` key last."""
    from pyspark.sql import functions as F

    if not by_file:
        return read([str(p) for p in paths])
    if _is_remote(spark):  # Sail has neither input_file_name() nor _metadata: a reader per file, one union
        frames = [read([str(p)]).withColumn(FILE, F.lit(str(p))) for p in paths]
        return reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)
    frame = read([str(p) for p in paths])
    return frame.withColumn(FILE, F.regexp_replace(F.col("_metadata.file_path"), "^file:/*", "/"))


def conform(
    frame: DataFrame,
    source_names: list[str],
    hints: Mapping[str, pa.DataType],
    lineage: Lineage,
    *,
    text: bool = False,
    keep: list[str] | tuple[str, ...] = (),
    source_column: str | None = None,
) -> DataFrame:
    """Rename, retype and annotate ``frame``'s columns by the ingest rules; append the lineage columns.

    The columns named in ``keep`` (after the file's) come last, as they are. ``source_column`` names
    the column that holds ``_source_file`` (default: ``lineage.source_file`` on every row).
    """
    from pyspark.sql.types import ByteType, IntegerType, LongType, ShortType, StringType, StructField, TimestampType

    present = frame.schema.fields  # once: pyspark asks the JVM at each frame.schema or frame.columns
    columns, fields = [], []
    for field, source, clean in zip(present[: len(source_names)], source_names, unique_column_names(source_names), strict=True):
        hinted = hints.get(clean) or hints.get(source)
        if hinted is not None:
            target = spark_type(hinted)
        elif text and isinstance(field.dataType, IntegerType | ShortType | ByteType):
            target = LongType()
        else:
            target = lake_spark_type(field.dataType)
        columns.append(f"{cast_sql(quoted(field.name), field.dataType, target)} as {quoted(clean)}")
        fields.append(StructField(clean, target, True, {SOURCE_NAME_KEY: source, "comment": f"source column {source!r}"}))
    source_file = _sql_string(lineage.source_file) if source_column is None else quoted(source_column)
    lineage_values = [_sql_string(lineage.load_id), source_file, f"cast({_sql_string(lineage.ingested_at.isoformat())} as timestamp)"]
    columns += [f"{value} as {name}" for value, name in zip(lineage_values, LINEAGE_COLUMNS, strict=True)]
    fields += [
        StructField(name, kind, True) for name, kind in zip(LINEAGE_COLUMNS, (StringType(), StringType(), TimestampType()), strict=True)
    ]
    by_name = {f.name: f for f in present}
    return annotated(frame.selectExpr(*columns, *map(quoted, keep)), [*fields, *(by_name[name] for name in keep)])


def annotated(frame: DataFrame, fields: list[Any]) -> DataFrame:
    """``frame`` (whose columns are ``fields``, in order, of the same types) with the ``fields``' metadata.

    One call for all the columns (``DataFrame.to``): a wide file's columns would otherwise cost several calls into the JVM each.
    """
    from pyspark.sql.types import StructType

    return frame.to(StructType(fields))


def cast_sql(column: str, current: Any, target: Any) -> str:
    """SQL: ``column`` (of Spark type ``current``) as ``target``."""
    return column if current == target else f"cast({column} as {sql_type(target)})"


def quoted(name: str) -> str:
    """``name`` as a Spark column reference, whatever characters it holds."""
    return "`" + name.replace("`", "``") + "`"


def sql_type(data_type: Any) -> str:
    """A Spark type as SQL text; field names of nested structs quoted (``simpleString`` leaves them bare)."""
    from pyspark.sql.types import ArrayType, MapType, StructType

    if isinstance(data_type, StructType):
        return f"struct<{','.join(f'{quoted(f.name)}:{sql_type(f.dataType)}' for f in data_type.fields)}>"
    if isinstance(data_type, ArrayType):
        return f"array<{sql_type(data_type.elementType)}>"
    if isinstance(data_type, MapType):
        return f"map<{sql_type(data_type.keyType)},{sql_type(data_type.valueType)}>"
    return data_type.simpleString()


def lake_spark_type(data_type: Any) -> Any:
    """The Spark type a column of ``data_type`` is stored as: :func:`lake_type` through Arrow."""
    from pyspark.sql.pandas.types import to_arrow_type

    try:
        arrow = to_arrow_type(data_type, timezone="UTC")
    except Exception:
        from pyspark.sql.types import StringType

        return StringType()
    return spark_type(lake_type(arrow))


def arrow_field(field: Any) -> pa.Field:
    """A Spark ``StructField`` as an Arrow field (timestamps in UTC), its metadata kept."""
    from pyspark.sql.pandas.types import to_arrow_type

    metadata = {k: str(v) for k, v in (field.metadata or {}).items()}
    return pa.field(field.name, to_arrow_type(field.dataType, timezone="UTC"), nullable=True, metadata=metadata or None)


def spark_type(arrow_type: pa.DataType) -> Any:
    from pyspark.sql.pandas.types import from_arrow_type

    return from_arrow_type(arrow_type, prefer_timestamp_ntz=False)


def _csv_options(dialect: CsvDialect, *, remote: bool) -> dict[str, str]:
    r"""Spark's CSV options for a file of ``dialect``: its header is skipped, never read for names or types.

    Quoted values over several lines need ``multiLine`` on classic Spark, which then parses with
    ``\n`` as the line separator so that a ``\r\n`` inside quotes is kept as written (a ``\r``
    ending each row of a ``\r\n`` file is taken off the last column afterwards: :func:`_texts`).
    Sail reads quoted line breaks as written in either mode.
    """
    options = {
        "header": "true",
        "enforceSchema": "true",
        "sep": dialect.delimiter,
        "encoding": dialect.encoding,
        "quote": '"',
        "escape": '"',
        "multiLine": "true" if dialect.quoted_line_breaks else "false",
        "mode": "FAILFAST",
        "maxColumns": str(max(20480, len(dialect.names) + 2)),
        "ignoreLeadingWhiteSpace": "false",
        "ignoreTrailingWhiteSpace": "false",
    }
    if dialect.quoted_line_breaks and not remote and dialect.line_end in ("\n", "\r\n"):
        options["lineSep"] = "\n"
    return options


def _strips_cr(dialect: CsvDialect, options: Mapping[str, str]) -> bool:
    return options.get("lineSep") == "\n" and dialect.line_end == "\r\n"


def _is_remote(spark: SparkSession) -> bool:
    return type(spark).__module__.startswith("pyspark.sql.connect")


def _local_master(spark: SparkSession) -> bool:
    """Whether Spark runs in this machine's JVM (``local[...]``); a Spark Connect server may be anywhere."""
    return not _is_remote(spark) and spark.sparkContext.master.startswith("local")


def _texts(
    positional: list[str], dialect: CsvDialect, options: Mapping[str, str], null_values: tuple[str, ...], native: Collection[int] = ()
) -> list[str]:
    """SQL: each column's text as the embedded engine keeps it: null where it is one of ``null_values``, else as written.
    The ``native`` columns (positions) are Spark's numbers, as they are.

    Columns are built as SQL text, all selected in one call (``selectExpr``): a wide file's columns
    would otherwise cost several calls into the JVM each.
    """
    nulls = ", ".join(_sql_string(v) for v in null_values)
    columns = []
    for index, name in enumerate(positional):
        column = name
        if index in native:
            columns.append(name)
            continue
        if index == len(positional) - 1 and _strips_cr(dialect, options):
            column = f"regexp_replace({column}, {_sql_string(chr(13) + '$')}, '')"
        if "" not in null_values:  # Spark reads an empty field as null: it is text here
            column = f"coalesce({column}, '')"
        if null_values:
            column = f"case when {column} in ({nulls}) then cast(null as string) else {column} end"
        columns.append(f"{column} as {name}")
    return columns


def _sql_string(text: str) -> str:
    """``text`` as a Spark SQL string literal (Spark SQL unescapes backslash sequences in literals)."""
    for char, escaped in (("\\", "\\\\"), ("'", "\\'"), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")):
        text = text.replace(char, escaped)
    return f"'{text}'"


# What the embedded engine (Arrow's inference, then the values-as-written rules) reads as each type.
# A number as written: no sign +, no leading zero (a lone 0 is one); an integer is -?(0|[1-9][0-9]*), a
# fraction not 16 digits or more without a point (more than a double holds exactly). No look-around:
# Sail's regular expressions have none.
_FRACTION = r"^-?((0|[1-9][0-9]*)([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]+)?$"
_DOUBLE_MAX = "1.7976931348623157E308"
_INFINITIES = [f"{sign}{word}" for sign in ("", "-") for word in INFINITY_WORDS]  # any case; a + is kept as written
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}(:[0-9]{2}(:[0-9]{2}([.][0-9]{1,9})?)?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
_SPACES = " \t\n\r\x0b\f"  # white space around a number, as Java's \\s and Arrow's reader take it
_TRUE = ("1", "True", "TRUE", "true")
_FALSE = ("0", "False", "FALSE", "false")


def _chain(first: pa.DataType) -> list[pa.DataType]:
    """The types a column read as ``first`` (from the file's first block) may widen to, narrowest first."""
    if pa.types.is_integer(first):
        return [pa.int64(), pa.float64(), pa.string()]
    if pa.types.is_floating(first):
        return [pa.float64(), pa.string()]
    if pa.types.is_date(first):
        return [pa.date32(), pa.timestamp("us", tz="UTC"), pa.string()]
    if pa.types.is_timestamp(first):
        return [pa.timestamp("us", tz="UTC"), pa.string()]
    if pa.types.is_boolean(first):
        return [pa.bool_(), pa.string()]
    return [pa.string()]


def _trimmed(column: str) -> str:
    """SQL: the text ``column`` without white space around it (spaces around a number are not part of it, as Arrow reads it)."""
    return f"trim(both {_sql_string(_SPACES)} from {column})"


def _fits(column: str, kind: pa.DataType) -> str:
    """SQL: whether the (non-null) text ``column`` reads as ``kind`` and back as written, as on the embedded engine.

    A number is checked in ``column`` as it is: give :func:`_trimmed` text.
    """
    if pa.types.is_integer(kind):  # as written: a bigint's own text (or -0), cheaper to check than a regular expression
        return f"(coalesce(cast(try_cast({column} as bigint) as string) = {column}, false) or {column} = '-0')"
    if pa.types.is_floating(kind):
        long = f"(length({column}) > 15 and {column} rlike {_sql_string(LONG_INTEGER)})"
        # 1E400 reads as infinity: beyond a double's range, kept as written; inf and -Infinity spell one
        number = f"({column} rlike {_sql_string(_FRACTION)} and not {long} and abs(try_cast({column} as double)) <= {_DOUBLE_MAX})"
        return f"({number} or lower({column}) in ({', '.join(map(_sql_string, _INFINITIES))}))"
    if pa.types.is_date(kind):
        return f"({column} rlike {_sql_string(_DATE)} and try_cast({column} as date) is not null)"
    if pa.types.is_timestamp(kind):
        return f"({column} rlike {_sql_string(_TIMESTAMP)} and try_cast({column} as timestamp) is not null)"
    if pa.types.is_boolean(kind):
        return f"{column} in ({', '.join(_sql_string(v) for v in (*_TRUE, *_FALSE))})"
    return "true"


def _typed(column: str, kind: pa.DataType) -> str:
    """SQL: the text ``column`` (whose values fit ``kind``) as ``kind``."""
    if pa.types.is_string(kind):
        return column
    if pa.types.is_boolean(kind):
        true, false = (", ".join(_sql_string(v) for v in values) for values in (_TRUE, _FALSE))
        return f"case when {column} in ({true}) then true when {column} in ({false}) then false end"
    return f"cast(trim({column}) as {spark_type(kind).simpleString()})"


def _settle_types(
    texts: DataFrame,
    positional: list[str],
    candidates: list[list[pa.DataType]],
    hinted: dict[int, pa.DataType],
    path: Path | str,
    clean: list[str],
) -> list[pa.DataType]:
    """Each column's type: the first of its ``candidates`` every value fits.

    One pass checks every column against its first candidate (the type the first block gave) and its
    hint; only a column with a value that does not fit is checked against its next candidate, in
    another pass. A hinted column (``hinted``: position → type) must fit its hint: a value that does
    not fails the load, naming its file (by :data:`FILE` when ``texts`` has it, else ``path``).
    """
    by_file = FILE in texts.columns
    types = dict(hinted)
    rank = {i: 0 for i in range(len(candidates)) if i not in hinted}  # the candidate each open column is checked against
    checks = []  # SQL text, all selected in one call (see _texts)
    for index, hint in hinted.items():
        if not pa.types.is_string(hint):
            column = positional[index]
            misfit = f"{column} is not null and try_cast({column} as {spark_type(hint).simpleString()}) is null"
            found = f"named_struct('v', {column}, 'f', {FILE})" if by_file else column
            checks.append(f"first(case when {misfit} then {found} end, true) as h{index}")
    while True:
        for index in [i for i, r in rank.items() if r == len(candidates[i]) - 1]:
            types[index] = candidates[index][rank.pop(index)]  # text: every value fits
        numbers = []
        for index, r in rank.items():
            column, kind = positional[index], candidates[index][r]
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                numbers.append(f"{_trimmed(column)} as t{index}")  # trimmed once a row, in a projection
                checked = f"t{index}"
            else:
                checked = column
            checks.append(f"count(case when {column} is not null and not {_fits(checked, kind)} then 1 end) as m{index}")
        if not checks:
            return [types[i] for i in range(len(candidates))]
        try:
            found = texts.selectExpr("*", *numbers).selectExpr(*checks).first().asDict()
        except Exception as error:
            raise read_error(error, path) from None
        checks = []
        for index in hinted:
            if (value := found.get(f"h{index}")) is not None:
                if by_file:
                    path, value = key_path(texts.sparkSession, value["f"]), value["v"]
                raise IngestError(
                    f"value {value!r} is not a {hinted[index]} as the type hint says",
                    path=path,
                    column=clean[index],
                    hint="fix the value or change ingest.types in autoflux.yml",
                )
        for index in list(rank):
            if found[f"m{index}"]:
                rank[index] += 1  # a value does not fit: the next candidate, in the next pass
            else:
                types[index] = candidates[index][rank.pop(index)]


def _read_csv(
    spark: SparkSession,
    paths: list[Path],
    options: CsvOptions,
    hints: Mapping[str, pa.DataType],
    table_types: Mapping[str, pa.DataType],
    text: bool,
    corrupt: str | None,
    by_file: bool = False,
):
    """The files' columns, typed as the embedded engine types them (see the module docstring).

    Several ``paths`` share the first one's dialect and header; the first block of the first one
    gives the types each column may have, checked against every value of every file.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    path = paths[0] if len(paths) == 1 else f"{len(paths)} files of one group"
    dialect = sniff_csv(paths[0], options, scan=True)
    names = list(dialect.names)
    clean = unique_column_names(names)
    positional = [f"c{i}" for i in range(len(names))]
    spark_options = _csv_options(dialect, remote=_is_remote(spark))
    hinted = {i: h for i, (c, n) in enumerate(zip(clean, names, strict=True)) if (h := hints.get(c) or hints.get(n)) is not None}
    native: dict[int, pa.DataType] = {}  # position → type: columns Spark's parser types (the driver read every value)
    if text:
        candidates = [[pa.string()] for _ in names]
    else:
        whole = len(paths) == 1 and paths[0].stat().st_size <= (LOCAL_TYPED_HERE_BYTES if _local_master(spark) else TYPED_HERE_BYTES)
        typing = first_block_types(paths[0], options, every_block=whole)  # plain numbers only when whole
        candidates = [_chain(t)[: 1 if whole else None] for t in typing.types]
        last = len(names) - 1 if _strips_cr(dialect, spark_options) else None
        native = {
            i: typing.types[i]
            for i in typing.plain_numbers
            if i not in hinted and i != last and (clean[i] not in table_types or widen(table_types[clean[i]], typing.types[i]) is None)
        }
    fields = [StructField(p, spark_type(native[i]) if i in native else StringType()) for i, p in enumerate(positional)]
    if corrupt:
        fields.append(StructField(corrupt, StringType()))
        spark_options |= {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": corrupt}
    raw = _scan(spark, lambda ps: spark.read.options(**spark_options).schema(StructType(fields)).csv(ps), paths, by_file)
    kept = [quoted(c) for c in (corrupt, FILE if by_file else None) if c]
    texts = raw.selectExpr(*_texts(positional, dialect, spark_options, options.null_values, native), *kept)
    parsed = texts.where(F.col(corrupt).isNull()) if corrupt else texts
    types = _settle_types(parsed, positional, candidates, hinted, path, clean)
    for index, name in enumerate(clean):
        if index not in hinted and name in table_types and (wider := widen(table_types[name], types[index])) is not None:
            types[index] = wider
    columns = [p if i in native else f"{_typed(p, t)} as {p}" for i, (p, t) in enumerate(zip(positional, types, strict=True))]
    return texts.selectExpr(*columns, *kept), names, True


def bad_rows(spark: SparkSession, path: Path, options: CsvOptions, corrupt: str) -> BadRows:
    """The CSV rows with another number of fields than the header, with the reason (one more pass over the file)."""
    import csv

    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType, StructField, StructType

    dialect = sniff_csv(path, options, scan=True)
    names = dialect.names
    spark_options = _csv_options(dialect, remote=_is_remote(spark)) | {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": corrupt}
    schema = StructType([*(StructField(f"c{i}", StringType()) for i in range(len(names))), StructField(corrupt, StringType())])
    frame = spark.read.options(**spark_options).schema(schema).csv(str(path))
    try:
        rows = frame.where(F.col(corrupt).isNotNull()).collect()  # every column: Spark parses all fields then
    except Exception as error:
        raise read_error(error, path) from None
    found = BadRows(path, dialect.encoding)
    for row in rows:
        text = row[corrupt]
        if _strips_cr(dialect, spark_options):
            text = text.removesuffix("\r")
        fields = len(next(csv.reader([text], delimiter=dialect.delimiter, quotechar='"', doublequote=True), []))
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


def _read_json(spark: SparkSession, paths: list[Path], by_file: bool = False) -> DataFrame:
    path = paths[0] if len(paths) == 1 else f"{len(paths)} files of one group"
    head = read_head(paths[0], 1 << 16).lstrip()
    if not head:
        raise IngestError("the file is empty", path=paths[0], hint="remove it or replace it with data")
    array = head[:1] == b"["
    frame = _scan(spark, lambda ps: spark.read.options(multiLine=str(array).lower(), mode="FAILFAST").json(ps), paths, by_file)
    try:
        columns = [c for c in frame.columns if c != FILE]
    except Exception as error:
        raise read_error(error, path) from None
    if "_corrupt_record" in columns:
        if by_file:
            row = frame.where(frame["_corrupt_record"].isNotNull()).select(FILE).first()
            path = key_path(spark, row[0]) if row else path
        raise IngestError("invalid JSON", path=path, hint="one JSON object per line, or one array of objects, is expected")
    first = _first_keys(head, array)
    ordered = [c for c in first if c in columns] + [c for c in columns if c not in first]
    return frame.select(*[quoted(c) for c in ordered], *([FILE] if by_file else []))


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


def _read_parquet(spark: SparkSession, paths: list[Path], by_file: bool = False) -> DataFrame:
    path = paths[0] if len(paths) == 1 else f"{len(paths)} files of one group"
    frame = _scan(spark, lambda ps: spark.read.parquet(*ps), paths, by_file)
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
