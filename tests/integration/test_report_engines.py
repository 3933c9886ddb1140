"""The report's column profiles are the engine's SQL: the same figures on DuckDB and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from autoflux.engines import create_engine
from autoflux.report.profile import profile_table
from autoflux.workspace import Workspace

SEEN: dict[str, dict] = {}


def frame(n: int = 1200) -> pa.Table:
    rng = np.random.default_rng(1)
    return pa.table(
        {
            "id": np.arange(n),
            "select": pa.array(np.round(rng.normal(size=n), 3), mask=rng.random(n) < 0.1),  # keywords as names
            "order": rng.choice(["a", "b", "c"], n),
            "from": rng.integers(0, 5, n),
            "flag": rng.random(n) < 0.3,
            "split": ["train"] * (n - 300) + ["test"] * 300,
        }
    )


def figures(profile):
    return {
        c.name: (
            c.count,
            c.nulls,
            c.distinct,
            None if c.min is None else float(c.min),
            None if c.max is None else float(c.max),
            None if c.mean is None else round(float(c.mean), 6),
            [(str(v["value"]), v["n"]) for v in c.top],
            [b["n"] for b in c.histogram],
        )
        for c in profile.columns
    } | {"rows": profile.rows, "splits": profile.split_rows}


@pytest.mark.parametrize("engine_type", ["duckdb", "postgres"])
def test_profiles_match_on_every_engine(engine_type, workspace, place_mart):
    data = frame()
    place_mart(engine_type, workspace, data)
    engine = create_engine(Workspace.open(workspace))
    try:
        relation = f"{engine.quote('marts')}.{engine.quote('ml_training_set')}"
        profile = profile_table(engine, engine.query, relation, schema="marts", table="ml_training_set", split_column="split")
    finally:
        engine.close()
    got = figures(profile)
    assert got["rows"] == 1200 and got["splits"] == {"train": 900, "test": 300}
    assert got["select"][1] == data["select"].null_count
    assert sum(got["select"][7]) == 1200 - data["select"].null_count
    assert dict(got["order"][6]) == {
        k: int(v) for k, v in zip(*np.unique(data["order"].to_numpy(zero_copy_only=False), return_counts=True), strict=True)
    }
    assert got["from"][2] == 5 and sum(n for _, n in got["from"][6]) == 1200
    SEEN[engine_type] = got
    if len(SEEN) == 2:  # the same figures on both engines; distinct counts are approximate where the engine can
        duck, pg = SEEN["duckdb"], SEEN["postgres"]
        for name in ("id", "select", "order", "from", "flag"):
            assert abs(duck[name][2] - pg[name][2]) <= 0.05 * pg[name][2], name
            assert duck[name][:2] + duck[name][3:] == pg[name][:2] + pg[name][3:], name
        assert (duck["rows"], duck["splits"]) == (pg["rows"], pg["splits"])
