"""Engines: a SQL engine and a catalog over the lake, one module per engine.

Each engine module defines ``Settings`` (its part of ``autoflux.yml``, keyed by ``type``) and
``Engine``. Modules are imported only when their engine is used, so heavy clients (pyspark,
psycopg) stay optional extras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from autoflux.engines.base import EngineSettings

if TYPE_CHECKING:
    from autoflux.engines.base import Engine
    from autoflux.workspace import Workspace

ENGINES: dict[str, str] = {
    "duckdb": "autoflux.engines.duckdb",
    "postgres": "autoflux.engines.postgres",
    "spark": "autoflux.engines.spark",
}


def engine_settings_class(kind: str) -> type[EngineSettings]:
    return importlib.import_module(ENGINES[kind]).Settings


def create_engine(workspace: Workspace) -> Engine:
    """The engine ``autoflux.yml`` names, bound to ``workspace``."""
    settings = workspace.config.engine
    return importlib.import_module(ENGINES[settings.type]).Engine(settings, workspace)


__all__ = ["ENGINES", "EngineSettings", "create_engine", "engine_settings_class"]
