"""The HTML run report: one self-contained file showing what a run loaded, set aside and built.

:func:`write_report` gathers what the workspace recorded — the last run's summary, the load log,
each raw table's Delta history, the quarantine, dbt's ``manifest.json`` and ``run_results.json``,
the hand-off manifest and its checks — profiles the raw tables and the mart on the engine in SQL
(:mod:`.profile`), lays out the lineage (:mod:`.lineage`) and renders the Jinja template
``templates/report/report.html.j2`` with Vega-Lite charts (:mod:`.charts`) inline. Nothing it
shows needs the network. A part that cannot be had (no run yet, a failed dbt build, an engine
that does not answer) is reported in the page as missing, with the reason, and the rest is shown.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2

if TYPE_CHECKING:
    from autoflux.engines.base import Engine
    from autoflux.report.profile import KeptProfiles
    from autoflux.workspace import Workspace

REPORT_DIR = "report"
RUN_FILE = "run.json"
PROFILES_FILE = "raw_profiles.pickle"
QUARANTINE_ROWS = 20
DRIFT_CHARTS = 4


@dataclass
class ReportResult:
    path: Path
    bytes: int
    seconds: float
    missing: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "bytes": self.bytes, "seconds": round(self.seconds, 3), "missing": self.missing}


def default_path(workspace: Workspace) -> Path:
    return workspace.state_dir / REPORT_DIR / "index.html"


def save_run(workspace: Workspace, summary: dict[str, Any]) -> None:
    """Keep the last run's summary (stages' times, files' outcomes) for the report."""
    from autoflux.files import write_text

    summary = summary | {"finished_at": datetime.now(UTC).isoformat()}
    write_text(workspace.state_dir / REPORT_DIR / RUN_FILE, json.dumps(summary, default=str, indent=2))


def write_report(workspace: Workspace, engine: Engine, out: Path | None = None) -> ReportResult:
    """Write the report to ``out`` (default ``.autoflux/report/index.html``) and say where, how big and what was missing."""
    from autoflux.exceptions import AutoFluxError
    from autoflux.files import write_text
    from autoflux.report import charts

    started = time.perf_counter()
    context = Gatherer(workspace, engine).gather()
    bundle = charts.javascript_bundle()
    try:
        html = render(context, bundle)
    except Exception as error:  # a bug: still one line, not a traceback
        raise AutoFluxError(f"cannot render the report: {type(error).__name__}: {error}", hint="please report this as a bug") from error
    path = write_text(out or default_path(workspace), html)
    return ReportResult(path, path.stat().st_size, time.perf_counter() - started, [m["what"] for m in context["missing"]])


def keep_raw_profiles(workspace: Workspace, engine: Engine) -> None:
    """Profile each raw table whose kept profile is out of date, and keep it for the next report.

    ``autoflux run`` calls it on a thread of its own while dbt runs in its process, on the core dbt
    leaves idle while it parses. A table that cannot be profiled now is left to the report, which
    says why.
    """
    from autoflux.report.profile import raw_profile

    kept = _kept_profiles(workspace)
    with contextlib.suppress(Exception):  # on its own thread: nothing of it may reach the console
        for name in engine.raw_store().tables():
            with contextlib.suppress(Exception):
                raw_profile(engine, name, kept)
        kept.save()


def _kept_profiles(workspace: Workspace) -> KeptProfiles:
    from autoflux.report.profile import KeptProfiles

    return KeptProfiles(workspace.state_dir / REPORT_DIR / PROFILES_FILE)


def render(context: dict[str, Any], bundle: str) -> str:
    from markupsafe import Markup

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("autoflux", "templates/report"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        bytecode_cache=_CompiledTemplates(),
    )
    environment.filters["number"] = _number
    environment.filters["share"] = lambda v: "" if v is None else f"{v:.1%}"
    # The bundle is the libraries' own code: inlined as it is, "</script" cannot occur in it unescaped.
    environment.globals["vega_bundle"] = Markup(bundle.replace("</script", "<\\/script"))
    return environment.get_template("report.html.j2").render(**context)


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """The report's template compiled once per machine (Jinja keys it by the template's source): compiling it
    is a twentieth of a run that changed nothing. A cache that cannot be written only costs the compile."""

    def __init__(self) -> None:
        from autoflux.files import user_cache_dir

        super().__init__(str(user_cache_dir() / "jinja"))

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            super().load_bytecode(bucket)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        with contextlib.suppress(OSError):
            os.makedirs(self.directory, exist_ok=True)
            super().dump_bytecode(bucket)


def _number(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value == int(value) and abs(value) < 1e15:
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"
    return str(value)


class Gatherer:
    """Collects the report's context; each part that fails is recorded under ``missing``, never raised."""

    def __init__(self, workspace: Workspace, engine: Engine) -> None:
        self.workspace = workspace
        self.engine = engine
        self.missing: list[dict[str, str]] = []
        self.specs: dict[str, Any] = {}
        self.raw_profiles = _kept_profiles(workspace)
        self.unreachable: str | None = None  # the engine did not answer: its other parts are not tried

    def on_engine(self, what: str, function, default=None):
        """:meth:`attempt` for a part the engine computes; after the engine failed to answer, only noted."""
        from autoflux.exceptions import EngineError

        if self.unreachable:
            self.missing.append({"what": what, "why": self.unreachable})
            return default
        try:
            return function()
        except EngineError as error:
            if "reach" in str(error) or "connect" in str(error):
                self.unreachable = str(error).strip().splitlines()[0]
            return self.attempt(what, lambda error=error: _raise(error), default)
        except Exception as error:  # noqa: BLE001
            return self.attempt(what, lambda error=error: _raise(error), default)

    def attempt(self, what: str, function, default=None):
        try:
            return function()
        except Exception as error:  # noqa: BLE001 - any failure becomes a line of the report
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            self.missing.append({"what": what, "why": message})
            return default

    def chart(self, key: str, spec: dict[str, Any]) -> str:
        self.specs[key] = _plain(spec)
        return key

    def gather(self) -> dict[str, Any]:
        ws = self.workspace
        ml = ws.config.ml
        run = self.attempt("the last run's summary", self._run)
        raw_tables = self.attempt("the raw tables", self.engine.raw_store().tables, [])
        # the load log only when it is shown: the files of its last load, where no run's summary lists them
        log = [] if (run or {}).get("ingest") and raw_tables else self.attempt("the load log", self._log, [])
        if not raw_tables and not log:
            self.missing.append({"what": "data", "why": "nothing has been loaded yet: run `autoflux run SOURCE`"})
        dbt_manifest = self.attempt("dbt's manifest", lambda: _json(ws.dbt_dir / "target" / "manifest.json"))
        run_results = self.attempt("dbt's run results", lambda: _json(ws.dbt_dir / "target" / "run_results.json")) or {}
        results = {r["unique_id"]: r for r in run_results.get("results", [])}
        handoff = self.attempt("the hand-off manifest", lambda: _json(ws.state_dir / "handoff" / f"{ml.table}.manifest.json"))
        if dbt_manifest is None and raw_tables:
            self.missing.append({"what": "dbt models", "why": "dbt has not run yet: run `autoflux transform`"})
        dbt_nodes = self._dbt_nodes(dbt_manifest, results)
        if any(n["status"] in ("error", "fail") for n in dbt_nodes):
            failed = ", ".join(n["name"] for n in dbt_nodes if n["status"] in ("error", "fail"))
            self.missing.append({"what": "a successful dbt build", "why": f"the last dbt build failed: {failed}"})
        tables = [self._raw_section(name) for name in raw_tables]
        self.attempt("the raw tables' kept profiles", self.raw_profiles.save)
        mart = self._mart_section(handoff)
        files = self._files(run, log)
        frames = None
        if handoff:
            frames = {"relation": handoff.get("relation", f"{ml.schema_}.{ml.table}")} | {
                k: (handoff.get("frames") or {}).get(k, {}).get("rows") for k in ("train", "test")
            }
        graph = self.attempt(
            "the lineage graph",
            lambda: _lineage(files, raw_tables, dbt_manifest, results, frames),
        )
        checks = self._checks(handoff, mart)
        return {
            "title": f"AutoFlux report — {ws.root.name}",
            "workspace": str(ws.root),
            "engine": ws.config.engine.type,
            "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "run": run,
            "files": files,
            "totals": _totals(files),
            "stages": (run or {}).get("seconds", {}),
            "dbt_nodes": dbt_nodes,
            "graph": graph,
            "tables": tables,
            "mart": mart,
            "checks": checks,
            "handoff": handoff,
            "missing": self.missing,
            "specs": self.specs,
        }

    # ------------------------------------------------------------------ parts

    def _run(self) -> dict[str, Any] | None:
        path = self.workspace.state_dir / REPORT_DIR / RUN_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None

    def _log(self) -> list[dict[str, Any]]:
        from autoflux.ingest.state import read_log

        return read_log(self.workspace.lake).to_pylist()

    def _dbt_nodes(self, manifest: dict[str, Any] | None, results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        nodes = []
        for unique_id, result in results.items():
            node = ((manifest or {}).get("nodes") or {}).get(unique_id, {})
            nodes.append(
                {
                    "name": node.get("name") or unique_id.rsplit(".", 1)[-1],
                    "kind": node.get("resource_type") or unique_id.split(".", 1)[0],
                    "relation": f"{node.get('schema')}.{node.get('name')}" if node.get("resource_type") == "model" else "",
                    "status": result.get("status", ""),
                    "seconds": result.get("execution_time"),
                    "message": (result.get("message") or "") if result.get("status") not in ("success", "pass") else "",
                }
            )
        return nodes

    def _files(self, run: dict[str, Any] | None, log: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each file of the last run (its summary; else the last load of the log) with its outcome."""
        files = []
        ingest = (run or {}).get("ingest")
        if ingest:
            for f in ingest.get("files", []):
                files.append(
                    _file(
                        file=f.get("source_file", ""),
                        table=f.get("table", ""),
                        outcome=f.get("outcome", ""),
                        rows_read=f.get("rows_read"),
                        rows=f.get("rows"),
                        quarantined=f.get("quarantined"),
                        version=f.get("version"),
                        seconds=f.get("seconds"),
                        message=f.get("message") or "; ".join(f.get("notes", ())),
                    )
                )
            for s in ingest.get("skipped", []):
                files.append(_file(file=s["path"], outcome="skipped", message=s["reason"]))
            return files
        if log:
            last = max(log, key=lambda e: e["at"])["load_id"]
            for e in log:
                if e["load_id"] == last:
                    quarantined = e.get("quarantined")
                    files.append(
                        _file(
                            file=e["source_file"],
                            table=e["table"],
                            outcome=e["outcome"],
                            rows_read=None if e["rows"] is None else e["rows"] + (quarantined or 0),
                            rows=e["rows"],
                            quarantined=quarantined,
                            version=e["version"],
                            seconds=e["seconds"],
                            message=e["message"] or "",
                        )
                    )
        return files

    def _raw_section(self, name: str) -> dict[str, Any]:
        from autoflux.lake import RAW
        from autoflux.report.profile import raw_profile

        section: dict[str, Any] = {"schema": RAW, "name": name, "anchor": f"table-raw-{name}"}

        def profile():
            section["version"], found = raw_profile(self.engine, name, self.raw_profiles)
            return found

        section["profile"] = self.on_engine(f"the profile of raw.{name}", profile)
        section["history"] = self.attempt(f"the history of raw.{name}", lambda: _history(self.workspace, name), [])
        section["quarantine"] = self.attempt(
            f"the quarantine of raw.{name}", lambda: _quarantine(self.workspace, name), {"rows": 0, "first": []}
        )
        if section["profile"]:
            self._column_charts(section["profile"], f"raw-{name}")
        return section

    def _mart_section(self, handoff: dict[str, Any] | None) -> dict[str, Any] | None:
        from autoflux.report.profile import profile_table

        ml = self.workspace.config.ml
        if not self.on_engine("the engine's tables", lambda: any(r.name == ml.table for r in self.engine.relations([ml.schema_])), False):
            if not any(m["what"] == "the engine's tables" for m in self.missing):
                self.missing.append({"what": f"the mart {ml.schema_}.{ml.table}", "why": "it has not been built: run `autoflux transform`"})
            return None
        relation = f"{self.engine.quote(ml.schema_)}.{self.engine.quote(ml.table)}"
        profile = self.on_engine(
            f"the profile of {ml.schema_}.{ml.table}",
            lambda: profile_table(
                self.engine, self.engine.query, relation, schema=ml.schema_, table=ml.table, split_column=ml.split_column
            ),
        )
        if profile:
            self._column_charts(profile, "mart")
        return {
            "schema": ml.schema_,
            "name": ml.table,
            "anchor": f"model-{ml.table}",
            "profile": profile,
            "target": (handoff or {}).get("target"),
            "id": (handoff or {}).get("id"),
        }

    def _column_charts(self, profile, prefix: str) -> None:
        from autoflux.report import charts

        for i, column in enumerate(profile.columns):
            key = f"{prefix}-{i}"
            if column.histogram:
                column.chart = self.chart(key, charts.histogram(column.histogram))
            elif column.top:
                column.chart = self.chart(key, charts.top_values(column.top))
            else:
                column.chart = None

    def _checks(self, handoff: dict[str, Any] | None, mart: dict[str, Any] | None) -> dict[str, Any] | None:
        from autoflux.report import charts

        checks = (handoff or {}).get("checks")
        if not checks:
            if handoff is not None:
                self.missing.append({"what": "the train/test checks", "why": "the hand-off ran without checks (ml.checks.enabled: false)"})
            elif mart is not None:
                self.missing.append({"what": "the train/test checks", "why": "no hand-off yet: run `autoflux run` or load_training_data()"})
            return None
        features = sorted(({"name": k} | v for k, v in checks.get("features", {}).items()), key=lambda e: -(e.get("psi") or 0.0))
        profile = (mart or {}).get("profile")
        columns = {c.name: c for c in profile.columns} if profile else {}
        drifting = []
        for entry in features:
            column = columns.get(entry["name"])
            if column is None or len(column.by_split) < 2 or len(drifting) >= DRIFT_CHARTS:
                continue
            values = []
            for split, bins in column.by_split.items():
                total = sum(b["n"] for b in bins) or 1  # shares of the split's non-null values
                values += [{k: v for k, v in b.items() if k != "n"} | {"split": split, "share": b["n"] / total} for b in bins]
            drifting.append(
                {
                    "name": entry["name"],
                    "psi": entry.get("psi"),
                    "chart": self.chart(f"drift-{len(drifting)}", charts.overlaid(values, title=entry["name"])),
                }
            )
        return {
            "flags": checks.get("flags", []),
            "features": features,
            "rows": checks.get("rows", {}),
            "copied_rows": checks.get("copied_rows"),
            "adversarial": checks.get("adversarial"),
            "drifting": drifting,
            "stale": (handoff or {}).get("stale") or [],
        }


def _plain(value: Any) -> Any:
    """``value`` as JSON has it: decimals and dates as text, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return str(value)


def _raise(error: BaseException):
    raise error


def _lineage(files, raw_tables, manifest, results, frames):
    from autoflux.report import lineage

    loaded = [f for f in files if f.get("table")]
    return lineage.build(loaded, raw_tables, manifest, results, frames)


def _history(workspace: Workspace, name: str) -> list[dict[str, Any]]:
    from autoflux.maintenance import history

    versions = history(workspace.lake, name, limit=20)
    for version in versions:
        stamp = version.get("timestamp")
        if isinstance(stamp, int | float):  # Delta commit times are milliseconds since the epoch
            version["timestamp"] = datetime.fromtimestamp(stamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return versions


def _quarantine(workspace: Workspace, name: str) -> dict[str, Any]:
    import pyarrow.compute as pc

    from autoflux.ingest.quarantine import QUARANTINE
    from autoflux.lake import SYSTEM

    if not workspace.lake.exists(SYSTEM, QUARANTINE):
        return {"rows": 0, "first": []}
    dataset = workspace.lake.open(SYSTEM, QUARANTINE).to_pyarrow_dataset()
    mine = pc.field("table") == name
    return {"rows": dataset.count_rows(filter=mine), "first": dataset.head(QUARANTINE_ROWS, filter=mine).to_pylist()}


def _file(**fields: Any) -> dict[str, Any]:
    """A file's row of the run table, every key present."""
    keys = ("file", "table", "outcome", "rows_read", "rows", "quarantined", "version", "seconds", "message")
    return {k: fields.get(k) for k in keys} | {"table": fields.get("table") or "", "message": fields.get("message") or ""}


def _totals(files: list[dict[str, Any]]) -> dict[str, int]:
    totals = {"rows_read": 0, "rows": 0, "quarantined": 0, "loaded": 0, "unchanged": 0, "failed": 0, "skipped": 0}
    for f in files:
        totals[f["outcome"]] = totals.get(f["outcome"], 0) + 1
        for key in ("rows_read", "rows", "quarantined"):
            totals[key] += f.get(key) or 0
    return totals


def _json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
