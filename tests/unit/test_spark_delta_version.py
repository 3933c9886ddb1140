"""Delta on Spark by default: the connector release matching the installed pyspark (no Spark started).

The mapping follows Delta's compatibility table (docs.delta.io/releases: Delta 4.0.x ↔ Spark 4.0.x)
and release notes (4.1.0 is built on Spark 4.1.0, its unsuffixed artifact defaulting to it; 4.4.0
adds Spark 4.2, published with the Spark line in the artifact name).
"""

from __future__ import annotations

import pytest

from autoflux.engines.spark import Settings, session
from autoflux.workspace import Workspace


@pytest.mark.parametrize(
    ("pyspark", "package"),
    [
        ("4.0.0", "io.delta:delta-spark_2.13:4.0.0"),
        ("4.0.1", "io.delta:delta-spark_2.13:4.0.1"),
        ("4.0.2", "io.delta:delta-spark_2.13:4.0.1"),
        ("4.1.0", "io.delta:delta-spark_2.13:4.1.0"),
        ("4.1.1", "io.delta:delta-spark_2.13:4.1.0"),
        ("4.2.1", "io.delta:delta-spark_4.2_2.13:4.4.0"),
        ("4.0.0.dev1", "io.delta:delta-spark_2.13:4.0.0"),
    ],
)
def test_the_delta_release_matching_pyspark(pyspark, package):
    assert session.delta_package(pyspark) == package


@pytest.mark.parametrize("pyspark", ["3.5.1", "5.0.0", "", "dev"])
def test_no_delta_release_for_an_unknown_spark_line(pyspark):
    assert session.delta_package(pyspark) is None


@pytest.fixture
def workspace(tmp_path):
    import autoflux

    return Workspace.open(autoflux.init(tmp_path / "ws"))


def conf(workspace, monkeypatch, pyspark="4.0.1", **settings):
    monkeypatch.setattr(session, "_pyspark_version", lambda: pyspark)
    monkeypatch.setenv("SPARK_HOME", str(workspace.root))  # no jars there
    return session.spark_conf(Settings(type="spark", **settings), workspace)


def test_format_delta_fetches_the_matching_connector_without_a_key(workspace, monkeypatch):
    assert conf(workspace, monkeypatch, format="delta")["spark.jars.packages"] == "io.delta:delta-spark_2.13:4.0.1"


def test_delta_version_wins(workspace, monkeypatch):
    assert conf(workspace, monkeypatch, format="delta", delta_version="4.0.0")["spark.jars.packages"] == "io.delta:delta-spark_2.13:4.0.0"


def test_a_connector_already_given_is_not_fetched_again(workspace, monkeypatch):
    given = conf(workspace, monkeypatch, format="delta", conf={"spark.jars": "/opt/jars/delta-spark_2.13-4.0.0.jar"})
    assert "spark.jars.packages" not in given


def test_parquet_fetches_nothing(workspace, monkeypatch):
    assert "spark.jars.packages" not in conf(workspace, monkeypatch, format="parquet")


def test_spark_logs_to_the_workspace_log_folder(workspace, monkeypatch):
    given = conf(workspace, monkeypatch, format="parquet", conf={"spark.driver.extraJavaOptions": "-Xss4m"})
    options = given["spark.driver.extraJavaOptions"]
    config = workspace.state_dir / "logs" / "log4j2.properties"
    derby_home = (workspace.state_dir / "metastore_db").resolve().parent  # derby.log lands there, not where Spark runs
    assert options == f"-Dderby.system.home={derby_home} -Dlog4j2.configurationFile={config.as_uri()} -Xss4m"
    assert str(workspace.state_dir / "logs" / "spark.log") in config.read_text()


def test_the_offline_ways_are_named():
    assert "engine.format: parquet" in session._OFFLINE_DELTA and "pip install pysail" in session._OFFLINE_DELTA
    assert "sc://" in session._OFFLINE_DELTA
