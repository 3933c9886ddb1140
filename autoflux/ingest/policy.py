"""How a load may change a raw table: write mode, schema policy and bad-row limits, for every engine.

Write modes (``ingest.mode``, per table ``ingest.tables.<table>.mode``), each one Delta commit:

- ``replace``: the table becomes the file's rows.
- ``append``: the file's rows are added to the table.
- ``merge``: the file's rows are upserted on ``key``: a row whose key the table holds replaces
  that row, the others are inserted. A key must be present, non-null and unique in the file.

In every mode a file whose fingerprint equals the one of the table's last load is unchanged and
not loaded again; a changed file is loaded whole (append adds all of its rows again).

Schema policies (``ingest.schema``, per table ``ingest.tables.<table>.schema``), which compare the
file's columns (clean names, lake types) with the table's:

- ``evolve``: replace gives the table the file's schema. Append and merge keep the table's columns
  and add the file's new ones; a column the file lacks is null in its rows; a column whose values
  need a wider type is widened (:func:`~autoflux.ingest.schema.widen`) and the table rewritten in
  the same version.
- ``freeze``: the file must fit the table: a new column, a missing one or a type that would widen
  fails the file with the differences listed, and nothing is written.
- ``rescue``: the table's schema never changes. A value that does not fit its column's type is
  null there and kept as text in ``_rescued_data`` (a JSON object ``{"column": "text"}``), and so
  are the values of columns the table does not have. Nothing fails, nothing is lost.

The first load of a table takes the file's schema under every policy (``rescue`` adds
``_rescued_data``).

Bad rows (``ingest.bad_rows``): CSV rows with the wrong number of fields are set aside in the
quarantine table. A file fails, with nothing written, when its bad rows are more than
``max_count`` and more than ``max_fraction`` of the rows read (both 0 by default: any bad row
fails the file).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.schema import LINEAGE_COLUMNS, SOURCE_NAME_KEY, as_text, type_name, widen

if TYPE_CHECKING:
    from autoflux.config import IngestSettings

RESCUED_COLUMN = "_rescued_data"
SYSTEM_COLUMNS = (*LINEAGE_COLUMNS, RESCUED_COLUMN)

Mode = Literal["replace", "append", "merge"]
SchemaPolicy = Literal["evolve", "freeze", "rescue"]


@dataclass(frozen=True)
class TablePolicy:
    """How loads change one table."""

    mode: Mode = "replace"
    schema: SchemaPolicy = "evolve"
    key: tuple[str, ...] = ()


def table_policy(settings: IngestSettings, table: str) -> TablePolicy:
    """``table``'s policy from ``ingest`` config: its entry under ``tables``, else the defaults."""
    own = settings.tables.get(table)
    policy = TablePolicy((own and own.mode) or settings.mode, (own and own.schema_) or settings.schema_, tuple(own.key) if own else ())
    if policy.mode == "merge" and not policy.key:
        raise IngestError(
            f"table {table} is loaded with mode merge but has no key",
            hint=f"set ingest.tables.{table}.key to the columns that identify a row",
        )
    return policy


@dataclass(frozen=True)
class BadRowLimits:
    """How many unparseable rows a file may have before it fails (see the module docstring)."""

    max_count: int = 0
    max_fraction: float = 0.0

    def allows(self, bad: int, read: int) -> bool:
        return bad <= self.max_count or bad <= self.max_fraction * read

    @property
    def counting(self) -> bool:
        """Whether the count alone decides (no fraction): a file can fail at its first bad row too many."""
        return self.max_fraction == 0

    def __str__(self) -> str:
        return f"ingest.bad_rows allows (max_count {self.max_count}, max_fraction {self.max_fraction:g})"


def reader_types(policy: TablePolicy, table: pa.Schema | None) -> dict[str, pa.DataType]:
    """Types to read a file's columns with for ``table``: its own, so a text column stays text.

    None for a new table or a replace that evolves (the file's own inference decides); timestamps
    are left to inference, which reads values with and without zone offsets.
    """
    if table is None or (policy.mode == "replace" and policy.schema == "evolve"):
        return {}
    return {f.name: f.type for f in table if f.name not in SYSTEM_COLUMNS and not pa.types.is_timestamp(f.type)}


# ----------------------------------------------------------------------------------- schemas


@dataclass(frozen=True)
class Plan:
    """The data columns a load leaves the table with (lineage excluded), and what changed."""

    schema: pa.Schema
    changes: tuple[str, ...] = ()
    rewrite: bool = False
    rescue: bool = False


def plan(policy: TablePolicy, table_name: str, table: pa.Schema | None, incoming: pa.Schema) -> Plan:
    """The table's columns after loading a file with columns ``incoming`` under ``policy``.

    ``table`` is the table's current schema (None when it does not exist yet). Raises
    :class:`IngestError` listing the differences when the policy refuses them.
    """
    rescue = policy.schema == "rescue"
    if table is None or (policy.mode == "replace" and policy.schema == "evolve"):
        return Plan(_with_rescue(incoming, rescue), rescue=rescue)
    current = pa.schema([f for f in table if f.name not in SYSTEM_COLUMNS])
    keep_rescued = rescue or RESCUED_COLUMN in table.names
    fields, changes, refused = [], [], []
    arriving = {f.name: f for f in incoming}
    for field in current:
        if field.name not in arriving:
            changes.append(f"- {field.name} (missing, null in the new rows)")
            fields.append(field)
            continue
        wider = widen(field.type, arriving[field.name].type)
        if wider is None:
            refused.append(f"~ {field.name} {type_name(field.type)} → {type_name(arriving[field.name].type)}")
            wider = field.type
        elif wider != field.type:
            changes.append(f"~ {field.name} {type_name(field.type)} → {type_name(wider)}")
        fields.append(field.with_type(wider))
    for field in incoming:
        if field.name not in current.names:
            changes.append(f"+ {field.name} {type_name(field.type)}")
            fields.append(field)
    if rescue:
        return Plan(_with_rescue(current, True), rewrite=RESCUED_COLUMN not in table.names, rescue=True)
    if policy.schema == "freeze" and (changes or refused):
        raise _differs(
            table_name, "is frozen (schema: freeze)", changes + refused, "fix the file, or set its schema policy to evolve or rescue"
        )
    if refused:
        raise _differs(table_name, "cannot take this file's types", refused, "set its schema policy to rescue, or a type in ingest.types")
    evolved = _with_rescue(pa.schema(fields), keep_rescued)
    widened_or_added = any(not c.startswith("-") for c in changes)
    return Plan(evolved, tuple(changes), rewrite=widened_or_added or (keep_rescued and RESCUED_COLUMN not in table.names))


def _with_rescue(schema: pa.Schema, rescue: bool) -> pa.Schema:
    if not rescue or RESCUED_COLUMN in schema.names:
        return schema
    metadata = {"comment": "values that did not fit their column, as JSON {column: original text}"}
    return schema.append(pa.field(RESCUED_COLUMN, pa.string(), metadata=metadata))


def _differs(table: str, what: str, changes: list[str], hint: str) -> IngestError:
    return IngestError(
        f"the schema of raw.{table} {what}; the file differs: {'; '.join(changes)}", hint=f"{hint} (ingest.tables.{table}.schema)"
    )


def key_columns(policy: TablePolicy, table_name: str, schema: pa.Schema) -> list[str]:
    """The clean names of the merge key, given by clean or original column name."""
    by_source = {(f.metadata or {}).get(SOURCE_NAME_KEY.encode(), b"").decode(): f.name for f in schema}
    columns = []
    for name in policy.key:
        column = name if name in schema.names else by_source.get(name)
        if column is None:
            raise IngestError(
                f"the merge key column {name!r} is not in the file",
                hint=f"check ingest.tables.{table_name}.key (columns: {', '.join(schema.names)})",
            )
        columns.append(column)
    return columns


# ------------------------------------------------------------------------------------ rescue


def rescue(columns: Mapping[str, pa.Array], fields: Sequence[pa.Field], length: int) -> tuple[list[pa.Array], dict[int, dict[str, str]]]:
    """A file's ``columns`` (by clean name) in the types of the table's ``fields``, keeping what does not fit.

    Returns one array per field: the column cast value by value (:func:`try_cast`), null where a
    value does not fit and where the file lacks the column. What is not kept there is returned
    by row position as ``{column: original text}``: the values that did not fit, and the values
    of the columns ``fields`` lacks. :func:`rescued_json` makes the ``_rescued_data`` column of it.
    """
    rescued: dict[int, dict[str, str]] = {}
    arrays = []
    for field in fields:
        if field.name not in columns:
            arrays.append(pa.nulls(length, field.type))
            continue
        cast, bad = try_cast(columns[field.name], field.type)
        _keep_text(columns[field.name], field.name, bad, rescued)
        arrays.append(cast)
    names = {f.name for f in fields}
    for name, array in columns.items():
        if name not in names:
            _keep_text(array, name, [i for i, valid in enumerate(array.is_valid().to_pylist()) if valid], rescued)
    return arrays, rescued


def rescued_json(rescued: Mapping[int, Mapping[str, str]], length: int) -> pa.Array:
    """The ``_rescued_data`` values of ``length`` rows: JSON of what :func:`rescue` kept per row, null where nothing."""
    import json

    return pa.array([json.dumps(rescued[i], ensure_ascii=False) if i in rescued else None for i in range(length)], pa.string())


def _keep_text(array: pa.Array, name: str, positions: list[int], rescued: dict[int, dict[str, str]]) -> None:
    if positions:
        for position, text in zip(positions, as_text(array.take(positions)), strict=True):
            rescued.setdefault(position, {})[name] = text


def try_cast(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[int]]:
    """``array`` cast to ``target`` value by value: null where a value does not fit, and those positions.

    Values fit when Arrow's cast accepts them (the rules of CSV type inference); text holding a
    timestamp without a zone is read as UTC. When no value of the type can be cast directly (a
    struct to bigint), values go through their text form.
    """
    try:
        return _cast(array, target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    if not pa.types.is_string(array.type):
        try:
            _cast(array.slice(0, 0), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return try_cast(pa.array(as_text(array), pa.string()), target)
    chunks: list[pa.Array] = []
    bad: list[int] = []

    def visit(part: pa.Array, offset: int) -> None:
        try:
            chunks.append(_cast(part, target))
            return
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass
        if len(part) == 1:
            chunks.append(pa.nulls(1, target))
            bad.append(offset)
            return
        half = len(part) // 2
        visit(part.slice(0, half), offset)
        visit(part.slice(half), offset + half)

    visit(array, 0)
    return pa.concat_arrays(chunks), bad


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    try:
        return array.cast(target)
    except pa.ArrowInvalid:
        if pa.types.is_timestamp(target) and target.tz and pa.types.is_string(array.type):
            return array.cast(pa.timestamp(target.unit)).cast(target)
        raise
