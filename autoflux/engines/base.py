"""What every engine provides, and the capabilities the core asks about instead of engine names."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from autoflux.engine_settings import EngineSettings
from autoflux.exceptions import AutoFluxError

if TYPE_CHECKING:
    import pyarrow as pa

    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.readers import Columns
    from autoflux.ingest.state import LogEntry
    from autoflux.ingest.writer import Lineage, Written
    from autoflux.lake import Lake
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
    """One file of a grouped table to load: its reader (as :meth:`Engine.write_raw` takes it), lineage, and the
    types of the group's Hive keys (:func:`autoflux.ingest.partition_types`), for engines that read the files themselves."""

    data_file: DataFile
    open_columns: Callable[..., Columns]
    lineage: Lineage
    partitions: Mapping[str, pa.DataType] = field(default_factory=dict)


@dataclass
class GroupWritten:
    """What :meth:`Engine.write_group` did: the new version (None: no commit), each file's :class:`Written`
    or error by source file, the source file → data files of the new version, and the schema changes."""

    version: int | None
    files: dict[str, Any]
    data_files: dict[str, list[str]]
    changes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Relation:
    """A table or view the engine holds."""

    schema: str
    name: str
    rows: int | None
    kind: str = "table"


class Engine(ABC):
    """A SQL engine and catalog over the lake.

    Capabilities, as class constants:

    - ``SOURCES_READ_LAKE``: dbt sources read the Delta tables in the lake directly (their paths go
      into ``sources.yml``); otherwise they are catalog tables ``raw.<table>`` the engine publishes.
    - ``FRAME_FORMATS``: frame types of the engine's own the hand-off can return (besides pandas,
      polars and Arrow), served by :meth:`training_frames`.
    - ``PACKAGES``: the Python packages whose versions a build record names (dbt adapter, client).
    An engine that ingests with its own readers overrides :meth:`raw_state` and :meth:`write_raw`
    (which applies the write modes, schema policies and bad-row limits of :mod:`autoflux.ingest.policy`);
    the default reads files with AutoFlux's Arrow readers and commits Delta tables with delta-rs.
    One whose raw tables are not Delta tables in the lake also overrides :meth:`raw_tables`,
    :meth:`raw_table`, :meth:`read_raw`, :meth:`committed_load`, :meth:`unlogged_loads` and :meth:`copy_raw`.
    """

    SOURCES_READ_LAKE: ClassVar[bool] = False
    FRAME_FORMATS: ClassVar[tuple[str, ...]] = ()
    PACKAGES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: EngineSettings, workspace: Workspace) -> None:
        self.settings = settings
        self.workspace = workspace

    def raw_state(self, table: str) -> tuple[str | None, int | None]:
        """The fingerprint and version of ``raw.<table>``'s last load; ``(None, None)`` if never loaded."""
        from autoflux.ingest.state import committed_fingerprint
        from autoflux.lake import RAW

        lake = self.workspace.lake
        if not lake.exists(RAW, table):
            return None, None
        return committed_fingerprint(lake, RAW, table), lake.open(RAW, table).version()

    def write_raw(
        self,
        data_file: DataFile,
        open_columns: Callable[..., Columns],
        *,
        hints: Mapping[str, pa.DataType],
        lineage: Lineage,
        commit_metadata: Mapping[str, str],
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> Written:
        """Load the file's rows into ``raw.<data_file.table>`` in one commit.

        The table's write mode and schema policy, and the bad rows a file may have, come from
        ``ingest`` config through :mod:`autoflux.ingest.policy` (an override applies the same).
        """
        from autoflux.ingest import quarantine
        from autoflux.ingest.policy import BadRowLimits, table_policy
        from autoflux.ingest.writer import write_table
        from autoflux.lake import RAW

        settings = self.workspace.config.ingest
        return write_table(
            self.workspace.lake,
            RAW,
            data_file.table,
            open_columns,
            hints=hints,
            lineage=lineage,
            commit_metadata=commit_metadata,
            on_batch=on_batch,
            policy=table_policy(settings, data_file.table),
            bad_rows=BadRowLimits(settings.bad_rows.max_count, settings.bad_rows.max_fraction),
            staging=quarantine.staging_dir(self.workspace.state_dir),
        )

    def raw_files(self, table: str) -> dict[str, Any] | None:
        """The files manifest of grouped table ``raw.<table>``'s last load (see :func:`autoflux.ingest.state.files_manifest`)."""
        from autoflux.ingest.state import files_manifest
        from autoflux.lake import RAW

        lake = self.workspace.lake
        return files_manifest(lake, RAW, table) if lake.exists(RAW, table) else None

    def write_group(self, table: str, loads: Sequence[GroupLoad], *, drop: Collection[str], owners: Mapping[str, Collection[str]] | None,
                    hints: Mapping[str, pa.DataType],
                    metadata: Callable[[dict[str, list[str]], Mapping[str, Any]], Mapping[str, str]],
                    on_batch: Callable[[int, int | None], None] | None = None) -> GroupWritten:  # fmt: skip
        """Load the files of grouped table ``raw.<table>`` in ``loads`` and remove the rows of those in ``drop``, in one commit.

        Each file is read on its own (files in parallel); one that fails is reported in the result
        and the others still load. ``owners`` is that of :func:`autoflux.ingest.writer.commit_group`;
        ``metadata`` gets the source file → data files of the new version and each file's
        :class:`Written` or error, and returns the commit's metadata. Nothing is committed when every file failed
        and nothing is to be removed.
        """
        from autoflux.ingest import quarantine
        from autoflux.ingest.policy import BadRowLimits, table_policy
        from autoflux.ingest.writer import PACK_BYTES, Packer, commit_group, stage_file
        from autoflux.lake import RAW

        settings = self.workspace.config.ingest
        lake = self.workspace.lake
        policy = table_policy(settings, table)
        limits = BadRowLimits(settings.bad_rows.max_count, settings.bad_rows.max_fraction)
        staging_dir = quarantine.staging_dir(self.workspace.state_dir)
        base = None
        if owners is not None and lake.exists(RAW, table):
            base = pa_schema(lake.open(RAW, table).schema().to_arrow())
        results: dict[str, Any] = {}
        packer = Packer(lake, RAW, table)

        def stage(load: GroupLoad, base: Any) -> None:
            small = load.data_file.path.stat().st_size < PACK_BYTES // 8
            try:
                results[load.lineage.source_file] = stage_file(
                    lake, RAW, table, load.open_columns, base=base, hints=hints, lineage=load.lineage, policy=policy,
                    bad_rows=limits, staging=staging_dir, on_batch=on_batch, packer=packer if small else None,
                )  # fmt: skip
            except AutoFluxError as error:
                if error.path is None:
                    error.path = load.lineage.source_file
                results[load.lineage.source_file] = error

        pending = list(loads)
        while base is None and pending:  # the first file that loads settles the types the others are read with
            stage(pending.pop(0), None)
            first = next((r for r in results.values() if not isinstance(r, AutoFluxError)), None)
            base = first.schema if first is not None else None
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            list(pool.map(lambda load: stage(load, base), pending))
        packer.flush()
        staged = [results[load.lineage.source_file] for load in loads if not isinstance(results[load.lineage.source_file], AutoFluxError)]
        files = {name: getattr(result, "written", result) for name, result in results.items()}
        if not staged and (owners is None or not drop):
            return GroupWritten(None, files, {})
        version, _, changes, after = commit_group(
            lake, RAW, table, staged, packs=packer.packs, drop=drop, owners=owners, metadata=lambda after: metadata(after, files)
        )
        return GroupWritten(version, files, after, changes)

    def recover_raw(self) -> None:
        """Bring what the engine knows of the raw tables in line with what committed, after a run was killed.

        Called before anything else an ingest does; nothing to do when each commit is atomic (Delta).
        """

    def committed_load(self, table: str, load_id: str) -> bool:
        """Whether load ``load_id`` of ``raw.<table>`` committed (its bad rows then go to the quarantine)."""
        from autoflux.ingest.state import committed_load
        from autoflux.lake import RAW

        return committed_load(self.workspace.lake, RAW, table, load_id)

    def unlogged_loads(self) -> list[LogEntry]:
        """Log entries for loads the raw tables hold but the load log lacks (a run killed before logging them)."""
        from autoflux.ingest.state import unlogged_loads

        return unlogged_loads(self.workspace.lake)

    def raw_tables(self) -> list[str]:
        """Names of the raw tables, sorted."""
        from autoflux.lake import RAW

        return self.workspace.lake.tables(RAW)

    def raw_table(self, table: str, *, count: bool = False) -> RawTable:
        """``raw.<table>``'s columns, version and last load; its row count too when ``count``."""
        from autoflux.ingest.state import last_load
        from autoflux.lake import RAW

        lake = self.workspace.lake
        delta = lake.open(RAW, table)
        metadata = {k: str(v) for k, v in last_load(lake, RAW, table).items() if k.startswith("autoflux.")}
        schema = pa_schema(delta.schema().to_arrow())
        return RawTable(table, schema, delta.version(), delta.count() if count else None, metadata, lake.table_uri(RAW, table))

    def read_raw(self, table: str, *, version: int | None = None) -> pa.Table:
        """``raw.<table>`` (as of ``version``, when given) as Arrow."""
        from autoflux.lake import RAW

        return self.workspace.lake.open(RAW, table, version=version).to_pyarrow_table()

    def training_frames(self, schema: str, table: str, *, split_column: str, format: str) -> tuple[Any, Any]:
        """Train and test rows of ``schema.table`` as frames in ``format`` (one of ``FRAME_FORMATS``), split column dropped."""
        raise NotImplementedError(f"{type(self).__name__} has no {format} frames")

    @abstractmethod
    def dbt_output(self) -> dict[str, Any]:
        """This engine's entry under ``outputs`` in the generated profiles.yml."""

    def dbt_env(self) -> dict[str, str]:
        """Environment variables the generated dbt files read when AutoFlux runs dbt."""
        return {}

    def before_dbt(self) -> None:
        """Called before each dbt command AutoFlux runs in this process (release what dbt must open)."""

    def after_dbt(self) -> None:
        """Called after each dbt command AutoFlux runs in this process (release what dbt holds)."""

    def source_plugin(self, table: str) -> str | None:
        """The dbt adapter plugin that reads ``raw.<table>`` from the lake (``meta.plugin`` in sources.yml), or None
        when the source is the catalog relation ``raw.<table>`` (what :meth:`publish_raw` made)."""
        return None

    def publish_raw(self, tables: Iterable[str], *, rebuilt_views: Collection[str] = ()) -> None:
        """Make the lake's raw tables visible to the engine's catalog, loading only what changed.

        Called after every ingest with all raw tables; nothing to do by default. ``rebuilt_views``
        (``schema.name``) are the views dbt recreates: an engine that binds views to a table's
        columns may drop them when those columns change.
        """

    @abstractmethod
    def relations(self, schemas: Iterable[str]) -> list[Relation]:
        """Tables and views in ``schemas``, with row counts."""

    def relation_exists(self, schema: str, name: str) -> bool:
        """Whether table or view ``schema.name`` exists (without counting rows where the engine can)."""
        return any(r.name == name for r in self.relations([schema]))

    @abstractmethod
    def read_arrow(self, schema: str, table: str) -> pa.Table:
        """A whole table as Arrow; raises TableNotFoundError when it does not exist."""

    def scratch_settings(self, folder: Path) -> EngineSettings:
        """Settings of this engine with storage of its own under ``folder`` (or a scratch database), to rebuild in."""
        from autoflux.exceptions import ReproduceError

        raise ReproduceError(
            f"the {self.settings.type} engine cannot rebuild models in scratch space",
            hint="reproduce on a workspace whose engine is duckdb or postgres",
        )

    def remove_scratch(self, settings: EngineSettings) -> None:
        """Drop what :meth:`scratch_settings` made (the folder itself is removed by the caller)."""

    def copy_raw(self, table: str, version: int | None, target: Lake) -> None:
        """``raw.<table>`` as of ``version``, copied into the scratch lake ``target`` (as its version 0) for an engine
        of :meth:`scratch_settings`; a ReproduceError says why when that version can no longer be read."""
        from deltalake import write_deltalake

        from autoflux.exceptions import ReproduceError
        from autoflux.lake import RAW

        lake = self.workspace.lake
        try:
            delta = lake.open(RAW, table, version=version)
        except Exception as error:  # noqa: BLE001 - delta-rs raises several kinds for a missing table or log entry
            raise ReproduceError(f"raw.{table} version {version}: not in the table's log ({str(error).splitlines()[0]})") from None
        try:
            data = delta.to_pyarrow_table()
        except Exception as error:  # noqa: BLE001 - a missing data file is an OSError, or delta-rs's own error
            uris = delta.file_uris()
            gone = sum(not fs.exists(path) for fs, path in map(lake.filesystem, uris))
            reason = f"its files were vacuumed ({gone} of {len(uris)} data files are gone)" if gone else str(error).splitlines()[0]
            raise ReproduceError(
                f"raw.{table} version {version}: {reason}",
                hint="vacuum removed them (raise --retention-hours next time); they cannot be reproduced",
            ) from None
        write_deltalake(target.table_uri(RAW, table), data, mode="overwrite")

    # SQL the checks build (:mod:`autoflux.checks`): one dialect hook per difference.
    SQL_DOUBLE: ClassVar[str] = "double"
    SQL_TEXT: ClassVar[str] = "varchar"
    SQL_NESTED_BINS: ClassVar[bool] = False  # bin numbers by nested CASEs (a binary search), not one CASE of every cut point

    def quote(self, name: str) -> str:
        """``name`` as a quoted SQL identifier."""
        return '"' + name.replace('"', '""') + '"'

    def query(self, sql: str) -> pa.Table:
        """The result of a read-only query as Arrow."""
        raise NotImplementedError(f"{type(self).__name__} runs no queries")

    def sql_distinct(self, expression: str) -> str:
        """An aggregate counting the distinct values of ``expression`` (approximately where the engine can)."""
        return f"approx_count_distinct({expression})"

    def sql_sample(self, relation: str, fraction: float) -> str:
        """``relation``, or a random sample of about ``fraction`` of its rows (repeatable where the engine can), to take quantiles from."""
        if fraction >= 1:
            return relation
        return f"(select * from {relation} using sample {100 * fraction:.6f}% (bernoulli, 0))"

    def sql_quantiles(self, expression: str, fractions: list[float]) -> str:
        """An aggregate giving the (approximate) ``fractions`` quantiles of ``expression`` as an array."""
        return f"quantile_disc({expression}, [{', '.join(map(str, fractions))}])"

    def sql_row_hash(self, columns: list[str]) -> str | None:
        """A 64-bit hash of ``columns`` (nulls equal, position matters), or None where the engine has none."""
        return f"hash({', '.join(columns)})"

    def sql_epoch_days(self, expression: str) -> str:
        """A date or timestamp ``expression`` as days (with their fraction) since 1970-01-01."""
        return f"epoch({expression}) / 86400.0"

    def close(self) -> None:
        """Release connections."""


def pa_schema(schema: Any) -> pa.Schema:
    """A pyarrow schema from any Arrow schema object (delta-rs returns arro3's)."""
    import pyarrow as pa

    return pa.schema(schema)


def dbt_env_var(name: str, default: str) -> str:
    """A dbt Jinja expression for environment variable ``name``, else ``default`` (any text, escaped)."""
    literal = default.replace("\\", "\\\\").replace("'", "\\'")
    return f"{{{{ env_var('{name}', '{literal}') }}}}"
