"""What a run finishes for a killed one: loads the log lacks are logged, staged bad rows published or dropped.

The kills themselves are in tests/e2e/test_crash_and_concurrency.py; here the states they leave
are made directly (a load whose log update never happened, a staged file of a load that never
committed), so each rule is checked alone.
"""

from __future__ import annotations

import pytest

import autoflux.ingest
from autoflux.ingest import quarantine
from autoflux.ingest.readers import BadRow
from autoflux.ingest.state import RECOVERED, read_log
from autoflux.lake import RAW
from autoflux.workspace import Workspace


def lake(workspace):
    return Workspace.open(workspace).lake


def test_loads_a_killed_run_did_not_log_are_logged_by_the_next(workspace, data_dir, ingest, monkeypatch):
    path = data_dir / "t.csv"
    with monkeypatch.context() as patched:
        patched.setattr(autoflux.ingest, "append_log", lambda lake, entries: None)  # killed before each log update
        path.write_text("a\n1\n2\n")
        first = ingest(data_dir).load_id
        path.write_text("a\n3\n")
        second = ingest(data_dir).load_id
    assert read_log(lake(workspace)).num_rows == 0
    report = ingest(data_dir)
    assert [(e.load_id, e.version) for e in report.recovered] == [(first, 0), (second, 1)]
    log = {(e["load_id"], e["outcome"]): e for e in read_log(lake(workspace)).to_pylist()}
    assert (log[(first, "loaded")]["rows"], log[(first, "loaded")]["message"]) == (2, RECOVERED)
    assert (log[(second, "loaded")]["rows"], log[(second, "loaded")]["version"]) == (1, 1)
    assert log[(report.load_id, "unchanged")]["version"] == 1
    assert ingest(data_dir).recovered == []


@pytest.mark.parametrize("committed", [True, False])
def test_staged_bad_rows_are_published_once_for_committed_loads_and_dropped_for_others(workspace, data_dir, ingest, committed):
    (data_dir / "t.csv").write_text("a\n1\n")
    report = ingest(data_dir)
    load_id = report.load_id if committed else "20240101T000000Z-deadbeef"
    staging = quarantine.staging_dir(workspace / ".autoflux")
    rows = [BadRow("a row has 2 fields where the header has 1", "1,2", 3)]
    quarantine.stage(staging, load_id, "t", "t.csv", rows)
    ingest(data_dir)
    quarantine.stage(staging, load_id, "t", "t.csv", rows)  # staged again: a kill after publishing, before the cleanup
    ingest(data_dir)
    published = quarantine.read_quarantine(lake(workspace)).to_pylist()
    assert [(r["load_id"], r["line"], r["raw"]) for r in published] == ([(load_id, 3, "1,2")] if committed else [])
    assert not any(staging.iterdir())
    assert lake(workspace).open(RAW, "t").version() == 0
