"""Ingest benchmark for issue 2: prints the figures and writes them to bench/out/ingest.json.

    python bench/ingest.py                      # all three measurements
    python bench/ingest.py --only speed         # or: memory, run
    options: --rows 5000000  --memory-gb 2  --run-rows 1000000  --data bench/data

- speed:  `autoflux ingest` wall time on a generated train CSV (--rows) plus a test CSV of a
          quarter of that, against pyarrow.csv.read_csv + pyarrow.parquet.write_table of the
          same files (goal: ratio ≤ 1.5).
- memory: peak resident memory of `autoflux ingest` on a train CSV of --memory-gb (goal ≤ 1 GB).
- run:    `autoflux run` (ingest + dbt + hand-off) wall time on a --run-rows train (goal ≤ 15 s),
          and of a second run with nothing changed.

Each AutoFlux measurement runs the real CLI in a fresh workspace, as a user would.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(folder: Path, *args: str) -> Path:
    if not (folder / "train.csv").exists():
        subprocess.run([sys.executable, str(HERE / "datagen.py"), *args, "--out", str(folder)], check=True)
    return folder


def timed_cli(*args: str) -> tuple[float, int]:
    """Wall seconds and peak resident MiB of one `python -m autoflux ...` process."""
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "autoflux", *args])
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"autoflux {' '.join(args)} failed")
    return seconds, usage.ru_maxrss // 1024


def fresh_workspace(root: Path, name: str) -> Path:
    workspace = root / name
    shutil.rmtree(workspace, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "autoflux", "init", str(workspace), "-q"], check=True)
    return workspace


BASELINE = """
import sys, pyarrow.csv as pacsv, pyarrow.parquet as pq
from pathlib import Path
out = Path(sys.argv[1])
for name in sys.argv[2:]:
    pq.write_table(pacsv.read_csv(name), out / (Path(name).stem + ".parquet"))
"""


def baseline_seconds(files: list[Path], out: Path) -> float:
    """pyarrow.csv.read_csv + pyarrow.parquet.write_table of ``files``, in a process of its own.

    A separate process keeps the benchmark's own memory small: a child's peak resident memory
    counts what its parent held when it was forked.
    """
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", BASELINE, str(out), *map(str, files)], check=True)
    return time.perf_counter() - started


def bench_speed(data: Path, work: Path, rows: int) -> dict:
    folder = generate(data / f"rows-{rows}", "--rows", str(rows))
    files = [folder / "train.csv", folder / "test.csv"]
    baseline = baseline_seconds(files, work)
    seconds, peak = timed_cli("ingest", str(folder), "-w", str(fresh_workspace(work, "speed")), "-q")
    size = sum(f.stat().st_size for f in files)
    return {
        "rows": rows,
        "bytes": size,
        "baseline_s": round(baseline, 2),
        "autoflux_s": round(seconds, 2),
        "ratio": round(seconds / baseline, 2),
        "peak_mib": peak,
    }


def bench_memory(data: Path, work: Path, gigabytes: float) -> dict:
    folder = generate(data / f"size-{gigabytes}gb", "--size-gb", str(gigabytes), "--test-fraction", "0")
    train = folder / "train.csv"
    for other in folder.glob("test.csv"):
        other.unlink()
    seconds, peak = timed_cli("ingest", str(train), "-w", str(fresh_workspace(work, "memory")), "-q")
    return {"bytes": train.stat().st_size, "autoflux_s": round(seconds, 2), "peak_mib": peak}


def bench_run(data: Path, work: Path, rows: int) -> dict:
    folder = generate(data / f"rows-{rows}", "--rows", str(rows))
    workspace = fresh_workspace(work, "run")
    seconds, peak = timed_cli("run", str(folder), "-w", str(workspace), "-q")
    again, _ = timed_cli("run", str(folder), "-w", str(workspace), "-q")  # nothing changed: no load, no dbt
    return {"rows": rows, "autoflux_s": round(seconds, 2), "peak_mib": peak, "unchanged_rerun_s": round(again, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["speed", "memory", "run"])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--memory-gb", type=float, default=2.0)
    parser.add_argument("--run-rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="autoflux-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "speed"):
            results["speed"] = bench_speed(args.data, work, args.rows)
            print("speed ", results["speed"], "goal ratio <= 1.5", flush=True)
        if args.only in (None, "memory"):
            results["memory"] = bench_memory(args.data, work, args.memory_gb)
            print("memory", results["memory"], "goal peak <= 1024 MiB", flush=True)
        if args.only in (None, "run"):
            results["run"] = bench_run(args.data, work, args.run_rows)
            print("run   ", results["run"], "goal <= 15 s", flush=True)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
