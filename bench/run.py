"""`autoflux run` benchmark for issue 15: whole processes, each beside a yardstick in the same run.

    python bench/run.py                          # 3 rounds; prints medians, writes bench/out/run.json
    options: --rounds 3  --rows 1000000  --data bench/data  --src DIR (the autoflux tree to time)

Each round runs, in turn, every one as a whole process (the real CLI, as a user runs it):

- yardstick ``python -c "import pandas"``: the fixed cost of starting a Python data tool;
- ``autoflux run examples/loan-default`` in a fresh workspace on a "new machine": an empty user cache
  (``XDG_CACHE_HOME``), so dbt parses everything (the very first run);
- the same in another fresh workspace, the user cache now holding that run's dbt parse (the first
  impression of a workspace; goal ≤ 3 s);
- that run again, nothing changed (goal ≤ 1.5 s);
- yardstick ``duckdb``: read_csv of the --rows train + test CSV → CREATE TABLE in a DuckDB file;
- ``autoflux run`` on those files in a fresh workspace (ingest + dbt + hand-off; goal ≤ 6 s), the user
  cache holding the example's parse (another project: dbt re-reads the files that differ);
- the same run again, nothing changed.

CPU seconds (user + system of AutoFlux's process and of its dbt process, which it reaps at exit) and
the load average are printed beside each figure: the machine is shared, timings are noisy, so only the
medians of several rounds and the ratios to a yardstick timed in the same round mean much.
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
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "loan-default"

DUCKDB_YARDSTICK = """
import sys, duckdb
connection = duckdb.connect(sys.argv[1])
for name, path in (("train", sys.argv[2]), ("test", sys.argv[3])):
    connection.execute(f"create table {name} as select * from read_csv('{path}')")
connection.close()
"""


def load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


MIB = 1024  # ru_maxrss is in KiB on Linux


def timed(argv: list[str], env: dict[str, str]) -> dict:
    """Wall seconds, CPU seconds (user + system) and peak resident MiB of one process, and the load average after it."""
    started = time.perf_counter()
    # cwd: `python -m` puts the working folder first on sys.path, before PYTHONPATH (--src)
    process = subprocess.Popen(argv, env=env, cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{process.stderr.read().decode()}")
    return {"s": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_mib": usage.ru_maxrss // MIB, "load": load()}


def autoflux_env(src: Path) -> dict[str, str]:
    """The environment that runs the autoflux tree ``src``, its bytecode compiled first as ``pip install`` does.

    Without ``PYTHONDONTWRITEBYTECODE``: a shell that sets it would time Python compiling autoflux's
    modules in every process (~0.3 s), which no installed package pays.
    """
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src.resolve() / "autoflux")], check=True)
    environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return environment | {"PYTHONPATH": str(src.resolve())}


def generate(folder: Path, rows: int) -> Path:
    if not (folder / "train.csv").exists():
        subprocess.run([sys.executable, str(HERE / "datagen.py"), "--rows", str(rows), "--out", str(folder)], check=True)
    return folder


def whole_process_parser(doc: str, *, rows: int, out: str | None = None) -> argparse.ArgumentParser:
    """The options the whole-process benchmarks share: --rows (train rows of the generated data), --rounds,
    --data (where it is generated), --src (the autoflux tree timed) and, with ``out``, --out (bench/out/<out>)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--src", type=Path, default=HERE.parent, help="the autoflux source tree to time (PYTHONPATH)")
    if out:
        parser.add_argument("--out", type=Path, default=HERE / "out" / out)
    return parser


def main() -> None:
    parser = whole_process_parser(__doc__, rows=1_000_000, out="run.json")
    args = parser.parse_args()
    data = generate(args.data / f"rows-{args.rows}", args.rows)
    env = autoflux_env(args.src)
    probe = [sys.executable, "-c", "import autoflux; print(autoflux.__file__)"]
    print("timing", subprocess.run(probe, env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True).stdout.strip())
    autoflux = [sys.executable, "-m", "autoflux"]
    figures: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    loads: dict[str, list[float]] = {}

    def record(name: str, measured: dict) -> None:
        figures.setdefault(name, []).append(measured["s"])
        cpu.setdefault(name, []).append(measured["cpu_s"])
        loads.setdefault(name, []).append(measured["load"])
        print(f"  {name:<22} {measured['s']:6.2f} s   cpu {measured['cpu_s']:6.2f} s   load {measured['load']:.2f}", flush=True)

    with tempfile.TemporaryDirectory(prefix="autoflux-bench-run-") as tmp:
        work = Path(tmp)
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}", flush=True)
            record("yardstick_import", timed([sys.executable, "-c", "import pandas"], env))
            cache = work / "user-cache"
            shutil.rmtree(cache, ignore_errors=True)
            env["XDG_CACHE_HOME"] = str(cache)  # a new machine: nothing kept from an earlier run
            for name, source in (("example_first", EXAMPLE), ("example", EXAMPLE), ("rows", data)):
                workspace = work / name
                shutil.rmtree(workspace, ignore_errors=True)
                subprocess.run([*autoflux, "init", str(workspace), "-q"], env=env, check=True, cwd=tempfile.gettempdir())
                if name == "example_first":
                    record("example_first_run", timed([*autoflux, "run", str(source), "-w", str(workspace), "-q"], env))
                    continue
                if name == "rows":
                    database = work / "yardstick.duckdb"
                    database.unlink(missing_ok=True)
                    argv = [sys.executable, "-c", DUCKDB_YARDSTICK, str(database), str(data / "train.csv"), str(data / "test.csv")]
                    record("yardstick_duckdb", timed(argv, env))
                record(f"{name}_run", timed([*autoflux, "run", str(source), "-w", str(workspace), "-q"], env))
                record(f"{name}_rerun", timed([*autoflux, "run", str(source), "-w", str(workspace), "-q"], env))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    result = {
        "src": str(args.src.resolve()),
        "rows": args.rows,
        "rounds": args.rounds,
        "median_s": {k: round(v, 2) for k, v in medians.items()},
        "cpu_median_s": {k: round(statistics.median(v), 2) for k, v in cpu.items()},
        "load_median": {k: round(statistics.median(v), 2) for k, v in loads.items()},
        "all_s": {k: [round(x, 2) for x in v] for k, v in figures.items()},
        "ratios": {
            "example_run / import": round(medians["example_run"] / medians["yardstick_import"], 2),
            "example_rerun / import": round(medians["example_rerun"] / medians["yardstick_import"], 2),
            "rows_run / duckdb": round(medians["rows_run"] / medians["yardstick_duckdb"], 2),
        },
        "goals_s": {"example_run": 3.0, "example_rerun": 1.5, "rows_run": 6.0},  # example_first_run: no goal, reported
    }
    print("medians (s):", result["median_s"])
    print("cpu medians (s, user + system):", result["cpu_median_s"])
    print("load (median per figure):", result["load_median"])
    print("ratios:", result["ratios"], " goals (s):", result["goals_s"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
