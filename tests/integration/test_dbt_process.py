"""AutoFlux's dbt process (autoflux.transform.dbt_process): real dbt builds on DuckDB, in a process of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import autoflux
from autoflux.exceptions import TransformError
from autoflux.transform.dbt import run_dbt
from autoflux.transform.dbt_process import prestart, shared_process


@pytest.fixture
def ingested(workspace: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x,target\n1,10,0\n2,20,1\n")
    (data / "test.csv").write_text("id,x\n3,30\n")
    with autoflux.Pipeline.open(workspace) as pipeline:
        pipeline.ingest([str(data)])
    return workspace


def _gone(pid: int, within: float = 30.0) -> bool:
    """Whether process ``pid`` ended (exited, or a zombie nobody reaped) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.1)
    return False


def test_a_dbt_process_that_dies_mid_build_is_a_clear_error_and_the_next_build_starts_another(ingested):
    def kill_it(node) -> None:
        os.kill(shared_process()._process.pid, signal.SIGKILL)

    with autoflux.Pipeline.open(ingested) as pipeline:
        with pytest.raises(TransformError, match=r"dbt's process ended during `dbt build` \(exit code -9\)"):
            run_dbt(pipeline.workspace, pipeline.engine, on_node=kill_it)
        report = run_dbt(pipeline.workspace, pipeline.engine)  # a new process; the database was left usable
    assert {m.name for m in report.models} >= {"stg_train", "stg_test", "stg_full", "ml_training_set"}
    data = autoflux.load_training_data(ingested, format="arrow")
    assert data.train.column("x").to_pylist() == [10, 20] and data.test.column("x").to_pylist() == [30]


def test_each_dbt_command_sees_the_environment_of_its_caller(ingested, monkeypatch):
    """The process outlives a command: each gets the caller's environment as it is then, not as it was at start."""
    model = ingested / "dbt" / "models" / "marts" / "env_probe.sql"
    model.write_text('select \'{{ env_var("AUTOFLUX_TEST_PROBE", "unset") }}\' as probe\n')
    seen = []
    for value in ("first", "second"):
        monkeypatch.setenv("AUTOFLUX_TEST_PROBE", value)
        with autoflux.Pipeline.open(ingested) as pipeline:
            pipeline.transform(select="env_probe")
            seen.append(pipeline.engine.query("select probe from marts.env_probe").column("probe").to_pylist())
    assert seen == [["first"], ["second"]]


def test_a_killed_autoflux_leaves_no_dbt_run_behind(ingested):
    """AutoFlux SIGKILLed while dbt builds: the dbt process ends too, so the next build finds the database free."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        import autoflux
        from autoflux.transform.dbt import run_dbt
        from autoflux.transform.dbt_process import prestart, shared_process

        def die(node):
            print(shared_process()._process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        with autoflux.Pipeline.open(sys.argv[1]) as pipeline:
            run_dbt(pipeline.workspace, pipeline.engine, on_node=die)
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(ingested)], capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert _gone(int(done.stdout.split()[0]))
    with autoflux.Pipeline.open(ingested) as pipeline:
        assert not pipeline.engine.relation_exists("marts", "ml_training_set")  # the build stopped with AutoFlux
        assert {m.name for m in run_dbt(pipeline.workspace, pipeline.engine).models} >= {"stg_full", "ml_training_set"}


def test_a_dbt_process_that_cannot_start_is_a_clear_error(ingested, monkeypatch):
    shared_process().close()
    monkeypatch.setattr(sys, "executable", str(ingested / "no-python-here"))
    prestart("duckdb")  # only a head start: not an error
    with autoflux.Pipeline.open(ingested) as pipeline, pytest.raises(TransformError, match=r"cannot start dbt's process .*no-python-here"):
        pipeline.transform()


def _dbt_processes(marker: str) -> list[int]:
    """Pids of AutoFlux dbt processes whose environment holds ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if b"autoflux.transform.dbt_process" in (proc / "cmdline").read_bytes() and marker.encode() in (proc / "environ").read_bytes():
                if Path(f"/proc/{proc.name}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X"):
                    found.append(int(proc.name))
        except (FileNotFoundError, ProcessLookupError, PermissionError, NotADirectoryError):
            continue
    return found


def _dbt_processes_during(*arguments: str, cwd: Path) -> set[int]:
    """The dbt processes seen while ``autoflux ARGUMENTS`` runs (a subprocess); each must end with it."""
    marker = f"AUTOFLUX_TEST_MARKER={os.getpid()}-{time.time_ns()}"
    environment = {**os.environ, marker.split("=")[0]: marker.split("=")[1]}
    command = subprocess.Popen([sys.executable, "-m", "autoflux", *arguments], env=environment, stdout=subprocess.DEVNULL, cwd=cwd)
    seen: set[int] = set()
    while command.poll() is None:
        seen.update(_dbt_processes(marker))
        time.sleep(0.005)
    assert command.returncode == 0
    assert all(_gone(pid, within=5) for pid in seen)
    return seen


def test_the_run_command_starts_dbt_first_and_leaves_no_dbt_process_behind(tmp_path):
    """``autoflux run`` of a workspace never built starts dbt's process before anything else (autoflux.__main__);
    the command's end is the process's end."""
    assert _dbt_processes_during("run", "--help", cwd=tmp_path), "no dbt process was started for `autoflux run`"


def test_the_run_command_of_a_built_workspace_leaves_dbt_to_the_run(ingested, tmp_path):
    """A workspace built before is most often up to date: dbt's process is not started ahead (the run starts it when it
    finds the build out of date), whichever way the workspace is named."""
    with autoflux.Pipeline.open(ingested) as pipeline:
        pipeline.transform()
    for arguments in (["-w", str(ingested)], [f"--workspace={ingested}"], [f"-w{ingested}"]):
        assert not _dbt_processes_during("run", *arguments, "--help", cwd=tmp_path), arguments
    assert _dbt_processes_during("run", "-w", str(tmp_path), "--help", cwd=ingested), "a folder never built starts it"
