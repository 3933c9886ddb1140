"""The Hive metastore behind Spark's catalog: embedded Derby, or PostgreSQL as in production.

Derby keeps the catalog in the workspace (``.autoflux/metastore_db``), one process at a time.
PostgreSQL is shared by every process and by the Thrift server. Its schema is created whole
before first use: DataNucleus creating tables lazily (``datanucleus.schema.autoCreateAll``)
deadlocks inside PostgreSQL on the first ``saveAsTable`` — a connection adds a foreign key to
``TBL_PRIVS`` while another sits idle in a transaction that wrote ``TABLE_PARAMS``. So the first
process to start takes an advisory lock and has DataNucleus create the tables of every class in
Hive's ``package.jdo`` in one go, the way Hive's schematool would.
"""

from __future__ import annotations

import glob
import os
import re
import socket
import zipfile
from functools import cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from autoflux.exceptions import EngineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from autoflux.engine_settings import MetastoreSettings
    from autoflux.workspace import Workspace

POSTGRES_DRIVER = "org.postgresql.Driver"
_LOCK_KEY = 0x4175746F466C7578 & 0x7FFFFFFFFFFFFFFF
_DATANUCLEUS = {
    "javax.jdo.PersistenceManagerFactoryClass": "org.datanucleus.api.jdo.JDOPersistenceManagerFactory",
    "datanucleus.schema.autoCreateAll": "true",
    "datanucleus.identifierFactory": "datanucleus1",
    "datanucleus.rdbms.useLegacyNativeValueStrategy": "true",
    "datanucleus.connectionPoolingType": "None",
    "datanucleus.plugin.pluginRegistryBundleCheck": "LOG",
    "datanucleus.schema.validateTables": "false",
    "datanucleus.rdbms.initializeColumnInfo": "NONE",
    "datanucleus.storeManagerType": "rdbms",
}


def spark_conf(settings: MetastoreSettings, workspace: Workspace) -> dict[str, str]:
    """Spark settings that point the Hive catalog at this metastore."""
    if settings.type == "derby":
        path = workspace.resolve(settings.path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={path};create=true",
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={path.parent}",
        }
    url, user, password = connection(settings)
    conf = {
        "spark.hadoop.javax.jdo.option.ConnectionURL": url,
        "spark.hadoop.javax.jdo.option.ConnectionDriverName": POSTGRES_DRIVER,
        "spark.hadoop.javax.jdo.option.ConnectionUserName": user,
        "spark.hadoop.hive.metastore.schema.verification": "false",
        "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
        "spark.driver.extraClassPath": settings.driver_jar,
    }
    if password:
        conf["spark.hadoop.javax.jdo.option.ConnectionPassword"] = password
    return conf


def shutdown_derby(settings: MetastoreSettings, workspace: Workspace) -> None:
    """Shut the embedded Derby database of ``settings`` down in the running JVM (nothing to do when it is not booted)."""
    from pyspark import SparkContext

    jvm = SparkContext._jvm
    if settings.type != "derby" or jvm is None:
        return
    path = workspace.resolve(settings.path).resolve()
    try:
        jvm.java.sql.DriverManager.getConnection(f"jdbc:derby:;databaseName={path};shutdown=true")
    except Exception:  # noqa: BLE001, S110 - Derby reports a shutdown (and a database not booted) as an SQLException
        pass


def connection(settings: MetastoreSettings) -> tuple[str, str, str]:
    """JDBC URL, user and password of a PostgreSQL metastore."""
    if not settings.url:
        raise EngineError(
            "engine.metastore.type is postgres but engine.metastore.url is not set",
            hint="set it to jdbc:postgresql://HOST:5432/DATABASE (or AUTOFLUX__ENGINE__METASTORE__URL)",
        )
    password = settings.password.get_secret_value() if settings.password else ""
    return settings.url, settings.user or "postgres", password


def address(url: str) -> tuple[str, int]:
    """Host and port of a ``jdbc:postgresql://host:port/db`` URL."""
    parts = urlsplit(url.removeprefix("jdbc:"))
    return parts.hostname or "localhost", parts.port or 5432


def check_reachable(settings: MetastoreSettings, timeout: float) -> None:
    """Raise EngineError naming the host and port when the metastore database does not answer."""
    url, _, _ = connection(settings)
    if not os.path.exists(settings.driver_jar):
        raise EngineError(
            f"the PostgreSQL JDBC driver is not at {settings.driver_jar}",
            hint="install it (Debian/Ubuntu: apt-get install libpostgresql-jdbc-java) or set engine.metastore.driver_jar",
        )
    host, port = address(url)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise EngineError(
            f"cannot reach the metastore database at {host}:{port}: {error.strerror or error}",
            hint="start PostgreSQL there, or correct engine.metastore.url in autoflux.yml",
        ) from None


def ensure_schema(session: SparkSession, settings: MetastoreSettings) -> bool:
    """Create the whole Hive metastore schema in PostgreSQL unless it exists; True when created."""
    url, user, password = connection(settings)
    jvm = session.sparkContext._jvm
    host, port = address(url)
    try:
        jdbc = jvm.java.sql.DriverManager.getConnection(url, user, password)
    except Exception as error:
        raise EngineError(
            f"the metastore database at {host}:{port} refused the connection: {_java_message(error)}",
            hint="check engine.metastore.url, user and password",
        ) from None
    try:
        jdbc.createStatement().execute(f"select pg_advisory_lock({_LOCK_KEY})")
        if _has_table(jdbc, "TBL_PRIVS") and _has_table(jdbc, "SEQUENCE_TABLE"):
            return False
        properties = jvm.java.util.Properties()
        for key, value in {
            **_DATANUCLEUS,
            "javax.jdo.option.ConnectionURL": url,
            "javax.jdo.option.ConnectionDriverName": POSTGRES_DRIVER,
            "javax.jdo.option.ConnectionUserName": user,
            "javax.jdo.option.ConnectionPassword": password,
        }.items():
            properties.setProperty(key, value)
        factory = jvm.javax.jdo.JDOHelper.getPersistenceManagerFactory(properties)
        try:
            classes = jvm.java.util.HashSet()
            for name in model_classes():
                classes.add(name)
            factory.getNucleusContext().getStoreManager().createSchemaForClasses(classes, jvm.java.util.Properties())
            _create_sequence_table(jdbc)
        except Exception as error:
            raise EngineError(f"cannot create the metastore schema at {host}:{port}: {_java_message(error)}") from None
        finally:
            factory.close()
        return True
    finally:
        jdbc.close()


@cache
def model_classes() -> list[str]:
    """The persistent classes of Hive's metastore, from ``package.jdo`` in the hive-metastore jar."""
    import pyspark

    jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "hive-metastore-*.jar"))
    if not jars:
        raise EngineError("pyspark has no hive-metastore jar", hint='install pyspark from PyPI (pip install "autoflux[spark]")')
    text = zipfile.ZipFile(jars[0]).read("package.jdo").decode()
    package = re.search(r'<package name="([^"]+)"', text)[1]
    return [f"{package}.{name}" for name in re.findall(r'<class name="([^"]+)"', text)]


def _create_sequence_table(jdbc) -> None:
    """DataNucleus's id table (the ``increment`` strategy Hive uses), otherwise made on first insert."""
    jdbc.createStatement().execute(
        'create table if not exists "SEQUENCE_TABLE" ("SEQUENCE_NAME" varchar(255) not null, "NEXT_VAL" bigint not null, '
        'constraint "SEQUENCE_TABLE_PK" primary key ("SEQUENCE_NAME"))'
    )


def _has_table(jdbc, name: str) -> bool:
    rows = jdbc.getMetaData().getTables(None, None, name, None)
    try:
        return bool(rows.next())
    finally:
        rows.close()


def _java_message(error: BaseException) -> str:
    text = str(getattr(error, "java_exception", None) or error)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("at ")]
    return lines[0][:300] if lines else type(error).__name__
