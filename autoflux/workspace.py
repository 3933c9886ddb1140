"""A workspace: a folder holding ``autoflux.yml``, the dbt project, the lake and AutoFlux's state."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from autoflux.exceptions import WorkspaceError
from autoflux.lake import Lake

if TYPE_CHECKING:
    from autoflux.config import Config

STATE_DIR = ".autoflux"


@dataclass
class Workspace:
    """Paths and config of one workspace; ``Workspace.open(path)`` reads ``autoflux.yml``."""

    root: Path
    config: Config

    @classmethod
    def open(cls, path: str | Path = ".", *, require_config: bool = False) -> Workspace:
        from autoflux.config import CONFIG_FILE, load_config

        root = Path(path).expanduser().resolve()
        config_path = root / CONFIG_FILE
        if require_config and not config_path.exists():
            raise WorkspaceError(
                f"{root} is not an AutoFlux workspace (no {CONFIG_FILE})",
                hint=f"run `autoflux init {path}` or pass --workspace",
            )
        return cls(root, load_config(config_path))

    @property
    def config_path(self) -> Path:
        from autoflux.config import CONFIG_FILE

        return self.root / CONFIG_FILE

    @cached_property
    def lake(self) -> Lake:
        return Lake.at(self.config.lake, base=self.root)

    @property
    def dbt_dir(self) -> Path:
        return (self.root / self.config.dbt.project_dir).resolve()

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def cache_dir(self) -> Path:
        return self.state_dir / "cache"

    def resolve(self, path: str) -> Path:
        """A path from config, relative to the workspace root unless absolute."""
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else self.root / candidate
