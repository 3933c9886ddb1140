"""Ingest in tests as `autoflux ingest` does it: with the raw store of the workspace's engine."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from autoflux.engines import create_engine
from autoflux.ingest import IngestReport, Planned, ingest_paths, plan_ingest
from autoflux.workspace import Workspace


def run_ingest(workspace: Workspace, roots: Sequence[Path], **options: Any) -> IngestReport:
    """:func:`autoflux.ingest.ingest_paths` into ``workspace`` with its engine's raw store."""
    engine = create_engine(workspace)
    try:
        return ingest_paths(workspace, roots, store=engine.raw_store(), **options)
    finally:
        engine.close()


def run_plan(workspace: Workspace, roots: Sequence[Path], **options: Any) -> list[Planned]:
    """:func:`autoflux.ingest.plan_ingest` of ``workspace`` with its engine's raw store."""
    engine = create_engine(workspace)
    try:
        return plan_ingest(workspace, roots, store=engine.raw_store(), **options)
    finally:
        engine.close()
