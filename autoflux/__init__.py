"""AutoFlux: raw data files → Delta Lake ``raw`` tables → dbt → ML-ready training data.

>>> import autoflux
>>> autoflux.run("my_ws", ["data/"])          # ingest + transform + hand-off
>>> data = autoflux.load_training_data("my_ws")
>>> data.train, data.test, data.target, data.id
>>> autoflux.Pipeline.open("my_ws").ingest(["more/"])   # one stage at a time

The stages are methods of :class:`Pipeline` (``autoflux.ingest`` and ``autoflux.transform`` are
the stage packages).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autoflux.version import __version__

if TYPE_CHECKING:
    from autoflux.pipeline import Pipeline, RunSummary


def init(path: str | Path) -> Path:
    """Create a workspace (``autoflux.yml`` and a dbt project) at ``path``."""
    from autoflux.pipeline import Pipeline

    return Pipeline.init(path)


def run(
    workspace: str | Path = ".", sources: Sequence[str | Path] = (), *, refresh: bool = False, force: bool = False, report: bool = True
) -> RunSummary:
    """Ingest, transform and prepare the hand-off in one go, then write the HTML report (unless ``report=False``).

    Unchanged files are not reloaded, and dbt does not run when neither the raw tables nor the dbt
    project changed since its last successful build; ``force=True`` reloads and rebuilds.
    """
    from autoflux.pipeline import Pipeline

    with Pipeline.open(workspace) as pipeline:
        return pipeline.run([str(s) for s in sources], refresh=refresh, force=force, report=report)


def load_training_data(
    workspace: str | Path = ".", *, format: str | None = None, table: str | None = None, manifest: str | Path | None = None
):
    """Train/test frames of the training mart (or rebuilt as ``manifest`` records them); see
    :func:`autoflux.handoff.training_data`."""
    from autoflux.pipeline import Pipeline

    with Pipeline.open(workspace) as pipeline:
        return pipeline.training_data(format=format, table=table, manifest=manifest)  # type: ignore[arg-type]


def __getattr__(name: str):
    if name == "Pipeline":
        from autoflux.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'autoflux' has no attribute {name!r}")


__all__ = ["Pipeline", "__version__", "init", "load_training_data", "run"]
