"""Scale benchmark for issue 15 (parts 2–4): prints the figures, writes bench/out/scale.json and bench/out/scale.png.

    python bench/scale.py                       # all three measurements (the 10 GB file and 20M rows take a while)
    python bench/scale.py --only speed          # or: memory, scale
    options: --rows 5000000  --sizes 1,2,5,10  --rows-list 1000000,5000000,20000000  --rounds 3
             --compare LABEL JSON (also plot the memory curve of an earlier scale.json, e.g. one of --src main)
             --data bench/data (generated CSVs, kept for the next run)  --src DIR (the autoflux tree to time)
             --out bench/out/scale.json

Every figure is a whole process (the real CLI, as a user runs it), in a fresh workspace; peak
resident memory is the child's ru_maxrss from os.wait4.

- speed:  `autoflux init` + `autoflux ingest` of a --rows train CSV and its test CSV (a quarter
          of that) against the yardstick, DuckDB's ``COPY (select * from read_csv(...)) TO
          '....parquet'`` of the same two files in one process. Medians of --rounds rounds, each
          timing the yardstick and AutoFlux one after the other. Goal: ratio ≤ 1.0, with every
          rule of ingest kept (names, types and widening, quarantine, lineage, one commit a file).
- memory: peak resident memory and seconds of `autoflux ingest` of a train CSV of each of
          --sizes GB. Goal: ≤ 512 MiB at 2 GB, and flat in the file's size.
- scale:  `autoflux ingest`, and `autoflux run --no-report` (ingest + dbt + hand-off) in another
          fresh workspace, of a --rows-list train CSV (and its test CSV): seconds and µs per row
          (train + test rows). Goal: time per row flat or falling.

bench/out/scale.png plots the scale curve (µs per row) and the memory curve (peak MiB by GB).
A run of one part keeps the others' figures in scale.json. The machine may be shared: the load
average is printed beside each figure, and only ratios to a yardstick timed in the same run
mean much. The plot needs matplotlib: pip install -e ".[bench]".
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import autoflux_env, timed, whole_process_parser  # noqa: E402 - the sibling benchmark's helpers

DUCKDB_YARDSTICK = """
import sys, duckdb
connection = duckdb.connect()
for path, out in zip(sys.argv[1::2], sys.argv[2::2]):
    connection.execute(f"copy (select * from read_csv('{path}')) to '{out}' (format parquet)")
connection.close()
"""


def generate(folder: Path, *args: str) -> Path:
    """A folder of datagen.py's CSVs (made once; later runs reuse it)."""
    if not (folder / "train.csv").exists():
        subprocess.run([sys.executable, str(HERE / "datagen.py"), *args, "--out", str(folder)], check=True)
    return folder


def rows_of(folder: Path) -> int:
    """Data rows of the folder's CSVs (lines less the header)."""
    total = 0
    for path in folder.glob("*.csv"):
        with path.open("rb") as handle:
            total += sum(chunk.count(b"\n") for chunk in iter(lambda h=handle: h.read(1 << 24), b"")) - 1
    return total


class Bench:
    def __init__(self, src: Path, work: Path) -> None:
        self.env = autoflux_env(src)
        self.work = work
        self.autoflux = [sys.executable, "-m", "autoflux"]

    def init(self, name: str) -> tuple[Path, dict]:
        workspace = self.work / name
        shutil.rmtree(workspace, ignore_errors=True)
        return workspace, timed([*self.autoflux, "init", str(workspace), "-q"], self.env)

    def cli(self, *args: str) -> dict:
        return timed([*self.autoflux, *args, "-q"], self.env)

    def show(self, name: str, figure: dict) -> None:
        print(
            f"  {name:<26} {figure['s']:7.2f} s   cpu {figure['cpu_s']:7.2f} s   peak {figure['peak_mib']:5d} MiB   load {figure['load']:.2f}",
            flush=True,
        )

    def speed(self, data: Path, rows: int, rounds: int) -> dict:
        folder = generate(data / f"rows-{rows}", "--rows", str(rows))
        files = [folder / "train.csv", folder / "test.csv"]
        runs: dict[str, list[dict]] = {"duckdb": [], "autoflux": []}
        for round_ in range(1, rounds + 1):
            print(f"speed, round {round_}", flush=True)
            outs = [self.work / f"{f.stem}.parquet" for f in files]
            argv = [sys.executable, "-c", DUCKDB_YARDSTICK, *(str(p) for pair in zip(files, outs, strict=True) for p in pair)]
            runs["duckdb"].append(timed(argv, self.env))
            self.show("yardstick duckdb", runs["duckdb"][-1])
            for out in outs:
                out.unlink(missing_ok=True)
            workspace, init = self.init("speed")
            ingest = self.cli("ingest", str(folder), "-w", str(workspace))
            both = {
                "s": init["s"] + ingest["s"],
                "cpu_s": init["cpu_s"] + ingest["cpu_s"],
                "peak_mib": max(init["peak_mib"], ingest["peak_mib"]),
                "load": ingest["load"],
                "init_s": init["s"],
            }
            runs["autoflux"].append(both)
            self.show("autoflux init + ingest", both)
            shutil.rmtree(workspace)
        median = {
            name: {k: round(statistics.median(r[k] for r in rs), 2) for k in ("s", "cpu_s", "peak_mib", "load")}
            for name, rs in runs.items()
        }
        ratios = [a["s"] / d["s"] for a, d in zip(runs["autoflux"], runs["duckdb"], strict=True)]
        return {
            "rows": rows_of(folder),
            "bytes": sum(f.stat().st_size for f in files),
            "rounds": rounds,
            "duckdb": median["duckdb"],
            "autoflux": median["autoflux"],
            "ratio": round(median["autoflux"]["s"] / median["duckdb"]["s"], 2),
            "ratio_per_round": [round(r, 2) for r in ratios],
            "goal_ratio": 1.0,
        }

    def memory(self, data: Path, sizes: list[float]) -> dict:
        points = []
        for gigabytes in sizes:
            label = f"{gigabytes:g}"
            folder = generate(data / f"size-{label}gb", "--size-gb", label, "--test-fraction", "0")
            train = folder / "train.csv"
            workspace, _ = self.init("memory")
            figure = self.cli("ingest", str(train), "-w", str(workspace))
            shutil.rmtree(workspace)
            self.show(f"ingest {label} GB", figure)
            points.append({"gb": gigabytes, "bytes": train.stat().st_size, **{k: round(v, 2) for k, v in figure.items()}})
        return {"points": points, "goal_peak_mib_at_2gb": 512}

    def scale(self, data: Path, rows_list: list[int]) -> dict:
        points = []
        for rows in rows_list:
            folder = generate(data / f"rows-{rows}", "--rows", str(rows))
            total = rows_of(folder)
            point: dict = {"train_rows": rows, "rows": total, "bytes": sum(f.stat().st_size for f in folder.glob("*.csv"))}
            for step, args in (("ingest", ["ingest"]), ("run", ["run", "--no-report"])):
                workspace, _ = self.init(f"scale-{step}")
                figure = self.cli(*args, str(folder), "-w", str(workspace))
                shutil.rmtree(workspace)
                self.show(f"{step} {rows:,} rows", figure)
                point[step] = {**{k: round(v, 2) for k, v in figure.items()}, "us_per_row": round(figure["s"] / total * 1e6, 3)}
            points.append(point)
        return {"points": points}


def plot(results: dict, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print('no plot: matplotlib is missing (pip install -e ".[bench]")')
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    points = results.get("scale", {}).get("points", [])
    for step in ("ingest", "run"):
        xs = [p["rows"] for p in points if step in p]
        left.plot(xs, [p[step]["us_per_row"] for p in points if step in p], marker="o", label=f"autoflux {step}")
    left.set(xscale="log", xlabel="rows (train + test)", ylabel="µs per row", title="Scale: time per row (flat or falling)")
    left.set_ylim(bottom=0)
    left.grid(alpha=0.3)
    if points:
        left.set_xticks([p["rows"] for p in points], [f"{p['rows'] / 1e6:g}M" for p in points])
        left.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())  # the log scale's own labels overlap
        left.legend()
    memory = results.get("memory", {}).get("points", [])
    right.plot([p["gb"] for p in memory], [p["peak_mib"] for p in memory], marker="o", label="autoflux ingest")
    for name, earlier in results.get("memory_before", {}).items():
        right.plot([p["gb"] for p in earlier], [p["peak_mib"] for p in earlier], marker="x", linestyle="--", label=name)
    right.axhline(512, color="red", linestyle=":", label="goal 512 MiB")
    right.set(xlabel="train CSV (GB)", ylabel="peak RSS (MiB)", title="Memory: peak RSS by file size (flat)")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    right.legend()
    speed = results.get("speed")
    if speed:
        figure.suptitle(
            f"speed: autoflux init + ingest {speed['autoflux']['s']} s vs DuckDB read_csv → Parquet {speed['duckdb']['s']} s "
            f"({speed['rows']:,} rows): ratio {speed['ratio']} (goal ≤ 1.0)"
        )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print("wrote", path)


def main() -> None:
    parser = whole_process_parser(__doc__, rows=5_000_000, out="scale.json")
    parser.add_argument("--only", choices=["speed", "memory", "scale"])
    parser.add_argument("--sizes", default="1,2,5,10", help="train CSV sizes in GB, for the memory curve")
    parser.add_argument("--rows-list", default="1000000,5000000,20000000", help="train rows, for the scale curve")
    parser.add_argument("--compare", nargs=2, metavar=("LABEL", "JSON"), help="also plot the memory curve of an earlier scale.json")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.exists() else {}
    if args.compare:
        results.setdefault("memory_before", {})[args.compare[0]] = json.loads(Path(args.compare[1]).read_text())["memory"]["points"]
    with tempfile.TemporaryDirectory(prefix="autoflux-bench-scale-") as tmp:
        bench = Bench(args.src, Path(tmp))
        probe = [sys.executable, "-c", "import autoflux; print(autoflux.__file__)"]
        print(
            "timing",
            subprocess.run(probe, env=bench.env, cwd=tempfile.gettempdir(), capture_output=True, text=True, check=True).stdout.strip(),
        )
        results["src"] = str(args.src.resolve())
        if args.only in (None, "speed"):
            results["speed"] = bench.speed(args.data, args.rows, args.rounds)
            speed = results["speed"]
            print(f"speed: autoflux {speed['autoflux']['s']} s, {speed['autoflux']['peak_mib']} MiB; duckdb {speed['duckdb']['s']} s, "
                  f"{speed['duckdb']['peak_mib']} MiB; ratio {speed['ratio']} (goal <= 1.0)", flush=True)  # fmt: skip
        if args.only in (None, "memory"):
            results["memory"] = bench.memory(args.data, [float(s) for s in args.sizes.split(",")])
            print(
                "memory (GB: peak MiB):", {p["gb"]: p["peak_mib"] for p in results["memory"]["points"]}, "goal <= 512 MiB, flat", flush=True
            )
        if args.only in (None, "scale"):
            results["scale"] = bench.scale(args.data, [int(r) for r in args.rows_list.split(",")])
            print(
                "scale (rows: µs per row ingest / run):",
                {p["rows"]: (p["ingest"]["us_per_row"], p["run"]["us_per_row"]) for p in results["scale"]["points"]},
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    plot(results, args.out.with_suffix(".png"))


if __name__ == "__main__":
    main()
