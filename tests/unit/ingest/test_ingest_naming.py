"""Naming rules: column names and table names (autoflux.ingest.schema, autoflux.ingest.discover)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoflux.exceptions import IngestError, SourceNotFoundError, TableNameClashError
from autoflux.ingest.discover import discover
from autoflux.ingest.schema import LINEAGE_COLUMNS, identifier, snake_case, unique_column_names
from autoflux.ingest.state import read_log
from autoflux.workspace import Workspace


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("already_snake", "already_snake"),
        ("PassengerId", "passenger_id"),
        ("loanAmount", "loan_amount"),
        ("HTTPServerError", "http_server_error"),
        ("EmploymentLength", "employment_length"),
        ("Annual Income ($)", "annual_income"),
        ("home.ownership", "home_ownership"),
        ("e-mail / phone#", "e_mail_phone"),
        ("  padded   name ", "padded_name"),
        ("UPPER", "upper"),
        ("A__B", "a_b"),
        ("Café Crème", "cafe_creme"),
        ("naïve-Zoë", "naive_zoe"),
        ("Größe Straße", "grosse_strasse"),
        ("Ærø", "aero"),
        ("%%%", ""),
    ],
)
def test_snake_case(name, expected):
    assert snake_case(name) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1st place", "c_1st_place"),
        ("2020", "c_2020"),
        ("", "fallback"),
        ("$$$", "fallback"),
        ("__private__", "private"),
        ("Ok", "ok"),
    ],
)
def test_identifier_is_never_empty_and_never_starts_with_a_digit_or_underscore(name, expected):
    assert identifier(name, fallback="fallback") == expected


def test_blank_names_become_column_and_their_position():
    assert unique_column_names(["id", "", "  ", "%"]) == ["id", "column_2", "column_3", "column_4"]


def test_duplicates_get_numbered_suffixes():
    assert unique_column_names(["Value", "value", "VALUE", "value "]) == ["value", "value_2", "value_3", "value_4"]


def test_a_suffix_that_is_already_taken_is_skipped():
    names = unique_column_names(["a", "a_2", "a", "A"])
    assert names == ["a", "a_2", "a_3", "a_4"]
    assert len(set(names)) == len(names)


def test_lineage_names_are_reserved():
    names = unique_column_names(["_load_id", "_source_file", "_ingested_at", "load_id"])
    assert not set(names) & set(LINEAGE_COLUMNS)
    assert names == ["load_id", "source_file", "ingested_at", "load_id_2"]
    assert all(not n.startswith("_") for n in names)


def test_ingested_table_keeps_a_user_column_named_like_lineage(workspace, data_dir, ingest, raw, one):
    (data_dir / "t.csv").write_text("_load_id,_source_file,x\nmine,file,1\n")
    assert one(ingest(data_dir)).outcome == "loaded"
    table = raw("t")
    assert table.column_names == ["load_id", "source_file", "x", *LINEAGE_COLUMNS]
    assert table["load_id"].to_pylist() == ["mine"]
    assert table["_load_id"].to_pylist() != ["mine"]


# ------------------------------------------------------------------------------------ tables


def _tables(root, **kwargs):
    files, skipped = discover(root, **kwargs)
    return {f.relative: f.table for f in files}, {s.path.name: s.reason for s in skipped}


def test_table_names_from_paths(data_dir):
    (data_dir / "extra" / "More Data").mkdir(parents=True)
    for name in [
        "train.csv",
        "Test.CSV",
        "extra/stores.parquet",
        "extra/More Data/Items 2024.tsv",
        "big.csv.gz",
        "events.ndjson.gz",
        "data.2020.csv",
        "2021.csv",
        "book.xlsx",
    ]:
        (data_dir / name).write_bytes(b"x")
    tables, _ = _tables(data_dir)
    assert tables == {
        "train.csv": "train",
        "Test.CSV": "test",
        "extra/stores.parquet": "extra_stores",
        "extra/More Data/Items 2024.tsv": "extra_more_data_items_2024",
        "big.csv.gz": "big",
        "events.ndjson.gz": "events",
        "data.2020.csv": "data_2020",
        "2021.csv": "c_2021",
        "book.xlsx": "book",
    }


def test_hidden_files_are_ignored_and_unknown_types_skipped_with_reason(data_dir):
    (data_dir / ".cache").mkdir()
    (data_dir / ".cache" / "old.csv").write_text("a\n1\n")
    (data_dir / ".DS_Store.csv").write_text("a\n1\n")
    (data_dir / "notes.txt").write_text("hello")
    (data_dir / "LICENSE").write_text("MIT")
    (data_dir / "train.csv").write_text("a\n1\n")
    tables, skipped = _tables(data_dir)
    assert tables == {"train.csv": "train"}
    assert skipped == {"notes.txt": "unknown file type (extension '.txt')", "LICENSE": "unknown file type (no extension)"}


def test_exclude_globs_skip_files(data_dir):
    (data_dir / "train.csv").write_text("a\n1\n")
    (data_dir / "sample_submission.csv").write_text("a\n1\n")
    tables, skipped = _tables(data_dir, exclude=["sample_*"])
    assert tables == {"train.csv": "train"}
    assert skipped == {"sample_submission.csv": "excluded by ingest.exclude"}


def test_a_single_file_source(data_dir):
    path = data_dir / "Train Data.csv"
    path.write_text("a\n1\n")
    files, skipped = discover(path)
    assert [(f.table, f.relative) for f in files] == [("train_data", "Train Data.csv")]
    assert skipped == []


def test_a_single_file_of_unknown_type_is_an_error(data_dir):
    path = data_dir / "notes.txt"
    path.write_text("hello")
    with pytest.raises(IngestError, match=r"unknown file type \(extension '.txt'\)") as caught:
        discover(path)
    assert caught.value.path == str(path)
    assert "ingest.readers" in str(caught.value)


def test_a_missing_source_is_an_error(data_dir):
    with pytest.raises(SourceNotFoundError):
        discover(data_dir / "nope")


@pytest.mark.parametrize(
    "names",
    [
        ["train.csv", "train.parquet"],
        ["train.csv", "Train.csv.gz"],
        ["a b.csv", "a_b.csv"],
        ["extra/stores.csv", "extra_stores.csv"],
    ],
)
def test_clashing_table_names_fail_before_anything_is_written(workspace, data_dir, ingest, names):
    (data_dir / "aaa_first.csv").write_text("x\n1\n")  # sorts first: would be written first
    for name in names:
        path = data_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".parquet"):
            pq.write_table(pa.table({"x": [1]}), path)
        else:
            path.write_text("x\n1\n")
    with pytest.raises(TableNameClashError) as caught:
        ingest(data_dir)
    message = str(caught.value)
    assert "would both become table raw." in message
    assert all(name.split("/")[-1] in message for name in names)
    lake = Workspace.open(workspace).lake
    assert lake.tables() == []
    assert read_log(lake).num_rows == 0


def test_clash_across_two_sources(workspace, tmp_path, ingest):
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.csv").write_text("x\n1\n")
    with pytest.raises(TableNameClashError):
        ingest(tmp_path / "one", tmp_path / "two")
    assert Workspace.open(workspace).lake.tables() == []
