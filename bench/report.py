"""Time `autoflux report` after `autoflux run` on a 1M-row train + 250k-row test of 16 columns (DuckDB).

    python bench/report.py                      # options: --rows 1000000 --test-rows 250000 --seed 0 --keep DIR

train.csv has id, 14 features (numbers, integers, text, a flag, a date, a timestamp) and the target;
test.csv the same without the target; both made by bench/datagen.py's generator. The script runs
`autoflux run` (which writes the report too), then `autoflux report` on its own (a new process, as a
person runs it), and a yardstick in DuckDB in the same run: `select count(*)` and `summarize` of
raw.train, raw.test and the mart. Prints the seconds, the file's size and the ratio to the yardstick.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datagen import make_chunk  # noqa: E402

COLUMNS = [
    "id",
    "x1",
    "x2",
    "amount",
    "ratio",
    "score",
    "age",
    "n_items",
    "year",
    "big_int",
    "city",
    "segment",
    "flag",
    "event_date",
    "event_ts",
    "target",
]


def autoflux(*args: str, cwd: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "autoflux", *args, "--json"], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode:
        sys.exit(f"autoflux {args[0]} failed: {result.stderr.strip() or result.stdout.strip()}")
    return seconds, json.loads(result.stdout)


def yardstick(workspace: Path) -> float:
    """count(*) and summarize of raw.train, raw.test (Delta, scanned as Arrow datasets) and the mart, in DuckDB."""
    import duckdb
    from deltalake import DeltaTable

    started = time.perf_counter()
    connection = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    for name in ("train", "test"):
        connection.register(f"raw_{name}", DeltaTable(str(workspace / "lake" / "raw" / name)).to_pyarrow_dataset())
        connection.sql(f"select count(*) from raw_{name}").fetchall()
        connection.sql(f"summarize raw_{name}").fetchall()
    connection.sql("select count(*) from marts.ml_training_set").fetchall()
    connection.sql("summarize marts.ml_training_set").fetchall()
    connection.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--test-rows", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="make the workspace here and keep it")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        root = (args.keep or Path(scratch)).resolve()
        data, workspace = root / "data", root / "ws"
        data.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(args.seed)
        train = make_chunk(rng, 0, args.rows, True).select(COLUMNS)
        test = make_chunk(rng, args.rows, args.test_rows, True).select(COLUMNS[:-1])
        pacsv.write_csv(train, data / "train.csv")
        pacsv.write_csv(test, data / "test.csv")
        del train, test
        env_root = Path(__file__).resolve().parents[1]
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(env_root), os.environ.get("PYTHONPATH")]))
        if not (workspace / "autoflux.yml").exists():
            autoflux("init", str(workspace), cwd=root)
        run_seconds, summary = autoflux("run", str(data), "-w", str(workspace), cwd=root)
        report_seconds, report = autoflux("report", "-w", str(workspace), cwd=root)
        yard = yardstick(workspace)
        print(f"data: train {args.rows:,} rows, test {args.test_rows:,} rows, {len(COLUMNS)} columns (DuckDB)")
        print(f"autoflux run:    {run_seconds:6.2f} s  (of which the report {summary['seconds'].get('report', float('nan')):.2f} s)")
        print(
            f"autoflux report: {report_seconds:6.2f} s  (a new process; writing it {report['seconds']:.2f} s), {report['bytes'] / 1e6:.2f} MB"
        )
        print(f"yardstick:       {yard:6.2f} s  (DuckDB count(*) + summarize of raw.train, raw.test and the mart)")
        print(f"ratio:           {report_seconds / yard:6.2f}x the yardstick; missing parts: {report['missing'] or 'none'}")


if __name__ == "__main__":
    main()
