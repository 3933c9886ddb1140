"""One writer per workspace: an exclusive lock on ``.autoflux/lock``, which names its holder
(and :func:`folder_lock`, a plain one for shorter critical sections, such as one download).

The lock is the operating system's (``flock``) on the file, so it ends with its process however
that process ends: a lock file left by a process that was killed, or written by hand with a dead
pid, is simply taken by the next run. The file's content (pid, host, command, since) is only there
to name the holder in the message a second run prints.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from autoflux.exceptions import AutoFluxError

NAMING_GRACE = 1.0  # seconds a refused run waits for the holder to have written its name


class WorkspaceLockedError(AutoFluxError):
    """Another AutoFlux process is writing to this workspace."""

    retryable = True


def _holder(path: Path) -> dict | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict) or not {"pid", "host", "command", "since"} <= holder.keys():
        return None
    return holder if holder["host"] != socket.gethostname() or _alive(holder["pid"]) else None  # else a killed holder's


def _alive(pid: object) -> bool:
    try:
        os.kill(int(pid), 0)  # type: ignore[call-overload]
    except (ProcessLookupError, ValueError, TypeError):
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def workspace_lock(state_dir: Path, *, command: str, wait: float = 0.0) -> Iterator[None]:
    """Hold ``state_dir/lock`` for the block; wait up to ``wait`` seconds for a live holder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "lock"
    me = {"pid": os.getpid(), "host": socket.gethostname(), "command": command, "since": datetime.now(UTC).isoformat()}
    started = time.monotonic()
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                waited = time.monotonic() - started
                if waited < wait or (holder is None and waited < NAMING_GRACE):  # a new holder writes its name just after locking
                    time.sleep(0.05)
                    continue
                who = (
                    f"process {holder['pid']} on {holder['host']} running `autoflux {holder['command']}` since {holder['since']}"
                    if holder
                    else "another process"
                )
                raise WorkspaceLockedError(
                    f"the workspace is locked by {who}",
                    path=path,
                    hint="wait for it to finish (or pass --wait SECONDS); the lock ends with that process",
                ) from None
        _rewrite(handle, json.dumps(me))
        try:
            yield
        finally:
            _rewrite(handle, "")


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (created if needed) for the block, waiting while another
    process holds it. The lock is on the folder itself, so it leaves no file behind."""
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _rewrite(handle, text: str) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(text)
    handle.flush()
