"""The corpus, staged once per test session, and its ingest on the embedded engine."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from corpus_files import CorpusFile, find_corpus, stage


@dataclass
class Ingested:
    """The corpus ingested into one workspace: each file's tables (sheet → table) and outcomes."""

    workspace: Path
    files: list[CorpusFile]
    tables: dict[int, dict[str | None, str]] = field(default_factory=dict)  # file index → sheet → table
    outcomes: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # table → (outcome, message)
    seconds: float = 0.0


@pytest.fixture(scope="session")
def corpus() -> list[CorpusFile]:
    return find_corpus()


@pytest.fixture(scope="session")
def staged(corpus, tmp_path_factory) -> dict[str, Path]:
    """The corpus copied to one folder per package, each file under a unique name."""
    return stage(corpus, tmp_path_factory.mktemp("corpus"))


def ingest_corpus(workspace: Path, files: list[CorpusFile], folders: dict[str, Path]) -> Ingested:
    """One ``ingest`` per package folder (the fewest that keep one package's trouble apart)."""
    import autoflux
    from autoflux.ingest.discover import discover

    result = Ingested(workspace, files)
    by_name = {(f.package, f.staged_name): f for f in files}
    started = time.perf_counter()
    pipeline = autoflux.Pipeline.open(workspace)
    try:
        for package, folder in folders.items():
            found, _ = discover(folder)
            for data_file in found:
                corpus_file = by_name[(package, data_file.path.name)]
                result.tables.setdefault(corpus_file.index, {})[data_file.sheet] = data_file.table
            report = pipeline.ingest([str(folder)])
            for file_result in report.files:
                result.outcomes[file_result.table] = (file_result.outcome, file_result.message)
    finally:
        pipeline.close()
    result.seconds = time.perf_counter() - started
    return result


@pytest.fixture(scope="session")
def embedded(corpus, staged, tmp_path_factory) -> Ingested:
    """The whole corpus ingested on the embedded engine (default config)."""
    import autoflux

    workspace = autoflux.init(tmp_path_factory.mktemp("embedded") / "ws")
    return ingest_corpus(workspace, corpus, staged)
