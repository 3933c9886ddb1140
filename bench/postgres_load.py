"""PostgreSQL load benchmark for issue 5: the postgres engine's raw load against psql's \\copy.

    python bench/postgres_load.py                      # 1M train rows (+ 250k test rows)
    options: --rows 5000000  --repeat 3  --data bench/data  --database autoflux_bench
             --host 127.0.0.1 --port 5432 --user postgres  (else PGHOST, PGPORT, PGUSER)

The benchmark's CSVs (bench/datagen.py) are ingested once with autoflux into a fresh workspace.
Then, --repeat times, alternating:

- autoflux: the engine's ``publish_raw`` of every raw table (Delta → ADBC binary COPY, into a new
  table swapped in by rename) into an emptied schema ``raw``;
- baseline: each raw table written to a CSV with a header (not timed), then one
  ``psql -c "\\copy t from 'file.csv' csv header"`` per table into a fresh table with the same
  column types — the same rows and columns, lineage columns included.

A CHECKPOINT runs before each timing so neither side pays for the other's WAL. Prints the median
throughput of both in rows/s and MB/s of CSV, and the ratio (goal: autoflux ≥ 0.8× of \\copy),
and writes them to bench/out/postgres_load.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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


def psql(args: argparse.Namespace, database: str, command: str) -> None:
    environment = {
        **os.environ,
        "PGHOST": args.host,
        "PGPORT": str(args.port),
        "PGUSER": args.user,
        "PGOPTIONS": "-c client_min_messages=warning",
    }
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", command], env=environment, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--database", default="autoflux_bench")
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    args = parser.parse_args()
    folder = generate(args.data / f"rows-{args.rows}", args.rows)
    psql(args, "postgres", f'drop database if exists "{args.database}" with (force)')
    psql(args, "postgres", f'create database "{args.database}"')
    try:
        result = measure(args, folder)
    finally:
        psql(args, "postgres", f'drop database if exists "{args.database}" with (force)')
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "postgres_load.json").write_text(json.dumps(result, indent=2))


def measure(args: argparse.Namespace, folder: Path) -> dict:
    import pyarrow.csv as pacsv

    import autoflux
    from autoflux.engines import create_engine
    from autoflux.lake import RAW
    from autoflux.pipeline import Pipeline
    from autoflux.workspace import Workspace

    engine_settings = {"type": "postgres", "host": args.host, "port": args.port, "user": args.user, "database": args.database}
    with tempfile.TemporaryDirectory(prefix="autoflux-bench-pg-") as tmp:
        work = Path(tmp)
        root = autoflux.init(work / "ws")
        (root / "autoflux.yml").write_text(json.dumps({"engine": engine_settings}), encoding="utf-8")
        workspace = Workspace.open(root)
        started = time.perf_counter()
        Pipeline(workspace).ingest([str(folder)])  # ingest publishes too: the first load, untimed
        print(f"ingest + first publish: {time.perf_counter() - started:.1f} s", flush=True)
        lake, engine = workspace.lake, create_engine(workspace)
        tables = lake.tables(RAW)
        rows = sum(lake.open(RAW, t).count() for t in tables)
        csvs, definitions, sources = {}, [], {}
        for table in tables:
            data = lake.open(RAW, table).to_pyarrow_table()
            csvs[table] = work / f"{table}.csv"
            pacsv.write_csv(data, csvs[table])
            for schema, fields in (("baseline", data.schema), ("source", [f for f in data.schema if not f.name.startswith("_")])):
                columns = ", ".join(f'"{f.name}" {_pg_type(f)}' for f in fields)
                definitions.append(f'create table {schema}."{table}" ({columns})')
            sources[table] = folder / f"{table}.csv"
        size_mb = sum(p.stat().st_size for p in csvs.values()) / 1e6
        source_mb = sum(p.stat().st_size for p in sources.values()) / 1e6

        ours, theirs, originals = [], [], []
        reset = "; ".join(
            [
                "drop schema if exists baseline cascade",
                "drop schema if exists source cascade",
                "create schema baseline",
                "create schema source",
                *definitions,
            ]
        )
        for attempt in range(args.repeat):
            psql(args, args.database, "drop schema if exists raw cascade; checkpoint")
            started = time.perf_counter()
            engine.publish_raw(tables)
            ours.append(time.perf_counter() - started)

            psql(args, args.database, f"{reset}; checkpoint")
            theirs.append(copy_seconds(args, "baseline", csvs))
            psql(args, args.database, "checkpoint")
            originals.append(copy_seconds(args, "source", sources))
            print(
                f"run {attempt + 1}: autoflux {ours[-1]:.2f} s, \\copy of the same data {theirs[-1]:.2f} s, "
                f"\\copy of the source CSVs {originals[-1]:.2f} s",
                flush=True,
            )

    autoflux_s, copy_s, source_s = statistics.median(ours), statistics.median(theirs), statistics.median(originals)
    result = {
        "rows": rows,
        "tables": tables,
        "csv_mb": round(size_mb, 1),
        "autoflux_s": round(autoflux_s, 2),
        "copy_s": round(copy_s, 2),
        "autoflux_rows_per_s": round(rows / autoflux_s),
        "copy_rows_per_s": round(rows / copy_s),
        "autoflux_mb_per_s": round(size_mb / autoflux_s, 1),
        "copy_mb_per_s": round(size_mb / copy_s, 1),
        "ratio": round(copy_s / autoflux_s, 2),
        "source_csv_mb": round(source_mb, 1),
        "source_copy_s": round(source_s, 2),
        "source_copy_rows_per_s": round(rows / source_s),
        "ratio_to_source_copy": round(source_s / autoflux_s, 2),
        "runs": {
            "autoflux_s": [round(s, 2) for s in ours],
            "copy_s": [round(s, 2) for s in theirs],
            "source_copy_s": [round(s, 2) for s in originals],
        },
    }
    print(
        f"{rows:,} rows ({size_mb:,.0f} MB as CSV), median of {args.repeat}:\n"
        f"  autoflux publish_raw (ADBC COPY binary): {result['autoflux_rows_per_s']:>10,} rows/s  {result['autoflux_mb_per_s']:>6} MB/s\n"
        f"  psql \\copy csv header:                   {result['copy_rows_per_s']:>10,} rows/s  {result['copy_mb_per_s']:>6} MB/s\n"
        f"  ratio autoflux / \\copy: {result['ratio']:.2f}x (goal >= 0.8x)\n"
        f"  (\\copy of the source CSVs, without lineage columns, {source_mb:,.0f} MB: "
        f"{result['source_copy_rows_per_s']:,} rows/s; ratio {result['ratio_to_source_copy']:.2f}x)"
    )
    return result


def copy_seconds(args: argparse.Namespace, schema: str, files: dict[str, Path]) -> float:
    started = time.perf_counter()
    for table, path in files.items():
        psql(args, args.database, f"\\copy {schema}.\"{table}\" from '{path}' csv header")
    return time.perf_counter() - started


def _pg_type(field) -> str:
    from autoflux.engines.postgres import _postgres_type

    return _postgres_type(field, "baseline")[0]


if __name__ == "__main__":
    main()
