"""Hand-off to ML: the training table as train/test frames, and a manifest tracing them to inputs."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from autoflux.content_hash import ContentHash, content_hash
from autoflux.engines.base import Engine
from autoflux.exceptions import ConfigError, MissingDependencyError, ReproduceError
from autoflux.files import write_text
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.ingest.store import RawStore
from autoflux.transform.build import changed_tables, raw_snapshot, read_build
from autoflux.workspace import Workspace

Format = Literal["pandas", "polars", "arrow", "spark"]
ARROW_FORMATS = ("pandas", "polars", "arrow")


class StaleDataWarning(UserWarning):
    """Raw tables changed since the mart was built: the frames hold what the last build read."""


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


def training_data(
    ws: Workspace,
    engine: Engine,
    *,
    format: Format | None = None,
    table: str | None = None,
    manifest: str | Path | None = None,
) -> TrainingData:
    """Read the training mart (``ml.table`` in config) and split it into train and test frames.

    ``format`` is ``"pandas"`` (default from config), ``"polars"`` or ``"arrow"``, or a frame type
    of the engine's own (``"spark"``: lazy Spark DataFrames on the spark engine). The test frame
    has no target column. The manifest, written to ``.autoflux/handoff/<table>.manifest.json`` and
    returned, records what the mart was built from (the build record of the last ``dbt build``:
    raw tables' versions, load ids and fingerprints, models, versions), each frame's rows and
    content hash, and the train/test checks (``ml.checks``). When raw tables changed after that
    build, a :class:`StaleDataWarning` names them and the manifest lists them under ``stale``.

    With ``manifest`` (a manifest's path), the frames are rebuilt as that manifest recorded them,
    in scratch space, and must hash the same (:func:`reproduce`).
    """
    if manifest is not None:
        return reproduce(ws, engine, Path(manifest), format=format)
    ml = ws.config.ml
    name = table or ml.table
    chosen = format or ml.format
    if chosen in engine.FRAME_FORMATS:
        return _native_training_data(ws, engine, name, chosen)
    if chosen not in ARROW_FORMATS:
        raise ConfigError(
            f"format {chosen!r} needs an engine that makes such frames; this workspace's engine is {ws.config.engine.type}",
            hint=f"use one of {', '.join(ARROW_FORMATS)} (ml.format), or an engine whose frames are {chosen}",
        )
    data = engine.read_arrow(ml.schema_, name)
    target, id_column = ml_roles(ws, engine.raw_store())
    _check_columns(ws, name, data.column_names)
    train, test, target, id_column, features = split_frames(ws, data, target, id_column)
    manifest_data, path = _write_manifest(ws, engine, name, lambda: {"train": train, "test": test}, (target, id_column, features))
    return TrainingData(convert(train, chosen), convert(test, chosen), target, id_column, features, manifest_data, path)


def hand_off(ws: Workspace, engine: Engine) -> tuple[dict[str, Any], Path]:
    """The manifest :func:`training_data` writes for the training mart, written without keeping its rows (what
    ``autoflux run`` hands off): the mart is read in batches, streamed where the engine can, and each is split
    and hashed, so memory stays flat in the mart's size. Returns the manifest and its path."""
    ml = ws.config.ml
    reader = engine.read_batches(ml.schema_, ml.table)
    target, id_column = ml_roles(ws, engine.raw_store())
    _check_columns(ws, ml.table, reader.schema.names)
    train_columns, test_columns, target, id_column, features = _split_columns(ws, reader.schema.names, target, id_column)
    digests = {"train": ContentHash(train_columns), "test": ContentHash(test_columns)}

    def frames() -> dict[str, dict[str, Any]]:
        for batch in reader:
            train = pc.equal(batch[ml.split_column], "train")  # a null split is neither, as in split_frames
            digests["train"].add(batch.filter(train).select(train_columns))
            digests["test"].add(batch.filter(pc.invert(train)).select(test_columns))
        return {key: {"rows": digest.rows, "content_hash": digest.hexdigest()} for key, digest in digests.items()}

    return _write_manifest(ws, engine, ml.table, frames, (target, id_column, features))


def _write_manifest(
    ws: Workspace, engine: Engine, name: str, frames: Callable[[], dict[str, Any]], roles: tuple[str | None, str | None, list[str]]
) -> tuple[dict[str, Any], Path]:
    """Write the manifest of mart ``name`` (``roles``: target, id, features), the checks' queries running in the engine
    while ``frames()`` gives the frames (or their entries) to :func:`build_manifest`; refuse on failed checks."""
    target, id_column, features = roles
    relation = f"{ws.config.ml.schema_}.{name}"
    with ThreadPoolExecutor(1) as pool:
        checks = pool.submit(_checks, ws, engine, name, target, id_column, features)
        manifest = build_manifest(ws, engine, relation, frames())
        manifest |= {"target": target, "id": id_column, "features": features, "checks": checks.result()}
    path = write_manifest(manifest, ws.state_dir / "handoff" / f"{name}.manifest.json")
    _refuse_on_failed_checks(ws, manifest["checks"], path)
    return manifest, path


def reproduce(
    workspace: Workspace, engine: Engine, manifest_path: Path, *, format: str | None = None, out: Path | None = None
) -> TrainingData:
    """The frames ``manifest_path`` describes, rebuilt in scratch space beside the workspace's ``engine``
    (:mod:`autoflux.reproduce`) and proved by their content hash; with ``out``, also written there (train/test Parquet + manifest)."""
    from autoflux.reproduce import read_manifest, rebuild_mart, write_frames

    manifest = read_manifest(manifest_path)
    chosen = format or workspace.config.ml.format
    if chosen not in ARROW_FORMATS:
        raise ReproduceError(f"reproduced frames are pandas, polars or arrow, not {chosen}", hint="pass format='arrow' (or pandas, polars)")
    data, differ = rebuild_mart(workspace, engine, manifest, manifest_path)
    train, test, *_ = split_frames(workspace, data, manifest.get("target"), manifest.get("id"))
    frames = {"train": train, "test": test}
    mismatched = [k for k, f in frames.items() if content_hash(f) != manifest["frames"][k]["content_hash"]]
    if mismatched:
        why = f"; the compiled SQL of {', '.join(differ)} differs (macros or config changed)" if differ else ""
        raise ReproduceError(
            f"the rebuilt {' and '.join(mismatched)} frames do not hash as the manifest recorded{why}",
            path=manifest_path,
            hint="the project or the engine changed since that build; check `git log` of the dbt project",
        )
    if out is not None:
        write_frames(out, frames, manifest)
    return TrainingData(
        convert(train, chosen),
        convert(test, chosen),
        manifest.get("target"),
        manifest.get("id"),
        manifest.get("features", []),
        manifest,
        manifest_path,
    )


def split_frames(
    ws: Workspace, data: pa.Table, target: str | None, id_column: str | None
) -> tuple[pa.Table, pa.Table, str | None, str | None, list[str]]:
    """Train and test rows of the mart (split column dropped, no target in test), the roles present, the features."""
    train_columns, test_columns, target, id_column, features = _split_columns(ws, data.column_names, target, id_column)
    train, test = _partition(data, pc.equal(data[ws.config.ml.split_column], "train"))
    return train.select(train_columns), test.select(test_columns), target, id_column, features


def _split_columns(
    ws: Workspace, columns: list[str], target: str | None, id_column: str | None
) -> tuple[list[str], list[str], str | None, str | None, list[str]]:
    """The columns of the train and test frames of a mart of ``columns``, the roles present, the features."""
    target = target if target in columns else None  # inferred from raw tables the mart may not keep
    id_column = id_column if id_column in columns else None
    train = [c for c in columns if c != ws.config.ml.split_column]
    features = [c for c in train if c not in (target, id_column)]
    return train, [c for c in train if c != target], target, id_column, features


def _partition(data: pa.Table, mask: pa.ChunkedArray) -> tuple[pa.Table, pa.Table]:
    """The rows where ``mask`` is true and those where it is false, in order (a null is neither).

    When the true rows come first (a mart built as train ``union all`` test), both are slices of
    ``data``: no copy.
    """
    selected = pc.sum(mask).as_py() or 0
    if mask.null_count == 0 and pc.all(mask.slice(0, selected)).as_py():
        return data.slice(0, selected), data.slice(selected)
    return data.filter(mask), data.filter(pc.invert(mask))


def _checks(
    ws: Workspace, engine: Engine, name: str, target: str | None, id_column: str | None, features: list[str]
) -> dict[str, Any] | None:
    settings = ws.config.ml.checks
    if not settings.enabled:
        return None
    from autoflux.checks import run_checks

    return run_checks(ws, engine, table=name, target=target, id_column=id_column, features=features).as_dict()


def _refuse_on_failed_checks(ws: Workspace, checks: dict[str, Any] | None, path: Path) -> None:
    fail_on = set(ws.config.ml.checks.fail_on)
    failing = [f for f in (checks or {}).get("flags", []) if f["kind"] in fail_on]
    if failing:
        from autoflux.exceptions import ChecksFailedError

        raise ChecksFailedError(failing, path=path)


def _native_training_data(ws: Workspace, engine: Engine, name: str, chosen: str) -> TrainingData:
    """Train/test as the engine's own lazy frames (Spark-like: ``columns``, ``drop``, ``count``)."""
    ml = ws.config.ml
    train, test = engine.training_frames(ml.schema_, name, split_column=ml.split_column, format=chosen)
    columns = [*train.columns, ml.split_column]
    _check_columns(ws, name, columns)
    _, _, target, id_column, features = _split_columns(ws, columns, *ml_roles(ws, engine.raw_store()))
    if target in test.columns:
        test = test.drop(target)
    manifest, path = _write_manifest(ws, engine, name, lambda: {"train": train, "test": test}, (target, id_column, features))
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


def ml_roles(workspace: Workspace, store: RawStore) -> tuple[str | None, str | None]:
    """The target and id columns: from config, else inferred from the raw train/test tables of ``store``.

    Target: the one column train has and test lacks, else sample_submission's second column.
    Id: sample_submission's first column, else train's first column when it looks like an id.
    """
    ml = workspace.config.ml
    present = set(store.tables())
    columns = {
        name: [c for c in store.schema(name).names if c not in LINEAGE_COLUMNS]
        for name in (ml.train_table, ml.test_table, "sample_submission")
        if name in present
    }
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


def build_manifest(workspace: Workspace, engine: Engine, relation: str, frames: dict[str, Any]) -> dict[str, Any]:
    """What ``relation`` was built from, and each of its ``frames`` (rows, content hash).

    The build record of the last dbt build says what a model was built from; a raw table
    (``raw.<name>``) is its own current version. ``stale`` lists raw tables that changed since the
    build (a :class:`StaleDataWarning` names them); it is None when no build record exists.
    Frames are Arrow tables, or the engine's own frames (rows counted, no content hash).
    """
    now = raw_snapshot(engine)
    schema, _, name = relation.rpartition(".")
    record: dict[str, Any] | None
    if schema == "raw":
        record, raw, stale = None, {name: now[name]} if name in now else {}, []
    else:
        record = read_build(workspace)
        raw = record["raw_tables"] if record else {}
        stale = changed_tables(raw, now) if record else None
        if record is None:
            warnings.warn(
                f"no build record for {relation}: it was not built by `autoflux transform`, so the manifest "
                "cannot say what it was built from — run `autoflux transform`",
                StaleDataWarning,
                stacklevel=3,
            )
        elif stale:
            warnings.warn(
                f"raw tables changed since {relation} was built: {', '.join(stale)}; the frames hold what the last "
                "build read (the manifest records that) — run `autoflux transform` to rebuild",
                StaleDataWarning,
                stacklevel=3,
            )
    described = {key: _frame_entry(frame) for key, frame in frames.items()}
    return {
        "relation": relation,
        "engine": workspace.config.engine.type,
        "created_at": datetime.now(UTC).isoformat(),
        "rows": {key: entry["rows"] for key, entry in described.items()},
        "frames": described,
        "stale": stale,
        "raw_tables": raw,
        "dbt_models": record["dbt_models"] if record else {},
        "build": {k: v for k, v in record.items() if k not in ("raw_tables", "dbt_models")} if record else None,
    }


def _frame_entry(frame: Any) -> dict[str, Any]:
    if isinstance(frame, dict):  # described already (rows, content hash): a frame hashed as it was read
        return frame
    if isinstance(frame, pa.Table):
        return {"rows": frame.num_rows, "content_hash": content_hash(frame)}
    return {"rows": frame.count(), "content_hash": None}


def write_manifest(manifest: dict[str, Any], path: Path) -> Path:
    return write_text(path, json.dumps(manifest, indent=2, default=str))


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
