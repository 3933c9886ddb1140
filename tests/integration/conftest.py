"""Engine fixtures shared by the per-engine folders and the tests parametrised across engines.

Spark: one SparkSession per process (switching settings restarts it); the ``local_workspace`` on
classic local Spark and the ``sail`` Spark Connect server are started once per test session.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from spark_helpers import local_engine, make_workspace


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
def local_workspace(java, tmp_path_factory) -> Path:
    """A workspace on local Spark (Derby, ``format: parquet``), shared so its SparkSession is started once.

    test_spark_local.py runs the example in it first; test_spark_local_policies.py and test_ingest_policies.py
    add tables of their own.
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
