"""Readers turn one data file into a stream of Arrow record batches with its original column names.

Each reader returns :class:`Columns`; :func:`autoflux.ingest.writer` renames and casts them with
the rules of :mod:`autoflux.ingest.schema`. Reading is streaming (bounded memory) for CSV/TSV,
NDJSON and Parquet; JSON arrays and Excel sheets are read whole.

CSV type policy: Arrow infers each column's type from the first block (``ingest.csv.block_size``,
4 MiB by default). When a later value does not fit, the column is widened — integer → double →
string, date → timestamp → string, any other type → string — and the file is read again, so a
load never fails or drops rows because of a late surprise. A value longer than a block is read
again with bigger blocks. Values are kept as written: a number column whose text a number would
not give back (``08123``, ``+44``, an integer past 64 bits in a column of fractions) is text, and
text values keep every byte. Fields equal to one of ``null_values`` are null, in every column.

CSV rows with the wrong number of fields are skipped and kept in :attr:`Columns.bad_rows`; the
writer decides whether the file may load without them (``ingest.bad_rows``).
"""

from __future__ import annotations

import codecs
import collections
import csv
import importlib
import importlib.util
import io
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from autoflux.config import DEFAULT_NULL_VALUES
from autoflux.exceptions import ConfigError, IngestError
from autoflux.ingest.policy import as_text, widen
from autoflux.ingest.schema import unique_column_names

COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd"}
FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".ndjson": "json",
    ".jsonl": "json",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
}
SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class BadRow:
    """A row that could not be parsed: why, its text, and its line in the file (1-based) once located."""

    reason: str
    text: str
    line: int | None = None


@dataclass
class BadRows:
    """The rows a reader skipped, in the order it met them."""

    path: Path
    encoding: str = "utf-8"
    rows: list[BadRow] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def located(self) -> list[BadRow]:
        """The rows with their line numbers, in file order (reads the file once)."""
        lines = locate_lines(self.path, [row.text for row in self.rows], self.encoding)
        located = [BadRow(row.reason, row.text, line) for row, line in zip(self.rows, lines, strict=True)]
        return sorted(located, key=lambda row: (row.line is None, row.line or 0))

    def error(self, limits: object | None = None) -> IngestError:
        """The file fails because of its bad rows: the first one named with its line."""
        first = self.located()[0]
        if limits is None:
            message = first.reason
        else:
            message = f"{len(self.rows)} rows cannot be parsed, more than {limits}; the first: {first.reason}"
        return IngestError(
            message,
            path=self.path,
            line=first.line,
            hint="fix that row, or quote values that contain the delimiter (ingest.bad_rows can set such rows aside)",
        )


@dataclass
class Columns:
    """A file's columns as found in it, and the batches that hold their values."""

    names: list[str]
    types: list[pa.DataType]
    batches: Iterator[pa.RecordBatch]
    notes: list[str] = field(default_factory=list)
    bytes_read: Callable[[], int] | None = None
    bad_rows: BadRows | None = None


class ReadAgain(Exception):
    """The file must be read again: with column ``types`` (name → type), a bigger ``block_size``,
    and/or ``by_value`` (JSON lines parsed value by value, when Arrow's block-wise inference cannot).
    """

    def __init__(self, types: dict[str, pa.DataType], reason: str, *, block_size: int | None = None, by_value: bool = False) -> None:
        super().__init__(reason)
        self.types, self.reason, self.block_size, self.by_value = types, reason, block_size, by_value


class WidenColumns(ReadAgain):
    """Values in a CSV do not fit the inferred types: read it again with ``types`` (name → type)."""


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str | None = None
    encoding: str | None = None
    block_size: int = 4 << 20
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES


def split_suffixes(path: Path) -> tuple[str, str | None]:
    """The data format suffix and the compression of ``path`` (``train.csv.gz`` → ``.csv``, ``gzip``)."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    return (suffixes[-1] if suffixes else ""), compression


def open_bytes(path: Path) -> pa.NativeFile:
    _, compression = split_suffixes(path)
    return pa.input_stream(str(path), compression=compression)


def read_head(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    with open_bytes(path) as stream:
        return stream.read(size)


# ---------------------------------------------------------------------------------------- CSV


_LATIN_ALPHABETS = {
    "Basic Latin",
    "Control character",
    "Latin-1 Supplement",
    "Latin Extended-A",
    "Latin Extended-B",
    "Latin Extended Additional",
    "General Punctuation",
    "Currency Symbols",
    "Spacing Modifier Letters",
}


def detect_encoding(path: Path, head: bytes) -> str:
    """``utf-8`` (with or without BOM) when the head decodes as such, else the best guess.

    A sample cannot tell Latin code pages apart (French text reads as well in cp1257 as in
    cp1252), so when the best guess is Latin-script text, cp1252 (a superset of latin-1's
    letters, what spreadsheets save) wins if it decodes the bytes; other scripts keep the guess.
    """
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(head).best()
    if best is None:
        raise IngestError(
            "cannot tell which text encoding this file uses",
            path=path,
            hint="set ingest.csv.encoding in autoflux.yml (for example latin-1 or cp1252)",
        )
    if set(best.alphabets) <= _LATIN_ALPHABETS:
        try:
            head.decode("cp1252")
            return "cp1252"
        except UnicodeDecodeError:
            pass
    return best.encoding


def detect_delimiter(path: Path, text: str) -> str:
    """The delimiter among , tab ; | that splits the first lines into the most, equal, fields."""
    if split_suffixes(path)[0] in (".tsv", ".tab"):
        return "\t"
    lines = text.splitlines()[:50]
    if len(lines) > 1:
        lines = lines[:-1]
    best, best_fields = ",", 1
    for candidate in (",", "\t", ";", "|"):
        counts = {len(row) for row in csv.reader(lines, delimiter=candidate)}
        if len(counts) == 1 and (fields := counts.pop()) > best_fields:
            best, best_fields = candidate, fields
    return best


class _QuoteCounter(io.RawIOBase):
    """Passes a byte stream through, counting quote characters to catch an unclosed quote."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream
        self.quotes = 0
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size >= 0 else None)
        self.quotes += data.count(b'"')
        self.bytes += len(data)
        return data

    def readinto(self, buffer) -> int:  # pragma: no cover - pyarrow calls read()
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)[^:]*: invalid value '(.*)'", re.S)
_RAGGED_ROW = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


_LINE_END = re.compile(rb"\r\n|\n|\r")


def lines(path: Path) -> Iterator[bytes]:
    """The file's lines without their ends, which may be \\r\\n, \\n or \\r, mixed (streamed)."""
    with open_bytes(path) as stream:
        rest = b""
        while chunk := stream.read(1 << 20):
            data = rest + chunk
            cut = len(data) - 1 if data.endswith(b"\r") else len(data)  # a \r may be half of a \r\n
            parts = _LINE_END.split(data[:cut])
            rest = parts.pop() + data[cut:]
            yield from parts
        parts = _LINE_END.split(rest)
        yield from parts[:-1] if parts[-1] == b"" else parts


def find_line(path: Path, needle: bytes | None) -> int | None:
    """The 1-based line equal to ``needle``, else the first starting with it (errors only: it reads the file)."""
    if not needle:
        return None
    needle, first_prefix = _LINE_END.split(needle)[0], None
    for number, line in enumerate(lines(path), start=1):
        if line == needle:
            return number
        if first_prefix is None and line.startswith(needle):
            first_prefix = number
    return first_prefix


def locate_lines(path: Path, texts: list[str], encoding: str) -> list[int | None]:
    """The line where each of ``texts`` (rows, in file order when equal) starts, in one pass over the file."""
    wanted: dict[bytes, collections.deque[int]] = {}
    for index, text in enumerate(texts):
        wanted.setdefault(_LINE_END.split(text.encode(encoding, errors="replace"))[0], collections.deque()).append(index)
    found: list[int | None] = [None] * len(texts)
    for number, line in enumerate(lines(path), start=1):
        if not wanted:
            break
        if waiting := wanted.get(line):
            found[waiting.popleft()] = number
            if not waiting:
                del wanted[line]
    return found


_TEXT_LINE_END = re.compile(r"\r\n|\n|\r")


def first_invalid_line(path: Path, encoding: str) -> int | None:
    """The 1-based line of the first bytes ``encoding`` cannot decode (the last line when the file
    ends in the middle of a character), else None. The file is decoded as one stream, so lines are
    counted right in any encoding (in UTF-16 a line end is two bytes)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    ends, after_cr = 0, False
    with open_bytes(path) as stream:
        while True:
            chunk = stream.read(1 << 20)
            state = decoder.getstate()
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:  # error.object: the bytes the decoder held, then chunk
                valid = codecs.getincrementaldecoder(encoding)(errors="replace")
                valid.setstate((b"", state[1]))
                text = valid.decode(error.object[: error.start])
                return ends + len(_TEXT_LINE_END.findall(text)) - (after_cr and text.startswith("\n")) + 1
            if not chunk:
                return None
            ends += len(_TEXT_LINE_END.findall(text)) - (after_cr and text.startswith("\n"))
            after_cr = text.endswith("\r") if text else after_cr


_END_OF_FILE = "autoflux-end-of-file-1c5f0e"


def unclosed_quote_line(path: Path, encoding: str = "utf-8", delimiter: str = ",") -> int | None:
    """The line where a quoted field that never closes was opened, or None when every one closes.

    Read as pyarrow reads it: a quote inside an unquoted field (``15" screen``) is a literal
    character. A sentinel line after the end comes back as its own row unless a quote is open.
    """
    start, last = 1, None
    with open_bytes(path) as stream:
        text = io.TextIOWrapper(io.BufferedReader(_QuoteCounter(stream)), encoding=encoding, errors="replace", newline="")
        reader = csv.reader(itertools.chain(text, ["\n", _END_OF_FILE + "\n"]), delimiter=delimiter)
        try:
            for row in reader:
                last, start = (start, row), reader.line_num + 1
        except csv.Error:  # a field past csv's size limit: the rest of the file inside quotes
            return start
    return None if last is None or last[1] == [_END_OF_FILE] else last[0]


MAX_BLOCK_SIZE = (1 << 31) - 1


@dataclass(frozen=True)
class CsvDialect:
    """How a CSV file is written, as :func:`sniff_csv` found it: one decision for every engine.

    ``names`` are the header's names as written (blank and repeated ones included); ``line_end``
    is the header line's end (``\\r\\n``, ``\\n`` or ``\\r``); ``quoted_line_breaks`` says whether
    a quoted value spans lines (None when the file was not scanned for them).
    """

    encoding: str
    delimiter: str
    names: tuple[str, ...]
    line_end: str = "\n"
    quoted_line_breaks: bool | None = None


def sniff_csv(path: Path, options: CsvOptions, *, scan: bool = False) -> CsvDialect:
    """The file's encoding, delimiter and header (``ingest.csv`` settings win over detection).

    With ``scan`` the whole file is read once more to tell whether a quoted value spans lines
    (an engine reading line by line must then read quoted values whole).
    """
    head = read_head(path)
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise IngestError("the file is empty", path=path, hint="remove it or replace it with data")
    encoding = options.encoding or detect_encoding(path, head)
    text = head.decode(encoding, errors="replace")
    delimiter = options.delimiter or detect_delimiter(path, text)
    names = _csv_header(path, head, encoding, delimiter)
    end = re.search(r"\r\n|\n|\r", text)
    spans = _quoted_line_breaks(path, encoding) if scan else None
    return CsvDialect(encoding, delimiter, tuple(names), end[0] if end else "\n", spans)


def _quoted_line_breaks(path: Path, encoding: str) -> bool:
    """Whether a quoted value holds a line break (a quote inside an unquoted value may make it say yes)."""
    if re.match(r"utf[-_]?(16|32)", encoding.lower()):
        return True  # quotes and line ends are not single bytes: assume they may
    carry = b""  # a quote while inside a quoted value at the end of the previous chunk
    with open_bytes(path) as stream:
        while chunk := stream.read(4 << 20):
            # Quotes and line breaks only, doubled quotes dropped (parity is all that matters): what is
            # left alternates quotes with runs of line breaks, so a second quote, or a line break after
            # the first, means a line break inside quotes.
            marks = (carry + chunk.translate(None, _NOT_QUOTE_OR_LINE_BREAK)).replace(b'""', b"")
            first = marks.find(b'"')
            if first >= 0 and (marks.count(b'"') > 1 or first < len(marks) - 1):
                return True
            carry = b'"' if first >= 0 else b""
    return False


_NOT_QUOTE_OR_LINE_BREAK = bytes(b for b in range(256) if b not in b'"\r\n')


def first_block_types(path: Path, options: CsvOptions) -> list[pa.DataType]:
    """The lake type of each column as :func:`read_csv` infers it from the file's first block.

    Values kept as written (leading zeros, ``+``) and values of the first block that do not fit
    are applied, as the embedded engine does; values further on are not looked at (an engine that
    reads the rest checks them, and widens as :func:`read_csv` would).
    """
    from dataclasses import replace

    from autoflux.ingest.schema import lake_type

    types: dict[str, pa.DataType] = {}
    block_size = options.block_size
    for _ in range(64):
        try:
            columns = read_csv(path, replace(options, block_size=block_size), types, strict=())
            batches = columns.batches
            try:
                next(batches, None)
            finally:
                batches.close()  # type: ignore[attr-defined]
        except ReadAgain as again:
            types |= again.types
            block_size = again.block_size or block_size
            continue
        return [lake_type(t) for t in columns.types]
    raise IngestError("column types kept changing while reading", path=path, hint="set ingest.types for its columns")


def read_csv(
    path: Path,
    options: CsvOptions,
    hints: dict[str, pa.DataType],
    *,
    strict: Iterable[str] | None = None,
    text: bool = False,
) -> Columns:
    """Stream a CSV/TSV file (optionally compressed); see the module docstring for the type policy.

    ``hints`` map clean or original column names to types. A value that does not fit is an error
    in the columns named in ``strict`` (all hinted columns when None: the user's type hints), and
    widens the others (types chosen by an earlier read). ``text`` reads the columns without a
    hint as strings, exactly as written.
    """
    import pyarrow.csv as pacsv

    dialect = sniff_csv(path, options)
    encoding, delimiter, names = dialect.encoding, dialect.delimiter, list(dialect.names)
    clean = unique_column_names(names)
    read_options = pacsv.ReadOptions(
        column_names=clean,
        skip_rows=1,
        block_size=options.block_size,
        encoding="utf8" if encoding.replace("-", "").lower() in ("utf8", "utf8sig", "ascii") else encoding,
    )
    bad_rows = BadRows(path, encoding)
    parse_options = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=_skip_bad_rows(bad_rows, delimiter)
    )
    strict = set(hints) if strict is None else set(strict)
    hints = {c: _pick(hints, strict, c, o) for c, o in zip(clean, names, strict=True) if c in hints or o in hints}
    strict_hints = {c: hints[c] for c, o in zip(clean, names, strict=True) if c in hints and (c in strict or o in strict)}
    column_types = ({c: pa.string() for c in clean} if text else {}) | hints

    def open_reader(types: dict[str, pa.DataType]) -> tuple[_QuoteCounter, Any]:
        bad_rows.rows.clear()
        convert_options = pacsv.ConvertOptions(column_types=types, null_values=list(options.null_values), strings_can_be_null=True)
        counter = _QuoteCounter(open_bytes(path))
        try:
            return counter, pacsv.open_csv(counter, read_options=read_options, parse_options=parse_options, convert_options=convert_options)
        except pa.ArrowInvalid as error:
            counter.close()
            raise _csv_error(path, error, clean, strict_hints, encoding, delimiter, options.block_size) from None

    counter, reader = open_reader(column_types)
    # Numbers are read as text and converted here, where a value a number would not give back is seen.
    numbers = {
        name: kind
        for name, kind in zip(clean, reader.schema.types, strict=True)
        if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and name not in strict_hints
    }
    if numbers:
        types = reader.schema.types
        reader.close()
        counter.close()
        counter, reader = open_reader(dict(zip(clean, types, strict=True)) | {name: pa.string() for name in numbers})

    def close() -> None:
        reader.close()  # stops Arrow's read-ahead before its stream goes away
        counter.close()

    if any(pa.types.is_binary(t) for t in reader.schema.types):
        close()
        raise _undecodable(path, encoding)
    unknown = {n: pa.string() for n, t in zip(clean, reader.schema.types, strict=True) if pa.types.is_null(t)}
    if unknown:
        close()
        raise WidenColumns(unknown, "no values in the first block")
    positions = {index: numbers[name] for index, name in enumerate(clean) if name in numbers}

    def batches() -> Iterator[pa.RecordBatch]:
        rows, last = 0, None
        try:
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except pa.ArrowInvalid as error:
                    raise _csv_error(path, error, clean, strict_hints, encoding, delimiter, options.block_size) from None
                rows += batch.num_rows
                last = batch.slice(batch.num_rows - 1) if batch.num_rows else last
                yield _with_numbers(batch, positions) if positions else batch
        finally:
            close()
        # A quote that never closes swallows the rest of the file into the last row's value.
        suspect = counter.quotes % 2 or _spans_lines(last)
        if suspect and (line := unclosed_quote_line(path, encoding, delimiter)) is not None:
            raise _unclosed_quote(path, line)

    notes = [f"delimiter {delimiter!r}, encoding {encoding}"]
    types = [positions.get(i, kind) for i, kind in enumerate(reader.schema.types)]
    return Columns(names, types, batches(), notes=notes, bytes_read=lambda: counter.bytes, bad_rows=bad_rows)


# Number texts a number does not give back: a sign +, a leading zero, and (in a column of
# fractions) an integer too long for a double to hold exactly.
_NOT_AN_INTEGER_AS_WRITTEN = r"^(\+|-?0[0-9])"
_NOT_A_FRACTION_AS_WRITTEN = r"^(\+|-?0[0-9]|-?[0-9]{16,}$)"
_PARSE_FAILURE = re.compile(r"Failed to parse string: '(.*)' as a scalar of type (\w+)", re.S)


def _with_numbers(batch: pa.RecordBatch, positions: dict[int, pa.DataType]) -> pa.RecordBatch:
    """``batch`` with the number columns read as text (``positions``: index → type) converted.

    Raises :class:`WidenColumns` (text, or the wider number type) when a value does not fit or
    would not read back as written.
    """
    arrays, schema = list(batch.columns), batch.schema
    for index, kind in positions.items():
        name, values = schema.field(index).name, pc.utf8_trim_whitespace(arrays[index])  # as Arrow reads numbers
        pattern = _NOT_AN_INTEGER_AS_WRITTEN if pa.types.is_integer(kind) else _NOT_A_FRACTION_AS_WRITTEN
        changed = pc.match_substring_regex(values, pattern)
        if pc.any(changed).as_py():
            example = values.filter(changed)[0].as_py()
            raise WidenColumns({name: pa.string()}, f"value {example!r} is kept as written")
        try:
            arrays[index] = pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            failure = _PARSE_FAILURE.search(str(error))
            wider = _wider(str(kind), failure[1]) if failure else pa.string()
            raise WidenColumns({name: wider}, f"a value is not {kind}") from None
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([f.with_type(a.type) for f, a in zip(schema, arrays, strict=True)]))


def _pick(hints: dict[str, pa.DataType], strict: set[str], clean: str, original: str) -> pa.DataType:
    """A column's hint by clean or original name, the strict ones (the user's) first."""
    for name in (clean, original):
        if name in strict and name in hints:
            return hints[name]
    return hints.get(clean) or hints[original]


def _skip_bad_rows(bad_rows: BadRows, delimiter: str) -> Callable[[Any], str]:
    """Arrow's handler for rows with the wrong number of fields: keep them aside and go on.

    A row running over several lines may be the rest of the file swallowed by a quote that never
    closes: then the row is an error, reported as unbalanced quotes.
    """
    unclosed: list[int | None] = []

    def handle(row: Any) -> str:
        if "\n" in row.text or "\r" in row.text:
            if not unclosed:
                unclosed.append(unclosed_quote_line(bad_rows.path, bad_rows.encoding, delimiter))
            if unclosed[0] is not None:
                return "error"
        bad_rows.rows.append(BadRow(f"a row has {row.actual_columns} fields where the header has {row.expected_columns}", row.text))
        return "skip"

    return handle


def _csv_header(path: Path, head: bytes, encoding: str, delimiter: str) -> list[str]:
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    try:
        first = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), None)
    except csv.Error as error:
        raise IngestError(
            f"cannot read the header row ({error})", path=path, line=1, hint="check that it is a well-formed CSV file"
        ) from None
    if not first or not any(name.strip() for name in first):
        raise IngestError("the file has no header row", path=path, hint="add a header line naming the columns")
    return first


def _spans_lines(row: pa.RecordBatch | None) -> bool:
    return row is not None and any(isinstance(v, str) and ("\n" in v or "\r" in v) for v in row.to_pylist()[0].values())


def _unclosed_quote(path: Path, line: int) -> IngestError:
    return IngestError(
        "a quoted field is never closed (unbalanced quotes)",
        path=path,
        line=line,
        hint='close the quote, or double a literal quote inside a quoted field ("")',
    )


def _undecodable(path: Path, encoding: str) -> IngestError:
    return IngestError(
        f"bytes that are not valid {encoding}",
        path=path,
        line=first_invalid_line(path, encoding),
        hint="fix those bytes, or set ingest.csv.encoding in autoflux.yml to the file's encoding",
    )


def _csv_error(
    path: Path, error: pa.ArrowInvalid, names: list[str], hints: dict, encoding: str, delimiter: str, block_size: int
) -> Exception:
    message = str(error)
    if "straddling object" in message:
        if block_size >= MAX_BLOCK_SIZE:
            return IngestError("a value is longer than 2 GiB", path=path, hint="split the value, or read the file with ingest.readers")
        return ReadAgain({}, "a value is longer than a block", block_size=min(block_size * 4, MAX_BLOCK_SIZE))
    if match := _CONVERSION_ERROR.search(message):
        column, target, value = names[int(match[1])], match[2], match[3]
        if target in ("string", "utf8"):
            return _undecodable(path, encoding)
        if column in hints:
            return IngestError(
                f"value {value!r} is not a {hints[column]} as the type hint says",
                path=path,
                column=column,
                line=None,
                hint="fix the value or change ingest.types in autoflux.yml",
            )
        return WidenColumns({column: _wider(target, value)}, f"value {value!r} is not {target}")
    if match := _RAGGED_ROW.search(message):
        expected, got, text = match[1], match[2], match[3].removesuffix(" ...")  # Arrow shortens long rows
        if "\n" in text and (line := unclosed_quote_line(path, encoding, delimiter)) is not None:
            return _unclosed_quote(path, line)
        return IngestError(
            f"a row has {got} fields where the header has {expected}",
            path=path,
            line=find_line(path, text.splitlines()[0].encode(encoding, errors="replace") if text else None),
            hint="fix that row, or quote values that contain the delimiter",
        )
    if "invalid UTF8" in message or "UTF-8" in message:
        return _undecodable(path, encoding)
    if "Could not skip initial" in message:  # no line end in the first block: not text in this encoding, or no CSV
        return IngestError(
            f"no line end after the header row (read as {encoding})",
            path=path,
            hint="the file may be cut short or not be CSV text: check it, and its encoding (ingest.csv.encoding in autoflux.yml)",
        )
    return IngestError(f"cannot parse the file: {message}", path=path, hint="check that it is a well-formed CSV file")


def _wider(target: str, value: str) -> pa.DataType:
    """The type to read a column again with when ``value`` is not a ``target``: see the module docstring."""
    if target.startswith("int") and _is_number(value):
        return pa.float64()
    if target.startswith("date") and _is_timestamp(value):
        return pa.timestamp("us")
    return pa.string()


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _is_timestamp(value: str) -> bool:
    try:
        pa.array([value]).cast(pa.timestamp("us"))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False
    return True


# --------------------------------------------------------------------------- Parquet, JSON, Excel


def read_parquet(path: Path, batch_rows: int = 65_536) -> Columns:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as error:
        raise IngestError(f"not a readable Parquet file ({error})", path=path, hint="check the file is complete") from None
    schema = parquet.schema_arrow
    return Columns(schema.names, schema.types, parquet.iter_batches(batch_size=batch_rows))


def read_json(path: Path, types: Mapping[str, pa.DataType] | None = None, *, by_value: bool = False) -> Columns:
    """NDJSON is streamed; a file holding one JSON array of objects is read whole.

    NDJSON goes through Arrow's reader, which infers each field's type from the first block and
    fails when a later value has another type. Then the caller reads again ``by_value``: lines are
    parsed one by one, fields take ``types`` (name → type) where given, and a field whose values
    need a wider type than the first lines had asks for another read (:class:`ReadAgain`).
    """
    import pyarrow.json as pajson

    head = read_head(path, 4096).lstrip()
    if not head:
        raise IngestError("the file is empty", path=path, hint="remove it or replace it with data")
    if head[:1] == b"[":
        with open_bytes(path) as stream:
            text = stream.read()
        try:
            records = json.loads(text)
        except json.JSONDecodeError as error:
            raise IngestError(f"invalid JSON: {error.msg}", path=path, line=error.lineno, hint="fix the JSON") from None
        except UnicodeDecodeError:
            raise IngestError("bytes that are not valid UTF-8", path=path, hint="save the file as UTF-8") from None
        if not records:
            raise IngestError("the JSON array is empty", path=path, hint="remove it or add records")
        rows = [r if isinstance(r, dict) else {"value": r} for r in records]
        try:
            table = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            names = list(dict.fromkeys(name for row in rows for name in row))
            table = pa.table({name: _mixed_array([row.get(name) for row in rows]) for name in names})
        return Columns(table.schema.names, table.schema.types, iter(table.to_batches()))
    if by_value:
        return _json_lines_by_value(path, dict(types or {}))
    try:
        reader = pajson.open_json(open_bytes(path))
    except pa.ArrowInvalid as error:
        if _TYPE_CHANGE.search(str(error)):
            raise ReadAgain({}, "a JSON field changed type within the first block", by_value=True) from None
        raise IngestError(f"invalid JSON lines: {error}", path=path, hint="one JSON object per line is expected") from None

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                if _TYPE_CHANGE.search(str(error)):
                    raise ReadAgain({}, f"a JSON field changed type: {error}", by_value=True) from None
                raise IngestError(f"invalid JSON lines: {error}", path=path, hint="fix the JSON") from None

    return Columns(reader.schema.names, reader.schema.types, batches())


_TYPE_CHANGE = re.compile(r"changed from|Failed to convert JSON|couldn't parse|unexpected field", re.IGNORECASE)
JSON_LINES_PER_BATCH = 50_000


def _json_lines_by_value(path: Path, types: dict[str, pa.DataType]) -> Columns:
    """NDJSON parsed line by line (see :func:`read_json`): every field of the file, in the order first seen.

    A first pass finds the fields, so one first seen late is a column from the start (and a type
    in ``types`` for a field the file lacks adds nothing); types come from ``types``, else the first lines.
    """
    names = list(dict.fromkeys(name for chunk in _json_line_chunks(path) for row in chunk for name in row))
    if not names:
        raise IngestError("the file holds no JSON objects", path=path, hint="one JSON object per line is expected")
    chunks = _json_line_chunks(path)
    first = next(chunks, [])
    fixed = {name: types.get(name) or _json_array([row.get(name) for row in first], None, name).type for name in names}

    def batches() -> Iterator[pa.RecordBatch]:
        for chunk in itertools.chain([first], chunks):
            arrays = [_json_array([row.get(name) for row in chunk], fixed[name], name) for name in names]
            yield pa.record_batch(arrays, names=names)

    return Columns(names, [fixed[name] for name in names], batches())


def _json_line_chunks(path: Path) -> Iterator[list[dict]]:
    """The objects of the file's non-blank lines, :data:`JSON_LINES_PER_BATCH` at a time (a scalar as ``{"value": …}``)."""
    chunk: list[dict] = []
    for number, line in enumerate(lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line.decode("utf-8-sig"))
        except json.JSONDecodeError as error:
            raise IngestError(f"invalid JSON: {error.msg}", path=path, line=number, hint="fix the JSON on that line") from None
        except UnicodeDecodeError:
            raise IngestError("bytes that are not valid UTF-8", path=path, line=number, hint="save the file as UTF-8") from None
        chunk.append(record if isinstance(record, dict) else {"value": record})
        if len(chunk) == JSON_LINES_PER_BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json_array(values: list[Any], target: pa.DataType | None, name: str) -> pa.Array:
    """``values`` as ``target`` (inferred when None); raises ReadAgain when they need a wider type."""
    if target is not None and pa.types.is_string(target):
        return pa.array(as_text(values), pa.string())
    found = _mixed_array(values)
    if target is None or found.type == target or pa.types.is_null(found.type):
        return found if target is None else found.cast(target)
    wider = widen(target, found.type) or pa.string()
    if wider == target:
        try:
            return found.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            wider = pa.string()
    raise ReadAgain({name: wider}, f"field {name!r} holds {found.type} values after {target} ones", by_value=True)


def read_excel(path: Path, sheet: str | None) -> Columns:
    """One sheet of a workbook (the first when ``sheet`` is None); its first row is the header."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        rows = workbook.get_sheet_by_name(sheet or workbook.sheet_names[0]).to_python(skip_empty_area=True)
    except Exception as error:  # calamine raises its own exception types
        raise IngestError(f"not a readable Excel workbook ({error})", path=path, hint="re-save it as .xlsx") from None
    if len(rows) < 2:
        raise IngestError(f"sheet {sheet!r} has no header and data rows", path=path, hint="add data or remove the sheet")
    header = [str(h) if h is not None else "" for h in rows[0]]
    columns = zip(*(list(row) + [None] * (len(header) - len(row)) for row in rows[1:]), strict=False)
    arrays = [_excel_array(list(values)) for values in columns]
    table = pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))])
    return Columns(header, [a.type for a in arrays], iter(table.to_batches()))


def _excel_array(values: list[Any]) -> pa.Array:
    """Excel stores every number as a double: a column of whole numbers is read as integers."""
    cleaned = [None if v == "" else v for v in values]
    numbers = [v for v in cleaned if isinstance(v, float)]
    if all(_whole(n) for n in numbers) or any(isinstance(v, str) for v in cleaned):
        cleaned = [int(v) if _whole(v) else v for v in cleaned]
    return _mixed_array(cleaned)


def _whole(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) < 2**53


def _mixed_array(values: list[Any]) -> pa.Array:
    """``values`` as one Arrow array: their common type, else strings (JSON text for lists and objects)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array(as_text(values), pa.string())


# ------------------------------------------------------------------------------------ custom


def load_callable(spec: str, *, base_dir: Path) -> Callable[..., Any]:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"`` (relative to ``base_dir``)."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ConfigError(f"reader {spec!r} must look like 'module:function' or 'file.py:function'")
    try:
        if module_name.endswith(".py"):
            file = (base_dir / module_name).resolve()
            module_spec = importlib.util.spec_from_file_location(f"autoflux_reader_{file.stem}", file)
            if module_spec is None or module_spec.loader is None or not file.exists():
                raise ImportError(f"no such file {file}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot load reader {spec!r}: {error}", hint="check ingest.readers in autoflux.yml") from None


def read_custom(path: Path, function: Callable[..., Any], options: dict[str, Any]) -> Columns:
    """Run a user reader; it may return a RecordBatchReader, Arrow table, batches, or a pandas/polars frame."""
    try:
        result = function(path, **options)
        table_or_reader = _to_arrow(result)
    except IngestError:
        raise
    except Exception as error:
        raise IngestError(f"custom reader failed: {type(error).__name__}: {error}", path=path, hint="fix the reader") from None
    if isinstance(table_or_reader, pa.Table):
        return Columns(table_or_reader.schema.names, table_or_reader.schema.types, iter(table_or_reader.to_batches()))
    return Columns(table_or_reader.schema.names, table_or_reader.schema.types, iter(table_or_reader))


def _to_arrow(result: Any) -> pa.Table | pa.RecordBatchReader:
    if isinstance(result, pa.RecordBatchReader | pa.Table):
        return result
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result])
    if hasattr(result, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(result)
    if type(result).__module__.startswith("pandas"):
        return pa.Table.from_pandas(result, preserve_index=False)
    if isinstance(result, Iterable):
        batches = iter(result)
        first = next(batches, None)
        if first is None:
            raise TypeError("the reader yielded no batches")
        first = first if isinstance(first, pa.RecordBatch) else pa.record_batch(first)

        def chained() -> Iterator[pa.RecordBatch]:
            yield first
            yield from batches

        return pa.RecordBatchReader.from_batches(first.schema, chained())
    raise TypeError(f"a reader must return Arrow data or a DataFrame, not {type(result).__name__}")
