"""Spark test fixtures: one SparkSession per process (switching settings restarts it), real services.

Services the tests start themselves: a Sail Spark Connect server (in this process, one per test
session: the ``sail`` fixture, in ``tests/integration/conftest.py`` with ``java`` and
``local_workspace``), a standalone master and worker and a Spark Thrift Server (pyspark's
``spark-class``, as subprocesses). The PostgreSQL on 127.0.0.1:5432 holds each test session's own
metastore database, dropped at the end.
Every test here needs Java and pyspark: without them it skips, or fails when ``CI=true``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from scratch_postgres import ADMIN_USER, HOST, PORT
from spark_helpers import PG_JAR


@pytest.fixture(scope="session")
def metastore_db(requirement, java, postgres) -> Iterator[dict[str, Any]]:
    """A fresh database on the test PostgreSQL for the Hive metastore (``engine.metastore``)."""
    requirement(os.path.exists(PG_JAR), f"no PostgreSQL JDBC driver at {PG_JAR} (apt-get install libpostgresql-jdbc-java)")
    name = postgres.create_database()
    yield {"type": "postgres", "url": f"jdbc:postgresql://{HOST}:{PORT}/{name}", "user": ADMIN_USER, "driver_jar": PG_JAR}
    from autoflux.engines.spark import stop

    stop()  # before the postgres fixture drops the database
