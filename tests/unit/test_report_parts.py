"""The report's parts without a run: the SQL profile (keyword names, nulls, sampling) and the lineage layout."""

from __future__ import annotations

import duckdb
import pyarrow as pa

import autoflux
from autoflux.engines import create_engine
from autoflux.report import lineage
from autoflux.report.profile import BINS, profile_table
from autoflux.workspace import Workspace


def _engine(tmp_path):
    return create_engine(Workspace.open(autoflux.init(tmp_path / "ws")))


def test_profile_quotes_keyword_names_and_counts(tmp_path):
    engine = _engine(tmp_path)
    data = pa.table(
        {
            "select": pa.array([1.0, 2.0, None, 4.0] * 50),
            "order": pa.array(["a", "b", "a", None] * 50),
            "group": pa.array([True, False, True, True] * 50),
            "split": pa.array(["train"] * 150 + ["test"] * 50),
        }
    )
    connection = duckdb.connect()
    connection.register("t", data)
    run = lambda sql: connection.sql(sql).to_arrow_table()  # noqa: E731
    profile = profile_table(engine, run, '"t"', schema="s", table="t", split_column="split")
    columns = {c.name: c for c in profile.columns}
    assert profile.rows == 200 and profile.split_rows == {"train": 150, "test": 50}
    assert columns["select"].nulls == 50 and columns["select"].min == 1.0 and columns["select"].max == 4.0
    assert len(columns["select"].histogram) == BINS and sum(b["n"] for b in columns["select"].histogram) == 150
    assert columns["order"].top[0] == {"value": "a", "n": 100} and columns["order"].nulls == 50
    assert columns["group"].mean == 0.75
    assert set(columns["order"].by_split) == {"train", "test"}
    sampled = profile_table(engine, run, '"t"', schema="s", table="t", sample_rows=100)
    assert sampled.sampled and abs(sum(b["n"] for b in {c.name: c for c in sampled.columns}["select"].histogram) - 150) <= BINS


def test_lineage_has_a_node_per_model_in_layers():
    manifest = {
        "sources": {"source.p.raw.train": {"name": "train"}},
        "nodes": {
            "model.p.stg_train": {
                "resource_type": "model",
                "name": "stg_train",
                "schema": "staging",
                "depends_on": {"nodes": ["source.p.raw.train"]},
            },
            "model.p.mart": {"resource_type": "model", "name": "mart", "schema": "marts", "depends_on": {"nodes": ["model.p.stg_train"]}},
            "test.p.t": {"resource_type": "test", "name": "t", "depends_on": {"nodes": ["model.p.mart"]}},
        },
    }
    results = {"model.p.mart": {"status": "error"}}
    graph = lineage.build(
        [{"file": "/d/train.csv", "table": "train", "outcome": "loaded"}],
        ["train"],
        manifest,
        results,
        {"relation": "marts.mart", "train": 3, "test": 1},
    )
    kinds = {n.id: n.kind for n in graph.nodes}
    assert sorted(n.label for n in graph.nodes if n.kind == "model") == ["mart", "stg_train"]
    assert ("model.p.stg_train", "model.p.mart") in graph.edges and ("raw.train", "model.p.stg_train") in graph.edges
    assert {"frame:train", "frame:test"} <= set(kinds)
    xs = {n.id: n.x for n in graph.nodes}
    assert xs["file:/d/train.csv"] < xs["raw.train"] < xs["model.p.stg_train"] < xs["model.p.mart"] < xs["frame:train"]
    assert next(n for n in graph.nodes if n.id == "model.p.mart").status == "failed"
    assert len(graph.paths) == len(graph.edges)


def test_lineage_lays_out_a_graph_with_cycles():
    """dbt refuses cycles, but a hand-edited manifest may have them: each cycle loses an edge in the layout, none in the graph."""

    def model(name: str, *parents: str) -> dict:
        return {"resource_type": "model", "name": name, "schema": "s", "depends_on": {"nodes": [f"model.p.{p}" for p in parents]}}

    manifest = {"nodes": {f"model.p.{n}": model(n, *ps) for n, ps in {"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"], "e": ["a"]}.items()}}
    graph = lineage.build([], [], manifest, {}, None)
    assert len(graph.edges) == 5 and len(graph.paths) == 5
    xs = {n.label: n.x for n in graph.nodes}
    assert xs["e"] > xs["a"]  # after its parent, whichever edge of a ⇄ b was dropped
    assert len({(n.x, n.y) for n in graph.nodes}) == 5  # no two nodes in one place
