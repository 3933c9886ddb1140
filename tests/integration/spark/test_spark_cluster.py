"""Test 3: a standalone cluster — a master and one worker started from pyspark's ``spark-class`` —
runs the example pipeline at ``spark://127.0.0.1:PORT``; a master that does not answer fails fast.
"""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from spark_helpers import (
    free_port,
    local_engine,
    make_workspace,
    spark_class,
    stop_process,
    wait_for_port,
)

import autoflux
from autoflux.engines import create_engine
from autoflux.exceptions import EngineError
from autoflux.pipeline import Pipeline
from autoflux.workspace import Workspace

LOCAL = {"SPARK_LOCAL_IP": "127.0.0.1"}


@pytest.fixture(scope="module")
def cluster(java, tmp_path_factory):
    logs = tmp_path_factory.mktemp("cluster")
    port, ui = free_port(), free_port()
    master = spark_class(
        "org.apache.spark.deploy.master.Master",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--webui-port",
        str(ui),
        log=logs / "master.log",
        env=LOCAL,
    )
    url = f"spark://127.0.0.1:{port}"
    worker = None
    try:
        wait_for_port(port, master, timeout=180, log=logs / "master.log")
        worker = spark_class(
            "org.apache.spark.deploy.worker.Worker",
            "--host",
            "127.0.0.1",
            "--cores",
            "2",
            "--memory",
            "2g",
            "--webui-port",
            str(free_port()),
            "--work-dir",
            str(logs / "work"),
            url,
            log=logs / "worker.log",
            env=LOCAL,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                state = json.load(urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5))
            except OSError:
                state = {}
            if any(w.get("state") == "ALIVE" for w in state.get("workers", [])):
                break
            assert worker.poll() is None, (logs / "worker.log").read_text()[-3000:]
            time.sleep(1)
        else:
            pytest.fail("the worker did not register with the master")
        yield url
    finally:
        from autoflux.engines.spark import stop

        stop()
        for process in (worker, master):
            if process is not None:
                stop_process(process)


def test_the_example_runs_on_a_standalone_cluster(cluster, tmp_path, example_dir):
    engine = local_engine(master=cluster, conf={"spark.driver.host": "127.0.0.1", "spark.executor.memory": "1g", "spark.cores.max": "2"})
    root = make_workspace(tmp_path / "ws", engine)
    summary = autoflux.run(root, [example_dir])
    assert [f.outcome for f in summary.ingest.files] == ["loaded"] * 3
    assert summary.handoff["train_rows"] == 1000 and summary.handoff["test_rows"] == 400
    spark = create_engine(Workspace.open(root)).spark
    assert spark.sparkContext.master == cluster
    assert spark.sparkContext._jsc.sc().getExecutorMemoryStatus().size() >= 2  # the driver and an executor on the worker


def test_an_unreachable_master_fails_within_seconds(java, tmp_path, example_dir):
    url = f"spark://127.0.0.1:{free_port()}"
    root = make_workspace(tmp_path / "ws", local_engine(master=url))
    started = time.monotonic()
    with pytest.raises(EngineError) as error:
        Pipeline(Workspace.open(root)).ingest([str(example_dir)])
    assert time.monotonic() - started < 15
    assert url in str(error.value) and "engine.master" in str(error.value)
