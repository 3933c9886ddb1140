"""Write modes (replace, append, merge) and schema policies (evolve, freeze, rescue) on the embedded engine.

The cases every engine must pass alike (append, merge and its key, evolve, freeze, rescue) are
in ``tests/integration/test_ingest_policies.py``, run on each engine; here are those of the
embedded engine alone, the config checks, and the rules (:func:`~autoflux.ingest.schema.widen`,
:func:`~autoflux.ingest.policy.try_cast`). FIRST and SECOND are that module's evolution scenario.
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
from autoflux.workspace import Workspace

FIRST = "id,amount,score,day,note\n1,10,1,2024-01-01,a\n2,20,2,2024-01-02,b\n"
SECOND = "id,amount,score,day,extra\n3,abc,2.5,2024-01-03 10:30:00,x\n4,40,4,2024-01-04,y\n"
UTC = dt.UTC


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


# ---------------------------------------------------------------------------- schema policies


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


def test_append_with_a_missing_column_needs_no_rewrite(workspace, data_dir, ingest, one, policy):
    policy("append")
    load(data_dir, ingest, one, "id,v,w\n1,a,x\n")
    result = load(data_dir, ingest, one, "id,v\n2,b\n")
    assert result.notes == ("schema: - w (missing, null in the new rows)",)
    last = Workspace.open(workspace).lake.open(RAW, "t").history(1)[0]
    assert last["operation"] == "WRITE" and last["operationParameters"]["mode"] == "Append"
    assert data_of(table_of(workspace)) == [{"id": 1, "v": "a", "w": "x"}, {"id": 2, "v": "b", "w": None}]


# -------------------------------------------------------------------------------------- merge


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
