"""Real servers on loopback for the acquire tests, one of each per session.

- ``http_server``: a file server with Range support that can fail with 500, stall, or drop the
  connection halfway, and logs every request.
- ``kaggle_server``: a stand-in for the Kaggle API on 127.0.0.1:7777, where the official client
  talks when ``KAGGLE_API_ENVIRONMENT=TEST`` (kagglesdk/kaggle_env.py: ``KaggleEnv.TEST:
  "http://localhost:7777"``, URLs ``{endpoint}/api/v1/{service}/{method}``, POST with JSON).
- ``s3_server``: moto in server mode on a free port.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import importlib
import io
import json
import os
import re
import threading
import time
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "acquire"
LAST_MODIFIED = "Wed, 01 May 2024 10:00:00 GMT"
KAGGLE_PORT = 7777
KAGGLE_USER = "alice"
KAGGLE_KEY = "alice-secret-key-123"
KAGGLE_TOKEN = "alice-token-456"


def require(module: str):
    """Import a module a server needs; fail instead of skipping when CI=true."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(module)
    return pytest.importorskip(module)


@dataclass
class Served:
    data: bytes
    fail: int = 0
    drop: int = 0
    stall: int = 0
    stall_seconds: float = 0.0
    ranges: bool = True
    name: str | None = None
    status: int | None = None


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def send_bytes(
    handler: BaseHTTPRequestHandler, data: bytes, *, ranges: bool = True, drop: bool = False, name: str | None = None
) -> None:
    """Answer a GET with ``data``: 206 for a satisfiable Range (honouring If-Range), else 200."""
    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    wanted = handler.headers.get("Range")
    if_range = handler.headers.get("If-Range")
    start = 0
    if ranges and wanted and (if_range is None or if_range in (etag, LAST_MODIFIED)):
        match = re.fullmatch(r"bytes=(\d+)-", wanted)
        start = int(match.group(1)) if match else 0
        if start >= len(data):
            handler.send_response(416)
            handler.send_header("Content-Range", f"bytes */{len(data)}")
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
    body = data[start:]
    handler.send_response(206 if start else 200)
    if start:
        handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
    handler.send_header("Content-Type", "application/octet-stream")
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("ETag", etag)
    handler.send_header("Last-Modified", LAST_MODIFIED)
    if ranges:
        handler.send_header("Accept-Ranges", "bytes")
    if name:
        handler.send_header("Content-Disposition", f'attachment; filename="{name}"')
    handler.end_headers()
    try:
        if drop:
            handler.wfile.write(body[: len(body) // 2])
            handler.wfile.flush()
            handler.close_connection = True
            return
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, handler) -> None:
        super().__init__(address, handler)
        self.log: list[Request] = []
        self.lock = threading.Lock()

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.log.append(Request(handler.command, handler.path, dict(handler.headers.items())))

    def requests_to(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.log if r.path == path]

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class FileServer(_Server):
    """Serves registered bytes; ``add`` returns the URL."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FileHandler)
        self.files: dict[str, Served] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add(self, path: str, data: bytes, **options) -> str:
        with self.lock:
            self.files[path] = Served(data, **options)
        return self.base + path


class _FileHandler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, *args) -> None:
        return None

    def do_GET(self) -> None:
        self.server.record(self)
        with self.server.lock:
            served = self.server.files.get(self.path.split("?", 1)[0])
            if served is None:
                action = "missing"
            elif served.status:
                action = "status"
            elif served.fail:
                served.fail -= 1
                action = "fail"
            elif served.stall:
                served.stall -= 1
                action = "stall"
            elif served.drop and not self.headers.get("Range"):
                served.drop -= 1
                action = "drop"
            else:
                action = "serve"
        if action == "missing":
            self.send_error(404)
        elif action == "status":
            self.send_error(served.status)
        elif action == "fail":
            self.send_error(500)
        else:
            if action == "stall":
                time.sleep(served.stall_seconds)
            send_bytes(self, served.data, ranges=served.ranges, drop=action == "drop", name=served.name)


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A deterministic zip of ``files`` (fixed dates, so the same bytes and ETag every time)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 5, 1, 10, 0, 0)), data)
    return buffer.getvalue()


def fixture_files(folder: str) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((FIXTURES / folder).iterdir()) if p.is_file()}


class KaggleStandIn(_Server):
    """Answers the download calls of kagglesdk like api.kaggle.com does: a JSON error, or a 302 to
    the file in storage (here ``/storage/…`` on the same server)."""

    WRAPPED = frozenset({"train.csv"})
    USER = KAGGLE_USER
    KEY = KAGGLE_KEY
    TOKEN = KAGGLE_TOKEN

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", KAGGLE_PORT), _KaggleHandler)
        competition = fixture_files("competition")
        big = b"id,value\n" + b"".join(b"%d,%d\n" % (i, i * 7919 % 10007) for i in range(60_000))
        self.competitions = {"titanic": competition, "rules-pending": competition, "big-data": {"train.csv": big}}
        self.drops: set[str] = set()
        self.datasets = {("bob", "weather"): {1: fixture_files("dataset/v1"), 2: fixture_files("dataset/v2")}}
        self.blobs: dict[str, bytes] = {}
        for slug, files in self.competitions.items():
            self.blobs[f"/storage/competitions/{slug}/{slug}.zip"] = zip_bytes(files)
            for name, data in files.items():
                blob = zip_bytes({name: data}) if name in self.WRAPPED else data
                suffix = ".zip" if name in self.WRAPPED else ""
                self.blobs[f"/storage/competitions/{slug}/files/{name}{suffix}"] = blob
        for (owner, slug), versions in self.datasets.items():
            for version, files in versions.items():
                self.blobs[f"/storage/datasets/{owner}/{slug}/{version}/{slug}.zip"] = zip_bytes(files)
                for name, data in files.items():
                    self.blobs[f"/storage/datasets/{owner}/{slug}/{version}/files/{name}"] = data

    def authorized(self, header: str | None) -> bool:
        basic = "Basic " + base64.b64encode(f"{KAGGLE_USER}:{KAGGLE_KEY}".encode()).decode()
        return header in (basic, f"Bearer {KAGGLE_TOKEN}")

    def route(self, call: str, body: dict) -> tuple[int, str]:
        """The status and (for 302) the storage location of an API call."""
        if call.startswith("competitions.CompetitionApiService/DownloadDataFile"):
            slug = body.get("competitionName", "")
            if slug not in self.competitions:
                return 404, "Competition not found"
            if slug == "rules-pending":
                return 403, "You must accept this competition's rules before you'll be able to download files."
            if call.endswith("DownloadDataFiles"):
                return 302, f"/storage/competitions/{slug}/{slug}.zip"
            name = body.get("fileName", "")
            if name not in self.competitions[slug]:
                return 404, "File not found"
            return 302, f"/storage/competitions/{slug}/files/{name}" + (".zip" if name in self.WRAPPED else "")
        if call == "datasets.DatasetApiService/DownloadDataset":
            key = (body.get("ownerSlug"), body.get("datasetSlug"))
            if key not in self.datasets:
                return 404, "Dataset not found"
            version = body.get("datasetVersionNumber") or max(self.datasets[key])
            if version not in self.datasets[key]:
                return 404, "Dataset version not found"
            base = f"/storage/datasets/{key[0]}/{key[1]}/{version}"
            name = body.get("fileName")
            if name is None:
                return 302, f"{base}/{key[1]}.zip"
            if name not in self.datasets[key][version]:
                return 404, "File not found"
            return 302, f"{base}/files/{name}"
        return 404, f"No such call {call}"


class _KaggleHandler(BaseHTTPRequestHandler):
    server: KaggleStandIn

    def log_message(self, *args) -> None:
        return None

    def do_POST(self) -> None:
        self.server.record(self)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if not self.server.authorized(self.headers.get("Authorization")):
            return self._json(401, "Unauthenticated")
        status, where = self.server.route(self.path.removeprefix("/api/v1/"), body)
        if status != 302:
            return self._json(status, where)
        self.send_response(302)
        self.send_header("Location", where)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        self.server.record(self)
        blob = self.server.blobs.get(self.path)
        if blob is None:
            return self._json(404, "No such object")
        with self.server.lock:
            drop = self.path in self.server.drops and not self.headers.get("Range")
            self.server.drops.discard(self.path)
        send_bytes(self, blob, drop=drop)

    def _json(self, status: int, message: str) -> None:
        payload = json.dumps({"code": status, "message": message}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="session")
def http_server():
    server = FileServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kaggle_server():
    require("kagglesdk")
    try:
        server = KaggleStandIn()
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        server = None
    if server is None:
        pytest.fail(
            f"port {KAGGLE_PORT} on 127.0.0.1 is busy: the Kaggle client's TEST environment talks to "
            f"http://localhost:{KAGGLE_PORT} only, so stop whatever listens there and run again",
            pytrace=False,
        )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kaggle_env(kaggle_server, tmp_path, monkeypatch):
    """Point the official client at the stand-in, with credentials only from the environment:
    HOME and KAGGLE_CONFIG_DIR are temp folders, so the real ~/.kaggle is never read."""
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle-config"))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "TEST")
    monkeypatch.setenv("KAGGLE_USERNAME", KAGGLE_USER)
    monkeypatch.setenv("KAGGLE_KEY", KAGGLE_KEY)
    return kaggle_server


@pytest.fixture(scope="session")
def s3_server():
    require("s3fs")
    moto_server = require("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch, request, tmp_path):
    """A fresh bucket on the moto server, with the AWS environment pointing at it."""
    boto3 = require("boto3")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:50].strip("-")
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return client, bucket
