"""`autoflux tables --history`, `autoflux optimize` and `autoflux vacuum` on tables loaded in each write mode."""

from __future__ import annotations

import json

import pytest

from autoflux.lake import RAW
from autoflux.workspace import Workspace


@pytest.fixture
def loaded(workspace, tmp_path, cli, configure):
    """raw.events appended four times (the third adds a column), raw.people merged twice."""
    configure(workspace, {"ingest": {"tables": {"events": {"mode": "append"}, "people": {"mode": "merge", "key": ["id"]}}}})
    data = tmp_path / "data"
    data.mkdir()
    contents = [
        ("id,kind\n1,a\n", "id,name\n1,ann\n2,bob\n"),
        ("id,kind\n2,b\n", "id,name\n2,BOB\n3,cy\n"),
        ("id,kind,extra\n3,c,x\n", None),
        ("id,kind,extra\n4,d,y\n", None),
    ]
    for events, people in contents:
        (data / "events.csv").write_text(events)
        if people:
            (data / "people.csv").write_text(people)
        result = cli("ingest", str(data), cwd=workspace)
        assert result.exit_code == 0, result.output
    return workspace, data


def test_history_shows_loads_modes_rows_and_schema_changes(loaded, cli):
    ws, _ = loaded
    result = cli("tables", "--history", "events", "--json", cwd=ws)
    assert result.exit_code == 0, result.output
    versions = json.loads(result.stdout)
    assert [(v["version"], v["operation"], v["mode"], v["rows_added"]) for v in versions] == [
        (0, "CREATE TABLE", "append", 1),
        (1, "WRITE", "append", 1),
        (2, "WRITE", "append", 3),
        (3, "WRITE", "append", 1),
    ]
    assert versions[0]["schema_changes"][0].startswith("created: id, kind, _load_id")
    assert versions[1]["schema_changes"] == []
    assert versions[2]["schema_changes"] == ["+ extra string"]  # the table was rewritten with the new column
    people = json.loads(cli("tables", "--history", "raw.people", "--json", cwd=ws).stdout)
    assert [(v["operation"], v["mode"], v["rows_added"], v["rows_updated"]) for v in people] == [
        ("CREATE TABLE", "merge", 2, None),
        ("MERGE", "merge", 1, 1),
    ]
    text = cli("tables", "--history", "people", cwd=ws).stdout
    assert "MERGE" in text and "merge" in text


def test_optimize_compacts_and_a_rerun_still_finds_the_files_unchanged(loaded, cli):
    ws, data = loaded
    lake = Workspace.open(ws).lake
    rows = lake.open(RAW, "events").to_pyarrow_table().sort_by("id")
    assert len(lake.open(RAW, "events").file_uris()) == 2  # the third load rewrote the table, the fourth appended
    result = cli("optimize", "events", "--json", cwd=ws)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [{"table": "raw.events", "files_added": 1, "files_removed": 2}]
    events = Workspace.open(ws).lake.open(RAW, "events")
    assert (events.version(), len(events.file_uris())) == (4, 1)
    assert events.to_pyarrow_table().sort_by("id").equals(rows)
    again = cli("ingest", str(data), "--json", cwd=ws)
    assert {f["table"]: f["outcome"] for f in json.loads(again.stdout)["files"]} == {"events": "unchanged", "people": "unchanged"}


def test_vacuum_deletes_only_what_no_kept_version_needs(loaded, cli):
    ws, _ = loaded
    assert cli("optimize", cwd=ws).exit_code == 0
    kept = json.loads(cli("vacuum", "--json", cwd=ws).stdout)
    assert {r["table"]: r["files"] for r in kept} == {"raw.events": 0, "raw.people": 0, "_autoflux.load_log": 0}
    result = cli("vacuum", "events", "--retention-hours", "0", "--json", cwd=ws)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["files"] >= 2
    events = Workspace.open(ws).lake.open(RAW, "events")
    assert events.to_pyarrow_table().num_rows == 4
    assert sorted(p.name for p in (ws / "lake" / "raw" / "events").glob("*.parquet")) == sorted(
        u.rsplit("/", 1)[-1] for u in events.file_uris()
    )
