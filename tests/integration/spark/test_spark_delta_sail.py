"""Tests 5 and 6: Delta through the Spark API, on a Sail Spark Connect server started here.

Delta's Spark connector cannot be downloaded on this machine, so the spark engine runs through
Spark Connect against Sail (``pysail``), which reads and writes Delta: raw tables are Delta tables
at the lake's layout, each load a commit whose ``userMetadata`` holds the load id and fingerprint,
and an older version reads back (time travel). The embedded engine reads what Spark wrote, and
Spark reads what the embedded engine wrote.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from spark_helpers import make_workspace

import autoflux
from autoflux.engines import create_engine
from autoflux.pipeline import Pipeline
from autoflux.workspace import Workspace


def ingest(root: Path, source: Path):
    return Pipeline(Workspace.open(root)).ingest([str(source)])


def sorted_rows(table: pa.Table) -> pa.Table:
    return table.select(sorted(table.column_names)).sort_by("_source_file" if "id" not in table.column_names else "id")


@pytest.fixture(scope="module")
def spark_ws(sail, tmp_path_factory, example_dir):
    folder = tmp_path_factory.mktemp("sail")
    data = folder / "data"
    shutil.copytree(example_dir, data)
    root = make_workspace(folder / "ws", {"type": "spark", "master": sail, "format": "delta"})
    report = ingest(root, data)
    assert [f.outcome for f in report.files] == ["loaded"] * 3, [f.message for f in report.files]
    return root, data


def test_raw_tables_are_delta_and_older_versions_read_back(spark_ws):
    root, data = spark_ws
    workspace = Workspace.open(root)
    lake = workspace.lake
    assert lake.tables("raw") == ["sample_submission", "test", "train"]
    first = lake.open("raw", "train").history(1)[0]
    assert "autoflux.fingerprint" in first["userMetadata"]
    assert first["engineInfo"].startswith("sail"), "the commit was not written by Sail"
    lines = (data / "train.csv").read_text().splitlines(keepends=True)
    (data / "train.csv").write_text("".join(lines[:901]))
    report = ingest(root, data)
    assert {f.table: f.outcome for f in report.files} == {"sample_submission": "unchanged", "test": "unchanged", "train": "loaded"}
    assert next(f for f in report.files if f.table == "train").version == 1
    engine = create_engine(workspace)
    assert engine.raw_store().read("train", version=0).num_rows == 1000
    assert engine.raw_store().read("train", version=1).num_rows == 900
    assert engine.frame("raw", "train").count() == 900
    assert engine.raw_store().table("train").metadata["autoflux.source_file"] == "train.csv"


def test_the_embedded_engine_reads_what_spark_wrote(spark_ws):
    root, data = spark_ws
    workspace = Workspace.open(root)
    spark = create_engine(workspace)
    for name in ("train", "test"):
        embedded = workspace.lake.open("raw", name).to_pyarrow_table()
        through_spark = spark.frame("raw", name).toArrow()
        assert embedded.schema.names == through_spark.schema.names
        assert sorted_rows(embedded).equals(sorted_rows(through_spark.cast(embedded.schema)))
    workspace.config.engine = type(workspace.config.engine).model_validate({"type": "spark", "master": "local[1]", "format": "delta"})
    from autoflux.engines.duckdb import Engine as Embedded
    from autoflux.engines.duckdb import Settings

    state = Embedded(Settings(), workspace).raw_store().state("test")
    assert state == spark.raw_store().state("test") and state[0] is not None


def test_spark_reads_what_the_embedded_engine_wrote(sail, tmp_path, example_dir):
    embedded = autoflux.init(tmp_path / "embedded")
    ingest(embedded, example_dir)
    root = make_workspace(tmp_path / "spark", {"type": "spark", "master": sail, "format": "delta"}, lake=str(embedded / "lake"))
    workspace = Workspace.open(root)
    engine = create_engine(workspace)
    assert engine.raw_store().tables() == ["sample_submission", "test", "train"]
    engine.publish_raw(engine.raw_store().tables())
    lake = workspace.lake
    for name in ("train", "sample_submission"):
        expected = lake.open("raw", name).to_pyarrow_table()
        through_spark = engine.spark.table(f"raw.{name}").toArrow()
        assert through_spark.num_rows == expected.num_rows
        assert through_spark.schema.names == expected.schema.names
        assert sorted_rows(through_spark.cast(expected.schema)).equals(sorted_rows(expected))
    report = ingest(root, example_dir)
    assert [f.outcome for f in report.files] == ["unchanged"] * 3


def test_reproduce_on_spark_connect_says_there_is_no_catalog_of_its_own_and_exits_1(spark_ws, tmp_path, cli):
    root, _ = spark_ws
    manifest = tmp_path / "ml_training_set.manifest.json"  # what a hand-off records, as far as reproduce reads it first
    frames = {split: {"rows": 1, "content_hash": "0" * 64} for split in ("train", "test")}
    record = {"relation": "marts.ml_training_set", "build": {"engine": "spark"}, "raw_tables": {"train": {"version": 0}}}
    manifest.write_text(json.dumps({**record, "dbt_models": {}, "frames": frames}), encoding="utf-8")
    result = cli("reproduce", str(manifest), "-w", str(root))
    assert result.exit_code == 1
    (line,) = result.error_lines()
    assert "Spark Connect gives no catalog of its own to rebuild models in" in line and "AUTOFLUX__ENGINE__MASTER='local[*]'" in line
    assert not list((root / ".autoflux").glob("reproduce/*"))
