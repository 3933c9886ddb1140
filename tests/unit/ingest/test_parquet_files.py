"""The Parquet files a load writes: a column is dictionary-encoded only when its first row group's distinct
values fit a dictionary page (the others are written plain from the start), and every value comes back."""

from __future__ import annotations

import random

import pyarrow.parquet as pq

from autoflux.lake import RAW, data_files
from autoflux.workspace import Workspace


def test_only_columns_whose_distinct_values_fit_a_dictionary_page_are_dictionary_encoded(workspace, data_dir, ingest, raw):
    rows = 20_000
    generator = random.Random(7)
    measures = [f"{generator.random():.9f}" for _ in range(rows)]  # all distinct: 160 KB of doubles
    notes = [f"note number {i:06d}" for i in range(rows)]  # all distinct text
    lines = ["id,measure,city,note,grade,flag"]
    lines += [f"{i},{measures[i]},{('Oslo', 'Rome', 'Lima')[i % 3]},{notes[i]},{i % 5},{i % 2 == 0}" for i in range(rows)]
    (data_dir / "train.csv").write_text("\n".join(lines) + "\n")
    ingest(data_dir / "train.csv")

    (path,) = data_files(Workspace.open(workspace).lake.open(RAW, "train"))
    group = pq.ParquetFile(path).metadata.row_group(0)
    encoded = {group.column(i).path_in_schema: group.column(i).has_dictionary_page for i in range(group.num_columns)}
    assert {name for name, dictionary in encoded.items() if dictionary} >= {"city", "grade"}
    assert not encoded["measure"] and not encoded["note"] and not encoded["id"]
    table = raw("train")
    assert table["measure"].to_pylist() == [float(m) for m in measures]
    assert table["note"].to_pylist() == notes
    assert table["city"].to_pylist()[:4] == ["Oslo", "Rome", "Lima", "Oslo"]
