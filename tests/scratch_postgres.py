"""The PostgreSQL the tests use (127.0.0.1:5432, trust auth, user postgres; AUTOFLUX_TEST_PG* override):
SQL as the admin user, and scratch databases named ``autoflux_test_<session>_<n>``, dropped at the end."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from typing import Any

HOST = os.environ.get("AUTOFLUX_TEST_PGHOST", "127.0.0.1")
PORT = int(os.environ.get("AUTOFLUX_TEST_PGPORT", "5432"))
ADMIN_USER = os.environ.get("AUTOFLUX_TEST_PGUSER", "postgres")


def admin_uri(database: str = "postgres") -> str:
    return f"postgresql://{ADMIN_USER}@{HOST}:{PORT}/{database}"


@dataclass
class Postgres:
    """The test server: SQL as the admin user, and scratch databases."""

    prefix: str
    created: list[str] = field(default_factory=list)
    counter: Any = field(default_factory=itertools.count)

    def connect(self, database: str = "postgres", *, autocommit: bool = True):
        from adbc_driver_postgresql import dbapi

        return dbapi.connect(admin_uri(database), autocommit=autocommit)

    def query(self, database: str, sql: str) -> list[tuple]:
        with self.connect(database) as connection, connection.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def create_database(self) -> str:
        name = f"{self.prefix}_{next(self.counter)}"
        self.query("postgres", f'create database "{name}"')
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        for name in self.created:
            self.query("postgres", f'drop database if exists "{name}" with (force)')

    def engine_settings(self, database: str, **extra: Any) -> dict[str, Any]:
        return {"type": "postgres", "host": HOST, "port": PORT, "user": ADMIN_USER, "database": database, **extra}
