"""Rebuild the mart a hand-off manifest describes, in scratch space (the hand-off proves it by the frames' hashes).

The raw tables are read at the versions the manifest recorded (:meth:`RawStore.copy_to`: Delta
time travel, or Spark's Parquet version folder while it is the current one) into a scratch lake,
the engine gets scratch storage (:meth:`Engine.scratch_settings`: a DuckDB file, a PostgreSQL
database, a Spark catalog and warehouse of its own), and the recorded models are rebuilt there
with ``dbt run`` (a profiles.yml of the scratch engine's). The workspace's own tables, lake and
dbt target are never touched. What makes it impossible is an error naming it: a raw version
vacuumed or not kept, models whose SQL changed, frames whose hash differs.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa

from autoflux.engines import create_engine
from autoflux.engines.base import Engine
from autoflux.exceptions import ReproduceError
from autoflux.ingest.store import RawStore
from autoflux.lake import RAW, Lake
from autoflux.workspace import Workspace


def rebuild_mart(workspace: Workspace, engine: Engine, manifest: dict[str, Any], manifest_path: Path) -> tuple[pa.Table, list[str]]:
    """The mart ``manifest`` (read by :func:`read_manifest`) records, rebuilt in scratch space of the workspace's ``engine``
    (its raw tables copied, a second engine of :meth:`Engine.scratch_settings` to rebuild in), and
    the recorded models whose compiled SQL now differs (the likely cause when its hash does not match)."""
    from autoflux.transform.build import dbt_models
    from autoflux.transform.dbt import _invoke

    schema, _, table = manifest["relation"].rpartition(".")
    recorded = manifest["dbt_models"]
    changed = changed_models(workspace, recorded)
    if changed:
        raise ReproduceError(
            f"models changed since the build the manifest records: {', '.join(changed)}",
            path=manifest_path,
            hint="restore those files (e.g. from git) to reproduce, or rebuild and hand off anew",
        )
    scratch = workspace.state_dir / "reproduce" / uuid.uuid4().hex[:12]
    settings = None
    try:
        settings = engine.scratch_settings(scratch)
        lake = Lake.at(str(scratch / "lake"), base=workspace.root)
        copy_raw_versions(engine.raw_store(), lake, manifest["raw_tables"], manifest_path)
        config = workspace.config.model_copy(update={"lake": lake.uri, "engine": settings})
        rebuilt = Workspace(workspace.root, config)
        scratch_engine = create_engine(rebuilt)
        try:
            scratch_engine.raw_store().recover()  # an engine whose raw tables are version folders registers the copied ones
            scratch_engine.publish_raw(lake.tables(RAW))
            _invoke(rebuilt, scratch_engine, ["run", "--select", *sorted(recorded)], None, state=scratch)
            now = dbt_models(scratch / "target")
            differ = sorted(
                n for n, m in recorded.items() if m.get("compiled_sha256") and now.get(n, {}).get("compiled_sha256") != m["compiled_sha256"]
            )
            data = scratch_engine.read_arrow(schema, table)
        finally:
            scratch_engine.close()
    finally:
        if settings is not None:
            engine.remove_scratch(settings)
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(OSError):
            scratch.parent.rmdir()
    return data, differ


def read_manifest(path: Path) -> dict[str, Any]:
    """A hand-off manifest with a build record and frame hashes; anything else is a ReproduceError."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReproduceError(f"cannot read the manifest: {error.strerror}", path=path, hint="give the path of a *.manifest.json") from None
    except ValueError:
        raise ReproduceError("not a JSON manifest", path=path, hint="give the path of a *.manifest.json") from None
    if not isinstance(manifest, dict) or "relation" not in manifest:
        raise ReproduceError("not an AutoFlux manifest (no relation)", path=path, hint="give the path of a *.manifest.json")
    if not manifest.get("build") or not manifest.get("raw_tables"):
        raise ReproduceError(
            "the manifest has no build record: the mart was not built by `autoflux transform`",
            path=path,
            hint="build with `autoflux transform` (or run), then hand off again",
        )
    if not all((manifest.get("frames") or {}).get(k, {}).get("content_hash") for k in ("train", "test")):
        raise ReproduceError("the manifest has no content hashes of train and test frames", path=path, hint="use a hand-off manifest")
    return manifest


def changed_models(workspace: Workspace, recorded: dict[str, Any]) -> list[str]:
    """Recorded models whose file is gone or whose checksum (dbt's: SHA-256 of the stripped UTF-8 text) differs."""
    changed = []
    for name, model in sorted(recorded.items()):
        path = workspace.dbt_dir / model["path"]
        if not path.is_file() or hashlib.sha256(path.read_text(encoding="utf-8").strip().encode()).hexdigest() != model["checksum"]:
            changed.append(f"{name} ({model['path']})")
    return changed


def copy_raw_versions(store: RawStore, target: Lake, raw_tables: dict[str, Any], manifest_path: Path) -> None:
    """Each raw table at its recorded version, copied into ``target`` (:meth:`RawStore.copy_to`); every one that cannot be, in one error."""
    problems = []
    for name, entry in sorted(raw_tables.items()):
        try:
            store.copy_to(name, entry.get("version"), target)
        except ReproduceError as error:
            problems.append(error)
    if problems:
        hints = dict.fromkeys(p.hint for p in problems if p.hint)
        raise ReproduceError(
            f"raw versions are no longer readable: {'; '.join(p.message for p in problems)}",
            path=manifest_path,
            hint="; ".join(hints) or "they cannot be reproduced",
        )


def write_frames(out: Path, frames: dict[str, Any], manifest: dict[str, Any]) -> None:
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        pq.write_table(frame, out / f"{name}.parquet")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
