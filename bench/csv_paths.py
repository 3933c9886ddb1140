"""Floors of issue 15 part 2: what each CSV design costs before its last step, against the part's yardstick.

    python bench/csv_paths.py                   # 3 rounds on the 5M-row train CSV and its test CSV
    options: --rows 5000000  --rounds 3  --data bench/data  --src DIR (the autoflux tree to time)

Part 2 asks the embedded ingest to be no slower than DuckDB's ``read_csv`` → Parquet (bench/scale.py
--only speed), every rule of ingest kept. Each round times, in turn, each as a whole process on the same
two files (datagen.py's, as bench/scale.py's):

- yardstick: DuckDB ``COPY (select * from read_csv(...)) TO '....parquet'``, DuckDB's own sniffed types;
- duckdb_casts: DuckDB reading every column as text and casting it to those types, then the same COPY:
  the cost of reading text first, which a path that checks values as written needs;
- duckdb_rules: the same with AutoFlux's number rules as SQL (a ``+`` sign, leading zeros, white space
  around a number, 16 digits or more in a fraction column make an error, as the embedded engine's
  reader would widen the column): the floor of a DuckDB-based CSV path, before quarantine, widening,
  lineage, a Delta commit per file and AutoFlux's own start;
- autoflux: ``autoflux ingest`` of the folder (``init`` before it, not timed);
- autoflux_no_parquet: the same with pyarrow's Parquet encoding skipped (``ParquetWriter.write_table``
  a no-op: the files hold no rows): the floor of today's path, reading, typing and checking alone.

Prints each median, and its ratio to the yardstick's; writes bench/out/csv_paths.json.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import autoflux_env, timed, whole_process_parser  # noqa: E402 - the sibling benchmark's helpers
from scale import DUCKDB_YARDSTICK, generate  # noqa: E402

# argv: rules (0/1), then csv and parquet paths in pairs. Columns are read as text and cast to DuckDB's
# sniffed types; with rules, a number not as written raises, as it makes AutoFlux's reader widen the column.
DUCKDB_TEXT_FIRST = """
import sys, duckdb
connection = duckdb.connect()
rules = sys.argv[1] == "1"

def number(name, kind):
    c, first = f'"{name}"', f'ascii("{name}")'
    space = f"{first} in (32, 9) or ascii(right({c}, 1)) in (32, 9)"
    if kind == "BIGINT":
        bad = f"{first} = 43 or {space} or ({first} = 48 and length({c}) > 1) or starts_with({c}, '-0')"
    else:
        second, third = f"ascii(substr({c}, 2, 1))", f"ascii(substr({c}, 3, 1))"
        bad = (f"{first} = 43 or {space} or ({first} = 48 and {second} between 48 and 57)"
               f" or ({first} = 45 and {second} = 48 and {third} between 48 and 57)"
               f" or (length({c}) >= 16 and regexp_full_match({c}, '-?[0-9]{{16,}}'))")
    return f"case when {bad} then error('not as written: ' || {c}) else cast({c} as {kind}) end as {c}"

for path, out in zip(sys.argv[2::2], sys.argv[3::2]):
    columns = connection.execute(f"describe select * from read_csv('{path}')").fetchall()
    select = ", ".join(
        number(name, kind) if rules and kind in ("BIGINT", "DOUBLE") else f'cast("{name}" as {kind}) as "{name}"'
        for name, kind, *_ in columns
    )
    connection.execute(f"copy (select {select} from read_csv('{path}', all_varchar = true)) to '{out}' (format parquet)")
connection.close()
"""

# argv: the autoflux CLI's; pyarrow's Parquet encoding is skipped (the files are written with no rows)
AUTOFLUX_NO_PARQUET = """
import sys
import pyarrow.parquet as pq
pq.ParquetWriter.write_table = lambda self, table, row_group_size=None: None
sys.argv[0] = "autoflux"
from autoflux.cli import main
main()
"""


def main() -> None:
    args = whole_process_parser(__doc__, rows=5_000_000, out="csv_paths.json").parse_args()
    folder = generate(args.data / f"rows-{args.rows}", "--rows", str(args.rows))
    files = [folder / "train.csv", folder / "test.csv"]
    env = autoflux_env(args.src)
    figures: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="autoflux-bench-csv-paths-") as tmp:
        work = Path(tmp)
        pairs = [str(p) for f in files for p in (f, work / f"{f.stem}.parquet")]
        autoflux = [sys.executable, "-m", "autoflux"]
        runs = {
            "yardstick": [sys.executable, "-c", DUCKDB_YARDSTICK, *pairs],
            "duckdb_casts": [sys.executable, "-c", DUCKDB_TEXT_FIRST, "0", *pairs],
            "duckdb_rules": [sys.executable, "-c", DUCKDB_TEXT_FIRST, "1", *pairs],
            "autoflux": [*autoflux, "ingest", str(folder), "-q"],
            "autoflux_no_parquet": [sys.executable, "-c", AUTOFLUX_NO_PARQUET, "ingest", str(folder), "-q"],
        }
        for round_ in range(1, args.rounds + 1):
            print(f"round {round_}", flush=True)
            for name, argv in runs.items():
                workspace = work / "workspace"
                shutil.rmtree(workspace, ignore_errors=True)
                if name.startswith("autoflux"):
                    timed([*autoflux, "init", str(workspace), "-q"], env)
                    argv = [*argv, "-w", str(workspace)]
                figure = timed(argv, env)
                figures.setdefault(name, []).append(figure)
                print(f"  {name:<20} {figure['s']:6.2f} s   cpu {figure['cpu_s']:6.2f} s   peak {figure['peak_mib']:5d} MiB", flush=True)
    medians = {name: {k: round(statistics.median(f[k] for f in fs), 2) for k in ("s", "cpu_s", "peak_mib")} for name, fs in figures.items()}
    yardstick = medians["yardstick"]["s"]
    results = {
        "rows": args.rows,
        "rounds": args.rounds,
        "medians": medians,
        "ratio_to_yardstick": {name: round(m["s"] / yardstick, 2) for name, m in medians.items()},
    }
    for name, median in medians.items():
        print(f"{name:<20} {median['s']:6.2f} s   cpu {median['cpu_s']:6.2f} s   ratio {results['ratio_to_yardstick'][name]:.2f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
