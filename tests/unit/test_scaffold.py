"""The generated dbt files: paths from the outside world stay data inside their Jinja."""

from __future__ import annotations

import jinja2
import yaml
from ingesting import run_ingest

from autoflux.engines import create_engine
from autoflux.ingest import ingest_paths
from autoflux.transform.scaffold import sync_project
from autoflux.workspace import Workspace


def render(text: str) -> str:
    """``text`` rendered as dbt renders its YAML values, with no environment variable set."""
    return jinja2.Template(text).render(env_var=lambda name, default="": default)


def test_lake_and_database_paths_with_quotes_and_backslashes_survive_the_jinja(workspace, configure, tmp_path):
    lake = tmp_path / "Kim's lake"  # delta-rs takes no backslash in a path
    database = tmp_path / "O'Brien \\ db" / "warehouse.duckdb"
    configure(workspace, {"lake": str(lake), "engine": {"path": str(database)}})
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("a\n1\n")
    ws = Workspace.open(workspace)
    assert not run_ingest(ws, [data]).failed
    sync_project(ws, create_engine(ws))

    sources = yaml.safe_load((ws.dbt_dir / "models" / "sources.yml").read_text())
    table = sources["sources"][0]["tables"][0]
    assert (ws.dbt_dir / render(table["meta"]["delta_table_path"])).resolve() == lake / "raw" / "train"
    profiles = yaml.safe_load((ws.dbt_dir / "profiles.yml").read_text())
    output = next(iter(next(iter(profiles.values()))["outputs"].values()))
    assert (ws.dbt_dir / render(output["path"])).resolve() == database


def test_duckdb_raw_tables_are_views_over_the_current_parquet_files(workspace, configure, tmp_path):
    """A local lake: sources name the view raw.<table> (no plugin); it reads the Delta table's current
    version in order, a column added later is null in older rows, a widened column reads with the new type."""
    import duckdb

    configure(workspace, {"ingest": {"mode": "append"}})
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    (first / "train.csv").write_text("id,a\n1,5\n2,6\n")
    (second / "train.csv").write_text("id,a,b\n3,7.5,x\n")
    ws = Workspace.open(workspace)
    engine = create_engine(ws)
    for folder in (first, second):
        assert not ingest_paths(ws, [folder], store=engine.raw_store()).failed
        engine.publish_raw(engine.raw_store().tables())
    sync_project(ws, engine)
    engine.close()

    sources = yaml.safe_load((ws.dbt_dir / "models" / "sources.yml").read_text())
    assert "plugin" not in sources["sources"][0]["tables"][0]["meta"]
    with duckdb.connect(engine.database, read_only=True) as connection:
        rows = connection.execute('select id, a, b from raw."train"').fetchall()
        types = dict(
            connection.execute("select column_name, data_type from information_schema.columns where table_name = 'train'").fetchall()
        )
    assert rows == [(1, 5.0, None), (2, 6.0, None), (3, 7.5, "x")]
    assert types["a"] == "DOUBLE" and types["_ingested_at"] == "TIMESTAMP WITH TIME ZONE"


def test_duckdb_raw_view_keeps_the_row_order_across_the_files_of_a_version(workspace, configure, tmp_path, monkeypatch):
    import duckdb

    from autoflux.ingest import writer

    monkeypatch.setattr(writer, "FILE_BYTES", 1)  # every row group its own file,
    monkeypatch.setattr(writer, "ROW_GROUP_BYTES", 1)  # every batch its own row group
    configure(workspace, {"ingest": {"csv": {"block_size": 65536}}})
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x\n" + "".join(f"{i},{(i * 7919) % 1000}\n" for i in range(60_000)))
    ws = Workspace.open(workspace)
    engine = create_engine(ws)
    assert not ingest_paths(ws, [data], store=engine.raw_store()).failed
    engine.publish_raw(engine.raw_store().tables())
    engine.close()
    assert len(ws.lake.open("raw", "train").file_uris()) > 3
    with duckdb.connect(engine.database, read_only=True) as connection:
        ids = [row[0] for row in connection.execute('select id from raw."train"').fetchall()]
    assert ids == list(range(60_000))


def test_a_run_reads_the_raw_tables_into_the_dbt_project_once_and_transform_alone_reads_them_too(workspace, tmp_path, monkeypatch):
    import autoflux
    import autoflux.pipeline

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x,target\n1,10,0\n2,20,1\n")
    (data / "test.csv").write_text("id,x\n3,30\n")
    synced: list[str] = []

    def counted(ws, engine):
        synced.append(ws.root.name)
        return sync_project(ws, engine)

    monkeypatch.setattr(autoflux.pipeline, "sync_project", counted)
    summary = autoflux.run(workspace, [str(data)], report=False)
    assert summary.handoff["train_rows"] == 2 and len(synced) == 1  # by ingest; transform, right after, reads no table again
    (data / "test.csv").write_text("id,x\n3,30\n4,40\n")
    with autoflux.Pipeline.open(workspace) as pipeline:
        pipeline.ingest([str(data)])
        assert len(synced) == 2
        assert pipeline.transform().models and len(synced) == 3  # a transform of its own brings the project in step first
    assert autoflux.load_training_data(workspace).test.shape[0] == 2
