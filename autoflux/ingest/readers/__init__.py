"""Readers turn one data file into a stream of Arrow record batches with its original column names.

One module per format: :mod:`.csv` (CSV/TSV), :mod:`.json` (JSON arrays, NDJSON), :mod:`.excel`,
:mod:`.parquet`, :mod:`.custom` (the user's readers, ``ingest.readers``); :mod:`.encoding` opens
a file's bytes (compression by suffix) and finds its text encoding and lines.

Each reader returns :class:`Columns`; :func:`autoflux.ingest.writer` renames and casts them with
the rules of :mod:`autoflux.ingest.schema`. Reading is streaming (bounded memory) for CSV/TSV,
NDJSON and Parquet; JSON arrays and Excel sheets are read whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.readers.encoding import locate_lines
from autoflux.ingest.schema import as_text

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
    # CSV read with find_plain_numbers: positions of the number columns whose every value read so far is written
    # plainly: a number with no white space around it, finite, or an empty field (null). Spark's own CSV
    # parser reads such a column to the same numbers and nulls.
    plain_numbers: set[int] = field(default_factory=set)


class ReadAgain(Exception):
    """The file must be read again: with column ``types`` (name → type), a bigger ``block_size``,
    and/or ``by_value`` (JSON lines parsed value by value, when Arrow's block-wise inference cannot).
    """

    def __init__(self, types: dict[str, pa.DataType], reason: str, *, block_size: int | None = None, by_value: bool = False) -> None:
        super().__init__(reason)
        self.types, self.reason, self.block_size, self.by_value = types, reason, block_size, by_value


def mixed_array(values: list[Any]) -> pa.Array:
    """``values`` as one Arrow array: their common type, else strings (JSON text for lists and objects)."""
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return pa.array(as_text(values), pa.string())
