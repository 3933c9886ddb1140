"""CSV and TSV files (optionally compressed), streamed: the dialect sniffed once for every engine, then pyarrow.

Type policy: Arrow infers each column's type from the first block (``ingest.csv.block_size``,
4 MiB by default). When a later value does not fit, the column is widened — integer → double →
string, date → timestamp → string, any other type → string — and the file is read again, so a
load never fails or drops rows because of a late surprise. A value longer than a block is read
again with bigger blocks. Values are kept as written: a number column whose text a number would
not give back (``08123``, ``+44``, an integer past 64 bits in a column of fractions) is text, and
text values keep every byte. Fields equal to one of ``null_values`` are null, in every column.

Rows with the wrong number of fields are skipped and kept in :attr:`Columns.bad_rows`; the
writer decides whether the file may load without them (``ingest.bad_rows``).
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from autoflux.config import DEFAULT_NULL_VALUES
from autoflux.exceptions import IngestError
from autoflux.ingest.readers import BadRow, BadRows, Columns, ReadAgain
from autoflux.ingest.readers.encoding import detect_encoding, find_line, first_invalid_line, open_bytes, read_head, split_suffixes
from autoflux.ingest.schema import unique_column_names

if TYPE_CHECKING:
    from autoflux.config import CsvSettings


class WidenColumns(ReadAgain):
    """Values in a CSV do not fit the inferred types: read it again with ``types`` (name → type)."""


@dataclass(frozen=True)
class CsvOptions:
    delimiter: str | None = None
    encoding: str | None = None
    block_size: int = 4 << 20
    null_values: tuple[str, ...] = DEFAULT_NULL_VALUES

    @classmethod
    def of(cls, settings: CsvSettings, *, block_size: int | None = None) -> CsvOptions:
        """The options ``ingest.csv`` config gives (``block_size``, when given, instead of its own)."""
        return cls(settings.delimiter, settings.encoding, block_size or settings.block_size, tuple(settings.null_values))


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


READ_AHEAD_BLOCKS = 4  # blocks Arrow may read ahead of the batches taken (it would read 32: 128 MB at 4 MB blocks)
READ_AHEAD_WAIT = 1.0  # seconds a read waits for a batch to be taken before it goes on anyway


class _QuoteCounter(io.RawIOBase):
    """Passes a byte stream through, counting quote characters to catch an unclosed quote.

    With ``ahead``, a read waits (up to ``READ_AHEAD_WAIT`` seconds) while that many reads are ahead
    of the batches :meth:`taken`: Arrow's read-ahead, bounded. :meth:`close` lets every read go.
    """

    def __init__(self, stream: pa.NativeFile, ahead: int | None = None) -> None:
        self._stream = stream
        self._room = threading.Semaphore(ahead) if ahead else None
        self.quotes = 0
        self.bytes = 0

    def readable(self) -> bool:
        return True

    def taken(self) -> None:
        """A batch was taken: one more read may go ahead."""
        if self._room is not None:
            self._room.release()

    def read(self, size: int = -1) -> bytes:
        if self._room is not None:
            self._room.acquire(timeout=READ_AHEAD_WAIT)
        data = self._stream.read(size if size >= 0 else None)
        self.quotes += data.count(b'"')
        self.bytes += len(data)
        return data

    def readinto(self, buffer) -> int:  # pragma: no cover - pyarrow calls read()
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def stop_waiting(self) -> None:
        """Let every read go (before Arrow's reader closes: it waits for the read under way)."""
        if self._room is not None:
            self._room.release(READ_AHEAD_BLOCKS * 8)

    def close(self) -> None:
        self.stop_waiting()
        self._stream.close()
        super().close()


_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)[^:]*: invalid value '(.*)'", re.S)
_RAGGED_ROW = re.compile(r"Expected (\d+) columns, got (\d+): (.*)", re.S)


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


@dataclass(frozen=True)
class ColumnTypes:
    """The lake type of each column; with every block read, the positions of the number columns written plainly in
    every value (:attr:`~autoflux.ingest.readers.Columns.plain_numbers`), else none."""

    types: list[pa.DataType]
    plain_numbers: frozenset[int]


def first_block_types(path: Path, options: CsvOptions, *, every_block: bool = False) -> ColumnTypes:
    """The lake type of each column as :func:`read_csv` infers it from the file's first block.

    Values kept as written (leading zeros, ``+``) and values of the first block that do not fit
    are applied, as the embedded engine does; values further on are not looked at (an engine that
    reads the rest checks them, and widens as :func:`read_csv` would). With ``every_block``
    they are, so the types are those the embedded engine gives the whole file.
    """
    from dataclasses import replace

    from autoflux.ingest.schema import lake_type

    types: dict[str, pa.DataType] = {}
    block_size = options.block_size
    for _ in range(64):
        try:
            columns = read_csv(path, replace(options, block_size=block_size), types, strict=(), find_plain_numbers=every_block)
            batches = columns.batches
            try:
                if every_block:
                    for _ in batches:
                        pass
                else:
                    next(batches, None)
            finally:
                batches.close()  # type: ignore[attr-defined]
        except ReadAgain as again:
            types |= again.types
            block_size = again.block_size or block_size
            continue
        return ColumnTypes([lake_type(t) for t in columns.types], frozenset(columns.plain_numbers))
    raise IngestError("column types kept changing while reading", path=path, hint="set ingest.types for its columns")


def read_csv(
    path: Path,
    options: CsvOptions,
    hints: dict[str, pa.DataType],
    *,
    strict: Iterable[str] | None = None,
    text: bool = False,
    find_plain_numbers: bool = False,
) -> Columns:
    """Stream a CSV/TSV file (optionally compressed); see the module docstring for the type policy.

    ``hints`` map clean or original column names to types. A value that does not fit is an error
    in the columns named in ``strict`` (all hinted columns when None: the user's type hints), and
    widens the others (types chosen by an earlier read). ``text`` reads the columns without a
    hint as strings, exactly as written. ``find_plain_numbers`` fills :attr:`Columns.plain_numbers`
    (text columns' null spellings are then made null here, not by Arrow's reader: a little slower).
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

    def open_reader(types: dict[str, pa.DataType], strings_can_be_null: bool = True) -> tuple[_QuoteCounter, Any]:
        bad_rows.rows.clear()
        convert_options = pacsv.ConvertOptions(
            column_types=types, null_values=list(options.null_values), strings_can_be_null=strings_can_be_null
        )
        # Bounded only when Arrow reads the stream itself, a block a read: a transcoded one is read in pieces of its own.
        counter = _QuoteCounter(open_bytes(path), ahead=READ_AHEAD_BLOCKS if read_options.encoding == "utf8" else None)
        try:
            return counter, pacsv.open_csv(counter, read_options=read_options, parse_options=parse_options, convert_options=convert_options)
        except pa.ArrowInvalid as error:
            counter.close()
            raise _csv_error(path, error, clean, strict_hints, encoding, delimiter, options.block_size) from None

    counter, reader = open_reader(column_types)

    def close() -> None:
        counter.stop_waiting()
        reader.close()  # stops Arrow's read-ahead before its stream goes away
        counter.close()

    # Numbers are read as text and converted here, where a value a number would not give back is seen.
    numbers = {
        name: kind
        for name, kind in zip(clean, reader.schema.types, strict=True)
        if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and name not in strict_hints
    }
    if numbers:
        as_text = dict(zip(clean, reader.schema.types, strict=True)) | {name: pa.string() for name in numbers}
        close()
        # To tell a null spelled out from an empty field (plain_numbers), text comes with its null spellings (_spelled_nulls).
        counter, reader = open_reader(as_text, strings_can_be_null=not find_plain_numbers)

    if any(pa.types.is_binary(t) for t in reader.schema.types):
        close()
        raise _undecodable(path, encoding)
    unknown = {n: pa.string() for n, t in zip(clean, reader.schema.types, strict=True) if pa.types.is_null(t)}
    if unknown:
        close()
        raise WidenColumns(unknown, "no values in the first block")
    positions = {index: numbers[name] for index, name in enumerate(clean) if name in numbers}
    plain = set(positions) if find_plain_numbers else set()
    spellings = pa.array(options.null_values, pa.string()) if find_plain_numbers and numbers else None

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
                counter.taken()
                rows += batch.num_rows
                last = batch.slice(batch.num_rows - 1) if batch.num_rows else last
                if spellings is not None:
                    batch = _spelled_nulls(batch, spellings, plain)
                yield _with_numbers(batch, positions, plain) if positions else batch
        finally:
            close()
        # A quote that never closes swallows the rest of the file into the last row's value.
        suspect = counter.quotes % 2 or _spans_lines(last)
        if suspect and (line := unclosed_quote_line(path, encoding, delimiter)) is not None:
            raise _unclosed_quote(path, line)

    notes = [f"delimiter {delimiter!r}, encoding {encoding}"]
    types = [positions.get(i, kind) for i, kind in enumerate(reader.schema.types)]
    return Columns(names, types, batches(), notes=notes, bytes_read=lambda: counter.bytes, bad_rows=bad_rows, plain_numbers=plain)


# Number texts a number does not give back: a sign +, a leading zero, and (in a column of
# fractions) an integer too long for a double to hold exactly.
LONG_INTEGER = r"^-?[0-9]{16,}$"  # more digits than a double holds exactly
INFINITY_WORDS = ("inf", "infinity")  # an infinity spelt out, in any case, after its sign
_PARSE_FAILURE = re.compile(r"Failed to parse string: '(.*)' as a scalar of type (\w+)", re.S)
_PLUS, _MINUS, _ZERO = b"+-0"
_IS_SPACE = np.isin(np.arange(256), list(b" \t\r\n\v\f"))  # by byte value
_IS_DIGIT = np.isin(np.arange(256), list(b"0123456789"))
_SPACE, _SIGN_OR_ZERO = 1, 2
_FIRST_BYTE = np.zeros(256, dtype=np.uint8)  # by byte value: what a value's first byte may make of it
_FIRST_BYTE[_IS_SPACE] = _SPACE
_FIRST_BYTE[list(b"+-0")] = _SIGN_OR_ZERO


def _with_numbers(batch: pa.RecordBatch, positions: dict[int, pa.DataType], plain: set[int]) -> pa.RecordBatch:
    """``batch`` with the number columns read as text (``positions``: index → type) converted.

    Raises :class:`WidenColumns` (text, or the wider number type) when a value does not fit or
    would not read back as written. Takes from ``plain`` the columns with white space around a
    value, or an infinity or NaN.
    """
    arrays, schema = list(batch.columns), batch.schema
    for index, kind in positions.items():
        name, values = schema.field(index).name, arrays[index]
        changed = _not_as_written(values, pa.types.is_integer(kind))
        if changed is None:  # white space around a value: read as Arrow reads numbers, trimmed
            plain.discard(index)
            values = pc.utf8_trim_whitespace(values)
            changed = _not_as_written(values, pa.types.is_integer(kind))
        if changed.any():
            example = values.filter(pa.array(changed))[0].as_py()
            raise WidenColumns({name: pa.string()}, f"value {example!r} is kept as written")
        try:
            arrays[index] = pc.cast(values, kind)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            failure = _PARSE_FAILURE.search(str(error))
            wider = _wider(str(kind), failure[1]) if failure else pa.string()
            raise WidenColumns({name: wider}, f"a value is not {kind}") from None
        if pa.types.is_floating(kind) and not pc.all(pc.is_finite(arrays[index])).as_py():  # an infinity, or NaN
            plain.discard(index)
            if (beyond := _beyond_range(values, arrays[index])) is not None:
                raise WidenColumns({name: pa.string()}, f"value {beyond!r} is beyond a {kind}'s range, kept as written")
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema([f.with_type(a.type) for f, a in zip(schema, arrays, strict=True)]))


def _spelled_nulls(batch: pa.RecordBatch, spellings: pa.Array, plain: set[int]) -> pa.RecordBatch:
    """``batch`` with the text columns' values that are one of the null ``spellings`` made null (as Arrow's reader
    would); takes from ``plain`` the columns with such a value other than an empty field."""
    arrays = list(batch.columns)
    for index, values in enumerate(arrays):
        if not pa.types.is_string(values.type) or not pc.any(null := pc.is_in(values, value_set=spellings)).as_py():
            continue
        if index in plain and pc.any(pc.and_(null, pc.greater(pc.binary_length(values), 0))).as_py():
            plain.discard(index)
        arrays[index] = pc.if_else(null, pa.scalar(None, values.type), values)
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def _not_as_written(values: pa.Array, integer: bool) -> np.ndarray | None:
    """Which of ``values`` (text) the number they read as would not give back: a sign ``+``; a leading zero
    (``007``, ``-01``; for an integer any text after a first ``0``, as ``0x1F``, which Arrow reads as 31);
    for a fraction, 16 digits or more. None when a value starts or ends with white space (check the
    trimmed values).

    Looks at the first bytes and the last of each value in place (numpy over Arrow's buffers), not value by value.
    """
    validity, offsets, data = values.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int64 if pa.types.is_large_string(values.type) else np.int32)
    bounds = bounds[values.offset : values.offset + len(values) + 1]
    changed = np.zeros(len(values), dtype=bool)
    if data is None or bounds[-1] == bounds[0]:  # no value has a byte
        return changed
    text = np.frombuffer(data, dtype=np.uint8)
    starts, ends = bounds[:-1], bounds[1:]
    lengths = ends - starts
    present = lengths > 0
    if values.null_count:
        present &= _bits(validity, values.offset, len(values))
    # "clip": an empty value's byte is read from inside the data and then not looked at
    first = _FIRST_BYTE.take(text.take(starts, mode="clip"))
    if (((first == _SPACE) | _IS_SPACE.take(text.take(ends - 1, mode="clip"))) & present).any():
        return None
    at = np.flatnonzero((first == _SIGN_OR_ZERO) & present)  # the values that start with + - or 0
    if at.size:
        start, length = starts[at], lengths[at]
        lead, second = text.take(start), text.take(start + 1, mode="clip")
        leading_zero = (lead == _ZERO) & (length > 1)
        negative_zero = (lead == _MINUS) & (second == _ZERO) & (length > 2)
        if integer:
            changed[at] = (lead == _PLUS) | leading_zero | negative_zero
        else:
            third = text.take(start + 2, mode="clip")
            changed[at] = (lead == _PLUS) | (leading_zero & _IS_DIGIT.take(second)) | (negative_zero & _IS_DIGIT.take(third))
    if not integer:
        long = (lengths >= 16) & present
        if long.any():
            changed[long] |= pc.match_substring_regex(values.filter(pa.array(long)), LONG_INTEGER).to_numpy(zero_copy_only=False)
    return changed


def _bits(bitmap: pa.Buffer, offset: int, length: int) -> np.ndarray:
    """An Arrow bitmap's bits ``offset`` to ``offset + length`` as booleans."""
    return np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=offset + length, bitorder="little")[offset:].view(bool)


def _beyond_range(texts: pa.Array, numbers: pa.Array) -> str | None:
    """A text that reads as an infinity without spelling one (``1E400``), or None."""
    infinite = pc.is_inf(numbers)
    if not pc.any(infinite).as_py():
        return None
    texts = texts.filter(infinite).to_pylist()
    return next((text for text in texts if text.strip().lstrip("+-").lower() not in INFINITY_WORDS), None)


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
