"""The errors issue 4 asks for: each says what failed and what to do, in seconds."""

from __future__ import annotations

import time

import pytest
from spark_helpers import free_port, local_engine, make_workspace

from autoflux.engines import create_engine
from autoflux.engines.spark import session
from autoflux.exceptions import EngineError
from autoflux.workspace import Workspace


def test_no_java_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError) as error:
        session.check_java()
    assert "Java 17 or 21" in str(error.value) and "apt-get install openjdk-17" in str(error.value)


def test_an_unsupported_java_says_what_to_install(monkeypatch, tmp_path):
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'openjdk version \"11.0.2\" 2019-01-15' >&2\n")
    fake.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    with pytest.raises(EngineError, match="is Java 11") as error:
        session.check_java()
    assert "install Java 17 or 21" in str(error.value)


def test_an_unreachable_metastore_names_host_and_port(java, tmp_path):
    port = free_port()
    metastore = {"type": "postgres", "url": f"jdbc:postgresql://127.0.0.1:{port}/metastore", "user": "postgres"}
    root = make_workspace(tmp_path / "ws", local_engine(metastore=metastore))
    started = time.monotonic()
    with pytest.raises(EngineError) as error:
        create_engine(Workspace.open(root)).spark  # noqa: B018
    assert time.monotonic() - started < 15
    assert f"metastore database at 127.0.0.1:{port}" in str(error.value)


def test_a_spark_connect_server_that_does_not_answer_fails_within_seconds(java, tmp_path):
    url = f"sc://127.0.0.1:{free_port()}"
    root = make_workspace(tmp_path / "ws", {"type": "spark", "master": url})
    started = time.monotonic()
    with pytest.raises(EngineError) as error:
        create_engine(Workspace.open(root)).spark  # noqa: B018
    assert time.monotonic() - started < 15 and url in str(error.value)


def test_delta_without_the_connector_says_how_to_add_it(java, tmp_path):
    root = make_workspace(tmp_path / "ws", local_engine(format="delta"))
    with pytest.raises(EngineError) as error:
        create_engine(Workspace.open(root)).spark  # noqa: B018
    message = str(error.value)
    # A JVM this process started earlier keeps its classpath; a new one tries to fetch the connector (no Maven here).
    assert (
        "Delta Lake's Spark connector is not on Spark's classpath" in message
        or "Spark cannot fetch Delta Lake's Spark connector" in message
    )
    assert "engine.format: parquet" in message and "pip install pysail" in message and "sc://" in message


def test_delta_version_adds_the_connector_package(tmp_path):
    root = make_workspace(tmp_path / "ws", local_engine(format="delta", delta_version="4.0.0", packages=["org.example:extra:1.0"]))
    workspace = Workspace.open(root)
    conf = session.spark_conf(workspace.config.engine, workspace)
    assert conf["spark.jars.packages"] == "org.example:extra:1.0,io.delta:delta-spark_2.13:4.0.0"
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
