"""acquire() of kaggle: sources through the real kagglesdk client, against the stand-in server."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from autoflux.acquire import RetryPolicy, acquire
from autoflux.exceptions import CredentialsError, SourceNotFoundError

FAST = RetryPolicy(attempts=2, backoff=0.01, timeout=5)
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "acquire"


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def same_files(folder, fixture):
    expected = {p.name: p.read_bytes() for p in (FIXTURES / fixture).iterdir()}
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == expected


def test_competition_all_files_are_downloaded_and_unzipped(kaggle_env, tmp_path):
    got = acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=FAST)
    assert got.from_cache is False
    assert files_under(got.path) == ["sample_submission.csv", "test.csv", "train.csv"]
    assert same_files(got.path, "competition")
    assert got.downloaded_bytes == len(kaggle_env.blobs["/storage/competitions/titanic/titanic.zip"])
    posted = kaggle_env.requests_to("/api/v1/competitions.CompetitionApiService/DownloadDataFiles")
    assert posted and posted[-1].headers["Authorization"].startswith("Basic ")


def test_competition_second_call_reads_nothing(kaggle_env, tmp_path):
    first = acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=FAST)
    again = acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=FAST)
    assert again.from_cache is True
    assert again.downloaded_bytes == 0
    assert again.path == first.path and same_files(again.path, "competition")
    fresh = acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=FAST, refresh=True)
    assert fresh.from_cache is False and fresh.downloaded_bytes > 0


def test_competition_one_file(kaggle_env, tmp_path):
    got = acquire("kaggle:competition/titanic/test.csv", cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["test.csv"]
    assert (got.path / "test.csv").read_bytes() == (FIXTURES / "competition/test.csv").read_bytes()


def test_competition_one_file_wrapped_in_a_zip_is_unwrapped(kaggle_env, tmp_path):
    got = acquire("kaggle:competition/titanic/train.csv", cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["train.csv"]
    assert (got.path / "train.csv").read_bytes() == (FIXTURES / "competition/train.csv").read_bytes()


def test_dropped_download_resumes_from_the_storage_url_with_range(kaggle_env, tmp_path):
    blob = "/storage/competitions/big-data/files/train.csv.zip"
    kaggle_env.drops.add(blob)
    before = len(kaggle_env.requests_to(blob))  # the server is shared by the session's tests
    got = acquire("kaggle:competition/big-data/train.csv", cache_dir=tmp_path, retry=FAST)
    assert (got.path / "train.csv").read_bytes() == kaggle_env.competitions["big-data"]["train.csv"]
    fetched = kaggle_env.requests_to(blob)[before:]
    assert len(fetched) == 2
    assert fetched[-1].method == "GET" and fetched[-1].headers["Range"].startswith("bytes=")
    assert got.downloaded_bytes == len(kaggle_env.blobs[blob])


def test_dataset_latest_and_pinned_version(kaggle_env, tmp_path):
    earlier = len(kaggle_env.log)  # the server is shared by the session's tests
    latest = acquire("kaggle:dataset/bob/weather", cache_dir=tmp_path, retry=FAST)
    assert same_files(latest.path, "dataset/v2")
    pinned = acquire("kaggle:dataset/bob/weather@1", cache_dir=tmp_path, retry=FAST)
    assert same_files(pinned.path, "dataset/v1")
    bodies = [r for r in kaggle_env.log[earlier:] if r.path.endswith("DownloadDataset")]
    assert len(bodies) == 2
    asked = len(kaggle_env.log)
    again = acquire("kaggle:dataset/bob/weather@1", cache_dir=tmp_path, retry=FAST)
    assert again.from_cache is True and again.path == pinned.path
    assert len(kaggle_env.log) == asked


def test_dataset_one_file_with_version(kaggle_env, tmp_path):
    got = acquire("kaggle:dataset/bob/weather@2/stations.csv", cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["stations.csv"]


def test_token_from_the_environment_is_sent_as_bearer(kaggle_env, tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle_env.TOKEN)
    got = acquire("kaggle:competition/titanic/test.csv", cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["test.csv"]
    assert kaggle_env.log[-2].headers["Authorization"] == f"Bearer {kaggle_env.TOKEN}"


def test_kaggle_json_in_kaggle_config_dir(kaggle_env, tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    config = tmp_path / "kaggle-config"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": kaggle_env.USER, "key": kaggle_env.KEY}))
    got = acquire("kaggle:competition/titanic/test.csv", cache_dir=tmp_path / "cache", retry=FAST)
    assert files_under(got.path) == ["test.csv"]


def test_no_credentials_says_where_to_put_them(kaggle_env, tmp_path, monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")
    asked = len(kaggle_env.log)
    with pytest.raises(CredentialsError) as caught:
        acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=FAST)
    message = str(caught.value)
    assert "no Kaggle credentials found" in message
    assert "kaggle.json" in message and "KAGGLE_CONFIG_DIR" in message and "KAGGLE_USERNAME" in message
    assert "\n" not in message
    assert len(kaggle_env.log) == asked


def test_bad_credentials_are_a_401_error_that_never_shows_the_key(kaggle_env, tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv("KAGGLE_KEY", "wrong-key-789")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(CredentialsError, match="401") as caught:
        acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=FAST)
    shown = str(caught.value) + repr(caught.value) + caplog.text + "".join(capsys.readouterr())
    assert "KAGGLE_USERNAME and KAGGLE_KEY" in str(caught.value)
    assert "wrong-key-789" not in shown and kaggle_env.KEY not in shown
    assert files_under(tmp_path) == []


def test_rules_not_accepted_is_a_403_error_with_the_rules_url(kaggle_env, tmp_path):
    with pytest.raises(CredentialsError, match="403") as caught:
        acquire("kaggle:competition/rules-pending", cache_dir=tmp_path, retry=FAST)
    assert "https://www.kaggle.com/competitions/rules-pending/rules" in str(caught.value)
    assert str(caught.value).startswith("kaggle:competition/rules-pending: ")
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(
    "source",
    [
        "kaggle:competition/no-such-competition",
        "kaggle:competition/titanic/no-such-file.csv",
        "kaggle:dataset/bob/no-such-dataset",
        "kaggle:dataset/bob/weather@9",
    ],
)
def test_unknown_competition_or_dataset_is_a_404_error(kaggle_env, tmp_path, source):
    with pytest.raises(SourceNotFoundError, match="404") as caught:
        acquire(source, cache_dir=tmp_path, retry=FAST)
    assert str(caught.value).startswith(source + ": ")
    assert files_under(tmp_path) == []
