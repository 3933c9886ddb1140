"""Run the workspace's dbt project through dbt's Python API, on the workspace's engine."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from autoflux.exceptions import TransformError
from autoflux.files import copy_file, user_cache_dir, write_text
from autoflux.transform.build import forget_build, raw_snapshot, record_build
from autoflux.transform.dbt_process import STAMP_FILE, NodeResult, invoke_here, shared_process
from autoflux.transform.scaffold import LAKE_ENV, lake_location, profiles_yml

if TYPE_CHECKING:
    from autoflux.engines.base import Engine
    from autoflux.workspace import Workspace


@dataclass
class TransformReport:
    """The models and tests dbt ran, with their status; ``up_to_date`` when dbt had nothing to do."""

    nodes: list[NodeResult] = field(default_factory=list)
    seconds: float = 0.0
    up_to_date: bool = False

    @property
    def models(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.kind == "model"]

    @property
    def tests(self) -> list[NodeResult]:
        return [n for n in self.nodes if n.kind == "test"]


def run_dbt(
    workspace: Workspace,
    engine: Engine,
    *,
    test: bool | None = None,
    select: str | None = None,
    on_node: Callable[[NodeResult], None] | None = None,
) -> TransformReport:
    """``dbt build`` (each model, then its tests) or, with ``test=False``, ``dbt run``.

    A build that succeeds writes the build record (:mod:`autoflux.transform.build`). Raises TransformError naming the failed models and tests.
    """
    report = TransformReport()
    started = time.perf_counter()
    command = dbt_command(workspace, test)
    stamp_file = workspace.state_dir / STAMP_FILE
    stamp_file.unlink(missing_ok=True)  # until this build succeeds, nothing is known to be up to date
    forget_build(workspace)
    raw = raw_snapshot(engine)  # the workspace lock is held: this is what dbt reads
    report.nodes += _invoke(workspace, engine, [command, *(["--select", select] if select else [])], on_node)
    record_build(workspace, engine, raw, command=command, select=select)
    if select is None:
        stamp_file.write_text(json.dumps({"stamp": build_stamp(workspace, engine, command), "command": command}))
    report.seconds = time.perf_counter() - started
    return report


def dbt_command(workspace: Workspace, test: bool | None) -> str:
    """``build`` (models and their tests) or ``run``: ``test`` when given, else ``dbt.test`` in config."""
    return "build" if (workspace.config.dbt.test if test is None else test) else "run"


_NOT_PROJECT = {"target", "logs", "dbt_packages", ".user.yml"}


def build_stamp(workspace: Workspace, engine: Engine, command: str) -> str:
    """What a full dbt build depends on: the project's files, each raw table's last load, the engine's settings."""
    digest = hashlib.sha256(json.dumps([command, workspace.config.engine.model_dump(mode="json")], sort_keys=True).encode())
    project = workspace.dbt_dir
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project)
        if path.is_file() and not _NOT_PROJECT.intersection(relative.parts):
            digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    store = engine.raw_store()
    for table in store.tables():
        digest.update(json.dumps([table, *store.state(table)]).encode())
    return digest.hexdigest()


def built_as_now(workspace: Workspace, engine: Engine, *, test: bool | None) -> bool:
    """Whether the last full build that succeeded had the stamp a build would have now (:func:`build_stamp`)."""
    try:
        last = json.loads((workspace.state_dir / STAMP_FILE).read_text())["stamp"]
    except (OSError, ValueError, KeyError):
        return False
    return last == build_stamp(workspace, engine, dbt_command(workspace, test))


def _invoke(
    workspace: Workspace,
    engine: Engine,
    args: list[str],
    on_node: Callable[[NodeResult], None] | None,
    *,
    state: Path | None = None,
) -> list[NodeResult]:
    """Run dbt with ``args``; ``state``: a folder for dbt's target, logs and profiles.yml (``engine``'s) other than the workspace's own."""
    project = workspace.dbt_dir
    log_path = (state or workspace.state_dir) / "logs"
    log_path.mkdir(parents=True, exist_ok=True)
    if state:
        write_text(state / "profiles.yml", profiles_yml(workspace, engine))
    environment = {LAKE_ENV: lake_location(workspace), **engine.dbt_env()}
    argv = [
        *args,
        *(["--target-path", str(state / "target")] if state else []),
        "--project-dir",
        str(project),
        "--profiles-dir",
        str(state or project),
        "--log-path",
        str(log_path),
        "--quiet",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        "--no-version-check",
    ]

    parse_file, seed = project / "target" / PARSE_FILE, parse_seed(workspace)
    own_build = state is None  # not a rebuild in scratch space, whose profile differs
    if own_build and not parse_file.exists():
        _copy_quietly(seed, parse_file)
    engine.before_dbt()
    try:
        if engine.DBT_IN_PROCESS:
            with _environment(environment), _cwd(project):
                outcome = invoke_here(argv, on_node)
        else:
            outcome = shared_process().invoke(argv, environ={**os.environ, **environment}, cwd=project, on_node=on_node)
    finally:
        engine.after_dbt()
    if own_build and outcome.success and _mtime(seed) < _mtime(parse_file):
        _copy_quietly(parse_file, seed)
    nodes = outcome.nodes
    if outcome.exception is not None:
        raise TransformError(f"dbt {args[0]} could not start: {outcome.exception}", path=project, hint="check the dbt project") from None
    failed = [n for n in nodes if n.status in ("error", "fail", "runtime error")]
    if failed or not outcome.success:
        details = "; ".join(f"{n.kind} {n.name}: {_first_line(n.message)}" for n in failed) or "see the dbt log"
        raise TransformError(
            f"dbt {args[0]} failed: {details}",
            path=project,
            hint=f"fix the model or test, then run `autoflux transform` (log: {log_path / 'dbt.log'})",
        )
    return nodes


PARSE_FILE = "partial_parse.msgpack"


def parse_seed(workspace: Workspace) -> Path:
    """dbt's parse of the last project built on this machine with this dbt and engine, a start for a new workspace's.

    A workspace without ``target/partial_parse.msgpack`` (a first build) starts from it, and dbt's partial
    parsing re-reads only the files that differ (dbt checks its version, the profile, ``dbt_project.yml``
    and each file's checksum, and parses everything when they differ). Most of a first parse is dbt's own
    and the adapter's macros, the same in every workspace; the paths in the profile and ``sources.yml`` are
    relative to the project, so they are the same too.
    """
    return user_cache_dir() / "dbt-parse" / f"dbt-{metadata.version('dbt-core')}-{workspace.config.engine.type}.msgpack"


def _copy_quietly(source: Path, destination: Path) -> None:
    """Copy a parse between workspace and cache; a cache that cannot be read or written only costs a full parse."""
    with contextlib.suppress(OSError):
        copy_file(source, destination)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _first_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " ".join(lines[:3]) or "failed"


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
