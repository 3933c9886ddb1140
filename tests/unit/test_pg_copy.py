"""The binary COPY encoder on its own: the layout of a row, and batches that are slices of larger arrays.

The values' round trip through a real server is tests/integration/postgres (test_every_type_...).
"""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal

import pyarrow as pa

from autoflux.engines.pg_copy import BinaryCopy, encode


def test_a_row_is_its_field_count_then_each_field_length_first():
    batch = pa.record_batch(
        {
            "i": pa.array([1, None], pa.int64()),
            "s": pa.array(["ab", None]),
            "d": pa.array([dt.date(2000, 1, 2), None]),
            "n": pa.array([Decimal("-1.50"), None], pa.decimal128(5, 2)),
        }
    )
    first = struct.pack(">h", 4) + struct.pack(">iq", 8, 1) + struct.pack(">i", 2) + b"ab" + struct.pack(">ii", 4, 1)
    first += struct.pack(">ihhHhHH", 12, 2, 0, 0x4000, 2, 1, 5000)  # -1.50: digits 1 | 5000 (base 10,000), weight 0, scale 2
    second = struct.pack(">h", 4) + struct.pack(">i", -1) * 4
    assert encode(batch) == first + second


def test_a_slice_is_encoded_as_the_same_rows_standing_alone():
    batch = pa.record_batch(
        {
            "i": pa.array([None if n % 3 == 0 else n for n in range(50)], pa.int32()),
            "f": pa.array([n / 7 if n % 4 else None for n in range(50)], pa.float64()),
            "b": pa.array([n % 2 == 0 if n % 5 else None for n in range(50)]),
            "t": pa.array([dt.datetime(1999, 1, 1, n) if n < 24 else None for n in range(50)], pa.timestamp("us", tz="UTC")),
            "s": pa.array([f"v{n}" * n if n % 6 else None for n in range(50)]),
        }
    )
    for start, length in [(1, 7), (13, 30), (49, 1)]:
        piece = batch.slice(start, length)
        alone = pa.RecordBatch.from_pylist(piece.to_pylist(), schema=batch.schema)
        assert piece.column(0).offset == start and alone.column(0).offset == 0
        assert encode(piece) == encode(alone)


def test_the_stream_has_header_rows_and_trailer_and_keeps_a_read_error():
    batch = pa.record_batch({"i": pa.array([7], pa.int16())})
    stream = BinaryCopy([batch, batch.slice(0, 0)])
    parts = [stream.read(1 << 20) for _ in range(4)]
    assert parts == [b"PGCOPY\n\xff\r\n\x00" + bytes(8), struct.pack(">hih", 1, 2, 7), struct.pack(">h", -1), b""]

    def failing():
        yield batch
        raise OSError("the Delta table's file went away")

    broken = BinaryCopy(failing())
    broken.read(), broken.read()
    try:
        broken.read()
    except OSError:
        pass
    assert isinstance(broken.error, OSError)
