"""The write rules of one table, decided once for every writer, and the checks every writer applies.

:func:`write_rules` reads ``ingest`` config (:mod:`.policy`) into :class:`WriteRules`; each
writer (delta-rs in :mod:`.writer`, Spark's in :mod:`autoflux.engines.spark.writer`) keeps only
how its engine writes, and calls :func:`set_aside` for a file's bad rows and :func:`check_key`
for a merge key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoflux.exceptions import IngestError
from autoflux.ingest import quarantine
from autoflux.ingest.policy import BadRowLimits, TablePolicy, table_policy

if TYPE_CHECKING:
    import pyarrow as pa

    from autoflux.config import IngestSettings
    from autoflux.ingest.readers import BadRows


@dataclass(frozen=True)
class WriteRules:
    """How loads may change one table: its policy, the bad rows a file may have, and the folder where
    they wait for the quarantine (:mod:`.quarantine`)."""

    policy: TablePolicy
    limits: BadRowLimits
    staging: Path

    def appended(self) -> WriteRules:
        """The rules of one file of a grouped table: appended to the table, under its schema policy."""
        return replace(self, policy=TablePolicy("append", self.policy.schema))


def write_rules(settings: IngestSettings, table: str, state_dir: Path) -> WriteRules:
    """``table``'s write rules from ``ingest`` config; bad rows wait under the workspace's ``state_dir``."""
    limits = BadRowLimits(settings.bad_rows.max_count, settings.bad_rows.max_fraction)
    return WriteRules(table_policy(settings, table), limits, quarantine.staging_dir(state_dir))


@dataclass(frozen=True)
class Lineage:
    """Where a file's rows come from: the load, the source file and when (the lineage columns' values)."""

    load_id: str
    source_file: str
    ingested_at: datetime


@dataclass(frozen=True)
class TableLoad:
    """One load into ``table``: where its rows come from, the type hints, the write rules, the commit's
    metadata, and ``on_batch(rows, bytes_read)`` after each batch read.

    ``tap(schema, batches)``, when set, sees the rows of a load that replaces the whole table on their way
    to the files (once per read of the file: a read again with wider types calls it again) and yields them on.
    """

    table: str
    lineage: Lineage
    hints: Mapping[str, pa.DataType]
    rules: WriteRules
    commit_metadata: Mapping[str, str] = field(default_factory=dict)
    on_batch: Callable[[int, int | None], None] | None = None
    tap: Callable[[pa.Schema, Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]] | None = None


def set_aside(rules: WriteRules, bad: BadRows, read: int, table: str, lineage: Lineage) -> None:
    """Stage a file's ``bad`` rows (of ``read`` rows) for the quarantine; more than ``rules`` allow fail the file."""
    if not rules.limits.allows(len(bad), read):
        raise bad.error(rules.limits if rules.limits.max_count or rules.limits.max_fraction else None)
    quarantine.stage(rules.staging, lineage.load_id, table, lineage.source_file, bad.located())


def check_key(table: str, source_file: str, empty: Mapping[str, int], repeated: Callable[[], tuple[Mapping[str, Any], int] | None]) -> None:
    """Fail the file unless its merge key is present on every row and unique.

    ``empty`` counts the null values of each key column; ``repeated`` finds a key value (``{column: value}``)
    on more than one row and its number of rows, or None (asked only when no key value is empty).
    """
    hint = f"a merge key must identify one row: fix the file or ingest.tables.{table}.key"
    for column, rows in empty.items():
        if rows:
            raise IngestError(f"the merge key column {column} is empty on {rows} rows", path=source_file, hint=hint)
    found = repeated()
    if found is not None:
        where = ", ".join(f"{k} = {v!r}" for k, v in found[0].items())
        raise IngestError(f"the merge key ({where}) is on {found[1]} rows", path=source_file, hint=hint)
