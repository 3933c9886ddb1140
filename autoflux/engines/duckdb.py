"""The embedded default: dbt-duckdb reads the raw Delta tables, models land in a DuckDB file.

dbt-duckdb's ``delta`` plugin registers each Delta source for the length of a dbt run only, so
models built on sources are tables (never views): what ``tables`` and the hand-off read stays
readable after the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from autoflux.engine_settings import DuckDBSettings
from autoflux.engines.base import Engine as BaseEngine
from autoflux.engines.base import Relation, dbt_env_var
from autoflux.exceptions import EngineError, TableNotFoundError

PATH_ENV = "AUTOFLUX_DUCKDB_PATH"


Settings = DuckDBSettings


class Engine(BaseEngine):
    SOURCES_READ_LAKE = True
    PACKAGES = ("dbt-duckdb", "duckdb")
    settings: Settings

    @property
    def database(self) -> str:
        return str(self.workspace.resolve(self.settings.path))

    def dbt_output(self) -> dict[str, Any]:
        default = os.path.relpath(self.database, self.workspace.dbt_dir)
        output: dict[str, Any] = {
            "type": "duckdb",
            "path": dbt_env_var(PATH_ENV, default),
            "threads": self.workspace.config.dbt.threads,
            "plugins": [{"module": "delta"}],
        }
        settings = {k: v for k, v in {"threads": self.settings.threads, "memory_limit": self.settings.memory_limit}.items() if v}
        if settings:
            output["settings"] = settings
        return output

    def dbt_env(self) -> dict[str, str]:
        return {PATH_ENV: self.database}

    def scratch_settings(self, folder) -> Settings:
        folder.mkdir(parents=True, exist_ok=True)
        # Same file name: dbt-duckdb names the database after it, so the compiled SQL is the same.
        return self.settings.model_copy(update={"path": str(folder / os.path.basename(self.database))})

    def after_dbt(self) -> None:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        environment = DuckDBConnectionManager._ENV  # dbt-duckdb keeps the database open per process
        if environment is not None:
            environment.close()
        DuckDBConnectionManager.close_all_connections()

    def _connect(self):
        import duckdb

        if not os.path.exists(self.database):
            return None
        try:
            return duckdb.connect(self.database, read_only=True)
        except duckdb.Error as error:
            raise EngineError(f"cannot open the DuckDB database: {error}", path=self.database, hint="is another process writing to it?") from None

    def relations(self, schemas: Iterable[str]) -> list[Relation]:
        connection = self._connect()
        if connection is None:
            return []
        wanted = list(schemas)
        with connection:
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
        connection = self._connect()
        if connection is None or not any(r.name == table for r in self.relations([schema])):
            raise TableNotFoundError(f"no table {schema}.{table} in {self.database}", hint="run `autoflux transform` first")
        with connection:
            return connection.sql(f"select * from {_quoted(schema, table)}").to_arrow_table()


    def query(self, sql: str) -> pa.Table:
        import duckdb

        connection = self._connect()
        if connection is None:
            raise TableNotFoundError(f"no DuckDB database at {self.database}", hint="run `autoflux transform` first")
        with connection:
            try:
                return connection.sql(sql).to_arrow_table()
            except duckdb.Error as error:
                raise EngineError(f"a query failed on DuckDB: {str(error).splitlines()[0]}", path=self.database) from None


def _count(connection, schema: str, name: str) -> int | None:
    """Rows of a table or view; None for a view that cannot be read outside a dbt run."""
    import duckdb

    try:
        return connection.execute(f"select count(*) from {_quoted(schema, name)}").fetchone()[0]
    except duckdb.Error:
        return None


def _quoted(schema: str, name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in (schema, name))
