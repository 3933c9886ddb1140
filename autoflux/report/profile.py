"""Column profiles computed by the engine in SQL: two aggregate queries per table, whatever its width.

The first query gives, per column, its non-null and (approximate) distinct counts, min, max and
mean; the second, in one ``GROUPING SETS`` query, the rows per histogram bin of each numeric column
and per value of each low-cardinality one (the most frequent values) — per split for the mart.
Identifiers are quoted and dialect differences taken from the engine (:mod:`autoflux.checks.sql`).
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from autoflux.checks.sql import column_kind, literal
from autoflux.files import atomic_path
from autoflux.version import __version__

if TYPE_CHECKING:
    from autoflux.engines.base import Engine

BINS = 20
MAX_VALUES = 50  # a column with more distinct values gets no value counts (numbers get a histogram)
INTEGER_VALUES = 20  # an integer column with more distinct values gets a histogram
TOP = 8


@dataclass
class ColumnProfile:
    name: str
    type: str
    kind: str
    original: str | None = None
    count: int = 0
    nulls: int = 0
    distinct: int | None = None
    min: Any = None
    max: Any = None
    mean: float | None = None
    top: list[dict[str, Any]] = field(default_factory=list)
    histogram: list[dict[str, Any]] = field(default_factory=list)
    by_split: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    chart: str | None = None

    @property
    def null_share(self) -> float:
        total = self.count + self.nulls
        return self.nulls / total if total else 0.0


@dataclass
class TableProfile:
    schema: str
    table: str
    rows: int
    columns: list[ColumnProfile]
    seconds: float
    split_rows: dict[str, int] = field(default_factory=dict)
    sampled: bool = False


Runner = Callable[[str], pa.Table]
_LAYOUT = (__version__, tuple(f.name for f in fields(ColumnProfile)))  # a kept profile of another layout is made again


class KeptProfiles:
    """The raw tables' profiles of the last report, each under its table's identity (the engine, the
    Delta version and the last load): a report after a run that changed nothing queries no raw table.

    Kept in ``path`` as a pickle that only profiles and their values may come back from; a file that
    does not read back is ignored, and every table is profiled again.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.kept = _read_kept(path)
        self.used: dict[str, tuple[Any, TableProfile]] = {}

    def get(self, table: str, identity: Any, profile: Callable[[], TableProfile]) -> TableProfile:
        """``table``'s kept profile when it was made of this ``identity``; else ``profile()``."""
        identity = (_LAYOUT, identity)
        kept = self.kept.get(table)
        found = kept[1] if kept is not None and kept[0] == identity else profile()
        self.used[table] = (identity, found)
        return found

    def save(self) -> None:
        """Keep the profiles used by this report (those of tables that no longer exist are dropped)."""
        with atomic_path(self.path) as temporary, temporary.open("wb") as file:
            _ProfilePickler(file, protocol=pickle.HIGHEST_PROTOCOL).dump(self.used)


class _ProfilePickler(pickle.Pickler):
    def reducer_override(self, value: Any) -> Any:
        if isinstance(value, ZoneInfo) and value.key:  # by its key: ZoneInfo's own pickle goes through getattr
            return ZoneInfo, (value.key,)
        return NotImplemented


class _ProfileUnpickler(pickle.Unpickler):
    ALLOWED = {
        ("autoflux.report.profile", "TableProfile"),
        ("autoflux.report.profile", "ColumnProfile"),
        ("copyreg", "_reconstructor"),
        ("builtins", "object"),
        ("datetime", "date"),
        ("datetime", "datetime"),
        ("datetime", "time"),
        ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("zoneinfo", "ZoneInfo"),
        ("decimal", "Decimal"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a profile")
        return super().find_class(module, name)


def _read_kept(path: Path) -> dict[str, tuple[Any, TableProfile]]:
    try:
        with path.open("rb") as file:
            kept = _ProfileUnpickler(file).load()
    except Exception:  # noqa: BLE001 - no file, or one this version cannot read: profile again
        return {}
    return kept if isinstance(kept, dict) else {}


def raw_profile(engine: Engine, table: str, kept: KeptProfiles) -> tuple[int, TableProfile]:
    """``raw.<table>``'s Delta version and profile: the one ``kept`` holds when the table is as it was then, else made now."""
    from autoflux.ingest.schema import LINEAGE_COLUMNS, SOURCE_NAME_KEY
    from autoflux.lake import RAW

    delta = engine.raw_store().table(table)
    originals = {f.name: (f.metadata or {}).get(SOURCE_NAME_KEY.encode(), b"").decode() or None for f in delta.schema}

    def profile() -> TableProfile:
        with engine.raw_scan(table) as (relation, run):
            return profile_table(engine, run, relation, schema=RAW, table=table, skip=LINEAGE_COLUMNS, originals=originals)

    identity = (engine.settings.type, delta.version, sorted(delta.metadata.items()))
    return delta.version, kept.get(table, identity, profile)


def profile_table(
    engine: Engine,
    run: Runner,
    relation: str,
    *,
    schema: str,
    table: str,
    skip: tuple[str, ...] = (),
    split_column: str | None = None,
    originals: dict[str, str] | None = None,
    sample_rows: int | None = None,
) -> TableProfile:
    """Profile every column of ``relation`` (but ``skip``); with ``split_column``, value counts per split too.

    With ``sample_rows``, histograms and value counts of a table with more rows come from the engine's
    sample of about that many (:meth:`Engine.sql_sample`), scaled to the table. Off by default: DuckDB's
    reservoir sample costs more than the exact counts (one ``GROUPING SETS`` pass).
    """
    started = time.perf_counter()
    q = engine.quote
    fields = [f for f in run(f"select * from {relation} where 1 = 0").schema if f.name not in skip and f.name != split_column]
    columns = [ColumnProfile(f.name, _type_name(f.type), column_kind(f.type), (originals or {}).get(f.name)) for f in fields]
    parts = ["count(*) as af_rows"]
    if split_column:
        parts.append(f"sum(case when {q(split_column)} = 'train' then 1 else 0 end) as af_train")
    double = engine.SQL_DOUBLE
    for i, c in enumerate(columns):
        column = q(c.name)
        parts.append(f"count({column}) as {q(f'n{i}')}")
        if c.kind != "other" or _orderable(fields[i].type):
            parts.append(f"{engine.sql_distinct(column)} as {q(f'd{i}')}")
        if c.kind in ("integer", "number"):
            parts += [
                f"min({column}) as {q(f'lo{i}')}",
                f"max({column}) as {q(f'hi{i}')}",
                f"avg(cast({column} as {double})) as {q(f'm{i}')}",
            ]
        elif c.kind == "text":
            parts += [f"min(length({column})) as {q(f'lo{i}')}", f"max(length({column})) as {q(f'hi{i}')}"]
        elif c.kind == "bool":
            parts.append(f"avg(case when {column} then 1.0 else 0.0 end) as {q(f'm{i}')}")
        elif _orderable(fields[i].type):
            parts += [f"min({column}) as {q(f'lo{i}')}", f"max({column}) as {q(f'hi{i}')}"]
    row = run(f"select {', '.join(parts)} from {relation}").to_pylist()[0]
    rows = int(row["af_rows"] or 0)
    for i, c in enumerate(columns):
        c.count = int(row[f"n{i}"] or 0)
        c.nulls = rows - c.count
        c.distinct = _int(row.get(f"d{i}"))
        c.min, c.max = row.get(f"lo{i}"), row.get(f"hi{i}")
        c.mean = row.get(f"m{i}")
        if c.distinct is not None and c.count:
            c.distinct = max(1, min(c.distinct, c.count))  # approximate counts can overshoot
    profile = TableProfile(schema, table, rows, columns, 0.0)
    if split_column:
        train = int(row["af_train"] or 0)
        profile.split_rows = {"train": train, "test": rows - train}
    profile.sampled = sample_rows is not None and rows > sample_rows
    source = f"{engine.sql_sample(relation, sample_rows)} af_sample" if profile.sampled else relation
    grouped = _grouped(engine, run, source, columns, split_column)
    if grouped is not None:
        _read_groups(grouped, columns, split_column is not None, profile)
    profile.seconds = time.perf_counter() - started
    return profile


def _grouped(engine: Engine, run: Runner, relation: str, columns: list[ColumnProfile], split_column: str | None) -> pa.Table | None:
    q = engine.quote
    expressions = []
    for i, c in enumerate(columns):
        column = q(c.name)
        if c.distinct is not None and (
            c.kind in ("text", "bool") and c.distinct <= MAX_VALUES or c.kind == "integer" and c.distinct <= INTEGER_VALUES
        ):
            expressions.append((i, f"{column}", "values"))
        elif c.kind in ("integer", "number") and c.min is not None and c.max is not None and c.max > c.min:
            lo, hi = float(c.min), float(c.max)
            width = (hi - lo) / BINS
            expressions.append(
                (
                    i,
                    (
                        f"case when {column} is null then null when {column} >= {literal(hi)} then {BINS - 1} "
                        f"else cast(floor((cast({column} as {engine.SQL_DOUBLE}) - {literal(lo)}) / {literal(width)}) as integer) end"
                    ),
                    "bins",
                )
            )
            c.histogram = [{"x0": lo + k * width, "x1": lo + (k + 1) * width, "n": 0} for k in range(BINS)]
        elif c.kind in ("integer", "number") and c.min is not None:
            expressions.append((i, f"{column}", "values"))
    if not expressions:
        return None
    keys = ["af_s"] if split_column else []
    inner = [f"{q(split_column)} as af_s"] if split_column else []
    inner += [f"{expression} as {q(f'b{i}')}" for i, expression, _ in expressions]
    sets = ", ".join("(" + ", ".join([*keys, q(f"b{i}")]) + ")" for i, _, _ in expressions)
    bins = ", ".join(q(f"b{i}") for i, _, _ in expressions)
    sql = (
        f"select {', '.join(keys + [bins])}, count(*) as af_n from (select {', '.join(inner)} from {relation}) t "
        f"group by grouping sets ({sets})"
    )
    return run(sql)


def _read_groups(grouped: pa.Table, columns: list[ColumnProfile], by_split: bool, profile: TableProfile) -> None:
    data = grouped.to_pydict()
    present = [i for i in range(len(columns)) if f"b{i}" in data]
    counts: dict[int, dict[Any, dict[str | None, int]]] = {i: {} for i in present}
    for r, n in enumerate(data["af_n"]):
        split = data["af_s"][r] if by_split else None
        found = [i for i in present if data[f"b{i}"][r] is not None]
        if len(found) != 1:
            continue  # a null value: nulls are counted apart
        i = found[0]
        per_value = counts[i].setdefault(data[f"b{i}"][r], {})
        per_value[split] = per_value.get(split, 0) + int(n)
    for i in present:
        c = columns[i]
        totals = {key: sum(v.values()) for key, v in counts[i].items()}
        seen = sum(totals.values())
        if profile.sampled and seen:  # scale a sample's counts to the table's non-null rows
            totals = {key: round(n * c.count / seen) for key, n in totals.items()}
        if c.histogram:
            for key, total in totals.items():
                c.histogram[max(0, min(int(key), BINS - 1))]["n"] += total
            if by_split:
                for split in sorted({s for v in counts[i].values() for s in v if s is not None}):
                    c.by_split[split] = [
                        dict(b, n=sum(v.get(split, 0) for k, v in counts[i].items() if max(0, min(int(k), BINS - 1)) == j))
                        for j, b in enumerate(c.histogram)
                    ]
        else:
            ordered = sorted(totals.items(), key=lambda kv: (-kv[1], str(kv[0])))
            c.top = [{"value": key, "n": n} for key, n in ordered[:TOP]]
            if by_split:
                for split in sorted({s for v in counts[i].values() for s in v if s is not None}):
                    c.by_split[split] = [{"value": key, "n": counts[i][key].get(split, 0)} for key, _ in ordered[: TOP * 2]]


def _orderable(kind: pa.DataType) -> bool:
    return pa.types.is_temporal(kind)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _type_name(kind: pa.DataType) -> str:
    from autoflux.ingest.schema import type_name

    return type_name(kind)
