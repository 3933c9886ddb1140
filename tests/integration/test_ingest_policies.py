"""Write modes, schema policies, merge keys and bad rows: one set of cases and values for every engine that ingests.

Each case runs on the embedded engine (delta-rs), on classic local Spark with ``format: parquet``
(each load a new ``v<N>`` folder swapped into the catalog) and, for append, merge and evolve, on
Sail (Spark Connect) with ``format: delta``. An engine's cases share one workspace (one
SparkSession; local Spark in the workspace test_spark_local.py ran the example in), each case
with tables of its own.

The evolution scenario: a table loaded from FIRST, then SECOND arrives with an extra column
(``extra``), without one (``note``), text in an integer column (``amount``), a widened type
(``score``: integers, now decimals) and dates that now carry a time (``day``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from loads import Loads
from spark_helpers import local_or_sail_engine, make_workspace

import autoflux
from autoflux.ingest.policy import RESCUED_COLUMN
from autoflux.ingest.quarantine import read_quarantine, staging_dir
from autoflux.ingest.state import read_log
from autoflux.lake import RAW
from autoflux.maintenance import history
from autoflux.workspace import Workspace

ENGINES = ["embedded", "spark"]
WITH_SAIL = [*ENGINES, "sail"]

FIRST = "id,amount,score,day,note\n1,10,1,2024-01-01,a\n2,20,2,2024-01-02,b\n"
SECOND = "id,amount,score,day,extra\n3,abc,2.5,2024-01-03 10:30:00,x\n4,40,4,2024-01-04,y\n"
UTC = dt.UTC


def midnight(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, tzinfo=UTC)


@pytest.fixture(scope="module")
def root(request, tmp_path_factory) -> Path:
    """The workspace of the engine ``request.param`` names, shared by this module's cases on it."""
    if request.param == "embedded":
        return autoflux.init(tmp_path_factory.mktemp("policies") / "ws")
    if request.param == "spark":
        return request.getfixturevalue("local_workspace")
    return make_workspace(tmp_path_factory.mktemp("policies_sail") / "ws", local_or_sail_engine("sail", request))


class Table(Loads):
    """A table of the engine under test (``kind``: embedded, spark or sail)."""

    def __init__(self, kind: str, *args) -> None:
        super().__init__(*args)
        self.kind = kind

    @property
    def delta(self) -> bool:
        return self.kind != "spark"

    def history(self) -> list[dict]:
        return history(Workspace.open(self.root).lake, self.table)


@pytest.fixture
def table(request, root, tmp_path, configure):
    kind = request.node.callspec.params["root"]
    return lambda name: Table(kind, root, name, tmp_path / name, configure)


@pytest.fixture
def allow(root, configure):
    """``allow(max_count=…, max_fraction=…)``: ``ingest.bad_rows`` for this case, the defaults again after it."""
    yield lambda **limits: configure(root, {"ingest": {"bad_rows": limits}})
    configure(root, {"ingest": {"bad_rows": {"max_count": 0, "max_fraction": 0.0}}})


def first_then_second(t: Table, schema: str):
    """FIRST then SECOND loaded into ``t`` appended under ``schema``: the second load's result."""
    t.policy("append", schema)
    t.load(FIRST)
    return t.load(SECOND)


def quarantined(root: Path, name: str) -> list[dict]:
    rows = read_quarantine(Workspace.open(root).lake).to_pylist()
    return sorted(
        ({k: r[k] for k in ("table", "file", "line", "reason", "raw", "load_id")} for r in rows if r["table"] == name),
        key=lambda r: r["line"],
    )


# ------------------------------------------------------------------------------------- append


@pytest.mark.parametrize("root", WITH_SAIL, indirect=True)
def test_append_adds_each_new_content_once(table, root):
    t = table("appended")
    t.policy("append")
    assert t.load("id,v\n1,a\n").outcome == "loaded"
    second = t.load("id,v\n2,b\n3,c\n")
    assert (second.outcome, second.rows, second.version) == ("loaded", 2, 1), second.message
    assert t.run().outcome == "unchanged"
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "b"), (3, "c")]
    assert len(set(t.table_rows()["_load_id"].to_pylist())) == 2
    if t.delta:
        last = Workspace.open(root).lake.open(RAW, "appended").history(1)[0]
        assert (last["operationParameters"]["mode"], t.history()[-1]["mode"]) == ("Append", "append")
    else:  # the new version folder replaces the old one; nothing is left staged
        assert sorted(p.name for p in (root / "lake" / "raw" / "appended").iterdir()) == ["v1"]
        staging = root / "lake" / "_autoflux" / "staging"
        assert not staging.exists() or not any(staging.iterdir())
    assert t.run(force=True).version == 2  # --force appends the same content again
    assert [r["id"] for r in t.data()] == [1, 2, 2, 3, 3]


# -------------------------------------------------------------------------------------- merge


@pytest.mark.parametrize("root", WITH_SAIL, indirect=True)
def test_merge_upserts_on_the_key_and_refuses_a_bad_key(table, root):
    t = table("merged")
    t.policy("merge", key=["id"])
    t.load("id,v\n1,a\n2,b\n")
    result = t.load("id,v\n2,B\n3,C\n")
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "B"), (3, "C")]
    by_id = {r["id"]: r["_load_id"] for r in t.table_rows().to_pylist()}
    assert by_id[2] == by_id[3] != by_id[1]  # updated rows carry the load that wrote them
    assert t.run().outcome == "unchanged"
    if t.delta:
        embedded = Workspace.open(root).lake.open(RAW, "merged").to_pyarrow_table()  # delta-rs reads the commit
        assert sorted(zip(embedded["id"].to_pylist(), embedded["v"].to_pylist(), strict=True)) == [(1, "a"), (2, "B"), (3, "C")]
    if t.kind == "embedded":
        entry = t.history()[-1]
        assert (entry["operation"], entry["mode"], entry["rows_added"], entry["rows_updated"]) == ("MERGE", "merge", 1, 1)
    for text, message in [
        ("id,v\n1,a\n1,b\n", "the merge key (id = 1) is on 2 rows"),
        ("id,v\n1,a\n,b\n", "the merge key column id is empty on 1 rows"),
        ("ident,v\n1,a\n", "the merge key column 'id' is not in the file"),
    ]:
        failed = t.load(text)
        assert failed.outcome == "failed" and message in failed.message, failed.message
    assert t.version() == 1 and [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "B"), (3, "C")]


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_merge_on_a_key_given_by_its_original_name_with_a_widened_type(table):
    t = table("merged_widened")
    t.policy("merge", key=["Customer Id"])
    t.load("Customer Id,score\n1,1\n2,2\n")
    result = t.load("Customer Id,score\n2,2.5\n3,3\n")
    assert (result.outcome, result.version) == ("loaded", 1), result.message
    rows = sorted((r["customer_id"], r["score"]) for r in t.table_rows().to_pylist())
    assert rows == [(1, 1.0), (2, 2.5), (3, 3.0)]


# ---------------------------------------------------------------------------- schema policies


@pytest.mark.parametrize("root", WITH_SAIL, indirect=True)
def test_append_evolve_adds_widens_and_rewrites_in_one_version(table):
    t = table("evolved")
    result = first_then_second(t, "evolve")
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert set(result.notes) >= {
        "schema: ~ amount bigint → string",
        "schema: ~ score bigint → double",
        "schema: ~ day date → timestamp",
        "schema: + extra string",
        "schema: - note (missing, null in the new rows)",
    }
    assert t.types() == {
        "id": "int64",
        "amount": "string",
        "score": "double",
        "day": "timestamp[us, tz=UTC]",
        "note": "string",
        "extra": "string",
    }
    assert t.data() == [
        {"id": 1, "amount": "10", "score": 1.0, "day": midnight(1), "note": "a", "extra": None},
        {"id": 2, "amount": "20", "score": 2.0, "day": midnight(2), "note": "b", "extra": None},
        {"id": 3, "amount": "abc", "score": 2.5, "day": dt.datetime(2024, 1, 3, 10, 30, tzinfo=UTC), "note": None, "extra": "x"},
        {"id": 4, "amount": "40", "score": 4.0, "day": midnight(4), "note": None, "extra": "y"},
    ]
    if t.delta:
        last = t.history()[-1]
        assert last["version"] == 1
        assert any(c.startswith("+ extra") for c in last["schema_changes"]) and any(
            c.startswith("~ amount") for c in last["schema_changes"]
        )


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_freeze_refuses_every_difference_and_writes_nothing(table):
    t = table("frozen")
    t.policy("append", "freeze")
    t.load(FIRST)
    before = t.data()
    result = t.load(SECOND)
    assert result.outcome == "failed"
    assert "the schema of raw.frozen is frozen" in result.message
    for difference in ("+ extra string", "- note", "~ amount bigint → string", "~ score bigint → double", "~ day date → timestamp"):
        assert difference in result.message
    assert "ingest.tables.frozen.schema" in result.message and str(t.file) in result.message
    assert t.version() == 0 and t.data() == before
    fits = t.load("id,amount,score,day,note\n5,50,5,2024-01-05,007\n")  # values that fit: no change
    assert fits.outcome == "loaded", fits.message
    assert t.data()[-1] == {"id": 5, "amount": 50, "score": 5, "day": dt.date(2024, 1, 5), "note": "007"}


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_freeze_accepts_a_file_that_fits(table):
    """Values that fit the column's type are no change: integers into a double column, text into text."""
    t = table("frozen_fits")
    t.policy("append", "freeze")
    t.load("id,score,code\n1,1.5,a\n")
    result = t.load("id,score,code\n2,2,007\n")
    assert result.outcome == "loaded", result.message
    assert t.data() == [{"id": 1, "score": 1.5, "code": "a"}, {"id": 2, "score": 2.0, "code": "007"}]


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_rescue_keeps_the_schema_and_every_value(table):
    t = table("rescued")
    result = first_then_second(t, "rescue")
    assert (result.outcome, result.rows) == ("loaded", 2), result.message
    assert "5 values did not fit their column: kept as text in _rescued_data" in result.notes
    assert t.types() == {
        "id": "int64",
        "amount": "int64",
        "score": "int64",
        "day": "date32[day]",
        "note": "string",
        RESCUED_COLUMN: "string",
    }
    rows = t.data()
    assert rows[:2] == [
        {"id": 1, "amount": 10, "score": 1, "day": dt.date(2024, 1, 1), "note": "a", RESCUED_COLUMN: None},
        {"id": 2, "amount": 20, "score": 2, "day": dt.date(2024, 1, 2), "note": "b", RESCUED_COLUMN: None},
    ]
    third, fourth = rows[2:]
    assert {k: third[k] for k in ("id", "amount", "score", "day", "note")} == {
        "id": 3,
        "amount": None,
        "score": None,
        "day": None,
        "note": None,
    }
    assert json.loads(third[RESCUED_COLUMN]) == {"amount": "abc", "score": "2.5", "day": "2024-01-03 10:30:00", "extra": "x"}
    assert {k: fourth[k] for k in ("id", "amount", "score", "day")} == {"id": 4, "amount": 40, "score": 4, "day": dt.date(2024, 1, 4)}
    assert json.loads(fourth[RESCUED_COLUMN]) == {"extra": "y"}


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_rescue_keeps_the_original_text_exactly(table):
    t = table("rescued_text")
    t.policy("append", "rescue")
    t.load("id,n\n1,5\n")
    t.load('id,n\n2,1.50\n3," 7 "\n4,007\n5,"x, ""quoted"""\n')
    rescued = {r["id"]: (r["n"], r[RESCUED_COLUMN]) for r in t.data()}
    assert rescued[4] == (7, None)  # 007 is the integer 7
    assert {i: json.loads(rescued[i][1]) for i in (2, 3, 5)} == {2: {"n": "1.50"}, 3: {"n": " 7 "}, 5: {"n": 'x, "quoted"'}}
    assert all(rescued[i][0] is None for i in (2, 3, 5))


# ----------------------------------------------------------------------------------- bad rows


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_bad_rows_are_quarantined_within_the_limits(table, root, allow):
    t = table("ragged")
    allow(max_count=5)
    t.file.write_text("id,name\n1,a\n2,b,extra\n3,c\n4\n5,e\n")
    report = t.ingest()
    (result,) = report.files
    assert (result.outcome, result.rows, result.quarantined, result.rows_read) == ("loaded", 3, 2, 5), result.message
    assert "5 rows read: 3 loaded, 2 that could not be parsed set aside in _autoflux.quarantine" in result.notes
    assert [r["id"] for r in t.data()] == [1, 3, 5]
    assert quarantined(root, "ragged") == [
        {"table": "ragged", "file": "ragged.csv", "line": 3, "reason": "a row has 3 fields where the header has 2", "raw": "2,b,extra"}
        | {"load_id": report.load_id},
        {"table": "ragged", "file": "ragged.csv", "line": 5, "reason": "a row has 1 fields where the header has 2", "raw": "4"}
        | {"load_id": report.load_id},
    ]
    (entry,) = [e for e in read_log(Workspace.open(root).lake).to_pylist() if e["table"] == "ragged"]
    assert (entry["rows"], entry["quarantined"]) == (3, 2)
    assert not list(staging_dir(root / ".autoflux").glob("*"))  # nothing left staged


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_more_bad_rows_than_max_count_fail_the_file_and_write_nothing(table, root, allow):
    t = table("too_ragged")
    t.load("id,b\n1,2\n")
    allow(max_count=1)
    result = t.load("id,b\n1,2\n3\n4\n5,6\n")
    assert result.outcome == "failed"
    assert "2 rows cannot be parsed, more than ingest.bad_rows allows (max_count 1, max_fraction 0)" in result.message
    assert f"{t.file}, line 3:" in result.message, result.message
    assert t.version() == 0 and [r["id"] for r in t.data()] == [1]
    assert quarantined(root, "too_ragged") == []


@pytest.mark.parametrize("root", ENGINES, indirect=True)
def test_by_default_a_bad_row_fails_the_file_at_its_line(table):
    t = table("ragged_by_default")
    result = t.load("id,b\n1,2\n3,4,5\n")
    assert result.outcome == "failed"
    assert f"{t.file}, line 3: a row has 3 fields where the header has 2" in result.message
    assert "ingest.bad_rows" in result.message
