"""What was loaded: file fingerprints, and the load log kept as a Delta table in the lake.

A file's fingerprint is the SHA-256 of its bytes plus the settings that shape its table (reader,
type hints, CSV options), so a changed file or changed settings reload it and nothing else does.
The fingerprint a table holds is read from its own last commit, never from a side file. The log
is written after the data commits it describes, so it never claims a load the table does not
have; a run killed in between leaves loads the log lacks, which the next run finds in the tables'
commits and logs (:func:`unlogged_loads`; an engine whose raw tables are not Delta tables finds
them its own way, :meth:`autoflux.ingest.store.RawStore.unlogged_loads`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
        ("quarantined", pa.int64()),
    ]
)
_EPOCH, _MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)
RECOVERED = "recovered: committed by a run that stopped before logging it"


@dataclass(frozen=True)
class LoadMetadata:
    """What a load records beside its rows, under ``autoflux.*`` keys: in a Delta commit's info
    (``userMetadata`` when Spark writes it) or a Spark table's properties. The one owner of those keys."""

    load_id: str
    fingerprint: str | None = None
    source_file: str = ""
    mode: str | None = None
    rows: int | None = None  # rows the load wrote, where the writer records it

    @staticmethod
    def key(name: str) -> str:
        """The stored key of field ``name`` (``"load_id"`` → ``"autoflux.load_id"``)."""
        return f"autoflux.{name}"

    def to_dict(self) -> dict[str, str]:
        return {self.key(name): str(value) for name, value in asdict(self).items() if value is not None}

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> LoadMetadata | None:
        """The load metadata in ``stored`` (commit info or table properties), None when no load wrote it."""
        load_id = stored.get(cls.key("load_id"))
        if not load_id:
            return None
        rows = stored.get(cls.key("rows"))
        return cls(
            load_id,
            stored.get(cls.key("fingerprint")),
            stored.get(cls.key("source_file")) or "",
            stored.get(cls.key("mode")),
            int(rows) if rows is not None else None,
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
    quarantined: int | None = None


def fingerprint(path: Path, settings: object) -> str:
    """SHA-256 over the file's bytes and a JSON rendering of ``settings``."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    chunk = memoryview(bytearray(1 << 20))
    with path.open("rb", buffering=0) as handle:
        while size := handle.readinto(chunk):
            digest.update(chunk[:size])
    return digest.hexdigest()


def last_load(lake: Lake, schema: str, table: str) -> dict[str, str]:
    """The commit info of the table's last load (maintenance commits such as OPTIMIZE are passed over)."""
    if not lake.exists(schema, table):
        return {}
    history = lake.open(schema, table).history(100)
    return next((commit for commit in map(with_user_metadata, history) if LoadMetadata.key("fingerprint") in commit), {})


def with_user_metadata(commit: dict) -> dict:
    """A commit's info with the keys of its ``userMetadata`` JSON (how Spark's Delta writer records them) merged in."""
    try:
        extra = json.loads(commit.get("userMetadata") or "{}")
    except (TypeError, ValueError):
        return commit
    return {**extra, **commit} if isinstance(extra, dict) else commit


def committed_load(lake: Lake, schema: str, table: str, load_id: str) -> bool:
    """Whether a commit of ``schema.table`` made by load ``load_id`` is among its last 100."""
    if not lake.exists(schema, table):
        return False
    commits = map(with_user_metadata, lake.open(schema, table).history(100))
    return any((load := LoadMetadata.of(c)) is not None and load.load_id == load_id for c in commits)


def unlogged_loads(lake: Lake, schema: str = "raw") -> list[LogEntry]:
    """Log entries for the loads the tables' last 100 commits hold but the load log lacks (a run killed before logging)."""
    logged = logged_loads(lake)
    entries: list[LogEntry] = []
    quarantine: list[tuple[str, str]] | None = None
    for table in lake.tables(schema):
        for commit in map(with_user_metadata, lake.open(schema, table).history(100)):
            load = LoadMetadata.of(commit)
            if load is None or (table, load.load_id) in logged:
                continue
            if quarantine is None:
                quarantine = quarantined_loads(lake)
            ids = lake.open(schema, table, version=commit["version"]).to_pyarrow_table(columns=["_load_id"])["_load_id"]
            at = datetime.fromtimestamp(commit["timestamp"] / 1000, UTC) if commit.get("timestamp") else None
            rows = ids.cast(pa.string()).to_pylist().count(load.load_id)
            entries.append(recovered_entry(table, commit, version=commit["version"], rows=rows, at=at, quarantine=quarantine))
    return sorted(entries, key=lambda e: (e.table, e.version or 0))


def logged_loads(lake: Lake) -> set[tuple[str, str]]:
    """``(table, load_id)`` of every load the load log holds as loaded (or as removing a grouped table's file)."""
    log = read_log(lake, columns=["table", "load_id", "outcome"]).to_pydict()
    return {(t, i) for t, i, o in zip(log["table"], log["load_id"], log["outcome"], strict=True) if o in ("loaded", "removed")}


def quarantined_loads(lake: Lake) -> list[tuple[str, str]]:
    """``(load_id, table)`` of every quarantined row."""
    from autoflux.ingest.quarantine import read_quarantine

    bad_rows = read_quarantine(lake).select(["load_id", "table"]).to_pydict()
    return list(zip(bad_rows["load_id"], bad_rows["table"], strict=True))


def recovered_entry(
    table: str, metadata: Mapping[str, Any], *, version: int | None, rows: int, at: datetime | None, quarantine: list[tuple[str, str]]
) -> LogEntry:
    """The log entry of a load found committed (its ``autoflux.*`` ``metadata``) but not logged."""
    load = LoadMetadata.of(metadata)
    return LogEntry(
        load.load_id,
        table,
        load.source_file,
        "loaded",
        rows,
        0,
        0.0,
        version,
        load.fingerprint,
        RECOVERED,
        at or datetime.now(UTC),
        quarantine.count((load.load_id, table)),
    )


def committed_fingerprint(lake: Lake, schema: str, table: str) -> str | None:
    """The fingerprint recorded by the table's last load, or None for a new table."""
    load = LoadMetadata.of(last_load(lake, schema, table))
    return load.fingerprint if load else None


MANIFEST_KEY = LoadMetadata.key("manifest")
MANIFEST_DIR = "_autoflux"


def files_manifest(lake: Lake, schema: str, table: str, metadata: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """The files manifest a grouped table's load recorded (``metadata``: that load's commit info, default the last load).

    ``{"files": {source file: {"size", "mtime_ns", "fingerprint", "shape", "rows", "data": [data files]}},
    "added": [...], "replaced": [...], "removed": [...]}``; None when the load kept none (a table of one file).
    The commit names it, so a manifest written by a load that never committed is never read.
    """
    commit = last_load(lake, schema, table) if metadata is None else metadata
    name = commit.get(MANIFEST_KEY)
    if not name:
        return None
    filesystem, path = lake.filesystem(f"{lake.table_uri(schema, table)}/{MANIFEST_DIR}/{name}")
    return json.loads(filesystem.cat_file(path))


def write_files_manifest(lake: Lake, schema: str, table: str, load_id: str, manifest: Mapping[str, Any]) -> str:
    """Write a grouped table's files manifest for load ``load_id`` (before its commit, which names it); returns its name."""
    name = f"{load_id}.files.json"
    filesystem, path = lake.filesystem(f"{lake.table_uri(schema, table)}/{MANIFEST_DIR}/{name}")
    filesystem.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    filesystem.pipe_file(path, json.dumps(manifest, sort_keys=True).encode())
    return name


def append_log(lake: Lake, entries: list[LogEntry]) -> None:
    """Add ``entries`` to the load log in one commit."""
    if not entries:
        return
    from deltalake import write_deltalake

    write_deltalake(
        lake.table_uri(SYSTEM, LOAD_LOG),
        _log_table(entries),
        mode="append",
        schema_mode="merge",
        storage_options=lake.storage_options or None,
    )


def _log_table(entries: list[LogEntry]) -> pa.Table:
    """``entries`` as Arrow, read from JSON lines (the times as microseconds since the epoch).

    Not ``pa.Table.from_pylist``: pyarrow imports pandas on its first array made of Python values, and
    that import is a fifth of a run that changed nothing (which still logs its files); its JSON reader
    makes no such array.
    """
    import io

    import pyarrow.json as pa_json

    def micros(at: datetime) -> int:
        return ((at if at.tzinfo else at.replace(tzinfo=UTC)) - _EPOCH) // _MICROSECOND

    lines = "".join(json.dumps(vars(e) | {"at": micros(e.at)}) + "\n" for e in entries)
    as_written = pa.schema([f.with_type(pa.int64()) if f.name == "at" else f for f in _LOG_SCHEMA])
    options = pa_json.ParseOptions(explicit_schema=as_written, unexpected_field_behavior="error")
    return pa_json.read_json(io.BytesIO(lines.encode()), parse_options=options).cast(_LOG_SCHEMA)


def read_log(lake: Lake, columns: list[str] | None = None) -> pa.Table:
    """The load log, or some of its ``columns`` (empty when nothing was loaded yet)."""
    if not lake.exists(SYSTEM, LOAD_LOG):
        return _LOG_SCHEMA.empty_table().select(columns or _LOG_SCHEMA.names)
    return lake.read_appended(SYSTEM, LOAD_LOG, columns)
