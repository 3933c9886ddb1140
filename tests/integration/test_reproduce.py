"""Reproduce: the example's frames rebuilt from a hand-off manifest on DuckDB, PostgreSQL and local
Spark (``format: parquet``, its own scratch catalog) hash alike (the content hash is
engine-independent); a raw version vacuumed away, or not kept by a Parquet table, is named, exit 1."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import yaml
from parity import family

import autoflux
from autoflux.content_hash import content_hash
from autoflux.engines import create_engine
from autoflux.workspace import Workspace


def _engine_section(root: Path, engine: dict[str, Any], *, checks: bool = True) -> None:
    path = root / "autoflux.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config["engine"] = engine
    config.setdefault("ml", {})["checks"] = {"enabled": checks}
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def _run_and_hand_off(root: Path, example_dir: Path, cli: Callable[..., Any]) -> dict[str, Any]:
    """`autoflux run` on the example, then the hand-off manifest (what training got)."""
    result = cli("run", str(example_dir), "-w", str(root))
    assert result.exit_code == 0, result.output
    data = autoflux.load_training_data(root, format="arrow")
    assert data.manifest["build"] and data.manifest["raw_tables"]
    return {"manifest": data.manifest, "manifest_path": data.manifest_path}


@pytest.fixture(scope="module")
def spark_settings(requirement) -> dict[str, Any]:
    """Local Spark, Derby metastore in the workspace, Parquet tables (no Delta connector offline)."""
    import os

    try:
        import pyspark  # noqa: F401
    except ImportError:
        requirement(False, 'pyspark is not installed (pip install "autoflux[spark]")')
    requirement(shutil.which("java") or os.environ.get("JAVA_HOME"), "no Java: install Java 17 or 21")
    from spark_helpers import local_engine

    return local_engine()


def _catalog(root: Path) -> dict[str, Any]:
    """What the workspace's engine holds (each raw table's version and rows, the models' relations with rows), and
    the files of its lake and warehouse (size, modified time)."""
    workspace = Workspace.open(root)
    engine = create_engine(workspace)
    try:
        store = engine.raw_store()
        raw = {name: (t.version, t.rows) for name in store.tables() for t in [store.table(name, count=True)]}
        relations = sorted(engine.relations(["staging", "marts"]), key=lambda r: (r.schema, r.name))
    finally:
        engine.close()
    folders = [Path(workspace.lake.uri), root / "warehouse", root / "warehouse.duckdb"]
    files = {str(f): (f.stat().st_size, f.stat().st_mtime_ns) for folder in folders for f in [folder, *folder.rglob("*")] if f.is_file()}
    return {"raw": raw, "relations": relations, "files": files}


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory, example_dir, request) -> Callable[[str], dict[str, Any]]:
    """``reproduced(engine)``: the example run, handed off and reproduced by ``autoflux reproduce --out`` on that engine (once per module)."""
    run_cli = request.getfixturevalue("cli")
    done: dict[str, dict[str, Any]] = {}

    def make(engine: str) -> dict[str, Any]:
        if engine in done:
            return done[engine]
        root = autoflux.init(tmp_path_factory.mktemp(engine) / "ws")
        if engine == "postgres":
            postgres = request.getfixturevalue("postgres")
            database = postgres.create_database()
            _engine_section(root, postgres.engine_settings(database))
        if engine == "spark":
            # the checks (minutes on local Spark) are not what reproduce proves
            _engine_section(root, request.getfixturevalue("spark_settings"), checks=False)
        handed = _run_and_hand_off(root, example_dir, run_cli)
        before = _catalog(root)
        out = root.parent / "out"
        result = run_cli("reproduce", str(handed["manifest_path"]), "--out", str(out), "-w", str(root))
        assert result.exit_code == 0, result.output
        frames = {split: pq.read_table(out / f"{split}.parquet") for split in ("train", "test")}
        done[engine] = {**handed, "root": root, "out": out, "frames": frames, "output": result.output, "before": before}
        if engine == "postgres":
            done[engine]["database"] = database
        return done[engine]

    return make


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_the_example_reproduces_with_the_manifest_hashes(engine, reproduced):
    built = reproduced(engine)
    recorded = built["manifest"]["frames"]
    for split, frame in built["frames"].items():
        assert frame.num_rows == recorded[split]["rows"] and content_hash(frame) == recorded[split]["content_hash"]
    assert json.loads((built["out"] / "manifest.json").read_text())["frames"] == recorded
    assert built["manifest"]["build"]["engine"] == engine
    again = autoflux.load_training_data(built["root"], manifest=built["manifest_path"], format="arrow")  # the API, too
    assert content_hash(again.train) == recorded["train"]["content_hash"]
    assert not list((built["root"] / ".autoflux").glob("reproduce/*"))  # scratch space is gone


@pytest.mark.parametrize("engine", ["duckdb", "postgres", "spark"])
def test_reproduce_leaves_the_workspace_tables_as_they_were(engine, reproduced):
    built = reproduced(engine)
    after = _catalog(built["root"])  # on Spark: the workspace's own session and catalog, usable again
    assert after == built["before"] and after["files"]
    assert set(after["raw"]) == {"sample_submission", "test", "train"}
    assert ("marts", "ml_training_set", 1400) in {(r.schema, r.name, r.rows) for r in after["relations"]}


def test_reproduce_on_postgres_rebuilds_in_a_scratch_database_and_drops_it(reproduced, postgres):
    built = reproduced("postgres")
    leftovers = postgres.query("postgres", f"select datname from pg_database where datname like '{built['database']}%scratch%'")
    assert leftovers == []
    rows = postgres.query(built["database"], "select count(*) from marts.ml_training_set")
    assert rows == [(1400,)]  # the workspace's own mart is untouched


@pytest.mark.parametrize("engine", ["postgres", "spark"])
def test_the_example_frames_hash_alike_to_duckdb_s(engine, reproduced):
    """The example's parity across engines (test_engine_parity compares the hostile competition's marts):
    the same roles, the same columns in the same order with types of one family, the same content."""
    duckdb, other = reproduced("duckdb"), reproduced(engine)
    roles = ("target", "id", "features")
    assert {k: other["manifest"][k] for k in roles} == {k: duckdb["manifest"][k] for k in roles}
    for split in ("train", "test"):
        ours, theirs = other["frames"][split], duckdb["frames"][split]
        assert ours.column_names == theirs.column_names
        assert [family(f.type) for f in ours.schema] == [family(f.type) for f in theirs.schema], (
            f"{engine}: {ours.schema} vs duckdb: {theirs.schema}"
        )
        assert duckdb["manifest"]["frames"][split] == other["manifest"]["frames"][split]
        assert content_hash(ours) == content_hash(theirs)


def test_reproduce_after_the_version_was_vacuumed_names_it_and_exits_1(workspace, example_dir, tmp_path, cli):
    handed = _run_and_hand_off(workspace, example_dir, cli)
    assert handed["manifest"]["raw_tables"]["train"]["version"] == 0
    data = tmp_path / "data"
    shutil.copytree(example_dir, data)
    with (data / "train.csv").open("a", encoding="utf-8") as rows:  # a new version 1 of raw.train
        rows.write((example_dir / "train.csv").read_text(encoding="utf-8").splitlines()[1].replace("1,", "100001,", 1) + "\n")
    assert cli("ingest", str(data), "-w", str(workspace)).exit_code == 0
    vacuum = cli("vacuum", "--retention-hours", "0", "-w", str(workspace))
    assert vacuum.exit_code == 0, vacuum.output
    result = cli("reproduce", str(handed["manifest_path"]), "-w", str(workspace))
    assert result.exit_code == 1
    (line,) = result.error_lines()
    assert re.search(r"raw\.train version 0: its files were vacuumed \(\d+ of \d+ data files are gone\)", line), line
    assert "raw.test" not in line  # raw.test has one version: still readable


def test_reproduce_of_a_parquet_version_spark_no_longer_keeps_says_so_and_exits_1(reproduced, example_dir, tmp_path, cli):
    built = reproduced("spark")
    assert built["manifest"]["raw_tables"]["train"]["version"] == 0
    data = tmp_path / "data"
    shutil.copytree(example_dir, data)
    with (data / "train.csv").open("a", encoding="utf-8") as rows:  # version 1 of raw.train replaces v0
        rows.write((example_dir / "train.csv").read_text(encoding="utf-8").splitlines()[1].replace("1,", "100001,", 1) + "\n")
    assert cli("ingest", str(data), "-w", str(built["root"])).exit_code == 0
    result = cli("reproduce", str(built["manifest_path"]), "-w", str(built["root"]))
    assert result.exit_code == 1
    (line,) = result.error_lines()
    assert "raw.train version 0 is not kept (its current version is 1): a format: parquet table keeps only its current version" in line
    assert "set engine.format: delta" in line and "raw.test" not in line
