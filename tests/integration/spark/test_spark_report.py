"""The report on local Spark: raw tables and the mart profiled by Spark SQL, the lineage from dbt-spark."""

from __future__ import annotations

from spark_helpers import local_engine, make_workspace

from autoflux.pipeline import Pipeline
from autoflux.report import write_report
from autoflux.workspace import Workspace


def test_report_on_spark(java, tmp_path, example_dir):
    root = make_workspace(tmp_path / "ws", local_engine())
    pipeline = Pipeline(Workspace.open(root, require_config=True))
    try:
        summary = pipeline.run([str(example_dir)])
        assert summary.report is not None, "the run wrote no report"
        result = write_report(pipeline.workspace, pipeline.engine)
    finally:
        pipeline.close()
    html = result.path.read_text(encoding="utf-8")
    assert not [m for m in result.missing if m.startswith("the profile of") or m in ("dbt models", "the lineage graph")], result.missing
    for table in ("raw.train", "raw.test", "raw.sample_submission", "marts.ml_training_set"):
        assert f'data-table="{table}"' in html
    assert 'data-column="annual_income"' in html and 'data-name="ml_training_set"' in html
