"""The pipeline: acquire → ingest → transform → hand-off, over one workspace and its engine."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoflux.console import Console
from autoflux.engines import create_engine
from autoflux.engines.base import Engine
from autoflux.exceptions import AutoFluxError, IngestError
from autoflux.files import atomic_path
from autoflux.lake import RAW
from autoflux.lock import workspace_lock
from autoflux.transform.dbt_process import close_shared, prestart
from autoflux.transform.scaffold import init_workspace, sync_project, write_profiles
from autoflux.workspace import Workspace

if TYPE_CHECKING:
    from autoflux.handoff import Format, TrainingData
    from autoflux.ingest import IngestReport
    from autoflux.transform.dbt import NodeResult, TransformReport


@dataclass
class RunSummary:
    """What one `autoflux run` did, stage by stage."""

    acquired: list[dict[str, Any]] = field(default_factory=list)
    ingest: IngestReport | None = None
    transform: TransformReport | None = None
    handoff: dict[str, Any] | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    report: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"seconds": {k: round(v, 3) for k, v in self.seconds.items()}}
        if self.acquired:
            result["acquire"] = self.acquired
        if self.ingest:
            result["ingest"] = ingest_dict(self.ingest)
        if self.transform:
            result["transform"] = transform_dict(self.transform)
        if self.handoff:
            result["handoff"] = self.handoff
        if self.report:
            result["report"] = self.report
        return result


class Pipeline:
    """One workspace's pipeline; each method is one CLI command."""

    def __init__(self, workspace: Workspace, console: Console | None = None, *, wait: float = 0.0) -> None:
        self.workspace = workspace
        self.console = console or Console(quiet=True)
        self.wait = wait
        self._engine: Engine | None = None
        self._locked = False
        self.acquired: list[dict[str, Any]] = []

    @classmethod
    def open(cls, workspace: str | Path = ".", *, wait: float = 0.0) -> Pipeline:
        """The pipeline of the workspace at ``workspace`` (which must hold autoflux.yml)."""
        return cls(Workspace.open(workspace, require_config=True), wait=wait)

    @classmethod
    def init(cls, path: str | Path) -> Path:
        """Create a workspace at ``path``: ``autoflux.yml`` and a dbt project with a profile for its engine. Returns its root."""
        root = init_workspace(Path(path))
        with cls.open(root) as pipeline:
            write_profiles(pipeline.workspace, pipeline.engine)
        return root

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _writing(self, command: str) -> Iterator[None]:
        """Hold the workspace lock (re-entrant within this pipeline)."""
        if self._locked:
            yield
            return
        with workspace_lock(self.workspace.state_dir, command=command, wait=self.wait):
            self._locked = True
            try:
                yield
            finally:
                self._locked = False

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.workspace)
        return self._engine

    def close(self) -> None:
        """Release the engine's connections."""
        if self._engine is not None:
            self._engine.close()

    def acquire(self, sources: Sequence[str], *, refresh: bool = False) -> list[Path]:
        """Local folders/files holding each source's data (downloaded and unpacked into the cache)."""
        from autoflux.acquire import acquire, source_kind

        paths = []
        with self.console.progress(transfer=True) as progress:
            for source in sources:
                task = progress.add_task(f"fetch {source}", total=None) if progress else None

                def on_progress(label: str, done: int, total: int | None, task=task) -> None:
                    if progress is not None and task is not None:
                        progress.update(task, completed=done, total=total)

                acquired = acquire(source, cache_dir=self.workspace.cache_dir, refresh=refresh, on_progress=on_progress)
                if acquired.note and acquired.from_cache:
                    self.console.warn(f"{source}: {acquired.note}")
                elif acquired.note:
                    self.console.info(f"{source}: {acquired.note}")
                elif acquired.from_cache and acquired.path.is_relative_to(self.workspace.cache_dir):
                    self.console.info(f"{source}: up to date in the cache, nothing downloaded")
                elif refresh and acquired.path.is_relative_to(self.workspace.cache_dir):
                    self.console.info(f"{source}: downloaded again (--refresh), {acquired.downloaded_bytes:,} bytes")
                paths.append(acquired.path)
                if source_kind(source) != "local":
                    self.acquired.append(
                        {
                            "source": source,
                            "from_cache": acquired.from_cache,
                            "downloaded_bytes": acquired.downloaded_bytes,
                            "note": acquired.note,
                        }
                    )
        return paths

    def ingest(self, sources: Sequence[str] = (), *, refresh: bool = False, force: bool = False) -> IngestReport:
        """Ingest ``sources`` (or the config's) into raw tables, then update the dbt project."""
        with self._writing("ingest"):
            return self._ingest(sources, refresh=refresh, force=force)

    def _ingest(self, sources: Sequence[str], *, refresh: bool, force: bool) -> IngestReport:
        from autoflux.ingest import ingest_paths

        roots = self.acquire(self._sources(sources), refresh=refresh)
        with self.console.progress() as progress:
            tasks: dict[str, Any] = {}
            counts: dict[str, int] = {}

            def on_file(data_file) -> None:
                if progress is not None:
                    size = data_file.path.stat().st_size if data_file.path.exists() else None
                    tasks[data_file.table] = progress.add_task(f"raw.{data_file.table}", total=size, detail="")

            def on_progress(data_file, rows: int, done: int | None) -> None:
                if progress is not None:
                    counts[data_file.table] = counts.get(data_file.table, 0) + rows
                    progress.update(tasks[data_file.table], completed=done, detail=f"{counts[data_file.table]:,} rows")

            report = ingest_paths(
                self.workspace, roots, store=self.engine.raw_store(), force=force, on_file=on_file, on_progress=on_progress
            )
        self._publish_raw(self.engine.raw_store().tables())
        sync_project(self.workspace, self.engine)
        return report

    def plan(self, sources: Sequence[str] = (), *, refresh: bool = False, force: bool = False) -> list[dict[str, Any]]:
        """The file → table mapping of an ingest of ``sources`` (or the config's) and what it would load; writes no table."""
        from autoflux.ingest import plan_ingest

        roots = self.acquire(self._sources(sources), refresh=refresh)
        return [
            {"table": p.table, "file": p.source_file, "action": p.action, "reason": p.reason}
            for p in plan_ingest(self.workspace, roots, store=self.engine.raw_store(), force=force)
        ]

    def _sources(self, sources: Sequence[str]) -> list[str]:
        chosen = list(sources) or [self._configured(s) for s in self.workspace.config.sources]
        if not chosen:
            raise IngestError("no sources to ingest", hint="pass a folder or URL, or list sources in autoflux.yml")
        return chosen

    def _publish_raw(self, tables: list[str]) -> None:
        """Show the raw tables to the engine; views of the dbt project may be dropped (dbt rebuilds them)."""
        from autoflux.transform.build import dbt_views

        self.engine.publish_raw(tables, rebuilt_views=dbt_views(self.workspace.dbt_dir / "target"))

    def _configured(self, source: str) -> str:
        """A source from ``sources`` in autoflux.yml: local paths are relative to the workspace, URIs stay as they are."""
        from autoflux.acquire import source_kind

        return source if source_kind(source) != "local" or "://" in source else str(self.workspace.resolve(source))

    def transform(self, *, select: str | None = None, test: bool | None = None, if_changed: bool = False) -> TransformReport:
        """Run the dbt project (run, then test) on the workspace's engine.

        With ``if_changed``, dbt does not run when nothing it depends on changed since the last
        full build that succeeded (project files, raw tables' loads, engine settings) and the ML
        table is still there; the report then says ``up_to_date``.
        """
        with self._writing("transform"):
            return self._transform(select=select, test=test, if_changed=if_changed)

    def _transform(self, *, select: str | None, test: bool | None, if_changed: bool = False, synced: bool = False) -> TransformReport:
        """``synced``: this run's ingest has just shown the raw tables to the engine and synced the dbt project."""
        from autoflux.transform.dbt import TransformReport, built_as_now, run_dbt

        raw_tables = self.engine.raw_store().tables()
        if not raw_tables:
            raise AutoFluxError("there are no raw tables yet", hint="run `autoflux ingest SOURCE` first")
        if not synced:
            self._publish_raw(raw_tables)
            sync_project(self.workspace, self.engine)
        if if_changed and select is None and built_as_now(self.workspace, self.engine, test=test) and self._ml_table_exists():
            return TransformReport(up_to_date=True)
        with self.console.progress() as progress:
            task = progress.add_task("dbt", total=None, detail="") if progress else None

            def on_node(node: NodeResult) -> None:
                if progress is not None:
                    progress.update(task, detail=f"{node.kind} {node.name}: {node.status}")

            return run_dbt(self.workspace, self.engine, test=test, select=select, on_node=on_node)

    def _ml_table_exists(self) -> bool:
        ml = self.workspace.config.ml
        return self.engine.relation_exists(ml.schema_, ml.table)

    def run(self, sources: Sequence[str] = (), *, refresh: bool = False, force: bool = False, report: bool = True) -> RunSummary:
        """Ingest, transform and prepare the hand-off; stops at the first stage that fails. Then, with
        ``report``, the HTML report (of a failed run too)."""
        with self._writing("run"):
            return self._run(sources, refresh=refresh, force=force, report=report)

    def _run(self, sources: Sequence[str], *, refresh: bool, force: bool, report: bool) -> RunSummary:
        summary = RunSummary()
        if not self.engine.DBT_IN_PROCESS and (force or not self._built_as_now_or_unknown()):
            prestart(self.workspace.config.engine.type)  # dbt will run: its import overlaps ingest
        else:  # one the command line started (autoflux.__main__) would only take a core from this run
            close_shared()
        try:
            self._run_stages(summary, sources, refresh=refresh, force=force, report=report)
        except Exception:
            if report:
                self._run_report(summary)
            raise
        if report:
            self._run_report(summary)
        return summary

    def _built_as_now_or_unknown(self) -> bool:
        """Whether the last build is as a build would be now; True when that cannot be told before ingest (the stages report why)."""
        from autoflux.transform.dbt import built_as_now

        try:
            return built_as_now(self.workspace, self.engine, test=None)
        except Exception:  # noqa: BLE001 - only a guess whether to start dbt early
            return True

    def _run_report(self, summary: RunSummary) -> None:
        """Keep the run's summary and write the HTML report beside it; a report that fails is a warning."""
        from autoflux.report import save_run, write_report

        try:
            save_run(self.workspace, summary.as_dict())
            started = time.perf_counter()
            result = write_report(self.workspace, self.engine)
            summary.seconds["report"] = time.perf_counter() - started
            summary.report = result.as_dict()
        except Exception as error:  # noqa: BLE001 - the run's own outcome stands whatever the report does
            self.console.warn(f"no report written: {str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}")

    def report(self, out: Path | None = None):
        """Write the HTML report of the workspace (default ``.autoflux/report/index.html``)."""
        from autoflux.report import write_report

        return write_report(self.workspace, self.engine, out)

    def _run_stages(self, summary: RunSummary, sources: Sequence[str], *, refresh: bool, force: bool, report: bool) -> None:
        started = time.perf_counter()
        self.acquired = []
        summary.ingest = self.ingest(sources, refresh=refresh, force=force)
        summary.acquired = self.acquired
        summary.seconds["ingest"] = time.perf_counter() - started
        if summary.ingest.failed:
            return
        profiling = self._profile_raw_ahead() if report and summary.ingest.loaded else None
        try:
            self._build_and_hand_off(summary, force=force)
        finally:
            if profiling is not None:
                profiling.join()

    def _profile_raw_ahead(self) -> threading.Thread | None:
        """Profile the raw tables for the report on a thread while dbt runs in its own process (on the core
        it leaves idle while it parses); None when dbt runs in this one, sharing the engine's session."""
        if self.engine.DBT_IN_PROCESS:
            return None
        from autoflux.report import keep_raw_profiles

        thread = threading.Thread(target=keep_raw_profiles, args=(self.workspace, self.engine), name="autoflux-raw-profiles", daemon=True)
        thread.start()
        return thread

    def _build_and_hand_off(self, summary: RunSummary, *, force: bool) -> None:
        started = time.perf_counter()
        summary.transform = self._transform(select=None, test=None, if_changed=not force, synced=True)
        summary.seconds["transform"] = time.perf_counter() - started
        started = time.perf_counter()
        ml = self.workspace.config.ml
        reused = self._handoff_of_this_build() if summary.transform.up_to_date else None
        if reused is not None:
            summary.handoff = reused
        elif self._ml_table_exists():
            from autoflux.handoff import hand_off

            manifest, path = hand_off(self.workspace, self.engine)
            summary.handoff = {
                "table": f"{ml.schema_}.{ml.table}",
                "train_rows": manifest["rows"]["train"],
                "test_rows": manifest["rows"]["test"],
                "target": manifest["target"],
                "id": manifest["id"],
                "manifest": str(path),
                "flags": (manifest.get("checks") or {}).get("flags", []),
            }
        summary.seconds["handoff"] = time.perf_counter() - started

    def _handoff_of_this_build(self) -> dict[str, Any] | None:
        """The hand-off summary of the manifest a previous run wrote, when it describes the mart as built now.

        Only when dbt had nothing to do: the manifest must record the current build (same build record),
        no stale raw table, and the config unchanged since that build (checks settings, roles); else None,
        and the hand-off reads the mart again. Failed checks refuse as they did then.
        """
        import json

        from autoflux.handoff import _refuse_on_failed_checks
        from autoflux.transform.build import config_hash, read_build

        ml = self.workspace.config.ml
        path = self.workspace.state_dir / "handoff" / f"{ml.table}.manifest.json"
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        build = read_build(self.workspace)
        recorded = manifest.get("build") if isinstance(manifest, dict) else None
        if (
            not build
            or not recorded
            or manifest.get("stale") != []
            or manifest.get("relation") != f"{ml.schema_}.{ml.table}"
            or recorded.get("built_at") != build.get("built_at")
            or recorded.get("config_sha256") != config_hash(self.workspace)
            or not self._ml_table_exists()
        ):
            return None
        _refuse_on_failed_checks(self.workspace, manifest.get("checks"), path)
        return {
            "table": manifest["relation"],
            "train_rows": manifest["rows"]["train"],
            "test_rows": manifest["rows"]["test"],
            "target": manifest.get("target"),
            "id": manifest.get("id"),
            "manifest": str(path),
            "flags": (manifest.get("checks") or {}).get("flags", []),
        }

    def training_data(self, *, format: Format | None = None, table: str | None = None, manifest: str | Path | None = None) -> TrainingData:
        """Train/test frames of the training mart (or rebuilt as ``manifest`` records them); see
        :func:`autoflux.handoff.training_data`."""
        from autoflux.handoff import training_data

        return training_data(self.workspace, self.engine, format=format, table=table, manifest=manifest)

    def check(self, table: str | None = None) -> dict[str, Any]:
        """Train/test checks (schema, drift, leakage) of the training mart, run by the engine."""
        from autoflux.checks import run_checks
        from autoflux.handoff import ml_roles

        ml = self.workspace.config.ml
        name = table or ml.table
        columns = self.engine.query(f"select * from {self.engine.quote(ml.schema_)}.{self.engine.quote(name)} where 1 = 0").column_names
        target, id_column = ml_roles(self.workspace, self.engine.raw_store())
        target = target if target in columns else None
        id_column = id_column if id_column in columns else None
        features = [c for c in columns if c not in (target, id_column, ml.split_column)]
        report = run_checks(self.workspace, self.engine, table=name, target=target, id_column=id_column, features=features)
        return {"table": f"{ml.schema_}.{name}", "target": target, "id": id_column} | report.as_dict()

    def reproduce(self, manifest: Path, *, out: Path | None = None) -> dict[str, Any]:
        """Rebuild the frames ``manifest`` records in scratch space; their content hashes must match."""
        from autoflux.handoff import reproduce

        self.close()
        data = reproduce(self.workspace, self.engine, manifest, format="arrow", out=out)
        frames = data.manifest["frames"]
        return {
            "manifest": str(manifest),
            "relation": data.manifest["relation"],
            "train_rows": data.train.num_rows,
            "test_rows": data.test.num_rows,
            "content_hash": {k: frames[k]["content_hash"] for k in ("train", "test")},
            "out": str(out) if out else None,
        }

    def tables(self) -> list[dict[str, Any]]:
        """Raw Delta tables (rows, version) and the engine's staging and mart tables (rows)."""
        rows = []
        store = self.engine.raw_store()
        for name in store.tables():
            table = store.table(name, count=True)
            rows.append({"schema": RAW, "table": name, "rows": table.rows, "version": table.version, "format": table.format})
        for relation in self.engine.relations(["staging", "marts", self.workspace.config.ml.schema_]):
            rows.append(
                {"schema": relation.schema, "table": relation.name, "rows": relation.rows, "version": None, "format": relation.kind}
            )
        unique = {(r["schema"], r["table"]): r for r in rows}
        return list(unique.values())

    def optimize(self, tables: list[str] | None = None) -> list[dict[str, Any]]:
        """Compact the small files of raw (default: all lake) tables."""
        from autoflux.maintenance import optimize

        with self._writing("optimize"):
            return optimize(self.workspace.lake, tables)

    def vacuum(self, tables: list[str] | None = None, *, retention_hours: int, dry_run: bool = False) -> list[dict[str, Any]]:
        """Remove files older than the retention that no kept version refers to."""
        from autoflux.maintenance import vacuum

        with self._writing("vacuum"):
            return vacuum(self.workspace.lake, tables, retention_hours=retention_hours, dry_run=dry_run)

    def history(self, table: str) -> list[dict[str, Any]]:
        """Versions of ``raw.<table>`` with their loads and schema changes."""
        from autoflux.maintenance import history

        return history(self.workspace.lake, table.removeprefix(f"{RAW}."))

    def export(self, table: str, path: Path) -> dict[str, Any]:
        """Write ``schema.table`` (``raw.x`` from the lake, others from the engine) to Parquet or CSV."""
        from autoflux.handoff import build_manifest, write_manifest

        schema, _, name = table.rpartition(".")
        schema = schema or self.workspace.config.ml.schema_
        data = self.engine.raw_store().read(name) if schema == RAW else self.engine.read_arrow(schema, name)
        suffix = path.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise AutoFluxError(f"cannot export to {path.name}", hint="use a .parquet or .csv file name")
        with atomic_path(path) as temporary:
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                pq.write_table(data, temporary)
            else:
                import pyarrow.csv as pacsv

                pacsv.write_csv(data, temporary)
        manifest = build_manifest(self.workspace, self.engine, f"{schema}.{name}", {"rows": data})
        manifest_path = write_manifest(manifest | {"export": str(path)}, path.with_name(path.name + ".manifest.json"))
        return {"table": f"{schema}.{name}", "rows": data.num_rows, "path": str(path), "manifest": str(manifest_path)}


def ingest_dict(report: IngestReport) -> dict[str, Any]:
    return {
        "load_id": report.load_id,
        "files": [{k: v for k, v in vars(f).items() if v not in (None, ())} for f in report.files],
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in report.skipped],
        "recovered": [{"table": e.table, "load_id": e.load_id, "version": e.version} for e in report.recovered],
        "seconds": round(report.seconds, 3),
    }


def transform_dict(report: TransformReport) -> dict[str, Any]:
    return {
        "up_to_date": report.up_to_date,
        "models": [{"name": n.name, "status": n.status} for n in report.models],
        "tests": [{"name": n.name, "status": n.status} for n in report.tests],
        "seconds": round(report.seconds, 3),
    }
