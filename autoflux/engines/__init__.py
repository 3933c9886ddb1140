"""Engines: a SQL engine and a catalog over the lake, one module per engine.

Each engine module defines ``Engine``; its settings (its part of ``autoflux.yml``, keyed by
``type``) live in :mod:`autoflux.engine_settings`, which imports no engine. Modules are imported
only when their engine is used, so heavy clients (pyspark, ADBC) stay optional extras.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from autoflux.engines.base import Engine
    from autoflux.workspace import Workspace

ENGINES: dict[str, str] = {
    "duckdb": "autoflux.engines.duckdb",
    "postgres": "autoflux.engines.postgres",
    "spark": "autoflux.engines.spark",
}


def create_engine(workspace: Workspace) -> Engine:
    """The engine ``autoflux.yml`` names, bound to ``workspace``."""
    settings = workspace.config.engine
    return importlib.import_module(ENGINES[settings.type]).Engine(settings, workspace)


__all__ = ["ENGINES", "create_engine"]
