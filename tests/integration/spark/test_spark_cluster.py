"""Test 3: a standalone cluster — a master and one worker started from pyspark's ``spark-class`` —
runs the example pipeline at ``spark://127.0.0.1:PORT``; a master that does not answer fails fast.

The run is ``autoflux run`` in a process of its own, as a user's shell starts it: its JVM is started
by that run, so the test also shows that the terminal gets AutoFlux's lines only, and Spark's, py4j's
and the executors' output goes to the log folder (test_spark_quiet has the other quiet case).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request

import pytest
from spark_helpers import (
    NOISE,
    SPARK_LOG_LINE,
    free_port,
    local_engine,
    make_workspace,
    spark_class,
    stop_process,
    wait_for_port,
)

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
        yield url, logs / "work"
    finally:
        for process in (worker, master):
            if process is not None:
                stop_process(process)


def test_the_example_runs_on_a_standalone_cluster_and_prints_only_autoflux_lines(cluster, tmp_path, example_dir, cli_process):
    url, work = cluster
    engine = local_engine(master=url, conf={"spark.driver.host": "127.0.0.1", "spark.executor.memory": "1g", "spark.cores.max": "2"})
    root = make_workspace(tmp_path / "ws", engine)
    result = cli_process("run", str(example_dir), "-w", str(root), timeout=900)
    output = result.stdout + result.stderr
    assert result.exit_code == 0, output
    loaded = dict(re.findall(r"raw\.(\w+)\W+loaded\W+(\d+)\b", output))  # the ingest table: table, outcome, rows
    assert loaded == {"train": "1000", "test": "400", "sample_submission": "400"}, output
    assert "Training data: marts.ml_training_set — 1,000 train rows, 400 test rows" in output
    assert list(work.glob("app-*/*/stderr")), "no executor of the run started on the cluster's worker"
    assert not NOISE.search(output), output
    log = root / ".autoflux" / "logs" / "spark.log"
    assert log.exists() and SPARK_LOG_LINE.search(log.read_text(errors="replace")), "Spark's log is in the workspace's log folder"


def test_an_unreachable_master_fails_within_seconds(java, tmp_path, example_dir):
    url = f"spark://127.0.0.1:{free_port()}"
    root = make_workspace(tmp_path / "ws", local_engine(master=url))
    started = time.monotonic()
    with pytest.raises(EngineError) as error:
        Pipeline(Workspace.open(root)).ingest([str(example_dir)])
    assert time.monotonic() - started < 15
    assert url in str(error.value) and "engine.master" in str(error.value)
