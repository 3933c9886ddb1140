"""Datasets in many files: one raw table from a folder of parts, Hive folders, a series or a config glob,
loaded file by file (new rows added, changed rows replaced, gone rows removed) in one Delta commit per table."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
from ingesting import run_plan

from autoflux.ingest.discover import discover
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.ingest.state import files_manifest, read_log
from autoflux.lake import RAW
from autoflux.maintenance import history
from autoflux.workspace import Workspace


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def rows(table: pa.Table) -> list[tuple]:
    """(data…, _source_file) of every row, sorted."""
    data = [c for c in table.column_names if c not in LINEAGE_COLUMNS]
    return sorted(tuple(r[c] for c in [*data, "_source_file"]) for r in table.to_pylist())


def tables_of(found) -> dict[str, list[str]]:
    mapping: dict[str, list[str]] = {}
    for f in found:
        mapping.setdefault(f.table, []).append(f.relative)
    return mapping


def lake(workspace):
    return Workspace.open(workspace).lake


# ---------------------------------------------------------------------------------- the rules


def test_a_folder_of_parts_a_series_and_hive_folders_each_become_one_table(data_dir):
    for name in ["events/part-00001.csv", "events/part-00002.csv", "events/part-00003.csv"]:
        write(data_dir / name, "a\n1\n")
    for name in ["sales_2019-01.csv", "sales_2019-02.csv", "2019-Oct.csv", "2019-Nov.csv"]:
        write(data_dir / "flat" / name, "a\n1\n")
    write(data_dir / "clicks/year=2019/month=01/x.csv", "a\n1\n")
    write(data_dir / "clicks/year=2020/month=02/y.csv", "a\n1\n")
    write(data_dir / "spark/part-00000-8b6e-4f1a-c000.snappy.parquet", "")
    for name in ["train.csv", "test.csv", "test2.csv", "sample_submission.csv"]:
        write(data_dir / name, "a\n1\n")
    found, _ = discover(data_dir, group=True)
    assert tables_of(found) == {
        "clicks": ["clicks/year=2019/month=01/x.csv", "clicks/year=2020/month=02/y.csv"],
        "events": ["events/part-00001.csv", "events/part-00002.csv", "events/part-00003.csv"],
        "flat": ["flat/2019-Nov.csv", "flat/2019-Oct.csv"],
        "flat_sales": ["flat/sales_2019-01.csv", "flat/sales_2019-02.csv"],
        "sample_submission": ["sample_submission.csv"],
        "spark": ["spark/part-00000-8b6e-4f1a-c000.snappy.parquet"],
        "test": ["test.csv"],
        "test2": ["test2.csv"],
        "train": ["train.csv"],
    }
    clicks = [f for f in found if f.table == "clicks"]
    assert [f.partition for f in clicks] == [(("year", "2019"), ("month", "01")), (("year", "2020"), ("month", "02"))]
    assert all(f.group is None for f in found if f.table in ("train", "test", "test2", "sample_submission"))


def test_a_lone_numbered_file_and_a_series_whose_name_is_taken_stay_tables_of_their_own(data_dir):
    write(data_dir / "sales_2019-01.csv", "a\n1\n")
    for name in ["train.csv", "train_1.csv", "train_2.csv"]:
        write(data_dir / name, "a\n1\n")
    found, _ = discover(data_dir, group=True)
    assert sorted(f.table for f in found) == ["sales_2019_01", "train", "train_1", "train_2"]


def test_numbers_glued_to_a_word_name_kinds_not_parts(data_dir):
    for name in ["seed_utf8.csv", "seed_utf16.csv", "model_v1.csv", "model_v2.csv", "log-1.csv", "log-2.csv"]:
        write(data_dir / name, "a\n1\n")
    found, _ = discover(data_dir, group=True)
    assert tables_of(found) == {
        "log": ["log-1.csv", "log-2.csv"],
        "model_v1": ["model_v1.csv"],
        "model_v2": ["model_v2.csv"],
        "seed_utf16": ["seed_utf16.csv"],
        "seed_utf8": ["seed_utf8.csv"],
    }


def test_group_false_keeps_one_table_per_file_and_config_globs_win(workspace, data_dir, configure):
    for name in ["events/part-00001.csv", "events/part-00002.csv", "extra/a.csv", "extra/deep/b.csv"]:
        write(data_dir / name, "a\n1\n")
    configure(workspace, {"ingest": {"group": False, "tables": {"things": {"files": ["extra/**/*.csv"]}}}})
    planned = run_plan(Workspace.open(workspace), [data_dir])
    assert sorted((p.table, p.source_file) for p in planned) == [
        ("events_part_00001", "events/part-00001.csv"),
        ("events_part_00002", "events/part-00002.csv"),
        ("things", "extra/a.csv"),
        ("things", "extra/deep/b.csv"),
    ]


# ------------------------------------------------------------------------------ incremental


def test_many_small_parts_are_packed_into_few_data_files_and_a_changed_part_rewrites_its_pack(workspace, data_dir, ingest, raw):
    for i in range(40):
        write(data_dir / "events" / f"part-{i:05d}.csv", f"id,v\n{i},a\n")
    ingest(data_dir)
    delta = lake(workspace).open(RAW, "events")
    assert 1 <= len(delta.file_uris()) <= 2  # one pack per worker thread at most
    write(data_dir / "events/part-00007.csv", "id,v\n7,changed\n")
    ingest(data_dir)
    table = raw("events")
    assert table.num_rows == 40
    assert sorted(table.filter(pa.compute.equal(table["id"], 7))["v"].to_pylist()) == ["changed"]


def test_new_changed_and_gone_files_add_replace_and_remove_their_rows_in_one_commit(workspace, data_dir, ingest, raw):
    events = data_dir / "events"
    for i in (1, 2, 3):
        write(events / f"part-{i:05d}.csv", f"id,v\n{i},a{i}\n{i + 10},b{i}\n")
    first = ingest(data_dir)
    assert {(f.source_file, f.outcome, f.rows, f.version) for f in first.files} == {
        (f"events/part-{i:05d}.csv", "loaded", 2, 0) for i in (1, 2, 3)
    }
    assert raw("events").num_rows == 6

    again = ingest(data_dir)
    assert {f.outcome for f in again.files} == {"unchanged"}
    assert lake(workspace).open(RAW, "events").version() == 0

    write(events / "part-00002.csv", "id,v\n2,changed\n")
    (events / "part-00003.csv").unlink()
    write(events / "part-00004.csv", "id,v\n4,new\n")
    third = ingest(data_dir)
    outcomes = {f.source_file: f.outcome for f in third.files}
    assert outcomes == {
        "events/part-00001.csv": "unchanged",
        "events/part-00002.csv": "loaded",
        "events/part-00003.csv": "removed",
        "events/part-00004.csv": "loaded",
    }
    delta = lake(workspace).open(RAW, "events")
    assert delta.version() == 1  # every change of the run is one commit
    assert rows(raw("events")) == [
        (1, "a1", "events/part-00001.csv"),
        (2, "changed", "events/part-00002.csv"),
        (4, "new", "events/part-00004.csv"),
        (11, "b1", "events/part-00001.csv"),
    ]
    assert rows(raw("events", version=0)) == sorted(
        [(i, f"a{i}", f"events/part-{i:05d}.csv") for i in (1, 2, 3)] + [(i + 10, f"b{i}", f"events/part-{i:05d}.csv") for i in (1, 2, 3)]
    )
    log = read_log(lake(workspace)).to_pylist()
    logged = {(e["source_file"], e["outcome"]) for e in log if e["load_id"] == third.load_id}
    assert logged == {(f, o) for f, o in outcomes.items() if o != "unchanged"}  # a grouped table's unchanged files are not logged


def test_on_missing_keep_keeps_the_rows_of_a_file_that_is_gone(workspace, data_dir, ingest, raw, configure):
    configure(workspace, {"ingest": {"tables": {"events": {"on_missing": "keep"}}}})
    write(data_dir / "events/part-1.csv", "id\n1\n")
    write(data_dir / "events/part-2.csv", "id\n2\n")
    ingest(data_dir)
    (data_dir / "events/part-1.csv").unlink()
    write(data_dir / "events/part-3.csv", "id\n3\n")
    report = ingest(data_dir)
    assert {f.source_file: f.outcome for f in report.files}["events/part-1.csv"] == "unchanged"
    assert sorted(raw("events")["id"].to_pylist()) == [1, 2, 3]


def test_an_unchanged_folder_reads_no_file_and_a_touched_file_is_hashed_not_loaded(workspace, data_dir, ingest):
    write(data_dir / "events/part-1.csv", "id\n1\n")
    write(data_dir / "events/part-2.csv", "id\n2\n")
    ingest(data_dir)
    (data_dir / "events/part-1.csv").chmod(0)  # unreadable: a run that read it would fail
    try:
        report = ingest(data_dir)
    finally:
        (data_dir / "events/part-1.csv").chmod(0o644)
    assert {f.outcome for f in report.files} == {"unchanged"}
    stat = (data_dir / "events/part-2.csv").stat()
    os.utime(data_dir / "events/part-2.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    planned = run_plan(Workspace.open(workspace), [data_dir])
    assert {p.source_file: p.reason for p in planned}["events/part-2.csv"] == "unchanged (touched)"
    assert {f.outcome for f in ingest(data_dir).files} == {"unchanged"}


def test_a_bad_file_fails_alone_and_the_summary_says_its_rows_are_missing(workspace, data_dir, ingest, raw):
    write(data_dir / "events/part-1.csv", "id,v\n1,a\n")
    write(data_dir / "events/part-2.csv", 'id,v\n2,"unclosed\n')
    write(data_dir / "events/part-3.csv", "id,v\n3,c\n")
    report = ingest(data_dir)
    failed = report.failed
    assert [f.source_file for f in failed] == ["events/part-2.csv"]
    assert "part-2.csv" in failed[0].message and "raw.events was loaded without this file's rows" in failed[0].message
    assert sorted(raw("events")["id"].to_pylist()) == [1, 3]
    write(data_dir / "events/part-2.csv", "id,v\n2,b\n")
    retry = ingest(data_dir)
    assert {f.source_file: f.outcome for f in retry.files}["events/part-2.csv"] == "loaded"
    assert sorted(raw("events")["id"].to_pylist()) == [1, 2, 3]


def test_a_changed_file_that_fails_keeps_its_earlier_rows(workspace, data_dir, ingest, raw):
    write(data_dir / "events/part-1.csv", "id,v\n1,a\n")
    write(data_dir / "events/part-2.csv", "id,v\n2,b\n")
    ingest(data_dir)
    write(data_dir / "events/part-2.csv", 'id,v\n2,"unclosed\n')
    report = ingest(data_dir)
    assert "raw.events keeps this file's earlier rows" in report.failed[0].message
    assert sorted(raw("events")["v"].to_pylist()) == ["a", "b"]


# ---------------------------------------------------------------------------------- schemas


def test_evolve_widens_the_table_for_a_part_with_other_columns_and_types(workspace, data_dir, ingest, raw):
    write(data_dir / "events/part-1.csv", "id,v\n1,10\n")
    ingest(data_dir)
    write(data_dir / "events/part-2.csv", "id,v,extra\n2,2.5,x\n")
    report = ingest(data_dir)
    loaded = [f for f in report.files if f.outcome == "loaded"]
    assert any("+ extra string" in n for n in loaded[0].notes)
    table = raw("events")
    assert table.schema.field("v").type == pa.float64()
    assert rows(table) == [(1, 10.0, None, "events/part-1.csv"), (2, 2.5, "x", "events/part-2.csv")]


def test_freeze_fails_the_clashing_part_naming_it_and_loads_the_others(workspace, data_dir, ingest, raw, configure):
    configure(workspace, {"ingest": {"schema": "freeze"}})
    write(data_dir / "events/part-1.csv", "id,v\n1,a\n")
    write(data_dir / "events/part-2.csv", "id,v,extra\n2,b,x\n")
    write(data_dir / "events/part-3.csv", "id,v\n3,c\n")
    report = ingest(data_dir)
    assert [f.source_file for f in report.failed] == ["events/part-2.csv"]
    assert "part-2.csv" in report.failed[0].message and "+ extra" in report.failed[0].message
    assert raw("events").column_names[:2] == ["id", "v"] and "extra" not in raw("events").column_names
    assert sorted(raw("events")["id"].to_pylist()) == [1, 3]


def test_rescue_keeps_what_does_not_fit_the_table_in_rescued_data(workspace, data_dir, ingest, raw, configure):
    configure(workspace, {"ingest": {"schema": "rescue"}})
    write(data_dir / "events/part-1.csv", "id,v\n1,10\n")
    write(data_dir / "events/part-2.csv", "id,v,extra\n2,abc,x\n")
    ingest(data_dir)
    table = raw("events")
    by_id = {r["id"]: r for r in table.to_pylist()}
    assert table.schema.field("v").type == pa.int64()
    assert by_id[2]["v"] is None and json.loads(by_id[2]["_rescued_data"]) == {"v": "abc", "extra": "x"}


# ------------------------------------------------------------------------------------- hive


def test_hive_keys_become_typed_columns_and_leading_zeros_stay_text(workspace, data_dir, ingest, raw):
    write(data_dir / "clicks/year=2019/month=01/day=2019-01-05/part-0.csv", "n\n1\n")
    write(data_dir / "clicks/year=2020/month=11/day=2020-11-30/part-0.csv", "n\n2\n")
    write(data_dir / "clicks/year=2020/month=12/day=__HIVE_DEFAULT_PARTITION__/part-0.csv", "n\n3\n")
    ingest(data_dir)
    table = raw("clicks")
    assert table.schema.field("year").type == pa.int64()
    assert table.schema.field("month").type == pa.string()  # "01" would not read back from the number 1
    assert table.schema.field("day").type == pa.date32()
    got = sorted((r["n"], r["year"], r["month"], str(r["day"])) for r in table.to_pylist())
    assert got == [(1, 2019, "01", "2019-01-05"), (2, 2020, "11", "2020-11-30"), (3, 2020, "12", "None")]


def test_a_type_hint_types_a_hive_key(workspace, data_dir, ingest, raw, configure):
    configure(workspace, {"ingest": {"types": {"clicks": {"month": "int"}}}})
    write(data_dir / "clicks/month=01/part-0.csv", "n\n1\n")
    write(data_dir / "clicks/month=02/part-0.csv", "n\n2\n")
    ingest(data_dir)
    assert sorted(raw("clicks")["month"].to_pylist()) == [1, 2]


# ---------------------------------------------------------------------------------- history


def test_each_load_records_the_files_it_added_replaced_and_removed(workspace, data_dir, ingest):
    write(data_dir / "events/part-1.csv", "id\n1\n")
    write(data_dir / "events/part-2.csv", "id\n2\n")
    ingest(data_dir)
    write(data_dir / "events/part-2.csv", "id\n22\n")
    (data_dir / "events/part-1.csv").unlink()
    write(data_dir / "events/part-3.csv", "id\n3\n")
    ingest(data_dir)
    manifest = files_manifest(lake(workspace), RAW, "events")
    assert sorted(manifest["files"]) == ["events/part-2.csv", "events/part-3.csv"]
    versions = history(lake(workspace), "events")
    assert [(v["files_added"], v["files_replaced"], v["files_removed"]) for v in versions] == [
        (["events/part-1.csv", "events/part-2.csv"], [], []),
        (["events/part-3.csv"], ["events/part-2.csv"], ["events/part-1.csv"]),
    ]


def test_single_files_keep_their_own_tables_and_loads(workspace, data_dir, ingest, raw):
    write(data_dir / "train.csv", "id\n1\n")
    write(data_dir / "test.csv", "id\n2\n")
    report = ingest(data_dir)
    assert sorted((f.table, f.source_file.rsplit("/", 1)[-1]) for f in report.files) == [("test", "test.csv"), ("train", "train.csv")]
    assert files_manifest(lake(workspace), RAW, "train") is None
    assert history(lake(workspace), "train")[0]["files_added"] is None
