"""acquire() of fsspec URIs: S3 on a moto server (through s3fs), and memory://."""

from __future__ import annotations

import io
import uuid
import zipfile

import pytest

from autoflux.acquire import acquire
from autoflux.exceptions import SourceNotFoundError


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_s3_glob_downloads_matching_objects_through_the_endpoint_from_the_environment(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    objects = {
        "raw/train.csv": b"id,y\n1,0\n2,1\n",
        "raw/test.csv": b"id\n3\n",
        "raw/notes.txt": b"not data",
        "raw/deeper/extra.csv": b"id\n4\n",
        "other/train.csv": b"id,y\n9,9\n",
    }
    for key, data in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=data)
    progress = []
    got = acquire(f"s3://{bucket}/raw/*.csv", cache_dir=tmp_path, on_progress=lambda *a: progress.append(a))
    assert files_under(got.path) == ["test.csv", "train.csv"]
    assert (got.path / "train.csv").read_bytes() == objects["raw/train.csv"]
    assert got.downloaded_bytes == len(objects["raw/train.csv"]) + len(objects["raw/test.csv"])
    total = len(objects["raw/train.csv"]) + len(objects["raw/test.csv"])
    assert progress[0] == ("test.csv", len(objects["raw/test.csv"]), total)
    assert progress[-1] == ("train.csv", total, total)


def test_s3_recursive_glob_keeps_the_layout(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    client.put_object(Bucket=bucket, Key="raw/a/part-1.csv", Body=b"x\n1\n")
    client.put_object(Bucket=bucket, Key="raw/b/part-2.csv", Body=b"x\n2\n")
    got = acquire(f"s3://{bucket}/raw/**/*.csv", cache_dir=tmp_path)
    assert files_under(got.path) == ["a/part-1.csv", "b/part-2.csv"]


def test_s3_cache_follows_the_listing(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    client.put_object(Bucket=bucket, Key="raw/train.csv", Body=b"id\n1\n")
    first = acquire(f"s3://{bucket}/raw/", cache_dir=tmp_path)
    again = acquire(f"s3://{bucket}/raw/", cache_dir=tmp_path)
    assert again.from_cache is True and again.downloaded_bytes == 0 and again.path == first.path
    client.put_object(Bucket=bucket, Key="raw/train.csv", Body=b"id\n2\n")
    changed = acquire(f"s3://{bucket}/raw/", cache_dir=tmp_path)
    assert changed.from_cache is False
    assert (changed.path / "train.csv").read_bytes() == b"id\n2\n"
    assert not first.path.exists()


def test_s3_zip_object_is_unpacked(s3_bucket, tmp_path):
    client, bucket = s3_bucket
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("train.csv", b"id\n1\n")
    client.put_object(Bucket=bucket, Key="drop/bundle.zip", Body=buffer.getvalue())
    got = acquire(f"s3://{bucket}/drop/bundle.zip", cache_dir=tmp_path)
    assert files_under(got.path) == ["train.csv"]


def test_s3_nothing_matches_is_source_not_found(s3_bucket, tmp_path):
    _, bucket = s3_bucket
    with pytest.raises(SourceNotFoundError, match="no object matches"):
        acquire(f"s3://{bucket}/raw/*.parquet", cache_dir=tmp_path)
    with pytest.raises(SourceNotFoundError):
        acquire(f"s3://{bucket}/missing.csv", cache_dir=tmp_path)
    assert files_under(tmp_path) == []


def test_s3_missing_bucket_is_source_not_found(s3_bucket, tmp_path):
    _, bucket = s3_bucket
    with pytest.raises(SourceNotFoundError) as caught:
        acquire(f"s3://{bucket}-gone/raw/*.csv", cache_dir=tmp_path)
    assert str(caught.value).startswith(f"s3://{bucket}-gone/raw/*.csv: ")


def test_memory_filesystem_glob(tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    root = f"/acquire-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/raw/a.csv", b"a\n1\n")
    fs.pipe(f"{root}/raw/b.csv", b"b\n2\n")
    fs.pipe(f"{root}/raw/c.json", b"{}")
    try:
        got = acquire(f"memory://{root}/raw/*.csv", cache_dir=tmp_path)
        assert files_under(got.path) == ["a.csv", "b.csv"]
        assert acquire(f"memory://{root}/raw/*.csv", cache_dir=tmp_path).from_cache is True
        assert acquire(f"memory://{root}/raw/*.csv", cache_dir=tmp_path, refresh=True).from_cache is False
    finally:
        fs.rm(root, recursive=True)
