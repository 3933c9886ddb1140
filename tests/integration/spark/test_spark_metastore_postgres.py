"""Tests 2 and 4: the Hive metastore in the real PostgreSQL, seen by a second process and by a
Spark Thrift Server that dbt reaches over thrift.

The test session's own database ``autoflux_metastore_<random>`` on 127.0.0.1:5432 starts empty:
the engine creates the whole metastore schema before first use (lazy creation deadlocks on the
first ``saveAsTable``), this process ingests the example, and other JVMs then see the tables.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from scratch_postgres import admin_uri
from spark_helpers import (
    free_port,
    local_engine,
    make_workspace,
    spark_class,
    stop_process,
    wait_for_port,
)

from autoflux.engines import create_engine
from autoflux.engines.spark.session import spark_conf
from autoflux.pipeline import Pipeline
from autoflux.workspace import Workspace


@pytest.fixture(scope="module")
def pg_ws(metastore_db, tmp_path_factory, example_dir):
    root = make_workspace(tmp_path_factory.mktemp("pg") / "ws", local_engine(metastore=metastore_db))
    report = Pipeline(Workspace.open(root)).ingest([str(example_dir)])
    assert [f.outcome for f in report.files] == ["loaded"] * 3, [f.message for f in report.files]
    return root, metastore_db


def metastore_rows(database_url: str, sql: str) -> list[tuple]:
    from adbc_driver_postgresql import dbapi

    name = database_url.rsplit("/", 1)[1]
    with dbapi.connect(admin_uri(name)) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def test_the_metastore_schema_is_created_whole_in_postgres(pg_ws):
    _, metastore = pg_ws
    tables = {
        row[0] for row in metastore_rows(metastore["url"], "select table_name from information_schema.tables where table_schema = 'public'")
    }
    assert {"DBS", "TBLS", "TBL_PRIVS", "TABLE_PARAMS", "SEQUENCE_TABLE", "PARTITIONS", "VERSION"} <= tables
    raw = metastore_rows(
        metastore["url"], 'select t."TBL_NAME" from "TBLS" t join "DBS" d on d."DB_ID" = t."DB_ID" where d."NAME" = \'raw\''
    )
    assert sorted(r[0] for r in raw) == ["sample_submission", "test", "train"]


def test_a_second_process_lists_and_reads_the_tables(pg_ws):
    root, _ = pg_ws
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFLUX")}
    completed = subprocess.run(
        [sys.executable, "-m", "autoflux", "tables", "-w", str(root), "--json"],
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = {(r["schema"], r["table"]): r["rows"] for r in json.loads(completed.stdout)}
    assert rows[("raw", "train")] == 1000 and rows[("raw", "test")] == 400 and rows[("raw", "sample_submission")] == 400


@pytest.fixture(scope="module")
def thrift_server(pg_ws, tmp_path_factory):
    root, _ = pg_ws
    workspace = Workspace.open(root)
    conf = spark_conf(workspace.config.engine, workspace)
    port = free_port()
    arguments = ["org.apache.spark.deploy.SparkSubmit", "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"]
    arguments += ["--master", conf.pop("spark.master"), "--name", "autoflux-thrift-test"]
    for key, value in conf.items():
        arguments += ["--conf", f"{key}={value}"]
    arguments += [
        "spark-internal",
        "--hiveconf",
        f"hive.server2.thrift.port={port}",
        "--hiveconf",
        "hive.server2.thrift.bind.host=127.0.0.1",
    ]
    log = tmp_path_factory.mktemp("thrift") / "thrift.log"
    process = spark_class(*arguments, log=log, env={"SPARK_LOCAL_IP": "127.0.0.1"})
    try:
        wait_for_port(port, process, timeout=300, log=log)
        yield port
    finally:
        stop_process(process)


def test_dbt_runs_over_thrift_on_the_spark_thrift_server(pg_ws, thrift_server, configure):
    root, _ = pg_ws
    configure(root, {"engine": {"thrift_host": "127.0.0.1", "thrift_port": thrift_server}})
    pipeline = Pipeline(Workspace.open(root))
    report = pipeline.transform()
    assert {m.status for m in report.models} == {"success"} and len(report.models) == 5
    profile = (root / "dbt" / "profiles.yml").read_text()
    assert "method: thrift" in profile and f"port: {thrift_server}" in profile
    engine = create_engine(Workspace.open(root))
    marts = {r.name: r.rows for r in engine.relations(["marts"])}
    assert marts == {"ml_training_set": 1400}
