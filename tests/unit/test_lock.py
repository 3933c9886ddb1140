"""The workspace lock names its holder, even one that has only just taken it."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time

import pytest

from autoflux.lock import WorkspaceLockedError, workspace_lock


def holder(pid: int) -> str:
    return json.dumps({"pid": pid, "host": socket.gethostname(), "command": "ingest", "since": "2026-01-01T00:00:00+00:00"})


@pytest.fixture
def held(tmp_path):
    """The lock file, flock-held by this test as another process would hold it, with no name written yet."""
    path = tmp_path / "lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield path


def test_a_holder_that_names_itself_just_after_locking_is_named(held, tmp_path):
    threading.Timer(0.3, lambda: held.write_text(holder(os.getpid()))).start()
    with pytest.raises(WorkspaceLockedError) as caught, workspace_lock(tmp_path, command="run"):
        pass
    assert f"locked by process {os.getpid()} on {socket.gethostname()} running `autoflux ingest`" in str(caught.value)


def test_a_name_left_by_a_dead_process_is_not_taken_for_the_holder(held, tmp_path):
    held.write_text(holder(2**22 + 12345))  # above Linux's default pid_max: no such process
    started = time.monotonic()
    with pytest.raises(WorkspaceLockedError, match="locked by another process"), workspace_lock(tmp_path, command="run"):
        pass
    assert time.monotonic() - started >= 0.9
