"""One definition of the naming and typing rules, shared by every engine that ingests.

Names: table and column names become ``snake_case`` ASCII identifiers, never empty, never
starting with a digit or an underscore (the ``_`` prefix belongs to AutoFlux's lineage
columns), made unique with ``_2``, ``_3`` … suffixes. The original name is kept in the Delta
field metadata (``autoflux.source_name``) and as the column comment.

Types: every column is mapped to a type Delta Lake (and so Spark, DuckDB and PostgreSQL) can
store — unsigned integers widen to signed ones, timestamps become microsecond UTC, columns
with no values become strings, ``time`` becomes string. A per-column hint in config wins.

Widening: when one column must hold values of two types (a table and a file, or a file's early
and late values), :func:`widen` gives the one type that holds both.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping

import pyarrow as pa

from autoflux.exceptions import ConfigError

LINEAGE_COLUMNS = ("_load_id", "_source_file", "_ingested_at")
SOURCE_NAME_KEY = "autoflux.source_name"

_FOLD = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "Ae", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "Oe", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D"})
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_WORD = re.compile(r"[^0-9a-zA-Z]+")


def snake_case(name: str) -> str:
    """``"Annual Income ($)"`` → ``"annual_income"``, ``"PassengerId"`` → ``"passenger_id"``.

    Accents are folded to ASCII (``ß`` → ``ss``, ``ø`` → ``o`` …), other characters become ``_``;
    the result may be empty.
    """
    ascii_name = unicodedata.normalize("NFKD", name.translate(_FOLD)).encode("ascii", "ignore").decode()
    words = _NOT_WORD.sub("_", _CAMEL_BOUNDARY.sub("_", ascii_name))
    return words.strip("_").lower()


def identifier(name: str, *, fallback: str) -> str:
    """A safe identifier for ``name``: snake_case, ``fallback`` when empty, never starting with a digit."""
    cleaned = snake_case(name) or fallback
    return f"c_{cleaned}" if cleaned[0].isdigit() else cleaned


def unique_column_names(names: Iterable[str]) -> list[str]:
    """Normalise column names and make them unique; blank names become ``column_<position>``."""
    result: list[str] = []
    taken: set[str] = set(LINEAGE_COLUMNS)
    for position, name in enumerate(names, start=1):
        base = identifier(name, fallback=f"column_{position}")
        candidate, suffix = base, 2
        while candidate in taken:
            candidate, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(candidate)
        result.append(candidate)
    return result


_HINTS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "text": pa.string(),
    "varchar": pa.string(),
    "int": pa.int64(),
    "integer": pa.int64(),
    "bigint": pa.int64(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float": pa.float64(),
    "double": pa.float64(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")


def hint_type(hint: str, *, where: str) -> pa.DataType:
    """The Arrow type named by a config hint such as ``"double"`` or ``"decimal(10,2)"``."""
    key = hint.strip().lower()
    if key in _HINTS:
        return _HINTS[key]
    if match := _DECIMAL.fullmatch(key):
        return pa.decimal128(int(match[1]), int(match[2]))
    allowed = ", ".join(sorted(_HINTS)) + ", decimal(p,s)"
    raise ConfigError(f"{where}: unknown type {hint!r}", hint=f"use one of {allowed}")


def lake_type(arrow_type: pa.DataType) -> pa.DataType:
    """The type a column of ``arrow_type`` is stored as in the lake."""
    t = arrow_type
    if pa.types.is_dictionary(t):
        return lake_type(t.value_type)
    if pa.types.is_null(t) or pa.types.is_time(t) or pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t) or pa.types.is_fixed_size_binary(t):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(t.bit_width, pa.decimal128(20, 0))
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC")
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return pa.int64() if pa.types.is_duration(t) else pa.string()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return pa.list_(lake_field(t.value_field))
    if pa.types.is_struct(t):
        return pa.struct([lake_field(t.field(i)) for i in range(t.num_fields)])
    if pa.types.is_map(t):
        return pa.map_(lake_type(t.key_type), lake_type(t.item_type))
    return t


def lake_field(field: pa.Field) -> pa.Field:
    return pa.field(field.name, lake_type(field.type), nullable=True, metadata=field.metadata)


def table_schema(source_names: list[str], source_types: list[pa.DataType], hints: Mapping[str, pa.DataType]) -> pa.Schema:
    """The lake schema for columns read from a file: clean names, lake types, hints applied.

    ``hints`` are keyed by clean or original column name.
    """
    fields = []
    for source_name, clean, arrow_type in zip(source_names, unique_column_names(source_names), source_types, strict=True):
        chosen = hints.get(clean) or hints.get(source_name) or lake_type(arrow_type)
        metadata = {SOURCE_NAME_KEY: source_name, "comment": f"source column {source_name!r}"}
        fields.append(pa.field(clean, chosen, metadata=metadata))
    return pa.schema(fields)


def lineage_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` followed by the lineage columns every raw table carries."""
    return (
        schema.append(pa.field("_load_id", pa.string()))
        .append(pa.field("_source_file", pa.string()))
        .append(pa.field("_ingested_at", pa.timestamp("us", tz="UTC")))
    )


def widen(table: pa.DataType, incoming: pa.DataType) -> pa.DataType | None:
    """The type a column of type ``table`` needs to hold values of type ``incoming`` too.

    int → bigint → double, date → timestamp; any other mix of flat types → string (every value
    has a text form). None when no type holds both (nested or binary columns).
    """
    if table == incoming or pa.types.is_null(incoming):
        return table
    if pa.types.is_null(table):
        return incoming
    if _nested(table) or _nested(incoming):
        return None
    if pa.types.is_integer(table) and pa.types.is_integer(incoming):
        return table if table.bit_width >= incoming.bit_width else incoming
    if _numeric(table) and _numeric(incoming):
        return pa.float64()
    if {_temporal(table), _temporal(incoming)} == {"date", "timestamp"} or _temporal(table) == _temporal(incoming) == "timestamp":
        return pa.timestamp("us", tz="UTC")
    return pa.string()


def _nested(t: pa.DataType) -> bool:
    return pa.types.is_nested(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t)


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def _temporal(t: pa.DataType) -> str | None:
    return "date" if pa.types.is_date(t) else "timestamp" if pa.types.is_timestamp(t) else None


def type_name(t: pa.DataType) -> str:
    """``bigint``, ``double``, ``timestamp`` …: a type as messages and history name it."""
    names = {
        pa.int64(): "bigint",
        pa.int32(): "int",
        pa.int16(): "smallint",
        pa.float64(): "double",
        pa.float32(): "float",
        pa.string(): "string",
        pa.bool_(): "boolean",
        pa.date32(): "date",
    }
    if t in names:
        return names[t]
    return "timestamp" if pa.types.is_timestamp(t) else str(t)


def as_text(values: Iterable | pa.Array) -> list[str | None]:
    """Each value as the text a file would hold (JSON for lists and objects)."""
    result = []
    for value in values.to_pylist() if isinstance(values, pa.Array) else values:
        if value is None or isinstance(value, str):
            result.append(value)
        elif isinstance(value, bytes):
            result.append(value.decode("utf-8", errors="backslashreplace"))
        elif isinstance(value, bool):
            result.append("true" if value else "false")
        elif isinstance(value, list | dict):
            result.append(json.dumps(value, default=str, ensure_ascii=False))
        else:
            result.append(value.isoformat() if hasattr(value, "isoformat") else str(value))
    return result
