"""Create a workspace, and keep its dbt project in step with the raw tables.

Two kinds of generated files:

- *managed* (``profiles.yml``, ``models/sources.yml``): rewritten from config and the lake on
  every ingest and transform, while their first line is :data:`MANAGED`. Delete that line to take
  a file over; AutoFlux then leaves it alone.
- *seeded* (``stg_<table>.sql``, ``stg_full.sql``, the mart): written once when missing, then
  yours to edit. Delete one to have it generated again.
"""

from __future__ import annotations

import os
import shutil
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from autoflux.config import CONFIG_FILE, load_config
from autoflux.engine_settings import DuckDBSettings
from autoflux.engines.base import dbt_env_var
from autoflux.exceptions import WorkspaceError
from autoflux.files import write_text
from autoflux.lake import RAW, Lake

if TYPE_CHECKING:
    import pyarrow as pa

    from autoflux.engines.base import Engine
    from autoflux.workspace import Workspace

MANAGED = "# Managed by AutoFlux: rewritten on every ingest/transform. Delete this line to take the file over."
PROFILE = "autoflux"
LAKE_ENV = "AUTOFLUX_LAKE"


def init_workspace(path: Path) -> Path:
    """Create a workspace at ``path``: ``autoflux.yml`` and the dbt project (its profile: :func:`write_profiles`). Returns its root."""
    root = path.expanduser().resolve()
    if (root / CONFIG_FILE).exists():
        raise WorkspaceError(f"{root} is already a workspace ({CONFIG_FILE} exists)", hint="use it, or pick another folder")
    config = load_config(None)  # a folder the lake or the DuckDB file cannot be in says so before anything is written
    Lake.at(config.lake, base=root)
    if isinstance(config.engine, DuckDBSettings):
        config.engine.database(root)
    templates = resources.files("autoflux") / "templates"
    root.mkdir(parents=True, exist_ok=True)
    (root / CONFIG_FILE).write_text((templates / CONFIG_FILE).read_text(encoding="utf-8"), encoding="utf-8")
    with resources.as_file(templates / "dbt") as source:
        shutil.copytree(source, root / "dbt", dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("models/staging", "models/marts", "tests", "macros"):
        (root / "dbt" / folder).mkdir(parents=True, exist_ok=True)
    _write_managed(root / "dbt" / "models" / "sources.yml", _dump({"version": 2, "sources": [{"name": RAW, "schema": RAW, "tables": []}]}))
    (root / ".gitignore").write_text(".autoflux/\nlake/\nwarehouse.duckdb*\ndbt/target/\ndbt/logs/\n", encoding="utf-8")
    return root


def write_profiles(workspace: Workspace, engine: Engine) -> Path | None:
    """Write the dbt project's ``profiles.yml`` for ``engine`` (unless taken over); returns it when written."""
    return _write_managed(workspace.dbt_dir / "profiles.yml", profiles_yml(workspace, engine))


def sync_project(workspace: Workspace, engine: Engine) -> list[Path]:
    """Bring the dbt project in step with config and the raw tables; returns the files written."""
    project = workspace.dbt_dir
    if not (project / "dbt_project.yml").exists():
        raise WorkspaceError(f"no dbt project in {project}", hint="check dbt.project_dir in autoflux.yml, or run `autoflux init`")
    store = engine.raw_store()
    schemas = {name: store.schema(name) for name in store.tables()}
    plugins = {name: engine.source_plugin(name) for name in schemas}
    written = [
        write_profiles(workspace, engine),
        _write_managed(project / "models" / "sources.yml", _sources(workspace, schemas, plugins)),
    ]
    for name, schema in schemas.items():
        written.append(_write_seeded(project / "models" / "staging" / f"stg_{name}.sql", _staging_model(name, schema)))
    ml = workspace.config.ml
    if ml.train_table in schemas:
        merged = _merge_model(ml.train_table, ml.test_table if ml.test_table in schemas else None, ml.split_column)
        written.append(_write_seeded(project / "models" / "staging" / "stg_full.sql", merged))
        written.append(_write_seeded(project / "models" / "marts" / f"{ml.table}.sql", _mart_model()))
        written.append(_write_seeded(project / "models" / "marts" / f"{ml.table}.yml", _mart_tests(ml.table, ml.split_column)))
    return [p for p in written if p is not None]


def _write_managed(path: Path, body: str) -> Path | None:
    if path.exists() and not path.read_text(encoding="utf-8").startswith(MANAGED):
        return None
    text = f"{MANAGED}\n{body}"
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return None
    return write_text(path, text)


def _write_seeded(path: Path, body: str) -> Path | None:
    if path.exists():
        return None
    return write_text(path, body)


def _dump(data: object) -> str:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: the same text, faster for wide tables
    return yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=1000)


def profiles_yml(workspace: Workspace, engine: Engine) -> str:
    """The generated profiles.yml: one output, ``engine``'s."""
    kind = workspace.config.engine.type
    return _dump({PROFILE: {"target": kind, "outputs": {kind: engine.dbt_output()}}})


def lake_location(workspace: Workspace) -> str:
    """The lake as dbt finds it (``AUTOFLUX_LAKE``): relative to the dbt project, where dbt runs, when it is on
    this machine (so the project parses the same in every workspace), else its URI."""
    lake = workspace.lake
    return os.path.relpath(lake.uri, workspace.dbt_dir) if lake.is_local else lake.uri


def _sources(workspace: Workspace, schemas: dict[str, pa.Schema], plugins: dict[str, str | None]) -> str:
    from autoflux.ingest.schema import SOURCE_NAME_KEY  # the ingest package, only when there are tables (init stays light)

    lake = workspace.lake
    lake_expr = dbt_env_var(LAKE_ENV, lake_location(workspace))
    tables = []
    for name, schema in schemas.items():
        columns = []
        for field in schema:
            source_name = (field.metadata or {}).get(SOURCE_NAME_KEY.encode(), b"").decode()
            description = f"source column {source_name!r}" if source_name else "added by AutoFlux"
            columns.append({"name": field.name, "description": description, "data_type": _sql_type(field.type)})
        tables.append(
            {
                "name": name,
                "description": f"Raw table {RAW}.{name} (Delta Lake).",
                "meta": {**({"plugin": plugins[name]} if plugins.get(name) else {}), "delta_table_path": f"{lake_expr}/{RAW}/{name}"}
                | ({"storage_options": dict(lake.storage_options)} if lake.storage_options else {}),
                "columns": columns,
            }
        )
    return _dump({"version": 2, "sources": [{"name": RAW, "schema": RAW, "tables": tables}]})


def _sql_type(arrow_type: pa.DataType) -> str:
    import pyarrow as pa

    if pa.types.is_integer(arrow_type):
        return "bigint" if arrow_type.bit_width == 64 else "int"
    if pa.types.is_floating(arrow_type):
        return "double"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"decimal({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_string(arrow_type):
        return "string"
    return str(arrow_type)


def _staging_model(table: str, schema: pa.Schema) -> str:
    from autoflux.ingest.schema import LINEAGE_COLUMNS

    features = [f.name for f in schema if f.name not in LINEAGE_COLUMNS]
    lines = ",\n".join(f"    {_quoted(name)}" for name in [*features, *LINEAGE_COLUMNS])
    return (
        f"-- Staging model of raw.{table}, seeded by AutoFlux from the ingested columns. It is yours:\n"
        "-- cast, rename, filter or derive here. AutoFlux never overwrites it (delete it to reseed).\n"
        "-- Column names are quoted by the engine's rules (q = adapter.quote): any name is safe.\n"
        "{%- set q = adapter.quote %}\n"
        f"select\n{lines}\nfrom {{{{ source('{RAW}', '{table}') }}}}\n"
    )


def _merge_model(train: str, test: str | None, split_column: str) -> str:
    header = (
        "-- Train and test rows in one relation, seeded by AutoFlux; it is yours to edit.\n"
        "-- A view: it reads the staging models, and the mart built on it is the table training reads.\n"
        "{{ config(materialized='view') }}\n"
    )
    if test is None:
        return f"{header}select *, 'train' as {{{{ adapter.quote('{split_column}') }}}} from {{{{ ref('stg_{train}') }}}}\n"
    return (
        f"{header}-- Columns are aligned by name; the target is null on test rows; {split_column} says which.\n"
        f"{{{{ autoflux_merge_splits(ref('stg_{train}'), ref('stg_{test}'), split_column='{split_column}') }}}}\n"
    )


def _mart_model() -> str:
    return (
        "-- What training reads (ml.table in autoflux.yml), seeded by AutoFlux; it is yours to edit.\n"
        "-- Lineage columns (_load_id, …) stay in staging; the hand-off manifest records them.\n"
        "select\n    {{ autoflux_feature_columns(ref('stg_full')) }}\nfrom {{ ref('stg_full') }}\n"
    )


def _mart_tests(table: str, split_column: str) -> str:
    tests = [
        "not_null",
        {"accepted_values": {"arguments": {"values": ["train", "test"]}}},
    ]
    return _dump({"version": 2, "models": [{"name": table, "columns": [{"name": split_column, "data_tests": tests}]}]})


def _quoted(name: str) -> str:
    """A column of a generated model, quoted by the engine's rules whatever it is named (keywords included)."""
    return f"{{{{ q('{name}') }}}}"
