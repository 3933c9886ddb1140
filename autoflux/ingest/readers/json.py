"""JSON files: NDJSON (one object per line) streamed, a JSON array of objects read whole."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.readers import Columns, ReadAgain, mixed_array
from autoflux.ingest.readers.encoding import lines, open_bytes, read_head
from autoflux.ingest.schema import as_text, widen


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
            table = pa.table({name: mixed_array([row.get(name) for row in rows]) for name in names})
        return Columns(table.schema.names, table.schema.types, iter(table.to_batches()))
    if by_value:
        return _json_lines_by_value(path, dict(types or {}))
    # What Arrow's reader refuses (a field that changes type, a number beyond a double, a line that is
    # not JSON) is read again line by line, which keeps such values or names the line that is wrong.
    try:
        reader = pajson.open_json(open_bytes(path))
    except pa.ArrowInvalid as error:
        raise ReadAgain({}, f"Arrow's JSON reader stopped in the first block: {error}", by_value=True) from None

    def batches() -> Iterator[pa.RecordBatch]:
        while True:
            try:
                yield reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as error:
                raise ReadAgain({}, f"Arrow's JSON reader stopped: {error}", by_value=True) from None

    return Columns(reader.schema.names, reader.schema.types, batches())


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
    """The file's objects (a scalar as ``{"value": …}``), :data:`JSON_LINES_PER_BATCH` at a time: see :func:`_json_values`."""
    chunk: list[dict] = []
    for record in _json_values(path):
        chunk.append(record if isinstance(record, dict) else {"value": record})
        if len(chunk) == JSON_LINES_PER_BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json_values(path: Path) -> Iterator[Any]:
    """The JSON values of the file's non-blank lines, one a line; a value pretty-printed over lines (a line that is
    only ``{`` or ``[`` opens it, a line that starts with ``}`` or ``]`` may close it) is read whole, as Arrow's reader
    reads it. An error names the line where the JSON goes wrong."""
    pending: list[str] = []  # the lines of a pretty-printed value read so far
    first = 0  # the line it starts on
    for number, line in enumerate(lines(path), start=1):
        try:
            text = line.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise IngestError("bytes that are not valid UTF-8", path=path, line=number, hint="save the file as UTF-8") from None
        if not pending:
            if not (stripped := text.strip()):
                continue
            first = number
            if stripped in ("{", "["):
                pending.append(text)
                continue
        else:
            pending.append(text)
            if text[:1] not in ("}", "]"):
                continue
        source = "\n".join(pending) if pending else text
        try:
            value = json.loads(source, parse_float=_float_as_written)
        except json.JSONDecodeError as error:
            if pending and error.pos >= len(source.rstrip()):
                continue  # the closing line of an inner value: the value goes on
            hint = "fix the JSON on that line (a JSON lines file holds one object per line)"
            raise IngestError(f"invalid JSON: {error.msg}", path=path, line=first + error.lineno - 1, hint=hint) from None
        pending = []
        yield value
    if pending:
        raise IngestError(
            "a JSON value that starts on this line is never closed", path=path, line=first, hint="close its { or [ (or remove it)"
        )


def _float_as_written(text: str) -> float | str:
    """A JSON fraction as a float, or as written when a float cannot hold it (``1e400`` would read as infinity)."""
    value = float(text)
    return value if math.isfinite(value) else text


def _json_array(values: list[Any], target: pa.DataType | None, name: str) -> pa.Array:
    """``values`` as ``target`` (inferred when None); raises ReadAgain when they need a wider type."""
    if target is not None and pa.types.is_string(target):
        return pa.array(as_text(values), pa.string())
    found = mixed_array(values)
    if target is None or found.type == target or pa.types.is_null(found.type):
        return found if target is None else found.cast(target)
    wider = widen(target, found.type) or pa.string()
    if wider == target:
        try:
            return found.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            wider = pa.string()
    raise ReadAgain({name: wider}, f"field {name!r} holds {found.type} values after {target} ones", by_value=True)
