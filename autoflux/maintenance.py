"""Delta table upkeep: compact small files, remove unreferenced ones, show a table's history."""

from __future__ import annotations

from typing import Any

from autoflux.lake import RAW, SYSTEM, Lake

DEFAULT_RETENTION_HOURS = 168


def lake_tables(lake: Lake, tables: list[str] | None = None) -> list[tuple[str, str]]:
    """``(schema, table)`` of the named raw tables, or of every raw and system table."""
    if tables:
        return [(RAW, name) for name in tables]
    return [(RAW, name) for name in lake.tables(RAW)] + [(SYSTEM, name) for name in lake.tables(SYSTEM)]


def optimize(lake: Lake, tables: list[str] | None = None) -> list[dict[str, Any]]:
    """Compact each table's small files into larger ones (one new version where anything changed)."""
    results = []
    for schema, name in lake_tables(lake, tables):
        metrics = lake.open(schema, name).optimize.compact()
        results.append({"table": f"{schema}.{name}", "files_added": metrics["numFilesAdded"], "files_removed": metrics["numFilesRemoved"]})
    return results


def vacuum(
    lake: Lake, tables: list[str] | None = None, *, retention_hours: int = DEFAULT_RETENTION_HOURS, dry_run: bool = False
) -> list[dict[str, Any]]:
    """Delete files older than ``retention_hours`` that the current version does not use (time travel past it ends).

    That includes files no version ever used: those a write killed before its commit left behind.
    """
    results = []
    for schema, name in lake_tables(lake, tables):
        removed = lake.open(schema, name).vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=retention_hours >= DEFAULT_RETENTION_HOURS,
            full=True,
        )
        results.append({"table": f"{schema}.{name}", "files": len(removed), "dry_run": dry_run})
    return results


def history(lake: Lake, table: str, *, limit: int = 50) -> list[dict[str, Any]]:
    """Each version of ``raw.<table>``: when, what operation, which load (and its write mode), rows, schema changes,
    and for a grouped table the source files the load added, replaced and removed (None for a table of one file)."""
    import pyarrow as pa

    from autoflux.ingest.schema import type_name
    from autoflux.ingest.state import MANIFEST_KEY, LoadMetadata, files_manifest, with_user_metadata

    delta = lake.open(RAW, table)
    commits = sorted(map(with_user_metadata, delta.history(limit)), key=lambda c: c["version"])
    rows, previous = [], None
    for commit in commits:
        version = commit["version"]
        arrow = pa.schema(lake.open(RAW, table, version=version).schema().to_arrow())
        schema = {f.name: type_name(f.type) for f in arrow}
        changes = _schema_changes(previous, schema) if previous is not None else ["created: " + ", ".join(schema)]
        metrics = commit.get("operationMetrics") or {}
        load = LoadMetadata.of(commit) or LoadMetadata("")
        files = files_manifest(lake, RAW, table, commit) if commit.get(MANIFEST_KEY) else None
        rows.append(
            {
                "version": version,
                "timestamp": commit.get("timestamp"),
                "operation": commit.get("operation"),
                "load_id": load.load_id or None,
                "source_file": load.source_file or None,
                "mode": load.mode,
                "rows_added": metrics.get("num_added_rows", metrics.get("num_target_rows_inserted", load.rows)),
                "rows_updated": metrics.get("num_target_rows_updated"),
                "schema_changes": changes,
                "files_added": files["added"] if files else None,
                "files_replaced": files["replaced"] if files else None,
                "files_removed": files["removed"] if files else None,
            }
        )
        previous = schema
    return rows


def _schema_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    changes = [f"+ {name} {kind}" for name, kind in after.items() if name not in before]
    changes += [f"- {name}" for name in before if name not in after]
    changes += [f"~ {name} {before[name]} → {kind}" for name, kind in after.items() if name in before and before[name] != kind]
    return changes
