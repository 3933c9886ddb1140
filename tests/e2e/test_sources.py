"""Every kind of remote source through the CLI, as a user runs it, ending in the mart and the hand-off.

Each source is run three times in its own workspace: ``autoflux run SOURCE`` (downloads, loads,
builds), ``autoflux run`` with the source in ``sources:`` of autoflux.yml (downloads nothing,
reloads nothing, dbt skipped) and ``autoflux run SOURCE --refresh`` (downloads again; the same
bytes, so nothing is reloaded). Servers: tests/servers.py, one per session (tests/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import fixture_files, zip_bytes

import autoflux

COMPETITION = fixture_files("competition")
TITANIC = {"tables": {"train", "test", "sample_submission"}, "train_rows": 60, "test_rows": 20, "target": "survived"}


def summary_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return result.json_documents()[-1]


def upload(fs, prefix: str) -> None:
    for name, data in COMPETITION.items():
        fs.pipe(f"{prefix}/{name}", data)
    fs.pipe(f"{prefix}/notes.txt", b"not data")  # not matched by the glob
    fs.pipe(f"{prefix}/old/train.csv", b"id\n1\n")  # nor is a deeper level by *.csv


@pytest.fixture
def staged(request, kaggle_server, http_server, monkeypatch, tmp_path):
    """(source, expected hand-off, ml config) for the source kind named by the test's parameter."""
    kind = request.param
    if kind.startswith("kaggle"):
        request.getfixturevalue("kaggle_env")
        if kind == "kaggle-competition":
            return "kaggle:competition/titanic", TITANIC, {}
        expected = {"tables": {"daily", "stations"}, "train_rows": 3, "test_rows": 0, "target": "temp"}
        return "kaggle:dataset/bob/weather@2", expected, {"train_table": "daily", "target": "temp"}
    if kind == "http-archive":
        url = http_server.add(f"/e2e/{tmp_path.name}/titanic.zip", zip_bytes(COMPETITION))
        return url, TITANIC, {}
    if kind == "s3":
        client, bucket = request.getfixturevalue("s3_bucket")
        for name, data in {**COMPETITION, "notes.txt": b"not data", "old/train.csv": b"id\n1\n"}.items():
            client.put_object(Bucket=bucket, Key=f"drop/{name}", Body=data)
        return f"s3://{bucket}/drop/*.csv", TITANIC, {}
    if kind == "gs":
        fs, bucket = request.getfixturevalue("gcs_bucket")
        upload(fs, f"{bucket}/drop")
        return f"gs://{bucket}/drop/*.csv", TITANIC, {}
    fs, container = request.getfixturevalue("azure_container")
    upload(fs, f"{container}/drop")
    return f"az://{container}/drop/*.csv", TITANIC, {}


@pytest.mark.slow
@pytest.mark.parametrize("staged", ["kaggle-competition", "kaggle-dataset", "http-archive", "s3", "gs", "az"], indirect=True)
def test_source_runs_to_the_hand_off_then_nothing_then_refresh(staged, tmp_path, cli, configure):
    source, expected, ml = staged
    ws = autoflux.init(tmp_path / "ws")
    if ml:
        configure(ws, {"ml": ml})

    first = summary_of(cli("run", source, "--json", cwd=ws))
    [fetched] = first["acquire"]
    assert fetched["source"] == source and fetched["from_cache"] is False and fetched["downloaded_bytes"] > 0
    loaded = {f["table"]: f for f in first["ingest"]["files"]}
    assert set(loaded) == expected["tables"]
    assert {f["outcome"] for f in loaded.values()} == {"loaded"}
    assert first["transform"]["up_to_date"] is False
    handoff = first["handoff"]
    assert (handoff["train_rows"], handoff["test_rows"], handoff["target"]) == (
        expected["train_rows"],
        expected["test_rows"],
        expected["target"],
    )
    data = autoflux.load_training_data(ws, format="arrow")
    assert data.train.num_rows == expected["train_rows"] and Path(data.manifest_path).is_file()

    configure(ws, {"sources": [source]})  # the second run takes its source from autoflux.yml
    again = cli("run", cwd=ws)
    assert again.exit_code == 0, again.output
    assert f"{source}: up to date in the cache, nothing downloaded" in again.output
    assert "All files unchanged since the last load: nothing to do." in again.output
    assert "dbt: the project and the raw tables are unchanged" in again.output
    quiet = summary_of(cli("run", "--json", cwd=ws))
    assert quiet["acquire"][0]["from_cache"] is True and quiet["acquire"][0]["downloaded_bytes"] == 0
    assert {f["outcome"] for f in quiet["ingest"]["files"]} == {"unchanged"}

    refreshed = cli("run", source, "--refresh", cwd=ws)
    assert refreshed.exit_code == 0, refreshed.output
    assert f"{source}: downloaded again (--refresh)" in refreshed.output
    assert "All files unchanged since the last load: nothing to do." in refreshed.output
    versions = {row["table"]: row["version"] for row in autoflux.Pipeline.open(ws).tables() if row["schema"] == "raw"}
    assert versions == dict.fromkeys(expected["tables"], 0)  # loaded once, never again
