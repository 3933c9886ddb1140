"""A quiet Spark: the terminal shows AutoFlux's lines only; Spark's, py4j's and the workers' output goes to the log folder.

Each test runs the CLI in a subprocess, so that the JVM is started by that run (as a user's
shell does) and its output has nowhere to go but where AutoFlux sends it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from spark_helpers import local_engine, make_workspace

NOISE = re.compile(
    r"\bWARN\b|\bINFO\b|WARNING:|log4j|Traceback|BrokenPipe|py4j|FutureWarning|Exception|^\s+at |SparkSession|Setting default log level|NativeCodeLoader",
    re.MULTILINE,
)
SPARK_LOG_LINE = re.compile(r"^\d\d/\d\d/\d\d \d\d:\d\d:\d\d (WARN|ERROR|INFO) ", re.MULTILINE)


def small_competition(folder: Path) -> Path:
    folder.mkdir()
    (folder / "train.csv").write_text("id,x,zip,default\n1,0.5,08123,0\n2,1.5,10115,1\n3,2.5,75001,0\n4,3.5,01000,1\n")
    (folder / "test.csv").write_text('id,x,zip\n5,0.5,"08123"\n6,1.5,10115\n')
    return folder


def test_a_run_on_spark_prints_only_autoflux_lines(java, tmp_path, cli_process):
    root = make_workspace(tmp_path / "ws", local_engine())
    data = small_competition(tmp_path / "data")
    result = cli_process("run", str(data), "-w", str(root), timeout=900)
    output = result.stdout + result.stderr
    assert result.exit_code == 0, output
    assert "Ingest" in output and "Training data: marts.ml_training_set" in output
    assert not NOISE.search(output), output
    log = root / ".autoflux" / "logs" / "spark.log"
    assert log.exists() and SPARK_LOG_LINE.search(log.read_text(errors="replace")), "Spark's log is in the workspace's log folder"


def test_delta_out_of_reach_names_the_offline_ways_in_one_line(java, tmp_path, cli_process):
    root = make_workspace(tmp_path / "ws", local_engine(format="delta"))
    data = small_competition(tmp_path / "data")
    started = time.monotonic()
    result = cli_process("ingest", str(data / "train.csv"), "-w", str(root))
    output = result.stdout + result.stderr
    assert result.exit_code == 1 and time.monotonic() - started < 120
    [line] = [line for line in output.splitlines() if line.startswith("error:")]
    assert "Delta Lake's Spark connector" in line and "engine.format: parquet" in line and "pip install pysail" in line
    assert not NOISE.search(output), output
