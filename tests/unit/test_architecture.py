"""The package's shape: no import loops, dependencies one way, and loading a config imports no engine."""

from __future__ import annotations

import subprocess
import sys

import pytest


def import_loops(package: str = "autoflux") -> list[list[str]]:
    """Groups of modules that import each other, directly or not (imports in functions and
    under ``TYPE_CHECKING`` count: each is a dependency a reader must follow)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph(package, exclude_type_checking_imports=False)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    loops: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's strongly connected components
        index[module] = low[module] = len(index)
        stack.append(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while (member := stack.pop()) != module:
                group.append(member)
            if group:
                loops.append(sorted([module, *group]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return loops


def test_no_import_loops():
    assert import_loops() == []


def test_dependencies_point_one_way():
    """engines → ingest → config: no module of ``autoflux.ingest`` imports an engine (so ingest never creates
    one), and config imports neither (imports in functions and under ``TYPE_CHECKING`` count, direct or not)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("autoflux", exclude_type_checking_imports=False)
    illegal = graph.find_illegal_dependencies_for_layers(layers=("autoflux.engines", "autoflux.ingest", "autoflux.config"))
    assert sorted(f"{d.importer} → {d.imported}: {[r.middle for r in d.routes]}" for d in illegal) == []


def test_the_loop_finder_finds_a_loop(tmp_path, monkeypatch):
    package = tmp_path / "looped"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from looped import b\n")
    (package / "b.py").write_text("def f():\n    from looped import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_loops("looped") == [["looped.a", "looped.b"]]


def test_loading_a_config_imports_no_engine():
    code = (
        "import sys, autoflux.config as c; c.load_config(None);"
        "print(sorted(m for m in sys.modules if m.startswith('autoflux.engines') or m.split('.')[0] in ('pyspark', 'adbc_driver_postgresql', 'dbt')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_command_line_imports_a_stage_only_when_a_command_needs_it(tmp_path):
    """`autoflux init` and `--help` start fast: neither the ingest package (pyarrow's readers and writers) nor dbt's
    wrapper is imported until a command runs a stage."""
    code = (
        "import sys; from autoflux.pipeline import Pipeline; Pipeline.init(sys.argv[1]);"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'dbt' or m.startswith('autoflux.ingest')"
        " or m in ('autoflux.transform.dbt', 'autoflux.transform.build')))"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ws")], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
