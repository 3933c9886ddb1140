"""The embedded default: raw Delta tables are views in a DuckDB file, models land in it too.

For a lake on this machine, :meth:`Engine.publish_raw` makes each raw table a view ``raw.<table>``
over the Parquet files of its current Delta version (in the Delta log's order, each column cast to
the table's type), recreated after every ingest and before every transform. The views stay
readable after dbt's run, so staging models can be views: no model copies raw data, and `dbt run`
by hand reads the same views. A lake on an object store, or a Delta table whose files are not
plain Parquet of its columns (partitions, column mapping, deletion vectors), is read through
dbt-duckdb's ``delta`` plugin instead, which registers it for the length of a dbt run only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

import pyarrow as pa

from autoflux.engine_settings import DuckDBSettings
from autoflux.engines.base import Engine as BaseEngine
from autoflux.engines.base import Relation, dbt_env_var
from autoflux.exceptions import EngineError, TableNotFoundError

PATH_ENV = "AUTOFLUX_DUCKDB_PATH"
RAW_SCHEMA = "raw"
VIEW_COMMENT = "autoflux raw view "
STREAM_ROWS = 122_880  # rows per batch of a streamed read (DuckDB's row group)


Settings = DuckDBSettings


class Engine(BaseEngine):
    PACKAGES = ("dbt-duckdb", "duckdb")
    settings: Settings

    def __init__(self, settings: Settings, workspace) -> None:
        super().__init__(settings, workspace)
        settings.database(workspace.root)  # a path DuckDB cannot open fails here, before anything is written

    @property
    def database(self) -> str:
        return str(self.settings.database(self.workspace.root))

    @property
    def database_from_project(self) -> str:
        """The DuckDB file relative to the dbt project, where dbt runs: the same in every workspace, so dbt's
        partial parsing can start from another workspace's parse (:func:`autoflux.transform.dbt.parse_seed`)."""
        return os.path.relpath(self.database, self.workspace.dbt_dir)

    def dbt_output(self) -> dict[str, Any]:
        output: dict[str, Any] = {
            "type": "duckdb",
            "path": dbt_env_var(PATH_ENV, self.database_from_project),
            "threads": self.workspace.config.dbt.threads,
            "plugins": [{"module": "delta"}],
        }
        settings = {k: v for k, v in {"threads": self.settings.threads, "memory_limit": self.settings.memory_limit}.items() if v}
        if settings:
            output["settings"] = settings
        return output

    def dbt_env(self) -> dict[str, str]:
        return {PATH_ENV: self.database_from_project}

    def scratch_settings(self, folder) -> Settings:
        folder.mkdir(parents=True, exist_ok=True)
        # Same file name: dbt-duckdb names the database after it, so the compiled SQL is the same.
        return self.settings.model_copy(update={"path": str(folder / os.path.basename(self.database))})

    def before_dbt(self) -> None:
        self._close_connection()  # DuckDB refuses a second connection to the file with other settings

    def source_plugin(self, table: str) -> str | None:
        return None if self._view_source(table) is not None else "delta"

    def _view_source(self, table: str) -> tuple[list[str], pa.Schema] | None:
        """The Parquet files of ``raw.<table>``'s current version (in the log's order) and its schema; None when a view cannot read it."""
        from autoflux.lake import RAW, data_files

        lake = self.workspace.lake
        if not lake.is_local:
            return None
        delta = lake.open(RAW, table)
        if delta.protocol().min_reader_version > 1 or delta.metadata().partition_columns:
            return None
        return data_files(delta), pa.schema(delta.schema().to_arrow())

    def publish_raw(self, tables: Iterable[str], *, rebuilt_views: Collection[str] = ()) -> None:
        """Make each raw table a view ``raw.<table>`` over its current Parquet files (see the module's doc).

        Each view's comment holds a digest of its files and columns: views already current are left as
        they are, and when all are, the database is not opened for writing.
        """
        views = {}
        for name in tables:
            source = self._view_source(name)
            if source is not None:
                files, schema = source
                digest = hashlib.sha256(json.dumps([files, [(f.name, str(f.type)) for f in schema]]).encode()).hexdigest()
                views[name] = (files, schema, f"{VIEW_COMMENT}{digest}")
        current = {}
        connection = self._connect()
        if connection is not None:
            with connection as c:
                current = dict(
                    c.execute(
                        "select view_name, comment from duckdb_views() where schema_name = ? and not internal", [RAW_SCHEMA]
                    ).fetchall()
                )
        if current == {name: comment for name, (_, _, comment) in views.items()}:
            return
        self._close_connection()
        import duckdb

        os.makedirs(os.path.dirname(self.database), exist_ok=True)
        try:
            connection = duckdb.connect(self.database)
        except duckdb.Error as error:
            raise EngineError(
                f"cannot open the DuckDB database: {error}", path=self.database, hint="is another process using it?"
            ) from None
        with connection:
            connection.execute(f"create schema if not exists {_quoted_name(RAW_SCHEMA)}")
            for name in current:
                if name not in views:
                    connection.execute(f"drop view {_quoted(RAW_SCHEMA, name)}")
            for name, (files, schema, comment) in views.items():
                if current.get(name) != comment:
                    connection.execute(f"create or replace view {_quoted(RAW_SCHEMA, name)} as {_view_select(connection, files, schema)}")
                    connection.execute(f"comment on view {_quoted(RAW_SCHEMA, name)} is {_literal(comment)}")

    def _close_connection(self) -> None:
        connection, self._connection = getattr(self, "_connection", None), None
        if connection is not None:
            connection.close()

    def close(self) -> None:
        self._close_connection()

    def _connect(self):
        """The engine's read-only connection (one per engine; closed before dbt runs), or None without a database."""
        import duckdb

        connection = getattr(self, "_connection", None)
        if connection is not None:
            return contextlib.nullcontext(connection)
        if not os.path.exists(self.database):
            return None
        try:
            self._connection = duckdb.connect(self.database, read_only=True)
        except duckdb.Error as error:
            raise EngineError(
                f"cannot open the DuckDB database: {error}", path=self.database, hint="is another process writing to it?"
            ) from None
        return contextlib.nullcontext(self._connection)

    def relation_exists(self, schema: str, name: str) -> bool:
        connection = self._connect()
        if connection is None:
            return False
        with connection as c:
            return (
                c.execute(
                    "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
                ).fetchall()[0][0]
                > 0
            )

    def relations(self, schemas: Iterable[str]) -> list[Relation]:
        connection = self._connect()
        if connection is None:
            return []
        wanted = list(schemas)
        with connection as connection:
            rows = connection.execute(
                "select table_schema, table_name, table_type from information_schema.tables "
                f"where table_schema in ({', '.join('?' for _ in wanted)}) order by 1, 2",
                wanted,
            ).fetchall()
            result = []
            for schema, name, kind in rows:
                result.append(Relation(schema, name, _count(connection, schema, name), "table" if kind == "BASE TABLE" else "view"))
        return result

    def read_arrow(self, schema: str, table: str) -> pa.Table:
        return self.read_batches(schema, table).read_all()

    def read_batches(self, schema: str, table: str) -> pa.RecordBatchReader:
        if not self.relation_exists(schema, table):
            raise TableNotFoundError(f"no table {schema}.{table} in {self.database}", hint="run `autoflux transform` first")
        with self._connect() as connection:
            cursor = connection.cursor()  # a connection of its own: other queries may run while this one streams
        reader = cursor.sql(f"select * from {_quoted(schema, table)}").to_arrow_reader(STREAM_ROWS)

        def batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            finally:
                cursor.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches())

    def query(self, sql: str) -> pa.Table:
        connection = self._connect()
        if connection is None:
            raise TableNotFoundError(f"no DuckDB database at {self.database}", hint="run `autoflux transform` first")
        with connection as connection:
            return _query(connection, sql, "a query", path=self.database)

    @contextlib.contextmanager
    def raw_scan(self, table: str) -> Iterator[tuple[str, Callable[[str], pa.Table]]]:
        """``raw.<table>`` read in a DuckDB of its own, in memory: the view's ``select`` over the table's
        files, or its Arrow dataset where no view can read it. The database file is not opened, so this
        reads while dbt holds it."""
        import duckdb

        from autoflux.lake import RAW

        connection = duckdb.connect()
        try:
            connection.execute("set enable_progress_bar = false")
            source = self._view_source(table)
            if source is None:
                connection.register("af_raw", self.workspace.lake.open(RAW, table).to_pyarrow_dataset())
            else:
                connection.execute(f"create view af_raw as {_view_select(connection, *source)}")
            yield '"af_raw"', lambda sql: _query(connection, sql, f"a query of raw.{table}")
        finally:
            connection.close()


def _query(connection, sql: str, what: str, *, path: str | None = None) -> pa.Table:
    import duckdb

    try:
        return connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        raise EngineError(f"{what} failed on DuckDB: {str(error).splitlines()[0]}", path=path) from None


def _count(connection, schema: str, name: str) -> int | None:
    """Rows of a table or view; None for a view that cannot be read outside a dbt run."""
    import duckdb

    try:
        return connection.execute(f"select count(*) from {_quoted(schema, name)}").fetchall()[0][0]
    except duckdb.Error:
        return None


def _quoted(schema: str, name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))


def _quoted_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _view_select(connection, files: list[str], schema: pa.Schema) -> str:
    """``select`` of a raw view: the table's columns in its order, each cast to its type, from ``files``.

    A column no file holds (or a table with no files) reads as null.
    """
    if files:
        source = f"read_parquet([{', '.join(_literal(f) for f in files)}], union_by_name = true)"
        present = {row[0] for row in connection.execute(f"describe select * from {source}").fetchall()}
    else:
        source, present = None, set()
    columns = []
    for field in schema:
        name, sql_type = _quoted_name(field.name), _duckdb_type(field.type)
        if field.name not in present:
            columns.append(f"cast(null as {sql_type or 'varchar'}) as {name}")
        else:
            columns.append(f"cast({name} as {sql_type}) as {name}" if sql_type else name)
    return f"select {', '.join(columns)} from {source}" if source else f"select {', '.join(columns)} where false"


def _duckdb_type(arrow_type: pa.DataType) -> str | None:
    """DuckDB's type for a raw column's Arrow type (as dbt-duckdb's Delta plugin would read it); None: leave as read."""
    simple = {
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "integer",
        pa.int64(): "bigint",
        pa.uint8(): "utinyint",
        pa.uint16(): "usmallint",
        pa.uint32(): "uinteger",
        pa.uint64(): "ubigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.bool_(): "boolean",
        pa.date32(): "date",
        pa.string(): "varchar",
        pa.large_string(): "varchar",
        pa.string_view(): "varchar",
        pa.binary(): "blob",
        pa.large_binary(): "blob",
    }
    if arrow_type in simple:
        return simple[arrow_type]
    if pa.types.is_timestamp(arrow_type):
        return "timestamp with time zone" if arrow_type.tz else "timestamp"
    if pa.types.is_decimal(arrow_type) and arrow_type.precision <= 38:
        return f"decimal({arrow_type.precision}, {arrow_type.scale})"
    return None
