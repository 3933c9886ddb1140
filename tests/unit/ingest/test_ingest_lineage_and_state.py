"""Lineage columns, original names in metadata, re-runs that do no work, and the load log."""

from __future__ import annotations

import datetime as dt
import os

import pyarrow as pa
import pytest

from autoflux.engines import create_engine
from autoflux.ingest.schema import LINEAGE_COLUMNS, SOURCE_NAME_KEY
from autoflux.ingest.state import read_log
from autoflux.lake import RAW
from autoflux.workspace import Workspace


def lake(workspace):
    return Workspace.open(workspace).lake


def test_lineage_columns_have_the_right_values(workspace, data_dir, ingest, raw):
    (data_dir / "sub").mkdir()
    (data_dir / "sub" / "Stores.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    before = dt.datetime.now(dt.UTC)
    report = ingest(data_dir)
    after = dt.datetime.now(dt.UTC)
    table = raw("sub_stores")
    assert table.column_names[-3:] == list(LINEAGE_COLUMNS)
    assert table.schema.field("_load_id").type == pa.string()
    assert table.schema.field("_source_file").type == pa.string()
    assert table.schema.field("_ingested_at").type == pa.timestamp("us", tz="UTC")
    assert set(table["_load_id"].to_pylist()) == {report.load_id}
    assert set(table["_source_file"].to_pylist()) == {"sub/Stores.csv"}
    (at,) = set(table["_ingested_at"].to_pylist())
    assert before - dt.timedelta(seconds=1) <= at <= after + dt.timedelta(seconds=1)
    assert table["_load_id"].null_count == 0


def test_each_load_has_its_own_load_id(workspace, data_dir, ingest, raw):
    path = data_dir / "t.csv"
    path.write_text("a\n1\n")
    first = ingest(data_dir).load_id
    path.write_text("a\n2\n")
    second = ingest(data_dir).load_id
    assert first != second
    assert raw("t")["_load_id"].to_pylist() == [second]


def test_original_names_are_kept_in_field_metadata(workspace, data_dir, ingest):
    (data_dir / "t.csv").write_text("Annual Income ($),PassengerId,,PassengerId\n1,2,3,4\n")
    ingest(data_dir)
    schema = pa.schema(lake(workspace).open(RAW, "t").schema().to_arrow())  # as the Delta log stores it
    by_name = {f.name: (f.metadata or {}) for f in schema}
    assert [n for n in by_name if n not in LINEAGE_COLUMNS] == ["annual_income", "passenger_id", "column_3", "passenger_id_2"]
    key = SOURCE_NAME_KEY.encode()
    assert by_name["annual_income"][key] == b"Annual Income ($)"
    assert by_name["passenger_id"][key] == b"PassengerId"
    assert by_name["column_3"][key] == b""
    assert by_name["passenger_id_2"][key] == b"PassengerId"
    store = create_engine(Workspace.open(workspace)).raw_store()
    assert store.schema("t").equals(schema, check_metadata=True) and store.table("t").schema.equals(schema, check_metadata=True)


def test_unchanged_rerun_does_no_work(workspace, data_dir, ingest, one):
    (data_dir / "t.csv").write_text("a,b\n1,2\n")
    first = one(ingest(data_dir))
    assert (first.outcome, first.version) == ("loaded", 0)
    table = lake(workspace).open(RAW, "t")
    history = len(table.history())
    second = one(ingest(data_dir))
    assert second.outcome == "unchanged"
    assert second.version == 0
    assert second.rows is None
    table = lake(workspace).open(RAW, "t")
    assert table.version() == 0
    assert len(table.history()) == history


def test_touching_a_file_without_changing_it_does_no_work(workspace, data_dir, ingest, one):
    path = data_dir / "t.csv"
    path.write_text("a\n1\n")
    ingest(data_dir)
    os.utime(path, (0, 0))
    assert one(ingest(data_dir)).outcome == "unchanged"


def test_force_reloads_an_unchanged_file(workspace, data_dir, ingest, one):
    (data_dir / "t.csv").write_text("a\n1\n")
    ingest(data_dir)
    result = one(ingest(data_dir, force=True))
    assert (result.outcome, result.version) == ("loaded", 1)


def test_changed_file_gives_exactly_one_new_version_with_the_new_content(workspace, data_dir, ingest, raw, one):
    path = data_dir / "t.csv"
    path.write_text("id,v\n1,old\n2,old\n3,old\n")
    ingest(data_dir)
    path.write_text("id,v,extra\n10,new,x\n20,new,y\n")
    result = one(ingest(data_dir))
    assert (result.outcome, result.version, result.rows) == ("loaded", 1, 2)
    assert lake(workspace).open(RAW, "t").version() == 1
    table = raw("t")
    assert table.num_rows == 2
    assert sorted(table["id"].to_pylist()) == [10, 20]
    assert set(table["v"].to_pylist()) == {"new"}
    assert "extra" in table.column_names
    old = raw("t", version=0)
    assert (old.num_rows, set(old["v"].to_pylist())) == (3, {"old"})
    assert "extra" not in old.column_names


def test_changed_settings_reload_only_the_tables_they_shape(workspace, configure, data_dir, ingest):
    (data_dir / "a.csv").write_text("x\n1\n")
    (data_dir / "b.csv").write_text("x\n1\n")
    ingest(data_dir)
    configure(workspace, {"ingest": {"types": {"a": {"x": "string"}}}})
    outcomes = {f.table: f.outcome for f in ingest(data_dir).files}
    assert outcomes == {"a": "loaded", "b": "unchanged"}


def test_only_changed_files_are_reloaded(workspace, data_dir, ingest):
    (data_dir / "a.csv").write_text("x\n1\n")
    (data_dir / "b.csv").write_text("x\n1\n")
    ingest(data_dir)
    (data_dir / "b.csv").write_text("x\n2\n")
    report = ingest(data_dir)
    assert {f.table: (f.outcome, f.version) for f in report.files} == {"a": ("unchanged", 0), "b": ("loaded", 1)}


def test_the_commit_records_load_id_fingerprint_and_source(workspace, data_dir, ingest, one):
    (data_dir / "t.csv").write_text("x\n1\n")
    report = ingest(data_dir)
    last = lake(workspace).open(RAW, "t").history(1)[0]
    assert last["autoflux.load_id"] == report.load_id
    assert last["autoflux.source_file"] == "t.csv"
    assert last["autoflux.fingerprint"] == one(report).fingerprint
    assert len(last["autoflux.fingerprint"]) == 64


def test_load_log_records_each_file(workspace, data_dir, ingest):
    (data_dir / "good.csv").write_text("x\n1\n2\n")
    (data_dir / "bad.csv").write_text("")
    (data_dir / "readme.txt").write_text("not data")
    first = ingest(data_dir)
    second = ingest(data_dir)
    log = read_log(lake(workspace)).to_pylist()
    assert len(log) == 4  # two files, twice; the skipped .txt is not a load
    entries = {(e["load_id"], e["table"]): e for e in log}
    good = entries[(first.load_id, "good")]
    assert (good["outcome"], good["rows"], good["version"]) == ("loaded", 2, 0)
    assert good["bytes"] == (data_dir / "good.csv").stat().st_size
    assert good["source_file"].endswith("good.csv")
    assert good["seconds"] >= 0
    assert good["fingerprint"] and len(good["fingerprint"]) == 64
    assert good["at"] is not None
    bad = entries[(first.load_id, "bad")]
    assert bad["outcome"] == "failed"
    assert "the file is empty" in bad["message"]
    again = entries[(second.load_id, "good")]
    assert (again["outcome"], again["rows"], again["version"]) == ("unchanged", None, 0)
    assert again["fingerprint"] == good["fingerprint"]


def test_a_failed_reload_keeps_the_stored_table(workspace, data_dir, ingest, raw, one):
    path = data_dir / "t.csv"
    path.write_text("a,b\n1,2\n3,4\n")
    ingest(data_dir)
    path.write_text("a,b\n5,6\n7,8,9\n")
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert lake(workspace).open(RAW, "t").version() == 0
    assert sorted(raw("t")["a"].to_pylist()) == [1, 3]


@pytest.mark.parametrize("rows", [20_000])
def test_a_late_failure_in_a_big_file_keeps_the_stored_table(workspace, data_dir, small_blocks, ingest, raw, one, rows):
    path = data_dir / "t.csv"
    path.write_text("a,b\n1,2\n")
    ingest(data_dir)
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(rows)) + "1,2,3\n")
    result = one(ingest(data_dir))
    assert result.outcome == "failed"
    assert f"line {rows + 2}" in result.message
    assert lake(workspace).open(RAW, "t").version() == 0
    assert raw("t").num_rows == 1


def test_an_appended_table_reads_as_delta_reads_it_in_a_folder_delta_rs_percent_encodes(tmp_path):
    """``Lake.read_appended`` reads the files itself: the same rows, order and types as delta-rs's own reader,
    a column added later read as null in older files, in a folder whose name delta-rs gives percent-encoded."""
    from deltalake import DeltaTable, write_deltalake

    from autoflux.lake import SYSTEM, Lake

    lake = Lake(str(tmp_path / "my lake é"))
    uri = lake.table_uri(SYSTEM, "log")
    write_deltalake(uri, pa.table({"a": [1, 2], "b": ["x", None]}))
    added = pa.table({"a": [3], "b": ["y"], "at": pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))})
    write_deltalake(uri, added, mode="append", schema_mode="merge")
    write_deltalake(uri, pa.table({"a": [4], "b": ["z"], "at": added["at"]}), mode="append")
    for columns in (None, ["at", "a"]):
        read = lake.read_appended(SYSTEM, "log", columns)
        assert read.equals(DeltaTable(uri).to_pyarrow_table(columns=columns))
    assert sorted(lake.read_appended(SYSTEM, "log", ["a", "at"]).to_pylist(), key=lambda r: r["a"]) == [
        {"a": 1, "at": None},
        {"a": 2, "at": None},
        {"a": 3, "at": added["at"][0].as_py()},
        {"a": 4, "at": added["at"][0].as_py()},
    ]


def test_the_load_log_keeps_every_value_as_logged(tmp_path):
    """The log is written from JSON lines (no pandas import): each value comes back as it was, byte for byte."""
    from autoflux.ingest.state import LogEntry, append_log
    from autoflux.lake import Lake

    lake = Lake(str(tmp_path / "lake"))
    at = dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=dt.UTC)
    entries = [
        LogEntry("id-1", "t", 'a "b" \\ c\n\té😀.csv', "loaded", 2**62, 0, 0.1 + 0.2, 0, "f" * 64, "line 1\r\nline 2\u2028", at, 3),
        LogEntry("id-1", "u", "/x", "failed", None, 5, 1e-300, None, None, None, dt.datetime(1999, 1, 1), None),
    ]
    append_log(lake, entries)
    logged = read_log(lake).to_pylist()
    assert logged[0] == vars(entries[0])
    assert logged[1] == vars(entries[1]) | {"at": dt.datetime(1999, 1, 1, tzinfo=dt.UTC)}  # a naive time is UTC
