"""Hand-off to ML: the training table as train/test frames, and a manifest tracing them to inputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from autoflux.engines import create_engine
from autoflux.engines.base import Engine
from autoflux.exceptions import ConfigError, MissingDependencyError
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.workspace import Workspace

Format = Literal["pandas", "polars", "arrow", "spark"]
ARROW_FORMATS = ("pandas", "polars", "arrow")


@dataclass(frozen=True)
class TrainingData:
    """Train and test frames, with the columns that matter to a model and where they came from."""

    train: Any
    test: Any
    target: str | None
    id: str | None
    features: list[str]
    manifest: dict[str, Any]
    manifest_path: Path


def load_training_data(
    workspace: str | Path | Workspace = ".", *, format: Format | None = None, table: str | None = None
) -> TrainingData:
    """Read the training mart (``ml.table`` in config) and split it into train and test frames.

    ``format`` is ``"pandas"`` (default from config), ``"polars"`` or ``"arrow"``, or a frame type
    of the engine's own (``"spark"``: lazy Spark DataFrames on the spark engine). The test frame
    has no target column. A manifest recording the raw tables' Delta versions and load ids and the
    dbt models is written to ``.autoflux/handoff/<table>.manifest.json`` and returned.
    """
    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace, require_config=True)
    ml = ws.config.ml
    name = table or ml.table
    chosen = format or ml.format
    engine = create_engine(ws)
    try:
        if chosen in engine.FRAME_FORMATS:
            return _native_training_data(ws, engine, name, chosen)
        if chosen not in ARROW_FORMATS:
            raise ConfigError(
                f"format {chosen!r} needs an engine that makes such frames; this workspace's engine is {ws.config.engine.type}",
                hint=f"use one of {', '.join(ARROW_FORMATS)} (ml.format), or an engine whose frames are {chosen}",
            )
        data = engine.read_arrow(ml.schema_, name)
        target, id_column = ml_roles(ws, engine)
        raw = _raw_tables(ws, engine)
    finally:
        engine.close()
    _check_columns(ws, name, data.column_names)
    target = target if target in data.column_names else None  # inferred from raw tables the mart may not keep
    id_column = id_column if id_column in data.column_names else None
    is_train = pc.equal(data[ml.split_column], "train")
    train = data.filter(is_train).drop_columns([ml.split_column])
    test = data.filter(pc.invert(is_train)).drop_columns([ml.split_column])
    if target in test.column_names:
        test = test.drop_columns([target])
    features = [c for c in train.column_names if c not in (target, id_column)]
    manifest = build_manifest(ws, f"{ml.schema_}.{name}", rows={"train": train.num_rows, "test": test.num_rows}, raw=raw)
    manifest |= {"target": target, "id": id_column, "features": features}
    path = write_manifest(manifest, ws.state_dir / "handoff" / f"{name}.manifest.json")
    return TrainingData(convert(train, chosen), convert(test, chosen), target, id_column, features, manifest, path)


def _native_training_data(ws: Workspace, engine: Engine, name: str, chosen: str) -> TrainingData:
    """Train/test as the engine's own lazy frames (Spark-like: ``columns``, ``drop``, ``count``)."""
    ml = ws.config.ml
    train, test = engine.training_frames(ml.schema_, name, split_column=ml.split_column, format=chosen)
    columns = [*train.columns, ml.split_column]
    _check_columns(ws, name, columns)
    target, id_column = ml_roles(ws, engine)
    target = target if target in columns else None
    id_column = id_column if id_column in columns else None
    if target in test.columns:
        test = test.drop(target)
    features = [c for c in train.columns if c not in (target, id_column)]
    rows = {"train": train.count(), "test": test.count()}
    manifest = build_manifest(ws, f"{ml.schema_}.{name}", rows=rows, raw=_raw_tables(ws, engine))
    manifest |= {"target": target, "id": id_column, "features": features}
    path = write_manifest(manifest, ws.state_dir / "handoff" / f"{name}.manifest.json")
    return TrainingData(train, test, target, id_column, features, manifest, path)


def _check_columns(ws: Workspace, name: str, columns: list[str]) -> None:
    ml = ws.config.ml
    if ml.split_column not in columns:
        raise ConfigError(
            f"table {ml.schema_}.{name} has no split column {ml.split_column!r}",
            hint="set ml.split_column in autoflux.yml, or add the column to the mart",
        )
    for key, configured in (("target", ml.target), ("id", ml.id)):
        if configured is not None and configured not in columns:
            raise ConfigError(
                f"ml.{key} {configured!r} is not a column of {ml.schema_}.{name}",
                hint=f"set ml.{key} in autoflux.yml to one of: {', '.join(columns)}",
            )


def ml_roles(workspace: Workspace, engine: Engine | None = None) -> tuple[str | None, str | None]:
    """The target and id columns: from config, else inferred from the raw train/test tables.

    Target: the one column train has and test lacks, else sample_submission's second column.
    Id: sample_submission's first column, else train's first column when it looks like an id.
    """
    ml = workspace.config.ml
    own = engine is None
    engine = engine or create_engine(workspace)
    try:
        present = set(engine.raw_tables())
        columns = {
            name: [c for c in engine.raw_table(name).schema.names if c not in LINEAGE_COLUMNS]
            for name in (ml.train_table, ml.test_table, "sample_submission")
            if name in present
        }
    finally:
        if own:
            engine.close()
    train, test, submission = (columns.get(n, []) for n in (ml.train_table, ml.test_table, "sample_submission"))
    target = ml.target
    if target is None:
        only_train = [c for c in train if test and c not in test]
        if len(only_train) == 1:
            target = only_train[0]
        elif len(submission) == 2 and submission[1] in train:
            target = submission[1]
    id_column = ml.id
    if id_column is None:
        if submission and submission[0] in train:
            id_column = submission[0]
        elif train and (train[0] == "id" or train[0].endswith("_id")):
            id_column = train[0]
    return target, id_column


def build_manifest(
    workspace: Workspace, relation: str, *, rows: dict[str, int], raw: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Which raw tables (version, load id) and dbt models the relation was built from.

    ``raw`` is what :func:`_raw_tables` says (read with the workspace's engine when None).
    """
    if raw is None:
        engine = create_engine(workspace)
        try:
            raw = _raw_tables(workspace, engine)
        finally:
            engine.close()
    return {
        "relation": relation,
        "engine": workspace.config.engine.type,
        "created_at": datetime.now(UTC).isoformat(),
        "rows": rows,
        "raw_tables": raw,
        "dbt_models": _dbt_models(workspace),
    }


def _raw_tables(workspace: Workspace, engine: Engine) -> dict[str, Any]:
    raw = {}
    for name in engine.raw_tables():
        table = engine.raw_table(name)
        raw[name] = {
            "uri": table.uri,
            "version": table.version,
            "load_id": table.metadata.get("autoflux.load_id"),
            "fingerprint": table.metadata.get("autoflux.fingerprint"),
            "source_file": table.metadata.get("autoflux.source_file"),
        }
    return raw


def write_manifest(manifest: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    temporary.replace(path)
    return path


def _dbt_models(workspace: Workspace) -> dict[str, Any]:
    path = workspace.dbt_dir / "target" / "manifest.json"
    if not path.exists():
        return {}
    nodes = json.loads(path.read_text(encoding="utf-8")).get("nodes", {})
    return {
        node["name"]: {"path": node["original_file_path"], "checksum": node["checksum"]["checksum"]}
        for node in nodes.values()
        if node.get("resource_type") == "model"
    }


def convert(table: pa.Table, format: str) -> Any:
    """``table`` as a pandas or polars DataFrame, or unchanged for ``"arrow"``."""
    if format == "arrow":
        return table
    if format == "polars":
        try:
            import polars as pl
        except ImportError:
            raise MissingDependencyError("polars output", extra="polars", package="polars") from None
        return pl.from_arrow(table)
    if format == "pandas":
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise MissingDependencyError("pandas output", extra="pandas", package="pandas") from None
        return table.to_pandas()
    raise ConfigError(f"unknown format {format!r}", hint="use pandas, polars or arrow")
