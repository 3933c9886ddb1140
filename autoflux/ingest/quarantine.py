"""Rows that could not be parsed, kept in the Delta table ``_autoflux.quarantine``: load, table, file, line, reason, raw text.

A load stages its bad rows in a file under ``.autoflux/quarantine/`` before its data commit;
:func:`publish` then moves the rows of every load that committed into the quarantine table (one
commit) and drops those of loads that never did. It runs at the end of every ingest and at the
start of the next, so whatever moment a run is killed at, the quarantine ends up holding the bad
rows of exactly the committed loads, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from autoflux.files import atomic_path
from autoflux.ingest.readers import BadRow
from autoflux.lake import SYSTEM, Lake

QUARANTINE = "quarantine"
SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("table", pa.string()),
        ("file", pa.string()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("raw", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)


def staging_dir(state_dir: Path) -> Path:
    return state_dir / "quarantine"


def stage(folder: Path, load_id: str, table: str, source_file: str, rows: Sequence[BadRow]) -> Path:
    """Write ``rows`` aside for the load of ``table`` (atomically: a file is complete or absent)."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    data = pa.Table.from_pylist(
        [
            {"load_id": load_id, "table": table, "file": source_file, "line": r.line, "reason": r.reason, "raw": r.text, "at": now}
            for r in rows
        ],
        schema=SCHEMA,
    )
    path = folder / f"{load_id}.{table}.parquet"
    with atomic_path(path) as temporary:
        pq.write_table(data, temporary)
    return path


def publish(lake: Lake, folder: Path, committed: Callable[[str, str], bool]) -> int:
    """Move staged rows of committed loads (``committed(table, load_id)``) into the quarantine table; drop the rest.

    Returns the number of rows added. Rows a killed run already added are not added twice.
    """
    import pyarrow.parquet as pq
    from deltalake import write_deltalake

    staged = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    for leftover in folder.glob(".*.tmp") if folder.is_dir() else []:
        leftover.unlink(missing_ok=True)
    keep: list[tuple[Path, pa.Table]] = []
    for path in staged:
        load_id, table = path.name.removesuffix(".parquet").split(".", 1)
        if committed(table, load_id):
            keep.append((path, pq.read_table(path, schema=SCHEMA)))
    if keep:
        present: set[tuple[str, str]] = set()
        if lake.exists(SYSTEM, QUARANTINE):
            found = lake.read_appended(SYSTEM, QUARANTINE, ["load_id", "table"])
            present = set(zip(found["load_id"].to_pylist(), found["table"].to_pylist(), strict=True))
        new = [t for _, t in keep if (t["load_id"][0].as_py(), t["table"][0].as_py()) not in present]
        if new:
            write_deltalake(
                lake.table_uri(SYSTEM, QUARANTINE),
                pa.concat_tables(new),
                mode="append",
                storage_options=lake.storage_options or None,
            )
    added = sum(t.num_rows for t in new) if keep else 0
    for path in staged:
        path.unlink(missing_ok=True)
    return added


def read_quarantine(lake: Lake) -> pa.Table:
    """Every quarantined row (empty when there is none)."""
    if not lake.exists(SYSTEM, QUARANTINE):
        return SCHEMA.empty_table()
    return lake.read_appended(SYSTEM, QUARANTINE)
