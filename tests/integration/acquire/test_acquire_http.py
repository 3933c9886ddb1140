"""acquire() against a real HTTP server on loopback."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import os
import tarfile
import zipfile

import pytest
from servers import LAST_MODIFIED, send_bytes

from autoflux.acquire import RetryPolicy, acquire
from autoflux.exceptions import (
    AcquireError,
    CredentialsError,
    SourceNotFoundError,
    UnsafeArchiveError,
)

FAST = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05, timeout=5)
PAYLOAD = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * i) for i in range(40_000))


def files_under(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_plain_file_is_downloaded_with_progress(http_server, tmp_path):
    url = http_server.add("/plain/train.csv", PAYLOAD)
    calls = []
    got = acquire(url, cache_dir=tmp_path, retry=FAST, on_progress=lambda *a: calls.append(a))
    assert got.from_cache is False
    assert got.downloaded_bytes == len(PAYLOAD)
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    assert calls[-1] == ("train.csv", len(PAYLOAD), len(PAYLOAD))
    assert [done for _, done, _ in calls] == sorted(done for _, done, _ in calls)


def test_second_call_revalidates_and_downloads_nothing_when_unchanged(http_server, tmp_path):
    url = http_server.add("/cached/train.csv", PAYLOAD)
    first = acquire(url, cache_dir=tmp_path, retry=FAST)
    second = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert second.from_cache is True
    assert second.downloaded_bytes == 0
    assert second.path == first.path
    assert second.note is None
    asked = http_server.requests_to("/cached/train.csv")
    assert len(asked) == 2
    assert asked[1].method == "GET"
    assert asked[1].headers["If-None-Match"].startswith('"')
    assert asked[1].headers["If-Modified-Since"] == LAST_MODIFIED


def test_a_changed_file_is_noticed_and_fetched(http_server, tmp_path):
    url = http_server.add("/changing/train.csv", b"a\n1\n")
    first = acquire(url, cache_dir=tmp_path, retry=FAST)
    http_server.add("/changing/train.csv", b"a\n2\n")
    again = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert again.from_cache is False
    assert again.downloaded_bytes == 4
    assert (again.path / "train.csv").read_bytes() == b"a\n2\n"
    assert again.note.startswith("changed on the server (ETag ") and again.note.endswith("downloaded the new file")
    assert len(http_server.requests_to("/changing/train.csv")) == 2  # the conditional GET's answer is the new file
    assert first.path == again.path and acquire(url, cache_dir=tmp_path, retry=FAST).from_cache is True


def test_last_modified_alone_is_checked_with_if_modified_since(http_server, tmp_path):
    url = http_server.add("/dated/train.csv", b"a\n1\n", etag=False)
    acquire(url, cache_dir=tmp_path, retry=FAST)
    assert acquire(url, cache_dir=tmp_path, retry=FAST).from_cache is True
    asked = http_server.requests_to("/dated/train.csv")[-1]
    assert asked.headers["If-Modified-Since"] == LAST_MODIFIED and "If-None-Match" not in asked.headers
    http_server.add("/dated/train.csv", b"a\n2\n", etag=False, last_modified="Thu, 02 May 2024 10:00:00 GMT")
    again = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert again.from_cache is False and (again.path / "train.csv").read_bytes() == b"a\n2\n"
    assert "Last-Modified" in again.note


def test_without_validators_a_head_compares_the_length(http_server, tmp_path):
    url = http_server.add("/plainserver/train.csv", b"a\n1\n", etag=False, last_modified=None)
    acquire(url, cache_dir=tmp_path, retry=FAST)
    same = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert same.from_cache is True and same.downloaded_bytes == 0
    assert [r.method for r in http_server.requests_to("/plainserver/train.csv")] == ["GET", "HEAD"]
    http_server.add("/plainserver/train.csv", b"a\n22\n", etag=False, last_modified=None)
    changed = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert changed.from_cache is False and (changed.path / "train.csv").read_bytes() == b"a\n22\n"
    assert "length 4 → 5 bytes" in changed.note


def test_without_validators_nor_length_the_file_is_fetched_again(http_server, tmp_path):
    url = http_server.add("/bare/train.csv", b"a\n1\n", etag=False, last_modified=None, length=False)
    acquire(url, cache_dir=tmp_path, retry=FAST)
    again = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert again.from_cache is False and again.downloaded_bytes == 4
    assert "no ETag, Last-Modified or length" in again.note and again.note.endswith("the same bytes as the cached copy")
    assert [r.method for r in http_server.requests_to("/bare/train.csv")] == ["GET", "GET"]


def test_offline_with_a_warm_cache_uses_it_and_says_it_could_not_check(tmp_path):
    import socket
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return None

        def do_GET(self):
            send_bytes(self, b"a\n1\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/train.csv"
    first = acquire(url, cache_dir=tmp_path, retry=FAST)
    server.shutdown()
    server.server_close()
    with socket.socket() as probe:  # the port is closed now: connections are refused
        assert probe.connect_ex(("127.0.0.1", server.server_address[1])) != 0
    offline = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert offline.from_cache is True and offline.path == first.path
    assert offline.note.startswith("could not check with the server (could not connect); using the copy cached at ")


def test_refresh_downloads_again_without_asking(http_server, tmp_path):
    url = http_server.add("/refresh/train.csv", b"a\n1\n")
    acquire(url, cache_dir=tmp_path, retry=FAST)
    again = acquire(url, cache_dir=tmp_path, retry=FAST, refresh=True)
    assert again.from_cache is False and again.downloaded_bytes == 4
    asked = http_server.requests_to("/refresh/train.csv")
    assert len(asked) == 2 and "If-None-Match" not in asked[1].headers


def test_server_errors_are_retried_with_backoff(http_server, tmp_path):
    url = http_server.add("/flaky/train.csv", PAYLOAD, fail=2)
    got = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    assert len(http_server.requests_to("/flaky/train.csv")) == 3


def test_a_timeout_is_retried(http_server, tmp_path):
    url = http_server.add("/slow/train.csv", PAYLOAD, stall=1, stall_seconds=1.0)
    got = acquire(url, cache_dir=tmp_path, retry=RetryPolicy(attempts=3, backoff=0.01, timeout=0.3))
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    assert len(http_server.requests_to("/slow/train.csv")) == 2


def test_retries_are_bounded(http_server, tmp_path):
    url = http_server.add("/down/train.csv", PAYLOAD, fail=10)
    with pytest.raises(AcquireError, match=r"failed after 3 tries \(HTTP 500\)") as caught:
        acquire(url, cache_dir=tmp_path, retry=RetryPolicy(attempts=3, backoff=0.01))
    assert caught.value.retryable is True
    assert len(http_server.requests_to("/down/train.csv")) == 3
    assert files_under(tmp_path) == []


def test_connection_refused_is_a_retryable_one_line_error(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/train.csv"
    with pytest.raises(AcquireError, match="could not connect") as caught:
        acquire(url, cache_dir=tmp_path, retry=RetryPolicy(attempts=2, backoff=0.01))
    assert url in str(caught.value) and "\n" not in str(caught.value)


def test_dropped_connection_resumes_with_range(http_server, tmp_path):
    url = http_server.add("/drop/train.csv", PAYLOAD, drop=1)
    got = acquire(url, cache_dir=tmp_path, retry=FAST, sha256=hashlib.sha256(PAYLOAD).hexdigest())
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    asked = http_server.requests_to("/drop/train.csv")
    assert len(asked) == 2
    assert "Range" not in asked[0].headers
    half = int(asked[1].headers["Range"].removeprefix("bytes=").rstrip("-"))
    assert 0 < half < len(PAYLOAD)
    assert asked[1].headers["If-Range"].startswith('"')
    assert got.downloaded_bytes == len(PAYLOAD)


def test_interrupted_download_is_kept_as_part_and_resumed_by_the_next_call(http_server, tmp_path):
    url = http_server.add("/part/train.csv", PAYLOAD, drop=1)
    with pytest.raises(AcquireError, match="connection dropped"):
        acquire(url, cache_dir=tmp_path, retry=RetryPolicy(attempts=1))
    parts = list(tmp_path.rglob("*.part"))
    assert len(parts) == 1
    kept = parts[0].stat().st_size
    assert 0 < kept < len(PAYLOAD)
    assert not list(tmp_path.rglob("autoflux-complete.json"))
    got = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert got.from_cache is False
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    assert got.downloaded_bytes == len(PAYLOAD) - kept
    assert http_server.requests_to("/part/train.csv")[-1].headers["Range"] == f"bytes={kept}-"
    assert not list(tmp_path.rglob("*.part"))


def test_server_without_range_support_restarts_from_zero(http_server, tmp_path):
    url = http_server.add("/norange/train.csv", PAYLOAD, drop=1, ranges=False)
    got = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    assert len(http_server.requests_to("/norange/train.csv")) == 2
    assert got.downloaded_bytes > len(PAYLOAD)


def test_partial_of_another_version_is_not_appended_to(http_server, tmp_path):
    url = http_server.add("/changed/train.csv", PAYLOAD, drop=1)
    with pytest.raises(AcquireError):
        acquire(url, cache_dir=tmp_path, retry=RetryPolicy(attempts=1))
    newer = PAYLOAD.replace(b"1,1\n", b"1,9\n")
    http_server.add("/changed/train.csv", newer)
    got = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert (got.path / "train.csv").read_bytes() == newer
    assert got.downloaded_bytes == len(newer)


def test_not_found_is_a_source_not_found_error(http_server, tmp_path):
    url = http_server.base + "/nowhere/train.csv"
    with pytest.raises(SourceNotFoundError, match="HTTP 404") as caught:
        acquire(url, cache_dir=tmp_path, retry=FAST)
    assert str(caught.value).startswith(url)
    assert files_under(tmp_path) == []


def test_forbidden_is_a_credentials_error(http_server, tmp_path):
    url = http_server.add("/secret/train.csv", PAYLOAD, status=403)
    with pytest.raises(CredentialsError, match="HTTP 403"):
        acquire(url, cache_dir=tmp_path, retry=FAST)
    assert len(http_server.requests_to("/secret/train.csv")) == 1


def test_sha256_is_verified(http_server, tmp_path):
    url = http_server.add("/sha/train.csv", PAYLOAD)
    good = hashlib.sha256(PAYLOAD).hexdigest()
    got = acquire(url, cache_dir=tmp_path, retry=FAST, sha256=good.upper())
    assert (got.path / "train.csv").read_bytes() == PAYLOAD
    assert acquire(url, cache_dir=tmp_path, retry=FAST, sha256=good).from_cache is True


def test_sha256_mismatch_keeps_nothing(http_server, tmp_path):
    url = http_server.add("/badsha/train.csv", PAYLOAD)
    with pytest.raises(AcquireError, match="sha256 mismatch") as caught:
        acquire(url, cache_dir=tmp_path, retry=FAST, sha256="0" * 64)
    assert hashlib.sha256(PAYLOAD).hexdigest() in str(caught.value)
    assert files_under(tmp_path) == []


def test_archives_are_unpacked_and_gzip_is_kept(http_server, tmp_path):
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w:gz") as tf:
        for name, data in {"data/train.csv": PAYLOAD, "data/test.csv": b"id\n1\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    tar_url = http_server.add("/arch/bundle.tar.gz", tar_buffer.getvalue())
    gz_url = http_server.add("/arch/train.csv.gz", gzip.compress(PAYLOAD))
    bz_url = http_server.add("/arch/train.csv.bz2", bz2.compress(PAYLOAD))
    got = acquire(tar_url, cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["data/test.csv", "data/train.csv"]
    assert (got.path / "data/train.csv").read_bytes() == PAYLOAD
    got = acquire(gz_url, cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["train.csv.gz"]
    got = acquire(bz_url, cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["train.csv"]
    assert (got.path / "train.csv").read_bytes() == PAYLOAD


def test_file_name_comes_from_content_disposition(http_server, tmp_path):
    url = http_server.add("/download", PAYLOAD, name="train.csv") + "?id=7"
    got = acquire(url, cache_dir=tmp_path, retry=FAST)
    assert files_under(got.path) == ["train.csv"]


def test_unsafe_downloaded_archive_leaves_nothing(http_server, tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ok.csv", b"a\n1\n")
        zf.writestr("../evil.csv", b"pwned")
    url = http_server.add("/evil/bundle.zip", buffer.getvalue())
    with pytest.raises(UnsafeArchiveError, match=r"'\.\./evil\.csv' escapes") as caught:
        acquire(url, cache_dir=tmp_path / "cache", retry=FAST)
    assert "bundle.zip" in str(caught.value)
    assert files_under(tmp_path) == []
    assert not os.path.exists(tmp_path / "evil.csv")


def test_two_fetches_of_one_source_at_once_download_it_once(http_server, tmp_path):
    """The second waits for the cache's lock, then finds the first one's copy (and checks it: 304)."""
    import threading

    url = http_server.add("/concurrent/train.csv", PAYLOAD)
    first_is_downloading, go_on = threading.Event(), threading.Event()

    def paused(label, done, total) -> None:
        first_is_downloading.set()
        assert go_on.wait(10)

    results = {}
    first = threading.Thread(target=lambda: results.update(first=acquire(url, cache_dir=tmp_path, retry=FAST, on_progress=paused)))
    first.start()
    assert first_is_downloading.wait(10)
    second = threading.Thread(target=lambda: results.update(second=acquire(url, cache_dir=tmp_path, retry=FAST)))
    second.start()
    second.join(0.5)
    assert second.is_alive() and len(http_server.requests_to("/concurrent/train.csv")) == 1
    go_on.set()
    first.join(10)
    second.join(10)
    assert results["first"].from_cache is False and results["second"].from_cache is True
    assert results["second"].path == results["first"].path
    asked = http_server.requests_to("/concurrent/train.csv")
    assert len(asked) == 2 and "If-None-Match" in asked[1].headers  # the second only checked the first's copy
    assert results["second"].downloaded_bytes == 0


def test_a_build_folder_left_by_a_killed_fetch_is_removed_by_the_next(http_server, tmp_path):
    url = http_server.add("/stale/train.csv", PAYLOAD)
    got = acquire(url, cache_dir=tmp_path, retry=FAST)
    stale = got.path.parent.parent / ".tmp-killed"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "train.csv").write_bytes(b"half")
    acquire(url, cache_dir=tmp_path, retry=FAST, refresh=True)
    assert not stale.exists()
    assert [p.name for p in got.path.parent.parent.iterdir()] == ["current"]
