"""Spark ingest benchmark for issue 4: prints the figures and writes them to bench/out/spark_ingest.json.

    python bench/spark_ingest.py                    # 1,000,000 train rows + 250,000 test rows
    options: --rows 1000000  --data bench/data  --master local[2]

Both sides run in the same SparkSession (``--master``, local[2] by default, Derby metastore,
Parquet tables) on the same generated files (bench/datagen.py):

- baseline: what the seed project did — ``pandas.read_csv`` → ``spark.createDataFrame`` →
  ``saveAsTable``, file by file;
- autoflux: the spark engine's ingest (Spark's CSV reader, types from the file's first 4 MiB, the
  naming and typing rules, lineage columns, ``raw.<table>`` swapped into the catalog).

The goal is autoflux ≥ 5× faster than the baseline; ``ratio`` is baseline / autoflux. Both paths
first load the example's train.csv once, untimed, so neither pays the JVM's warm-up.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(folder: Path, rows: int) -> Path:
    if not (folder / "train.csv").exists():
        subprocess.run([sys.executable, str(HERE / "datagen.py"), "--rows", str(rows), "--out", str(folder)], check=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    import pandas as pd
    import yaml

    import autoflux
    from autoflux.engines import create_engine
    from autoflux.ingest import ingest_paths
    from autoflux.workspace import Workspace

    folder = generate(args.data / f"rows-{args.rows}", args.rows)
    files = [folder / "train.csv", folder / "test.csv"]
    work = Path(tempfile.mkdtemp(prefix="autoflux-spark-bench-"))
    try:
        root = autoflux.init(work / "ws")
        config = yaml.safe_load((root / "autoflux.yml").read_text())
        config["engine"] = {"type": "spark", "master": args.master, "format": "parquet", "conf": {"spark.driver.memory": "4g"}}
        (root / "autoflux.yml").write_text(yaml.safe_dump(config))
        workspace = Workspace.open(root)
        engine = create_engine(workspace)
        spark = engine.spark
        spark.sql("create database if not exists raw").collect()
        spark.sql("create database if not exists seed").collect()

        warm_up = HERE.parent / "examples" / "loan-default" / "train.csv"
        ingest_paths(workspace, [warm_up], store=engine.raw_store(), force=True)
        spark.createDataFrame(pd.read_csv(warm_up)).write.mode("overwrite").saveAsTable("seed.warm_up")

        started = time.perf_counter()
        report = ingest_paths(workspace, files, store=engine.raw_store(), force=True)
        autoflux_s = time.perf_counter() - started
        failed = [f.message for f in report.files if f.outcome != "loaded"]
        if failed:
            raise SystemExit(f"autoflux ingest failed: {failed}")

        started = time.perf_counter()
        for file in files:
            frame = pd.read_csv(file)
            spark.createDataFrame(frame).write.mode("overwrite").saveAsTable(f"seed.{file.stem}")
        baseline_s = time.perf_counter() - started

        rows = {f.table: f.rows for f in report.files}
        assert rows == {f.stem: spark.table(f"seed.{f.stem}").count() for f in files}, rows
        result = {
            "rows": rows,
            "bytes": sum(f.stat().st_size for f in files),
            "master": args.master,
            "arrow_in_createDataFrame": spark.conf.get("spark.sql.execution.arrow.pyspark.enabled"),
            "baseline_s": round(baseline_s, 2),
            "autoflux_s": round(autoflux_s, 2),
            "ratio": round(baseline_s / autoflux_s, 2),
        }
    finally:
        from autoflux.engines.spark import stop

        stop()
        shutil.rmtree(work, ignore_errors=True)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "spark_ingest.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
