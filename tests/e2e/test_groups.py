"""A dataset in many files through the CLI: the plan, one raw table, one dbt source, the files in its history."""

from __future__ import annotations

import shutil

import yaml

from autoflux.lake import RAW
from autoflux.workspace import Workspace


def parts(data, count: int = 3) -> None:
    events = data / "events"
    events.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        (events / f"part-{i:05d}.csv").write_text(f"id,kind\n{i},a\n{i + 100},b\n", encoding="utf-8")


def test_dry_run_and_plan_print_the_mapping_and_write_nothing(workspace, cli, tmp_path, example_dir):
    data = tmp_path / "data"
    shutil.copytree(example_dir, data)
    parts(data)
    for args in (["ingest", "--dry-run"], ["plan"]):
        result = cli(*args, str(data), "-w", str(workspace), "--json")
        assert result.exit_code == 0, result.output
        planned = result.json_documents()[0]
        assert {(p["table"], p["file"], p["action"]) for p in planned} == {
            ("train", "train.csv", "load"),
            ("test", "test.csv", "load"),
            ("sample_submission", "sample_submission.csv", "load"),
            ("events", "events/part-00001.csv", "load"),
            ("events", "events/part-00002.csv", "load"),
            ("events", "events/part-00003.csv", "load"),
        }
    human = cli("plan", str(data), "-w", str(workspace))
    assert "raw.events" in human.stdout and "6 files → 4 tables: 6 load" in human.stdout
    assert Workspace.open(workspace).lake.tables(RAW) == []


def test_a_folder_of_parts_is_one_raw_table_one_dbt_source_and_its_history_names_the_files(workspace, cli, tmp_path, example_dir):
    data = tmp_path / "data"
    shutil.copytree(example_dir, data)
    parts(data)
    first = cli("run", str(data), "-w", str(workspace))
    assert first.exit_code == 0, first.output
    assert "3 files: 3 loaded" in first.stdout
    sources = yaml.safe_load((workspace / "dbt" / "models" / "sources.yml").read_text(encoding="utf-8"))
    names = [t["name"] for s in sources["sources"] for t in s["tables"]]
    assert sorted(names) == ["events", "sample_submission", "test", "train"]
    (data / "events" / "part-00002.csv").unlink()
    (data / "events" / "part-00004.csv").write_text("id,kind\n4,d\n", encoding="utf-8")
    second = cli("ingest", str(data), "-w", str(workspace))
    assert second.exit_code == 0, second.output
    assert "4 files: 1 loaded, 1 removed, 2 unchanged" in second.stdout
    listed = cli("tables", "-w", str(workspace), "--json")
    rows = {(r["schema"], r["table"]): r["rows"] for r in listed.json_documents()[0]}
    assert rows[("raw", "events")] == 5
    history = cli("tables", "-w", str(workspace), "--history", "events", "--json").json_documents()[0]
    assert [(v["files_added"], v["files_removed"]) for v in history] == [
        (["events/part-00001.csv", "events/part-00002.csv", "events/part-00003.csv"], []),
        (["events/part-00004.csv"], ["events/part-00002.csv"]),
    ]
    shown = cli("tables", "-w", str(workspace), "--history", "events")
    assert "+1: events/part-00004.csv; -1: events/part-00002.csv" in shown.stdout
