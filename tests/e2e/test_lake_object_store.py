"""A lake on an object store (``lake: s3://…``), end to end through the CLI.

S3 is moto's server (tests/servers.py, one per session). Ingest writes the
Delta tables there, dbt on DuckDB reads them through delta-rs (DuckDB's httpfs is not used),
``tables``, ``tables --history``, ``optimize``, ``vacuum``, ``export`` and the hand-off work on
them, nothing lands in a local ``lake/`` folder, and no credential is printed or written into a
file. A killed ingest leaves every table readable at its last version; the next run converges.
Not here: a lake on GCS (gcp-storage-emulator serves only the JSON API, not the XML listing
delta-rs uses for gs://) and on Azure Blob (delta-rs 1.6 against Azurite fails the third commit of
a table, "Invalid table version: 1", though the same settings work for two commits):
test_azure_lake_limit below pins that down so a delta-rs or Azurite release that fixes it shows.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from servers import fixture_files

import autoflux
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.lake import RAW
from autoflux.workspace import Workspace

SECRET = "s3cr3t-lake-key-0451"
COMPETITION = fixture_files("competition")
V2_TRAIN = COMPETITION["train.csv"] + b"61,1,1,female,30,10.5\n"


@pytest.fixture(params=["s3"])
def lake_uri(request, monkeypatch) -> tuple[str, str]:
    """(lake URI, the secret that must never show) with the store's usual environment set."""
    if request.param == "s3":
        client, bucket = request.getfixturevalue("s3_bucket")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # moto accepts any key; this one is recognisable
        return f"s3://{bucket}/lake", SECRET
    import servers

    _, container = request.getfixturevalue("azure_container")
    return f"az://{container}/lake", servers.AZURITE_KEY


def state(ws: Path) -> dict[str, tuple[int, list]]:
    lake = Workspace.open(ws).lake
    result = {}
    for name in lake.tables(RAW):
        table = lake.open(RAW, name)
        rows = table.to_pyarrow_table().drop_columns(list(LINEAGE_COLUMNS)).to_pylist()
        result[name] = (table.version(), sorted(tuple(sorted(r.items())) for r in rows))
    return result


def write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


@pytest.mark.slow
def test_lake_on_an_object_store_end_to_end(lake_uri, tmp_path, cli, cli_process, configure):
    uri, secret = lake_uri
    ws = autoflux.init(tmp_path / "ws")
    configure(ws, {"lake": uri})
    data = write(tmp_path / "data", COMPETITION)
    outputs = []

    run = cli_process("run", str(data), "--json", cwd=ws)
    outputs.append(run.output)
    assert run.exit_code == 0, run.output
    assert "train_rows" in run.stdout
    assert not (ws / "lake").exists()
    lake = Workspace.open(ws).lake
    assert lake.uri == uri and lake.tables(RAW) == ["sample_submission", "test", "train"]
    data_frames = autoflux.load_training_data(ws, format="arrow")
    assert (data_frames.train.num_rows, data_frames.test.num_rows, data_frames.target) == (60, 20, "survived")
    manifest = json.loads(Path(data_frames.manifest_path).read_text())
    assert json.dumps(manifest).count(uri) >= 1

    write(data, {"train.csv": V2_TRAIN})
    again = cli("run", str(data), cwd=ws)
    outputs.append(again.output)
    assert again.exit_code == 0, again.output
    assert autoflux.load_training_data(ws, format="arrow").train.num_rows == 61
    assert state(ws)["train"][0] == 1

    tables = cli("tables", "--json", cwd=ws)
    outputs.append(tables.output)
    assert tables.exit_code == 0, tables.output
    listed = {(r["schema"], r["table"]): r for r in json.loads(tables.stdout)}
    assert listed[("raw", "train")]["rows"] == 61 and listed[("raw", "train")]["version"] == 1
    assert listed[("marts", "ml_training_set")]["rows"] == 81
    history = cli("tables", "--history", "train", "--json", cwd=ws)
    outputs.append(history.output)
    assert history.exit_code == 0, history.output
    assert [v["version"] for v in json.loads(history.stdout)] == [0, 1]

    before = state(ws)
    for command in (("optimize",), ("vacuum", "--retention-hours", "0"), ("export", "raw.train", str(tmp_path / "train.parquet"))):
        result = cli(*command, cwd=ws)
        outputs.append(result.output)
        assert result.exit_code == 0, result.output
    after = state(ws)
    assert {name: rows for name, (_, rows) in after.items()} == {name: rows for name, (_, rows) in before.items()}
    assert (tmp_path / "train.parquet").is_file()

    written = "".join(p.read_text(errors="replace") for p in (ws / "dbt").rglob("*") if p.is_file())
    assert uri in written
    for text in (*outputs, written, (ws / "autoflux.yml").read_text()):
        assert secret not in text


@pytest.mark.slow
@pytest.mark.parametrize("point", ["write:1", "commit:2"])
def test_a_killed_ingest_leaves_every_table_readable_at_its_last_version(lake_uri, tmp_path, cli, cli_process, configure, point):
    uri, _ = lake_uri
    ws = autoflux.init(tmp_path / "ws")
    configure(ws, {"lake": uri})
    data = write(tmp_path / "data", COMPETITION)
    first = cli("ingest", str(data), cwd=ws)
    assert first.exit_code == 0, first.output
    v1 = state(ws)
    write(data, {"train.csv": V2_TRAIN, "test.csv": COMPETITION["test.csv"] + b"81,2,male,40,9.5\n", "extra.csv": b"a\n1\n"})
    killed = cli_process("ingest", str(data), cwd=ws, env={"AUTOFLUX_FAULT": point})
    assert killed.exit_code == -signal.SIGKILL, killed.output
    interrupted = state(ws)
    assert set(interrupted) >= set(v1)
    for name, (version, rows) in v1.items():
        assert interrupted[name][0] in (version, version + 1)
        if interrupted[name][0] == version:
            assert interrupted[name] == (version, rows), f"raw.{name} holds a partial load"
    finished = cli("ingest", str(data), cwd=ws)
    assert finished.exit_code == 0, finished.output
    final = state(ws)
    from autoflux.maintenance import history

    assert final["train"][0] == 1, [(h["version"], h["operation"], h["load_id"]) for h in history(Workspace.open(ws).lake, "train")]
    assert len(final["train"][1]) == 61 and len(final["test"][1]) == 21
    assert len(final["extra"][1]) == 1
    assert cli("vacuum", "--retention-hours", "0", cwd=ws).exit_code == 0
    assert {name: rows for name, (_, rows) in state(ws).items()} == {name: rows for name, (_, rows) in final.items()}


@pytest.mark.xfail(reason="delta-rs 1.6 against Azurite: the third commit of a table fails", strict=False)
def test_azure_lake_limit(azure_container, tmp_path):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    from autoflux.lake import Lake

    _, container = azure_container
    lake = Lake.at(f"az://{container}/lake", base=tmp_path)
    assert lake.storage_options["AZURE_ALLOW_HTTP"] == "true" and "AZURE_STORAGE_ACCOUNT_KEY" not in lake.storage_options
    uri = lake.table_uri("raw", "t")
    for value in (1, 2, 3):
        write_deltalake(uri, pa.table({"a": [value]}), mode="append", storage_options=lake.storage_options)
    assert DeltaTable(uri, storage_options=lake.storage_options).version() == 2
