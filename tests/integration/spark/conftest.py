"""Spark test fixtures: one SparkSession per process (switching settings restarts it), real services.

Services the tests start themselves: a Sail Spark Connect server (in this process, one per test
session: the ``sail`` fixture), a standalone
master and worker and a Spark Thrift Server (pyspark's ``spark-class``, as subprocesses). The
PostgreSQL on 127.0.0.1:5432 holds each test session's own metastore database, dropped at the end.
Every test here needs Java and pyspark: without them it skips, or fails when ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from scratch_postgres import ADMIN_USER, HOST, PORT
from spark_helpers import PG_JAR, local_engine, make_workspace


@pytest.fixture(scope="session")
def java(requirement) -> None:
    """Java and pyspark are here (else skip, or fail under CI=true)."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        requirement(False, 'pyspark is not installed (pip install "autoflux[spark]")')
    requirement(shutil.which("java") or os.environ.get("JAVA_HOME"), "no Java: install Java 17 or 21")


@pytest.fixture(scope="session", autouse=True)
def _stop_spark() -> Iterator[None]:
    yield
    from autoflux.engines.spark import stop

    stop()


@pytest.fixture(scope="session")
def metastore_db(requirement, java, postgres) -> Iterator[dict[str, Any]]:
    """A fresh database on the test PostgreSQL for the Hive metastore (``engine.metastore``)."""
    requirement(os.path.exists(PG_JAR), f"no PostgreSQL JDBC driver at {PG_JAR} (apt-get install libpostgresql-jdbc-java)")
    name = postgres.create_database()
    yield {"type": "postgres", "url": f"jdbc:postgresql://{HOST}:{PORT}/{name}", "user": ADMIN_USER, "driver_jar": PG_JAR}
    from autoflux.engines.spark import stop

    stop()  # before the postgres fixture drops the database


@pytest.fixture(scope="session")
def local_workspace(java, tmp_path_factory) -> Path:
    """A workspace on local Spark (Derby, ``format: parquet``), shared so its SparkSession is started once.

    test_spark_local.py runs the example in it first; test_spark_local_policies.py adds tables of its own.
    """
    return make_workspace(tmp_path_factory.mktemp("local") / "ws", local_engine())


@pytest.fixture(scope="session")
def sail(requirement) -> Iterator[str]:
    """The URL of a Sail Spark Connect server started in this process (Delta through the Spark API)."""
    try:
        from pysail.spark import SparkConnectServer
    except ImportError:
        requirement(False, "pysail is not installed")
    server = SparkConnectServer("127.0.0.1", 0)
    server.start(background=True)
    host, port = server.listening_address
    yield f"sc://{host}:{port}"
    from autoflux.engines.spark import stop

    stop()
    server.stop()
