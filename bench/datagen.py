"""Generate large synthetic benchmark CSVs (train.csv + test.csv).

    python bench/datagen.py --rows 5000000 --out bench/data
    python bench/datagen.py --size-gb 2 --out bench/data     # train.csv ~2 GB
    options: --test-fraction 0.25  --seed 0  --chunk-rows 250000

train.csv has 18 columns (id, 5 floats with nulls, 4 ints, 3 categoricals,
a bool, a date, a timestamp, a free-text string, target); test.csv has the
same columns minus target and ids that continue after train's. Rows are made
with numpy and written chunk by chunk with pyarrow's CSV writer, so memory
stays bounded whatever the size. Output is deterministic for a given
--seed and --chunk-rows. 5M train rows is about 0.7 GB.
"""

import argparse
import io
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

CITIES = pa.array(["London", "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Prague", "Warsaw", "Lisbon", "Dublin", "Oslo", "Athens"])
SEGMENTS = pa.array(["retail", "sme", "corporate", "public"])
COLOURS = pa.array(["red", "green", "blue", "amber", "violet"])
WORDS = pa.array(
    [
        "quick",
        "brown",
        "fox",
        "lazy",
        "dog",
        "data",
        "lake",
        "table",
        "model",
        "river",
        "stone",
        "cloud",
        "sharp",
        "quiet",
        "bright",
        "engine",
        "paper",
        "signal",
        "north",
        "delta",
        "flux",
        "amber",
        "orbit",
        "pixel",
    ]
)
DAY0 = np.datetime64("2015-01-01")
N_DAYS = 10 * 365
# No quoting: none of the generated strings contain commas, quotes or newlines
# (pyarrow raises if one ever does), and unquoted CSV is what Kaggle ships.
OPTS = pacsv.WriteOptions(include_header=False, quoting_style="none")


def make_chunk(rng, first_id, n, with_target):
    """Return a pyarrow Table of n synthetic rows with ids first_id.."""

    def floats(values, p_null):
        return pa.array(values, mask=rng.random(n) < p_null)

    x1 = rng.normal(0.0, 1.0, n)
    x2 = rng.exponential(1.0, n)
    amount = np.round(rng.lognormal(7.0, 1.0, n), 2)
    ratio = np.round(rng.random(n), 4)
    score = np.round(rng.normal(600.0, 80.0, n), 1)
    age = rng.integers(18, 90, n)
    count = rng.poisson(3.0, n)
    year = rng.integers(1990, 2025, n)
    big = rng.integers(0, 10_000_000, n)
    city = rng.integers(0, len(CITIES), n)
    segment = rng.integers(0, len(SEGMENTS), n)
    flag = rng.random(n) < 0.3
    days = rng.integers(0, N_DAYS, n)
    seconds = days * 86_400 + rng.integers(0, 86_400, n)
    words = [pc.take(WORDS, rng.integers(0, len(WORDS), n)) for _ in range(3)]

    cols = {
        "id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
        "x1": floats(np.round(x1, 5), 0.05),
        "x2": floats(np.round(x2, 4), 0.02),
        "amount": floats(amount, 0.01),
        "ratio": floats(ratio, 0.10),
        "score": floats(score, 0.03),
        "age": pa.array(age),
        "n_items": pa.array(count),
        "year": pa.array(year),
        "big_int": pa.array(big),
        "city": pc.take(CITIES, city),
        "segment": pc.take(SEGMENTS, segment),
        "colour": pc.take(COLOURS, rng.integers(0, len(COLOURS), n)),
        "flag": pa.array(flag),
        "event_date": pa.array(DAY0 + days.astype("timedelta64[D]")),
        "event_ts": pa.array(DAY0.astype("datetime64[s]") + seconds.astype("timedelta64[s]")),
        "note": pc.binary_join_element_wise(*words, " "),
    }
    if with_target:
        logit = 0.8 * x1 - 0.5 * x2 + 0.004 * (score - 600) + 0.6 * flag - 0.3 * segment + rng.normal(0.0, 1.0, n)
        cols["target"] = pa.array((logit > 0).astype(np.int8))
    return pa.table(cols)


def write_csv(path, n_rows, first_id, with_target, seed, split, chunk_rows):
    """Write n_rows to path in chunks; each chunk has its own seeded rng."""
    with open(path, "wb") as f:
        writer = None
        for k, start in enumerate(range(0, n_rows, chunk_rows)):
            n = min(chunk_rows, n_rows - start)
            rng = np.random.default_rng([seed, split, k])
            table = make_chunk(rng, first_id + start, n, with_target)
            if writer is None:
                # pyarrow always quotes header names, so write our own header.
                f.write((",".join(table.column_names) + "\n").encode())
                writer = pacsv.CSVWriter(f, table.schema, write_options=OPTS)
            writer.write_table(table)
        if writer is not None:
            writer.close()


def bytes_per_row(seed):
    """Estimate the CSV size of one train row from a 20k-row sample."""
    sink = io.BytesIO()
    # 8-digit ids, typical of the 10M+ row files this is used for.
    table = make_chunk(np.random.default_rng([seed, 99]), 10**7, 20_000, True)
    pacsv.write_csv(table, sink, write_options=OPTS)
    return sink.tell() / 20_000


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group(required=True)
    size.add_argument("--rows", type=int, help="train rows")
    size.add_argument("--size-gb", type=float, help="target train.csv size in GB (1e9 bytes)")
    p.add_argument("--out", type=Path, default=Path("bench/data"))
    p.add_argument("--test-fraction", type=float, default=0.25)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-rows", type=int, default=250_000)
    args = p.parse_args()

    rows = args.rows
    if rows is None:
        rows = int(args.size_gb * 1e9 / bytes_per_row(args.seed))
    test_rows = int(rows * args.test_fraction)
    args.out.mkdir(parents=True, exist_ok=True)

    for name, n, first_id, split in [("train.csv", rows, 0, 0), ("test.csv", test_rows, rows, 1)]:
        path = args.out / name
        t0 = time.perf_counter()
        write_csv(path, n, first_id, split == 0, args.seed, split, args.chunk_rows)
        secs = time.perf_counter() - t0
        mb = path.stat().st_size / 1e6
        print(f"{path}: {n:,} rows, {mb:,.1f} MB in {secs:.1f} s ({mb / secs if secs else 0:,.0f} MB/s)")


if __name__ == "__main__":
    main()
