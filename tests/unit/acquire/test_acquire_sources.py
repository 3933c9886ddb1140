"""Source forms: dispatch, Kaggle references, credentials lookup, local paths."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import sys
import zipfile

import pytest

from autoflux.acquire import RetryPolicy, acquire, source_kind
from autoflux.acquire.kaggle import KaggleRef, credentials, parse
from autoflux.exceptions import (
    AcquireError,
    CredentialsError,
    MissingDependencyError,
    SourceNotFoundError,
)


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("data/raw", "local"),
        ("/abs/train.csv", "local"),
        ("~/x.zip", "local"),
        ("C:\\data\\train.csv", "local"),
        ("file:///tmp/x.csv", "local"),
        ("kaggle:competition/titanic", "kaggle"),
        ("http://host/a.csv", "http"),
        ("HTTPS://host/a.zip", "http"),
        ("s3://bucket/prefix/*.csv", "fsspec"),
        ("gs://bucket/a.csv", "fsspec"),
        ("az://container/a.csv", "fsspec"),
        ("memory://x/a.csv", "fsspec"),
    ],
)
def test_source_kind(source, kind):
    assert source_kind(source) == kind


@pytest.mark.parametrize(
    ("source", "ref"),
    [
        ("kaggle:competition/titanic", KaggleRef("competition", "titanic")),
        ("kaggle:competitions/titanic/", KaggleRef("competition", "titanic")),
        ("kaggle:competition/titanic/train.csv", KaggleRef("competition", "titanic", file="train.csv")),
        ("kaggle:competition/birds/images/a.png", KaggleRef("competition", "birds", file="images/a.png")),
        ("kaggle:dataset/bob/weather", KaggleRef("dataset", "weather", "bob")),
        ("kaggle:dataset/bob/weather@3", KaggleRef("dataset", "weather", "bob", 3)),
        ("kaggle:dataset/bob/weather@3/daily.csv", KaggleRef("dataset", "weather", "bob", 3, "daily.csv")),
    ],
)
def test_kaggle_sources_parse(source, ref):
    assert parse(source) == ref
    assert parse(ref.canonical) == ref


@pytest.mark.parametrize(
    "source",
    [
        "kaggle:titanic",
        "kaggle:competition/",
        "kaggle:dataset/bob",
        "kaggle:dataset/bob/weather@x",
        "kaggle:dataset/bob/weather@0",
        "kaggle:competition/titanic/../secret",
        "kaggle:kernel/bob/nb",
    ],
)
def test_bad_kaggle_sources_name_the_accepted_forms(source):
    with pytest.raises(AcquireError) as caught:
        parse(source)
    assert str(caught.value).startswith(source)
    assert "\n" not in str(caught.value)


def test_kaggle_page_urls():
    assert parse("kaggle:competition/titanic").page == "https://www.kaggle.com/competitions/titanic"
    assert parse("kaggle:dataset/bob/weather@2").page == "https://www.kaggle.com/datasets/bob/weather"


@pytest.fixture
def no_kaggle_env(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    return tmp_path


def test_credentials_precedence(no_kaggle_env, monkeypatch):
    home = no_kaggle_env / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "file-user", "key": "file-key"}))
    assert credentials().username == "file-user"
    monkeypatch.setenv("KAGGLE_USERNAME", "env-user")
    monkeypatch.setenv("KAGGLE_KEY", "env-key")
    assert (credentials().username, credentials().key) == ("env-user", "env-key")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "env-token")
    found = credentials()
    assert found.token == "env-token" and found.origin == "KAGGLE_API_TOKEN"
    assert "env-token" not in repr(found) and "env-key" not in repr(credentials())


def test_kaggle_config_dir_replaces_the_home_folder(no_kaggle_env, monkeypatch):
    home = no_kaggle_env / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "kaggle.json").write_text(json.dumps({"username": "home", "key": "k"}))
    config = no_kaggle_env / "cfg"
    config.mkdir()
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    with pytest.raises(CredentialsError, match="KAGGLE_CONFIG_DIR"):
        credentials()
    (config / "kaggle.json").write_text(json.dumps({"username": "cfg", "key": "k"}))
    assert credentials().username == "cfg"


def test_broken_kaggle_json_and_half_set_environment(no_kaggle_env, monkeypatch):
    config = no_kaggle_env / "cfg"
    config.mkdir()
    (config / "kaggle.json").write_text("{}")
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    with pytest.raises(CredentialsError, match="kaggle.json is not JSON with a username and a key"):
        credentials()
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    with pytest.raises(CredentialsError, match="KAGGLE_KEY is not set"):
        credentials()


def test_missing_kaggle_client_names_the_extra(no_kaggle_env, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", "key")
    monkeypatch.setitem(sys.modules, "kagglesdk", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "autoflux\[kaggle\]"'):
        acquire("kaggle:competition/titanic", cache_dir=tmp_path, retry=RetryPolicy(attempts=1))


def test_missing_s3_backend_names_the_extra(monkeypatch, tmp_path):
    registry = importlib.import_module("fsspec.registry")._registry
    monkeypatch.setitem(sys.modules, "s3fs", None)
    monkeypatch.delitem(registry, "s3", raising=False)
    with pytest.raises(MissingDependencyError, match=r"autoflux\[s3\]") as caught:
        acquire("s3://bucket/raw/*.csv", cache_dir=tmp_path)
    assert caught.value.package == "s3fs"


def test_unknown_protocol_is_a_clear_error(tmp_path):
    with pytest.raises(AcquireError, match="unknown protocol 'nosuchfs'"):
        acquire("nosuchfs://bucket/a.csv", cache_dir=tmp_path)


def test_local_folder_and_file_are_returned_as_is(tmp_path):
    (tmp_path / "train.csv").write_text("a\n1\n")
    for source in (str(tmp_path), str(tmp_path / "train.csv"), (tmp_path / "train.csv").as_uri()):
        got = acquire(source, cache_dir=tmp_path / "cache")
        assert got.path.resolve() in (tmp_path.resolve(), (tmp_path / "train.csv").resolve())
        assert (got.from_cache, got.downloaded_bytes, got.source) == (False, 0, source)
    assert not (tmp_path / "cache").exists()


def test_local_gzip_is_not_unpacked(tmp_path):
    (tmp_path / "train.csv.gz").write_bytes(b"\x1f\x8b not unpacked")
    assert acquire(str(tmp_path / "train.csv.gz"), cache_dir=tmp_path / "cache").path == tmp_path / "train.csv.gz"


def test_missing_local_path(tmp_path):
    with pytest.raises(SourceNotFoundError, match="no such file or folder") as caught:
        acquire(str(tmp_path / "nope"), cache_dir=tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "nope"))


def test_local_archive_is_unpacked_once_and_again_when_it_changes(tmp_path):
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.csv", "a\n1\n")
    first = acquire(str(archive), cache_dir=tmp_path / "cache")
    assert (first.path / "train.csv").read_text() == "a\n1\n" and first.from_cache is False
    assert acquire(str(archive), cache_dir=tmp_path / "cache").from_cache is True
    assert acquire(str(archive), cache_dir=tmp_path / "cache", refresh=True).from_cache is False
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.csv", "a\n1\n2\n")
    os.utime(archive, ns=(archive.stat().st_atime_ns, archive.stat().st_mtime_ns + 10**9))
    changed = acquire(str(archive), cache_dir=tmp_path / "cache")
    assert changed.from_cache is False and (changed.path / "train.csv").read_text() == "a\n1\n2\n"


def test_local_sha256(tmp_path):
    (tmp_path / "train.csv").write_bytes(b"a\n1\n")
    good = hashlib.sha256(b"a\n1\n").hexdigest()
    assert acquire(str(tmp_path / "train.csv"), cache_dir=tmp_path, sha256=f"sha256:{good}").path.exists()
    with pytest.raises(AcquireError, match="sha256 mismatch"):
        acquire(str(tmp_path / "train.csv"), cache_dir=tmp_path, sha256="f" * 64)
    with pytest.raises(AcquireError, match="not 64 hexadecimal digits"):
        acquire(str(tmp_path / "train.csv"), cache_dir=tmp_path, sha256="abc")
    with pytest.raises(AcquireError, match="not a folder"):
        acquire(str(tmp_path), cache_dir=tmp_path, sha256=good)


def test_empty_source(tmp_path):
    with pytest.raises(AcquireError, match="the source is empty"):
        acquire("  ", cache_dir=tmp_path)


def test_retry_policy_backoff_is_exponential_and_capped():
    policy = RetryPolicy(backoff=0.5, max_backoff=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3, 3]
