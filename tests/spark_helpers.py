"""Helpers for the Spark tests: workspaces, free ports, pyspark's spark-class as subprocesses."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PG_JAR = "/usr/share/java/postgresql.jar"
# What must not reach the terminal of a run on Spark (a CLI process), and a line of Spark's own log.
NOISE = re.compile(
    r"\bWARN\b|\bINFO\b|WARNING:|log4j|Traceback|BrokenPipe|py4j|FutureWarning|Exception|^\s+at |SparkSession|Setting default log level|NativeCodeLoader",
    re.MULTILINE,
)
SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|ERROR|INFO) ", re.MULTILINE)
JAVA_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
SPARK_CONF = {
    "spark.driver.extraClassPath": PG_JAR,  # the JVM starts once per process: any later metastore may be PostgreSQL
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
    # The tests' JVMs are short-lived and their data small: the first JIT tier alone and one GC thread
    # leave the cores to the work (the example's run on Spark in a new process: 31 s against 44 s).
    "spark.driver.extraJavaOptions": JAVA_OPTIONS,
    "spark.executor.extraJavaOptions": JAVA_OPTIONS,
}


def local_engine(**settings: Any) -> dict[str, Any]:
    """The ``engine`` section for local Spark (Derby metastore, Parquet: no Delta connector here)."""
    conf = {**SPARK_CONF, **settings.pop("conf", {})}
    return {"type": "spark", "master": "local[2]", "format": "parquet", "conf": conf, **settings}


def local_or_sail_engine(kind: str, request) -> dict[str, Any]:
    """The ``engine`` section for ``kind``: ``local`` (:func:`local_engine`) or ``sail`` (Spark Connect, Delta)."""
    if kind == "local":
        return local_engine()
    return {"type": "spark", "master": request.getfixturevalue("sail"), "format": "delta"}


def make_workspace(folder: Path, engine: Mapping[str, Any], **sections: Any) -> Path:
    import autoflux

    root = autoflux.init(folder)
    path = root / "autoflux.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["engine"] = dict(engine)
    config.update(sections)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}: {log.read_text()[-3000:] if log else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s: {log.read_text()[-3000:] if log else ''}")


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def spark_class(*args: str, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``spark-class ARGS`` from the pyspark installation, output to ``log``."""
    home = spark_home()
    environment = {**os.environ, "SPARK_HOME": str(home), "SPARK_NO_DAEMONIZE": "1", **(env or {})}
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(home / "bin" / "spark-class"), *args], env=environment, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
