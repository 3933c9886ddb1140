"""One planted leak, flagged alike by the checks on every engine that runs them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from autoflux.checks import run_checks
from autoflux.engines import create_engine
from autoflux.workspace import Workspace


def planted(seed: int = 0, n: int = 1500, m: int = 400) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n + m)
    target = (x + rng.normal(size=n + m) > 0).astype(np.int64)
    leak = target + rng.normal(scale=0.05, size=n + m)
    return pa.table(
        {
            "id": np.arange(n + m),
            "x": x,
            "order": rng.choice(["a", "b", "c"], n + m),  # a keyword as a name
            "leak": leak,
            "opened": pa.array(np.datetime64("2020-01-01") + rng.integers(0, 365, n + m).astype("timedelta64[D]")),  # binned as days
            "target": pa.array(np.where(np.arange(n + m) < n, target, 0)).to_pylist()[:n] + [None] * m,
            "split": ["train"] * n + ["test"] * m,
        }
    )


@pytest.mark.parametrize("engine_type", ["duckdb", "postgres"])
def test_a_planted_leak_is_flagged_on_every_engine(engine_type, workspace, place_mart):
    data = planted()
    place_mart(engine_type, workspace, data)
    ws = Workspace.open(workspace)
    engine = create_engine(ws)
    try:
        report = run_checks(ws, engine, target="target", id_column="id", features=["x", "order", "leak", "opened"])
    finally:
        engine.close()
    assert {f.column for f in report.flags if f.check == "target_proxy"} == {"leak"}
    assert report.features["leak"]["leak_score"] > 0.99
    assert (
        report.features["opened"]["kind"] == "date" and report.features["opened"]["bins"] >= 15 and report.features["opened"]["psi"] < 0.1
    )
    assert report.copied_rows == 0 and (report.train_rows, report.test_rows) == (1500, 400)
