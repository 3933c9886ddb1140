"""Write modes, schema policies and bad rows on the spark engine: the embedded engine's rules, real Spark.

Classic local Spark with ``format: parquet`` (each load a new ``v<N>`` folder swapped into the
catalog) runs every case; Sail (Spark Connect) with ``format: delta`` runs append, merge and
evolve. The cases and their expected values mirror ``tests/unit/ingest/test_ingest_modes_and_schema.py``
and ``test_ingest_bad_rows.py``. Classic Spark runs in the workspace test_spark_local.py ran the
example in (one SparkSession for both modules); each test has tables of its own.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from ingesting import run_ingest
from spark_helpers import make_workspace

from autoflux.engines import create_engine
from autoflux.ingest import FileResult
from autoflux.ingest.policy import RESCUED_COLUMN
from autoflux.ingest.quarantine import read_quarantine, staging_dir
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.ingest.state import read_log
from autoflux.workspace import Workspace

FIRST = "id,amount,score,day,note\n1,10,1,2024-01-01,a\n2,20,2,2024-01-02,b\n"
SECOND = "id,amount,score,day,extra\n3,abc,2.5,2024-01-03 10:30:00,x\n4,40,4,2024-01-04,y\n"
UTC = dt.UTC


def midnight(day: int) -> dt.datetime:
    return dt.datetime(2024, 1, day, tzinfo=UTC)


@pytest.fixture(scope="module")
def local(local_workspace) -> Path:
    return local_workspace


@pytest.fixture(scope="module")
def delta(sail, tmp_path_factory) -> Path:
    return make_workspace(tmp_path_factory.mktemp("policies_sail") / "ws", {"type": "spark", "master": sail, "format": "delta"})


class Loads:
    """One table of a workspace: set its policy, load text into it, read it back."""

    def __init__(self, root: Path, table: str, folder: Path, configure) -> None:
        self.root, self.table, self.folder, self.configure = root, table, folder, configure
        folder.mkdir()

    def policy(self, mode: str = "replace", schema: str = "evolve", key: list[str] | None = None) -> None:
        entry = {"mode": mode, "schema": schema} | ({"key": key} if key else {})
        self.configure(self.root, {"ingest": {"tables": {self.table: entry}}})

    def load(self, text: str) -> FileResult:
        (self.folder / f"{self.table}.csv").write_text(text)
        return self.run()

    def run(self) -> FileResult:
        (result,) = run_ingest(Workspace.open(self.root), [self.folder]).files
        return result

    @property
    def engine(self):
        return create_engine(Workspace.open(self.root))

    def table_rows(self) -> pa.Table:
        return self.engine.raw_store().read(self.table)

    def data(self) -> list[dict]:
        """Rows without lineage, sorted by id."""
        table = self.table_rows()
        return sorted(table.drop_columns(list(LINEAGE_COLUMNS)).to_pylist(), key=lambda r: r["id"])

    def types(self) -> dict[str, str]:
        return {f.name: str(f.type) for f in self.engine.raw_store().table(self.table).schema if f.name not in LINEAGE_COLUMNS}

    def version(self) -> int | None:
        return self.engine.raw_store().table(self.table).version


@pytest.fixture
def loads(tmp_path, configure):
    def make(root: Path, table: str) -> Loads:
        return Loads(root, table, tmp_path / table, configure)

    return make


# ---------------------------------------------------------------------- classic Spark, parquet


def test_append_adds_each_new_content_once(local, loads):
    t = loads(local, "appended")
    t.policy("append")
    assert t.load("id,v\n1,a\n").outcome == "loaded"
    second = t.load("id,v\n2,b\n3,c\n")
    assert (second.outcome, second.rows, second.version) == ("loaded", 2, 1), second.message
    assert t.run().outcome == "unchanged"
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "b"), (3, "c")]
    assert len(set(t.table_rows()["_load_id"].to_pylist())) == 2
    assert sorted(p.name for p in (local / "lake" / "raw" / "appended").iterdir()) == ["v1"]
    assert not (local / "lake" / "_autoflux" / "staging").exists() or not any((local / "lake" / "_autoflux" / "staging").iterdir())


def test_merge_upserts_on_the_key_and_refuses_a_bad_key(local, loads):
    t = loads(local, "merged")
    t.policy("merge", key=["id"])
    t.load("id,v\n1,a\n2,b\n")
    result = t.load("id,v\n2,B\n3,C\n")
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "B"), (3, "C")]
    by_id = {r["id"]: r["_load_id"] for r in t.table_rows().to_pylist()}
    assert by_id[2] == by_id[3] != by_id[1]  # updated rows carry the load that wrote them
    for text, message in [
        ("id,v\n1,a\n1,b\n", "the merge key (id = 1) is on 2 rows"),
        ("id,v\n1,a\n,b\n", "the merge key column id is empty on 1 rows"),
        ("ident,v\n1,a\n", "the merge key column 'id' is not in the file"),
    ]:
        failed = t.load(text)
        assert failed.outcome == "failed" and message in failed.message, failed.message
    assert t.version() == 1 and [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "B"), (3, "C")]


def test_merge_on_a_key_given_by_its_original_name_with_a_widened_type(local, loads):
    t = loads(local, "merged_widened")
    t.policy("merge", key=["Customer Id"])
    t.load("Customer Id,score\n1,1\n2,2\n")
    result = t.load("Customer Id,score\n2,2.5\n3,3\n")
    assert (result.outcome, result.version) == ("loaded", 1), result.message
    rows = sorted((r["customer_id"], r["score"]) for r in t.table_rows().to_pylist())
    assert rows == [(1, 1.0), (2, 2.5), (3, 3.0)]


# FIRST then SECOND appended under evolve: columns added, widened and missing, as on the embedded engine.
EVOLVED_TYPES = {
    "id": "int64",
    "amount": "string",
    "score": "double",
    "day": "timestamp[us, tz=UTC]",
    "note": "string",
    "extra": "string",
}
EVOLVED_ROWS = [
    {"id": 1, "amount": "10", "score": 1.0, "day": midnight(1), "note": "a", "extra": None},
    {"id": 2, "amount": "20", "score": 2.0, "day": midnight(2), "note": "b", "extra": None},
    {"id": 3, "amount": "abc", "score": 2.5, "day": dt.datetime(2024, 1, 3, 10, 30, tzinfo=UTC), "note": None, "extra": "x"},
    {"id": 4, "amount": "40", "score": 4.0, "day": midnight(4), "note": None, "extra": "y"},
]


def test_append_evolve_adds_widens_and_rewrites_in_one_version(local, loads):
    t = loads(local, "evolved")
    t.policy("append", "evolve")
    t.load(FIRST)
    result = t.load(SECOND)
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert set(result.notes) >= {
        "schema: ~ amount bigint → string",
        "schema: ~ score bigint → double",
        "schema: ~ day date → timestamp",
        "schema: + extra string",
    }
    assert "schema: - note (missing, null in the new rows)" in result.notes
    assert (t.types(), t.data()) == (EVOLVED_TYPES, EVOLVED_ROWS)


def test_freeze_refuses_every_difference_and_writes_nothing(local, loads):
    t = loads(local, "frozen")
    t.policy("append", "freeze")
    t.load(FIRST)
    before = t.data()
    result = t.load(SECOND)
    assert result.outcome == "failed"
    assert "the schema of raw.frozen is frozen" in result.message
    for difference in ("+ extra string", "- note", "~ amount bigint → string", "~ score bigint → double", "~ day date → timestamp"):
        assert difference in result.message
    assert "ingest.tables.frozen.schema" in result.message
    assert t.version() == 0 and t.data() == before
    fits = t.load("id,amount,score,day,note\n5,50,5,2024-01-05,007\n")  # values that fit: no change
    assert fits.outcome == "loaded", fits.message
    assert t.data()[-1] == {"id": 5, "amount": 50, "score": 5, "day": dt.date(2024, 1, 5), "note": "007"}


def test_rescue_keeps_the_schema_and_every_value(local, loads):
    t = loads(local, "rescued")
    t.policy("append", "rescue")
    t.load(FIRST)
    result = t.load(SECOND)
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
    t.load('id,amount\n5,1.50\n6," 7 "\n7,007\n')
    kept = {r["id"]: (r["amount"], r[RESCUED_COLUMN]) for r in t.data() if r["id"] >= 5}
    assert kept[7] == (7, None)  # 007 is the integer 7
    assert {i: (kept[i][0], json.loads(kept[i][1])) for i in (5, 6)} == {5: (None, {"amount": "1.50"}), 6: (None, {"amount": " 7 "})}


def test_bad_rows_are_quarantined_within_the_limits(local, loads, configure):
    t = loads(local, "ragged")
    configure(local, {"ingest": {"bad_rows": {"max_count": 5}}})
    try:
        result = t.load("id,name\n1,a\n2,b,extra\n3,c\n4\n5,e\n")
        assert (result.outcome, result.rows, result.quarantined, result.rows_read) == ("loaded", 3, 2, 5), result.message
        assert "5 rows read: 3 loaded, 2 that could not be parsed set aside in _autoflux.quarantine" in result.notes
        assert [r["id"] for r in t.data()] == [1, 3, 5]
        lake = Workspace.open(local).lake
        quarantined = sorted(
            (
                {k: r[k] for k in ("table", "file", "line", "reason", "raw")}
                for r in read_quarantine(lake).to_pylist()
                if r["table"] == "ragged"
            ),
            key=lambda r: r["line"],
        )
        assert quarantined == [
            {"table": "ragged", "file": "ragged.csv", "line": 3, "reason": "a row has 3 fields where the header has 2", "raw": "2,b,extra"},
            {"table": "ragged", "file": "ragged.csv", "line": 5, "reason": "a row has 1 fields where the header has 2", "raw": "4"},
        ]
        (entry,) = [e for e in read_log(lake).to_pylist() if e["table"] == "ragged"]
        assert (entry["rows"], entry["quarantined"]) == (3, 2)
        assert not list(staging_dir(local / ".autoflux").glob("*"))

        configure(local, {"ingest": {"bad_rows": {"max_count": 1}}})
        failed = t.load("id,name\n1,a\n2\n3,c\n4,d,e\n")
        assert failed.outcome == "failed"
        assert "2 rows cannot be parsed, more than ingest.bad_rows allows (max_count 1, max_fraction 0)" in failed.message
        assert "line 3" in failed.message, failed.message
        assert t.version() == 0 and [r["id"] for r in t.data()] == [1, 3, 5]
        assert len([r for r in read_quarantine(lake).to_pylist() if r["table"] == "ragged"]) == 2
    finally:
        configure(local, {"ingest": {"bad_rows": {"max_count": 0}}})
    by_default = t.load("id,name\n1,a\n2,b,c\n")
    assert by_default.outcome == "failed" and "line 3: a row has 3 fields where the header has 2" in by_default.message


def test_a_load_killed_before_logging_is_recovered(local, loads, monkeypatch, configure):
    """Parquet tables hold their last load in table properties: the next run publishes its bad rows and logs it."""
    import autoflux.ingest as ingest_module

    t = loads(local, "recovered")
    configure(local, {"ingest": {"bad_rows": {"max_count": 1}}})
    try:
        monkeypatch.setattr(ingest_module, "_publish_quarantine", lambda workspace, engine: None)

        def killed(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(ingest_module, "append_log", killed)
        with pytest.raises(KeyboardInterrupt):
            t.load("id,v\n1,a\n2\n3,c\n")
        monkeypatch.undo()
        (t.folder / "other.csv").write_text("id\n1\n")
        report = run_ingest(Workspace.open(local), [t.folder])
    finally:
        configure(local, {"ingest": {"bad_rows": {"max_count": 0}}})
    (entry,) = [e for e in report.recovered if e.table == "recovered"]
    assert (entry.rows, entry.quarantined, entry.version, entry.source_file) == (2, 1, 0, "recovered.csv")
    lake = Workspace.open(local).lake
    assert [r["raw"] for r in read_quarantine(lake).to_pylist() if r["table"] == "recovered"] == ["2"]
    assert {f.table: f.outcome for f in report.files} == {"recovered": "unchanged", "other": "loaded"}


def test_a_load_killed_between_its_commit_and_the_catalog_is_registered_by_the_next_run(local, loads, monkeypatch):
    """The version folder's marker commits a parquet load; a run killed after dropping the old
    catalog entry and before creating the new one leaves the table for the next run to register."""
    from autoflux.engines.spark.store import SparkRawStore

    t = loads(local, "swapped")
    assert t.load("id,v\n1,a\n").outcome == "loaded"

    def killed(self, table, folder, properties):
        self.spark.sql(f"drop table if exists raw.{table}")
        raise KeyboardInterrupt

    monkeypatch.setattr(SparkRawStore, "_register", killed)
    monkeypatch.setattr(SparkRawStore, "remove", lambda self, uri: None)  # a killed process cleans nothing up
    with pytest.raises(KeyboardInterrupt):
        t.load("id,v\n1,a\n2,b\n")
    monkeypatch.undo()
    assert "swapped" not in t.engine.raw_store().tables()
    report = run_ingest(Workspace.open(local), [t.folder])
    assert [(f.outcome, f.version) for f in report.files] == [("unchanged", 1)]
    assert [(e.table, e.version, e.rows) for e in report.recovered] == [("swapped", 1, 2)]
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "b")]
    folders = sorted(p.name for p in (Path(Workspace.open(local).lake.uri) / "raw" / "swapped").iterdir())
    assert folders == ["v1"]


# ------------------------------------------------------------------------------ Sail, Delta


def test_delta_append_and_merge_are_one_commit_each(delta, loads):
    lake = Workspace.open(delta).lake
    t = loads(delta, "appended")
    t.policy("append")
    t.load("id,v\n1,a\n")
    result = t.load("id,v\n2,b\n3,c\n")
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert [(r["id"], r["v"]) for r in t.data()] == [(1, "a"), (2, "b"), (3, "c")]
    last = lake.open("raw", "appended").history(1)[0]
    assert last["operationParameters"]["mode"] == "Append" and json.loads(last["userMetadata"])["autoflux.mode"] == "append"

    m = loads(delta, "merged")
    m.policy("merge", key=["id"])
    m.load("id,v\n1,a\n2,b\n")
    merged = m.load("id,v\n2,B\n3,C\n")
    assert (merged.outcome, merged.rows, merged.version) == ("loaded", 2, 1), merged.message
    assert [(r["id"], r["v"]) for r in m.data()] == [(1, "a"), (2, "B"), (3, "C")]
    embedded = lake.open("raw", "merged").to_pyarrow_table()  # delta-rs reads what Spark committed
    assert sorted(zip(embedded["id"].to_pylist(), embedded["v"].to_pylist(), strict=True)) == [(1, "a"), (2, "B"), (3, "C")]
    assert m.run().outcome == "unchanged"
    failed = m.load("id,v\n1,a\n1,b\n")
    assert failed.outcome == "failed" and "the merge key (id = 1) is on 2 rows" in failed.message
    assert lake.open("raw", "merged").version() == 1


def test_delta_append_evolve_adds_widens_and_rewrites_in_one_commit(delta, loads):
    t = loads(delta, "evolved")
    t.policy("append", "evolve")
    t.load(FIRST)
    result = t.load(SECOND)
    assert (result.outcome, result.rows, result.version) == ("loaded", 2, 1), result.message
    assert (t.types(), t.data()) == (EVOLVED_TYPES, EVOLVED_ROWS)
    assert Workspace.open(delta).lake.open("raw", "evolved").version() == 1


def test_a_folder_of_parts_on_spark_parquet_is_one_table_in_one_version_folder(local, tmp_path):
    events = tmp_path / "grouped" / "events"
    events.mkdir(parents=True)
    for i in (1, 2):
        (events / f"part-{i:05d}.csv").write_text(f"id\n{i}\n", encoding="utf-8")
    report = run_ingest(Workspace.open(local), [tmp_path / "grouped"])
    assert [f.outcome for f in report.files] == ["loaded", "loaded"], [f.message for f in report.files]
    engine = create_engine(Workspace.open(local))
    table = engine.raw_store().table("events", count=True)
    assert (table.rows, table.format, table.uri.rsplit("/", 1)[-1]) == (2, "parquet", f"v{report.files[0].version}")
    assert sorted(engine.raw_store().files("events")["files"]) == ["events/part-00001.csv", "events/part-00002.csv"]
