"""A quiet Spark: an error of a run on Spark is one AutoFlux line; Spark's, py4j's and the JVM's output goes to the log folder.

The test runs the CLI in a subprocess, so that the JVM is started by that run (as a user's shell
does) and its output has nowhere to go but where AutoFlux sends it. A whole run's quiet terminal is
shown by test_spark_cluster's run.
"""

from __future__ import annotations

import time
from pathlib import Path

from spark_helpers import NOISE, local_engine, make_workspace


def small_competition(folder: Path) -> Path:
    folder.mkdir()
    (folder / "train.csv").write_text("id,x,zip,default\n1,0.5,08123,0\n2,1.5,10115,1\n")
    return folder


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
