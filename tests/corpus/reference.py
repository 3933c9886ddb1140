"""An independent reading of each corpus file: what its raw table must hold, value by value.

Nothing here calls AutoFlux's readers. CSV is split by the standard library's ``csv`` module
(``newline=""``, the file's encoding) and every field is converted with the ingest rules written out
below; JSON arrays by the ``json`` module; Excel ``.xls`` by ``xlrd``; Parquet by DuckDB.

Each rule that makes the raw table differ from the plain text of the file is a *deliberate
difference* with a kind (:data:`KINDS`); :func:`compare` counts them per file, so a file with none is
*exact*. Any other difference is a bug: :func:`compare` returns it naming the file, column, row and
both values.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import gzip
import json
import math
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

csv.field_size_limit(sys.maxsize)

NULL_VALUES = frozenset(
    [
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    ]
)
DELIMITERS = [",", "\t", ";", "|"]

# Deliberate differences between the raw table and the file's text (or the independent reader's values).
KINDS = {
    "null-spelling": "a field spelled as one of ingest.csv.null_values other than '' (NA, NaN, null, …) is null, in text columns too",
    "numeric-as-text": (
        "a numeric-looking column with leading zeros, a leading '+', an integer past 64 bits or a number beyond a double's range"
        " is text, as written"
    ),
    "number-spaces": "spaces around a number are not part of it (Arrow trims them for numbers and booleans)",
    "timestamp-utc": "a timestamp without a zone is stored as that time in UTC (microseconds)",
    "time-as-text": "a time-of-day column (hh:mm:ss) is text, as written",
    "blank-line": "a blank line between rows is no row",
    "bom": "a UTF-8 byte-order mark is not part of the first column's name",
    "not-utf8": "text that is not UTF-8 is decoded as cp1252 (Latin text) and stored as UTF-8",
    "json-mixed-as-text": "a JSON field whose values have different types is text: strings as they are, the others as JSON",
    "json-int-as-float": "a JSON field holding integers and fractions is double",
    "excel-whole-as-int": "Excel stores numbers as doubles; a column of whole numbers is bigint",
    "excel-mixed-as-text": "an Excel column holding text and numbers is text (numbers as Python writes them)",
    "excel-date": "an Excel date column whose values are all whole days is date (xlrd gives them as date-times)",
    "parquet-lake-type": "Parquet types the lake does not store are widened (unsigned → signed, ns → µs UTC)",
}

_INT = re.compile(r"-?\d+")
_FLOAT = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|-?(inf|infinity)", re.IGNORECASE)
_PADDED = re.compile(r"[+-]?0\d")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIMESTAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
INT64 = (-(2**63), 2**63 - 1)


@dataclass
class Expected:
    """What a file's raw table holds: its columns (original names), kinds, rows; or why it fails."""

    names: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # int float bool date timestamp string struct list
    rows: list[list[Any]] = field(default_factory=list)
    fails: str | None = None  # the file must fail to load: why
    differences: Counter = field(default_factory=Counter)  # deliberate difference kind → values


# ---------------------------------------------------------------------------------------- CSV


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.lower().endswith(".gz") else data


def decode(data: bytes, differences: Counter) -> str:
    if data.startswith(codecs.BOM_UTF8):
        differences["bom"] += 1
        return data[len(codecs.BOM_UTF8) :].decode("utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        differences["not-utf8"] += 1
        return data.decode("cp1252")


def delimiter_of(path: Path, text: str) -> str:
    """The delimiter among , tab ; | that splits the first 50 records into the most, equal, fields."""
    if path.name.lower().removesuffix(".gz").endswith((".tsv", ".tab")):
        return "\t"
    best, best_fields = ",", 1
    for candidate in DELIMITERS:
        records = []
        for record in csv.reader(text.splitlines(keepends=True)[:50], delimiter=candidate):
            if record:
                records.append(len(record))
        if len(records) > 2:
            records = records[:-1]  # the 50th line may be cut short
        if records and len(set(records)) == 1 and records[0] > best_fields:
            best, best_fields = candidate, records[0]
    return best


def expected_csv(path: Path, delimiter: str | None = None) -> Expected:
    expected = Expected()
    text = decode(read_bytes(path), expected.differences)
    delimiter = delimiter or delimiter_of(path, text)
    records = list(csv.reader(_lines(text), delimiter=delimiter))
    if not any(records):
        expected.fails = "the file is empty"
        return expected
    blank = sum(1 for r in records[1:] if r == [])
    if blank:
        expected.differences["blank-line"] += blank
    while records and records[0] == []:
        records.pop(0)
    header, rows = records[0], [r for r in records[1:] if r != []]
    expected.names = header
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            expected.fails = f"row {number} has {len(row)} fields, the header {len(header)}"
            return expected
    columns = [convert_column([row[i] for row in rows], expected.differences) for i in range(len(header))]
    expected.kinds = [kind for kind, _ in columns]
    expected.rows = [list(values) for values in zip(*(values for _, values in columns), strict=True)] if rows else []
    return expected


def _lines(text: str):
    """The text as the csv module reads a file opened with newline='' (line ends kept inside quotes)."""
    import io

    return io.StringIO(text, newline="")


def convert_column(texts: list[str], differences: Counter) -> tuple[str, list[Any]]:
    """The column's kind and values from its fields as written (the rules in README's Ingest rules)."""
    values = [t for t in texts if t not in NULL_VALUES]
    spelled = sum(1 for t in texts if t in NULL_VALUES and t != "")
    if spelled:
        differences["null-spelling"] += spelled
    if not values:
        return "string", [None] * len(texts)
    kind = _kind(values, differences)

    def convert(text: str) -> Any:
        if text in NULL_VALUES:
            return None
        if kind == "int":
            return int(text.strip(" \t"))
        if kind == "float":
            return float(text.strip(" \t"))
        if kind == "bool":
            return _BOOL[text.strip(" \t")]
        if kind == "date":
            return dt.date.fromisoformat(text)
        if kind == "timestamp":
            return timestamp(text)
        return text

    return kind, [convert(t) for t in texts]


def _kind(values: list[str], differences: Counter) -> str:
    stripped = [v.strip(" \t") for v in values]
    padded = sum(1 for s, v in zip(stripped, values, strict=False) if s != v)
    numeric = all(_INT.fullmatch(s) or _FLOAT.fullmatch(s) or _plus_number(s) for s in stripped)
    if numeric:
        if any(_PADDED.match(s) or s.startswith("+") for s in stripped):
            differences["numeric-as-text"] += len(values)
            return "string"
        if all(_INT.fullmatch(s) for s in stripped):
            if all(INT64[0] <= int(s) <= INT64[1] for s in stripped):
                differences["number-spaces"] += padded
                return "int"
            differences["numeric-as-text"] += len(values)
            return "string"
        if any(math.isinf(float(s)) and not s.lstrip("-").lower().startswith("inf") for s in stripped):
            differences["numeric-as-text"] += len(values)  # 1E400: beyond a double's range
            return "string"
        differences["number-spaces"] += padded
        return "float"
    if all(s in _BOOL for s in stripped):
        differences["number-spaces"] += padded
        return "bool"
    if all(_DATE.fullmatch(v) and _valid_date(v) for v in values):
        return "date"
    if all(_TIMESTAMP.fullmatch(v) and _valid_timestamp(v) for v in values):
        if len({bool(_TIMESTAMP.fullmatch(v)[8]) for v in values}) > 1:
            return "string"  # with and without a zone in one column: Arrow reads no timestamp type for both
        differences["timestamp-utc"] += sum(1 for v in values if not _TIMESTAMP.fullmatch(v)[8])
        return "timestamp"
    if all(_TIME.fullmatch(v) for v in values):
        differences["time-as-text"] += len(values)
    return "string"


def _plus_number(text: str) -> bool:
    return text.startswith("+") and bool(_INT.fullmatch(text[1:]) or _FLOAT.fullmatch(text[1:]))


def _valid_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
        return True
    except ValueError:
        return False


def _valid_timestamp(text: str) -> bool:
    try:
        timestamp(text)
        return True
    except ValueError:
        return False


def timestamp(text: str) -> dt.datetime:
    """An ISO 8601 date or date-time as Arrow reads it, in UTC (no zone: UTC)."""
    match = _TIMESTAMP.fullmatch(text)
    if not match:
        raise ValueError(text)
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(9, "0")[:6])
    value = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    offset = dt.timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return (value - offset).replace(tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------- JSON


def expected_json(path: Path) -> Expected:
    """A JSON array of objects: columns in the order first seen, a missing key null."""
    expected = Expected()
    records = json.loads(read_bytes(path).decode("utf-8-sig"))
    if not isinstance(records, list) or not records:
        expected.fails = "not a non-empty JSON array"
        return expected
    records = [r if isinstance(r, dict) else {"value": r} for r in records]
    names = list(dict.fromkeys(name for record in records for name in record))
    expected.names = names
    columns = []
    for name in names:
        values = [record.get(name) for record in records]
        columns.append(_json_column(values, expected.differences))
    expected.kinds = [kind for kind, _ in columns]
    expected.rows = [list(row) for row in zip(*(values for _, values in columns), strict=True)]
    return expected


def _json_column(values: list[Any], differences: Counter) -> tuple[str, list[Any]]:
    present = [v for v in values if v is not None]
    types = {_json_kind(v) for v in present}
    if not types:
        return "string", values
    if len(types) == 1:
        return types.pop(), values
    if types == {"int", "float"}:
        differences["json-int-as-float"] += sum(1 for v in present if _json_kind(v) == "int")
        return "float", [None if v is None else float(v) for v in values]
    differences["json-mixed-as-text"] += sum(1 for v in present if not isinstance(v, str))
    return "string", [None if v is None else _json_text(v) for v in values]


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "struct" if isinstance(value, dict) else "list"


def _json_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


# -------------------------------------------------------------------------------------- Excel


def expected_excel(path: Path) -> dict[str, Expected]:
    """Each sheet of an .xls workbook (by xlrd): the first non-empty row is the header."""
    import xlrd

    book = xlrd.open_workbook(str(path))
    sheets = {}
    for sheet in book.sheets():
        expected = Expected()
        grid = [[_cell(sheet.cell(r, c), book.datemode) for c in range(sheet.ncols)] for r in range(sheet.nrows)]
        grid = [row for row in grid]
        # the used area: from the first non-empty row and column
        while grid and all(v is None for v in grid[0]):
            grid.pop(0)
        while grid and all(v is None for v in grid[-1]):
            grid.pop()
        if grid:
            first = min((i for row in grid for i, v in enumerate(row) if v is not None), default=0)
            last = max((i for row in grid for i, v in enumerate(row) if v is not None), default=-1)
            grid = [row[first : last + 1] for row in grid]
        if len(grid) < 2:
            expected.fails = "no header and data rows"
            sheets[sheet.name] = expected
            continue
        expected.names = ["" if v is None else _header(v) for v in grid[0]]
        columns = [_excel_column([row[i] for row in grid[1:]], expected.differences) for i in range(len(grid[0]))]
        expected.kinds = [kind for kind, _ in columns]
        expected.rows = [list(row) for row in zip(*(values for _, values in columns), strict=True)]
        sheets[sheet.name] = expected
    return sheets


def _cell(cell: Any, datemode: int) -> Any:
    import xlrd

    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if cell.ctype == xlrd.XL_CELL_TEXT:
        return cell.value or None
    if cell.ctype == xlrd.XL_CELL_DATE:
        return xlrd.xldate_as_datetime(cell.value, datemode)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return None
    return float(cell.value)


def _header(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _excel_column(values: list[Any], differences: Counter) -> tuple[str, list[Any]]:
    present = [v for v in values if v is not None]
    if not present:
        return "string", values
    if all(isinstance(v, float) for v in present):
        if all(v.is_integer() and abs(v) < 2**53 for v in present):
            differences["excel-whole-as-int"] += len(present)
            return "int", [None if v is None else int(v) for v in values]
        return "float", values
    if all(isinstance(v, dt.datetime) for v in present):
        if all(v.time() == dt.time() for v in present):  # a date cell (xlrd cannot tell its format apart)
            differences["excel-date"] += len(present)
            return "date", [None if v is None else v.date() for v in values]
        return "timestamp", [None if v is None else v.replace(tzinfo=dt.UTC) for v in values]
    if all(isinstance(v, bool) for v in present):
        return "bool", values
    if all(isinstance(v, str) for v in present):
        return "string", values
    differences["excel-mixed-as-text"] += sum(1 for v in present if not isinstance(v, str))

    def text(v: Any) -> str | None:
        if v is None or isinstance(v, str):
            return v
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return str(int(v))
        if isinstance(v, bool):
            return "true" if v else "false"
        return v.isoformat() if hasattr(v, "isoformat") else str(v)

    return "string", [text(v) for v in values]


# ------------------------------------------------------------------------------------ Parquet


def expected_parquet(path: Path) -> Expected:
    import duckdb

    expected = Expected()
    relation = duckdb.sql(f"select * from read_parquet('{path.as_posix()}')")
    expected.names = list(relation.columns)
    expected.kinds = [_duck_kind(str(t)) for t in relation.types]
    expected.rows = [list(row) for row in relation.fetchall()]
    for i, kind in enumerate(expected.kinds):
        if kind == "timestamp":
            for row in expected.rows:
                value = row[i]
                if value is not None and value.tzinfo is None:
                    row[i] = value.replace(tzinfo=dt.UTC)
                elif value is not None:
                    row[i] = value.astimezone(dt.UTC)
    if any(str(t).startswith("U") or "TIMESTAMP_NS" in str(t) for t in relation.types):
        expected.differences["parquet-lake-type"] += 1
    return expected


def _duck_kind(name: str) -> str:
    name = name.upper()
    if name in ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "HUGEINT"):
        return "int"
    if name in ("DOUBLE", "FLOAT"):
        return "float"
    if name == "BOOLEAN":
        return "bool"
    if name == "DATE":
        return "date"
    if name.startswith("TIMESTAMP"):
        return "timestamp"
    if name.startswith("STRUCT"):
        return "struct"
    if name.endswith("[]"):
        return "list"
    return "string"


# -------------------------------------------------------------------------------- comparison


@dataclass(frozen=True)
class Bug:
    """A difference the rules do not allow."""

    file: str
    kind: str  # load, columns, type, rows, value
    column: str | None = None
    row: int | None = None  # 1-based data row
    expected: Any = None
    got: Any = None

    def __str__(self) -> str:
        where = "".join([f" column {self.column!r}" if self.column else "", f" row {self.row}" if self.row else ""])
        return f"{self.file}:{where} [{self.kind}] expected {self.expected!r}, got {self.got!r}"


def arrow_kind(arrow_type: Any) -> str:
    import pyarrow as pa

    checks = [
        ("int", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("bool", pa.types.is_boolean),
        ("date", pa.types.is_date),
        ("timestamp", pa.types.is_timestamp),
        ("struct", pa.types.is_struct),
        ("list", lambda t: pa.types.is_list(t) or pa.types.is_large_list(t)),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t)),
    ]
    return next((name for name, check in checks if check(arrow_type)), str(arrow_type))


def same_value(expected: Any, got: Any) -> bool:
    if isinstance(expected, float) and isinstance(got, float):
        return expected == got or (math.isnan(expected) and math.isnan(got))
    if isinstance(expected, dict) and isinstance(got, dict):
        return all(same_value(expected.get(k), got.get(k)) for k in set(expected) | set(got))
    if isinstance(expected, list) and isinstance(got, list):
        return len(expected) == len(got) and all(same_value(a, b) for a, b in zip(expected, got, strict=False))
    return type(expected) is type(got) and expected == got if expected is not None else got is None


def compare(name: str, expected: Expected, table: Any, *, limit: int = 3) -> list[Bug]:
    """The bugs in ``table`` (the raw table without lineage columns) against ``expected``; at most
    ``limit`` value bugs per column (the first ones)."""
    from autoflux.ingest.schema import SOURCE_NAME_KEY, unique_column_names

    bugs: list[Bug] = []
    got_sources = [(f.metadata or {}).get(SOURCE_NAME_KEY.encode(), b"").decode() for f in table.schema]
    if got_sources != expected.names:
        bugs.append(Bug(name, "columns", expected=expected.names, got=got_sources))
        return bugs
    clean = unique_column_names(expected.names)
    if table.column_names != clean:
        bugs.append(Bug(name, "columns", expected=clean, got=table.column_names))
    if table.num_rows != len(expected.rows):
        bugs.append(Bug(name, "rows", expected=len(expected.rows), got=table.num_rows))
        return bugs
    for i, (column, kind) in enumerate(zip(table.column_names, expected.kinds, strict=True)):
        got_kind = arrow_kind(table.schema.field(i).type)
        if got_kind != kind:
            first = next((r for r, row in enumerate(expected.rows) if row[i] is not None), None)
            got_values = table.column(i).to_pylist()
            bugs.append(
                Bug(
                    name,
                    "type",
                    column,
                    None if first is None else first + 1,
                    f"{kind}" + ("" if first is None else f" ({expected.rows[first][i]!r})"),
                    f"{table.schema.field(i).type}" + ("" if first is None else f" ({got_values[first]!r})"),
                )
            )
            continue
        found = 0
        got_values = table.column(i).to_pylist()
        want_values = [row[i] for row in expected.rows]
        if any(not same_value(w, g) for w, g in zip(want_values, got_values, strict=False)) and sorted(map(repr, want_values)) == sorted(
            map(repr, got_values)
        ):
            first = next(r for r, (w, g) in enumerate(zip(want_values, got_values, strict=False)) if not same_value(w, g))
            bugs.append(Bug(name, "order", column, first + 1, want_values[first], got_values[first]))
            continue
        for r, got in enumerate(got_values):
            want = expected.rows[r][i]
            if not same_value(want, got):
                bugs.append(Bug(name, "value", column, r + 1, want, got))
                found += 1
                if found >= limit:
                    break
    return bugs


@dataclass
class Tally:
    """Corpus counts: files, exact (no deliberate difference), deliberate differences by kind, bugs."""

    files: int = 0
    exact: int = 0
    refused: int = 0  # files the rules say must fail, and that failed
    differences: Counter = field(default_factory=Counter)  # kind → values
    files_by_kind: Counter = field(default_factory=Counter)  # kind → files
    bugs: list[Bug] = field(default_factory=list)
    by_format: Counter = field(default_factory=Counter)

    def add(self, fmt: str, expected: Expected, bugs: list[Bug]) -> None:
        self.files += 1
        self.by_format[fmt] += 1
        if expected.fails is not None and not bugs:
            self.refused += 1
        elif not bugs and not +expected.differences:
            self.exact += 1
        for kind, count in (+expected.differences).items():
            self.differences[kind] += count
            self.files_by_kind[kind] += 1
        self.bugs.extend(bugs)

    def report(self, title: str) -> str:
        bad_files = len({b.file for b in self.bugs})
        lines = [
            f"{title}: {self.files} files ({', '.join(f'{k} {v}' for k, v in sorted(self.by_format.items()))}), "
            f"{self.exact} exact, {self.files - self.exact - self.refused - bad_files} with deliberate differences only, "
            f"{self.refused} refused as the rules say, {bad_files} with bugs ({len(self.bugs)} differences)"
        ]
        for kind, count in sorted(self.differences.items()):
            lines.append(f"  deliberate {kind}: {count} values in {self.files_by_kind[kind]} files — {KINDS[kind]}")
        for kind, count in sorted(Counter(b.kind for b in self.bugs).items()):
            lines.append(f"  bug {kind}: {count}")
        return "\n".join(lines)
