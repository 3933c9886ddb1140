"""Engine ingest benchmark for issue 15 (parts 5 and 6): whole processes, each beside its yardstick in the same round.

    python bench/engines.py                      # both engines, 1M train rows (+ 250k test), 3 rounds
    options: --only postgres|spark  --rows 1000000  --rounds 3  --data bench/data  --master local[2]  --src DIR
             --host 127.0.0.1 --port 5432 --user postgres  (else PGHOST, PGPORT, PGUSER)

Every figure is one whole process started as a user starts it, on the same generated files
(bench/datagen.py), in turn within each round:

- postgres: ``autoflux init`` + ``autoflux ingest`` with ``engine.type: postgres`` into a new
  database (Delta tables in the lake, then the raw tables in PostgreSQL), against one ``psql``
  process that creates typed tables (the types AutoFlux gave the columns) and ``\\copy``s both CSVs
  into them. Goal: autoflux / psql ≤ 1.3.
- spark: ``autoflux init`` + ``autoflux ingest`` with ``engine.type: spark`` (``--master``, Derby,
  ``format: parquet``), against a Python process that starts the same kind of session and runs
  Spark's own reader, ``read.csv(header, inferSchema)`` → ``saveAsTable``, per file (goal:
  autoflux / Spark ≤ 1.1); and the floor, the seed project's ``pandas.read_csv`` →
  ``createDataFrame`` → ``saveAsTable`` (goal: floor / autoflux ≥ 3.5). Each process pays its JVM start.

Prints the median seconds of each and the ratios, with the load average (the machine's other work
slows both sides alike; an idle machine gives the figures that count); writes bench/out/engines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import autoflux_env, generate, timed, whole_process_parser  # noqa: E402 - the sibling benchmark's helpers

SPARK_YARDSTICK = """
import sys, tempfile
from pyspark.sql import SparkSession
work, mode, master, files = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
spark = (
    SparkSession.builder.master(master)
    .config("spark.sql.warehouse.dir", work + "/warehouse")
    .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={work}")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.memory", "4g")
    .enableHiveSupport()
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
spark.sql("create database if not exists bench")
for path in files:
    name = "bench." + path.rsplit("/", 1)[-1].removesuffix(".csv")
    if mode == "spark":
        frame = spark.read.csv(path, header=True, inferSchema=True)
    else:
        import pandas
        frame = spark.createDataFrame(pandas.read_csv(path))
    frame.write.format("parquet").mode("overwrite").saveAsTable(name)
spark.stop()
"""


def psql(args: argparse.Namespace, database: str, *command: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PGHOST": args.host, "PGPORT": str(args.port), "PGUSER": args.user}
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database]
    for part in command:
        argv += ["-c", part]
    return subprocess.run(argv, env=environment, check=True, capture_output=True, text=True)


def fresh_database(args: argparse.Namespace) -> None:
    psql(args, "postgres", f'drop database if exists "{args.database}" with (force)', f'create database "{args.database}"')


def init(workspace: Path, engine: dict, env: dict[str, str]) -> None:
    import yaml

    shutil.rmtree(workspace, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "autoflux", "init", str(workspace), "-q"], env=env, check=True, cwd=tempfile.gettempdir())
    config = yaml.safe_load((workspace / "autoflux.yml").read_text())
    config["engine"] = engine
    (workspace / "autoflux.yml").write_text(yaml.safe_dump(config))


def typed_tables(args: argparse.Namespace, files: list[Path]) -> list[str]:
    """CREATE TABLEs of the CSVs' columns with the types AutoFlux's ingest gave them (read back from PostgreSQL)."""
    statements = []
    for file in files:
        listing = psql(
            args,
            args.database,
            "\\pset format unaligned",
            "\\pset tuples_only on",
            "select column_name || ' ' || data_type from information_schema.columns "
            f"where table_schema = 'raw' and table_name = '{file.stem}' and column_name not like '\\_%' order by ordinal_position",
        ).stdout.split("\n")
        columns = ", ".join(f'"{line.split(" ", 1)[0]}" {line.split(" ", 1)[1]}' for line in listing if " " in line)
        statements.append(f'create table bench."{file.stem}" ({columns})')
    return statements


def main() -> None:
    parser = whole_process_parser(__doc__, rows=1_000_000)
    parser.add_argument("--only", choices=["postgres", "spark"])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--database", default="autoflux_bench_engines")
    parser.add_argument("--host", default=os.environ.get("PGHOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PGPORT", "5432")))
    parser.add_argument("--user", default=os.environ.get("PGUSER", "postgres"))
    args = parser.parse_args()
    data = generate(args.data / f"rows-{args.rows}", args.rows)
    files = [data / "train.csv", data / "test.csv"]
    env = autoflux_env(args.src)
    autoflux = [sys.executable, "-m", "autoflux"]
    figures: dict[str, list[float]] = {}
    loads: list[float] = []

    def record(name: str, measured: dict) -> None:
        figures.setdefault(name, []).append(measured["s"])
        loads.append(measured["load"])
        print(f"  {name:<18} {measured['s']:6.2f} s   cpu {measured['cpu_s']:6.2f} s   load {measured['load']:.2f}", flush=True)

    postgres = {"type": "postgres", "host": args.host, "port": args.port, "user": args.user, "database": args.database}
    spark = {"type": "spark", "master": args.master, "format": "parquet", "conf": {"spark.driver.memory": "4g"}}
    with tempfile.TemporaryDirectory(prefix="autoflux-bench-engines-") as tmp:
        work = Path(tmp)
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}", flush=True)
            if args.only in (None, "postgres"):
                fresh_database(args)
                init(work / "pg", postgres, env)
                psql(args, "postgres", "checkpoint")  # each side starts with no dirty pages of the other's to flush
                record("postgres_autoflux", timed([*autoflux, "ingest", str(data), "-w", str(work / "pg"), "-q"], env))
                script = ["create schema bench", *typed_tables(args, files)]
                script += [f"\\copy bench.\"{f.stem}\" from '{f}' csv header" for f in files]
                psql(args, args.database, "drop schema if exists raw cascade", "checkpoint")
                argv = [
                    "psql",
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-h",
                    args.host,
                    "-p",
                    str(args.port),
                    "-U",
                    args.user,
                    "-d",
                    args.database,
                ]
                record("postgres_psql_copy", timed([*argv, *(x for part in script for x in ("-c", part))], env))
            if args.only in (None, "spark"):
                init(work / "spark", spark, env)
                record("spark_autoflux", timed([*autoflux, "ingest", str(data), "-w", str(work / "spark"), "-q"], env))
                for mode in ("spark", "pandas"):
                    folder = work / f"yardstick-{mode}"
                    shutil.rmtree(folder, ignore_errors=True)
                    folder.mkdir()
                    argv = [sys.executable, "-c", SPARK_YARDSTICK, str(folder), mode, args.master, *map(str, files)]
                    record(f"spark_{mode}_reader", timed(argv, env))
        if args.only in (None, "postgres"):
            psql(args, "postgres", f'drop database if exists "{args.database}" with (force)')
    medians = {name: statistics.median(values) for name, values in figures.items()}
    ratios = {}
    if "postgres_autoflux" in medians:
        ratios["postgres autoflux / psql \\copy (goal <= 1.3)"] = round(medians["postgres_autoflux"] / medians["postgres_psql_copy"], 2)
    if "spark_autoflux" in medians:
        ratios["spark autoflux / Spark's reader (goal <= 1.1)"] = round(medians["spark_autoflux"] / medians["spark_spark_reader"], 2)
        ratios["spark pandas floor / autoflux (goal >= 3.5)"] = round(medians["spark_pandas_reader"] / medians["spark_autoflux"], 2)
    result = {
        "rows": args.rows,
        "rounds": args.rounds,
        "median_s": {k: round(v, 2) for k, v in medians.items()},
        "all_s": {k: [round(x, 2) for x in v] for k, v in figures.items()},
        "load_median": round(statistics.median(loads), 2),
        "ratios": ratios,
    }
    print("medians (s):", result["median_s"])
    for name, ratio in ratios.items():
        print(f"  {name}: {ratio}")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "engines.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
