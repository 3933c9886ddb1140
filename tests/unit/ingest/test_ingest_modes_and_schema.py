"""Write modes (replace, append, merge) and schema policies (evolve, freeze, rescue): autoflux.ingest.policy.

The evolution scenario: a table loaded from FIRST, then SECOND arrives with an extra column
(``extra``), without one (``note``), text in an integer column (``amount``), a widened type
(``score``: integers, now decimals) and dates that now carry a time (``day``). Each policy's
exact resulting schema and values are asserted.
"""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from autoflux.exceptions import ConfigError
from autoflux.ingest.policy import RESCUED_COLUMN, TablePolicy, try_cast
from autoflux.ingest.schema import LINEAGE_COLUMNS, widen
from autoflux.lake import RAW
from autoflux.maintenance import history
from autoflux.workspace import Workspace

FIRST = "id,amount,score,day,note\n1,10,1,2024-01-01,a\n2,20,2,2024-01-02,b\n"
SECOND = "id,amount,score,day,extra\n3,abc,2.5,2024-01-03 10:30:00,x\n4,40,4,2024-01-04,y\n"
UTC = dt.UTC


def midnight(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, tzinfo=UTC)


def table_of(workspace, name="t"):
    return Workspace.open(workspace).lake.open(RAW, name).to_pyarrow_table()


def version_of(workspace, name="t"):
    return Workspace.open(workspace).lake.open(RAW, name).version()


def data_of(table: pa.Table) -> list[dict]:
    """Rows without lineage, sorted by id."""
    return sorted(table.drop_columns(list(LINEAGE_COLUMNS)).to_pylist(), key=lambda r: r["id"])


def types_of(table: pa.Table) -> dict[str, str]:
    return {f.name: str(f.type) for f in table.schema if f.name not in LINEAGE_COLUMNS}


@pytest.fixture
def policy(workspace, configure):
    def set_policy(mode: str = "replace", schema: str = "evolve", key: list[str] | None = None, table: str = "t"):
        entry = {"mode": mode, "schema": schema} | ({"key": key} if key else {})
        configure(workspace, {"ingest": {"tables": {table: entry}}})

    return set_policy


def load(data_dir, ingest, one, text: str, name: str = "t.csv"):
    (data_dir / name).write_text(text)
    return one(ingest(data_dir))


# ---------------------------------------------------------------------------------- evolution


def test_append_evolve_adds_widens_and_rewrites_in_one_version(workspace, data_dir, ingest, one, policy):
    policy("append", "evolve")
    load(data_dir, ingest, one, FIRST)
    result = load(data_dir, ingest, one, SECOND)
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert set(result.notes) >= {
        "schema: ~ amount bigint → string",
        "schema: ~ score bigint → double",
        "schema: ~ day date → timestamp",
        "schema: + extra string",
    }
    table = table_of(workspace)
    assert types_of(table) == {
        "id": "int64",
        "amount": "string",
        "score": "double",
        "day": "timestamp[us, tz=UTC]",
        "note": "string",
        "extra": "string",
    }
    assert data_of(table) == [
        {"id": 1, "amount": "10", "score": 1.0, "day": midnight(1), "note": "a", "extra": None},
        {"id": 2, "amount": "20", "score": 2.0, "day": midnight(2), "note": "b", "extra": None},
        {"id": 3, "amount": "abc", "score": 2.5, "day": dt.datetime(2024, 1, 3, 10, 30, tzinfo=UTC), "note": None, "extra": "x"},
        {"id": 4, "amount": "40", "score": 4.0, "day": midnight(4), "note": None, "extra": "y"},
    ]
    changes = history(Workspace.open(workspace).lake, "t")[-1]["schema_changes"]
    assert any(c.startswith("+ extra") for c in changes) and any(c.startswith("~ amount") for c in changes)


def test_freeze_refuses_every_difference_and_writes_nothing(workspace, data_dir, ingest, one, policy):
    policy("append", "freeze")
    load(data_dir, ingest, one, FIRST)
    before = table_of(workspace)
    result = load(data_dir, ingest, one, SECOND)
    assert result.outcome == "failed"
    assert "the schema of raw.t is frozen" in result.message
    for difference in ("+ extra string", "- note", "~ amount bigint → string", "~ score bigint → double", "~ day date → timestamp"):
        assert difference in result.message
    assert "ingest.tables.t.schema" in result.message and str(data_dir / "t.csv") in result.message
    assert version_of(workspace) == 0
    assert table_of(workspace).equals(before)


def test_freeze_accepts_a_file_that_fits(workspace, data_dir, ingest, one, policy):
    """Values that fit the column's type are no change: integers into a double column, text into text."""
    policy("append", "freeze")
    load(data_dir, ingest, one, "id,score,code\n1,1.5,a\n")
    result = load(data_dir, ingest, one, "id,score,code\n2,2,007\n")
    assert result.outcome == "loaded", result.message
    assert data_of(table_of(workspace)) == [{"id": 1, "score": 1.5, "code": "a"}, {"id": 2, "score": 2.0, "code": "007"}]


def test_rescue_keeps_the_schema_and_every_value(workspace, data_dir, ingest, one, policy):
    policy("append", "rescue")
    load(data_dir, ingest, one, FIRST)
    result = load(data_dir, ingest, one, SECOND)
    assert (result.outcome, result.rows) == ("loaded", 2), result.message
    assert "5 values did not fit their column: kept as text in _rescued_data" in result.notes
    table = table_of(workspace)
    assert types_of(table) == {
        "id": "int64",
        "amount": "int64",
        "score": "int64",
        "day": "date32[day]",
        "note": "string",
        RESCUED_COLUMN: "string",
    }
    rows = data_of(table)
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


def test_rescue_keeps_the_original_text_exactly(workspace, data_dir, ingest, one, policy):
    policy("append", "rescue")
    load(data_dir, ingest, one, "id,n\n1,5\n")
    load(data_dir, ingest, one, 'id,n\n2,1.50\n3," 7 "\n4,007\n5,"x, ""quoted"""\n')
    rescued = {r["id"]: (r["n"], r[RESCUED_COLUMN]) for r in table_of(workspace).to_pylist()}
    assert rescued[4] == (7, None)  # 007 is the integer 7
    assert {i: json.loads(rescued[i][1]) for i in (2, 3, 5)} == {2: {"n": "1.50"}, 3: {"n": " 7 "}, 5: {"n": 'x, "quoted"'}}
    assert all(rescued[i][0] is None for i in (2, 3, 5))


def test_rescue_renders_typed_values_of_other_formats_as_text(workspace, data_dir, ingest, one, policy):
    policy("append", "rescue")
    pq.write_table(pa.table({"id": [1], "n": [5]}), data_dir / "t.parquet")
    one(ingest(data_dir))
    pq.write_table(pa.table({"id": [2, 3], "n": [2.5, 6.0], "tags": [["a", "b"], None]}), data_dir / "t.parquet")
    result = one(ingest(data_dir))
    assert result.outcome == "loaded", result.message
    rows = {r["id"]: r for r in table_of(workspace).to_pylist()}
    assert (rows[3]["n"], rows[3][RESCUED_COLUMN]) == (6, None)
    assert rows[2]["n"] is None and json.loads(rows[2][RESCUED_COLUMN]) == {"n": "2.5", "tags": '["a", "b"]'}


def test_replace_evolve_takes_the_file_schema(workspace, data_dir, ingest, one):
    load(data_dir, ingest, one, FIRST)
    load(data_dir, ingest, one, SECOND)
    table = table_of(workspace)
    assert types_of(table) == {"id": "int64", "amount": "string", "score": "double", "day": "timestamp[us, tz=UTC]", "extra": "string"}
    assert [r["id"] for r in data_of(table)] == [3, 4]


def test_replace_rescue_keeps_the_table_schema(workspace, data_dir, ingest, one, policy):
    policy("replace", "rescue")
    load(data_dir, ingest, one, FIRST)
    load(data_dir, ingest, one, SECOND)
    table = table_of(workspace)
    assert list(types_of(table)) == ["id", "amount", "score", "day", "note", RESCUED_COLUMN]
    assert [r["id"] for r in data_of(table)] == [3, 4]


def test_evolve_refuses_a_type_no_column_holds_both_of(workspace, data_dir, ingest, one, policy):
    policy("append", "evolve")
    pq.write_table(pa.table({"id": [1], "v": [[1, 2]]}), data_dir / "t.parquet")
    one(ingest(data_dir))
    pq.write_table(pa.table({"id": [2], "v": ["text"]}), data_dir / "t.parquet")
    result = one(ingest(data_dir))
    assert result.outcome == "failed" and "cannot take this file's types" in result.message and "rescue" in result.message
    assert version_of(workspace) == 0


# ------------------------------------------------------------------------------------- append


def test_append_adds_each_new_content_once(workspace, data_dir, ingest, one, policy):
    policy("append")
    load(data_dir, ingest, one, "id,v\n1,a\n")
    second = load(data_dir, ingest, one, "id,v\n2,b\n3,c\n")
    assert (second.outcome, second.rows, second.version) == ("loaded", 2, 1)
    assert one(ingest(data_dir)).outcome == "unchanged"
    table = table_of(workspace)
    assert [r["id"] for r in data_of(table)] == [1, 2, 3]
    assert len(set(table["_load_id"].to_pylist())) == 2
    assert one(ingest(data_dir, force=True)).version == 2  # --force appends the same content again
    assert [r["id"] for r in data_of(table_of(workspace))] == [1, 2, 2, 3, 3]


def test_append_with_a_missing_column_needs_no_rewrite(workspace, data_dir, ingest, one, policy):
    policy("append")
    load(data_dir, ingest, one, "id,v,w\n1,a,x\n")
    result = load(data_dir, ingest, one, "id,v\n2,b\n")
    assert result.notes == ("schema: - w (missing, null in the new rows)",)
    last = Workspace.open(workspace).lake.open(RAW, "t").history(1)[0]
    assert last["operation"] == "WRITE" and last["operationParameters"]["mode"] == "Append"
    assert data_of(table_of(workspace)) == [{"id": 1, "v": "a", "w": "x"}, {"id": 2, "v": "b", "w": None}]


# -------------------------------------------------------------------------------------- merge


def test_merge_upserts_on_the_key(workspace, data_dir, ingest, one, policy):
    policy("merge", key=["id"])
    load(data_dir, ingest, one, "id,v\n1,a\n2,b\n")
    result = load(data_dir, ingest, one, "id,v\n2,B\n3,C\n")
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1)
    table = table_of(workspace)
    assert [(r["id"], r["v"]) for r in data_of(table)] == [(1, "a"), (2, "B"), (3, "C")]
    by_id = {r["id"]: r["_load_id"] for r in table.to_pylist()}
    assert by_id[2] == by_id[3] != by_id[1]  # updated rows carry the load that wrote them
    assert one(ingest(data_dir)).outcome == "unchanged"
    entry = history(Workspace.open(workspace).lake, "t")[-1]
    assert (entry["operation"], entry["mode"], entry["rows_added"], entry["rows_updated"]) == ("MERGE", "merge", 1, 1)


def test_merge_on_a_key_given_by_its_original_name_with_a_widened_type(workspace, data_dir, ingest, one, policy):
    policy("merge", key=["Customer Id"])
    load(data_dir, ingest, one, "Customer Id,score\n1,1\n2,2\n")
    result = load(data_dir, ingest, one, "Customer Id,score\n2,2.5\n3,3\n")
    assert (result.outcome, result.version) == ("loaded", 1), result.message
    assert [(r["customer_id"], r["score"]) for r in table_of(workspace).sort_by("customer_id").to_pylist()] == [
        (1, 1.0),
        (2, 2.5),
        (3, 3.0),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id,v\n1,a\n1,b\n", "the merge key (id = 1) is on 2 rows"),
        ("id,v\n1,a\n,b\n", "the merge key column id is empty on 1 rows"),
        ("ident,v\n1,a\n", "the merge key column 'id' is not in the file"),
    ],
    ids=["duplicate", "null", "missing"],
)
def test_a_bad_merge_key_fails_the_file_and_keeps_the_table(workspace, data_dir, ingest, one, policy, text, message):
    policy("merge", key=["id"])
    load(data_dir, ingest, one, "id,v\n5,e\n")
    result = load(data_dir, ingest, one, text)
    assert result.outcome == "failed" and message in result.message
    assert version_of(workspace) == 0


def test_a_default_merge_mode_without_a_key_fails_the_file(workspace, data_dir, ingest, one, configure):
    configure(workspace, {"ingest": {"mode": "merge"}})
    result = load(data_dir, ingest, one, "id\n1\n")
    assert result.outcome == "failed" and "ingest.tables.t.key" in result.message


def test_merge_needs_a_key_in_config(workspace, configure):
    configure(workspace, {"ingest": {"tables": {"t": {"mode": "merge"}}}})
    with pytest.raises(ConfigError, match=r"ingest\.tables\.t\.key = \[\]: mode merge needs the key columns"):
        Workspace.open(workspace)


def test_table_policy_falls_back_to_the_defaults(workspace, configure):
    configure(workspace, {"ingest": {"mode": "append", "schema": "freeze", "tables": {"u": {"mode": "merge", "key": ["id"]}}}})
    from autoflux.ingest.policy import table_policy

    settings = Workspace.open(workspace).config.ingest
    assert table_policy(settings, "t") == TablePolicy("append", "freeze")
    assert table_policy(settings, "u") == TablePolicy("merge", "freeze", ("id",))


# ------------------------------------------------------------------------------------- rules


@pytest.mark.parametrize(
    ("table", "incoming", "expected"),
    [
        (pa.int32(), pa.int64(), pa.int64()),
        (pa.int64(), pa.int32(), pa.int64()),
        (pa.int64(), pa.float64(), pa.float64()),
        (pa.float64(), pa.int64(), pa.float64()),
        (pa.date32(), pa.timestamp("us", tz="UTC"), pa.timestamp("us", tz="UTC")),
        (pa.int64(), pa.string(), pa.string()),
        (pa.bool_(), pa.int64(), pa.string()),
        (pa.string(), pa.int64(), pa.string()),
        (pa.int64(), pa.null(), pa.int64()),
        (pa.list_(pa.int64()), pa.string(), None),
    ],
)
def test_widen(table, incoming, expected):
    assert widen(table, incoming) == expected


def test_try_cast_finds_exactly_the_values_that_do_not_fit():
    values = [str(i) for i in range(10_000)]
    values[17], values[9000] = "x", "1.5"
    cast, bad = try_cast(pa.array(values + [None]), pa.int64())
    assert bad == [17, 9000]
    assert cast.null_count == 3 and cast[18].as_py() == 18 and cast.type == pa.int64()


def test_try_cast_reads_text_timestamps_with_or_without_a_zone():
    cast, bad = try_cast(pa.array(["2024-01-01 10:00:00", "2024-01-01T10:00:00+02:00", "soon"]), pa.timestamp("us", tz="UTC"))
    assert bad == [2]
    assert cast.to_pylist()[:2] == [dt.datetime(2024, 1, 1, 10, tzinfo=UTC), dt.datetime(2024, 1, 1, 8, tzinfo=UTC)]
