"""The raw-table store: what each raw table last loaded, its loads, and reading it back.

:class:`RawStore` keeps the raw tables as Delta tables in the lake, written with delta-rs
(:mod:`.writer`) as :mod:`.policy` says. An engine whose raw tables live elsewhere or are written
by its own readers has a store of its own (a subclass); :meth:`autoflux.engines.base.Engine.raw_store`
gives the one an engine works with.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from autoflux.exceptions import AutoFluxError, ReproduceError
from autoflux.ingest.rules import TableLoad, WriteRules, write_rules
from autoflux.ingest.state import committed_fingerprint, committed_load, files_manifest, last_load, unlogged_loads
from autoflux.ingest.writer import PACK_BYTES, Packer, commit_group, current_schema, stage_file, write_table
from autoflux.lake import RAW, Lake, data_files

if TYPE_CHECKING:
    from autoflux.config import IngestSettings
    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.readers import Columns
    from autoflux.ingest.rules import Lineage
    from autoflux.ingest.state import LogEntry
    from autoflux.ingest.writer import Written
    from autoflux.workspace import Workspace


@dataclass(frozen=True)
class RawTable:
    """A raw table as its last load left it: columns, version, row count (when asked) and load metadata."""

    name: str
    schema: pa.Schema
    version: int | None
    rows: int | None
    metadata: dict[str, str]
    uri: str
    format: str = "delta"


@dataclass(frozen=True)
class GroupLoad:
    """One file of a grouped table to load: its reader (as :meth:`RawStore.write` takes it), lineage, and the
    types of the group's Hive keys (:func:`autoflux.ingest.partition_types`), for stores that read the files themselves."""

    data_file: DataFile
    open_columns: Callable[..., Columns]
    lineage: Lineage
    partitions: Mapping[str, pa.DataType] = field(default_factory=dict)


@dataclass
class GroupWritten:
    """What :meth:`RawStore.write_group` did: the new version (None: no commit), each file's :class:`Written`
    or error by source file, the source file → data files of the new version, and the schema changes."""

    version: int | None
    files: dict[str, Any]
    data_files: dict[str, list[str]]
    changes: tuple[str, ...] = field(default=())


class RawStore:
    """The raw tables ``raw.<table>`` of ``workspace``: Delta tables in its lake, loaded as its ``ingest`` config says.

    Bad rows wait under its ``state_dir`` (``.autoflux``) for the quarantine.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.lake: Lake = workspace.lake
        self.settings: IngestSettings = workspace.config.ingest
        self.state_dir: Path = workspace.state_dir

    def state(self, table: str) -> tuple[str | None, int | None]:
        """The fingerprint and version of ``raw.<table>``'s last load; ``(None, None)`` if never loaded."""
        if not self.lake.exists(RAW, table):
            return None, None
        return committed_fingerprint(self.lake, RAW, table), self.lake.open(RAW, table).version()

    def rules(self, table: str) -> WriteRules:
        """How loads may change ``raw.<table>`` (:func:`autoflux.ingest.rules.write_rules` of the store's settings)."""
        return write_rules(self.settings, table, self.state_dir)

    def write(self, data_file: DataFile, open_columns: Callable[..., Columns], load: TableLoad) -> Written:
        """Load the file's rows into ``raw.<load.table>`` in one commit, as ``load.rules`` (:meth:`rules`) say."""
        return write_table(self.lake, RAW, open_columns, load)

    def files(self, table: str) -> dict[str, Any] | None:
        """The files manifest of grouped table ``raw.<table>``'s last load (see :func:`autoflux.ingest.state.files_manifest`)."""
        return files_manifest(self.lake, RAW, table) if self.lake.exists(RAW, table) else None

    def write_group(self, load: TableLoad, loads: Sequence[GroupLoad], *, drop: Collection[str],
                    owners: Mapping[str, Collection[str]] | None,
                    metadata: Callable[[dict[str, list[str]], Mapping[str, Any]], Mapping[str, str]]) -> GroupWritten:  # fmt: skip
        """Load the files of grouped table ``raw.<load.table>`` in ``loads`` and remove the rows of those in ``drop``, in one commit.

        ``load`` holds the table's hints, rules and progress callback (its lineage is each file's own).

        Each file is read on its own (files in parallel); one that fails is reported in the result
        and the others still load. ``owners`` is that of :func:`autoflux.ingest.writer.commit_group`;
        ``metadata`` gets the source file → data files of the new version and each file's
        :class:`Written` or error, and returns the commit's metadata. Nothing is committed when every file failed
        and nothing is to be removed.
        """
        lake, table = self.lake, load.table
        base = current_schema(lake, RAW, table) if owners is not None else None
        results: dict[str, Any] = {}
        packer = Packer(lake, RAW, table)

        def stage(one: GroupLoad, base: Any) -> None:
            small = one.data_file.path.stat().st_size < PACK_BYTES // 8
            try:
                results[one.lineage.source_file] = stage_file(
                    lake, RAW, one.open_columns, replace(load, lineage=one.lineage), base=base, packer=packer if small else None
                )
            except AutoFluxError as error:
                if error.path is None:
                    error.path = one.lineage.source_file
                results[one.lineage.source_file] = error

        pending = list(loads)
        while base is None and pending:  # the first file that loads settles the types the others are read with
            stage(pending.pop(0), None)
            first = next((r for r in results.values() if not isinstance(r, AutoFluxError)), None)
            base = first.schema if first is not None else None
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(lambda one: stage(one, base), pending))
        packer.flush()
        staged = [results[one.lineage.source_file] for one in loads if not isinstance(results[one.lineage.source_file], AutoFluxError)]
        files = {name: getattr(result, "written", result) for name, result in results.items()}
        if not staged and (owners is None or not drop):
            return GroupWritten(None, files, {})
        version, _, changes, after = commit_group(
            lake, RAW, table, staged, packs=packer.packs, drop=drop, owners=owners, metadata=lambda after: metadata(after, files)
        )
        return GroupWritten(version, files, after, changes)

    def recover(self) -> None:
        """Bring what the store knows of the raw tables in line with what committed, after a run was killed.

        Called before anything else an ingest does; nothing to do when each commit is atomic (Delta).
        """

    def committed_load(self, table: str, load_id: str) -> bool:
        """Whether load ``load_id`` of ``raw.<table>`` committed (its bad rows then go to the quarantine)."""
        return committed_load(self.lake, RAW, table, load_id)

    def unlogged_loads(self) -> list[LogEntry]:
        """Log entries for loads the raw tables hold but the load log lacks (a run killed before logging them)."""
        return unlogged_loads(self.lake)

    def tables(self) -> list[str]:
        """Names of the raw tables, sorted."""
        return self.lake.tables(RAW)

    def schema(self, table: str) -> pa.Schema:
        """``raw.<table>``'s columns (what :meth:`table` gives, less its version and last load, which cost more to read)."""
        return pa.schema(self.lake.open(RAW, table).schema().to_arrow())

    def table(self, table: str, *, count: bool = False) -> RawTable:
        """``raw.<table>``'s columns, version and last load; its row count too when ``count``."""
        delta = self.lake.open(RAW, table)
        metadata = {k: str(v) for k, v in last_load(self.lake, RAW, table).items() if k.startswith("autoflux.")}
        schema = pa.schema(delta.schema().to_arrow())
        return RawTable(table, schema, delta.version(), delta.count() if count else None, metadata, self.lake.table_uri(RAW, table))

    def read(self, table: str, *, version: int | None = None) -> pa.Table:
        """``raw.<table>`` (as of ``version``, when given) as Arrow."""
        return self.lake.open(RAW, table, version=version).to_pyarrow_table()

    def copy_to(self, table: str, version: int | None, target: Lake) -> None:
        """``raw.<table>`` as of ``version``, copied into the scratch lake ``target`` (as its version 0) for a scratch
        engine (:meth:`autoflux.engines.base.Engine.scratch_settings`); a ReproduceError says why when that version
        can no longer be read."""
        from deltalake import write_deltalake

        try:
            delta = self.lake.open(RAW, table, version=version)
        except Exception as error:  # noqa: BLE001 - delta-rs raises several kinds for a missing table or log entry
            raise ReproduceError(f"raw.{table} version {version}: not in the table's log ({str(error).splitlines()[0]})") from None
        try:
            data = delta.to_pyarrow_table()
        except Exception as error:  # noqa: BLE001 - a missing data file is an OSError, or delta-rs's own error
            files = data_files(delta)
            gone = sum(not fs.exists(path) for fs, path in map(self.lake.filesystem, files))
            reason = f"its files were vacuumed ({gone} of {len(files)} data files are gone)" if gone else str(error).splitlines()[0]
            raise ReproduceError(
                f"raw.{table} version {version}: {reason}",
                hint="vacuum removed them (raise --retention-hours next time); they cannot be reproduced",
            ) from None
        write_deltalake(target.table_uri(RAW, table), data, mode="overwrite")
