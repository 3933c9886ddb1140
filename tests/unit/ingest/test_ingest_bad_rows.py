"""Bad rows: rows that cannot be parsed go to _autoflux.quarantine within ingest.bad_rows, else the file fails.

The limits on every engine alike are in ``tests/integration/test_ingest_policies.py``; here the
embedded engine's line numbering, fractions and big files.
"""

from __future__ import annotations

import pytest

from autoflux.ingest.quarantine import read_quarantine, staging_dir
from autoflux.ingest.state import read_log
from autoflux.lake import RAW
from autoflux.workspace import Workspace


def lake(workspace):
    return Workspace.open(workspace).lake


def quarantined(workspace) -> list[dict]:
    rows = read_quarantine(lake(workspace)).to_pylist()
    return sorted(({k: r[k] for k in ("table", "file", "line", "reason", "raw")} for r in rows), key=lambda r: r["line"])


@pytest.fixture
def allow(workspace, configure):
    def set_limits(**limits):
        configure(workspace, {"ingest": {"bad_rows": limits}})

    return set_limits


def test_bad_rows_are_quarantined_with_line_reason_and_text(workspace, data_dir, ingest, one, allow):
    allow(max_count=5)
    # a quoted value over two lines and \r\n / \r endings: lines are the file's, not row numbers
    (data_dir / "t.csv").write_bytes(b'id,name\r\n1,"two\nlines"\r\n2,b,extra\r3,c\n4\n5,e\n2,b,extra\n')
    report = ingest(data_dir)
    result = one(report)
    assert (result.outcome, result.rows, result.quarantined, result.rows_read) == ("loaded", 3, 3, 6), result.message
    assert "6 rows read: 3 loaded, 3 that could not be parsed set aside in _autoflux.quarantine" in result.notes
    assert sorted(lake(workspace).open(RAW, "t").to_pyarrow_table()["id"].to_pylist()) == [1, 3, 5]
    assert quarantined(workspace) == [
        {"table": "t", "file": "t.csv", "line": 4, "reason": "a row has 3 fields where the header has 2", "raw": "2,b,extra"},
        {"table": "t", "file": "t.csv", "line": 6, "reason": "a row has 1 fields where the header has 2", "raw": "4"},
        {"table": "t", "file": "t.csv", "line": 8, "reason": "a row has 3 fields where the header has 2", "raw": "2,b,extra"},
    ]
    assert set(read_quarantine(lake(workspace))["load_id"].to_pylist()) == {report.load_id}
    (entry,) = read_log(lake(workspace)).to_pylist()
    assert (entry["rows"], entry["quarantined"]) == (3, 3)
    assert not list(staging_dir(workspace / ".autoflux").glob("*"))  # nothing left staged


def test_an_unchanged_file_does_not_quarantine_its_rows_twice(workspace, data_dir, ingest, one, allow):
    allow(max_count=1)
    (data_dir / "t.csv").write_text("a,b\n1,2\n3\n")
    ingest(data_dir)
    assert one(ingest(data_dir)).outcome == "unchanged"
    assert len(quarantined(workspace)) == 1


@pytest.mark.parametrize(("bad", "outcome"), [(2, "loaded"), (3, "failed")])
def test_max_fraction_counts_against_the_rows_read(workspace, data_dir, ingest, one, allow, bad, outcome):
    allow(max_fraction=0.2)
    rows = [f"{i},{i}" for i in range(10 - bad)] + ["x"] * bad  # 10 rows read
    (data_dir / "t.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    result = one(ingest(data_dir))
    assert result.outcome == outcome, result.message
    assert len(quarantined(workspace)) == (bad if outcome == "loaded" else 0)


def test_bad_rows_late_in_a_big_file_are_located(workspace, data_dir, small_blocks, ingest, one, allow):
    allow(max_count=10)
    rows = [f"{i},{i}" for i in range(30_000)]
    rows[25_000] = "bad"
    (data_dir / "t.csv").write_text("a,b\n" + "\n".join(rows) + "\n")
    result = one(ingest(data_dir))
    assert (result.rows, result.quarantined) == (29_999, 1)
    assert [r["line"] for r in quarantined(workspace)] == [25_002]
