"""The checks' SQL: plain aggregates every engine runs, every identifier quoted by the engine."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from autoflux.engines.base import Engine


def column_kind(kind: pa.DataType) -> str:
    """``integer``, ``number``, ``text``, ``bool``, ``date`` (dates and timestamps) or ``other`` (not binned)."""
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text"
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        return "date"
    return "other"


NUMERIC = ("integer", "number", "date")  # binned by quantile cut points (dates as epoch days)


def literal(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(value)
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Builder:
    """Queries over ``schema.table`` whose ``split_column`` says train or test (any other value, or none: test)."""

    def __init__(self, engine: Engine, schema: str, table: str, split_column: str) -> None:
        self.q = engine.quote
        self.engine = engine
        self.relation = f"{self.q(schema)}.{self.q(table)}"
        self.split = self.q(split_column)
        self.is_train = f"{self.split} = 'train'"
        self.is_test = f"({self.split} <> 'train' or {self.split} is null)"
        self.train_flag = f"case when {self.is_train} then 1 else 0 end"

    def alias(self, prefix: str, index: int) -> str:
        return self.q(f"{prefix}{index}")

    def value(self, expression: str, kind: str) -> str:
        """A feature as the checks compare it: dates and timestamps as (fractional) days since 1970-01-01."""
        return self.engine.sql_epoch_days(expression) if kind == "date" else expression

    def columns(self) -> str:
        return f"select * from {self.relation} where 1 = 0"

    def profile(self, kinds: dict[str, str], target: str | None) -> str:
        """Per split (1 train, 0 test): rows; per feature: non-null and (but numbers) distinct counts; the target's counts."""
        parts = ["count(*) as rows_"]
        for i, (name, kind) in enumerate(kinds.items()):
            column = self.q(name)
            parts.append(f"count({column}) as {self.alias('n', i)}")
            if kind != "number":  # distinct floats say nothing the checks use
                parts.append(f"{self.engine.sql_distinct(column)} as {self.alias('d', i)}")
        if target is not None:
            parts += [f"count({self.q(target)}) as target_count", f"count(distinct {self.q(target)}) as target_distinct"]
        return f"select af_s, {', '.join(parts)} from (select {self.train_flag} as af_s, * from {self.relation}) t group by af_s"

    def quantiles(self, kinds: dict[str, str], bins: int, fraction: float = 1.0) -> str:
        """Quantiles of the numeric (and date) features over train rows, or over about ``fraction`` of them where the engine samples."""
        fractions = [round(i / bins, 6) for i in range(1, bins)]
        parts = [
            f"{self.engine.sql_quantiles(self.value(self.q(name), kind), fractions)} as {self.alias('q', i)}"
            for i, (name, kind) in enumerate(kinds.items())
            if kind in NUMERIC
        ]
        if not parts:
            return ""
        return f"select {', '.join(parts)} from {self.engine.sql_sample(self.relation, fraction)} s where {self.is_train}"

    def bin(self, column: str, kind: str, cuts: list[float] | None) -> str:
        """A feature's bin, null for null values: the index of the first cut point above the value (by CASEs in two
        levels of about √cuts comparisons each, or a binary search where the engine evaluates nested CASEs fast),
        else the value itself (text) or true/false."""
        if cuts is not None:
            value = self.value(column, kind)
            bounds = [literal(math.ceil(c)) for c in cuts] if kind == "integer" else [literal(float(c)) for c in cuts]
            if self.engine.SQL_NESTED_BINS:
                return f"case when {value} is null then null else {_search(value, bounds, 0, len(bounds))} end"
            return _two_levels(value, bounds)
        if kind == "bool":
            return f"case when {column} then 'true' when not {column} then 'false' end"
        return column

    def binned(
        self, binned: dict[str, list[float] | None], kinds: dict[str, str], target: str | None, categorical: bool, few: set[str]
    ) -> str:
        """Rows per (feature, split, bin), with their count per target class or their target sums: one GROUP BY per
        feature, joined by UNION ALL. ``binned`` gives each feature's cut points (None: its values are its bins);
        features in ``few`` have few distinct values, grouped by value first and binned after, which is cheaper."""
        text, double = self.engine.SQL_TEXT, self.engine.SQL_DOUBLE
        keys = ", ".join(["af_s", *(["af_y"] if categorical else [])])
        inner = f"{self.train_flag} as af_s" + (f", {self.q(target)} as af_y" if target is not None else "")
        numeric = target is not None and not categorical
        y = f"cast(af_y as {double})"
        measures = "count(*) as n" + (f", count(af_y) as ny, sum({y}) as sy, sum({y} * {y}) as syy" if numeric else "")
        sums = "cast(sum(n) as bigint) as n" + (", cast(sum(ny) as bigint) as ny, sum(sy) as sy, sum(syy) as syy" if numeric else "")
        passed = "n" + (", ny, sy, syy" if numeric else "")
        parts = []
        for i, (name, cuts) in enumerate(binned.items()):
            head = f"select {i} as af_f, {keys}, cast(af_b as {text}) as af_b"
            if name in few:
                grouped = f"select {keys}, af_v, {measures} from (select {inner}, {self.q(name)} as af_v from {self.relation}) t group by {keys}, af_v"
                rows = f"select {keys}, {self.bin('af_v', kinds[name], cuts)} as af_b, {passed} from ({grouped}) g"
                parts.append(f"{head}, {sums} from ({rows}) t{i} group by {keys}, af_b")
            else:
                values = f"select {inner}, {self.q(name)} as af_v from {self.relation}"
                rows = f"select {keys}{', af_y' if numeric else ''}, {self.bin('af_v', kinds[name], cuts)} as af_b from ({values}) v"
                parts.append(f"{head}, {measures} from ({rows}) t{i} group by {keys}, af_b")
        return " union all ".join(parts)

    def unseen(self, names: list[str]) -> str:
        """Per text feature: test rows (non-null) whose value no train row has, and all non-null test rows."""
        parts = []
        for i, name in enumerate(names):
            column = self.q(name)
            parts.append(
                f"select {i} as c, sum(case when tr.v is null then 1 else 0 end) as unseen, count(*) as n from "
                f"(select {column} as v from {self.relation} where {self.is_test} and {column} is not null) te "
                f"left join (select distinct {column} as v from {self.relation} where {self.is_train}) tr on te.v = tr.v"
            )
        return " union all ".join(parts)

    def copied(self, features: list[str]) -> str:
        """Test rows whose features all equal those of some train row (nulls equal): by a 64-bit row hash where the
        engine has one (test rows whose hash some train row has), else exactly, counted in one GROUP BY."""
        columns = [self.q(n) for n in features]
        row_hash = self.engine.sql_row_hash(columns)
        if row_hash is not None:
            return (
                f"select count(*) as copied from (select {row_hash} as h from {self.relation} where {self.is_test}) te "
                f"where te.h in (select {row_hash} as h from {self.relation} where {self.is_train})"
            )
        listed = ", ".join(columns)
        return (
            "select sum(case when n_train > 0 then n_test else 0 end) as copied from ("
            f"select {listed}, sum({self.train_flag}) as n_train, sum(1 - {self.train_flag}) as n_test "
            f"from {self.relation} group by {listed}) g"
        )

    def sample(self, features: list[str]) -> str:
        columns = ", ".join(self.q(n) for n in features)
        return f"select {columns}, {self.train_flag} as is_train_ from {self.relation}"


def _search(value: str, bounds: list[str], low: int, high: int) -> str:
    """Bin ``k`` in ``[low, high]`` of ``value`` (``bounds[k-1] <= value < bounds[k]``), as nested CASEs ⌈log2⌉ deep."""
    if low == high:
        return str(low)
    middle = (low + high) // 2
    return (
        f"case when {value} < {bounds[middle]} then {_search(value, bounds, low, middle)} "
        f"else {_search(value, bounds, middle + 1, high)} end"
    )


def _two_levels(value: str, bounds: list[str]) -> str:
    """Bin of ``value`` (as :func:`_search`, null for null) by a CASE over every ``step``-th bound, then one within the step."""
    step = max(1, round(math.sqrt(len(bounds))))
    heads = list(range(step, len(bounds), step + 1))
    outer, low = [], 0
    for head in [*heads, len(bounds)]:
        inner = " ".join(f"when {value} < {bounds[k]} then {k}" for k in range(low, head))
        within = f"case {inner} else {head} end" if inner else str(head)
        outer.append(f"when {value} < {bounds[head]} then {within}" if head < len(bounds) else f"when {value} is not null then {within}")
        low = head + 1
    return f"case {' '.join(outer)} end"
