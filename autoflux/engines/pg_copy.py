"""PostgreSQL's binary ``COPY`` format, written from Arrow record batches.

A row is a 16-bit field count, then per field a 32-bit length (-1 for NULL) and the value in
PostgreSQL's binary form (big-endian numbers, days and microseconds since 2000-01-01, text as UTF-8).
Lengths and fixed-width values are laid out side by side with numpy, then each row's pieces are
joined by Arrow's ``binary_join_element_wise``: no Python runs per value, except for ``numeric``
(rare in raw tables), which is encoded value by value.
See "Binary Format" in https://www.postgresql.org/docs/current/sql-copy.html.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, header extension length
TRAILER = struct.pack(">h", -1)
NOTHING = pa.scalar(b"", pa.large_binary())  # the row join's separator
EPOCH_DAYS = 10_957  # 2000-01-01 (PostgreSQL's epoch) in days since 1970-01-01
EPOCH_MICROSECONDS = EPOCH_DAYS * 86_400_000_000
NUMERIC_POSITIVE, NUMERIC_NEGATIVE = 0x0000, 0x4000


class BinaryCopy:
    """A file-like ``read()`` over the binary COPY stream of ``batches`` (for psycopg2's ``copy_expert``).

    An error raised while producing the stream is kept in :attr:`error`: the driver only reports
    that ``read()`` failed.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._parts = _stream(batches)
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        try:
            return next(self._parts, b"")
        except BaseException as error:
            self.error = error
            raise


def _stream(batches: Iterable[pa.RecordBatch]) -> Iterator[bytes]:
    yield HEADER
    for batch in batches:
        if batch.num_rows:  # an empty read() would end the COPY
            yield encode(batch)
    yield TRAILER


def encode(batch: pa.RecordBatch) -> bytes:
    """The rows of ``batch`` in PostgreSQL's binary COPY format (without the stream's header and trailer)."""
    rows = batch.num_rows
    if not rows:
        return b""
    pieces: list[np.ndarray | pa.Array] = [np.broadcast_to(np.int16(batch.num_columns), rows)]
    for column in batch.columns:
        pieces += _field(column)
    joined = pc.binary_join_element_wise(*_merged(pieces, rows), NOTHING, null_handling="replace", null_replacement=b"")
    start, end = np.frombuffer(joined.buffers()[1], np.int64, rows + 1, joined.offset * 8)[[0, -1]]
    return joined.buffers()[2][int(start) : int(end)].to_pybytes()


def _field(column: pa.Array) -> list[np.ndarray | pa.Array]:
    """One column's fields as pieces of the row: numpy arrays are fixed-width values (sent big-endian), Arrow
    arrays are variable-width bytes (a null sends nothing). The length comes first, -1 for a null."""
    kind = column.type
    if pa.types.is_decimal(kind):
        column = pa.array([None if v is None else _numeric(v, kind.scale) for v in column.to_pylist()], pa.large_binary())
    elif pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        column = column.cast(pa.large_binary())
    else:
        values = _fixed_values(column)
        width = values.dtype.itemsize
        if not column.null_count:
            return [np.broadcast_to(np.int32(width), len(column)), values]
        valid = pc.is_valid(column)
        lengths = np.where(valid.to_numpy(zero_copy_only=False), np.int32(width), np.int32(-1))
        return [lengths, _as_binary(_block([values], len(column)), valid)]
    return [pc.binary_length(column).fill_null(-1).to_numpy().astype(np.int32, copy=False), column]


def _merged(pieces: list[np.ndarray | pa.Array], rows: int) -> list[pa.Array]:
    """Each run of fixed-width pieces made one binary array (a block of bytes per row); Arrow pieces as they are."""
    merged: list[pa.Array] = []
    run: list[np.ndarray] = []
    for piece in [*pieces, None]:
        if isinstance(piece, np.ndarray):
            run.append(piece)
            continue
        if run:
            merged.append(_as_binary(_block(run, rows)))
            run = []
        if piece is not None:
            merged.append(piece)
    return merged


def _block(run: list[np.ndarray], rows: int) -> np.ndarray:
    """The values of ``run`` side by side, big-endian: ``rows × (sum of their widths)`` bytes."""
    block = np.empty((rows, sum(values.dtype.itemsize for values in run)), np.uint8)
    at = 0
    for values in run:
        width = values.dtype.itemsize
        block[:, at : at + width].view(values.dtype.newbyteorder(">"))[:, 0] = values
        at += width
    return block


def _as_binary(block: np.ndarray, valid: pa.BooleanArray | None = None) -> pa.Array:
    """A ``rows × width`` byte block as a binary array of one value per row (null where ``valid`` is false), not copied."""
    rows, width = block.shape
    offsets = pa.py_buffer(np.arange(0, (rows + 1) * width, width, dtype=np.int64))
    bitmap = None if valid is None else valid.buffers()[1]  # is_valid's result: offset 0, no nulls of its own
    return pa.LargeBinaryArray.from_buffers(pa.large_binary(), rows, [bitmap, offsets, pa.py_buffer(block)])


def _fixed_values(column: pa.Array) -> np.ndarray:
    """The column's values as numpy, in the unit PostgreSQL takes (the slots of nulls hold any value).

    Dates and timestamps move from 1970 to 2000: a Delta table's lie within years 1 to 9999, far from wrapping around.
    """
    kind = column.type
    if pa.types.is_boolean(kind):
        return column.fill_null(False).to_numpy(zero_copy_only=False).astype(np.uint8)
    if pa.types.is_date32(kind):
        return _raw(column) - np.int32(EPOCH_DAYS)
    if pa.types.is_timestamp(kind) and kind.unit == "us":
        return _raw(column) - np.int64(EPOCH_MICROSECONDS)
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        return _raw(column)
    raise TypeError(f"the binary COPY does not send {kind}")


def _raw(column: pa.Array) -> np.ndarray:
    """The data buffer of a fixed-width column as numpy, without copying."""
    kind = column.type  # signed integers, floats, date32 and timestamps: unsigned ones were widened to signed
    dtype = np.dtype(f"{'f' if pa.types.is_floating(kind) else 'i'}{kind.bit_width // 8}")
    return np.frombuffer(column.buffers()[1], dtype, len(column) + column.offset)[column.offset :]


def _numeric(value: Decimal, scale: int) -> bytes:
    """A decimal in PostgreSQL's binary ``numeric``: base-10000 digits, weight of the first, sign, display scale."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)  # a decimal128 holds no NaN or infinity
    text = "".join(map(str, digits)) + "0" * (exponent % 4)
    exponent -= exponent % 4
    text = "0" * (-len(text) % 4) + text
    groups = [int(text[i : i + 4]) for i in range(0, len(text), 4)]
    weight = len(groups) - 1 + exponent // 4
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        return struct.pack(">hhHh", 0, 0, NUMERIC_POSITIVE, scale)
    return struct.pack(f">hhHh{len(groups)}H", len(groups), weight, NUMERIC_NEGATIVE if sign else NUMERIC_POSITIVE, scale, *groups)
