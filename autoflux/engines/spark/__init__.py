"""Spark: local, on a cluster, or through Spark Connect; a Hive metastore; Delta or Parquet tables.

- Where Spark runs: ``engine.master`` — ``local[*]``, a cluster master URL (``spark://host:7077``,
  ``yarn``, ``k8s://…``) or a Spark Connect server (``sc://host:15002``). ``engine.conf`` passes
  any other Spark setting through.
- Catalog: the Hive metastore, embedded Derby in the workspace or PostgreSQL
  (``engine.metastore``), whose schema is created whole on first use (see :mod:`.metastore`).
- Storage: raw tables are external tables at the lake's layout (``<lake>/raw/<table>``), Delta
  tables the embedded engine reads too (``format: delta``, the default) or Parquet version
  folders (``format: parquet``); the engine's raw-table store (:mod:`.store`) writes them with
  Spark's own readers (:mod:`.ingest`, :mod:`.writer`, :mod:`.group`). dbt's models are managed
  tables under ``engine.warehouse``.
- dbt runs through dbt-spark, the ``session`` method in this process, or ``thrift`` when
  ``engine.thrift_host`` names a Spark Thrift Server.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from autoflux.engine_settings import MetastoreSettings, SparkSettings
from autoflux.engines.base import Engine as BaseEngine
from autoflux.engines.base import Relation
from autoflux.engines.spark import session as sessions
from autoflux.engines.spark.ingest import quoted
from autoflux.engines.spark.store import SparkRawStore, catalog_frame, catalog_has, catalog_tables
from autoflux.lake import RAW

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import DataFrame, SparkSession

    from autoflux.workspace import Workspace

PASSWORD_ENV = "DBT_ENV_SECRET_AUTOFLUX_METASTORE_PASSWORD"
_SECRET_CONF = "spark.hadoop.javax.jdo.option.ConnectionPassword"
# engine.conf keys that choose the catalog and warehouse: a scratch session (reproduce) has its own
_CATALOG_CONF = (
    "spark.sql.warehouse.dir",
    "spark.hadoop.javax.jdo.",
    "spark.hadoop.hive.metastore.",
    "spark.hive.metastore.",
    "spark.hadoop.datanucleus.",
)


Settings = SparkSettings


class Engine(BaseEngine):
    """Spark with a Hive catalog; see the module docstring."""

    FRAME_FORMATS = ("spark",)
    PACKAGES = ("dbt-spark", "pyspark", "delta-spark")
    DBT_IN_PROCESS = True  # dbt-spark's session method finds this engine's session
    settings: Settings

    def __init__(self, settings: Settings, workspace: Workspace) -> None:
        super().__init__(settings, workspace)
        self._store: SparkRawStore = SparkRawStore(workspace, settings)  # the raw tables Spark's readers write (:mod:`.store`)

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (started on first use, shared by every engine of this process)."""
        return self._store.spark

    @property
    def remote(self) -> bool:
        return self._store.remote

    def publish_raw(self, tables: Iterable[str], *, rebuilt_views: Collection[str] = ()) -> None:
        """Register the lake's Delta tables (e.g. written by the embedded store) in Spark's catalog."""
        self._store.publish(tables)

    # ------------------------------------------------------------------------------- reproduce

    def scratch_settings(self, folder: Path) -> Settings:
        """Classic Spark with a catalog (Derby) and warehouse of its own under ``folder``, whatever the workspace's
        metastore; the process's session restarts with them, and with the workspace's settings when next used."""
        from autoflux.exceptions import ReproduceError

        if self.remote:
            raise ReproduceError(
                "Spark Connect gives no catalog of its own to rebuild models in, apart from the workspace's",
                hint="reproduce with a local master (AUTOFLUX__ENGINE__MASTER='local[*]'), or with AUTOFLUX__ENGINE__TYPE=duckdb",
            )
        folder.mkdir(parents=True, exist_ok=True)
        conf = {k: v for k, v in self.settings.conf.items() if not k.startswith(_CATALOG_CONF)}
        metastore = MetastoreSettings(path=str(folder / "metastore_db"))
        return self.settings.model_copy(
            update={"warehouse": str(folder / "warehouse"), "metastore": metastore, "thrift_host": None, "conf": conf}
        )

    def remove_scratch(self, settings: Settings) -> None:
        """Stop the scratch session (and its Derby catalog), so the workspace's starts again when next used."""
        sessions.stop_scratch(settings, self.workspace)

    # ----------------------------------------------------------------------------------- dbt

    def dbt_output(self) -> dict[str, Any]:
        threads = self.workspace.config.dbt.threads
        if self.settings.thrift_host:
            return {
                "type": "spark",
                "method": "thrift",
                "host": self.settings.thrift_host,
                "port": self.settings.thrift_port,
                "user": "autoflux",
                "schema": "default",
                "threads": threads,
                "connect_retries": 3,
                "connect_timeout": 10,
            }
        parameters = {} if self.remote else dict(sessions.spark_conf(self.settings, self.workspace))
        if _SECRET_CONF in parameters:
            parameters[_SECRET_CONF] = f"{{{{ env_var('{PASSWORD_ENV}', '') }}}}"
        output = {"type": "spark", "method": "session", "host": "localhost", "schema": "default", "threads": threads}
        if parameters:
            output["server_side_parameters"] = parameters
        return output

    def dbt_env(self) -> dict[str, str]:
        environment = {}
        if self.remote:
            environment["SPARK_REMOTE"] = self.settings.master
        if self.settings.metastore.password is not None:
            environment[PASSWORD_ENV] = self.settings.metastore.password.get_secret_value()
        if not self.settings.thrift_host:
            self.spark  # noqa: B018 - dbt's session method then finds this session, settings and all
        return environment

    def after_dbt(self) -> None:
        """Remove folders a failed model build left in the warehouse, which would fail the next run."""
        if self.remote or self.settings.thrift_host:
            return
        self._remove_orphans()

    def _remove_orphans(self) -> None:
        jvm = self.spark.sparkContext._jvm
        catalog = self.spark._jsparkSession.sessionState().catalog()
        for database in self.spark.catalog.listDatabases():
            if database.name == RAW:
                continue
            root = jvm.org.apache.hadoop.fs.Path(database.locationUri)
            fs = root.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())
            if not fs.exists(root):
                continue
            tables = {t.name.lower() for t in self.spark.catalog.listTables(database.name)}
            for status in fs.listStatus(root):
                name = status.getPath().getName()
                if status.isDirectory() and not name.startswith((".", "_")) and not name.endswith(".db") and name.lower() not in tables:
                    identifier = jvm.org.apache.spark.sql.catalyst.TableIdentifier(name, jvm.scala.Option.apply(database.name))
                    if not catalog.tableExists(identifier):
                        fs.delete(status.getPath(), True)

    # --------------------------------------------------------------------------- reading back

    def relations(self, schemas: Iterable[str]) -> list[Relation]:
        result = []
        for schema in schemas:
            for table in catalog_tables(self.spark, schema):
                kind = "view" if table.tableType == "VIEW" else "table"
                result.append(Relation(schema, table.name, self._count(schema, table.name), kind))
        return result

    def relation_exists(self, schema: str, name: str) -> bool:
        return catalog_has(self.spark, schema, name)

    def _count(self, schema: str, name: str) -> int | None:
        """Rows of a table or view; None for a view that cannot be read (its tables are gone)."""
        try:
            return self.spark.table(f"{quoted(schema)}.{quoted(name)}").count()
        except Exception:  # noqa: BLE001 - Spark raises its own analysis errors
            return None

    def read_arrow(self, schema: str, table: str) -> pa.Table:
        return self.frame(schema, table).toArrow()

    def frame(self, schema: str, table: str) -> DataFrame:
        """``schema.table`` as a Spark DataFrame."""
        return catalog_frame(self.spark, schema, table)

    def training_frames(self, schema: str, table: str, *, split_column: str, format: str) -> tuple[Any, Any]:
        frame = self.frame(schema, table)
        split = frame[quoted(split_column)]
        return frame.filter(split == "train").drop(split_column), frame.filter(split != "train").drop(split_column)

    def quote(self, name: str) -> str:
        return quoted(name)

    def query(self, sql: str) -> pa.Table:
        return self.spark.sql(sql).toArrow()

    SQL_TEXT = "string"
    SQL_NESTED_BINS = True

    def sql_sample(self, relation: str, fraction: float) -> str:
        return relation

    def sql_quantiles(self, expression: str, fractions: list[float]) -> str:
        return f"percentile_approx({expression}, array({', '.join(map(str, fractions))}))"

    def sql_row_hash(self, columns: list[str]) -> str | None:
        # xxhash64 skips nulls: hashing each column's null flag as well keeps (1, null) apart from (null, 1)
        return f"xxhash64({', '.join(f'{c}, isnull({c})' for c in columns)})"

    def sql_epoch_days(self, expression: str) -> str:
        return f"unix_micros(cast({expression} as timestamp)) / 86400000000.0"


def stop() -> None:
    """Stop the SparkSession the engine started in this process."""
    sessions.stop()


__all__ = ["Engine", "MetastoreSettings", "Settings", "stop"]
