"""What was loaded: file fingerprints, and the load log kept as a Delta table in the lake.

A file's fingerprint is the SHA-256 of its bytes plus the settings that shape its table (reader,
type hints, CSV options), so a changed file or changed settings reload it and nothing else does.
The fingerprint a table holds is read from its own last commit, never from a side file, so the
log can never claim a load the table does not have.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from autoflux.lake import SYSTEM, Lake

LOAD_LOG = "load_log"
_LOG_SCHEMA = pa.schema(
    [
        ("load_id", pa.string()),
        ("table", pa.string()),
        ("source_file", pa.string()),
        ("outcome", pa.string()),
        ("rows", pa.int64()),
        ("bytes", pa.int64()),
        ("seconds", pa.float64()),
        ("version", pa.int64()),
        ("fingerprint", pa.string()),
        ("message", pa.string()),
        ("at", pa.timestamp("us", tz="UTC")),
    ]
)


@dataclass(frozen=True)
class LogEntry:
    load_id: str
    table: str
    source_file: str
    outcome: str
    rows: int | None
    bytes: int
    seconds: float
    version: int | None
    fingerprint: str | None
    message: str | None
    at: datetime


def fingerprint(path: Path, settings: object) -> str:
    """SHA-256 over the file's bytes and a JSON rendering of ``settings``."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    with path.open("rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def last_load(lake: Lake, schema: str, table: str) -> dict[str, str]:
    """The commit info of the table's last load (maintenance commits such as OPTIMIZE are passed over)."""
    if not lake.exists(schema, table):
        return {}
    history = lake.open(schema, table).history(100)
    return next((commit for commit in map(with_user_metadata, history) if "autoflux.fingerprint" in commit), {})


def with_user_metadata(commit: dict) -> dict:
    """A commit's info with the keys of its ``userMetadata`` JSON (how Spark's Delta writer records them) merged in."""
    try:
        extra = json.loads(commit.get("userMetadata") or "{}")
    except (TypeError, ValueError):
        return commit
    return {**extra, **commit} if isinstance(extra, dict) else commit


def committed_fingerprint(lake: Lake, schema: str, table: str) -> str | None:
    """The fingerprint recorded by the table's last load, or None for a new table."""
    return last_load(lake, schema, table).get("autoflux.fingerprint")


def append_log(lake: Lake, entries: list[LogEntry]) -> None:
    """Add ``entries`` to the load log in one commit."""
    if not entries:
        return
    from deltalake import write_deltalake

    table = pa.Table.from_pylist([asdict(e) for e in entries], schema=_LOG_SCHEMA)
    write_deltalake(lake.table_uri(SYSTEM, LOAD_LOG), table, mode="append", storage_options=lake.storage_options or None)


def read_log(lake: Lake) -> pa.Table:
    """The whole load log (empty when nothing was loaded yet)."""
    if not lake.exists(SYSTEM, LOAD_LOG):
        return _LOG_SCHEMA.empty_table()
    return lake.open(SYSTEM, LOAD_LOG).to_pyarrow_table()
