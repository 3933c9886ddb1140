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
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from spark_helpers import (
    PG_HOST,
    PG_JAR,
    PG_PORT,
    PG_USER,
    local_engine,
    make_workspace,
)


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
def metastore_db(requirement, java) -> Iterator[dict[str, Any]]:
    """A fresh PostgreSQL database for the Hive metastore (``engine.metastore``), dropped at the end."""
    requirement(os.path.exists(PG_JAR), f"no PostgreSQL JDBC driver at {PG_JAR} (apt-get install libpostgresql-jdbc-java)")
    try:
        from adbc_driver_postgresql import dbapi
    except ImportError:
        requirement(False, "adbc-driver-postgresql is not installed")
    name = f"autoflux_metastore_{uuid.uuid4().hex[:10]}"

    def admin(sql: str) -> None:
        with dbapi.connect(f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres", autocommit=True) as connection, connection.cursor() as cursor:
            cursor.execute(sql)

    try:
        admin(f'create database "{name}"')
    except Exception as error:
        requirement(False, f"no PostgreSQL at {PG_HOST}:{PG_PORT}: {error}")
    yield {"type": "postgres", "url": f"jdbc:postgresql://{PG_HOST}:{PG_PORT}/{name}", "user": PG_USER, "driver_jar": PG_JAR}
    from autoflux.engines.spark import stop

    stop()
    admin(f'drop database if exists "{name}" with (force)')


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
