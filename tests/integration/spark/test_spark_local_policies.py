"""Loads on classic local Spark with ``format: parquet`` that only its tables have: recovery of a load
killed before its log entry or between its commit and the catalog, and a folder of parts in one
version folder.

The write modes, schema policies and bad rows every engine shares are in
``tests/integration/test_ingest_policies.py``. Classic Spark runs in the workspace
test_spark_local.py ran the example in (one SparkSession for both modules); each test has tables
of its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ingesting import run_ingest
from loads import Loads

from autoflux.engines import create_engine
from autoflux.ingest.quarantine import read_quarantine
from autoflux.workspace import Workspace


@pytest.fixture(scope="module")
def local(local_workspace) -> Path:
    return local_workspace


@pytest.fixture
def loads(tmp_path, configure):
    def make(root: Path, table: str) -> Loads:
        return Loads(root, table, tmp_path / table, configure)

    return make


def test_a_load_killed_before_logging_is_recovered(local, loads, monkeypatch, configure):
    """Parquet tables hold their last load in table properties: the next run publishes its bad rows and logs it."""
    import autoflux.ingest as ingest_module

    t = loads(local, "recovered")
    configure(local, {"ingest": {"bad_rows": {"max_count": 1}}})
    try:
        monkeypatch.setattr(ingest_module, "_publish_quarantine", lambda workspace, engine: None)

        def killed(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(ingest_module, "append_log", killed)
        with pytest.raises(KeyboardInterrupt):
            t.load("id,v\n1,a\n2\n3,c\n")
        monkeypatch.undo()
        (t.folder / "other.csv").write_text("id\n1\n")
        report = run_ingest(Workspace.open(local), [t.folder])
    finally:
        configure(local, {"ingest": {"bad_rows": {"max_count": 0}}})
    (entry,) = [e for e in report.recovered if e.table == "recovered"]
    assert (entry.rows, entry.quarantined, entry.version, entry.source_file) == (2, 1, 0, "recovered.csv")
    lake = Workspace.open(local).lake
    assert [r["raw"] for r in read_quarantine(lake).to_pylist() if r["table"] == "recovered"] == ["2"]
    assert {f.table: f.outcome for f in report.files} == {"recovered": "unchanged", "other": "loaded"}


def test_a_load_killed_between_its_commit_and_the_catalog_is_registered_by_the_next_run(local, loads, monkeypatch):
    """The version folder's marker commits a parquet load; a run killed after dropping the old
    catalog entry and before creating the new one leaves the table for the next run to register."""
    from autoflux.engines.spark.store import SparkRawStore

    t = loads(local, "swapped")
    assert t.load("id,v\n1,a\n").outcome == "loaded"

    def killed(self, table, folder, properties):
        self.spark.sql(f"drop table if exists raw.{table}")
        raise KeyboardInterrupt

    monkeypatch.setattr(SparkRawStore, "_register", killed)
    monkeypatch.setattr(SparkRawStore, "remove", lambda self, uri: None)  # a killed process cleans nothing up
    with pytest.raises(KeyboardInterrupt):
        t.load("id,v\n1,a\n2,b\n")
    monkeypatch.undo()
    assert "swapped" not in t.engine.raw_store().tables()
    report = run_ingest(Workspace.open(local), [t.folder])
    assert [(f.outcome, f.version) for f in report.files] == [("unchanged", 1)]
    assert [(e.table, e.version, e.rows) for e in report.recovered] == [("swapped", 1, 2)]
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "b")]
    folders = sorted(p.name for p in (Path(Workspace.open(local).lake.uri) / "raw" / "swapped").iterdir())
    assert folders == ["v1"]


def test_a_folder_of_parts_on_spark_parquet_is_one_table_in_one_version_folder(local, tmp_path):
    events = tmp_path / "grouped" / "events"
    events.mkdir(parents=True)
    for i in (1, 2):
        (events / f"part-{i:05d}.csv").write_text(f"id\n{i}\n", encoding="utf-8")
    report = run_ingest(Workspace.open(local), [tmp_path / "grouped"])
    assert [f.outcome for f in report.files] == ["loaded", "loaded"], [f.message for f in report.files]
    engine = create_engine(Workspace.open(local))
    table = engine.raw_store().table("events", count=True)
    assert (table.rows, table.format, table.uri.rsplit("/", 1)[-1]) == (2, "parquet", f"v{report.files[0].version}")
    assert sorted(engine.raw_store().files("events")["files"]) == ["events/part-00001.csv", "events/part-00002.csv"]
