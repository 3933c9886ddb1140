"""Grouped tables on Spark: a folder of parts, Hive folders, loaded incrementally by file, as on the embedded engine.

Parametrised over classic local Spark (``format: parquet``, one reader over the files) and Spark
Connect on Sail (``format: delta``, a reader per file in one union). Each case compares Spark's
raw table with the embedded engine's for the same files, value for value, ``_source_file`` included.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from ingesting import run_ingest
from spark_helpers import local_or_sail_engine, make_workspace

from autoflux.engines import create_engine
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.workspace import Workspace

PARTS = {
    "part-00001.csv": "id,amount,day,note\n1,10,2024-01-01,a\n2,20,2024-01-02,\n",
    "part-00002.csv": "id,amount,day,note\n3,2.5,2024-01-03,c\n4,40,2024-01-04,d\n",
    "part-00003.csv": "id,amount,day,note\n5,50,2024-01-05,e\n",
}
HIVE = {
    "year=2019/month=01/day=2019-01-31/data.csv": "id,v\n1,x\n2,y\n",
    "year=2019/month=02/day=2019-02-28/data.csv": "id,v\n3,z\n",
    "year=2020/month=__HIVE_DEFAULT_PARTITION__/day=2020-03-01/data.csv": "id,v\n4,w\n",
}


@pytest.fixture(scope="module", params=["local", "sail"])
def spark_root(request, tmp_path_factory, java) -> Path:
    engine = local_or_sail_engine(request.param, request)
    return make_workspace(tmp_path_factory.mktemp(request.param) / "ws", engine, ingest={"group": True})


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def embedded(folder: Path, source: Path, table: str) -> pa.Table:
    """``raw.<table>`` after an ingest of ``source`` by the embedded engine in the workspace at ``folder`` (made on first use)."""
    root = folder if (folder / "autoflux.yml").exists() else make_workspace(folder, {"type": "duckdb"}, ingest={"group": True})
    report = run_ingest(Workspace.open(root), [source])
    assert all(f.outcome != "failed" for f in report.files), [f.message for f in report.files]
    return Workspace.open(root).lake.open("raw", table).to_pyarrow_table()


def comparable(table: pa.Table) -> pa.Table:
    """Data columns and ``_source_file``, rows by file and id."""
    keep = [n for n in table.column_names if n not in LINEAGE_COLUMNS or n == "_source_file"]
    return table.select(keep).sort_by([("_source_file", "ascending"), ("id", "ascending")])


def spark_table(root: Path, table: str) -> pa.Table:
    engine = create_engine(Workspace.open(root))
    return engine.raw_store().read(table)


def assert_same(got: pa.Table, expected: pa.Table) -> None:
    got, expected = comparable(got), comparable(expected)
    assert [(f.name, str(f.type)) for f in got.schema] == [(f.name, str(f.type)) for f in expected.schema]
    assert got.to_pylist() == expected.to_pylist()


def test_a_folder_of_parts_is_one_table_loaded_by_file_as_on_the_embedded_engine(spark_root, tmp_path):
    source = write(tmp_path / "src" / "events", PARTS).parent
    report = run_ingest(Workspace.open(spark_root), [source])
    assert [(f.source_file, f.outcome, f.rows) for f in report.files] == [
        ("events/part-00001.csv", "loaded", 2),
        ("events/part-00002.csv", "loaded", 2),
        ("events/part-00003.csv", "loaded", 1),
    ], [f.message for f in report.files]
    first = report.files[0].version
    assert {f.version for f in report.files} == {first}
    assert_same(spark_table(spark_root, "events"), embedded(tmp_path / "duck", source, "events"))
    assert str(spark_table(spark_root, "events").schema.field("amount").type) == "double"

    again = run_ingest(Workspace.open(spark_root), [source])
    assert {(f.outcome, f.version) for f in again.files} == {("unchanged", first)}

    (source / "events" / "part-00001.csv").unlink()
    (source / "events" / "part-00002.csv").write_text("id,amount,day,note\n3,30,2024-01-03,C\n", encoding="utf-8")
    (source / "events" / "part-00004.csv").write_text("id,amount,day,note\n6,60,2024-01-06,f\n7,70,2024-01-07,g\n", encoding="utf-8")
    changed = run_ingest(Workspace.open(spark_root), [source])
    outcomes = {f.source_file: (f.outcome, f.version) for f in changed.files}
    assert outcomes == {
        "events/part-00001.csv": ("removed", first + 1),
        "events/part-00002.csv": ("loaded", first + 1),
        "events/part-00003.csv": ("unchanged", first + 1),
        "events/part-00004.csv": ("loaded", first + 1),
    }
    table = spark_table(spark_root, "events")
    assert sorted(zip(table["id"].to_pylist(), table["_source_file"].to_pylist(), strict=True)) == [
        (3, "events/part-00002.csv"),
        (5, "events/part-00003.csv"),
        (6, "events/part-00004.csv"),
        (7, "events/part-00004.csv"),
    ]
    assert_same(table, embedded(tmp_path / "duck", source, "events"))
    assert create_engine(Workspace.open(spark_root)).raw_store().state("events")[1] == first + 1


def test_hive_folders_become_typed_key_columns_as_on_the_embedded_engine(spark_root, tmp_path):
    source = write(tmp_path / "src" / "clicks", HIVE).parent
    report = run_ingest(Workspace.open(spark_root), [source])
    assert [f.outcome for f in report.files] == ["loaded"] * 3, [f.message for f in report.files]
    got = spark_table(spark_root, "clicks")
    types = {f.name: str(f.type) for f in got.schema}
    assert (types["year"], types["month"], types["day"]) == ("int64", "string", "date32[day]")
    assert_same(got, embedded(tmp_path / "e", source, "clicks"))


def test_a_bad_file_fails_alone_and_the_rest_of_its_group_loads(spark_root, tmp_path):
    files = {
        **{k.replace("part-", "chunk-"): v for k, v in PARTS.items()},
        "chunk-00002.csv": "id,amount,day,note\n3,1,2024-01-03,c,extra\n",
    }
    source = write(tmp_path / "src" / "orders", files).parent
    report = run_ingest(Workspace.open(spark_root), [source])
    outcomes = {f.source_file: f.outcome for f in report.files}
    assert outcomes == {"orders/chunk-00001.csv": "loaded", "orders/chunk-00002.csv": "failed", "orders/chunk-00003.csv": "loaded"}
    failed = next(f for f in report.files if f.outcome == "failed")
    assert "chunk-00002.csv" in failed.message and "raw.orders" in failed.message, failed.message
    assert sorted(spark_table(spark_root, "orders")["id"].to_pylist()) == [1, 2, 5]


def test_files_spark_has_no_reader_for_fail_alone(spark_root, tmp_path):
    source = write(tmp_path / "src" / "logs", {"part-1.csv": "id\n1\n", "part-2.csv": "id\n2\n"}).parent
    shutil.copy(source / "logs" / "part-1.csv", source / "logs" / "part-3.csv")
    import zstandard

    (source / "logs" / "part-4.csv.zst").write_bytes(zstandard.ZstdCompressor().compress(b"id\n4\n"))
    report = run_ingest(Workspace.open(spark_root), [source])
    outcomes = {f.source_file: f.outcome for f in report.files}
    assert outcomes["logs/part-4.csv.zst"] == "failed"
    assert "Spark has no reader" in next(f.message for f in report.files if f.outcome == "failed")
    assert sorted(spark_table(spark_root, "logs")["id"].to_pylist()) == [1, 1, 2]
