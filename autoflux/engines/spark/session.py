"""One SparkSession per process, built from the engine settings, with fast and plain failures.

Before Spark is started the things that otherwise fail late or hang are checked: Java (17 or 21)
for classic Spark, a TCP connection to a cluster master or Spark Connect server, and to the
metastore database. A session is reused while the settings that shape it stay the same; other
settings stop it and start a new one (one SparkContext per JVM). Classic Spark's Python workers
run this process's interpreter unless ``PYSPARK_PYTHON`` says otherwise (executors on other hosts
need AutoFlux installed there for loads under ``schema: rescue``).
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from autoflux.exceptions import EngineError, MissingDependencyError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from autoflux.engine_settings import SparkSettings as Settings
    from autoflux.workspace import Workspace

JAVA_VERSIONS = (17, 21)
SCALA_VERSION = "2.13"
DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
CONNECT_PORT = 15002
LOG_FILE = "spark.log"
# The Delta release for each Spark line (docs.delta.io/releases and Delta's release notes): Delta
# 4.0.x is built on Spark 4.0.x; 4.1.0 on Spark 4.1.0 (its unsuffixed artifact defaults to it);
# 4.4.0 adds Spark 4.2, published as delta-spark_4.2_2.13.
_DELTA_RELEASES = {(4, 0): "4.0.1", (4, 1): "4.1.0", (4, 2): "4.4.0"}
_OFFLINE_DELTA = (
    "without Maven access: set engine.format: parquet, or use Spark Connect on Sail, which writes Delta "
    "with no jars (pip install pysail; start it, e.g. `sail spark server --port 50051`; engine.master: sc://127.0.0.1:50051)"
)
MASTER_PORTS = {"spark": 7077, "k8s": 443, "mesos": 5050}

_lock = threading.Lock()


@dataclass
class _Current:
    key: tuple
    session: SparkSession
    remote: bool


_current: _Current | None = None


def is_remote(master: str) -> bool:
    return master.startswith("sc://")


def is_local(master: str) -> bool:
    return master == "local" or master.startswith("local[")


def get_session(settings: Settings, workspace: Workspace) -> SparkSession:
    """The process's SparkSession for ``settings``, started (after the checks) when needed."""
    global _current
    from autoflux.engines.spark import metastore

    conf = spark_conf(settings, workspace)
    remote = is_remote(settings.master)
    key = _key(settings.master, conf)
    with _lock:
        if _current is not None and _current.key == key and _alive(_current):
            return _current.session
        stop()
        _require_pyspark()
        quiet_python(workspace)
        check_master(settings.master, settings.connect_timeout)
        if remote:
            session = _remote_session(settings.master, conf)
        else:
            check_java()
            if settings.metastore.type == "postgres":
                metastore.check_reachable(settings.metastore, settings.connect_timeout)
            session = _classic_session(conf, log_dir(workspace) / LOG_FILE, delta=settings.format == "delta")
            try:
                if settings.format == "delta":
                    _check_delta(session)
                if settings.metastore.type == "postgres":
                    metastore.ensure_schema(session, settings.metastore)
            except BaseException:
                session.stop()
                raise
        _current = _Current(key, session, remote)
        return session


def _key(master: str, conf: dict[str, str]) -> tuple:
    return master, tuple(sorted(conf.items()))


def stop_scratch(settings: Settings, workspace: Workspace) -> None:
    """Stop the process's session if ``settings`` shaped it (a scratch catalog about to be removed), and shut
    its embedded Derby catalog down so nothing in the JVM holds its files; the next session is the workspace's."""
    from autoflux.engines.spark import metastore

    with _lock:
        if _current is None or _current.key != _key(settings.master, spark_conf(settings, workspace)):
            return
        stop()
    metastore.shutdown_derby(settings.metastore, workspace)


def stop() -> None:
    """Stop the session AutoFlux started in this process, if any."""
    global _current
    if _current is None:
        return
    current, _current = _current, None
    try:
        current.session.stop()
    finally:
        if current.remote:
            os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)


def spark_conf(settings: Settings, workspace: Workspace) -> dict[str, str]:
    """The Spark settings the engine starts (or connects) with; ``engine.conf`` wins."""
    from autoflux.engines.spark import metastore

    if is_remote(settings.master):
        return {"spark.sql.session.timeZone": "UTC", **settings.conf}
    conf = {
        "spark.master": settings.master,
        "spark.app.name": settings.app_name,
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.warehouse.dir": warehouse_uri(settings, workspace),
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.sources.default": settings.format,
        "spark.sql.legacy.createHiveTableByDefault": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.ui.enabled": "false",
        **metastore.spark_conf(settings.metastore, workspace),
    }
    packages = list(settings.packages)
    if settings.format == "delta":
        conf["spark.sql.extensions"] = DELTA_EXTENSION
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
        if settings.delta_version:
            packages.append(f"io.delta:delta-spark_{SCALA_VERSION}:{settings.delta_version}")
        elif not _delta_supplied(settings) and (package := delta_package(_pyspark_version())):
            packages.append(package)
    if packages:
        conf["spark.jars.packages"] = ",".join(packages)
    log_config = _log4j_config(workspace)
    java_options = [conf.get("spark.driver.extraJavaOptions"), f"-Dlog4j2.configurationFile={log_config.as_uri()}"]
    conf["spark.driver.extraJavaOptions"] = " ".join(filter(None, java_options))  # Derby's home (its derby.log), then the log's
    for key, value in settings.conf.items():
        if key in ("spark.driver.extraClassPath", "spark.jars") and conf.get(key):
            value = f"{conf[key]}{':' if key.endswith('ClassPath') else ','}{value}"
        elif key == "spark.driver.extraJavaOptions":
            value = f"{conf[key]} {value}"
        conf[key] = value
    return conf


def delta_package(pyspark_version: str) -> str | None:
    """The Maven coordinate of Delta's Spark connector for a pyspark version (as delta-spark's pip package pins it).

    None for a Spark line no Delta release is known to support.
    """
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", pyspark_version)
    if not match:
        return None
    major, minor, patch = int(match[1]), int(match[2]), int(match[3] or 0)
    release = _DELTA_RELEASES.get((major, minor))
    if release is None:
        return None
    if (major, minor, patch) == (4, 0, 0):
        release = "4.0.0"  # 4.0.1 is built on Spark 4.0.1
    artifact = f"delta-spark_{SCALA_VERSION}" if (major, minor) < (4, 2) else f"delta-spark_{major}.{minor}_{SCALA_VERSION}"
    return f"io.delta:{artifact}:{release}"


def _pyspark_version() -> str:
    try:
        from pyspark.version import __version__
    except ImportError:
        return ""
    return __version__


def _delta_supplied(settings: Settings) -> bool:
    """Whether the settings or the Spark installation already bring Delta's connector (then nothing is fetched)."""
    given = [*settings.packages, *(v for k, v in settings.conf.items() if k in _DELTA_CARRIERS)]
    if any("delta-spark" in value or "delta-core" in value for value in given):
        return True
    homes = [os.environ.get("SPARK_HOME")]
    try:
        import pyspark

        homes.append(os.path.dirname(pyspark.__file__))
    except ImportError:
        pass
    return any(glob.glob(os.path.join(home, "jars", "delta-spark*.jar")) for home in homes if home)


_DELTA_CARRIERS = {"spark.jars", "spark.jars.packages", "spark.driver.extraClassPath", "spark.executor.extraClassPath"}


def log_dir(workspace: Workspace) -> Path:
    """The workspace's log folder (``.autoflux/logs``): Spark's, py4j's and the Python workers' output goes there."""
    folder = workspace.state_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _log4j_config(workspace: Workspace) -> Path:
    """A log4j2 configuration sending the JVM's log (WARN and above) to ``.autoflux/logs/spark.log``."""
    folder = log_dir(workspace)
    path = folder / "log4j2.properties"
    text = _LOG4J.replace("@LOG@", str(folder / LOG_FILE).replace("\\", "/"))
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


_LOG4J = """# Written by AutoFlux: Spark's log goes to the workspace's log folder, not to the terminal.
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = @LOG@
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
logger.thriftserver.name = org.apache.hive.service.server.HiveServer2
logger.thriftserver.level = off
logger.parquet.name = org.apache.parquet
logger.parquet.level = error
logger.hive.name = org.apache.hadoop.hive
logger.hive.level = error
logger.datanucleus.name = DataNucleus
logger.datanucleus.level = error
# The CSV header is skipped, not checked: AutoFlux names the columns by position.
logger.csvheader.name = org.apache.spark.sql.catalyst.csv.CSVHeaderChecker
logger.csvheader.level = error
"""


def quiet_python(workspace: Workspace) -> None:
    """py4j's and pyspark's Python loggers to the log file, and pyspark's pandas-version warning off.

    What AutoFlux prints stays the only output of a run on Spark, as on the embedded engine.
    """
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    path = log_dir(workspace) / LOG_FILE
    for name in ("py4j", "pyspark"):
        logger = logging.getLogger(name)
        logger.propagate = False
        if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
            for handler in [h for h in logger.handlers if getattr(h, "_autoflux", False)]:
                logger.removeHandler(handler)
                handler.close()
            handler = logging.FileHandler(path, encoding="utf-8", delay=True)
            handler._autoflux = True  # type: ignore[attr-defined]
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
            logger.addHandler(handler)


def warehouse_uri(settings: Settings, workspace: Workspace) -> str:
    """Where managed tables (dbt's models) live: a URI, or an absolute path in the workspace."""
    if "://" in settings.warehouse:
        return settings.warehouse
    return str(workspace.resolve(settings.warehouse).resolve())


def check_java() -> int:
    """The major version of the Java that Spark will use; raises EngineError when it is missing or unsupported."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    install = "install Java 17 or 21 (e.g. `apt-get install openjdk-17-jre-headless`) and put it on PATH or set JAVA_HOME"
    if not java or not os.path.exists(java):
        raise EngineError("the spark engine needs Java, and none was found", hint=install)
    try:
        output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EngineError(f"cannot run {java}: {error}", hint=install) from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    major = int(match[1]) if match else 0
    if major == 1 and match and match[2]:
        major = int(match[2])
    if major not in JAVA_VERSIONS:
        raise EngineError(f"Spark 4 runs on Java 17 or 21, and {java} is Java {major or 'of an unknown version'}", hint=install)
    return major


def check_master(master: str, timeout: float) -> None:
    """Connect to the master (or Spark Connect server) once, so a wrong URL fails in seconds."""
    address = master_address(master)
    if address is None:
        return
    host, port = address
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise EngineError(
            f"cannot reach the Spark {'Connect server' if is_remote(master) else 'master'} at {master} "
            f"({host}:{port}): {error.strerror or error}",
            hint="start it, or correct engine.master in autoflux.yml",
        ) from None


def master_address(master: str) -> tuple[str, int] | None:
    """The host and port to reach for ``master``; None for local, YARN and unknown schemes."""
    if is_local(master) or master == "yarn":
        return None
    url = master.removeprefix("k8s://")
    scheme = "k8s" if master.startswith("k8s://") else url.split("://", 1)[0]
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url.split(",")[0])
    if not parts.hostname:
        return None
    default = CONNECT_PORT if scheme == "sc" else MASTER_PORTS.get(scheme, 443 if parts.scheme == "https" else 80)
    return parts.hostname, parts.port or default


def _require_pyspark() -> None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise MissingDependencyError("the spark engine", extra="spark", package="pyspark") from None


def _classic_session(conf: dict[str, str], log: Path, *, delta: bool = False) -> SparkSession:
    """Start (or reuse) the JVM and the session; the JVM's own output goes to ``log``.

    pyspark starts the JVM with the terminal as its stdout and stderr, where log lines before
    log4j's configuration and the Python workers' tracebacks would land: the JVM is launched here
    with both sent to ``log`` instead.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    os.environ.pop("SPARK_CONNECT_MODE_ENABLED", None)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers (rescue) import autoflux as this process does
    if SparkContext._jvm is not None:
        _forget_settings(SparkContext._jvm, conf)
    else:
        _launch_jvm(conf, log, delta=delta)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.enableHiveSupport().getOrCreate()
    except Exception as error:
        raise EngineError(
            f"Spark did not start: {_first_line(error)}", hint="check engine.master and engine.conf in autoflux.yml"
        ) from None
    session.sparkContext.setLogLevel("WARN")
    return session


def _launch_jvm(conf: dict[str, str], log: Path, *, delta: bool) -> None:
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    spark_conf = SparkConf(loadDefaults=False).setAll(list(conf.items()))
    start = log.stat().st_size if log.exists() else 0
    with log.open("ab") as output:
        try:
            gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": output, "stderr": output})
        except Exception as error:
            with log.open("rb") as written:
                written.seek(start)
                tail = written.read().decode("utf-8", errors="replace")
            packages = conf.get("spark.jars.packages", "")
            if packages and re.search(r"unresolved dependency|Error downloading|UnknownHost|resolve dependencies", tail):
                what = "Delta Lake's Spark connector" if delta and "io.delta:" in packages else "the Maven packages"
                raise EngineError(
                    f"Spark cannot fetch {what} ({packages}) from Maven (see {log})",
                    hint=_OFFLINE_DELTA if delta else "check the network, or put the jars on spark.jars in engine.conf",
                ) from None
            raise EngineError(
                f"Spark did not start: {_first_line(error)} (see {log})", hint="check Java and engine.conf in autoflux.yml"
            ) from None
    SparkContext._ensure_initialized(gateway=gateway, conf=spark_conf)


_LAUNCH_SETTINGS = {
    "spark.driver.extraClassPath",
    "spark.driver.extraJavaOptions",
    "spark.driver.memory",
    "spark.jars",
    "spark.jars.packages",
    "spark.submit.deployMode",
    "spark.submit.pyFiles",
    "spark.app.submitTime",
}


def _forget_settings(jvm: Any, conf: dict[str, str]) -> None:
    """Drop the previous session's settings from the JVM's system properties.

    pyspark starts the JVM once per process with the first session's settings as ``spark.*``
    system properties, and every later SparkConf reads them: a Delta catalog or a PostgreSQL
    driver name would otherwise outlive the session that asked for it.
    """
    properties = jvm.java.lang.System.getProperties()
    for key in list(properties.stringPropertyNames()):
        if key.startswith("spark.") and key not in conf and key not in _LAUNCH_SETTINGS:
            jvm.java.lang.System.clearProperty(key)


def _remote_session(url: str, conf: dict[str, str]) -> SparkSession:
    from pyspark.sql.connect.session import SparkSession as RemoteSession

    builder = RemoteSession.builder.remote(url)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
        session.version  # noqa: B018 - a round trip: fails now when the server refuses this client
    except Exception as error:
        raise EngineError(
            f"Spark Connect at {url} refused the session: {_first_line(error)}", hint="check the server and the pyspark version"
        ) from None
    os.environ["SPARK_CONNECT_MODE_ENABLED"] = "1"
    return session


def _check_delta(session: SparkSession) -> None:
    jvm = session.sparkContext._jvm
    try:
        jvm.java.lang.Class.forName(DELTA_EXTENSION, False, jvm.java.lang.Thread.currentThread().getContextClassLoader())
    except Exception:
        raise EngineError(
            "engine.format is delta, but Delta Lake's Spark connector is not on Spark's classpath",
            hint=(
                "with Maven access, leave engine.delta_version unset (the release matching pyspark is fetched) or set it, "
                "in a process that has not started Spark yet, or put the delta-spark jars on spark.jars; " + _OFFLINE_DELTA
            ),
        ) from None


def _alive(current: _Current) -> bool:
    if current.remote:
        return not getattr(current.session, "is_stopped", False)
    context = current.session.sparkContext
    return context._jsc is not None and not context._jsc.sc().isStopped()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
