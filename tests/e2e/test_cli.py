"""The CLI as a user runs it, on the bundled example, in a temporary folder.

One workspace is initialised and run once per session (a real subprocess, as from a shell); the
read-only assertions share it. Tests that run again (second run, plain `dbt run`) leave it as
they found it: same Delta versions, same tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import autoflux
from autoflux.lake import RAW
from autoflux.workspace import Workspace

RAW_ROWS = {"train": 1000, "test": 400, "sample_submission": 400}
MODELS = {"stg_train", "stg_test", "stg_sample_submission", "stg_full", "ml_training_set"}


@dataclass(frozen=True)
class Ran:
    root: Path
    ws: Path
    init: object
    run: object


@pytest.fixture(scope="session")
def example_ws(tmp_path_factory, cli_process, example_dir) -> Ran:
    """`autoflux init ws` then `autoflux run <example>` inside ws, as subprocesses."""
    root = tmp_path_factory.mktemp("e2e")
    init = cli_process("init", "ws", cwd=root)
    assert init.exit_code == 0, init.output
    run = cli_process("run", str(example_dir), cwd=root / "ws")
    assert run.exit_code == 0, run.output
    return Ran(root, root / "ws", init, run)


# ------------------------------------------------------------------------------ init and run


def test_init_creates_config_and_dbt_project(example_ws):
    ws = example_ws.ws
    assert "Created workspace" in example_ws.init.stdout
    assert (ws / "autoflux.yml").read_text().startswith("#")  # commented
    assert (ws / "dbt" / "dbt_project.yml").is_file()
    assert (ws / "dbt" / "models" / "staging").is_dir()
    assert (ws / "dbt" / "models" / "marts").is_dir()


def test_init_refuses_an_existing_workspace(example_ws, cli):
    result = cli("init", "ws", cwd=example_ws.root)
    assert result.exit_code == 1
    assert "already a workspace" in result.stderr


def test_run_prints_a_summary(example_ws):
    out = example_ws.run.stdout
    for table, rows in RAW_ROWS.items():
        assert any(f"raw.{table}" in line and "loaded" in line and f" {rows} " in line for line in out.splitlines()), out
    assert "skipped" in out and "README.md" in out and "unknown file type" in out
    assert "dbt: 5 models built" in out
    assert "Training data: marts.ml_training_set — 1,000 train rows, 400 test rows, target 'default', id 'id'" in out
    assert "Time: ingest" in out and "transform" in out
    assert "Traceback" not in example_ws.run.output


def test_run_builds_the_dbt_project_from_the_raw_tables(example_ws):
    models = example_ws.ws / "dbt" / "models"
    sources = (models / "sources.yml").read_text()
    assert all(f"name: {table}" in sources for table in RAW_ROWS)
    assert "annual_income" in sources and "source column 'Annual Income ($)'" in sources
    assert {p.stem for p in (models / "staging").glob("*.sql")} == MODELS - {"ml_training_set"}
    assert (models / "marts" / "ml_training_set.sql").is_file()


def test_tables_lists_raw_staging_and_marts_with_row_counts(example_ws, cli):
    result = cli("tables", "--json", cwd=example_ws.ws)
    assert result.exit_code == 0
    rows = {(r["schema"], r["table"]): r for r in json.loads(result.stdout)}
    for table, count in RAW_ROWS.items():
        expected = {"schema": "raw", "table": table, "rows": count, "version": 0, "format": "delta"}
        assert rows[("raw", table)].items() >= expected.items()
    assert rows[("staging", "stg_train")]["rows"] == 1000
    assert rows[("staging", "stg_test")]["rows"] == 400
    assert rows[("staging", "stg_full")]["rows"] == 1400
    assert rows[("marts", "ml_training_set")]["rows"] == 1400
    assert rows[("marts", "ml_training_set")]["format"] == "table"


def test_tables_human_output(example_ws, cli):
    result = cli("tables", cwd=example_ws.ws)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    expected = [("raw", "train", 1000), ("raw", "test", 400), ("staging", "stg_full", 1400), ("marts", "ml_training_set", 1400)]
    for schema, table, rows in expected:
        assert any(schema in line and f" {table} " in line and f" {rows} " in line for line in lines), result.stdout


def test_quiet_prints_nothing_on_stdout(example_ws, cli, example_dir):
    for args in (["ingest", str(example_dir)], ["tables"], ["export", "ml_training_set", str(example_ws.root / "q.parquet")]):
        result = cli(*args, "--quiet", cwd=example_ws.ws)
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
    assert (example_ws.root / "q.parquet").is_file()


def test_ingest_json_structure(example_ws, cli, example_dir):
    result = cli("ingest", str(example_dir), "--json", cwd=example_ws.ws)
    assert result.exit_code == 0
    (report,) = result.json_documents()
    assert set(report) == {"load_id", "files", "skipped", "recovered", "seconds"}
    assert report["recovered"] == []
    files = {f["table"]: f for f in report["files"]}
    assert set(files) == set(RAW_ROWS)
    assert {f["outcome"] for f in files.values()} == {"unchanged"}
    assert {f["version"] for f in files.values()} == {0}
    assert files["train"]["source_file"] == str(example_dir / "train.csv")
    assert report["skipped"] == [{"path": str(example_dir / "README.md"), "reason": "unknown file type (extension '.md')"}]


def test_second_run_says_nothing_to_do_and_changes_nothing(example_ws, cli, example_dir, lake_snapshot):
    before = lake_snapshot(example_ws.ws)
    result = cli("run", str(example_dir), cwd=example_ws.ws)
    assert result.exit_code == 0, result.output
    assert "All files unchanged since the last load: nothing to do." in result.stdout
    assert "loaded" not in result.stdout
    assert lake_snapshot(example_ws.ws) == before == {t: (0, n) for t, n in RAW_ROWS.items()}
    assert "dbt: the project and the raw tables are unchanged since the last build: nothing to do" in result.stdout
    assert "1,000 train rows, 400 test rows" in result.stdout


def test_a_run_that_changed_nothing_imports_neither_pandas_nor_pyarrow_dataset(example_ws, cli_process, example_dir):
    """Each import costs a fifth of such a run: pyarrow imports pandas on its first array made of Python values,
    on its first zoned timestamp turned into Python, and with ``pyarrow.dataset``."""
    run = cli_process("run", str(example_dir), cwd=example_ws.ws, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert run.exit_code == 0, run.output
    assert "nothing to do" in run.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert {"pyarrow", "deltalake", "duckdb"} <= imported  # the imports are seen
    assert not imported & {"pandas", "pyarrow.dataset"}


def test_run_rebuilds_when_a_model_a_raw_table_or_force_says_so(workspace, cli, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x,target\n1,2,0\n2,3,1\n")
    (data / "test.csv").write_text("id,x\n3,4\n")

    def run(*options: str) -> dict:
        result = cli("run", str(data), *options, "--json", cwd=workspace)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["transform"]

    assert not run()["up_to_date"]
    assert run()["up_to_date"]
    mart = workspace / "dbt" / "models" / "marts" / "ml_training_set.sql"
    mart.write_text(mart.read_text() + "\n-- edited\n")
    assert not run()["up_to_date"]
    assert run()["up_to_date"]
    (data / "test.csv").write_text("id,x\n3,4\n4,5\n")
    rebuilt = run()
    assert not rebuilt["up_to_date"] and {m["name"] for m in rebuilt["models"]} >= {"stg_test", "ml_training_set"}
    assert not run("--force")["up_to_date"]
    assert autoflux.load_training_data(workspace, format="arrow").test.num_rows == 2


def test_a_new_workspace_starts_from_the_last_parse_on_this_machine_and_reads_its_own_data(tmp_path, cli, monkeypatch):
    """dbt's first parse in a workspace starts from the machine's last one (another project); the build reads its own lake."""
    from autoflux.transform.dbt import parse_seed

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def build(name: str, files: dict[str, str]) -> tuple[Path, str]:
        data = tmp_path / f"{name}-data"
        data.mkdir()
        for file, text in files.items():
            (data / file).write_text(text)
        root = autoflux.init(tmp_path / name)
        result = cli("run", str(data), "--no-report", cwd=root)
        assert result.exit_code == 0, result.output
        return root, (root / ".autoflux" / "logs" / "dbt.log").read_text()

    first, log = build("first", {"train.csv": "id,x,target\n1,10,0\n2,20,1\n", "test.csv": "id,x\n3,30\n"})
    assert "Unable to do partial parsing" in log  # nothing to start from: a full parse
    assert parse_seed(Workspace.open(first)).exists()
    files = {"train.csv": "key,x,y,label\n7,1.5,a,1\n8,2.5,b,0\n9,3.5,c,1\n", "test.csv": "key,x,y\n10,4.5,d\n"}
    second, log = build("second", files)
    assert "Unable to do partial parsing" not in log and "Partial parsing enabled" in log
    data = autoflux.load_training_data(second, format="arrow")
    assert data.train.select(["key", "x", "y", "label"]).to_pylist() == [
        {"key": 7, "x": 1.5, "y": "a", "label": 1},
        {"key": 8, "x": 2.5, "y": "b", "label": 0},
        {"key": 9, "x": 3.5, "y": "c", "label": 1},
    ]
    assert data.test.to_pylist() == [{"key": 10, "x": 4.5, "y": "d"}]
    _, log = build("third", files)  # the same dataset again: nothing of the project to parse
    assert "Partial parsing enabled, no changes found" in log


def test_an_unchanged_run_reuses_the_handoff_manifest_of_its_build(workspace, cli, tmp_path, configure):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x,target\n1,2,0\n2,3,1\n")
    (data / "test.csv").write_text("id,x\n3,4\n")

    def run() -> dict:
        result = cli("run", str(data), "--json", cwd=workspace)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    first = run()
    manifest = Path(first["handoff"]["manifest"])
    written = manifest.read_bytes()
    again = run()
    assert again["transform"]["up_to_date"] and again["handoff"] == first["handoff"]
    assert manifest.read_bytes() == written  # the manifest of this build, not written again
    configure(workspace, {"ml": {"checks": {"psi": 0.3}}})  # the checks' settings changed: hand off anew
    third = run()
    assert third["transform"]["up_to_date"] and third["handoff"]["train_rows"] == 2
    assert manifest.read_bytes() != written


# ------------------------------------------------------------------------------------ export


@pytest.mark.parametrize("name", ["out.parquet", "sub/out.csv"])
def test_export_writes_the_mart_and_a_manifest(example_ws, cli, name):
    path = example_ws.root / "exports" / name
    result = cli("export", "marts.ml_training_set", str(path), cwd=example_ws.ws)
    assert result.exit_code == 0, result.output
    assert "Wrote 1,400 rows of marts.ml_training_set" in result.stdout
    table = pq.read_table(path) if path.suffix == ".parquet" else pacsv.read_csv(path)
    assert table.num_rows == 1400
    assert {"id", "default", "split"} <= set(table.column_names)
    assert not any(c.startswith("_") for c in table.column_names)
    manifest = json.loads(path.with_name(path.name + ".manifest.json").read_text())
    assert manifest["relation"] == "marts.ml_training_set"
    assert manifest["rows"] == {"rows": 1400}
    assert manifest["export"] == str(path)
    assert set(manifest["raw_tables"]) == set(RAW_ROWS)
    assert not list(path.parent.glob(".*.tmp"))


def test_export_json_and_raw_tables(example_ws, cli):
    path = example_ws.root / "raw_train.parquet"
    result = cli("export", "raw.train", str(path), "--json", cwd=example_ws.ws)
    assert result.exit_code == 0
    (payload,) = result.json_documents()
    assert payload == {"table": "raw.train", "rows": 1000, "path": str(path), "manifest": str(path) + ".manifest.json"}
    assert "_load_id" in pq.read_schema(path).names


def test_export_to_an_unknown_format_is_an_error(example_ws, cli):
    result = cli("export", "ml_training_set", str(example_ws.root / "x.xlsx"), cwd=example_ws.ws)
    assert result.exit_code == 1
    assert result.error_lines() and "x.xlsx" in result.error_lines()[0] and ".parquet or .csv" in result.error_lines()[0]


def test_export_of_a_missing_table_is_an_error(example_ws, cli):
    result = cli("export", "marts.nope", str(example_ws.root / "nope.parquet"), cwd=example_ws.ws)
    assert result.exit_code == 1
    assert "marts.nope" in result.stderr
    assert not (example_ws.root / "nope.parquet").exists()


# ----------------------------------------------------------------------------- python -m, API


def test_python_m_autoflux(cli_process, tmp_path):
    result = cli_process("--help", cwd=tmp_path)
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    for command in ("init", "ingest", "transform", "run", "tables", "export"):
        assert f"  {command} " in result.stdout
    version = cli_process("--version", cwd=tmp_path)
    assert version.exit_code == 0 and autoflux.__version__ in version.stdout


def test_commands_outside_a_workspace_say_so(cli, tmp_path):
    result = cli("tables", cwd=tmp_path)
    assert result.exit_code == 1
    assert "not an AutoFlux workspace" in result.stderr and "autoflux init" in result.stderr


def test_load_training_data_pandas(example_ws):
    data = autoflux.load_training_data(example_ws.ws)
    assert type(data.train).__module__.startswith("pandas")
    assert (data.target, data.id) == ("default", "id")
    assert len(data.train) == 1000 and len(data.test) == 400
    assert "default" in data.train.columns and "default" not in data.test.columns
    assert "split" not in data.train.columns and "split" not in data.test.columns
    assert not any(c.startswith("_") for c in data.train.columns)
    assert data.train["default"].notna().all()
    assert set(data.train["id"]) == set(range(1, 1001))
    assert set(data.test["id"]) == set(range(1001, 1401))
    assert data.features == [c for c in data.train.columns if c not in ("default", "id")]
    assert "annual_income" in data.features


def test_load_training_data_polars_and_arrow(example_ws):
    import polars as pl

    polars = autoflux.load_training_data(example_ws.ws, format="polars")
    assert isinstance(polars.train, pl.DataFrame) and isinstance(polars.test, pl.DataFrame)
    assert (polars.train.height, polars.test.height) == (1000, 400)
    arrow = autoflux.load_training_data(example_ws.ws, format="arrow")
    assert isinstance(arrow.train, pa.Table)
    assert (arrow.train.num_rows, arrow.test.num_rows) == (1000, 400)
    assert "default" not in arrow.test.column_names


def test_load_training_data_writes_a_manifest_tracing_the_inputs(example_ws):
    data = autoflux.load_training_data(example_ws.ws, format="arrow")
    manifest = json.loads(data.manifest_path.read_text())
    assert manifest == json.loads(json.dumps(data.manifest, default=str))
    assert data.manifest_path.parent == example_ws.ws / ".autoflux" / "handoff"
    assert manifest["relation"] == "marts.ml_training_set"
    assert manifest["engine"] == "duckdb"
    assert manifest["rows"] == {"train": 1000, "test": 400}
    assert (manifest["target"], manifest["id"]) == ("default", "id")
    lake = Workspace.open(example_ws.ws).lake
    assert set(manifest["raw_tables"]) == set(RAW_ROWS)
    for name, entry in manifest["raw_tables"].items():
        stored = lake.open(RAW, name)
        assert entry["version"] == stored.version() == 0
        assert [entry["load_id"]] == stored.to_pyarrow_table(columns=["_load_id"])["_load_id"].unique().to_pylist()
        assert entry["source_file"] == f"{name}.csv"
        assert len(entry["fingerprint"]) == 64
    assert MODELS <= set(manifest["dbt_models"])
    assert manifest["dbt_models"]["ml_training_set"]["path"] == "models/marts/ml_training_set.sql"


def test_plain_dbt_run_in_the_project_folder_works(example_ws, requirement, cli):
    dbt = Path(sys.executable).parent / "dbt"
    requirement(dbt.exists(), f"no dbt executable beside {sys.executable}")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFLUX")}
    done = subprocess.run(
        [str(dbt), "run", "--profiles-dir", "."],
        cwd=example_ws.ws / "dbt",
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Completed successfully" in done.stdout
    data = autoflux.load_training_data(example_ws.ws, format="arrow")
    assert (data.train.num_rows, data.test.num_rows) == (1000, 400)
    rows = {(r["schema"], r["table"]): r["rows"] for r in json.loads(cli("tables", "--json", cwd=example_ws.ws).stdout)}
    assert rows[("marts", "ml_training_set")] == 1400


# ------------------------------------------------------------------------- failures (no dbt)


@pytest.fixture
def half_bad(tmp_path) -> Path:
    folder = tmp_path / "half_bad"
    folder.mkdir()
    (folder / "good.csv").write_text("a\n1\n")
    (folder / "bad.csv").write_text("")
    return folder


def test_run_stops_after_a_failed_ingest(workspace, cli, half_bad):
    result = cli("run", str(half_bad), cwd=workspace)
    assert result.exit_code == 1
    assert "dbt:" not in result.stdout
    assert [line for line in result.error_lines() if "bad.csv" in line]


def test_run_json_on_failure_is_one_json_document(workspace, cli, half_bad):
    result = cli("run", str(half_bad), "--json", cwd=workspace)
    assert result.exit_code == 1
    json.loads(result.stdout)


def test_run_json_on_failure_reports_the_failed_file(workspace, cli, half_bad):
    result = cli("run", str(half_bad), "--json", cwd=workspace)
    assert result.exit_code == 1
    summary = result.json_documents()[-1]
    assert set(summary) == {"seconds", "ingest", "report"}  # a failed run has its report too
    assert Path(summary["report"]["path"]).is_file()
    files = {f["table"]: f for f in summary["ingest"]["files"]}
    assert files["good"]["outcome"] == "loaded" and files["good"]["rows"] == 1
    assert files["bad"]["outcome"] == "failed" and "bad.csv: the file is empty" in files["bad"]["message"]
