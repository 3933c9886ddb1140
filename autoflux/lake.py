"""The lake: Delta tables under ``<lake>/<schema>/<table>``, on a local path or an object store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoflux.exceptions import TableNotFoundError

if TYPE_CHECKING:
    from deltalake import DeltaTable

RAW = "raw"
SYSTEM = "_autoflux"


def is_uri(location: str) -> bool:
    return "://" in location


@dataclass(frozen=True)
class Lake:
    """Delta tables under ``uri`` (an absolute local path or a URI such as ``s3://bucket/lake``)."""

    uri: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def at(cls, location: str, *, base: Path) -> Lake:
        if is_uri(location) and not location.startswith("file://"):
            return cls(location.rstrip("/"))
        path = Path(location.removeprefix("file://")).expanduser()
        return cls(str(path if path.is_absolute() else (base / path).resolve()))

    @property
    def is_local(self) -> bool:
        return not is_uri(self.uri)

    def table_uri(self, schema: str, table: str) -> str:
        return f"{self.uri}/{schema}/{table}"

    def exists(self, schema: str, table: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self.table_uri(schema, table), storage_options=self.storage_options or None)

    def open(self, schema: str, table: str, *, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable

        if not self.exists(schema, table):
            raise TableNotFoundError(f"no table {schema}.{table} in the lake at {self.uri}", hint="run `autoflux ingest` first")
        return DeltaTable(self.table_uri(schema, table), version=version, storage_options=self.storage_options or None)

    def tables(self, schema: str = RAW) -> list[str]:
        """Names of the Delta tables in ``schema``, sorted."""
        if self.is_local:
            folder = Path(self.uri) / schema
            names = [p.name for p in folder.iterdir() if (p / "_delta_log").is_dir()] if folder.is_dir() else []
        else:
            fs, root = self.filesystem(f"{self.uri}/{schema}")
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False) if fs.exists(f"{p}/_delta_log")] if fs.exists(root) else []
        return sorted(names)

    def filesystem(self, uri: str) -> tuple[Any, str]:
        """The filesystem (fsspec, with the lake's storage options) and path of ``uri``, a location in the lake."""
        import fsspec

        return fsspec.core.url_to_fs(uri, **self.storage_options)
