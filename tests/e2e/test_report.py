"""The HTML report, as a person gets it: after `autoflux run`, with `autoflux report`, in a real browser.

The browser test opens the bundled example's report in headless Chromium (Debian's package) over the
DevTools protocol: no console error, no request leaving the page, one lineage node per dbt model, a
section per table; it saves a screenshot under tests/artifacts/. Bad workspaces (nothing run yet, a
failed dbt build, an engine that does not answer) give a report saying what is missing, or one line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import Browser, find_chromium

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RAW_TABLES = ["sample_submission", "test", "train"]
MODELS = {"stg_train", "stg_test", "stg_sample_submission", "stg_full", "ml_training_set"}


@pytest.fixture(scope="module")
def ran(tmp_path_factory, cli_process, example_dir):
    root = tmp_path_factory.mktemp("report")
    assert cli_process("init", "ws", cwd=root).exit_code == 0
    run = cli_process("run", str(example_dir), cwd=root / "ws")
    assert run.exit_code == 0, run.output
    return root / "ws", run


def test_run_writes_the_report_and_prints_its_path(ran):
    ws, run = ran
    path = ws / ".autoflux" / "report" / "index.html"
    assert f"Report: {path}" in run.stdout
    html = path.read_text(encoding="utf-8")
    assert path.stat().st_size < 5_000_000
    # Self-contained: nothing is fetched from elsewhere.
    assert not re.search(r"""<(script|link|img|iframe)[^>]+(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert "Content-Security-Policy" in html
    for name in RAW_TABLES:
        assert f'data-table="raw.{name}"' in html
    assert 'data-table="marts.ml_training_set"' in html
    for model in MODELS:
        assert f'id="model-{model}"' in html


def test_report_command_writes_where_asked(ran, cli):
    ws, _ = ran
    out = ws.parent / "elsewhere" / "report.html"
    result = cli("report", "--out", str(out), "--json", cwd=ws)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["path"] == str(out) and out.stat().st_size == payload["bytes"]
    assert payload["missing"] == []
    html = out.read_text(encoding="utf-8")
    # The profile: original names, null shares, distinct counts; a column set in the example.
    assert "Annual Income ($)" in html
    assert 'data-column="annual_income"' in html


def test_report_in_chromium(ran, requirement):
    executable = find_chromium()
    requirement(executable, "chromium is not installed (make deps, or apt-get install chromium)")
    try:
        import websocket  # noqa: F401
    except ImportError:
        requirement(False, 'websocket-client is not installed (pip install -e ".[dev]")')
    ws, _ = ran
    path = ws / ".autoflux" / "report" / "index.html"
    manifest = json.loads((ws / "dbt" / "target" / "manifest.json").read_text())
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    browser = Browser(executable)
    try:
        browser.open(
            path.as_uri(),
            ready="[...document.querySelectorAll('[data-chart]')].every(e => e.getAttribute('data-rendered') === 'true')",
        )
        charts = browser.evaluate("document.querySelectorAll('[data-chart] svg').length")
        nodes = browser.evaluate("[...document.querySelectorAll('svg.lineage g.node[data-kind=model]')].map(n => n.dataset.name)")
        sections = browser.evaluate("[...document.querySelectorAll('section[data-table]')].map(s => s.dataset.table)")
        edges = browser.evaluate("document.querySelectorAll('svg.lineage path.edge').length")
        shot = browser.screenshot(ARTIFACTS / "report.png")
        errors, requests = browser.console_errors(), browser.requests()
    finally:
        browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:", "about:"))] == []
    assert sorted(nodes) == sorted(models) and models >= MODELS
    assert sorted(sections) == sorted([f"raw.{t}" for t in RAW_TABLES] + ["marts.ml_training_set"])
    assert edges >= len(models) + len(RAW_TABLES)
    assert charts == browser_charts(path)
    assert shot.stat().st_size > 10_000


def browser_charts(path: Path) -> int:
    return len(re.findall(r'data-chart="', path.read_text(encoding="utf-8")))


def test_no_run_yet_says_what_is_missing(tmp_path, cli):
    assert cli("init", "ws", cwd=tmp_path).exit_code == 0
    result = cli("report", cwd=tmp_path / "ws")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "ws" / ".autoflux" / "report" / "index.html").read_text(encoding="utf-8")
    assert "nothing has been loaded yet" in html
    assert "Traceback" not in result.output + html


def test_run_with_no_report_writes_none(tmp_path, cli, example_dir):
    assert cli("init", "ws", cwd=tmp_path).exit_code == 0
    result = cli("run", str(example_dir), "--no-report", cwd=tmp_path / "ws")
    assert result.exit_code == 0, result.output
    assert "Report:" not in result.output
    assert not (tmp_path / "ws" / ".autoflux" / "report" / "index.html").exists()


def test_failed_dbt_build_is_reported(tmp_path, cli, example_dir):
    assert cli("init", "ws", cwd=tmp_path).exit_code == 0
    ws = tmp_path / "ws"
    mart = ws / "dbt" / "models" / "marts" / "ml_training_set.sql"
    assert cli("ingest", str(example_dir), cwd=ws).exit_code == 0
    mart.write_text("select no_such_column from {{ ref('stg_full') }}\n", encoding="utf-8")
    run = cli("run", str(example_dir), cwd=ws)
    assert run.exit_code == 1 and len(run.error_lines()) == 1, run.output
    assert "no report written" not in run.output, run.output
    html = (ws / ".autoflux" / "report" / "index.html").read_text(encoding="utf-8")
    assert "the last dbt build failed: ml_training_set" in html
    assert 'data-table="raw.train"' in html  # what did load is still shown


def test_unreachable_engine_is_one_line(tmp_path, cli, configure):
    assert cli("init", "ws", cwd=tmp_path).exit_code == 0
    ws = tmp_path / "ws"
    configure(ws, {"engine": {"type": "postgres", "host": "127.0.0.1", "port": 9, "connect_timeout": 2}})
    result = cli("report", cwd=ws)
    assert "Traceback" not in result.output
    if result.exit_code:
        assert len(result.error_lines()) == 1, result.output
    else:
        assert (ws / ".autoflux" / "report" / "index.html").exists()


def test_quarantined_rows_and_history_are_shown(tmp_path, cli, configure):
    assert cli("init", "ws", cwd=tmp_path).exit_code == 0
    ws = tmp_path / "ws"
    configure(ws, {"ingest": {"bad_rows": {"max_count": 5}}})
    data = tmp_path / "data"
    data.mkdir()
    (data / "events.csv").write_text("id,kind\n1,a\n2,b,extra\n3,c\n", encoding="utf-8")
    assert cli("ingest", str(data), cwd=ws).exit_code == 0
    (data / "events.csv").write_text("id,kind,amount\n1,a,2.5\n2,b,1\n", encoding="utf-8")
    assert cli("ingest", str(data), cwd=ws).exit_code == 0
    result = cli("report", cwd=ws)
    assert result.exit_code == 0, result.output
    html = (ws / ".autoflux" / "report" / "index.html").read_text(encoding="utf-8")
    section = html[html.index('data-table="raw.events"') :]
    assert "1 rows set aside" in section and "2,b,extra" in section
    assert "+ amount double" in section  # the second load's schema change, in the history
    assert "dbt has not run yet" in html


def test_a_report_after_a_run_that_changed_nothing_profiles_no_raw_table_again(tmp_path, cli, monkeypatch):
    import os
    import pickle

    from autoflux.engines import create_engine
    from autoflux.report import Gatherer, profile
    from autoflux.workspace import Workspace

    assert cli("init", "ws", cwd=tmp_path).exit_code == 0
    ws = tmp_path / "ws"
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("id,x\n1,0.5\n2,1.5\n", encoding="utf-8")
    (data / "b.csv").write_text("id,y,at\n1,p,2024-03-01T10:00:00+01:00\n", encoding="utf-8")  # a zoned value
    assert cli("ingest", str(data), cwd=ws).exit_code == 0
    profiled: list[str] = []
    real = profile.profile_table
    monkeypatch.setattr(profile, "profile_table", lambda *a, **k: profiled.append(k["table"]) or real(*a, **k))

    def rows() -> dict[str, int]:
        engine = create_engine(Workspace.open(ws))
        try:
            return {t["name"]: t["profile"].rows for t in Gatherer(Workspace.open(ws), engine).gather()["tables"]}
        finally:
            engine.close()

    assert rows() == {"a": 2, "b": 1} and profiled == ["a", "b"]
    assert rows() == {"a": 2, "b": 1} and profiled == ["a", "b"]  # nothing changed: the kept profiles
    (data / "a.csv").write_text("id,x\n1,0.5\n2,1.5\n3,2.5\n", encoding="utf-8")
    assert cli("ingest", str(data), cwd=ws).exit_code == 0
    assert rows() == {"a": 3, "b": 1} and profiled == ["a", "b", "a"]  # a new version of raw.a only

    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(tmp_path / "ran"),)

    (ws / ".autoflux" / "report" / "raw_profiles.pickle").write_bytes(pickle.dumps({"a": Payload()}))
    assert rows() == {"a": 3, "b": 1} and profiled == ["a", "b", "a", "a", "b"]  # a file that is not profiles: ignored
    assert not (tmp_path / "ran").exists()


def test_a_run_profiles_the_raw_tables_it_loaded_beside_dbt_and_its_report_reads_them_back(workspace, cli, tmp_path, monkeypatch):
    import threading

    from autoflux.engines import create_engine
    from autoflux.ingest.schema import LINEAGE_COLUMNS
    from autoflux.report import profile
    from autoflux.workspace import Workspace

    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("id,x,at,kind,target\n1,0.5,2024-03-01T10:00:00+01:00,a,0\n2,,2024-03-02T10:00:00+01:00,b,1\n")
    (data / "test.csv").write_text("id,x,at,kind\n3,1.5,2024-03-03T10:00:00+01:00,a\n")
    threads: dict[str, list[str]] = {}
    real = profile.profile_table
    monkeypatch.setattr(
        profile,
        "profile_table",
        lambda *a, **k: threads.setdefault(k["table"], []).append(threading.current_thread().name) or real(*a, **k),
    )
    assert cli("run", str(data), cwd=workspace).exit_code == 0
    # each loaded raw table once, on the run's own thread beside dbt; the report reads them back; the mart after dbt
    assert threads == {"train": ["autoflux-raw-profiles"], "test": ["autoflux-raw-profiles"], "ml_training_set": ["MainThread"]}

    def facts(table: profile.TableProfile) -> list:
        return [table.rows] + [
            (c.name, c.type, c.count, c.nulls, c.distinct, c.min, c.max, c.mean, c.top, c.histogram) for c in table.columns
        ]

    kept = profile.KeptProfiles(workspace / ".autoflux" / "report" / "raw_profiles.pickle").kept
    engine = create_engine(Workspace.open(workspace))
    try:  # the same profiles as the engine's own raw views give (DuckDB's are read in a database of their own)
        for name in ("train", "test"):
            direct = real(engine, engine.query, f'"raw"."{name}"', schema="raw", table=name, skip=LINEAGE_COLUMNS)
            assert facts(kept[name][1]) == facts(direct)
    finally:
        engine.close()
    assert kept["train"][1].columns[2].min.utcoffset() is not None  # the zoned timestamp, as a zoned value

    (data / "test.csv").write_text("id,x,at,kind\n3,1.5,2024-03-03T10:00:00+01:00,a\n4,2.5,2024-03-04T10:00:00+01:00,c\n")
    assert cli("run", str(data), "--no-report", cwd=workspace).exit_code == 0
    assert threads["test"] == ["autoflux-raw-profiles"]  # no report, no profiles


def test_the_report_template_is_compiled_once_per_machine(ran, cli, tmp_path, monkeypatch):
    import jinja2

    ws, _ = ran
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    compiled: list[str] = []
    real = jinja2.Environment.compile
    monkeypatch.setattr(
        jinja2.Environment, "compile", lambda self, source, name=None, *a, **k: compiled.append(name) or real(self, source, name, *a, **k)
    )

    def report(name: str) -> str:
        result = cli("report", "--out", str(tmp_path / name), cwd=ws)
        assert result.exit_code == 0, result.output
        return (tmp_path / name).read_text(encoding="utf-8")

    first = report("first.html")
    parts = list(compiled)  # the page and what it includes
    assert "report.html.j2" in parts and list((tmp_path / "cache" / "autoflux" / "jinja").iterdir())
    second = report("second.html")
    assert compiled == parts  # read back compiled
    assert re.sub(r"\d", "", first) == re.sub(r"\d", "", second)  # the same page, but its times
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a-file"))
    (tmp_path / "a-file").write_text("not a folder")
    report("third.html")  # a cache that cannot be made only costs the compile
    assert compiled == parts + parts
