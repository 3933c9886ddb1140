"""Engine parity: a competition whose file and column names are SQL fragments, quotes, reserved
words and non-ASCII (:mod:`hostile`) builds the same training mart on every engine.

It runs end to end (ingest, the workspace's unchanged dbt project, hand-off) once per engine, and
each engine's mart is compared with the reference engine's: the same column names in the same
order, types of the same family, the same rows ordered by id, values equal (floats within a
relative 1e-9). The bundled example's parity is proved in test_reproduce: its frames hash alike on
every engine, with the same columns in the same order and types of one family.

To add an engine: append its name to ``ENGINES`` and define a module-scoped fixture
``<name>_engine`` that returns the ``engine`` section of autoflux.yml for it (calling
``requirement`` when its service or package is missing, so CI fails rather than skips).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from hostile import (
    HOSTILE_COLUMNS,
    SQL_VALUE,
    duckdb_keywords,
    postgres_keywords,
    spark_keywords,
    write_hostile_competition,
)
from parity import family, same

import autoflux
from autoflux.engines import create_engine
from autoflux.workspace import Workspace

ENGINES = ["duckdb", "postgres", "spark"]
REFERENCE = "duckdb"
ID = "id"


@pytest.fixture(scope="module")
def duckdb_engine() -> dict[str, Any]:
    return {"type": "duckdb"}


@pytest.fixture(scope="module")
def postgres_engine(postgres) -> dict[str, Any]:
    """A scratch database on the test PostgreSQL (two workspaces never share a database)."""
    return postgres.engine_settings(postgres.create_database())


@pytest.fixture(scope="module")
def spark_engine(requirement) -> dict[str, Any]:
    """Local Spark, Derby metastore in the workspace, Parquet tables (no Delta connector offline)."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        requirement(False, 'pyspark is not installed (pip install "autoflux[spark]")')
    requirement(shutil.which("java") or os.environ.get("JAVA_HOME"), "no Java: install Java 17 or 21")
    from spark_helpers import local_engine

    return local_engine()


def run_dataset(settings: Mapping[str, Any], folder: Path, dataset: Path) -> pa.Table:
    """``autoflux run`` of ``dataset`` in a fresh workspace on the engine ``settings`` describe; its mart."""
    root = autoflux.init(folder / "ws")
    config_path = root / "autoflux.yml"
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["engine"] = dict(settings)
    # ~300 features: the train/test checks would dominate the run (the example runs them on every engine)
    config.setdefault("ml", {})["checks"] = {"enabled": False}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        for variable in [v for v in os.environ if v.startswith("AUTOFLUX")]:
            patch.delenv(variable)
        summary = autoflux.run(root, [dataset], report=False)  # the report is tested on each engine apart
        assert summary.handoff is not None, "the run built no training mart"
        workspace = Workspace.open(root)
        engine = create_engine(workspace)
        try:
            return engine.read_arrow(workspace.config.ml.schema_, workspace.config.ml.table)
        finally:
            engine.close()


@pytest.fixture(scope="module")
def dataset(request, tmp_path_factory) -> Path:
    request.getfixturevalue("spark_engine")  # Spark's keywords need pyspark and Java
    keywords = (
        duckdb_keywords() | postgres_keywords(request.getfixturevalue("postgres")) | spark_keywords(tmp_path_factory.getbasetemp().parent)
    )
    # train and test have every keyword as a column, through to the mart: keywords.csv (tests/e2e) would add a third wide file
    return write_hostile_competition(tmp_path_factory.mktemp("hostile") / "data", sorted(keywords), keyword_table=False)


@pytest.fixture(scope="module")
def reference(request, tmp_path_factory, dataset) -> pa.Table:
    settings = request.getfixturevalue(f"{REFERENCE}_engine")
    return run_dataset(settings, tmp_path_factory.mktemp(REFERENCE), dataset)


@pytest.fixture(scope="module", params=[e for e in ENGINES if e != REFERENCE])
def mart(request, tmp_path_factory, dataset) -> tuple[str, pa.Table]:
    settings = request.getfixturevalue(f"{request.param}_engine")
    return request.param, run_dataset(settings, tmp_path_factory.mktemp(request.param), dataset)


def test_the_reference_mart_is_the_dataset(reference):
    names = reference.column_names
    assert names[: len(HOSTILE_COLUMNS) - 1] == list(HOSTILE_COLUMNS.values())[:-1] and names[-2:] == ["target", "split"]
    assert {"at", "select", "user", "current_user", "analyse", "authorization", "time"} <= set(names)
    assert sorted(reference[ID].to_pylist()) == list(range(9))
    assert set(reference["from"].to_pylist()) == {SQL_VALUE}


def test_the_mart_is_the_same_on_every_engine(reference, mart):
    engine, table = mart
    assert table.column_names == reference.column_names, engine
    assert [family(f.type) for f in table.schema] == [family(f.type) for f in reference.schema], (
        f"{engine}: {table.schema} vs {REFERENCE}: {reference.schema}"
    )
    assert table.num_rows == reference.num_rows, engine
    ours, theirs = table.sort_by(ID), reference.sort_by(ID)
    for name in reference.column_names:
        values, expected = ours[name].to_pylist(), theirs[name].to_pylist()
        differing = [(theirs[ID][i].as_py(), a, b) for i, (a, b) in enumerate(zip(values, expected, strict=False)) if not same(a, b)]
        assert not differing, f"{engine}: column {name!r} differs from {REFERENCE} at (id, {engine}, {REFERENCE}) {differing[:5]}"
