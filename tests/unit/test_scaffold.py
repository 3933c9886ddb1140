"""The generated dbt files: paths from the outside world stay data inside their Jinja."""

from __future__ import annotations

import jinja2
import yaml

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
    assert not ingest_paths(ws, [data]).failed
    sync_project(ws, create_engine(ws))

    sources = yaml.safe_load((ws.dbt_dir / "models" / "sources.yml").read_text())
    table = sources["sources"][0]["tables"][0]
    assert (ws.dbt_dir / render(table["meta"]["delta_table_path"])).resolve() == lake / "raw" / "train"
    profiles = yaml.safe_load((ws.dbt_dir / "profiles.yml").read_text())
    output = next(iter(next(iter(profiles.values()))["outputs"].values()))
    assert (ws.dbt_dir / render(output["path"])).resolve() == database
