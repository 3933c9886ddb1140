"""PostgreSQL: the raw Delta tables are loaded into schema ``raw``; dbt-postgres builds the models.

Raw tables are loaded by binary ``COPY ... FREEZE`` (psycopg2, the driver dbt-postgres uses),
encoded by :mod:`autoflux.engines.pg_copy`, and only when the table's load id changed since it
was last published: along the ingest for a file that replaces its table (:class:`LoadingAlongStore`),
else after it, streamed batch by batch from the Delta table (:meth:`Engine.publish_raw`). Each load fills a new table
that replaces the old one by rename in the same transaction, so a reader sees the old rows or the
new ones, never part of a load. The table's comment records what it holds (load id, Delta
version). The hand-off reads marts back as Arrow through ADBC (binary COPY as well).

Connection settings come from ``autoflux.yml`` (``url`` or ``host``, ``port``, ``user``,
``password``, ``database``), then libpq's environment (``PGHOST``, ``PGPORT``, ``PGUSER``,
``PGPASSWORD``, ``PGDATABASE``). The password reaches dbt through an environment variable dbt
treats as secret; it is never written to profiles.yml nor put in a message.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from queue import Empty, Full, Queue
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import pyarrow as pa
from pydantic import SecretStr

from autoflux.engine_settings import PostgresSettings
from autoflux.engines.base import Engine as BaseEngine
from autoflux.engines.base import Relation, dbt_env_var
from autoflux.exceptions import (
    AutoFluxError,
    ConfigError,
    EngineError,
    MissingDependencyError,
    TableNameClashError,
    TableNotFoundError,
)
from autoflux.faults import fault
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.ingest.state import LoadMetadata, with_user_metadata
from autoflux.ingest.store import RawStore
from autoflux.lake import RAW

if TYPE_CHECKING:
    from autoflux.workspace import Workspace

PASSWORD_ENV = "DBT_ENV_SECRET_AUTOFLUX_POSTGRES_PASSWORD"
DATABASE_ENV = "AUTOFLUX_POSTGRES_DATABASE"
MAX_IDENTIFIER = 63
PARALLEL_LOADS = 2  # raw tables loaded at once, each over a connection of its own
STREAM_BYTES = 16 << 20  # Arrow data per batch of a streamed read (read_batches; ADBC's own default)
BATCH_ROWS = 65_536
ALONG_BATCHES = 4  # batches read ahead of a load along the ingest before the ingest waits for the server


Settings = PostgresSettings


@dataclass(frozen=True)
class Target:
    """Where to connect, with settings, URL, environment and defaults resolved (in that order)."""

    host: str
    port: int
    user: str
    database: str
    password: str | None
    sslmode: str | None
    connect_timeout: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def uri(self) -> str:
        credentials = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        query: dict[str, Any] = {"connect_timeout": self.connect_timeout, "application_name": "autoflux"}
        if self.sslmode:
            query["sslmode"] = self.sslmode
        if self.host.startswith("/"):
            query["host"] = self.host
            location = ""
        else:
            location = f"[{self.host}]" if ":" in self.host else quote(self.host, safe="")
        return f"postgresql://{credentials}@{location}:{self.port}/{quote(self.database, safe='')}?{urlencode(query)}"

    def scrub(self, text: str) -> str:
        return text.replace(self.password, "***") if self.password else text


def resolve_target(settings: Settings, environ: Mapping[str, str] = os.environ) -> Target:
    """The connection ``settings`` describe; keys win over ``url``, which wins over ``PG*`` variables."""
    parts: dict[str, Any] = {}
    if settings.url is not None:
        url = urlsplit(settings.url.get_secret_value())
        if url.scheme not in ("postgresql", "postgres"):
            raise ConfigError("engine.url must start with postgresql://", hint="postgresql://user:password@host:5432/database")
        try:
            port = url.port
        except ValueError:
            raise ConfigError("engine.url has a port that is not a number", hint="postgresql://user:password@host:5432/database") from None
        query = dict(parse_qsl(url.query))
        parts = {
            "host": unquote(url.hostname or "") or query.get("host"),
            "port": port or query.get("port"),
            "user": unquote(url.username or "") or query.get("user"),
            "password": unquote(url.password or "") or query.get("password"),
            "database": unquote(url.path.lstrip("/")) or query.get("dbname"),
            "sslmode": query.get("sslmode"),
        }
    password = settings.password.get_secret_value() if settings.password is not None else None
    user = settings.user or parts.get("user") or environ.get("PGUSER") or getpass.getuser()
    port = settings.port or parts.get("port") or environ.get("PGPORT") or 5432
    try:
        port = int(port)
    except ValueError:
        raise ConfigError(f"PGPORT={port!r} is not a port number", hint="set engine.port in autoflux.yml") from None
    return Target(
        host=settings.host or parts.get("host") or environ.get("PGHOST") or "localhost",
        port=port,
        user=user,
        database=settings.database or parts.get("database") or environ.get("PGDATABASE") or user,
        password=password or parts.get("password") or environ.get("PGPASSWORD") or None,
        sslmode=settings.sslmode or parts.get("sslmode"),
        connect_timeout=settings.connect_timeout,
    )


class Engine(BaseEngine):
    settings: Settings
    PACKAGES = ("dbt-postgres", "psycopg2-binary", "adbc-driver-postgresql")

    def __init__(self, settings: Settings, workspace: Workspace) -> None:
        super().__init__(settings, workspace)
        self.target = resolve_target(settings)

    def raw_store(self) -> RawStore:
        """The lake's Delta tables, each loaded into PostgreSQL as the ingest writes it (:class:`LoadingAlongStore`)."""
        if self._store is None:
            self._store = LoadingAlongStore(self)
        return self._store

    def dbt_output(self) -> dict[str, Any]:
        target = self.target
        output: dict[str, Any] = {
            "type": "postgres",
            "host": target.host,
            "port": target.port,
            "user": target.user,
            "password": f"{{{{ env_var('{PASSWORD_ENV}', env_var('PGPASSWORD', '')) }}}}",
            "dbname": dbt_env_var(DATABASE_ENV, target.database),
            "schema": "public",
            "threads": self.workspace.config.dbt.threads,
            "connect_timeout": target.connect_timeout,
        }
        if target.sslmode:
            output["sslmode"] = target.sslmode
        return output

    def dbt_env(self) -> dict[str, str]:
        return {DATABASE_ENV: self.target.database} | ({PASSWORD_ENV: self.target.password} if self.target.password else {})

    def scratch_settings(self, folder) -> Settings:
        """A new database beside the workspace's (needs CREATEDB), dropped by :meth:`remove_scratch`."""
        name = f"{self.target.database}_autoflux_scratch_{os.urandom(4).hex()}"[-MAX_IDENTIFIER:]
        self._admin(f"create database {_ident(name)}", "creating a scratch database")
        return self.settings.model_copy(update={"database": name, "url": None, **_parts(self.target)})

    def remove_scratch(self, settings: Settings) -> None:
        if settings.database and settings.database != self.target.database:
            self._admin(f"drop database if exists {_ident(settings.database)} with (force)", "dropping a scratch database")

    def _admin(self, sql: str, what: str) -> None:
        with self._connect() as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                self._execute(cursor, sql, what)

    def publish_raw(self, tables: Iterable[str], *, rebuilt_views: Collection[str] = ()) -> None:
        """Load each raw Delta table whose load id changed into ``raw.<table>``, one transaction each.

        PostgreSQL binds views to a table's columns: when a table's columns changed, the views
        that depend on it are dropped in the same transaction if all are in ``rebuilt_views``
        (``schema.name`` of the views dbt recreates); any other view stops the load with an error.
        """
        names = list(tables)
        if not names:
            return
        _check_identifiers(names, "table")
        lake = self.workspace.lake
        with self._connect() as connection, connection.cursor() as cursor:
            self._create_raw_schema(connection, cursor)
            published = self._marks(cursor)
        changed, rebuilt = [], set(rebuilt_views)
        for name in names:
            delta = lake.open(RAW, name)
            mark = _mark(delta)
            if not _same_load(published.get(name), mark):
                changed.append((name, delta, mark))

        def load(name: str, delta: Any, mark: dict[str, Any]) -> None:
            with self._connect() as connection, connection.cursor() as cursor:
                try:
                    self._load(cursor, name, delta, mark, rebuilt)
                    connection.commit()
                except BaseException as error:
                    with suppress(Exception):
                        connection.rollback()
                    if isinstance(error, self._errors()):
                        raise self._query_error(error, _loading(name)) from None
                    raise

        # Two tables at a time, each in a transaction of its own: the server inserts a table's rows on one core.
        with ThreadPoolExecutor(PARALLEL_LOADS) as pool:
            for loaded in [pool.submit(load, *table) for table in changed]:
                loaded.result()

    def _load(self, cursor, name: str, delta, mark: dict[str, Any], rebuilt_views: set[str]) -> None:
        self._lock(cursor, name)
        if _same_load(self._marks(cursor, name).get(name), mark):
            return  # another process published this load while we waited
        dataset = delta.to_pyarrow_dataset()
        columns = _table_columns(dataset.schema, name)
        constant = _constant_lineage(delta, dataset)
        copied = [column for column in columns if column[0].name not in constant]
        schema = _copy_schema(copied)
        staging = self._create_staging(cursor, name, copied)
        self._copy(cursor, staging, (batch.cast(schema, safe=False) for batch in _batches(delta, dataset, schema.names)), _loading(name))
        self._swap_in(cursor, name, columns, constant, mark, rebuilt_views)

    def _create_raw_schema(self, connection, cursor) -> None:
        """Create schema ``raw`` unless it exists, committed at once (a load then runs in a transaction of its own)."""
        self._execute(cursor, f"create schema if not exists {_ident(RAW)}", "creating schema raw")
        connection.commit()

    def _lock(self, cursor, name: str) -> None:
        """Hold ``raw.<name>``'s publishing lock until the transaction ends."""
        self._execute(cursor, f"select pg_advisory_xact_lock(hashtext({_literal('autoflux raw.' + name)}))", f"locking raw.{name}")

    def _create_staging(self, cursor, name: str, copied: list[tuple[pa.Field, str, pa.DataType]]) -> str:
        """Create the table a load of ``raw.<name>`` fills (:func:`_staging`) with the ``copied`` columns; returns its qualified name."""
        staging = f"{_ident(RAW)}.{_ident(_staging(name))}"
        definition = ", ".join(f"{_ident(f.name)} {pg_type}" for f, pg_type, _ in copied)
        self._execute(cursor, f"create table {staging} ({definition})", _loading(name))
        return staging

    def _swap_in(self, cursor, name: str, columns, constant: dict[str, str], mark: dict[str, Any], rebuilt_views: set[str]) -> None:
        """Make the filled staging table ``raw.<name>``: the ``constant`` lineage columns added with their value,
        comments set (the table's is ``mark``), and the old table replaced, or its rows when views depend on it."""
        staging = _staging(name)
        target, new = f"{_ident(RAW)}.{_ident(name)}", f"{_ident(RAW)}.{_ident(staging)}"
        what = _loading(name)
        if constant:  # added with their value as default: PostgreSQL keeps it once, for every row
            added = [(_ident(f.name), pg_type, _literal(constant[f.name])) for f, pg_type, _ in columns if f.name in constant]
            self._execute(cursor, f"alter table {new} " + ", ".join(f"add column {c} {t} default {v}" for c, t, v in added), what)
            self._execute(cursor, f"alter table {new} " + ", ".join(f"alter column {c} drop default" for c, _, _ in added), what)
        self._execute(cursor, f"comment on table {new} is {_literal(json.dumps(mark))}", what)
        for field, _, _ in columns:
            comment = (field.metadata or {}).get(b"comment")
            if comment:
                self._execute(cursor, f"comment on column {new}.{_ident(field.name)} is {_literal(comment.decode())}", what)
        dependents = self._dependents(cursor, name)
        if not dependents:
            self._execute(cursor, f"drop table if exists {target}", what)
            self._execute(cursor, f"alter table {new} rename to {_ident(name)}", what)
            return
        if self._columns(cursor, name) != self._columns(cursor, staging):
            foreign = [view for view in dependents if view not in rebuilt_views]
            if foreign:
                raise EngineError(
                    f"cannot replace raw.{name} in PostgreSQL: its columns changed and views that dbt does not build depend on it"
                    f" ({', '.join(foreign)})",
                    hint="drop those views or make them dbt models, then ingest again",
                )
            for view in dependents:
                schema, _, view_name = view.partition(".")
                self._execute(cursor, f"drop view if exists {_ident(schema)}.{_ident(view_name)} cascade", what)
            self._execute(cursor, f"drop table {target}", what)
            self._execute(cursor, f"alter table {new} rename to {_ident(name)}", what)
            return
        self._execute(cursor, f"truncate {target}", what)  # views depend on the table: keep it, swap its rows
        self._execute(cursor, f"insert into {target} select * from {new}", what)
        self._execute(cursor, f"comment on table {target} is {_literal(json.dumps(mark))}", what)
        self._execute(cursor, f"drop table {new}", what)

    def _copy(self, cursor, table: str, batches: Iterator[pa.RecordBatch], what: str) -> None:
        """Stream ``batches`` into ``table``, created in this transaction (so frozen: no later pass sets hint bits)."""
        from autoflux.engines.pg_copy import BinaryCopy

        stream = BinaryCopy(batches)
        try:
            cursor.copy_expert(f"copy {table} from stdin (format binary, freeze)", stream)
        except self._errors() as error:
            if stream.error is not None:  # reading the Delta table failed: the driver only says that read() did
                raise stream.error from None
            raise self._query_error(error, what) from None

    def relations(self, schemas: Iterable[str]) -> list[Relation]:
        wanted = list(schemas)
        if not wanted:
            return []
        with self._connect() as connection, connection.cursor() as cursor:
            rows = self._fetch(
                cursor,
                "select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                f"where n.nspname in ({', '.join(_literal(s) for s in wanted)}) and c.relkind in ('r', 'p', 'm', 'v') "
                "order by 1, 2",
                "listing tables",
            )
            result = []
            for schema, name, kind in rows:
                count = self._fetch(cursor, f"select count(*) from {_ident(schema)}.{_ident(name)}", f"counting {schema}.{name}")[0][0]
                result.append(Relation(schema, name, count, "view" if kind == "v" else "table"))
        return result

    def read_arrow(self, schema: str, table: str) -> pa.Table:
        return self.read_batches(schema, table).read_all()

    def read_batches(self, schema: str, table: str) -> pa.RecordBatchReader:
        """Streamed from ADBC's COPY, batch by batch; read whole when a column is a constrained ``numeric``, whose
        type (a decimal, or a double when it holds a NaN: :func:`_plain`) only the whole column tells."""
        stack = ExitStack()
        try:
            connection = stack.enter_context(self._connect(arrow=True, what=f"reading {schema}.{table}"))
            cursor = stack.enter_context(connection.cursor())
            cursor.execute(f"select to_regclass({_literal(_ident(schema) + '.' + _ident(table))})::text")
            if cursor.fetchone()[0] is None:
                raise TableNotFoundError(
                    f"no table {schema}.{table} in PostgreSQL database {self.target.database!r} at {self.target.address}",
                    hint="run `autoflux transform` first",
                )
            cursor.adbc_statement.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(STREAM_BYTES)})
            cursor.execute(f"select * from {_ident(schema)}.{_ident(table)}")
            reader = cursor.fetch_record_batch()
            if any(_typed_by_its_values(field) for field in reader.schema):
                with stack:
                    return _plain(reader.read_all()).to_reader()
        except BaseException:
            stack.close()
            raise

        def batches() -> Iterator[pa.RecordBatch]:
            with stack:
                for batch in reader:
                    yield from _plain(pa.Table.from_batches([batch])).to_batches()

        return pa.RecordBatchReader.from_batches(_plain(reader.schema.empty_table()).schema, batches())

    SQL_DOUBLE = "double precision"
    SQL_TEXT = "text"
    SQL_NESTED_BINS = True

    def query(self, sql: str) -> pa.Table:
        with self._connect(arrow=True, what="a query") as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return _plain(cursor.fetch_arrow_table())

    def sql_distinct(self, expression: str) -> str:
        return f"count(distinct {expression})"

    def sql_sample(self, relation: str, fraction: float) -> str:
        return relation

    def sql_quantiles(self, expression: str, fractions: list[float]) -> str:
        return f"percentile_disc(array[{', '.join(map(str, fractions))}]::{self.SQL_DOUBLE}[]) within group (order by {expression})"

    def sql_row_hash(self, columns: list[str]) -> str | None:
        return f"hashtextextended(cast(row({', '.join(columns)}) as text), 0)"

    def sql_epoch_days(self, expression: str) -> str:
        return f"cast(extract(epoch from {expression}) as {self.SQL_DOUBLE}) / 86400.0"

    @contextmanager
    def _connect(self, *, arrow: bool = False, what: str = "a statement") -> Iterator[Any]:
        """A connection, in a transaction: psycopg2 for statements and COPY, or ADBC (``arrow``) for results as
        Arrow; a query error in the block is named as ``what`` failing."""
        try:
            if arrow:
                from adbc_driver_postgresql import dbapi as driver
            else:
                import psycopg2 as driver
        except ImportError:
            package = "adbc-driver-postgresql" if arrow else "psycopg2-binary"
            raise MissingDependencyError("the postgres engine", extra="postgres", package=package) from None
        try:
            connection = driver.connect(self.target.uri())
        except driver.Error as error:
            raise self._connection_error(error) from None
        try:
            yield connection
        except driver.Error as error:
            raise self._query_error(error, what) from None
        finally:
            with suppress(driver.Error):
                connection.close()

    @staticmethod
    def _errors() -> type[Exception]:
        from psycopg2 import Error

        return Error

    def _execute(self, cursor, sql: str, what: str) -> None:
        try:
            cursor.execute(sql)
        except self._errors() as error:
            raise self._query_error(error, what) from None

    def _fetch(self, cursor, sql: str, what: str) -> list[tuple]:
        self._execute(cursor, sql, what)
        return cursor.fetchall()

    def _marks(self, cursor, name: str | None = None) -> dict[str, dict[str, Any]]:
        only = f" and c.relname = {_literal(name)}" if name is not None else ""
        rows = self._fetch(
            cursor,
            "select c.relname, obj_description(c.oid, 'pg_class') from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            f"where n.nspname = {_literal(RAW)} and c.relkind in ('r', 'p'){only}",
            "reading what raw holds",
        )
        marks = {}
        for relation, comment in rows:
            try:
                marks[relation] = json.loads(comment or "")
            except ValueError:
                marks[relation] = {}
        return marks

    def _dependents(self, cursor, name: str) -> list[str]:
        """``schema.name`` of every view that depends on ``raw.<name>``, directly or through other views."""
        rows = self._fetch(
            cursor,
            "with recursive dependent(oid) as ("
            " select r.ev_class from pg_depend d join pg_rewrite r on r.oid = d.objid"
            f" where d.refobjid = to_regclass({_literal(_ident(RAW) + '.' + _ident(name))}) and r.ev_class <> d.refobjid"
            " union"
            " select r.ev_class from dependent p join pg_depend d on d.refobjid = p.oid join pg_rewrite r on r.oid = d.objid"
            " where r.ev_class <> d.refobjid)"
            " select distinct n.nspname || '.' || v.relname from dependent join pg_class v on v.oid = dependent.oid"
            " join pg_namespace n on n.oid = v.relnamespace order by 1",
            f"looking up views on raw.{name}",
        )
        return [row[0] for row in rows]

    def _columns(self, cursor, name: str) -> list[tuple]:
        return self._fetch(
            cursor,
            "select attname, format_type(atttypid, atttypmod) from pg_attribute "
            f"where attrelid = to_regclass({_literal(_ident(RAW) + '.' + _ident(name))}) and attnum > 0 and not attisdropped order by attnum",
            f"reading the columns of raw.{name}",
        )

    def _connection_error(self, error: Exception) -> EngineError:
        target, reason = self.target, self.target.scrub(_reason(error))
        lowered = reason.lower()
        if "does not exist" in lowered and "database" in lowered:
            return EngineError(
                f"database {target.database!r} does not exist on PostgreSQL at {target.address}",
                hint=f"create it (createdb {target.database}) or set engine.database in autoflux.yml",
            )
        if any(s in lowered for s in ("authentication failed", "password", "role", "pg_hba.conf", "not permitted to log in")):
            return EngineError(
                f"PostgreSQL at {target.address} refused user {target.user!r}: authentication failed ({reason})",
                hint="check engine.user and engine.password in autoflux.yml (or PGUSER/PGPASSWORD)",
            )
        down = EngineError(
            f"cannot reach PostgreSQL at {target.address}: {reason}",
            hint="is the server running? check engine.host and engine.port in autoflux.yml (or PGHOST/PGPORT)",
        )
        down.retryable = True
        return down

    def _query_error(self, error: Exception, what: str) -> EngineError:
        sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        detail = f" [SQLSTATE {sqlstate}]" if sqlstate else ""
        return EngineError(f"{what} failed on PostgreSQL at {self.target.address}: {self.target.scrub(_reason(error))}{detail}")


class LoadingAlongStore(RawStore):
    """The raw Delta tables in the lake, each file's rows also copied into PostgreSQL as they are written, so the
    server inserts them while the Parquet files are encoded rather than after the commit (1M rows: ~0.4 s of 3.5).

    A load that replaces the whole table streams into its staging table (:class:`_CopyAlong`), swapped in
    once the Delta commit has landed. Best effort: when that load fails or no longer matches the commit,
    nothing of it is committed, and :meth:`Engine.publish_raw` (which loads each table whose load changed)
    loads the table after the ingest, or says why it cannot.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine.workspace)
        self.engine = engine

    def write(self, data_file, open_columns, load):
        if len(load.table.encode()) > MAX_IDENTIFIER:  # cut by PostgreSQL: publish_raw checks it against the others
            return super().write(data_file, open_columns, load)
        copies: list[_CopyAlong] = []

        def tap(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for earlier in copies:  # a read again with wider types: the earlier read's copy is void
                earlier.close()
            copies.append(copy := _CopyAlong(self.engine, load.table, schema))
            return copy.tee(batches)

        try:
            written = super().write(data_file, open_columns, replace(load, tap=tap))
            fault("publish")
            if copies:
                copies[-1].publish()
            return written
        finally:
            for copy in copies:
                copy.close()


class _Abandoned(Exception):
    """The read a copy along the ingest was fed from stopped: the copy is void."""


class _CopyAlong:
    """One read of a raw table's file copied into its staging table as :meth:`tee` passes the batches on, by a
    thread over a connection and transaction of its own; :meth:`publish` commits it, :meth:`close` drops it."""

    def __init__(self, engine: Engine, table: str, schema: pa.Schema) -> None:
        self.engine, self.table = engine, table
        self.copied = pa.schema([f for f in schema if f.name not in LINEAGE_COLUMNS])  # constant: added at the swap
        self.definition: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        self._fed = False  # every batch handed over
        self._queue: Queue[pa.RecordBatch | None] = Queue(ALONG_BATCHES)
        self._stop = threading.Event()
        self._connections = ExitStack()
        self._connection: Any = None
        self._thread = threading.Thread(target=self._run, name="autoflux-copy-along", daemon=True)
        self._thread.start()

    def tee(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``batches``, each also handed to the copy (which drops out, leaving them be, if it failed)."""
        try:
            for batch in batches:
                self._put(batch)
                yield batch
        except BaseException:
            self.close()
            raise
        self._put(None)
        self._fed = True

    def publish(self) -> None:
        """Swap the staging table in with the commit's mark and commit, when this copy holds the committed table's rows."""
        if not self._fed:
            return  # the write did not take every batch through tee: not this copy's rows
        self._thread.join()
        expected = (AutoFluxError, _Abandoned, self.engine._errors())  # the server, the connection, a read stopped
        if self.error is not None:
            if isinstance(self.error, expected):
                return  # publish_raw loads the table, or says why it cannot
            raise self.error
        try:
            delta = self.engine.workspace.lake.open(RAW, self.table)
            mark, dataset = _mark(delta), delta.to_pyarrow_dataset()
            columns = _table_columns(dataset.schema, self.table)
            constant = _constant_lineage(delta, dataset)
            if set(constant) != set(LINEAGE_COLUMNS) or [(f.name, t) for f, t, _ in columns if f.name not in constant] != self.definition:
                return
            with self._connection.cursor() as cursor:
                if not _same_load(self.engine._marks(cursor, self.table).get(self.table), mark):
                    self.engine._swap_in(cursor, self.table, columns, constant, mark, set())
                    self._connection.commit()
        except expected:
            return

    def close(self) -> None:
        """Stop the copy and end its connection; what it did not commit is rolled back."""
        self._stop.set()
        self._thread.join()
        self._connections.close()

    def _put(self, batch: pa.RecordBatch | None) -> None:
        while not self._stop.is_set() and self._thread.is_alive():
            try:
                self._queue.put(batch, timeout=0.1)
                return
            except Full:
                continue

    def _batches(self) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = self._queue.get(timeout=0.1)
            except Empty:
                if self._stop.is_set():
                    raise _Abandoned from None
                continue
            if batch is None:
                return
            yield batch

    def _run(self) -> None:
        engine, name = self.engine, self.table
        what = _loading(name)
        try:
            self._connection = connection = self._connections.enter_context(engine._connect(what=what))
            with connection.cursor() as cursor:
                engine._create_raw_schema(connection, cursor)
                engine._lock(cursor, name)
                columns = _table_columns(self.copied, name)
                self.definition = [(f.name, t) for f, t, _ in columns]
                staging = engine._create_staging(cursor, name, columns)
                schema = _copy_schema(columns)
                batches = (batch.select(schema.names).cast(schema, safe=False) for batch in self._batches())
                engine._copy(cursor, staging, batches, what)
        except BaseException as error:  # noqa: BLE001 - kept for publish (the ingest goes on either way)
            self.error = error


def _parts(target: Target) -> dict[str, Any]:
    return {
        "host": target.host,
        "port": target.port,
        "user": target.user,
        "sslmode": target.sslmode,
        "password": SecretStr(target.password) if target.password else None,
    }


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _reason(error: Exception) -> str:
    """The server's message in one line, without the driver's prefixes and the query text."""
    text = str(error)
    found = re.search(r"(?:ERROR|FATAL):\s+([^\n]+)", text)
    if found:
        return found.group(1).strip()
    text = re.sub(r"^[A-Z_]+: \[libpq\] [^:]+: ", "", text.strip())
    text = re.sub(r"^connection to server at [^:]+ failed: ", "", text)
    return next((line.strip() for line in text.splitlines() if line.strip()), text).removesuffix(".")


def _loading(name: str) -> str:
    """What a load of ``raw.<name>`` is called in its errors."""
    return f"loading raw.{name} into PostgreSQL"


def _staging(name: str) -> str:
    """The table a load of ``raw.<name>`` fills before it replaces the table (seen by no other transaction)."""
    return "_autoflux_load_" + hashlib.sha1(name.encode()).hexdigest()[:16]


def _table_columns(schema: pa.Schema, table: str) -> list[tuple[pa.Field, str, pa.DataType]]:
    """Each field of raw table ``table``'s ``schema`` with its PostgreSQL type and the Arrow type COPY sends (:func:`_postgres_type`)."""
    columns = [(field, *_postgres_type(field, table)) for field in schema]
    _check_identifiers([f.name for f, _, _ in columns], f"raw.{table} column")
    return columns


def _copy_schema(columns: list[tuple[pa.Field, str, pa.DataType]]) -> pa.Schema:
    """The Arrow schema COPY sends for ``columns`` (:func:`_table_columns`)."""
    return pa.schema([pa.field(f.name, arrow_type) for f, _, arrow_type in columns])


def _mark(delta) -> dict[str, Any]:
    load = LoadMetadata.of(with_user_metadata(next(iter(delta.history(1)), {}))) or LoadMetadata("")
    return {"autoflux_load_id": load.load_id or None, "delta_version": delta.version(), "source_file": load.source_file or None}


def _batches(delta, dataset, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The table's ``columns`` batch by batch: file by file when it can (less memory than a dataset scan)."""
    import pyarrow.parquet as pq

    if not _rows_as_files(delta):
        yield from dataset.scanner(columns=columns, batch_size=BATCH_ROWS, batch_readahead=1, fragment_readahead=1).to_batches()
        return
    for path in dataset.files:
        with dataset.filesystem.open_input_file(path) as source:
            yield from pq.ParquetFile(source).iter_batches(batch_size=BATCH_ROWS, columns=columns)


def _rows_as_files(delta) -> bool:
    """Whether the table's rows are its data files' rows as they are (no partition columns, deletion vectors or column mapping)."""
    features = set(delta.protocol().reader_features or ())
    return not delta.metadata().partition_columns and not features & {"deletionVectors", "columnMapping"}


def _constant_lineage(delta, dataset) -> dict[str, str]:
    """The last columns of a raw table, among its lineage columns, that hold one value in every row, as text (by the
    data files' statistics).

    Empty when the files cannot tell (no statistics, a partitioned table, deletion vectors).
    """
    import datetime as dt

    import pyarrow.parquet as pq

    if not _rows_as_files(delta) or not dataset.files or tuple(dataset.schema.names[-len(LINEAGE_COLUMNS) :]) != LINEAGE_COLUMNS:
        return {}
    values: dict[str, set[Any]] = {name: set() for name in LINEAGE_COLUMNS}
    for path in dataset.files:
        with dataset.filesystem.open_input_file(path) as source:
            metadata = pq.ParquetFile(source).metadata
        for group in range(metadata.num_row_groups):
            row_group = metadata.row_group(group)
            chunks = (row_group.column(i) for i in range(row_group.num_columns))
            for chunk in (c for c in chunks if c.path_in_schema in values):
                stats = chunk.statistics
                if stats is None or not stats.has_min_max or stats.null_count != 0:
                    values[chunk.path_in_schema].add(object())  # unknown, or nulls: not one value
                else:
                    values[chunk.path_in_schema].update((stats.min, stats.max))
    constant: dict[str, str] = {}
    for name in reversed(LINEAGE_COLUMNS):  # a suffix of the columns, so that they keep their order
        value = values[name].pop() if len(values[name]) == 1 else None
        if isinstance(value, str):
            constant[name] = value
        elif isinstance(value, dt.datetime) and value.tzinfo is not None:
            constant[name] = value.isoformat()
        else:
            break
    return constant


def _same_load(published: dict[str, Any] | None, mark: dict[str, Any]) -> bool:
    if not published:
        return False
    if mark["autoflux_load_id"] is not None:
        return published.get("autoflux_load_id") == mark["autoflux_load_id"]
    return published.get("delta_version") == mark["delta_version"]


def _check_identifiers(names: list[str], kind: str) -> None:
    """PostgreSQL cuts identifiers to 63 bytes: two names that become one are an error."""
    seen: dict[bytes, str] = {}
    for name in names:
        key = name.encode()[:MAX_IDENTIFIER]
        if key in seen and seen[key] != name:
            raise TableNameClashError(
                f"{kind} names {seen[key]!r} and {name!r} become the same PostgreSQL identifier "
                f"(identifiers are cut to {MAX_IDENTIFIER} bytes)",
                hint="rename one of the files (or columns) so their first 63 bytes differ",
            )
        seen[key] = name


def _postgres_type(field: pa.Field, table: str) -> tuple[str, pa.DataType]:
    """The PostgreSQL column type for an Arrow field, and the Arrow type the binary COPY sends for it (:mod:`.pg_copy`)."""
    kind = field.type
    if pa.types.is_boolean(kind):
        return "boolean", kind
    if pa.types.is_integer(kind):
        width = kind.bit_width + (8 if pa.types.is_unsigned_integer(kind) else 0)
        if width <= 16:
            return "smallint", pa.int16()
        if width <= 32:
            return "integer", pa.int32()
        if width <= 64 and not pa.types.is_uint64(kind):
            return "bigint", pa.int64()
        return "numeric(20,0)", pa.decimal128(20, 0)
    if pa.types.is_float16(kind) or pa.types.is_float32(kind):
        return "real", pa.float32()
    if pa.types.is_float64(kind):
        return "double precision", kind
    if pa.types.is_decimal(kind):
        return f"numeric({kind.precision},{kind.scale})", kind
    if pa.types.is_date(kind):
        return "date", pa.date32()
    if pa.types.is_timestamp(kind):
        return ("timestamptz" if kind.tz else "timestamp"), pa.timestamp("us", tz=kind.tz)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return "text", pa.string()
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_binary_view(kind):
        return "bytea", pa.binary()
    raise EngineError(
        f"raw.{table} column {field.name!r} has type {kind}, which the postgres engine cannot load",
        hint="hint a plain type for it in ingest.types (autoflux.yml)",
    )


def _typed_by_its_values(field: pa.Field) -> bool:
    """Whether ADBC's ``field`` is a constrained ``numeric``, which :func:`_plain` makes a decimal unless a value does not fit one."""
    metadata = field.metadata or {}
    return metadata.get(b"POSTGRESQL:type") == b"numeric" and int(metadata.get(b"POSTGRESQL:typmod", b"-1")) >= 4


def _plain(data: pa.Table) -> pa.Table:
    """ADBC's result without driver metadata; numeric as decimal (double when unconstrained)."""
    fields, columns = [], []
    for field, column in zip(data.schema, data.columns, strict=False):
        metadata = field.metadata or {}
        if isinstance(field.type, pa.BaseExtensionType):
            column = pa.chunked_array([chunk.storage for chunk in column.chunks], field.type.storage_type)
        if metadata.get(b"POSTGRESQL:type") == b"numeric":
            typmod = int(metadata.get(b"POSTGRESQL:typmod", b"-1"))
            if typmod >= 4:
                precision, scale = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
                kind = pa.decimal128(precision, scale) if precision <= 38 else pa.decimal256(precision, scale)
            else:
                kind = pa.float64()
            try:
                column = column.cast(kind)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = column.cast(pa.float64())  # NaN or a value the decimal cannot hold
        fields.append(pa.field(field.name, column.type))
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
