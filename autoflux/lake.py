"""The lake: Delta tables under ``<lake>/<schema>/<table>``, on a local path or an object store.

On an object store, delta-rs and fsspec take credentials from the store's usual environment
(``AWS_ACCESS_KEY_ID``…, ``GOOGLE_APPLICATION_CREDENTIALS``, ``AZURE_STORAGE_*``); AutoFlux adds
only where the store is (:func:`storage_options`), never a secret, so nothing secret is written
into the dbt project.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from autoflux.exceptions import ConfigError, TableNotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

RAW = "raw"
SYSTEM = "_autoflux"
# What delta-rs cannot take in a local path: it panics on these characters, and reads %20 as a space.
_NOT_FOR_DELTA = re.compile(r"[\[\]^|\\]|%[0-9A-Fa-f]{2}")


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
            uri = location.rstrip("/")
            return cls(uri, storage_options(uri))
        path = Path(location.removeprefix("file://")).expanduser()
        path = path if path.is_absolute() else (base / path).resolve()
        if found := _NOT_FOR_DELTA.search(path.as_posix()):
            raise ConfigError(
                f"the lake's folder {path} has {found.group()!r} in its path, which delta-rs (the Delta Lake library) cannot use",
                hint="move the workspace to a folder whose path has none of [ ] ^ | \\ or %XX, or set lake: in autoflux.yml to one",
            )
        return cls(str(path))

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

    def read_appended(self, schema: str, table: str, columns: list[str] | None = None) -> pa.Table:
        """A table AutoFlux only appends to (the load log, the quarantine) as Arrow, in the order of its files.

        In a lake on a local folder its files are read one by one with ``pyarrow.parquet``: ``DeltaTable.to_pyarrow_table``
        goes through ``pyarrow.dataset``, whose import alone (it imports pandas) takes longer than a run
        that changed nothing spends reading the load log. A column a file lacks (written before the column
        was added) reads as null in that file's rows.
        """
        delta = self.open(schema, table)
        if not self.is_local:
            return delta.to_pyarrow_table(columns=columns)
        import pyarrow as pa
        import pyarrow.parquet as pq

        whole = pa.schema(delta.schema().to_arrow())
        wanted = whole if columns is None else pa.schema([whole.field(name) for name in columns])
        parts = []
        for path in data_files(delta):
            parquet = pq.ParquetFile(path)
            present = set(parquet.schema_arrow.names)
            part = parquet.read(columns=[name for name in wanted.names if name in present])
            arrays = [part[f.name].cast(f.type) if f.name in present else pa.nulls(part.num_rows, f.type) for f in wanted]
            parts.append(pa.Table.from_arrays(arrays, schema=wanted))
        return pa.concat_tables(parts) if parts else wanted.empty_table()

    def tables(self, schema: str = RAW) -> list[str]:
        """Names of the Delta tables in ``schema``, sorted."""
        if self.is_local:
            folder = Path(self.uri) / schema
            names = [p.name for p in folder.iterdir() if (p / "_delta_log").is_dir()] if folder.is_dir() else []
        else:
            fs, root = self.filesystem(f"{self.uri}/{schema}")
            fs.invalidate_cache()  # fsspec keeps listings per process: another process may have added tables
            names = (
                [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False) if fs.exists(f"{p}/_delta_log")]
                if fs.exists(root)
                else []
            )
        return sorted(names)

    def filesystem(self, uri: str) -> tuple[Any, str]:
        """The filesystem (fsspec, with the lake's storage options) and path of ``uri``, a location in the lake."""
        import fsspec

        return fsspec.core.url_to_fs(uri, **fsspec_options(uri))

    def copy_folder(self, uri: str, target: Lake, target_uri: str) -> None:
        """Copy the files under ``uri`` (in this lake) to ``target_uri`` in ``target``, streamed file by file."""
        import shutil

        fs, root = self.filesystem(uri)
        out, out_root = target.filesystem(target_uri)
        for path in fs.find(root):
            destination = f"{out_root}/{path[len(root.rstrip('/')) + 1 :]}"
            out.makedirs(destination.rsplit("/", 1)[0], exist_ok=True)
            with fs.open(path, "rb") as reader, out.open(destination, "wb") as writer:
                shutil.copyfileobj(reader, writer)


def data_files(delta: DeltaTable) -> list[str]:
    """Where the data files of ``delta``'s version are, in its log's order: local paths, or URIs on an object store.

    delta-rs gives them percent-encoded (a space as ``%20``, ``é`` as ``%C3%A9``); these are the names as stored.
    """
    return [unquote(uri.removeprefix("file://")) for uri in delta.file_uris()]


def s3_endpoint() -> str | None:
    """The S3-compatible endpoint the environment names (``AWS_ENDPOINT_URL_S3``, else ``AWS_ENDPOINT_URL``)."""
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def storage_options(uri: str) -> dict[str, str]:
    """delta-rs settings for a lake at ``uri`` read from the environment: where the store is
    (an S3-compatible endpoint, an emulator), never credentials (delta-rs reads those itself)."""
    protocol = uri.split("://", 1)[0].lower()
    options: dict[str, str] = {}
    if protocol in ("s3", "s3a"):
        if endpoint := s3_endpoint():
            options["AWS_ENDPOINT_URL"] = endpoint
            if endpoint.startswith("http://"):
                options["AWS_ALLOW_HTTP"] = "true"
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["AWS_REGION"] = region
    elif protocol in ("az", "abfs", "abfss", "azure"):
        endpoint = os.environ.get("AZURE_STORAGE_ENDPOINT") or _connection_string_part("BlobEndpoint")
        if endpoint:
            options["AZURE_STORAGE_ENDPOINT"] = endpoint.rstrip("/")
            if endpoint.startswith("http://"):
                options["AZURE_ALLOW_HTTP"] = "true"
        account = os.environ.get("AZURE_STORAGE_ACCOUNT_NAME") or _connection_string_part("AccountName")
        if account:
            options["AZURE_STORAGE_ACCOUNT_NAME"] = account
    return options


def _connection_string_part(key: str) -> str | None:
    """A non-secret part (``BlobEndpoint``, ``AccountName``) of AZURE_STORAGE_CONNECTION_STRING."""
    for part in os.environ.get("AZURE_STORAGE_CONNECTION_STRING", "").split(";"):
        name, _, value = part.partition("=")
        if name.strip() == key and value.strip():
            return value.strip()
    return None


def fsspec_options(uri: str) -> dict[str, str]:
    """fsspec settings for ``uri`` from the environment (the same endpoint as :func:`storage_options`)."""
    protocol = uri.split("://", 1)[0].lower()
    if protocol in ("s3", "s3a"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return {"endpoint_url": endpoint} if endpoint else {}
    return {}
