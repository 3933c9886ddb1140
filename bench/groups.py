"""Grouped-table benchmark for issue 16: a folder of parts loaded as one raw table, then a rerun with one part added.

    python bench/groups.py                      # 10,000 parts × 1,000 rows (goals: ≤ 60 s, rerun ≤ 3 s on 2 cores)
    options: --parts 10000  --rows 1000  --data bench/data/groups

- ingest: `autoflux ingest` wall time of the whole folder (one table, `raw.events`), beside a
          yardstick in the same run: DuckDB `read_csv` over the folder's glob → one Parquet file.
- rerun:  `autoflux ingest` again after one part is added (only that part is read).
- noop:   `autoflux ingest` again with nothing changed (no data file is read).

Each measurement runs the real CLI in a fresh workspace, as a user would; figures go to
bench/out/groups.json too.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def generate(folder: Path, parts: int, rows: int) -> None:
    """``parts`` CSV files of ``rows`` rows each under ``folder/events`` (kept between runs)."""
    events = folder / "events"
    marker = folder / f".complete-{parts}x{rows}"
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    events.mkdir(parents=True)
    rng = random.Random(16)
    for part in range(parts):
        lines = ["id,user,amount,kind,at"]
        for row in range(rows):
            n = part * rows + row
            lines.append(f"{n},{rng.randrange(10**6)},{rng.random() * 1000:.2f},{rng.choice('abcd')},2024-01-{1 + n % 28:02d}")
        (events / f"part-{part:05d}.csv").write_text("\n".join(lines) + "\n")
    marker.touch()


def timed(*args: str, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    subprocess.run([sys.executable, "-m", "autoflux", *args, "-q"], check=True, cwd=cwd, env=env)
    return time.perf_counter() - started


def yardstick(folder: Path, out: Path) -> float:
    """DuckDB reading every part through one glob and writing one Parquet file."""
    import duckdb

    started = time.perf_counter()
    with duckdb.connect() as connection:
        connection.execute(f"copy (select * from read_csv('{folder}/events/*.csv')) to '{out}' (format parquet)")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--data", type=Path, default=HERE / "data" / "groups")
    options = parser.parse_args()
    generate(options.data, options.parts, options.rows)
    source = Path(tempfile.mkdtemp(prefix="autoflux-groups-"))
    try:
        shutil.copytree(options.data / "events", source / "events")
        workspace = source / "ws"
        timed("init", str(workspace))
        figures: dict[str, float | int] = {"parts": options.parts, "rows_per_part": options.rows, "cores": os.cpu_count() or 1}
        figures["yardstick_duckdb_glob_to_parquet_s"] = yardstick(source, source / "yardstick.parquet")
        figures["ingest_s"] = timed("ingest", str(source / "events"), "-w", str(workspace))
        extra = source / "events" / f"part-{options.parts:05d}.csv"
        shutil.copy(source / "events" / "part-00000.csv", extra)
        figures["rerun_one_part_added_s"] = timed("ingest", str(source / "events"), "-w", str(workspace))
        figures["rerun_nothing_changed_s"] = timed("ingest", str(source / "events"), "-w", str(workspace))
        figures["ratio_ingest_to_yardstick"] = figures["ingest_s"] / figures["yardstick_duckdb_glob_to_parquet_s"]
    finally:
        shutil.rmtree(source, ignore_errors=True)
    for name, value in figures.items():
        print(f"{name:40} {value:.2f}" if isinstance(value, float) else f"{name:40} {value}")
    print(f"goals: ingest ≤ 60 s ({'met' if figures['ingest_s'] <= 60 else 'MISSED'}), ", end="")
    print(f"rerun with one part added ≤ 3 s ({'met' if figures['rerun_one_part_added_s'] <= 3 else 'MISSED'})")
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "groups.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
