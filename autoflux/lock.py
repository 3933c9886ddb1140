"""One writer per workspace: a lock file naming its holder, taken over when the holder is dead."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from autoflux.exceptions import AutoFluxError


class WorkspaceLockedError(AutoFluxError):
    """Another AutoFlux process is writing to this workspace."""

    retryable = True


def _holder(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, KeyError, ValueError, TypeError):
        return True
    return True


@contextlib.contextmanager
def workspace_lock(state_dir: Path, *, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold ``state_dir/lock`` for the block; wait up to ``wait`` seconds for a live holder.

    A lock left by a process that no longer runs (on this host) is taken over.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": datetime.now(UTC).isoformat()}
    deadline = time.monotonic() + wait
    while True:
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is not None and not _alive(holder):
                if _holder(path) == holder:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                continue
            if time.monotonic() < deadline:
                time.sleep(0.2)
                continue
            who = f"process {holder['pid']} on {holder['host']} running `autoflux {holder['command']}` since {holder['since']}" if holder else "another process"
            raise WorkspaceLockedError(
                f"the workspace is locked by {who}",
                path=path,
                hint="wait for it to finish (or pass --wait SECONDS); delete the lock file only if that process is gone",
            ) from None
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(me, handle)
        break
    try:
        yield
    finally:
        if (_holder(path) or {}).get("pid") == me["pid"]:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
