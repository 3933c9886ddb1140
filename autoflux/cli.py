"""The command line: each command parses its options, calls the pipeline and prints through the console."""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from autoflux.console import Console
from autoflux.exceptions import AutoFluxError
from autoflux.pipeline import Pipeline, RunSummary, ingest_dict, transform_dict
from autoflux.version import __version__
from autoflux.workspace import Workspace

if TYPE_CHECKING:
    from autoflux.ingest import IngestReport
    from autoflux.transform.dbt import TransformReport

workspace_option = click.option(
    "--workspace", "-w", default=".", show_default=True, type=click.Path(file_okay=False), help="The workspace folder."
)

wait_option = click.option(
    "--wait", default=0.0, show_default=True, type=click.FloatRange(min=0), help="Seconds to wait for another run's lock."
)


def source_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """The arguments and options of the commands that ingest: SOURCES…, --workspace, --refresh, --force, --wait."""
    for decorator in reversed(
        [
            click.argument("sources", nargs=-1),
            workspace_option,
            click.option("--refresh", is_flag=True, help="Download sources again even when cached."),
            click.option("--force", is_flag=True, help="Reload files even when unchanged (run: rebuild the dbt models too)."),
            wait_option,
        ]
    ):
        function = decorator(function)
    return function


def command(function: Callable[..., int | None]) -> Callable[..., None]:
    """Give a command --quiet/--json and turn AutoFlux errors into a one-line message and exit 1."""

    @click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
    @click.option("--json", "json_output", is_flag=True, help="Print the result as JSON.")
    @functools.wraps(function)
    def wrapper(*args: Any, quiet: bool, json_output: bool, **kwargs: Any) -> None:
        console = Console(quiet=quiet, json_output=json_output)
        try:
            code = function(*args, console=console, **kwargs)
        except AutoFluxError as error:
            console.error(str(error))
            sys.exit(1)
        except KeyboardInterrupt:
            console.error("interrupted; committed tables are intact")
            sys.exit(130)
        sys.exit(code or 0)

    return wrapper


@click.group()
@click.version_option(__version__, prog_name="autoflux")
def cli() -> None:
    """AutoFlux: raw data files → Delta Lake raw tables → dbt → ML-ready training data."""


@cli.command()
@click.argument("path", type=click.Path(file_okay=False), default=".")
@command
def init(path: str, console: Console) -> None:
    """Create a workspace: autoflux.yml and a dbt project."""
    root = Pipeline.init(path)
    console.info(f"Created workspace {root}\n  next: cd {path} && autoflux run <folder or URL of data files>")
    console.data({"workspace": str(root)})


@cli.command()
@source_options
@click.option("--dry-run", is_flag=True, help="Print which file goes to which table and what would load; write nothing.")
@command
def ingest(sources: tuple[str, ...], workspace: str, refresh: bool, force: bool, wait: float, dry_run: bool, console: Console) -> int:
    """Ingest SOURCES (folders, files, URLs; default: sources in autoflux.yml) into raw Delta tables."""
    with _pipeline(workspace, console, wait) as pipeline:
        if dry_run:
            _print_plan(console, pipeline.plan(_absolute(sources), refresh=refresh, force=force))
            return 0
        report = pipeline.ingest(_absolute(sources), refresh=refresh, force=force)
    _print_ingest(console, report)
    console.data(ingest_dict(report))
    return 1 if report.failed else 0


@cli.command()
@source_options
@command
def plan(sources: tuple[str, ...], workspace: str, refresh: bool, force: bool, wait: float, console: Console) -> None:
    """Print which file of SOURCES goes to which raw table and what an ingest would load (as ingest --dry-run)."""
    with _pipeline(workspace, console, wait) as pipeline:
        _print_plan(console, pipeline.plan(_absolute(sources), refresh=refresh, force=force))


def _print_plan(console: Console, planned: list[dict[str, Any]]) -> None:
    console.table(
        "Plan (nothing written)",
        ["table", "file", "action", "why"],
        [[f"raw.{p['table']}", p["file"], p["action"], p["reason"]] for p in planned],
    )
    counts = Counter(p["action"] for p in planned)
    tables = len({p["table"] for p in planned})
    console.info(f"{len(planned)} files → {tables} tables: " + ", ".join(f"{n} {action}" for action, n in counts.items()))
    console.data(planned)


@cli.command()
@workspace_option
@click.option("--select", "-s", help="dbt node selection, as for `dbt run --select`.")
@click.option("--no-test", is_flag=True, help="Skip `dbt test`.")
@wait_option
@command
def transform(workspace: str, select: str | None, no_test: bool, wait: float, console: Console) -> None:
    """Run the dbt project (run, then test) on the workspace's engine."""
    with _pipeline(workspace, console, wait) as pipeline:
        report = pipeline.transform(select=select, test=False if no_test else None)
    _print_transform(console, report)
    console.data(transform_dict(report))


@cli.command()
@source_options
@click.option("--no-report", is_flag=True, help="Do not write the HTML report (.autoflux/report/index.html).")
@command
def run(sources: tuple[str, ...], workspace: str, refresh: bool, force: bool, no_report: bool, wait: float, console: Console) -> int:
    """Ingest SOURCES, run dbt and prepare the training hand-off, with a summary."""
    with _pipeline(workspace, console, wait) as pipeline:
        summary = pipeline.run(_absolute(sources), refresh=refresh, force=force, report=not no_report)
    _print_summary(console, summary)
    console.data(summary.as_dict())
    return 1 if summary.ingest and summary.ingest.failed else 0


@cli.command()
@workspace_option
@click.option("--history", "history_of", metavar="TABLE", help="Show the versions of raw TABLE instead.")
@command
def tables(workspace: str, history_of: str | None, console: Console) -> None:
    """List raw, staging and mart tables with row counts and Delta versions (or one table's history)."""
    with _pipeline(workspace, console) as pipeline:
        versions = pipeline.history(history_of) if history_of else []
        rows = [] if history_of else pipeline.tables()
    if history_of:
        shown = [
            [
                v["version"],
                v["operation"],
                v["mode"],
                v["load_id"],
                v["source_file"],
                v["rows_added"],
                v["rows_updated"],
                "; ".join(v["schema_changes"]),
                _file_changes(v),
            ]
            for v in versions
        ]
        columns = ["version", "operation", "mode", "load", "file", "rows added", "rows updated", "schema", "files"]
        console.table(f"History of raw.{history_of}", columns, shown)
        console.data(versions)
        return
    console.table("Tables", ["schema", "table", "rows", "version", "format"], [list(r.values()) for r in rows])
    console.data(rows)


@cli.command()
@click.argument("tables", nargs=-1)
@workspace_option
@wait_option
@command
def optimize(tables: tuple[str, ...], workspace: str, wait: float, console: Console) -> None:
    """Compact small files of raw TABLES (default: every lake table) into larger ones."""
    with _pipeline(workspace, console, wait) as pipeline:
        results = pipeline.optimize(list(tables) or None)
    console.table("Optimize", ["table", "files_added", "files_removed"], [list(r.values()) for r in results])
    console.data(results)


@cli.command()
@click.argument("tables", nargs=-1)
@workspace_option
@click.option("--retention-hours", default=168, show_default=True, type=click.IntRange(min=0), help="Keep files younger than this.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
@wait_option
@command
def vacuum(tables: tuple[str, ...], workspace: str, retention_hours: int, dry_run: bool, wait: float, console: Console) -> None:
    """Delete files of raw TABLES (default: every lake table) that no version within the retention uses."""
    with _pipeline(workspace, console, wait) as pipeline:
        results = pipeline.vacuum(list(tables) or None, retention_hours=retention_hours, dry_run=dry_run)
    console.table("Vacuum", ["table", "files", "dry_run"], [list(r.values()) for r in results])
    console.data(results)


@cli.command()
@click.argument("table")
@click.argument("path", type=click.Path(dir_okay=False))
@workspace_option
@command
def export(table: str, path: str, workspace: str, console: Console) -> None:
    """Write TABLE (schema.table; default schema: the ml schema) to PATH (.parquet or .csv)."""
    with _pipeline(workspace, console) as pipeline:
        result = pipeline.export(table, Path(path).resolve())
    console.info(f"Wrote {result['rows']:,} rows of {result['table']} to {result['path']} (manifest beside it)")
    console.data(result)


@cli.command()
@workspace_option
@click.option("--table", help="The mart to check (default: ml.table).")
@command
def check(workspace: str, table: str | None, console: Console) -> int:
    """Train/test checks of the training mart, run by the engine: schema, drift, leakage."""
    with _pipeline(workspace, console) as pipeline:
        result = pipeline.check(table)
    rows = [
        [
            name,
            e["kind"],
            _figure(e.get("psi")),
            _figure(e.get("unseen")),
            f"{e.get('leak_metric', '')} {_figure(e.get('leak_score'))}".strip(),
            "yes" if e.get("id_like") else "",
        ]
        for name, e in result["features"].items()
    ]
    console.table(
        f"Checks of {result['table']} (target {result['target']!r}, id {result['id']!r})",
        ["feature", "kind", "psi", "unseen", "target proxy", "id-like"],
        rows,
    )
    if result["copied_rows"] is not None:
        console.info(f"Test rows with the features of a train row: {result['copied_rows']:,} of {result['rows']['test']:,}")
    _print_flags(console, result["flags"])
    console.data(result)
    return 0


@cli.command()
@click.argument("manifest", type=click.Path(dir_okay=False))
@workspace_option
@click.option("--out", type=click.Path(file_okay=False), help="Write train.parquet, test.parquet and manifest.json here.")
@command
def reproduce(manifest: str, workspace: str, out: str | None, console: Console) -> None:
    """Rebuild the frames MANIFEST records (raw versions, models) in scratch space; their hashes must match."""
    with _pipeline(workspace, console) as pipeline:
        result = pipeline.reproduce(Path(manifest).resolve(), out=Path(out).resolve() if out else None)
    console.info(
        f"Reproduced {result['relation']}: {result['train_rows']:,} train rows, {result['test_rows']:,} test rows, "
        "content hashes as recorded" + (f"; written to {result['out']}" if result["out"] else "")
    )
    console.data(result)


@cli.command()
@workspace_option
@click.option("--out", type=click.Path(dir_okay=False), help="Where to write the HTML file (default: .autoflux/report/index.html).")
@click.option("--open", "open_browser", is_flag=True, help="Open the report in a web browser.")
@command
def report(workspace: str, out: str | None, open_browser: bool, console: Console) -> None:
    """Write the run report: one self-contained HTML file (run, lineage, profiles, history, checks)."""
    with _pipeline(workspace, console) as pipeline:
        result = pipeline.report(Path(out).resolve() if out else None)
    console.info(f"Report: {result.path} ({result.bytes / 1e6:.1f} MB, {result.seconds:.1f}s)")
    if result.missing:
        console.warn(f"the report lacks {', '.join(result.missing)} (it says why)")
    console.data(result.as_dict())
    if open_browser:
        import webbrowser

        webbrowser.open(result.path.as_uri())


def _file_changes(version: dict[str, Any], shown: int = 3) -> str:
    """A grouped table's version: the files it added (+), replaced (~) and removed (-), the first few by name."""
    parts = []
    for sign, key in (("+", "files_added"), ("~", "files_replaced"), ("-", "files_removed")):
        names = version.get(key) or []
        if names:
            more = f" … and {len(names) - shown} more" if len(names) > shown else ""
            parts.append(f"{sign}{len(names)}: {', '.join(names[:shown])}{more}")
    return "; ".join(parts)


def _figure(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _print_flags(console: Console, flags: list[dict[str, Any]]) -> None:
    if not flags:
        console.info("Checks: no flags")
    for flag in flags:
        console.info(f"  {flag['kind']}: {flag['message']}")


def _pipeline(workspace: str, console: Console, wait: float = 0.0) -> Pipeline:
    return Pipeline(Workspace.open(workspace, require_config=True), console, wait=wait)


def _absolute(sources: tuple[str, ...]) -> list[str]:
    """Local paths on the command line are relative to the current folder, URLs stay as they are."""
    return [s if "://" in s or s.startswith("kaggle:") else str(Path(s).absolute()) for s in sources]


def _print_ingest(console: Console, report: IngestReport) -> None:
    by_table: dict[str, list[Any]] = {}
    for f in report.files:
        by_table.setdefault(f.table, []).append(f)
    rows = []
    for table, files in by_table.items():
        if len(files) == 1:
            f = files[0]
            rows.append([f"raw.{table}", f.outcome, f.rows, f.version, f"{f.seconds:.2f}"])
            continue
        outcomes = Counter(f.outcome for f in files)
        outcome = f"{len(files)} files: " + ", ".join(f"{n} {o}" for o, n in outcomes.items())
        loaded = [f.rows for f in files if f.rows is not None]
        seconds = max(f.seconds for f in files)
        rows.append([f"raw.{table}", outcome, sum(loaded) if loaded else None, max((f.version or 0) for f in files), f"{seconds:.2f}"])
    console.table("Ingest", ["table", "outcome", "rows", "version", "seconds"], rows)
    for result in report.files:
        for note in result.notes:
            console.info(
                f"  raw.{result.table}: {note}"
                if len(by_table[result.table]) == 1
                else f"  raw.{result.table} ← {result.source_file}: {note}"
            )
    for skipped in report.skipped:
        console.info(f"  skipped {skipped.path}: {skipped.reason}")
    for entry in report.recovered:
        console.info(f"  raw.{entry.table}: load {entry.load_id} of an interrupted run had committed (version {entry.version}); logged now")
    if report.files and all(f.outcome == "unchanged" for f in report.files):
        console.info("All files unchanged since the last load: nothing to do.")
    if not console.json_output:
        for failed in report.failed:
            console.error(failed.message or f"{failed.source_file}: failed")


def _print_transform(console: Console, report: TransformReport) -> None:
    if report.up_to_date:
        console.info("dbt: the project and the raw tables are unchanged since the last build: nothing to do")
        return
    console.info(f"dbt: {len(report.models)} models built, {len(report.tests)} tests passed in {report.seconds:.1f}s")


def _print_summary(console: Console, summary: RunSummary) -> None:
    if summary.ingest:
        _print_ingest(console, summary.ingest)
    if summary.transform:
        _print_transform(console, summary.transform)
    if summary.handoff:
        h = summary.handoff
        console.info(
            f"Training data: {h['table']} — {h['train_rows']:,} train rows, {h['test_rows']:,} test rows, "
            f"target {h['target']!r}, id {h['id']!r}"
        )
        _print_flags(console, h.get("flags", []))
    times = ", ".join(f"{stage} {seconds:.1f}s" for stage, seconds in summary.seconds.items())
    console.info(f"Time: {times}")
    if summary.report:
        console.info(f"Report: {summary.report['path']}")


def main() -> None:
    cli(prog_name="autoflux")
