"""Fixtures shared by every test: workspaces, the CLI in-process and as a subprocess, CI rules.

CI rule: a test that needs a service (a server, an engine, an optional package) calls
``require(condition, reason)``. Locally a missing service skips the test; when the environment
says ``CI=true`` it fails it, so a CI run can never go green by skipping what it should test.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import scratch_postgres
import servers
import yaml
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "loan-default"

# Wide enough that rich never truncates a table cell or wraps a message in captured output.
CLI_ENV = {"COLUMNS": "240", "NO_COLOR": "1", "TERM": "dumb"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require(condition: object, reason: str) -> None:
    """Go on when ``condition`` holds; else skip the test, or fail it when ``CI=true``."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and this test's requirement is missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def requirement() -> Callable[[object, str], None]:
    """:func:`require` as a fixture (a test module cannot import this conftest reliably)."""
    return require


@pytest.fixture(scope="session")
def example_dir() -> Path:
    """The bundled Kaggle-style competition: train.csv (1000 rows), test.csv (400), sample_submission.csv."""
    return EXAMPLE


# ------------------------------------------------------------------- two processes (pytest-xdist)

# Tests whose id names Spark or Sail start a JVM or a Spark Connect server, and share one per process;
# these modules' Spark runs in processes of its own (a CLI subprocess; a standalone master and worker).
SPARK_TEST = re.compile(r"spark|sail", re.IGNORECASE)
SPARK_ELSEWHERE = {"tests/integration/spark/test_spark_quiet.py", "tests/integration/spark/test_spark_cluster.py"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """How ``pytest -n 2`` (``make test``) shares the tests between its two processes.

    The Spark tests are one unit, run in collection order by one process: the suite starts one
    in-process JVM, and the Spark tests that build on one another keep their order. Each other
    module is a unit (its module fixtures made once) for whichever process is free. The Spark
    unit, the largest, starts first; it keeps ~1.6 of the two cores busy, the others ~1.
    """
    from xdist.scheduler import LoadScopeScheduling

    class SparkTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "spark" if SPARK_TEST.search(nodeid) and module not in SPARK_ELSEWHERE else module

    return SparkTogether(config, log)


# ------------------------------------------------------------------------------ workspaces


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh workspace made by ``autoflux.init`` (default config, empty lake)."""
    import autoflux

    return autoflux.init(tmp_path / "ws")


def update_config(workspace: Path, patch: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` (nested sections) into the workspace's autoflux.yml; returns the new config."""

    def merge(into: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(into.get(key), dict):
                merge(into[key], value)
            else:
                into[key] = value
        return into

    path = workspace / "autoflux.yml"
    config = merge(yaml.safe_load(path.read_text(encoding="utf-8")) or {}, patch)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return config


@pytest.fixture
def configure() -> Callable[[Path, Mapping[str, Any]], dict[str, Any]]:
    return update_config


def lake_state(workspace: Path) -> dict[str, tuple[int, int]]:
    """Each raw Delta table of the workspace as (version, row count)."""
    from autoflux.lake import RAW
    from autoflux.workspace import Workspace

    lake = Workspace.open(workspace).lake
    return {name: (lake.open(RAW, name).version(), lake.open(RAW, name).count()) for name in lake.tables(RAW)}


@pytest.fixture
def lake_snapshot() -> Callable[[Path], dict[str, tuple[int, int]]]:
    return lake_state


# ------------------------------------------------------------------------------------- CLI


@dataclass(frozen=True)
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json_documents(self) -> list:
        """Every JSON document on stdout (one per result or error the CLI printed with --json)."""
        decoder, documents, index, text = json.JSONDecoder(), [], 0, self.stdout
        while index < len(text):
            if text[index].isspace():
                index += 1
                continue
            document, index = decoder.raw_decode(text, index)
            documents.append(document)
        return documents

    def error_lines(self) -> list[str]:
        """The ``error: …`` lines the CLI printed."""
        return [line for line in self.output.splitlines() if line.startswith("error:")]


def run_cli(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> CliResult:
    """Run ``autoflux ARGS`` in this process with click's CliRunner.

    An exception escaping the CLI (what a user would see as a traceback) fails the test here.
    """
    from autoflux.cli import cli

    runner = CliRunner()
    with contextlib.chdir(cwd or Path.cwd()):
        result = runner.invoke(cli, list(args), env={**CLI_ENV, **(env or {})}, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        trace = "".join(traceback.format_exception(*result.exc_info)) if result.exc_info else repr(result.exception)
        pytest.fail(f"`autoflux {' '.join(args)}` raised instead of printing an error:\n{trace}")
    return CliResult(result.exit_code, result.stdout, result.stderr)


def run_cli_process(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 300) -> CliResult:
    """Run ``python -m autoflux ARGS`` as a subprocess, the way a user's shell does."""
    environment = {k: v for k, v in os.environ.items() if not _shapes_autoflux(k)}
    completed = subprocess.run(
        [sys.executable, "-m", "autoflux", *args],
        cwd=cwd,
        env={**environment, **CLI_ENV, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture(scope="session")
def cli() -> Callable[..., CliResult]:
    """``cli("ingest", "data", cwd=ws)``: the CLI in-process (fast)."""
    return run_cli


@pytest.fixture(scope="session")
def cli_process() -> Callable[..., CliResult]:
    """``cli_process("run", "data", cwd=ws)``: the CLI as a subprocess (true end to end)."""
    return run_cli_process


def _shapes_autoflux(name: str) -> bool:
    """AUTOFLUX__* overrides and the AUTOFLUX_* variables dbt reads; AUTOFLUX_TEST_* configure the tests."""
    return name.startswith("AUTOFLUX") and not name.startswith("AUTOFLUX_TEST_")


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache of this test session's own (``XDG_CACHE_HOME``): what AutoFlux keeps across workspaces
    (dbt's parse, the charts' script) is shared by the session's tests, never by another session's."""
    with pytest.MonkeyPatch.context() as patch:
        folder = tmp_path_factory.mktemp("user-cache")
        patch.setenv("XDG_CACHE_HOME", str(folder))
        yield folder


@pytest.fixture(autouse=True)
def _no_autoflux_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables of the shell running the tests must not change what AutoFlux does in them."""
    for name in list(os.environ):
        if _shapes_autoflux(name):
            monkeypatch.delenv(name)


@pytest.fixture
def place_mart(request) -> Callable[[str, Path, Any], None]:
    """``place_mart("duckdb" | "postgres", workspace, arrow_table)``: the table as the workspace's
    ``marts.ml_training_set`` on that engine (a scratch PostgreSQL database), built without dbt."""

    def place(engine_type: str, workspace: Path, data: Any) -> None:
        if engine_type == "duckdb":
            import duckdb

            with duckdb.connect(str(workspace / "warehouse.duckdb")) as connection:
                connection.execute("create schema marts")
                connection.register("frame", data)
                connection.execute("create table marts.ml_training_set as select * from frame")
            return
        postgres = request.getfixturevalue("postgres")
        database = postgres.create_database()
        with postgres.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute("create schema marts")
            cursor.adbc_ingest("ml_training_set", data, mode="create", db_schema_name="marts")
        update_config(workspace, {"engine": postgres.engine_settings(database)})

    return place


# ------------------------------------------------------------------------------ PostgreSQL


@pytest.fixture(scope="session")
def postgres(requirement) -> Iterator[scratch_postgres.Postgres]:
    try:
        import adbc_driver_postgresql.dbapi  # noqa: F401
    except ImportError:
        requirement(False, 'adbc-driver-postgresql is not installed (pip install "autoflux[postgres]")')
    server = scratch_postgres.Postgres(prefix=f"autoflux_test_{uuid.uuid4().hex[:8]}")
    try:
        server.query("postgres", "select 1")
    except Exception as error:  # noqa: BLE001
        requirement(False, f"no PostgreSQL at {scratch_postgres.HOST}:{scratch_postgres.PORT}: {error}")
    yield server
    server.drop_all()


# ------------------------------------------------- source servers (tests/servers.py), one per session


@pytest.fixture(scope="session")
def http_server():
    server = servers.FileServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def kaggle_server():
    """A fresh Kaggle stand-in for one test. The client knows the port 7777 only, so the test processes
    take turns: each holds a lock file while its stand-in runs."""
    import fcntl
    import tempfile

    servers.require_module("kagglesdk")
    with open(Path(tempfile.gettempdir()) / f"autoflux-tests-kaggle-{servers.KAGGLE_PORT}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            server = servers.KaggleStandIn()
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            pytest.fail(
                f"port {servers.KAGGLE_PORT} on 127.0.0.1 is busy: the Kaggle client's TEST environment talks to "
                f"http://localhost:{servers.KAGGLE_PORT} only, so stop whatever listens there and run again",
                pytrace=False,
            )
        server.start()
        try:
            yield server
        finally:
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
    monkeypatch.setenv("KAGGLE_USERNAME", servers.KAGGLE_USER)
    monkeypatch.setenv("KAGGLE_KEY", servers.KAGGLE_KEY)
    return kaggle_server


def bucket_name(node) -> str:
    """A bucket or container name of the test, unique per test and parameter, valid on S3, GCS and Azure."""
    import hashlib

    readable = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", node.name.lower()))[:40].strip("-")
    return f"{readable}-{hashlib.sha1(node.nodeid.encode()).hexdigest()[:8]}"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server as a child process on 127.0.0.1 (not a thread: delta-rs holds the GIL while
    it waits for some answers, so an in-process server would never answer it)."""
    servers.require_module("s3fs")
    servers.require_module("moto.server")
    server = servers.MotoServer()
    yield server.endpoint
    server.stop()


@pytest.fixture
def s3_bucket(s3_server, monkeypatch, request, tmp_path):
    """A fresh bucket on the moto server, with the AWS environment pointing at it."""
    boto3 = servers.require_module("boto3")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    bucket = bucket_name(request.node)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture(scope="session")
def gcs_server():
    """gcp-storage-emulator on 127.0.0.1; gcsfs's experimental gRPC bucket probe is off (the emulator speaks JSON only)."""
    os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"  # read when gcsfs is imported
    servers.require_module("gcsfs")
    servers.require_module("gcp_storage_emulator")
    server = servers.GcsEmulator()
    yield server
    server.stop()


@pytest.fixture
def gcs_bucket(gcs_server, monkeypatch, request):
    """A fresh bucket on the GCS emulator, with STORAGE_EMULATOR_HOST pointing at it; returns (fs, bucket)."""
    import fsspec

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.endpoint)
    monkeypatch.setenv("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    bucket = bucket_name(request.node)
    fs = fsspec.filesystem("gs", token="anon", project="test", skip_instance_cache=True)
    fs.mkdir(bucket)
    return fs, bucket


@pytest.fixture(scope="session")
def azurite_server():
    """Azurite's blob service, started for the session (`make test` installs the npm package azurite)."""
    servers.require_module("adlfs")
    command = servers.azurite_command()
    require(command, "Azurite is not installed (npm install --no-save azurite, or `make test`)")
    server = servers.Azurite(command)
    yield server
    server.stop()


@pytest.fixture
def azure_container(azurite_server, monkeypatch, request):
    """A fresh container on Azurite, with the usual Azure variables pointing at it; returns (fs, container)."""
    import fsspec

    for name in list(os.environ):
        if name.startswith("AZURE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_server.connection_string)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", servers.AZURITE_ACCOUNT)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", servers.AZURITE_KEY)
    container = bucket_name(request.node)
    fs = fsspec.filesystem("az", connection_string=azurite_server.connection_string, skip_instance_cache=True)
    fs.mkdir(container)
    return fs, container
