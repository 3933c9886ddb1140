"""Crash safety and concurrent runs, with `python -m autoflux ingest` as real processes.

A workspace holds three tables loaded from V1, one per write mode (replace ``big``, merge
``customers``, append ``events``); V2 changes all three (customers with two bad rows, within
ingest.bad_rows) and adds ``new``. An ingest of V2 is killed with SIGKILL at each fault point
(AUTOFLUX_FAULT, see autoflux/faults.py) and at moments chosen by the clock. After every kill:
each table is readable and holds exactly its V1 or its V2 content, the load log and the quarantine
only name loads that committed. The next run then ends in the state of a run never interrupted:
same versions, rows, quarantined rows and logged loads.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from ingesting import run_ingest

import autoflux
from autoflux.ingest.quarantine import read_quarantine
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.ingest.state import committed_load, read_log
from autoflux.lake import RAW, SYSTEM
from autoflux.workspace import Workspace

CONFIG = {
    "ingest": {
        "csv": {"block_size": 65536},
        "bad_rows": {"max_count": 10},
        "tables": {"customers": {"mode": "merge", "key": ["id"]}, "events": {"mode": "append"}},
    }
}
V1 = {
    "big.csv": "id,name,value\n" + "".join(f"{i},n{i},{i}\n" for i in range(2_000)),
    "customers.csv": "id,name,tier\n1,ann,1\n2,bob,2\n3,cy,3\n",
    "events.csv": "event,at\n" + "".join(f"e{i},2024-01-01 00:00:{i % 60:02d}\n" for i in range(100)),
}
V2 = {
    "big.csv": "id,name,value\n" + "".join(f"{i},name {i},{i * 0.5}\n" for i in range(40_000)),
    "customers.csv": "id,name,tier\n2,bob,20\n4,dee,4\n5,bad\n6,eve,6,extra\n",
    "events.csv": "event,at\n" + "".join(f"f{i},2024-01-02 00:00:{i % 60:02d}\n" for i in range(5_000)),
    "new.csv": "a\n1\n",
}
ENV = {"PYTHONUNBUFFERED": "1"}


def write_data(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def make_workspace(root: Path) -> tuple[Path, Path]:
    """A workspace with V1 loaded, and its data folder already holding V2."""
    ws = autoflux.init(root / "ws")
    config = yaml.safe_load((ws / "autoflux.yml").read_text(encoding="utf-8"))
    config["ingest"] |= CONFIG["ingest"]
    (ws / "autoflux.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    data = write_data(root / "data", V1)
    run_ingest(Workspace.open(ws), [data])
    write_data(data, V2)
    return ws, data


def table_state(lake, name: str) -> tuple[int, list[tuple]]:
    table = lake.open(RAW, name).to_pyarrow_table()
    rows = table.drop_columns(list(LINEAGE_COLUMNS)).to_pylist()
    return lake.open(RAW, name).version(), sorted(tuple(sorted(r.items())) for r in rows)


def snapshot(ws: Path) -> dict:
    """What must be equal between an interrupted-then-finished run and an uninterrupted one."""
    lake = Workspace.open(ws).lake
    log = read_log(lake).to_pylist()
    return {
        "tables": {name: table_state(lake, name) for name in lake.tables(RAW)},
        "quarantine": sorted((r["table"], r["file"], r["line"], r["reason"], r["raw"]) for r in read_quarantine(lake).to_pylist()),
        "loaded": sorted(
            (e["table"], e["version"], e["fingerprint"], e["rows"], e["quarantined"] or 0) for e in log if e["outcome"] == "loaded"
        ),
        "system versions": {name: lake.open(SYSTEM, name).version() for name in lake.tables(SYSTEM)},
    }


def without_log_version(state: dict) -> dict:
    """A run killed after logging its loads is followed by runs that log them unchanged: one log version each."""
    return {**state, "system versions": {k: v for k, v in state["system versions"].items() if k != "load_log"}}


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    """The snapshot after V1 then V2, never interrupted."""
    ws, data = make_workspace(tmp_path_factory.mktemp("clean"))
    run_ingest(Workspace.open(ws), [data])
    state = snapshot(ws)
    assert state["quarantine"] == [
        ("customers", "customers.csv", 4, "a row has 2 fields where the header has 3", "5,bad"),
        ("customers", "customers.csv", 5, "a row has 4 fields where the header has 3", "6,eve,6,extra"),
    ]
    return state


def assert_consistent(ws: Path, before: dict, clean: dict) -> None:
    """Each table at its V1 or V2 state, readable; the log and the quarantine name committed loads only."""
    lake = Workspace.open(ws).lake
    for name in lake.tables(RAW):
        assert table_state(lake, name) in (before["tables"].get(name), clean["tables"][name]), f"raw.{name} holds a partial load"
    for entry in read_log(lake).to_pylist():
        if entry["outcome"] == "loaded":
            assert committed_load(lake, RAW, entry["table"], entry["load_id"]), entry
            commits = {c["version"]: c for c in lake.open(RAW, entry["table"]).history()}
            assert commits[entry["version"]].get("autoflux.load_id") == entry["load_id"], entry
    for load_id, table in {(r["load_id"], r["table"]) for r in read_quarantine(lake).to_pylist()}:
        assert committed_load(lake, RAW, table, load_id), (table, load_id)


def kill_at(ws: Path, data: Path, point: str, cli_process) -> None:
    result = cli_process("ingest", str(data), "-w", str(ws), env={**ENV, "AUTOFLUX_FAULT": point})
    assert result.exit_code == -signal.SIGKILL, result.output


@pytest.mark.parametrize("point", ["parse:3", "write:2", "commit:2", "log"])
def test_a_kill_at_each_fault_point_leaves_committed_tables_and_the_next_run_converges(tmp_path, cli, cli_process, clean, point):
    ws, data = make_workspace(tmp_path)
    before = snapshot(ws)
    kill_at(ws, data, point, cli_process)
    assert_consistent(ws, before, clean)
    after_kill = snapshot(ws)
    expected_done = {"parse:3": set(), "write:2": {"big"}, "commit:2": {"big", "customers"}, "log": {"big", "customers", "events", "new"}}
    assert {n for n, s in after_kill["tables"].items() if s == clean["tables"][n] and s != before["tables"].get(n)} == expected_done[point]
    result = cli("ingest", str(data), cwd=ws)
    assert result.exit_code == 0, result.output
    assert snapshot(ws) == clean
    if point in ("commit:2", "log"):
        assert "of an interrupted run had committed" in result.stdout


def holder(lock: Path) -> str:
    try:
        return lock.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def commits(ws: Path) -> int:
    return sum(1 for _ in (ws / "lake").glob("*/*/_delta_log/*.json"))


def test_kills_at_moments_chosen_by_the_clock_never_leave_a_partial_state(tmp_path, cli, clean):
    """Kills once the run holds the lock, then 0-100 ms after the run's first commit, until one run ends on its own."""
    ws, data = make_workspace(tmp_path)
    before = snapshot(ws)
    lock = ws / ".autoflux" / "lock"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFLUX")} | ENV
    kills = 0
    for after_commit, delay in ((False, 0.1), (True, 0.0), (True, 0.02), (True, 0.05), (True, 0.1)):
        process = subprocess.Popen(
            [sys.executable, "-m", "autoflux", "ingest", str(data), "-w", str(ws), "-q"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        committed, deadline = commits(ws), time.monotonic() + 60
        while process.poll() is None and f'"pid": {process.pid},' not in holder(lock) and time.monotonic() < deadline:
            time.sleep(0.002)  # until it holds the lock: the ingest has begun
        while after_commit and process.poll() is None and commits(ws) == committed and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert_consistent(ws, before, clean)
        if process.returncode == 0:
            break
        kills += process.returncode == -signal.SIGKILL
    else:
        result = cli("ingest", str(data), cwd=ws)
        assert result.exit_code == 0, result.output
    assert kills >= 1, "no kill landed before the run ended on its own: the test tested nothing"
    assert without_log_version(snapshot(ws)) == without_log_version(clean)


def test_files_an_aborted_write_left_are_never_read_and_vacuum_deletes_them(tmp_path, cli):
    ws, data = make_workspace(tmp_path)
    table_dir = ws / "lake" / "raw" / "big"
    before = Workspace.open(ws).lake.open(RAW, "big").to_pyarrow_table()
    orphan = table_dir / "part-00000-aborted-c000.snappy.parquet"
    orphan.write_bytes(b"PAR1 half a file")
    assert Workspace.open(ws).lake.open(RAW, "big").to_pyarrow_table().equals(before)
    dry = cli("vacuum", "big", "--retention-hours", "0", "--dry-run", "--json", cwd=ws)
    assert dry.exit_code == 0, dry.output
    assert orphan.exists()
    result = cli("vacuum", "big", "--retention-hours", "0", cwd=ws)
    assert result.exit_code == 0, result.output
    assert not orphan.exists()
    assert Workspace.open(ws).lake.open(RAW, "big").to_pyarrow_table().equals(before)


# ------------------------------------------------------------------------------- concurrency


@pytest.fixture
def busy(tmp_path) -> tuple[Path, Path]:
    """A workspace and a file that takes a while to ingest (a second run starts while the first holds the lock)."""
    ws = autoflux.init(tmp_path / "ws")
    data = tmp_path / "data"
    data.mkdir()
    with (data / "big.csv").open("w") as handle:
        handle.write("id,name,value,day\n")
        handle.writelines(f"{i},name {i},{i * 0.5},2024-01-{i % 28 + 1:02d}\n" for i in range(300_000))
    return ws, data


def start_ingest(ws: Path, data: Path, *extra: str) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFLUX")} | ENV | {"COLUMNS": "240", "NO_COLOR": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "autoflux", "ingest", str(data), "-w", str(ws), *extra],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_at_once_one_loads_the_other_refuses_naming_the_holder(busy):
    ws, data = busy
    first, second = start_ingest(ws, data), start_ingest(ws, data)
    outputs = [(p, *p.communicate(timeout=120)) for p in (first, second)]
    codes = sorted(p.returncode for p, _, _ in outputs)
    assert codes == [0, 1], [o[1:] for o in outputs]
    winner = next(p for p, _, _ in outputs if p.returncode == 0)
    (_, _, refusal) = next(o for o in outputs if o[0].returncode == 1)
    assert f"the workspace is locked by process {winner.pid} on " in refusal
    assert "running `autoflux ingest`" in refusal and "--wait" in refusal and "Traceback" not in refusal
    lake = Workspace.open(ws).lake
    assert lake.open(RAW, "big").version() == 0 and lake.open(RAW, "big").count() == 300_000
    assert [e["outcome"] for e in read_log(lake).to_pylist()] == ["loaded"]


def test_a_run_that_waits_finds_nothing_left_to_do(busy):
    ws, data = busy
    first, second = start_ingest(ws, data, "--wait", "120"), start_ingest(ws, data, "--wait", "120")
    (out1, err1), (out2, err2) = first.communicate(timeout=180), second.communicate(timeout=180)
    assert (first.returncode, second.returncode) == (0, 0), (err1, err2)
    assert "nothing to do" in out1 + out2
    lake = Workspace.open(ws).lake
    assert lake.open(RAW, "big").version() == 0
    assert sorted(e["outcome"] for e in read_log(lake).to_pylist()) == ["loaded", "unchanged"]


def test_a_lock_left_by_a_dead_process_is_taken_over(workspace, tmp_path, cli_process):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = workspace / ".autoflux" / "lock"
    lock.parent.mkdir(exist_ok=True)
    lock.write_text(f'{{"pid": {dead.pid}, "host": "{os.uname().nodename}", "command": "ingest", "since": "2024-01-01T00:00:00+00:00"}}')
    data = write_data(tmp_path / "data", {"t.csv": "a\n1\n"})
    with lock.open("r+") as handle:  # the same file, held: the lock is the flock, not the file's presence
        fcntl.flock(handle, fcntl.LOCK_EX)
        refused = cli_process("ingest", str(data), cwd=workspace)
    assert refused.exit_code == 1 and "the workspace is locked" in refused.output, refused.output
    result = cli_process("ingest", str(data), cwd=workspace)
    assert result.exit_code == 0, result.output
    assert Workspace.open(workspace).lake.open(RAW, "t").count() == 1
