"""Real servers on loopback for the acquire and end-to-end tests (their fixtures are in
tests/conftest.py: one of each per test process, but a Kaggle stand-in per test).

- ``http_server``: a file server with Range support that can fail with 500, stall, or drop the
  connection halfway, and logs every request.
- ``kaggle_server``: a stand-in for the Kaggle API on 127.0.0.1:7777, where the official client
  talks when ``KAGGLE_API_ENVIRONMENT=TEST`` (kagglesdk/kaggle_env.py: ``KaggleEnv.TEST:
  "http://localhost:7777"``, URLs ``{endpoint}/api/v1/{service}/{method}``, POST with JSON);
  the test processes take turns on that fixed port.
- ``s3_server``: moto in server mode on a free port.
"""

from __future__ import annotations

import base64
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

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "acquire"
LAST_MODIFIED = "Wed, 01 May 2024 10:00:00 GMT"
KAGGLE_PORT = 7777
KAGGLE_USER = "alice"
KAGGLE_KEY = "alice-secret-key-123"
KAGGLE_TOKEN = "alice-token-456"


def require_module(module: str):
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
    etag: bool = True
    last_modified: str | None = LAST_MODIFIED
    length: bool = True
    head: bool = True


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


def send_bytes(
    handler: BaseHTTPRequestHandler,
    data: bytes,
    *,
    ranges: bool = True,
    drop: bool = False,
    name: str | None = None,
    etag: bool = True,
    last_modified: str | None = LAST_MODIFIED,
    length: bool = True,
) -> None:
    """Answer a GET (or HEAD) with ``data``: 304 when If-None-Match / If-Modified-Since match,
    206 for a satisfiable Range (honouring If-Range), else 200. ``etag=False`` /
    ``last_modified=None`` / ``length=False`` leave those headers out (the body then ends when
    the connection closes)."""
    tag = '"' + hashlib.sha1(data).hexdigest() + '"' if etag else None
    validators = {v for v in (tag, last_modified) if v}
    if_none_match = handler.headers.get("If-None-Match")
    if_modified_since = handler.headers.get("If-Modified-Since")
    if (if_none_match and tag and if_none_match == tag) or (
        not if_none_match and if_modified_since and last_modified and if_modified_since == last_modified
    ):
        handler.send_response(304)
        if tag:
            handler.send_header("ETag", tag)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
        return
    wanted = handler.headers.get("Range")
    if_range = handler.headers.get("If-Range")
    start = 0
    if ranges and wanted and (if_range is None or if_range in validators):
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
    if length:
        handler.send_header("Content-Length", str(len(body)))
    else:
        handler.close_connection = True
    if tag:
        handler.send_header("ETag", tag)
    if last_modified:
        handler.send_header("Last-Modified", last_modified)
    if ranges:
        handler.send_header("Accept-Ranges", "bytes")
    if name:
        handler.send_header("Content-Disposition", f'attachment; filename="{name}"')
    handler.end_headers()
    if handler.command == "HEAD":
        return
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
            send_bytes(
                self,
                served.data,
                ranges=served.ranges,
                drop=action == "drop",
                name=served.name,
                etag=served.etag,
                last_modified=served.last_modified,
                length=served.length,
            )

    def do_HEAD(self) -> None:
        served = self.server.files.get(self.path.split("?", 1)[0])
        if served is not None and not served.head:
            self.server.record(self)
            self.send_error(405)
            return
        self.do_GET()


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
        self.competitions = {
            "titanic": competition,
            "rules-pending": competition,
            "big-data": {"train.csv": big},
            "busy": competition,
        }
        self.drops: set[str] = set()
        self.cuts: dict[str, int] = {}  # storage path -> how many more answers are cut halfway, Range or not
        self.rate_limited: dict[str, int] = {}  # competition -> how many more calls get 429 (Retry-After: 0)
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
            with self.lock:
                if self.rate_limited.get(slug):
                    self.rate_limited[slug] -= 1
                    return 429, "Too many requests"
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
            if self.server.cuts.get(self.path):
                self.server.cuts[self.path] -= 1
                drop = True
        send_bytes(self, blob, drop=drop)

    def _json(self, status: int, message: str) -> None:
        payload = json.dumps({"code": status, "message": message}).encode()
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, seconds: float, process=None) -> None:
    """Wait until 127.0.0.1:``port`` accepts connections (bounded); fail when ``process`` died."""
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode} before listening on port {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f}s")


class GcsEmulator:
    """gcp-storage-emulator (PyPI) in this process, in memory, on 127.0.0.1."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        self.port = free_port()
        self.server = create_server("127.0.0.1", self.port, in_memory=True)
        self.server.start()
        wait_for_port(self.port, seconds=10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()


AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="  # Azurite's well-known key
REPO = Path(__file__).resolve().parents[1]


def azurite_command() -> list[str] | None:
    """How to start Azurite's blob service: the repository's node_modules (``make test`` installs it), else PATH."""
    import shutil

    local = REPO / "node_modules" / ".bin" / "azurite-blob"
    if local.exists():
        return [str(local)]
    found = shutil.which("azurite-blob")
    return [found] if found else None


class ChildServer:
    """A server run as a child process on 127.0.0.1:``port``, stopped (and killed if need be) by :meth:`stop`."""

    def __init__(self, command: list[str]) -> None:
        import subprocess

        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_for_port(self.port, seconds=60, process=self.process)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except Exception:
            self.process.kill()
            self.process.wait(10)


class Azurite(ChildServer):
    """Azurite's blob service (npm) on 127.0.0.1, in memory."""

    def __init__(self, command: list[str]) -> None:
        self.port = free_port()
        super().__init__(
            [
                *command,
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
                "--disableTelemetry",
            ]
        )

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={self.endpoint};"


class MotoServer(ChildServer):
    """moto's server (``python -m moto.server``) as a child process on 127.0.0.1."""

    def __init__(self) -> None:
        import sys

        self.port = free_port()
        super().__init__([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"
