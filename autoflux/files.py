"""Files written whole or not at all: a reader (or a killed process) never sees one half written."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; it replaces ``path`` when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return path


def copy_file(source: Path, destination: Path) -> Path:
    """Copy ``source`` to ``destination`` atomically; returns ``destination``."""
    with atomic_path(destination) as temporary:
        shutil.copyfile(source, temporary)
    return destination


def user_cache_dir() -> Path:
    """What AutoFlux keeps for this user across workspaces: ``$XDG_CACHE_HOME/autoflux`` (``~/.cache/autoflux``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "autoflux"
