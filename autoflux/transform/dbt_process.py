"""dbt in a process of its own, which can start ahead: importing dbt-core takes 1.5–2 s, so
``autoflux run`` starts the process (:func:`prestart`) and the import overlaps ingest.

The process imports dbt, then serves invocations one at a time: a request is one JSON line on its stdin
(``argv``, ``environ``, ``cwd``); it answers on its stdout, one JSON line per finished node, then the
outcome. It stays for the next invocation (dbt is imported once per AutoFlux process), and exits as
soon as its stdin closes: when AutoFlux exits or dies, so does any dbt run.
:func:`invoke_here` runs dbt in the calling process instead, for an engine whose dbt adapter must share
its session (``Engine.DBT_IN_PROCESS``).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path

from autoflux.exceptions import TransformError


@dataclass(frozen=True)
class NodeResult:
    name: str
    kind: str
    status: str
    seconds: float
    message: str | None = None


@dataclass
class Outcome:
    """What a dbt invocation gave: whether it succeeded, why it could not start, the nodes it ran."""

    success: bool
    exception: str | None = None
    nodes: list[NodeResult] = field(default_factory=list)


OnNode = Callable[[NodeResult], None]


def invoke_here(argv: list[str], on_node: OnNode | None) -> Outcome:
    """Run dbt with ``argv`` in this process (environment and working folder as they are)."""
    from dbt.cli.main import dbtRunner

    def callback(event) -> None:
        if on_node and event.info.name == "NodeFinished":
            node = event.data.node_info
            on_node(NodeResult(node.node_name, node.resource_type, node.node_status, 0.0))

    result = dbtRunner(callbacks=[callback]).invoke(argv)
    exception = None if result.exception is None else str(result.exception)
    return Outcome(bool(result.success), exception, _nodes(result.result))


def _nodes(result) -> list[NodeResult]:
    results = getattr(result, "results", None) or []
    return [
        NodeResult(
            r.node.name,
            r.node.resource_type.value if hasattr(r.node.resource_type, "value") else str(r.node.resource_type),
            str(r.status.value if hasattr(r.status, "value") else r.status),
            float(r.execution_time or 0.0),
            r.message,
        )
        for r in results
    ]


class DbtProcess:
    """AutoFlux's dbt process (the module docstring): :meth:`invoke` runs one dbt command in it."""

    def __init__(self, adapter: str | None = None) -> None:
        argv = [sys.executable, "-P", "-m", __name__, *([adapter] if adapter else [])]
        try:  # a session of its own: Ctrl-C reaches AutoFlux, which then ends this process (invoke)
            self._process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True)
        except OSError as error:
            raise TransformError(
                f"cannot start dbt's process ({sys.executable or 'no Python executable'}): {error}",
                hint="AutoFlux runs dbt with the Python that runs it; run AutoFlux from a Python installation",
            ) from None
        self._lock = threading.Lock()
        self._owner = os.getpid()

    @property
    def alive(self) -> bool:
        """Running, and this process's own (a forked child starts one of its own)."""
        return self._owner == os.getpid() and self._process.poll() is None

    def invoke(self, argv: list[str], *, environ: dict[str, str], cwd: Path, on_node: OnNode | None) -> Outcome:
        """Run dbt with ``argv`` in the process, with ``environ`` as its whole environment and ``cwd`` its working folder."""
        with self._lock:
            try:
                self._process.stdin.write(json.dumps({"argv": argv, "environ": environ, "cwd": str(cwd)}) + "\n")
                self._process.stdin.flush()
                for line in self._process.stdout:
                    message = json.loads(line)
                    if "node" not in message:
                        return Outcome(message["success"], message["exception"], [NodeResult(*n) for n in message["nodes"]])
                    if on_node:
                        on_node(NodeResult(*message["node"]))
            except BrokenPipeError:
                pass
            except BaseException:
                self.close()  # interrupted, or a callback failed: the dbt run ends with it
                raise
            code = self.close()
        raise TransformError(
            f"dbt's process ended during `dbt {argv[0]}` (exit code {code})",
            hint="its error is printed above; run the command again, or `dbt` itself in the project folder",
        )

    def close(self) -> int | None:
        """End the process (it stops at once: its stdin closes); its exit code."""
        try:
            self._process.stdin.close()
        except OSError:
            pass
        try:
            return self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()
        finally:
            self._process.stdout.close()


STAMP_FILE = "transform.json"  # in the workspace's state folder: the last successful build's stamp (autoflux.transform.dbt)


def never_built(workspace: str | Path) -> bool:
    """Whether the workspace at ``workspace`` has no successful build (no stamp), so ``autoflux run`` will run dbt.

    Cheap enough to ask before AutoFlux imports its stages, to start dbt's process ahead only then.
    """
    from autoflux.workspace import STATE_DIR

    return not (Path(workspace) / STATE_DIR / STAMP_FILE).exists()


_shared: DbtProcess | None = None
_shared_lock = threading.Lock()


@atexit.register
def close_shared() -> None:
    """End the dbt process of this AutoFlux process, if one runs."""
    if _shared is not None and _shared.alive:
        _shared.close()


def prestart(adapter: str | None) -> None:
    """Start AutoFlux's dbt process now, importing dbt and ``adapter`` (``dbt.adapters.<adapter>``), unless it runs.

    A process that cannot start is not an error here: the dbt command that needs it says why.
    """
    with contextlib.suppress(TransformError):
        shared_process(adapter)


def shared_process(adapter: str | None = None) -> DbtProcess:
    """The dbt process of this AutoFlux process, started if none is alive."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.alive:
            _shared = DbtProcess(adapter)
        return _shared


# ---- in the dbt process -------------------------------------------------------------------------


def _serve(adapter: str | None) -> None:
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # what dbt prints goes to stderr, apart from the answers
    requests: queue.Queue[str] = queue.Queue()
    busy = threading.Event()
    threading.Thread(target=_read_requests, args=(requests, busy), daemon=True).start()
    try:  # import ahead, while the caller does other work
        import dbt.cli.main  # noqa: F401

        if adapter:
            importlib.import_module(f"dbt.adapters.{adapter}")
    except ImportError:
        pass  # the invocation then reports it

    def answer(message: dict) -> None:
        answers.write(json.dumps(message) + "\n")

    while True:
        request = json.loads(requests.get())
        os.environ.clear()
        os.environ.update(request["environ"])
        os.chdir(request["cwd"])
        try:
            outcome = invoke_here(request["argv"], lambda node: answer({"node": astuple(node)}))
        except Exception as error:  # noqa: BLE001 - reported to the caller as dbt not starting
            outcome = Outcome(False, f"{type(error).__name__}: {error}")
        finally:
            _release_connections()
        busy.clear()
        answer({"success": outcome.success, "exception": outcome.exception, "nodes": [astuple(n) for n in outcome.nodes]})


def _read_requests(requests: queue.Queue[str], busy: threading.Event) -> None:
    for line in sys.stdin:
        busy.set()  # until the answer is written
        requests.put(line)
    # stdin closed: AutoFlux ended, and so does this process, at once
    if busy.is_set():
        os._exit(1)  # during a dbt run: the run ends with AutoFlux
    atexit._run_exitfuncs()  # what must be released is (multiprocessing's semaphores); dbt's slow teardown is skipped
    os._exit(0)


def _release_connections() -> None:
    """Close what dbt keeps open in its process between invocations: dbt-duckdb keeps the database file open, and locked."""
    connections = sys.modules.get("dbt.adapters.duckdb.connections")
    if connections is not None:
        manager = connections.DuckDBConnectionManager
        if manager._ENV is not None:
            manager._ENV.close()
            manager._ENV = None
        manager.close_all_connections()


if __name__ == "__main__":
    _serve(sys.argv[1] if len(sys.argv) > 1 else None)
