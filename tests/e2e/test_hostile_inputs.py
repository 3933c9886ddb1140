"""Hostile inputs: each loads correctly or fails cleanly (one line, the stored table kept, nothing lost).

Identifiers from files are data, never SQL: names with quotes, semicolons, spaces, reserved words
and non-ASCII go through ingest, the generated dbt project (sources.yml, staging models, the
merge and mart macros) and the hand-off on the embedded engine.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
import yaml
from hostile import HOSTILE_COLUMNS, SQL_VALUE, duckdb_keywords, write_hostile_competition
from ingesting import run_ingest

import autoflux
from autoflux.lake import RAW
from autoflux.workspace import Workspace


def raw_table(ws: Path, name: str) -> pa.Table:
    return Workspace.open(ws).lake.open(RAW, name).to_pyarrow_table()


def keywords_offset(keywords: list[str], name: str) -> int:
    """The multiplier :func:`hostile.write_hostile_competition` gives keyword column ``name`` in train."""
    return [k for k in keywords if k not in HOSTILE_COLUMNS.values()].index(name)


def test_hostile_names_go_through_ingest_dbt_and_the_hand_off(workspace, tmp_path, cli, configure):
    configure(workspace, {"ml": {"target": "target", "id": "id"}})
    keywords = sorted(duckdb_keywords())
    assert {"at", "select", "qualify"} <= set(keywords)
    data = write_hostile_competition(tmp_path / "data", keywords)
    names = list(HOSTILE_COLUMNS)
    result = cli("run", str(data), cwd=workspace)
    assert result.exit_code == 0, result.output
    assert set(Workspace.open(workspace).lake.tables(RAW)) == {"train", "test", "keywords", "order", "x_drop_table_raw_train"}
    train = raw_table(workspace, "train")
    assert train.column_names[: len(names) - 1] == list(HOSTILE_COLUMNS.values())[:-1]
    assert set(keywords) <= set(train.column_names)
    assert set(train["from"].to_pylist()) == {SQL_VALUE} and set(train["quoted"].to_pylist()) == {'say "hi"'}
    sources = yaml.safe_load((workspace / "dbt" / "models" / "sources.yml").read_text())
    tables = {t["name"]: t for t in sources["sources"][0]["tables"]}
    described = {c["name"]: c["description"] for c in tables["train"]["columns"]}
    assert described["robert_drop_table_students"] == 'source column "Robert\'); DROP TABLE students;--"'
    assert [c["name"] for c in tables["keywords"]["columns"]][: len(keywords)] == keywords
    stg = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    try:
        assert stg.execute("select count(*) from staging.stg_keywords").fetchone() == (1,)
        assert stg.execute("select count(*) from staging.stg_x_drop_table_raw_train").fetchone() == (1,)
        assert stg.execute('select "select", "from" from staging.stg_order').fetchone() == (1, 2)
    finally:
        stg.close()
    data_for_training = autoflux.load_training_data(workspace, format="arrow")
    assert (data_for_training.train.num_rows, data_for_training.test.num_rows) == (6, 3)
    assert {"select", "from", "order", "qualify", "quoted", "robert_drop_table_students"} <= set(data_for_training.features)
    assert set(keywords) - {"id"} <= set(data_for_training.features)
    assert data_for_training.train["at"].to_pylist() == [i * keywords_offset(keywords, "at") for i in range(6)]
    assert set(data_for_training.test["from"].to_pylist()) == {SQL_VALUE}


def test_ten_thousand_columns(workspace, tmp_path, cli):
    data = tmp_path / "data"
    data.mkdir()
    width = 10_000
    rows = [",".join(str(r * width + i) for i in range(width)) for r in range(3)]
    (data / "wide.csv").write_text(",".join(f"Col {i}" for i in range(width)) + "\n" + "\n".join(rows) + "\n")
    result = cli("ingest", str(data), cwd=workspace)
    assert result.exit_code == 0, result.output
    table = raw_table(workspace, "wide")
    assert table.num_columns == width + 3
    assert table.column_names[width - 1] == f"col_{width - 1}"
    assert sorted(table[f"col_{width - 1}"].to_pylist()) == [width - 1, 2 * width - 1, 3 * width - 1]


@pytest.fixture(scope="session")
def hundred_mb_field(tmp_path_factory) -> tuple[Path, str]:
    """A CSV whose second row holds one 100 MB value (written once per session), and that value's SHA-256."""
    folder = tmp_path_factory.mktemp("big_field")
    value = (b"0123456789abcdef" * (100 * (1 << 20) // 16)).decode()
    path = folder / "blob.csv"
    with path.open("w") as handle:
        handle.write("id,payload\n1,small\n2,")
        handle.write(value)
        handle.write("\n3,after\n")
    return folder, hashlib.sha256(value.encode()).hexdigest()


def test_a_100_mb_field_is_read_with_bigger_blocks(workspace, hundred_mb_field):
    folder, digest = hundred_mb_field
    (result,) = run_ingest(Workspace.open(workspace), [folder]).files
    assert (result.outcome, result.rows) == ("loaded", 3), result.message
    table = raw_table(workspace, "blob")
    values = dict(zip(table["id"].to_pylist(), table["payload"].to_pylist(), strict=True))
    assert (values[1], values[3]) == ("small", "after")
    assert len(values[2]) == 100 * (1 << 20) and hashlib.sha256(values[2].encode()).hexdigest() == digest


@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b"\r", b"mixed"])
def test_line_endings(workspace, tmp_path, cli, ending):
    data = tmp_path / "data"
    data.mkdir()
    lines = [b"id,name", b"1,a", b'2,"multi\r\nline"', b"3,c", b"4,d"]
    ends = [b"\r\n", b"\n", b"\r", b"\r\n", b"\n"] if ending == b"mixed" else [ending] * len(lines)
    (data / "t.csv").write_bytes(b"".join(line + end for line, end in zip(lines, ends, strict=True)))
    result = cli("ingest", str(data), cwd=workspace)
    assert result.exit_code == 0, result.output
    rows = sorted(raw_table(workspace, "t").select(["id", "name"]).to_pylist(), key=lambda r: r["id"])
    assert rows == [{"id": 1, "name": "a"}, {"id": 2, "name": "multi\r\nline"}, {"id": 3, "name": "c"}, {"id": 4, "name": "d"}]


def test_a_workspace_whose_folder_name_has_a_space_an_accent_and_a_hash_runs_end_to_end(tmp_path, cli):
    # delta-rs names such a table's files percent-encoded (my%20d%C3%A9p%C3%B4t%20%231): the raw views must not
    root = tmp_path / "my dépôt #1"
    root.mkdir()
    assert cli("init", "ws", cwd=root).exit_code == 0
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x,target\n1,0.5,0\n2,1.5,1\n", encoding="utf-8")
    (data / "test.csv").write_text("id,x\n3,2.5\n", encoding="utf-8")
    result = cli("run", str(data), cwd=root / "ws")
    assert result.exit_code == 0, result.output
    assert "2 train rows, 1 test rows" in result.stdout
    with duckdb.connect(str(root / "ws" / "warehouse.duckdb"), read_only=True) as connection:
        assert connection.sql('select sum(x) from raw."train"').fetchall() == [(2.0,)]  # the view reads the files as named


@pytest.mark.parametrize("folder", ["proj [v2]", "a|b", "x%41y"])
def test_a_folder_delta_rs_cannot_hold_a_lake_in_is_refused_before_anything_is_written(tmp_path, cli, workspace, example_dir, folder):
    # delta-rs panics on [ ] ^ | in a local path, and reads %41 as A
    result = cli("init", str(tmp_path / folder / "ws"), cwd=tmp_path)
    assert result.exit_code != 0 and not (tmp_path / folder).exists()
    assert f"the lake's folder {tmp_path / folder / 'ws' / 'lake'} has" in result.output and "delta-rs" in result.output
    config = workspace / "autoflux.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("\nlake: lake\n", f"\nlake: '{tmp_path / folder / 'lake'}'\n"), encoding="utf-8"
    )
    result = cli("ingest", str(example_dir), cwd=workspace)
    assert result.exit_code == 1 and "delta-rs" in result.output and "Traceback" not in result.output
    assert not (tmp_path / folder).exists()


def test_a_duckdb_file_whose_path_has_a_question_mark_is_refused_before_anything_is_written(tmp_path, cli, workspace, example_dir):
    # DuckDB takes a ? in a database's path for the start of options, then finds no such file
    result = cli("init", str(tmp_path / "q?x" / "ws"), cwd=tmp_path)
    assert result.exit_code != 0 and not (tmp_path / "q?x").exists()
    assert f"the DuckDB database {tmp_path / 'q?x' / 'ws' / 'warehouse.duckdb'} has '?'" in result.output
    config = workspace / "autoflux.yml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("  path: warehouse.duckdb ", f"  path: '{tmp_path / 'q?x.duckdb'}' "), encoding="utf-8")
    assert config.read_text(encoding="utf-8") != text
    result = cli("ingest", str(example_dir), cwd=workspace)
    assert result.exit_code == 1 and "DuckDB cannot open" in result.output and "Traceback" not in result.output
    assert not (workspace / "lake").exists()  # nothing loaded


def test_nul_bytes_are_kept_as_data(workspace, tmp_path, cli):
    data = tmp_path / "data"
    data.mkdir()
    (data / "t.csv").write_bytes(b"id,name\n1,a\x00b\n2,\x00\n3,plain\n")
    result = cli("ingest", str(data), cwd=workspace)
    assert result.exit_code == 0, result.output
    table = raw_table(workspace, "t")
    rows = dict(zip(table["id"].to_pylist(), table["name"].to_pylist(), strict=True))
    assert rows == {1: "a\x00b", 2: "\x00", 3: "plain"}


def test_a_truncated_gzip_fails_cleanly_and_keeps_the_table(workspace, tmp_path, cli, lake_snapshot):
    data = tmp_path / "data"
    data.mkdir()
    text = "id,name\n" + "".join(f"{i},name {i}\n" for i in range(100_000))
    path = data / "t.csv.gz"
    path.write_bytes(gzip.compress(b"id,name\n0,first\n"))
    assert cli("ingest", str(data), cwd=workspace).exit_code == 0
    before = lake_snapshot(workspace)
    whole = gzip.compress(text.encode())
    path.write_bytes(whole[: len(whole) // 2])
    result = cli("ingest", str(data), "--json", cwd=workspace)
    assert result.exit_code == 1
    (failed,) = json.loads(result.stdout)["files"]
    assert failed["outcome"] == "failed" and failed["message"].startswith(f"{path}: cannot read the file")
    assert "\n" not in failed["message"] and "Truncated" in failed["message"]
    assert lake_snapshot(workspace) == before == {"t": (0, 1)}
