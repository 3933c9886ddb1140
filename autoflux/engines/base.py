"""What every engine provides, and the capabilities the core asks about instead of engine names."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from autoflux.engine_settings import EngineSettings

if TYPE_CHECKING:
    import pyarrow as pa

    from autoflux.ingest.store import RawStore
    from autoflux.workspace import Workspace


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

    - ``FRAME_FORMATS``: frame types of the engine's own the hand-off can return (besides pandas,
      polars and Arrow), served by :meth:`training_frames`.
    - ``PACKAGES``: the Python packages whose versions a build record names (dbt adapter, client).
    - ``DBT_IN_PROCESS``: dbt runs in AutoFlux's process, sharing the engine's session; otherwise in
      AutoFlux's dbt process (:mod:`autoflux.transform.dbt_process`).
    The raw tables are the store :meth:`raw_store` gives (:mod:`autoflux.ingest.store`); an engine
    that ingests with its own readers, or keeps raw tables other than as Delta tables in the lake,
    returns a store of its own.
    """

    FRAME_FORMATS: ClassVar[tuple[str, ...]] = ()
    PACKAGES: ClassVar[tuple[str, ...]] = ()
    DBT_IN_PROCESS: ClassVar[bool] = False

    def __init__(self, settings: EngineSettings, workspace: Workspace) -> None:
        self.settings = settings
        self.workspace = workspace
        self._store: RawStore | None = None  # an engine with a store of its own sets it here

    def raw_store(self) -> RawStore:
        """The store of the raw tables this engine reads (one per engine): by default the lake's Delta tables, written with delta-rs."""
        if self._store is None:
            from autoflux.ingest.store import RawStore

            self._store = RawStore(self.workspace)
        return self._store

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
        """Called before each dbt command AutoFlux runs (release what dbt must open)."""

    def after_dbt(self) -> None:
        """Called after each dbt command AutoFlux runs (release what dbt holds, when dbt ran in this process)."""

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

    def read_batches(self, schema: str, table: str) -> pa.RecordBatchReader:
        """A whole table as Arrow record batches, streamed where the engine can (memory flat in the table's
        size; here it is read whole); raises TableNotFoundError when it does not exist."""
        return self.read_arrow(schema, table).to_reader()

    def scratch_settings(self, folder: Path) -> EngineSettings:
        """Settings of this engine with storage of its own under ``folder`` (or a scratch database), to rebuild in."""
        from autoflux.exceptions import ReproduceError

        raise ReproduceError(
            f"the {self.settings.type} engine cannot rebuild models in scratch space",
            hint="reproduce on a workspace whose engine is duckdb or postgres",
        )

    def remove_scratch(self, settings: EngineSettings) -> None:
        """Drop what :meth:`scratch_settings` made (the folder itself is removed by the caller)."""

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

    @contextlib.contextmanager
    def raw_scan(self, table: str) -> Iterator[tuple[str, Callable[[str], pa.Table]]]:
        """A SQL relation reading ``raw.<table>`` and the function that runs read-only queries over it.

        By default the catalog relation and :meth:`query`. It must also read while dbt runs in its own
        process: ``autoflux run`` profiles the raw tables then, from another thread.
        """
        from autoflux.lake import RAW

        yield f"{self.quote(RAW)}.{self.quote(table)}", self.query

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


def dbt_env_var(name: str, default: str) -> str:
    """A dbt Jinja expression for environment variable ``name``, else ``default`` (any text, escaped)."""
    literal = default.replace("\\", "\\\\").replace("'", "\\'")
    return f"{{{{ env_var('{name}', '{literal}') }}}}"
