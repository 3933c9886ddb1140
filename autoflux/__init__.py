"""AutoFlux: raw data files → Delta Lake ``raw`` tables → dbt → ML-ready training data.

>>> import autoflux
>>> autoflux.run("my_ws", ["data/"])          # ingest + transform + hand-off
>>> data = autoflux.load_training_data("my_ws")
>>> data.train, data.test, data.target, data.id
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from autoflux.ingest import IngestReport
    from autoflux.pipeline import RunSummary
    from autoflux.transform.dbt import TransformReport


def init(path: str | Path) -> Path:
    """Create a workspace (``autoflux.yml`` and a dbt project) at ``path``."""
    from autoflux.transform.scaffold import init_workspace

    return init_workspace(Path(path))


def _pipeline(workspace: str | Path):
    from autoflux.pipeline import Pipeline
    from autoflux.workspace import Workspace

    return Pipeline(Workspace.open(workspace, require_config=True))


def ingest(workspace: str | Path = ".", sources: Sequence[str | Path] = (), *, refresh: bool = False, force: bool = False) -> IngestReport:
    """Ingest ``sources`` (default: the config's) into the workspace's raw Delta tables."""
    return _pipeline(workspace).ingest([str(s) for s in sources], refresh=refresh, force=force)


def transform(workspace: str | Path = ".", *, select: str | None = None, test: bool | None = None) -> TransformReport:
    """Run the workspace's dbt project on its engine."""
    return _pipeline(workspace).transform(select=select, test=test)


def run(workspace: str | Path = ".", sources: Sequence[str | Path] = (), *, refresh: bool = False, force: bool = False) -> RunSummary:
    """Ingest, transform and prepare the hand-off in one go."""
    return _pipeline(workspace).run([str(s) for s in sources], refresh=refresh, force=force)


def load_training_data(workspace: str | Path = ".", *, format: str | None = None, table: str | None = None):
    """Train/test frames of the training mart; see :func:`autoflux.handoff.load_training_data`."""
    from autoflux.handoff import load_training_data as load

    return load(workspace, format=format, table=table)  # type: ignore[arg-type]


__all__ = ["__version__", "init", "ingest", "load_training_data", "run", "transform"]
