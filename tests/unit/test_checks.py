"""Train/test checks on DuckDB: planted problems are flagged, clean generated data stays quiet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from autoflux import load_training_data
from autoflux.checks import run_checks
from autoflux.engines import create_engine
from autoflux.exceptions import ChecksFailedError
from autoflux.workspace import Workspace


def dataset(seed: int, *, n_train: int = 2000, n_test: int = 500, regression: bool = False) -> tuple[pa.Table, pa.Table]:
    """Clean train and test rows from one distribution: numbers, counts, categories, a target that depends on them."""
    rng = np.random.default_rng(seed)

    def rows(n: int, start: int) -> dict[str, object]:
        x0, x1, x2 = rng.normal(size=n), rng.normal(5, 2, size=n), rng.exponential(size=n)
        signal = x0 + 0.5 * (x1 - 5) + rng.normal(size=n)
        return {
            "id": np.arange(start, start + n),
            "x0": x0,
            "x1": x1,
            "x2": x2,
            "count": rng.poisson(4, size=n),
            "level": rng.integers(0, 30, size=n),
            "colour": rng.choice(["red", "green", "blue", "cyan", "pink"], n),
            "select": rng.choice([f"c{i}" for i in range(12)], n),  # a keyword as a column name
            "target": signal if regression else (signal > 0).astype(np.int64),
        }

    train = pa.table(rows(n_train, 0))
    test = pa.table(rows(n_test, n_train))
    return train, test.drop_columns(["target"])


def checks(workspace: Path, train: pa.Table, test: pa.Table, *, target: str | None = "target", id_column: str | None = "id"):
    write_mart(workspace, train, test)
    ws = Workspace.open(workspace)
    engine = create_engine(ws)
    try:
        features = [c for c in train.column_names if c not in (target, id_column)]
        return run_checks(ws, engine, target=target, id_column=id_column, features=features)
    finally:
        engine.close()


def write_mart(workspace: Path, train: pa.Table, test: pa.Table) -> None:
    import duckdb

    train = train.append_column("split", pa.array(["train"] * train.num_rows))
    test = test.append_column("split", pa.array(["test"] * test.num_rows))
    mart = pa.concat_tables([train, test], promote_options="default")
    with duckdb.connect(str(workspace / "warehouse.duckdb")) as connection:
        connection.execute("create schema if not exists marts")
        connection.register("frame", mart)
        connection.execute("create or replace table marts.ml_training_set as select * from frame")


def flagged(report, check: str) -> set[str | None]:
    return {f.column for f in report.flags if f.check == check}


def test_twenty_clean_datasets_raise_no_flag(workspace):
    false_positives = []
    for seed in range(20):
        report = checks(workspace, *dataset(seed, regression=seed % 4 == 3))
        false_positives += [(seed, f.message) for f in report.flags]
    print(f"false positives on 20 clean datasets: {len(false_positives)}")
    assert false_positives == []


def test_a_near_copy_of_the_target_is_flagged(workspace):
    train, test = dataset(1)
    rng = np.random.default_rng(9)
    leak = np.asarray(train["target"]) + rng.normal(scale=0.05, size=train.num_rows)
    train = train.append_column("score_final", pa.array(leak))
    test = test.append_column("score_final", pa.array(rng.normal(0.5, 0.5, size=test.num_rows)))
    report = checks(workspace, train, test)
    assert flagged(report, "target_proxy") == {"score_final"}
    assert report.features["score_final"]["leak_metric"] == "AUC"


def test_a_near_copy_of_a_numeric_target_is_flagged(workspace):
    train, test = dataset(2, regression=True)
    rng = np.random.default_rng(3)
    train = train.append_column("echo", pa.array(np.asarray(train["target"]) * 2 + rng.normal(scale=0.01, size=train.num_rows)))
    test = test.append_column("echo", pa.array(rng.normal(size=test.num_rows)))
    report = checks(workspace, train, test)
    assert "echo" in flagged(report, "target_proxy")
    assert report.features["echo"]["leak_metric"] == "R²" and report.features["echo"]["leak_score"] > 0.95


def test_a_shifted_feature_is_flagged(workspace):
    train, test = dataset(3)
    test = test.set_column(test.column_names.index("x1"), "x1", pa.array(np.asarray(test["x1"]) + 1.5))
    report = checks(workspace, train, test)
    assert flagged(report, "psi") == {"x1"}


def test_unseen_categories_are_flagged(workspace):
    train, test = dataset(4)
    colours = np.asarray(test["colour"]).astype(object)
    colours[: test.num_rows // 5] = "violet"
    test = test.set_column(test.column_names.index("colour"), "colour", pa.array(colours.tolist()))
    report = checks(workspace, train, test)
    assert "colour" in flagged(report, "unseen")


def test_an_id_column_among_the_features_is_flagged(workspace):
    train, test = dataset(5)
    report = checks(workspace, train, test, id_column=None)  # the id is not known: it is a feature
    assert flagged(report, "id_like") == {"id"}
    assert {f.check for f in report.flags} <= {"id_like", "psi"}  # a row number also drifts between splits


def test_test_rows_copied_from_train_are_counted(workspace):
    train, test = dataset(6)
    copied = train.drop_columns(["target"]).slice(0, 40)
    copied = copied.set_column(0, "id", pa.array(np.arange(10_000, 10_040)))  # new ids, same features
    test = pa.concat_tables([test.slice(40), copied])
    report = checks(workspace, train, test)
    assert report.copied_rows == 40
    assert flagged(report, "copied_rows") == {None}


def test_schema_flags_a_target_with_values_in_test_and_a_column_in_one_split(workspace):
    train, test = dataset(7)
    test = test.append_column("target", pa.array(np.ones(test.num_rows, dtype=np.int64)))
    train = train.append_column("note", pa.array(["a"] * train.num_rows))
    report = checks(workspace, train, test)
    messages = [f.message for f in report.flags if f.kind == "schema"]
    assert any("target target has values in 500 test rows" in m for m in messages)
    assert any("note has values in train only" in m for m in messages)


def test_adversarial_validation_names_the_shifted_feature(workspace, configure):
    pytest.importorskip("sklearn")
    configure(workspace, {"ml": {"checks": {"adversarial": True}}})
    train, test = dataset(8)
    test = test.set_column(test.column_names.index("x2"), "x2", pa.array(np.asarray(test["x2"]) + 3))
    report = checks(workspace, train, test)
    assert report.adversarial["auc"] > 0.9 and report.adversarial["drivers"][0] == "x2"
    assert any(f.kind == "adversarial" for f in report.flags)


def test_fail_on_makes_the_hand_off_refuse_with_the_list(workspace, configure, cli):
    train, test = dataset(9)
    train = train.append_column("row", pa.array(np.arange(train.num_rows)))
    test = test.append_column("row", pa.array(np.arange(train.num_rows, train.num_rows + test.num_rows)))
    write_mart(workspace, train, test)
    configure(workspace, {"ml": {"target": "target", "id": "id", "checks": {"fail_on": ["leakage"]}}})
    with pytest.warns(UserWarning), pytest.raises(ChecksFailedError, match="leakage: row looks like an id"):
        load_training_data(workspace)
    result = cli("check", cwd=workspace)
    assert result.exit_code == 0 and "leakage: row looks like an id" in result.stdout


def test_dates_and_timestamps_are_binned_as_days(workspace):
    train, test = dataset(10)
    rng = np.random.default_rng(11)
    start = np.datetime64("2020-01-01")
    train = train.append_column("opened", pa.array(start + rng.integers(0, 365, train.num_rows).astype("timedelta64[D]")))
    test = test.append_column("opened", pa.array(start + rng.integers(0, 365, test.num_rows).astype("timedelta64[D]")))
    seconds = rng.integers(0, 365 * 86_400, train.num_rows + test.num_rows).astype("timedelta64[s]")
    seconds[train.num_rows :] += np.timedelta64(400 * 86_400, "s")  # test rows come later: drift
    stamps = pa.array(np.datetime64("2021-01-01T00:00:00") + seconds).cast(pa.timestamp("us", tz="UTC"))
    train = train.append_column("seen_at", stamps.slice(0, train.num_rows))
    test = test.append_column("seen_at", stamps.slice(train.num_rows))
    report = checks(workspace, train, test)
    assert report.features["opened"]["kind"] == "date" and report.features["opened"]["bins"] >= 15
    assert report.features["opened"]["psi"] < 0.1
    assert flagged(report, "psi") == {"seen_at"} and report.features["seen_at"]["kind"] == "date"
