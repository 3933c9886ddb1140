"""A content hash of a frame: the same rows and values give the same hash, whatever the row order or engine.

Canonical form, value by value (each becomes a 64-bit number):

- null → a fixed constant; boolean → 1 or 2, mixed;
- numbers (integers, floats, decimals) compare by value: an integer, or a float that is a whole
  number below 2⁵³, is that integer; any other float is rounded to 12 significant digits,
  ``(mantissa, exponent)`` (so 1-ulp differences between engines' arithmetic do not change the
  hash); NaN and ±inf are constants;
- date → days since the epoch; timestamp → microseconds since the epoch (UTC when zoned);
- text and anything else → the first 8 bytes of BLAKE2b over its UTF-8 text (Arrow's cast to string).

Each is mixed with a tag of its kind (SplitMix64). A row is its values in the order of the sorted
column names, folded ``h = mix(h ^ value)``. The hash is SHA-256 over the sorted column names, the
row count and the sum of the row hashes modulo 2⁶⁴ (a sum, so duplicated rows count), in hex.
"""

from __future__ import annotations

import hashlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_DIGITS = 12
_LOWEST_POWER = -300  # 10**-300 is a normal double; a subnormal value's exponent goes below
_POWERS_FROM = -340  # 10**k for every exponent a double's digits give, looked up, not computed value by value
_POWERS_OF_TEN = np.power(10.0, np.arange(_POWERS_FROM, 309).astype(np.float64))
_BATCH = 1 << 20
_NULL, _TRUE, _FALSE, _NAN, _INF, _NEG_INF = (np.uint64(x) for x in (0x9E37_79B9, 1, 2, 3, 4, 5))
_INTEGER, _FLOAT, _DATE, _TIME, _TEXT = (np.uint64(x) for x in (11, 12, 13, 14, 15))


def content_hash(table: pa.Table) -> str:
    """The order- and engine-independent hash of ``table`` (see the module docstring)."""
    digest = ContentHash(table.column_names)
    digest.add(table)
    return digest.hexdigest()


class ContentHash:
    """:func:`content_hash` fed part by part: the same hash whatever the parts (rows may come in any batches)."""

    def __init__(self, names: list[str]) -> None:
        self.names = sorted(names)
        self.rows = 0
        self._total = np.uint64(0)

    def add(self, rows: pa.Table | pa.RecordBatch) -> None:
        """Fold in ``rows`` (with the columns named at the start)."""
        table = pa.Table.from_batches([rows]) if isinstance(rows, pa.RecordBatch) else rows
        # Columns are turned into numbers on two threads (numpy and Arrow release the GIL), folded in order here.
        with np.errstate(over="ignore"), ThreadPoolExecutor(2) as pool:
            for batch in table.select(self.names).to_batches(max_chunksize=_BATCH):
                hashed = np.full(batch.num_rows, 0x51ED_270B, dtype=np.uint64)
                pending: deque[Future[np.ndarray]] = deque()
                for column in batch.columns:
                    pending.append(pool.submit(_values, column))
                    if len(pending) > 2:
                        hashed = _mix(hashed ^ pending.popleft().result())
                for values in pending:
                    hashed = _mix(hashed ^ values.result())
                self._total = self._total + hashed.sum(dtype=np.uint64)
        self.rows += table.num_rows

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        digest.update("\x1f".join(self.names).encode())
        digest.update(f"\n{self.rows}\n{int(self._total)}".encode())
        return digest.hexdigest()


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, element-wise (wrapping uint64 arithmetic)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _values(column: pa.Array) -> np.ndarray:
    """One uint64 per value of ``column`` (the canonical form of the module docstring)."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    nulls = pc.is_null(column).to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind):
        hashed = np.where(pc.fill_null(column, False).to_numpy(zero_copy_only=False), _TRUE, _FALSE)
    elif pa.types.is_integer(kind):
        hashed = _mix(_INTEGER ^ pc.fill_null(column, 0).cast(pa.int64()).to_numpy().view(np.uint64))
    elif pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        hashed = _floats(pc.fill_null(column.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False))
    elif pa.types.is_date(kind):
        hashed = _mix(_DATE ^ pc.fill_null(column.cast(pa.date32()).cast(pa.int32()), 0).cast(pa.int64()).to_numpy().view(np.uint64))
    elif pa.types.is_timestamp(kind):
        micros = column.cast(pa.timestamp("us", tz=kind.tz)).cast(pa.int64())
        hashed = _mix(_TIME ^ pc.fill_null(micros, 0).to_numpy().view(np.uint64))
    elif pa.types.is_null(kind):
        hashed = np.zeros(len(column), dtype=np.uint64)
    else:
        hashed = _texts(column.cast(pa.string()))
    return np.where(nulls, _NULL, hashed)


def _floats(values: np.ndarray) -> np.ndarray:
    whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2.0**53)
    fraction = np.isfinite(values) & ~whole
    hashed = np.zeros(len(values), dtype=np.uint64)
    hashed[whole] = _mix(_INTEGER ^ values[whole].astype(np.int64).view(np.uint64))
    if fraction.any():
        kept = values[fraction]
        exponent = np.floor(np.log10(np.abs(kept))).astype(np.int64) - (_DIGITS - 1)
        mantissa = np.round(_over_power_of_ten(kept, exponent))
        over = np.abs(mantissa) >= 10.0**_DIGITS  # log10 put the value a digit low
        exponent[over] += 1
        mantissa[over] = np.round(_over_power_of_ten(kept[over], exponent[over]))
        mantissa = mantissa.astype(np.int64)
        hashed[fraction] = _mix(_mix(_FLOAT ^ mantissa.view(np.uint64)) ^ exponent.view(np.uint64))
    hashed[np.isnan(values)] = _NAN
    hashed[np.isposinf(values)] = _INF
    hashed[np.isneginf(values)] = _NEG_INF
    return hashed


def _over_power_of_ten(values: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``values / 10**exponent``, in two steps where ``10**exponent`` is below a double's range (subnormal values:
    one step would divide by zero); elsewhere the second step divides by 1, exactly."""
    first = np.maximum(exponent, _LOWEST_POWER)
    return values / _POWERS_OF_TEN[first - _POWERS_FROM] / _POWERS_OF_TEN[exponent - first - _POWERS_FROM]


def _texts(column: pa.Array) -> np.ndarray:
    """BLAKE2b of each distinct text (hashed once), spread over the values."""
    encoded = (
        pc.dictionary_encode(pc.fill_null(column, "")).combine_chunks()
        if isinstance(column, pa.ChunkedArray)
        else pc.dictionary_encode(pc.fill_null(column, ""))
    )
    digests = np.array(
        [int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") for text in encoded.dictionary.to_pylist()],
        dtype=np.uint64,
    )
    return _mix(_TEXT ^ digests[encoded.indices.to_numpy(zero_copy_only=False)]) if len(digests) else np.zeros(len(column), dtype=np.uint64)
