"""The train/test checks on local Spark (``format: parquet``), in the shared local workspace: a planted leak,
a shifted date, copied rows and unseen categories are flagged as on DuckDB and PostgreSQL."""

from __future__ import annotations

import datetime

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from autoflux.checks import run_checks
from autoflux.engines import create_engine
from autoflux.workspace import Workspace


def planted(seed: int = 0, n: int = 1500, m: int = 400) -> pa.Table:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n + m)
    target = (x + rng.normal(size=n + m) > 0).astype(np.int64)
    day0 = datetime.date(2020, 1, 1)
    days = np.concatenate([rng.integers(0, 365, n), rng.integers(400, 765, m)])  # test rows come later: drift
    colour = rng.choice(["red", "green", "blue"], n + m).astype(object)
    colour[n : n + m // 4] = "violet"  # a category train never has
    data = {
        "id": np.arange(n + m),
        "x": x,
        "order": rng.choice(["a", "b", "c"], n + m),  # a keyword as a name
        "colour": colour.tolist(),
        "leak": target + rng.normal(scale=0.05, size=n + m),
        "opened": [day0 + datetime.timedelta(days=int(d)) for d in days],
        "target": target.tolist()[:n] + [None] * m,
        "split": ["train"] * n + ["test"] * m,
    }
    table = pa.table(data)
    copied = table.slice(0, 5).set_column(0, "id", pa.array(np.arange(10_000, 10_005)))
    copied = copied.set_column(table.column_names.index("split"), "split", pa.array(["test"] * 5))
    copied = copied.set_column(table.column_names.index("target"), "target", pa.nulls(5, pa.int64()))
    return pa.concat_tables([table, copied])


def test_the_checks_flag_a_planted_leak_on_spark(local_workspace, tmp_path):
    ws = Workspace.open(local_workspace)
    engine = create_engine(ws)
    pq.write_table(planted(), tmp_path / "planted.parquet")
    spark = engine.spark
    spark.sql("create database if not exists checks_test")
    spark.read.parquet(str(tmp_path / "planted.parquet")).write.mode("overwrite").saveAsTable("checks_test.planted")
    try:
        report = run_checks(
            ws,
            engine,
            schema="checks_test",
            table="planted",
            target="target",
            id_column="id",
            features=["x", "order", "colour", "leak", "opened"],
        )
    finally:
        spark.sql("drop table if exists checks_test.planted")
        spark.sql("drop database if exists checks_test")
    flags = {(f.check, f.column) for f in report.flags}
    assert ("target_proxy", "leak") in flags and report.features["leak"]["leak_score"] > 0.99
    assert ("psi", "opened") in flags and report.features["opened"]["kind"] == "date"
    assert ("unseen", "colour") in flags
    assert ("copied_rows", None) in flags and report.copied_rows == 5
    assert {c for c, _ in flags} <= {"target_proxy", "psi", "unseen", "copied_rows"}, flags
    assert (report.train_rows, report.test_rows) == (1500, 405)
