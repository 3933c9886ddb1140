"""The checks' SQL: plain aggregates every engine runs, every identifier quoted by the engine."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from autoflux.engines.base import Engine

NULL_BIN = "<null>"


def column_kind(kind: pa.DataType) -> str:
    """``integer``, ``number``, ``text``, ``bool`` or ``other`` (dates, times, nested: not binned)."""
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "integer"
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return "number"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text"
    return "other"


def literal(value: Any) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(value)
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


class Builder:
    """Queries over ``schema.table`` whose ``split_column`` says train or test."""

    def __init__(self, engine: Engine, schema: str, table: str, split_column: str) -> None:
        self.q = engine.quote
        self.engine = engine
        self.relation = f"{self.q(schema)}.{self.q(table)}"
        self.split = self.q(split_column)
        self.is_train = f"{self.split} = 'train'"

    def alias(self, prefix: str, index: int) -> str:
        return self.q(f"{prefix}{index}")

    def columns(self) -> str:
        return f"select * from {self.relation} where 1 = 0"

    def profile(self, kinds: dict[str, str], target: str | None) -> str:
        """Per split: rows; per feature: non-null and (but numbers) distinct counts; the target's counts."""
        parts = ["count(*) as rows_"]
        for i, (name, kind) in enumerate(kinds.items()):
            column = self.q(name)
            parts.append(f"count({column}) as {self.alias('n', i)}")
            if kind != "number":  # distinct floats say nothing the checks use
                parts.append(f"{self.engine.sql_distinct(column)} as {self.alias('d', i)}")
        if target is not None:
            parts += [f"count({self.q(target)}) as target_count", f"count(distinct {self.q(target)}) as target_distinct"]
        return (
            f"select af_s, {', '.join(parts)} from (select case when {self.is_train} then 'train' else 'test' end as af_s, * "
            f"from {self.relation}) t group by af_s"
        )

    def quantiles(self, kinds: dict[str, str], bins: int, sample_rows: int = 200_000) -> str:
        """Quantiles of the numeric features over train rows (a sample of them where the engine samples)."""
        fractions = [round(i / bins, 6) for i in range(1, bins)]
        parts = [
            f"{self.engine.sql_quantiles(self.q(name), fractions)} as {self.alias('q', i)}"
            for i, (name, kind) in enumerate(kinds.items()) if kind in ("integer", "number")
        ]
        return f"select {', '.join(parts)} from {self.engine.sql_sample(self.relation, sample_rows)} s where {self.is_train}" if parts else ""

    def binned(self, binned: dict[str, tuple[str, Any]], kinds: dict[str, str], target: str | None, categorical: bool) -> str:
        """Rows per (split, bin) of each feature, in one GROUPING SETS query; per target class, or with target sums."""
        q = self.q
        expressions = []
        for i, (name, (how, cuts)) in enumerate(binned.items()):
            column = q(name)
            if how == "cuts":
                cases = " ".join(f"when {column} < {literal(c)} then {k}" for k, c in enumerate(cuts))
                expression = f"case when {column} is null then -1 {cases} else {len(cuts)} end"
            elif kinds[name] == "bool":
                expression = f"case when {column} is null then '{NULL_BIN}' when {column} then 'true' else 'false' end"
            else:
                expression = f"coalesce({column}, '{NULL_BIN}')"
            expressions.append(f"{expression} as {self.alias('b', i)}")
        keys = ["af_s", *(["af_y"] if categorical else [])]
        sets = ", ".join(f"({', '.join([*keys, self.alias('b', i)])})" for i in range(len(binned)))
        measures = ["count(*) as n"]
        inner = [f"case when {self.is_train} then 'train' else 'test' end as af_s"]
        if target is not None:
            inner.append(f"{q(target)} as af_y")
            if not categorical:
                double = self.engine.SQL_DOUBLE
                measures += ["count(af_y) as ny", f"sum(cast(af_y as {double})) as sy", f"sum(cast(af_y as {double}) * cast(af_y as {double})) as syy"]
        bins = ", ".join(self.alias("b", i) for i in range(len(binned)))
        return (
            f"select {', '.join(keys)}, {bins}, {', '.join(measures)} from "
            f"(select {', '.join(inner + expressions)} from {self.relation}) t group by grouping sets ({sets})"
        )

    def unseen(self, names: list[str]) -> str:
        """Per text feature: test rows (non-null) whose value no train row has, and all non-null test rows."""
        parts = []
        for i, name in enumerate(names):
            column = self.q(name)
            parts.append(
                f"select {i} as c, sum(case when tr.v is null then 1 else 0 end) as unseen, count(*) as n from "
                f"(select {column} as v from {self.relation} where not ({self.is_train}) and {column} is not null) te "
                f"left join (select distinct {column} as v from {self.relation} where {self.is_train}) tr on te.v = tr.v"
            )
        return " union all ".join(parts)

    def copied(self, features: list[str]) -> str:
        """Test rows whose features all equal those of some train row (nulls equal), counted in one GROUP BY."""
        columns = ", ".join(self.q(n) for n in features)
        return (
            "select sum(case when n_train > 0 then n_test else 0 end) as copied, sum(n_test) as test_rows from ("
            f"select {columns}, sum(case when {self.is_train} then 1 else 0 end) as n_train, "
            f"sum(case when {self.is_train} then 0 else 1 end) as n_test from {self.relation} group by {columns}) g"
        )

    def sample(self, features: list[str]) -> str:
        columns = ", ".join(self.q(n) for n in features)
        return f"select {columns}, case when {self.is_train} then 1 else 0 end as is_train_ from {self.relation}"
