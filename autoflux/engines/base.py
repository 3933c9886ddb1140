"""What every engine provides, and the capabilities the core asks about instead of engine names."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    import pyarrow as pa

    from autoflux.workspace import Workspace


class EngineSettings(BaseModel):
    """The ``engine`` section of ``autoflux.yml``; each engine adds its own keys."""

    model_config = ConfigDict(extra="forbid")
    type: str


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
    - ``INGEST_EXECUTOR``: ``"arrow"`` when AutoFlux itself reads files and writes Delta, or the
      name of an engine-native executor.
    """

    SOURCES_READ_LAKE: ClassVar[bool] = False
    INGEST_EXECUTOR: ClassVar[str] = "arrow"

    def __init__(self, settings: EngineSettings, workspace: Workspace) -> None:
        self.settings = settings
        self.workspace = workspace

    @abstractmethod
    def dbt_output(self) -> dict[str, Any]:
        """This engine's entry under ``outputs`` in the generated profiles.yml."""

    def dbt_env(self) -> dict[str, str]:
        """Environment variables the generated dbt files read when AutoFlux runs dbt."""
        return {}

    def after_dbt(self) -> None:
        """Called after each dbt command AutoFlux runs in this process (release what dbt holds)."""

    def publish_raw(self, tables: Iterable[str]) -> None:
        """Make freshly ingested raw tables visible to the engine's catalog (nothing by default)."""

    @abstractmethod
    def relations(self, schemas: Iterable[str]) -> list[Relation]:
        """Tables and views in ``schemas``, with row counts."""

    @abstractmethod
    def read_arrow(self, schema: str, table: str) -> pa.Table:
        """A whole table as Arrow; raises TableNotFoundError when it does not exist."""

    def close(self) -> None:
        """Release connections."""
