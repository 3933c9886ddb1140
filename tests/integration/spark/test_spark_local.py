"""Test 1: local Spark with the embedded Derby metastore runs the example pipeline end to end.

Ingest reads with Spark's readers and writes external Parquet tables ``raw.<table>`` through the
Hive catalog; dbt runs through dbt-spark's session method; the hand-off returns pandas and lazy
Spark DataFrames. A failed write leaves the table as it was and does not poison the next run.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import autoflux
from autoflux.engines import create_engine
from autoflux.pipeline import Pipeline
from autoflux.workspace import Workspace


def ingest(root: Path, source: Path):
    """``autoflux ingest SOURCE`` in-process (``autoflux.ingest`` is shadowed by the subpackage once imported)."""
    return Pipeline(Workspace.open(root)).ingest([str(source)])


@pytest.fixture(scope="module")
def run(local_workspace, example_dir):
    summary = autoflux.run(local_workspace, [example_dir])
    return local_workspace, summary


def test_the_example_runs_end_to_end(run):
    root, summary = run
    assert [f.outcome for f in summary.ingest.files] == ["loaded"] * 3
    assert {f.table: f.rows for f in summary.ingest.files} == {"sample_submission": 400, "test": 400, "train": 1000}
    assert summary.handoff["train_rows"] == 1000 and summary.handoff["test_rows"] == 400
    assert (summary.handoff["target"], summary.handoff["id"]) == ("default", "id")
    assert {m.status for m in summary.transform.models} == {"success"} and len(summary.transform.models) == 5
    assert {t.status for t in summary.transform.tests} == {"pass"}
    profile = (root / "dbt" / "profiles.yml").read_text()
    assert "method: session" in profile and "type: spark" in profile


def test_the_run_writes_a_report_profiled_by_spark(run):
    """The run's report: raw tables and the mart profiled by Spark SQL, the lineage from dbt-spark."""
    _, summary = run
    assert summary.report is not None, "the run wrote no report"
    missing = summary.report["missing"]
    assert not [m for m in missing if m.startswith("the profile of") or m in ("dbt models", "the lineage graph")], missing
    html = Path(summary.report["path"]).read_text(encoding="utf-8")
    for table in ("raw.train", "raw.test", "raw.sample_submission", "marts.ml_training_set"):
        assert f'data-table="{table}"' in html
    assert 'data-column="annual_income"' in html and 'data-name="ml_training_set"' in html


def test_raw_tables_follow_the_ingest_rules(run):
    root, _ = run
    engine = create_engine(Workspace.open(root))
    table = engine.raw_store().table("train", count=True)
    assert table.rows == 1000 and table.format == "parquet" and table.version == 0
    names = table.schema.names
    assert names[:3] == ["id", "age", "annual_income"] and names[-3:] == ["_load_id", "_source_file", "_ingested_at"]
    assert "home_ownership" in names and "employment_length" in names
    types = {f.name: str(f.type) for f in table.schema}
    assert types["id"] == "int64" and types["annual_income"] == "double" and types["_ingested_at"] == "timestamp[us, tz=UTC]"
    assert table.schema.field("annual_income").metadata[b"autoflux.source_name"] == b"Annual Income ($)"
    assert engine.raw_store().schema("train").equals(table.schema, check_metadata=True)
    assert table.metadata["autoflux.source_file"] == "train.csv" and len(table.metadata["autoflux.fingerprint"]) == 64
    described = {r["col_name"]: r["comment"] for r in engine.spark.sql("describe raw.train").collect()}
    assert described["annual_income"] == "source column 'Annual Income ($)'"
    assert Path(table.uri.removeprefix("file:")).is_relative_to(root / "lake" / "raw" / "train")


def test_the_same_types_as_the_embedded_engine(run, tmp_path, example_dir):
    root, _ = run
    embedded = Workspace.open(autoflux.init(tmp_path / "duck"))
    ingest(embedded.root, example_dir)
    spark = create_engine(Workspace.open(root))
    for name in ("train", "test", "sample_submission"):
        expected = pa.schema(embedded.lake.open("raw", name).schema().to_arrow())
        assert [(f.name, str(f.type)) for f in spark.raw_store().table(name).schema] == [(f.name, str(f.type)) for f in expected]


def test_unchanged_files_are_not_reloaded(run, example_dir):
    root, _ = run
    report = ingest(root, example_dir)
    assert [f.outcome for f in report.files] == ["unchanged"] * 3


def test_tables_count_the_rows_of_views_too(run):
    root, _ = run
    listed = {(t["schema"], t["table"]): t for t in Pipeline(Workspace.open(root)).tables()}
    assert listed[("staging", "stg_full")]["format"] == "view" and listed[("staging", "stg_full")]["rows"] == 1400
    assert listed[("marts", "ml_training_set")]["rows"] == 1400 and listed[("raw", "train")]["rows"] == 1000


def test_the_handoff_gives_spark_dataframes(run):
    from pyspark.sql import DataFrame

    root, _ = run
    data = autoflux.load_training_data(root, format="spark")
    assert isinstance(data.train, DataFrame) and isinstance(data.test, DataFrame)
    assert data.train.count() == 1000 and data.test.count() == 400
    assert "default" in data.train.columns and "default" not in data.test.columns and "split" not in data.train.columns
    assert data.manifest["raw_tables"]["train"]["load_id"]
    pandas = autoflux.load_training_data(root)
    assert len(pandas.train) == 1000 and list(pandas.test.columns) == data.test.columns


def test_ml_format_spark_in_config_gives_spark_dataframes(run, monkeypatch):
    from pyspark.sql import DataFrame

    root, _ = run
    monkeypatch.setenv("AUTOFLUX__ML__FORMAT", "spark")
    data = autoflux.load_training_data(root)
    assert isinstance(data.train, DataFrame) and data.train.count() == 1000


def test_a_failed_write_keeps_the_table_and_does_not_poison_the_next_run(run, tmp_path, configure):
    root, _ = run
    source = tmp_path / "data"
    source.mkdir()
    (source / "scores.csv").write_text("name,score\n" + "".join(f"n{i},{i}\n" for i in range(50)))
    assert ingest(root, source).files[0].outcome == "loaded"
    configure(root, {"ingest": {"types": {"scores": {"score": "int"}}}})
    (source / "scores.csv").write_text("name,score\n" + "".join(f"n{i},{i}\n" for i in range(50)) + "bad,not-a-number\n")
    failed = ingest(root, source).files[0]
    assert failed.outcome == "failed" and "scores.csv" in failed.message
    engine = create_engine(Workspace.open(root))
    assert engine.raw_store().table("scores", count=True).rows == 50
    (source / "scores.csv").write_text("name,score\n" + "".join(f"n{i},{i}\n" for i in range(60)))
    loaded = ingest(root, source).files[0]
    assert loaded.outcome == "loaded" and loaded.rows == 60 and loaded.version == 1
    assert sorted(p.name for p in (root / "lake" / "raw" / "scores").iterdir()) == ["v1"]
    configure(root, {"ingest": {"types": {}}})
    engine.spark.sql("drop table raw.scores")
    (root / "dbt" / "models" / "staging" / "stg_scores.sql").unlink()


def test_a_folder_left_by_a_failed_model_build_is_removed(run):
    root, _ = run
    leftover = root / "warehouse" / "marts.db" / "leftover"
    leftover.mkdir(parents=True)
    (leftover / "part-00000.parquet").write_bytes(b"half a file")
    kept = root / "warehouse" / "marts.db" / "ml_training_set"  # a table's folder (staging models are views)
    Pipeline(Workspace.open(root)).transform(select="ml_training_set")
    assert not leftover.exists() and kept.is_dir()


def test_a_late_value_that_does_not_fit_the_sampled_type_widens_the_column(run, tmp_path):
    root, _ = run
    source = tmp_path / "late"
    source.mkdir()
    body = "".join(f"{i},{i % 97}\n" for i in range(400_000))  # more than the 4 MiB types are first inferred from
    (source / "late.csv").write_text("key,value\n" + body + "400000,2.5\n")
    loaded = ingest(root, source).files[0]
    assert loaded.outcome == "loaded" and loaded.rows == 400_001, loaded.message
    table = create_engine(Workspace.open(root)).raw_store().table("late")
    assert str(table.schema.field("key").type) == "int64" and str(table.schema.field("value").type) == "double"
