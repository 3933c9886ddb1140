"""Helpers for the ingest unit tests: a data folder, ingest through the library, read raw tables."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from ingesting import run_ingest

from autoflux.ingest import IngestReport
from autoflux.lake import RAW
from autoflux.workspace import Workspace

SMALL_BLOCK = 1 << 16  # the smallest ingest.csv.block_size allowed


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


@pytest.fixture
def ingest(workspace: Path) -> Callable[..., IngestReport]:
    """``ingest(path, …, force=False)``: ingest into the workspace, reading its config afresh."""

    def run(*paths: Path, force: bool = False) -> IngestReport:
        return run_ingest(Workspace.open(workspace), list(paths), force=force)

    return run


@pytest.fixture
def raw(workspace: Path) -> Callable[..., pa.Table]:
    """``raw("train")``: the raw Delta table as Arrow (``version=`` for an older one)."""

    def read(table: str, version: int | None = None) -> pa.Table:
        return Workspace.open(workspace).lake.open(RAW, table, version=version).to_pyarrow_table()

    return read


@pytest.fixture
def small_blocks(workspace: Path, configure) -> int:
    """Set ingest.csv.block_size to its minimum, so a 20k-row file spans many blocks."""
    configure(workspace, {"ingest": {"csv": {"block_size": SMALL_BLOCK}}})
    return SMALL_BLOCK


def only(report: IngestReport):
    """The single file result of ``report``, asserting there is exactly one."""
    assert len(report.files) == 1, report.files
    return report.files[0]


@pytest.fixture
def one() -> Callable[[IngestReport], object]:
    return only
