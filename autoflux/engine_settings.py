"""Each engine's part of ``autoflux.yml`` (the ``engine`` section), keyed by ``type``.

This module imports no engine: loading a config never imports pyspark, ADBC or DuckDB's dbt
adapter. :data:`ENGINE_SETTINGS` is the one registry of engine types; an unknown type is a config
error listing them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class EngineSettings(BaseModel):
    """The ``engine`` section of ``autoflux.yml``; each engine adds its own keys."""

    model_config = ConfigDict(extra="forbid")
    type: str


def _secret_text(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) else value  # never echo a secret in a type error


class DuckDBSettings(EngineSettings):
    """The embedded default: models land in a DuckDB file."""

    type: Literal["duckdb"] = "duckdb"
    path: str = "warehouse.duckdb"
    threads: int | None = None
    memory_limit: str | None = None

    def database(self, root: Path) -> Path:
        """The DuckDB file (``path``, relative to the workspace at ``root``); a ConfigError when DuckDB cannot
        open it: it takes a ``?`` in a file's path for the start of options, and then finds no such file."""
        from autoflux.exceptions import ConfigError

        database = root / Path(self.path).expanduser()  # an absolute path stays as it is
        if "?" in str(database):
            raise ConfigError(
                f"the DuckDB database {database} has '?' in its path, which DuckDB cannot open",
                hint="move the workspace to a folder whose path has no '?', or set engine.path in autoflux.yml to one",
            )
        return database


class PostgresSettings(EngineSettings):
    """Where to connect; unset keys come from ``url``, then libpq's ``PG*`` variables."""

    type: Literal["postgres"] = "postgres"
    url: SecretStr | None = None
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: SecretStr | None = None
    database: str | None = None
    sslmode: str | None = None
    connect_timeout: int = 10

    _text = field_validator("url", "password", mode="before")(_secret_text)


class MetastoreSettings(BaseModel):
    """``engine.metastore``: where Spark's Hive catalog keeps its tables."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["derby", "postgres"] = "derby"
    path: str = ".autoflux/metastore_db"
    url: str | None = None
    user: str | None = None
    password: SecretStr | None = None
    driver_jar: str = "/usr/share/java/postgresql.jar"

    _text = field_validator("password", mode="before")(_secret_text)


class SparkSettings(EngineSettings):
    """Spark: local, a cluster or Spark Connect; see the README's Spark section."""

    type: Literal["spark"] = "spark"
    master: str = "local[*]"
    app_name: str = "autoflux"
    format: Literal["delta", "parquet"] = "delta"
    warehouse: str = "warehouse"
    metastore: MetastoreSettings = Field(default_factory=MetastoreSettings)
    delta_version: str | None = None
    packages: list[str] = Field(default_factory=list)
    conf: dict[str, str] = Field(default_factory=dict)
    thrift_host: str | None = None
    thrift_port: int = 10000
    connect_timeout: float = Field(5.0, gt=0)

    @field_validator("conf", mode="before")
    @classmethod
    def _strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


ENGINE_SETTINGS: dict[str, type[EngineSettings]] = {
    "duckdb": DuckDBSettings,
    "postgres": PostgresSettings,
    "spark": SparkSettings,
}
