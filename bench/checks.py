"""Time the train/test checks on a 1M-row train + 250k-row test mart of 16 columns.

    python bench/checks.py                                  # DuckDB (embedded)
    python bench/checks.py --engine postgres --pg-url postgresql://postgres@127.0.0.1:5432/postgres
    python bench/checks.py --engine spark                   # local[2] Spark, format: parquet, Derby
    options: --rows 1000000 --test-rows 250000 --seed 0 --repeat 3

The mart (id, 13 features, target, split) is made with bench/datagen.py's generator and written to
the engine; after a warm-up, every check (schema, drift, leakage, copied rows) runs ``--repeat``
times, and so does a yardstick in the same engine: one full scan ``select count(*), avg(…)`` of
every column. Prints the median of each, their ratio, and the load average before and after (the
machine's other work slows both alike; an idle machine gives the figures that count). On DuckDB,
also the CPU time of the process, which the machine's other work does not inflate.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datagen import make_chunk  # noqa: E402

COLUMNS = ["id", "x1", "x2", "amount", "ratio", "score", "age", "n_items", "year", "big_int", "city", "segment", "colour", "flag", "target"]


def mart(rows: int, test_rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    train = make_chunk(rng, 0, rows, True).select(COLUMNS)
    test = make_chunk(rng, rows, test_rows, True).select(COLUMNS)
    test = test.set_column(COLUMNS.index("target"), "target", pa.nulls(test_rows, train.schema.field("target").type))
    train = train.append_column("split", pa.array(["train"] * rows))
    test = test.append_column("split", pa.array(["test"] * test_rows))
    return pa.concat_tables([train, test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=["duckdb", "postgres", "spark"], default="duckdb")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--test-rows", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import autoflux
    from autoflux.checks import run_checks
    from autoflux.engines import create_engine
    from autoflux.workspace import Workspace

    data = mart(args.rows, args.test_rows, args.seed)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as folder:
        root = autoflux.init(Path(folder) / "ws")
        if args.engine == "duckdb":
            import duckdb

            with duckdb.connect(str(root / "warehouse.duckdb")) as connection:
                connection.execute("create schema marts")
                connection.register("frame", data)
                connection.execute("create table marts.ml_training_set as select * from frame")
        elif args.engine == "postgres":
            from adbc_driver_postgresql import dbapi

            with dbapi.connect(args.pg_url, autocommit=True) as connection, connection.cursor() as cursor:
                cursor.execute("create schema if not exists marts")
                cursor.execute("drop table if exists marts.ml_training_set")
                cursor.adbc_ingest("ml_training_set", data, mode="create", db_schema_name="marts")
                cursor.execute("analyze marts.ml_training_set")
            (root / "autoflux.yml").write_text(f"engine:\n  type: postgres\n  url: {args.pg_url}\n")
        else:
            import pyarrow.parquet as pq
            import yaml

            conf = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", "spark.driver.memory": "2g"}
            engine_section = {"type": "spark", "master": "local[2]", "format": "parquet", "conf": conf}
            (root / "autoflux.yml").write_text(yaml.safe_dump({"engine": engine_section}))
        ws = Workspace.open(root)
        engine = create_engine(ws)
        if args.engine == "spark":
            pq.write_table(data, Path(folder) / "mart.parquet")
            engine.spark.sql("create database if not exists marts")
            engine.spark.read.parquet(str(Path(folder) / "mart.parquet")).write.mode("overwrite").saveAsTable("marts.ml_training_set")
        features = [c for c in COLUMNS if c not in ("id", "target")]
        scan = ", ".join(
            f"avg({engine.quote(c)})" if c not in ("city", "segment", "colour", "flag", "split") else f"count(distinct {engine.quote(c)})"
            for c in data.column_names
        )
        run_checks(ws, engine, target="target", id_column="id", features=features)  # warm-up (caches, plans)
        engine.query(f"select count(*), {scan} from marts.ml_training_set")
        checks, scans, checks_cpu, scans_cpu = [], [], [], []
        for _ in range(args.repeat):
            started, cpu = time.perf_counter(), time.process_time()
            report = run_checks(ws, engine, target="target", id_column="id", features=features)
            checks.append(time.perf_counter() - started)
            checks_cpu.append(time.process_time() - cpu)
            started, cpu = time.perf_counter(), time.process_time()
            engine.query(f"select count(*), {scan} from marts.ml_training_set")
            scans.append(time.perf_counter() - started)
            scans_cpu.append(time.process_time() - cpu)
        if args.engine == "postgres":
            with dbapi.connect(args.pg_url, autocommit=True) as connection, connection.cursor() as cursor:
                cursor.execute("drop table if exists marts.ml_training_set")
        engine.close()
        if args.engine == "spark":
            from autoflux.engines.spark import stop

            stop()
    seconds, yardstick = statistics.median(checks), statistics.median(scans)
    load_after = os.getloadavg()
    print(f"engine {args.engine}: {args.rows:,} train + {args.test_rows:,} test rows x {data.num_columns} columns, {os.cpu_count()} cores")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min)")
    print(
        f"checks: {seconds:.2f} s median of {args.repeat} ({', '.join(f'{s:.2f}' for s in checks)})  ({len(report.flags)} flags: {[f.message for f in report.flags]})"
    )
    print(f"yardstick full scan (count, avg / count distinct of every column): {yardstick:.2f} s ({', '.join(f'{s:.2f}' for s in scans)})")
    print(f"checks / scan = {seconds / yardstick:.1f}x")
    if args.engine == "duckdb":  # the work is in this process: its CPU time is what contention does not inflate
        print(
            f"CPU time of this process (all threads): checks {statistics.median(checks_cpu):.2f} s, yardstick {statistics.median(scans_cpu):.2f} s"
        )


if __name__ == "__main__":
    main()
