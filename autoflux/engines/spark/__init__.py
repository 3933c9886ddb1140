"""Spark: local, on a cluster, or through Spark Connect; a Hive metastore; Delta or Parquet tables.

- Where Spark runs: ``engine.master`` — ``local[*]``, a cluster master URL (``spark://host:7077``,
  ``yarn``, ``k8s://…``) or a Spark Connect server (``sc://host:15002``). ``engine.conf`` passes
  any other Spark setting through.
- Catalog: the Hive metastore, embedded Derby in the workspace or PostgreSQL
  (``engine.metastore``), whose schema is created whole on first use (see :mod:`.metastore`).
- Storage: raw tables are external tables at the lake's layout (``<lake>/raw/<table>``); dbt's
  models are managed tables under ``engine.warehouse``. With ``format: delta`` (the default) raw
  tables are Delta tables the embedded engine reads too, each load one commit whose
  ``userMetadata`` holds the load id and fingerprint. With ``format: parquet`` each load is
  written to a new folder ``<lake>/raw/<table>/v<N>``, committed by a marker file in it that
  holds the load's metadata, and then swapped into the catalog with that metadata as table
  properties; a failed load leaves the table as it was, and a run killed between the marker and
  the catalog is completed by the next ingest (:meth:`Engine.recover_raw`).
- Ingest reads files with Spark's own readers (:mod:`.ingest`) and applies the write modes,
  schema policies and bad-row limits of :mod:`autoflux.ingest.policy` as the embedded engine does
  (:mod:`.writer`); with ``format: parquet`` the table properties hold the last load, which is
  what the quarantine and the recovery of unlogged loads go by. dbt runs through dbt-spark, the
  ``session`` method in this process, or ``thrift`` when ``engine.thrift_host`` names a Spark
  Thrift Server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from autoflux.engine_settings import MetastoreSettings, SparkSettings
from autoflux.engines.base import Engine as BaseEngine
from autoflux.engines.base import RawTable, Relation
from autoflux.engines.spark import session as sessions
from autoflux.engines.spark.ingest import arrow_field, quoted
from autoflux.exceptions import TableNotFoundError
from autoflux.ingest.writer import LOAD_ID_KEY
from autoflux.lake import RAW, Lake

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import DataFrame, SparkSession

    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.readers import Columns
    from autoflux.ingest.state import LogEntry
    from autoflux.ingest.writer import Lineage, Written

VERSION_KEY = "autoflux.version"
COMMIT_MARKER = "_autoflux_commit.json"
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

    SOURCES_READ_LAKE = False
    FRAME_FORMATS = ("spark",)
    PACKAGES = ("dbt-spark", "pyspark", "delta-spark")
    settings: Settings

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (started on first use, shared by every engine of this process)."""
        return sessions.get_session(self.settings, self.workspace)

    @property
    def remote(self) -> bool:
        return sessions.is_remote(self.settings.master)

    @property
    def delta(self) -> bool:
        return self.settings.format == "delta"

    # ------------------------------------------------------------------------------- raw tables

    def raw_state(self, table: str) -> tuple[str | None, int | None]:
        if self.delta:
            return super().raw_state(table)
        properties = self._properties(table)
        version = properties.get(VERSION_KEY)
        return properties.get("autoflux.fingerprint"), int(version) if version is not None else None

    def write_raw(
        self,
        data_file: DataFile,
        open_columns: Callable[..., Columns],
        *,
        hints: Mapping[str, pa.DataType],
        lineage: Lineage,
        commit_metadata: Mapping[str, str],
        on_batch: Callable[[int, int | None], None] | None = None,
    ) -> Written:
        """Read the file with Spark's readers (or AutoFlux's, for formats Spark lacks) into ``raw.<table>``.

        The table's write mode, schema policy and bad-row limits apply as on the embedded engine
        (:mod:`.writer`).
        """
        from autoflux.engines.spark import ingest, writer

        if not ingest.can_read(data_file) and self.delta and not self.remote:
            written = super().write_raw(
                data_file, open_columns, hints=hints, lineage=lineage, commit_metadata=commit_metadata, on_batch=on_batch
            )
            self.publish_raw([data_file.table])
            return written
        written = writer.load(self, data_file, open_columns, hints=hints, lineage=lineage, commit_metadata=commit_metadata)
        if on_batch:
            on_batch(written.rows, data_file.path.stat().st_size)
        return written

    def raw_files(self, table: str) -> dict[str, Any] | None:
        if self.delta:
            return super().raw_files(table)
        from autoflux.ingest.state import files_manifest

        properties = self._properties(table)
        return files_manifest(self.workspace.lake, RAW, table, properties) if properties else None

    def write_group(self, table: str, loads, **options: Any):  # noqa: ANN001, ANN201 - as the base engine's
        """A grouped table (files of one dataset): each shape of file read by one Spark reader, one new version (:mod:`.group`).

        With ``format: delta`` on a local or cluster master, a group holding files Spark has no
        reader for (Excel, custom readers, zstd) is written as on the embedded engine and then
        registered in Spark's catalog.
        """
        from autoflux.engines.spark import group, ingest

        if self.delta and not self.remote and not all(ingest.can_read(load.data_file) for load in loads):
            written = super().write_group(table, loads, **options)
            if written.version is not None:
                self.publish_raw([table])
            return written
        return group.load(self, table, loads, **options)

    def current_raw(self, table: str) -> DataFrame | None:
        """``raw.<table>`` as it is before a load (None when it does not exist yet)."""
        if self.delta:
            lake = self.workspace.lake
            return self.spark.read.format("delta").load(lake.table_uri(RAW, table)) if lake.exists(RAW, table) else None
        return self.spark.table(f"{RAW}.{quoted(table)}") if self._properties(table) else None

    def commit_raw(self, content: DataFrame, table: str, metadata: Mapping[str, str], *, mode: str, where: Path | str) -> int:
        """Write ``content`` as the table's next version (``mode``: Delta's ``overwrite`` or ``append``); returns the version.

        ``where`` names the file(s) in an error."""
        from autoflux.engines.spark import ingest

        if not self.delta:
            version, folder = self.next_version(table)
            try:
                content.write.mode("overwrite").parquet(folder)
                self.swap_raw(table, folder, version, metadata)
            except Exception as error:
                self.remove(folder)
                raise ingest.read_error(error, where) from None
            return version
        name = f"{RAW}.{quoted(table)}"
        self._create_raw_database()
        location = self.workspace.lake.table_uri(RAW, table)
        writer = content.write.format("delta").mode(mode).option("userMetadata", json.dumps(dict(metadata), sort_keys=True))
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        try:
            writer.option("path", location).saveAsTable(name)
        except Exception as error:
            if not self.workspace.lake.exists(RAW, table):
                self.remove(location)
            raise ingest.read_error(error, where) from None
        return self.workspace.lake.open(RAW, table).version()

    def next_version(self, table: str) -> tuple[int, str]:
        """``format: parquet``: the number and folder of the table's next version (written, then :meth:`swap_raw`)."""
        previous = self._properties(table).get(VERSION_KEY)
        version = int(previous) + 1 if previous is not None else 0
        return version, f"{self.workspace.lake.table_uri(RAW, table)}/v{version}"

    def swap_raw(self, table: str, folder: str, version: int, metadata: Mapping[str, str]) -> None:
        """``format: parquet``: commit the written ``folder`` (:meth:`next_version`) as the table, with the load's metadata.

        The commit point is the folder's marker (``_autoflux_commit.json``, the table properties
        to be); the catalog entry follows it. A process killed between the two leaves the catalog
        behind the lake, which the next run repairs (:meth:`recover_raw`). Other version folders are removed.
        """
        properties = {**metadata, VERSION_KEY: str(version)}
        fs, path = self.workspace.lake.filesystem(f"{folder}/{COMMIT_MARKER}")
        fs.pipe_file(path, json.dumps(properties, sort_keys=True).encode())
        self._register(table, folder, properties)
        self._remove_versions(table, keep=version)

    def _register(self, table: str, folder: str, properties: Mapping[str, str]) -> None:
        name = f"{RAW}.{quoted(table)}"
        self._create_raw_database()
        listed = ", ".join(f"{_literal(k)} = {_literal(v)}" for k, v in properties.items())
        self._sql(f"drop table if exists {name}")
        self._sql(f"create table {name} using parquet location {_literal(folder)} tblproperties ({listed})")

    def _committed_versions(self) -> dict[str, tuple[int, str, dict[str, str]]]:
        """``format: parquet``: each raw table's newest version folder with a commit marker: (version, folder, properties)."""
        fs, root = self.workspace.lake.filesystem(f"{self.workspace.lake.uri}/{RAW}")
        found: dict[str, tuple[int, str, dict[str, str]]] = {}
        for marker in fs.glob(f"{root}/*/v*/{COMMIT_MARKER}"):
            folder = marker.rsplit("/", 1)[0]
            table, name = folder.rsplit("/", 2)[-2:]
            try:
                version, properties = int(name[1:]), json.loads(fs.cat_file(marker))
            except ValueError:  # not a version folder, or a marker cut short: that version never committed
                continue
            if version > found.get(table, (-1,))[0]:
                found[table] = (version, f"{self.workspace.lake.table_uri(RAW, table)}/{name}", properties)
        return found

    def recover_raw(self) -> None:
        """``format: parquet``: point each table at its newest committed version where the catalog is behind."""
        if self.delta:
            return
        for table, (version, folder, properties) in self._committed_versions().items():
            if self._properties(table).get(VERSION_KEY) != str(version):
                self._register(table, folder, properties)
                self._remove_versions(table, keep=version)

    def _remove_versions(self, table: str, *, keep: int) -> None:
        """Remove ``raw.<table>``'s version folders other than ``v<keep>`` (older ones, or a killed load's)."""
        fs, root = self.workspace.lake.filesystem(self.workspace.lake.table_uri(RAW, table))
        for folder in fs.glob(f"{root}/v*"):
            name = folder.rstrip("/").rsplit("/", 1)[-1]
            if name[1:].isdigit() and int(name[1:]) != keep:
                fs.rm(folder, recursive=True)

    def remove(self, uri: str) -> None:
        """Delete the folder at ``uri`` in the lake, if it is there."""
        fs, path = self.workspace.lake.filesystem(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def committed_load(self, table: str, load_id: str) -> bool:
        if self.delta:
            return super().committed_load(table, load_id)
        return self._properties(table).get(LOAD_ID_KEY) == load_id

    def unlogged_loads(self) -> list[LogEntry]:
        """For ``format: parquet``, the last load of each table (its table properties), when the log lacks it."""
        if self.delta:
            return super().unlogged_loads()
        from pyspark.sql import functions as F

        from autoflux.ingest.state import (
            logged_loads,
            quarantined_loads,
            recovered_entry,
        )

        lake = self.workspace.lake
        logged, entries, quarantine = logged_loads(lake), [], None
        for table in self.raw_tables():
            properties = self._properties(table)
            load_id = properties.get(LOAD_ID_KEY)
            if not load_id or (table, load_id) in logged:
                continue
            quarantine = quarantined_loads(lake) if quarantine is None else quarantine
            rows = self.spark.table(f"{RAW}.{quoted(table)}").where(F.col("_load_id") == load_id).count()
            version = properties.get(VERSION_KEY)
            entries.append(
                recovered_entry(table, properties, version=int(version) if version else None, rows=rows, at=None, quarantine=quarantine)
            )
        return entries

    def _create_raw_database(self) -> None:
        if not getattr(self, "_raw_database", False):
            self._sql(f"create database if not exists {RAW}")
            self._raw_database = True

    def raw_tables(self) -> list[str]:
        if self.delta:
            return super().raw_tables()
        if not self.spark.catalog.databaseExists(RAW):
            return []
        return sorted(r["tableName"] for r in self._sql(f"show tables in {RAW}").collect() if not r["isTemporary"])

    def raw_table(self, table: str, *, count: bool = False) -> RawTable:
        if self.delta:
            return super().raw_table(table, count=count)
        properties = self._properties(table)
        if not properties:
            raise TableNotFoundError(f"no table {RAW}.{table} in Spark's catalog", hint="run `autoflux ingest` first")
        frame = self.spark.table(f"{RAW}.{quoted(table)}")
        schema = pa.schema([arrow_field(field) for field in frame.schema.fields])
        version = properties.get(VERSION_KEY)
        metadata = {k: v for k, v in properties.items() if k.startswith("autoflux.")}
        uri = f"{self.workspace.lake.table_uri(RAW, table)}/v{version}"
        return RawTable(table, schema, int(version) if version else None, frame.count() if count else None, metadata, uri, "parquet")

    def read_raw(self, table: str, *, version: int | None = None) -> pa.Table:
        if self.delta and version is None and self.workspace.lake.exists(RAW, table):
            return super().read_raw(table)
        return self.frame(RAW, table, version=version).toArrow()

    def publish_raw(self, tables: Iterable[str], *, rebuilt_views: Collection[str] = ()) -> None:
        """Register the lake's Delta tables (e.g. written by the embedded engine) in Spark's catalog."""
        if not self.delta:
            return
        wanted = list(tables)
        if not wanted:
            return
        self._create_raw_database()
        known = {r.name for r in self._tables(RAW)}
        for table in wanted:
            name, location = f"{RAW}.{quoted(table)}", self.workspace.lake.table_uri(RAW, table)
            if table in known:
                registered = self._location(name)
                if registered is None or _same_location(registered, location):
                    continue
                self._sql(f"drop table {name}")
            self._sql(f"create table if not exists {name} using delta location {_literal(location)}")

    def _location(self, name: str) -> str | None:
        for row in self._sql(f"describe table extended {name}").collect():
            if row[0] == "Location":
                return row[1]
        return None

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

    def copy_raw(self, table: str, version: int | None, target: Lake) -> None:
        """``format: parquet``: the version folder ``v<version>`` with its commit marker, copied into ``target``
        (registered by the scratch engine's :meth:`recover_raw`); only the current version is kept."""
        if self.delta:
            return super().copy_raw(table, version, target)
        from autoflux.exceptions import ReproduceError

        source = f"{self.workspace.lake.table_uri(RAW, table)}/v{version}"
        fs, path = self.workspace.lake.filesystem(source)
        if version is None or not fs.exists(f"{path}/{COMMIT_MARKER}"):
            current = self._committed_versions().get(table, (None,))[0]
            raise ReproduceError(
                f"raw.{table} version {version} is not kept (its current version is {current}): "
                "a format: parquet table keeps only its current version",
                hint="set engine.format: delta to keep older versions and reproduce them",
            )
        self.workspace.lake.copy_folder(source, target, f"{target.table_uri(RAW, table)}/v{version}")

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
            for table in self._tables(schema):
                kind = "view" if table.tableType == "VIEW" else "table"
                result.append(Relation(schema, table.name, self._count(schema, table.name), kind))
        return result

    def _count(self, schema: str, name: str) -> int | None:
        """Rows of a table or view; None for a view that cannot be read (its tables are gone)."""
        try:
            return self.spark.table(f"{quoted(schema)}.{quoted(name)}").count()
        except Exception:  # noqa: BLE001 - Spark raises its own analysis errors
            return None

    def read_arrow(self, schema: str, table: str) -> pa.Table:
        return self.frame(schema, table).toArrow()

    def frame(self, schema: str, table: str, *, version: int | None = None) -> DataFrame:
        """``schema.table`` as a Spark DataFrame; ``version`` reads a raw Delta table as of that version."""
        if version is not None:
            if not self.delta:
                raise TableNotFoundError(f"{schema}.{table} has no versions: engine.format is parquet", hint="set engine.format: delta")
            location = self.workspace.lake.table_uri(schema, table)
            return self.spark.read.format("delta").option("versionAsOf", version).load(location)
        if not any(t.name == table for t in self._tables(schema)):
            raise TableNotFoundError(f"no table {schema}.{table} in Spark's catalog", hint="run `autoflux transform` first")
        return self.spark.table(f"{quoted(schema)}.{quoted(table)}")

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

    # ------------------------------------------------------------------------------- helpers

    def _sql(self, statement: str) -> DataFrame:
        return self.spark.sql(statement)

    def _tables(self, schema: str) -> list[Any]:
        spark = self.spark
        if not spark.catalog.databaseExists(schema):
            return []
        return [t for t in spark.catalog.listTables(schema) if not t.isTemporary]

    def _properties(self, table: str) -> dict[str, str]:
        """The raw table's properties; empty when the table does not exist."""
        name = f"{RAW}.{quoted(table)}"
        if not self.spark.catalog.tableExists(name):
            return {}
        return {row["key"]: row["value"] for row in self._sql(f"show tblproperties {name}").collect()}


def _same_location(left: str, right: str) -> bool:
    def plain(uri: str) -> str:
        return uri.removeprefix("file://").removeprefix("file:").rstrip("/")

    return plain(left) == plain(right)


def stop() -> None:
    """Stop the SparkSession the engine started in this process."""
    sessions.stop()


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


__all__ = ["Engine", "MetastoreSettings", "Settings", "stop"]
