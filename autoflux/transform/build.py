"""The build record: what the models were built from, written when a dbt build succeeds.

``.autoflux/build.json`` holds the raw tables' state at the moment dbt ran (Delta version, load
id, file fingerprint), each dbt model's checksum and compiled-SQL hash, the engine and the
versions of autoflux, dbt and the engine's packages, and a hash of the config without secrets.
The hand-off reads it instead of the raw tables' current state, so a manifest says what the mart
was built from, and which raw tables changed since (:func:`changed_tables`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoflux.files import write_text
from autoflux.ingest.state import LoadMetadata

if TYPE_CHECKING:
    from autoflux.engines.base import Engine
    from autoflux.workspace import Workspace

BUILD_FILE = "build.json"


def raw_snapshot(engine: Engine) -> dict[str, dict[str, Any]]:
    """Each raw table's version, load id, fingerprint and source file, as the engine sees them now."""
    raw = {}
    store = engine.raw_store()
    for name in store.tables():
        table = store.table(name)
        load = LoadMetadata.of(table.metadata) or LoadMetadata("")
        raw[name] = {
            "uri": table.uri,
            "version": table.version,
            "load_id": load.load_id or None,
            "fingerprint": load.fingerprint,
            "source_file": load.source_file or None,
        }
    return raw


def record_build(
    workspace: Workspace, engine: Engine, raw: dict[str, Any], *, command: str, select: str | None, target: Path | None = None
) -> dict[str, Any]:
    """Write the build record of the build that just succeeded (``raw``: :func:`raw_snapshot` taken before it)."""
    record = build_record(workspace, engine, raw, command=command, select=select, target=target)
    write_text(workspace.state_dir / BUILD_FILE, json.dumps(record, indent=2, default=str))
    return record


def build_record(
    workspace: Workspace, engine: Engine, raw: dict[str, Any], *, command: str, select: str | None, target: Path | None = None
) -> dict[str, Any]:
    """The record :func:`record_build` writes; ``target`` is dbt's target folder (default: the project's)."""
    return {
        "built_at": datetime.now(UTC).isoformat(),
        "command": command,
        "select": select,
        "engine": workspace.config.engine.type,
        "raw_tables": raw,
        "dbt_models": dbt_models(target or workspace.dbt_dir / "target"),
        "versions": package_versions(engine),
        "config_sha256": config_hash(workspace),
    }


def read_build(workspace: Workspace) -> dict[str, Any] | None:
    """The last build record, or None when no build succeeded (or the mart was made otherwise)."""
    try:
        return json.loads((workspace.state_dir / BUILD_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def forget_build(workspace: Workspace) -> None:
    """Remove the build record: a build is under way, and until it succeeds nothing is known."""
    (workspace.state_dir / BUILD_FILE).unlink(missing_ok=True)


def changed_tables(built: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """Raw tables loaded, added or removed since the build (``raw_tables`` of a record vs :func:`raw_snapshot`)."""
    names = sorted(set(built) | set(now))
    return [
        n
        for n in names
        if n not in built
        or n not in now
        or (built[n].get("version"), built[n].get("load_id")) != (now[n].get("version"), now[n].get("load_id"))
    ]


def dbt_models(target: Path) -> dict[str, Any]:
    """Each model of dbt's ``manifest.json`` in ``target``: file, checksum, compiled-SQL hash (when compiled)."""
    return {
        node["name"]: {
            "path": node["original_file_path"],
            "checksum": node["checksum"]["checksum"],
            "compiled_sha256": hashlib.sha256(node["compiled_code"].encode()).hexdigest() if node.get("compiled_code") else None,
        }
        for node in _model_nodes(target)
    }


def dbt_views(target: Path) -> set[str]:
    """``schema.name`` of each model dbt builds as a view, from the ``manifest.json`` in ``target`` (none when it is unreadable)."""
    try:
        nodes = _model_nodes(target)
    except (OSError, ValueError):
        return set()
    return {
        f"{node['schema']}.{node.get('alias') or node['name']}" for node in nodes if node.get("config", {}).get("materialized") == "view"
    }


def _model_nodes(target: Path) -> list[dict[str, Any]]:
    """The model nodes of dbt's ``manifest.json`` in ``target`` (none when there is no manifest)."""
    try:
        text = (target / "manifest.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [node for node in json.loads(text).get("nodes", {}).values() if node.get("resource_type") == "model"]


def package_versions(engine: Engine) -> dict[str, str | None]:
    """Installed versions of autoflux, dbt-core and the engine's packages (``Engine.PACKAGES``)."""
    versions = {}
    for package in ("autoflux", "dbt-core", "deltalake", *engine.PACKAGES):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    from autoflux.version import __version__

    versions["autoflux"] = __version__
    return versions


def config_hash(workspace: Workspace) -> str:
    """SHA-256 of the workspace's config as JSON, secrets masked (pydantic's ``**********``)."""
    config = workspace.config.model_dump(mode="json", by_alias=True)
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
