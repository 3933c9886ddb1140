"""Hand-off: roles from config or inferred, the split, formats, the manifest (mart built without dbt)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pyarrow as pa
import pytest
from ingesting import run_ingest

from autoflux import load_training_data
from autoflux.content_hash import ContentHash, content_hash
from autoflux.engines import create_engine
from autoflux.exceptions import ConfigError, TableNotFoundError
from autoflux.handoff import StaleDataWarning, ml_roles
from autoflux.pipeline import Pipeline
from autoflux.workspace import Workspace

# Most marts here are written without dbt on purpose: their "no build record" warning is expected
# (tests of the warning itself use pytest.warns, which sees it regardless).
pytestmark = pytest.mark.filterwarnings("ignore:no build record:autoflux.handoff.StaleDataWarning")


def write_raw(workspace: Path, tmp_path: Path, files: dict[str, str]) -> None:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for name, text in files.items():
        (data / name).write_text(text)
    report = run_ingest(Workspace.open(workspace), [data])
    assert not report.failed


def write_mart(workspace: Path, table: pa.Table, *, schema: str = "marts", name: str = "ml_training_set") -> None:
    import duckdb

    with duckdb.connect(str(workspace / "warehouse.duckdb")) as connection:
        connection.execute(f"create schema if not exists {schema}")
        connection.register("frame", table)
        connection.execute(f"create or replace table {schema}.{name} as select * from frame")


MART = pa.table(
    {
        "passenger_id": [1, 2, 3, 4],
        "age": [30, 40, 50, 60],
        "survived": [1, 0, None, None],
        "split": ["train", "train", "test", "test"],
    }
)


@pytest.fixture
def competition(workspace, tmp_path):
    write_raw(
        workspace,
        tmp_path,
        {
            "train.csv": "PassengerId,Age,Survived\n1,30,1\n2,40,0\n",
            "test.csv": "PassengerId,Age\n3,50\n4,60\n",
        },
    )
    write_mart(workspace, MART)
    return workspace


def test_roles_are_inferred_from_the_raw_tables(competition):
    ws = Workspace.open(competition)
    assert ml_roles(ws, create_engine(ws).raw_store()) == ("survived", "passenger_id")


def test_sample_submission_names_target_and_id(workspace, tmp_path):
    write_raw(
        workspace,
        tmp_path,
        {
            "train.csv": "key,x,label\n1,2,0\n",
            "test.csv": "key,x,label\n3,4,\n",  # same columns: train-only inference cannot decide
            "sample_submission.csv": "key,label\n3,0\n",
        },
    )
    ws = Workspace.open(workspace)
    assert ml_roles(ws, create_engine(ws).raw_store()) == ("label", "key")


def test_split_target_and_id(competition):
    data = load_training_data(competition, format="arrow")
    assert (data.target, data.id) == ("survived", "passenger_id")
    assert data.train.column_names == ["passenger_id", "age", "survived"]
    assert data.test.column_names == ["passenger_id", "age"]
    assert data.train["passenger_id"].to_pylist() == [1, 2]
    assert data.test["passenger_id"].to_pylist() == [3, 4]
    assert data.features == ["age"]


def test_train_and_test_rows_in_any_order_keep_their_order(workspace, tmp_path):
    """A mart whose rows are not train first is split by filtering; a row with no split is in neither frame."""
    write_raw(workspace, tmp_path, {"train.csv": "PassengerId,Age,Survived\n1,30,1\n", "test.csv": "PassengerId,Age\n3,50\n"})
    mixed = pa.table({"passenger_id": [1, 2, 3, 4, 5], "age": [5, 4, 3, 2, 1], "split": ["test", "train", None, "train", "test"]})
    write_mart(workspace, mixed)
    data = load_training_data(workspace, format="arrow")
    assert data.train["passenger_id"].to_pylist() == [2, 4]
    assert data.test["passenger_id"].to_pylist() == [1, 5]
    assert data.manifest["rows"] == {"train": 2, "test": 2}


def test_config_roles_win(competition, configure):
    configure(competition, {"ml": {"target": "age", "id": "passenger_id", "format": "polars"}})
    data = load_training_data(competition)
    assert (data.target, data.id) == ("age", "passenger_id")
    assert type(data.train).__module__.startswith("polars")
    assert "age" not in data.test.columns
    assert data.features == ["survived"]


def test_a_configured_target_missing_from_the_mart_is_an_error(competition, configure):
    configure(competition, {"ml": {"target": "Survived "}})
    with pytest.raises(ConfigError) as caught:
        load_training_data(competition)
    message = str(caught.value)
    assert "ml.target 'Survived '" in message and "marts.ml_training_set" in message and "survived" in message


def test_a_missing_split_column_is_a_config_error(competition, configure):
    configure(competition, {"ml": {"split_column": "fold"}})
    with pytest.raises(ConfigError, match="no split column 'fold'"):
        load_training_data(competition)


def test_another_table_and_schema(competition, configure):
    write_mart(competition, MART.slice(0, 3), schema="gold", name="features")
    configure(competition, {"ml": {"schema": "gold"}})
    data = load_training_data(competition, table="features", format="pandas")
    assert (len(data.train), len(data.test)) == (2, 1)
    assert data.manifest["relation"] == "gold.features"
    assert data.manifest_path.name == "features.manifest.json"


def test_a_missing_mart_says_to_run_transform(workspace):
    with pytest.raises(TableNotFoundError, match="autoflux transform"):
        load_training_data(workspace)


def test_an_unknown_format_is_a_config_error(competition):
    with pytest.raises(ConfigError, match="use one of pandas, polars, arrow"):
        load_training_data(competition, format="numpy")


def test_spark_frames_need_the_spark_engine(competition, configure):
    configure(competition, {"ml": {"format": "spark"}})
    with pytest.raises(ConfigError) as caught:
        load_training_data(competition)
    assert "'spark'" in str(caught.value) and "engine is duckdb" in str(caught.value)


def test_without_a_build_record_the_manifest_claims_no_inputs(competition):
    with pytest.warns(StaleDataWarning, match="no build record"):
        data = load_training_data(competition, format="arrow")
    on_disk = json.loads(data.manifest_path.read_text())
    assert on_disk["raw_tables"] == {} and on_disk["dbt_models"] == {}  # dbt never built this mart
    assert on_disk["build"] is None and on_disk["stale"] is None
    assert on_disk["rows"] == {"train": 2, "test": 2}
    assert on_disk["frames"]["train"]["content_hash"] == content_hash(data.train)
    assert on_disk["features"] == ["age"]


def test_manifest_records_what_the_mart_was_built_from_and_what_changed_since(workspace, tmp_path):
    write_raw(workspace, tmp_path, {"train.csv": "PassengerId,Age,Survived\n1,30,1\n2,40,0\n", "test.csv": "PassengerId,Age\n3,50\n4,60\n"})
    pipeline = Pipeline.open(workspace)
    pipeline.transform(test=False)
    built = json.loads((workspace / ".autoflux" / "build.json").read_text())
    (tmp_path / "data" / "train.csv").write_text("PassengerId,Age,Survived\n1,31,1\n2,41,0\n")
    second = run_ingest(Workspace.open(workspace), [tmp_path / "data"])  # ingest, no transform
    with pytest.warns(StaleDataWarning, match="changed since marts.ml_training_set was built: train"):
        data = load_training_data(workspace, format="arrow")
    assert data.train["age"].to_pylist() == [30, 40]  # the frames hold what the build read ...
    manifest = json.loads(data.manifest_path.read_text())
    assert manifest["raw_tables"]["train"]["version"] == 0  # ... and the manifest says so
    assert manifest["raw_tables"]["train"]["load_id"] != second.load_id
    assert manifest["raw_tables"] == built["raw_tables"]
    assert manifest["stale"] == ["train"]
    assert set(manifest["dbt_models"]) >= {"stg_train", "stg_test", "stg_full", "ml_training_set"}
    assert all(len(m["compiled_sha256"]) == 64 for m in manifest["dbt_models"].values())
    build = manifest["build"]
    assert build["engine"] == "duckdb" and len(build["config_sha256"]) == 64
    assert {"autoflux", "dbt-core", "dbt-duckdb", "duckdb"} <= set(build["versions"])
    assert manifest["frames"]["test"] == {"rows": 2, "content_hash": content_hash(data.test)}
    pipeline.transform(test=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = load_training_data(workspace, format="arrow")
    assert fresh.manifest["stale"] == [] and fresh.manifest["raw_tables"]["train"]["version"] == 1
    assert fresh.train["age"].to_pylist() == [31, 41]
    pipeline.close()


def test_content_hash_ignores_row_order_and_integer_width():
    one = pa.table({"a": [1, 2, None], "b": ["x", "y", "z"], "c": [0.1 + 0.2, 1.5, float("nan")]})
    other = pa.table({"c": [1.5, float("nan"), 0.3], "b": ["y", "z", "x"], "a": pa.array([2, None, 1], pa.int32())})
    assert content_hash(one) == content_hash(other)
    assert content_hash(one) != content_hash(one.slice(0, 2))
    assert content_hash(one) != content_hash(pa.concat_tables([one, one.slice(0, 1)]))


def test_reproduce_refuses_a_manifest_without_a_build_record(competition, cli):
    with pytest.warns(StaleDataWarning):
        data = load_training_data(competition, format="arrow")
    result = cli("reproduce", str(data.manifest_path), cwd=competition)
    assert result.exit_code == 1
    assert "no build record" in result.error_lines()[0] and "autoflux transform" in result.error_lines()[0]
    assert cli("reproduce", str(competition / "nope.json"), cwd=competition).exit_code == 1


def test_the_content_hash_tells_subnormal_floats_apart():
    """A value below a double's normal range (1e-320) has a mantissa of its own, as every other float: one step
    of ``value / 10**exponent`` divided by zero there, and every subnormal value of a sign hashed alike."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the division by zero warned
        tiny = [content_hash(pa.table({"x": [value]})) for value in (1e-320, 3e-320, -1e-320, 5e-324)]
    assert len(set(tiny)) == 4
    assert content_hash(pa.table({"x": [1e-320]})) == content_hash(pa.table({"x": [1.0000000000001e-320]}))


def test_the_hand_off_of_a_run_reads_the_mart_in_batches_and_writes_the_manifest_training_data_writes(workspace, tmp_path, monkeypatch):
    from autoflux.engines import duckdb as duckdb_engine
    from autoflux.handoff import hand_off

    write_raw(workspace, tmp_path, {"train.csv": "PassengerId,Age,Survived\n1,30,1\n2,40,0\n", "test.csv": "PassengerId,Age\n3,50\n4,60\n"})
    rows = 25
    mart = pa.table(
        {
            "passenger_id": list(range(rows)),
            "age": [float(i) / 3 for i in range(rows)],
            "name": [f"n{i % 4}" for i in range(rows)],
            "survived": [i % 2 if i % 3 else None for i in range(rows)],
            "split": [("train", "test", None)[i % 3] for i in range(rows)],  # a null split is neither
        }
    )
    write_mart(workspace, mart)
    ws = Workspace.open(workspace)
    engine = create_engine(ws)
    monkeypatch.setattr(duckdb_engine, "STREAM_ROWS", 4)
    batches = []
    monkeypatch.setattr(
        duckdb_engine.Engine,
        "read_arrow",
        lambda *_: pytest.fail("the hand-off of a run read the whole mart into memory"),
    )
    fold = ContentHash.add
    monkeypatch.setattr(ContentHash, "add", lambda self, part: (batches.append(part.num_rows), fold(self, part)))
    streamed, path = hand_off(ws, engine)
    monkeypatch.undo()
    assert len(batches) > 2 and max(batches) <= 4  # train and test parts of 4-row batches
    assert streamed["rows"] == {"train": 9, "test": 8}
    in_memory = load_training_data(workspace, format="arrow").manifest
    assert streamed["frames"] == in_memory["frames"]
    assert (streamed["target"], streamed["id"], streamed["features"]) == ("survived", "passenger_id", ["age", "name"])
    assert json.loads(path.read_text())["frames"] == in_memory["frames"]
    engine.close()
