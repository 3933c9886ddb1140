"""The Spark engine's raw-table store: Spark's readers write the raw tables, Delta or Parquet version folders.

With ``format: delta`` raw tables are Delta tables at the lake's layout (``<lake>/raw/<table>``),
registered in Spark's catalog, each load one commit whose ``userMetadata`` holds the load id and
fingerprint. With ``format: parquet`` each load is written to a new folder
``<lake>/raw/<table>/v<N>``, committed by a marker file in it that holds the load's metadata, and
then swapped into the catalog with that metadata as table properties; a failed load leaves the
table as it was, and a run killed between the marker and the catalog is completed by the next
ingest (:meth:`SparkRawStore.recover`). Loads apply :mod:`autoflux.ingest.policy` as the embedded
store does (:mod:`.writer`, :mod:`.group`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import pyarrow as pa

from autoflux.engines.spark import session as sessions
from autoflux.engines.spark.ingest import quoted
from autoflux.engines.spark.writer import arrow_schema
from autoflux.exceptions import ReproduceError, TableNotFoundError
from autoflux.ingest.state import files_manifest, logged_loads, quarantined_loads, recovered_entry
from autoflux.ingest.store import GroupLoad, GroupWritten, RawStore, RawTable
from autoflux.ingest.writer import LOAD_ID_KEY
from autoflux.lake import RAW, Lake

if TYPE_CHECKING:
    from pathlib import Path

    from pyspark.sql import DataFrame, SparkSession

    from autoflux.engine_settings import SparkSettings
    from autoflux.ingest.discover import DataFile
    from autoflux.ingest.readers import Columns
    from autoflux.ingest.rules import TableLoad
    from autoflux.ingest.state import LogEntry
    from autoflux.ingest.writer import Written
    from autoflux.workspace import Workspace

VERSION_KEY = "autoflux.version"
COMMIT_MARKER = "_autoflux_commit.json"


class SparkRawStore(RawStore):
    """The raw tables of the Spark engine of ``settings``; see the module docstring."""

    def __init__(self, workspace: Workspace, settings: SparkSettings) -> None:
        super().__init__(workspace)
        self.workspace = workspace
        self.spark_settings = settings
        self._raw_database = False

    @property
    def spark(self) -> SparkSession:
        """The SparkSession (started on first use, shared by every engine of this process)."""
        return sessions.get_session(self.spark_settings, self.workspace)

    @property
    def remote(self) -> bool:
        return sessions.is_remote(self.spark_settings.master)

    @property
    def delta(self) -> bool:
        return self.spark_settings.format == "delta"

    def state(self, table: str) -> tuple[str | None, int | None]:
        if self.delta:
            return super().state(table)
        properties = self.properties(table)
        version = properties.get(VERSION_KEY)
        return properties.get("autoflux.fingerprint"), int(version) if version is not None else None

    def write(self, data_file: DataFile, open_columns: Callable[..., Columns], load: TableLoad) -> Written:
        """Read the file with Spark's readers (or AutoFlux's, for formats Spark lacks) into ``raw.<table>``.

        The table's write mode, schema policy and bad-row limits apply as on the embedded store
        (:mod:`.writer`).
        """
        from autoflux.engines.spark import ingest, writer

        if not ingest.can_read(data_file) and self.delta and not self.remote:
            written = super().write(data_file, open_columns, load)
            self.publish([load.table])
            return written
        written = writer.load(self, data_file, open_columns, load)
        if load.on_batch:
            load.on_batch(written.rows, data_file.path.stat().st_size)
        return written

    def files(self, table: str) -> dict[str, Any] | None:
        if self.delta:
            return super().files(table)
        properties = self.properties(table)
        return files_manifest(self.lake, RAW, table, properties) if properties else None

    def write_group(self, load: TableLoad, loads: Sequence[GroupLoad], **options: Any) -> GroupWritten:
        """A grouped table (files of one dataset): each shape of file read by one Spark reader, one new version (:mod:`.group`).

        With ``format: delta`` on a local or cluster master, a group holding files Spark has no
        reader for (Excel, custom readers, zstd) is written as on the embedded store and then
        registered in Spark's catalog.
        """
        from autoflux.engines.spark import group, ingest

        if self.delta and not self.remote and not all(ingest.can_read(one.data_file) for one in loads):
            written = super().write_group(load, loads, **options)
            if written.version is not None:
                self.publish([load.table])
            return written
        return group.load(self, load, loads, **options)

    def current(self, table: str) -> DataFrame | None:
        """``raw.<table>`` as it is before a load (None when it does not exist yet)."""
        if self.delta:
            return self.spark.read.format("delta").load(self.lake.table_uri(RAW, table)) if self.lake.exists(RAW, table) else None
        return self.spark.table(f"{RAW}.{quoted(table)}") if self.properties(table) else None

    def commit(self, content: DataFrame, table: str, metadata: Mapping[str, str], *, mode: str, where: Path | str) -> int:
        """Write ``content`` as the table's next version (``mode``: Delta's ``overwrite`` or ``append``); returns the version.

        ``where`` names the file(s) in an error."""
        from autoflux.engines.spark import ingest

        if not self.delta:
            version, folder = self.next_version(table)
            try:
                content.write.mode("overwrite").parquet(folder)
                self.swap(table, folder, version, metadata)
            except Exception as error:
                self.remove(folder)
                raise ingest.read_error(error, where) from None
            return version
        name = f"{RAW}.{quoted(table)}"
        self._create_raw_database()
        location = self.lake.table_uri(RAW, table)
        writer = content.write.format("delta").mode(mode).option("userMetadata", json.dumps(dict(metadata), sort_keys=True))
        if mode == "overwrite":
            writer = writer.option("overwriteSchema", "true")
        try:
            writer.option("path", location).saveAsTable(name)
        except Exception as error:
            if not self.lake.exists(RAW, table):
                self.remove(location)
            raise ingest.read_error(error, where) from None
        return self.lake.open(RAW, table).version()

    def next_version(self, table: str) -> tuple[int, str]:
        """``format: parquet``: the number and folder of the table's next version (written, then :meth:`swap`)."""
        previous = self.properties(table).get(VERSION_KEY)
        version = int(previous) + 1 if previous is not None else 0
        return version, f"{self.lake.table_uri(RAW, table)}/v{version}"

    def swap(self, table: str, folder: str, version: int, metadata: Mapping[str, str]) -> None:
        """``format: parquet``: commit the written ``folder`` (:meth:`next_version`) as the table, with the load's metadata.

        The commit point is the folder's marker (``_autoflux_commit.json``, the table properties
        to be); the catalog entry follows it. A process killed between the two leaves the catalog
        behind the lake, which the next run repairs (:meth:`recover`). Other version folders are removed.
        """
        properties = {**metadata, VERSION_KEY: str(version)}
        fs, path = self.lake.filesystem(f"{folder}/{COMMIT_MARKER}")
        fs.pipe_file(path, json.dumps(properties, sort_keys=True).encode())
        self._register(table, folder, properties)
        self._remove_versions(table, keep=version)

    def _register(self, table: str, folder: str, properties: Mapping[str, str]) -> None:
        name = f"{RAW}.{quoted(table)}"
        self._create_raw_database()
        listed = ", ".join(f"{_literal(k)} = {_literal(v)}" for k, v in properties.items())
        self.spark.sql(f"drop table if exists {name}")
        self.spark.sql(f"create table {name} using parquet location {_literal(folder)} tblproperties ({listed})")

    def _committed_versions(self) -> dict[str, tuple[int, str, dict[str, str]]]:
        """``format: parquet``: each raw table's newest version folder with a commit marker: (version, folder, properties)."""
        fs, root = self.lake.filesystem(f"{self.lake.uri}/{RAW}")
        found: dict[str, tuple[int, str, dict[str, str]]] = {}
        for marker in fs.glob(f"{root}/*/v*/{COMMIT_MARKER}"):
            folder = marker.rsplit("/", 1)[0]
            table, name = folder.rsplit("/", 2)[-2:]
            try:
                version, properties = int(name[1:]), json.loads(fs.cat_file(marker))
            except ValueError:  # not a version folder, or a marker cut short: that version never committed
                continue
            if version > found.get(table, (-1,))[0]:
                found[table] = (version, f"{self.lake.table_uri(RAW, table)}/{name}", properties)
        return found

    def recover(self) -> None:
        """``format: parquet``: point each table at its newest committed version where the catalog is behind."""
        if self.delta:
            return
        for table, (version, folder, properties) in self._committed_versions().items():
            if self.properties(table).get(VERSION_KEY) != str(version):
                self._register(table, folder, properties)
                self._remove_versions(table, keep=version)

    def _remove_versions(self, table: str, *, keep: int) -> None:
        """Remove ``raw.<table>``'s version folders other than ``v<keep>`` (older ones, or a killed load's)."""
        fs, root = self.lake.filesystem(self.lake.table_uri(RAW, table))
        for folder in fs.glob(f"{root}/v*"):
            name = folder.rstrip("/").rsplit("/", 1)[-1]
            if name[1:].isdigit() and int(name[1:]) != keep:
                fs.rm(folder, recursive=True)

    def remove(self, uri: str) -> None:
        """Delete the folder at ``uri`` in the lake, if it is there."""
        fs, path = self.lake.filesystem(uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)

    def committed_load(self, table: str, load_id: str) -> bool:
        if self.delta:
            return super().committed_load(table, load_id)
        return self.properties(table).get(LOAD_ID_KEY) == load_id

    def unlogged_loads(self) -> list[LogEntry]:
        """For ``format: parquet``, the last load of each table (its table properties), when the log lacks it."""
        if self.delta:
            return super().unlogged_loads()
        from pyspark.sql import functions as F

        logged, entries, quarantine = logged_loads(self.lake), [], None
        for table in self.tables():
            properties = self.properties(table)
            load_id = properties.get(LOAD_ID_KEY)
            if not load_id or (table, load_id) in logged:
                continue
            quarantine = quarantined_loads(self.lake) if quarantine is None else quarantine
            rows = self.spark.table(f"{RAW}.{quoted(table)}").where(F.col("_load_id") == load_id).count()
            version = properties.get(VERSION_KEY)
            entries.append(
                recovered_entry(table, properties, version=int(version) if version else None, rows=rows, at=None, quarantine=quarantine)
            )
        return entries

    def _create_raw_database(self) -> None:
        if not self._raw_database:
            self.spark.sql(f"create database if not exists {RAW}")
            self._raw_database = True

    def tables(self) -> list[str]:
        if self.delta:
            return super().tables()
        if not self.spark.catalog.databaseExists(RAW):
            return []
        return sorted(r["tableName"] for r in self.spark.sql(f"show tables in {RAW}").collect() if not r["isTemporary"])

    def table(self, table: str, *, count: bool = False) -> RawTable:
        if self.delta:
            return super().table(table, count=count)
        properties = self.properties(table)
        if not properties:
            raise TableNotFoundError(f"no table {RAW}.{table} in Spark's catalog", hint="run `autoflux ingest` first")
        frame = self.spark.table(f"{RAW}.{quoted(table)}")
        schema = arrow_schema(frame.schema)
        version = properties.get(VERSION_KEY)
        metadata = {k: v for k, v in properties.items() if k.startswith("autoflux.")}
        uri = f"{self.lake.table_uri(RAW, table)}/v{version}"
        return RawTable(table, schema, int(version) if version else None, frame.count() if count else None, metadata, uri, "parquet")

    def schema(self, table: str) -> pa.Schema:
        if self.delta:
            return super().schema(table)
        return arrow_schema(catalog_frame(self.spark, RAW, table).schema)

    def read(self, table: str, *, version: int | None = None) -> pa.Table:
        """``raw.<table>`` (as of ``version``, when given: Spark reads a Delta table's older version) as Arrow."""
        if version is None:
            if self.delta and self.lake.exists(RAW, table):
                return super().read(table)
            return catalog_frame(self.spark, RAW, table).toArrow()
        if not self.delta:
            raise TableNotFoundError(f"{RAW}.{table} has no versions: engine.format is parquet", hint="set engine.format: delta")
        return self.spark.read.format("delta").option("versionAsOf", version).load(self.lake.table_uri(RAW, table)).toArrow()

    def publish(self, tables: Iterable[str]) -> None:
        """Register the lake's Delta tables (e.g. written by the embedded store) in Spark's catalog."""
        if not self.delta:
            return
        wanted = list(tables)
        if not wanted:
            return
        self._create_raw_database()
        known = {r.name for r in catalog_tables(self.spark, RAW)}
        for table in wanted:
            name, location = f"{RAW}.{quoted(table)}", self.lake.table_uri(RAW, table)
            if table in known:
                registered = self._location(name)
                if registered is None or _same_location(registered, location):
                    continue
                self.spark.sql(f"drop table {name}")
            self.spark.sql(f"create table if not exists {name} using delta location {_literal(location)}")

    def _location(self, name: str) -> str | None:
        for row in self.spark.sql(f"describe table extended {name}").collect():
            if row[0] == "Location":
                return row[1]
        return None

    def copy_to(self, table: str, version: int | None, target: Lake) -> None:
        """``format: parquet``: the version folder ``v<version>`` with its commit marker, copied into ``target``
        (registered by the scratch engine's store, :meth:`recover`); only the current version is kept."""
        if self.delta:
            return super().copy_to(table, version, target)
        source = f"{self.lake.table_uri(RAW, table)}/v{version}"
        fs, path = self.lake.filesystem(source)
        if version is None or not fs.exists(f"{path}/{COMMIT_MARKER}"):
            current = self._committed_versions().get(table, (None,))[0]
            raise ReproduceError(
                f"raw.{table} version {version} is not kept (its current version is {current}): "
                "a format: parquet table keeps only its current version",
                hint="set engine.format: delta to keep older versions and reproduce them",
            )
        self.lake.copy_folder(source, target, f"{target.table_uri(RAW, table)}/v{version}")

    def properties(self, table: str) -> dict[str, str]:
        """The raw table's properties; empty when the table does not exist."""
        if not catalog_has(self.spark, RAW, table):
            return {}
        return {row["key"]: row["value"] for row in self.spark.sql(f"show tblproperties {RAW}.{quoted(table)}").collect()}


def catalog_tables(spark: SparkSession, schema: str) -> list[Any]:
    """The tables and views of ``schema`` in Spark's catalog (none when the schema does not exist)."""
    if not spark.catalog.databaseExists(schema):
        return []
    return [t for t in spark.catalog.listTables(schema) if not t.isTemporary]


def catalog_has(spark: SparkSession, schema: str, table: str) -> bool:
    """Whether Spark's catalog has table or view ``schema.table``: one lookup (:func:`catalog_tables` describes every table)."""
    return spark.catalog.tableExists(f"{quoted(schema)}.{quoted(table)}")


def catalog_frame(spark: SparkSession, schema: str, table: str) -> DataFrame:
    """``schema.table`` of Spark's catalog as a DataFrame; raises TableNotFoundError when it is not there."""
    if not catalog_has(spark, schema, table):
        raise TableNotFoundError(f"no table {schema}.{table} in Spark's catalog", hint="run `autoflux transform` first")
    return spark.table(f"{quoted(schema)}.{quoted(table)}")


def _same_location(left: str, right: str) -> bool:
    def plain(uri: str) -> str:  # a catalog may give its location percent-encoded (a space as %20)
        return unquote(uri.removeprefix("file://").removeprefix("file:").rstrip("/"))

    return plain(left) == plain(right)


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
