"""Kaggle's own failure modes through `autoflux ingest`, with the real kaggle client against the
stand-in (tests/servers.py): one error line each, saying what to do, and nothing half-loaded."""

from __future__ import annotations

import pytest

from autoflux.lake import RAW
from autoflux.workspace import Workspace


def one_error(result) -> str:
    assert result.exit_code == 1, result.output
    [line] = result.error_lines()
    assert "Traceback" not in result.output
    return line


def raw_tables(ws) -> list[str]:
    return Workspace.open(ws).lake.tables(RAW)


def test_rules_not_accepted_gives_the_rules_url(kaggle_env, workspace, cli):
    line = one_error(cli("ingest", "kaggle:competition/rules-pending", cwd=workspace))
    assert "403" in line and "accept the competition rules at https://www.kaggle.com/competitions/rules-pending/rules" in line


@pytest.mark.parametrize(
    ("source", "what"),
    [("kaggle:competition/no-such-competition", "competition"), ("kaggle:dataset/bob/weather@9", "dataset version 9")],
)
def test_unknown_competition_or_dataset_is_one_line(kaggle_env, workspace, cli, source, what):
    line = one_error(cli("ingest", source, cwd=workspace))
    assert f"Kaggle has no such {what} (404 Not Found)" in line and "check the name at https://www.kaggle.com/" in line


def test_wrong_key_is_a_401_that_never_shows_the_key(kaggle_env, workspace, cli, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", "wrong-key-789")
    result = cli("ingest", "kaggle:competition/titanic", cwd=workspace)
    line = one_error(result)
    assert "401" in line and "https://www.kaggle.com/settings/api" in line
    assert "wrong-key-789" not in result.output and kaggle_env.KEY not in result.output


def test_missing_token_says_where_to_put_it(kaggle_env, workspace, cli, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    line = one_error(cli("ingest", "kaggle:competition/titanic", cwd=workspace))
    assert "no Kaggle credentials found" in line and "kaggle.json" in line


def test_a_rate_limit_is_retried_with_backoff(kaggle_env, workspace, cli):
    kaggle_env.rate_limited["busy"] = 2
    asked = len(kaggle_env.requests_to("/api/v1/competitions.CompetitionApiService/DownloadDataFiles"))
    result = cli("ingest", "kaggle:competition/busy", cwd=workspace)
    assert result.exit_code == 0, result.output
    assert len(kaggle_env.requests_to("/api/v1/competitions.CompetitionApiService/DownloadDataFiles")) == asked + 3
    assert raw_tables(workspace) == ["sample_submission", "test", "train"]


def test_a_rate_limit_that_lasts_is_a_clear_stop(kaggle_env, workspace, cli):
    kaggle_env.rate_limited["busy"] = 100
    try:
        line = one_error(cli("ingest", "kaggle:competition/busy", cwd=workspace))
    finally:
        kaggle_env.rate_limited["busy"] = 0
    assert "Kaggle is limiting this account's requests (HTTP 429, still after 5 tries with backoff)" in line
    assert "wait a few minutes, then run again; nothing was loaded" in line
    assert raw_tables(workspace) == []


@pytest.mark.slow
def test_a_download_cut_halfway_is_never_half_loaded_and_the_next_run_resumes(kaggle_env, workspace, cli):
    blob = "/storage/competitions/big-data/files/train.csv.zip"
    kaggle_env.cuts[blob] = 5  # every try of this run is cut
    try:
        line = one_error(cli("ingest", "kaggle:competition/big-data/train.csv", cwd=workspace))
    finally:
        kaggle_env.cuts[blob] = 0
    assert "download failed after 5 tries (connection dropped)" in line and "the download resumes where it stopped" in line
    assert raw_tables(workspace) == []
    assert len(list((workspace / ".autoflux" / "cache").rglob("*.part"))) == 1
    result = cli("ingest", "kaggle:competition/big-data/train.csv", cwd=workspace)
    assert result.exit_code == 0, result.output
    assert kaggle_env.requests_to(blob)[-1].headers["Range"].startswith("bytes=")
    assert Workspace.open(workspace).lake.open(RAW, "train").count() == 60_000
