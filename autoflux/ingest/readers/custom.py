"""Custom readers (``ingest.readers``): a user's function that returns Arrow data or a DataFrame."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from autoflux.exceptions import ConfigError, IngestError
from autoflux.ingest.readers import Columns


def load_callable(spec: str, *, base_dir: Path) -> Callable[..., Any]:
    """Import ``"package.module:function"`` or ``"path/to/file.py:function"`` (relative to ``base_dir``)."""
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ConfigError(f"reader {spec!r} must look like 'module:function' or 'file.py:function'")
    try:
        if module_name.endswith(".py"):
            file = (base_dir / module_name).resolve()
            module_spec = importlib.util.spec_from_file_location(f"autoflux_reader_{file.stem}", file)
            if module_spec is None or module_spec.loader is None or not file.exists():
                raise ImportError(f"no such file {file}")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_spec.name] = module
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
        return getattr(module, attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(f"cannot load reader {spec!r}: {error}", hint="check ingest.readers in autoflux.yml") from None


def read_custom(path: Path, function: Callable[..., Any], options: dict[str, Any]) -> Columns:
    """Run a user reader; it may return a RecordBatchReader, Arrow table, batches, or a pandas/polars frame."""
    try:
        result = function(path, **options)
        table_or_reader = _to_arrow(result)
    except IngestError:
        raise
    except Exception as error:
        raise IngestError(f"custom reader failed: {type(error).__name__}: {error}", path=path, hint="fix the reader") from None
    if isinstance(table_or_reader, pa.Table):
        return Columns(table_or_reader.schema.names, table_or_reader.schema.types, iter(table_or_reader.to_batches()))
    return Columns(table_or_reader.schema.names, table_or_reader.schema.types, iter(table_or_reader))


def _to_arrow(result: Any) -> pa.Table | pa.RecordBatchReader:
    if isinstance(result, pa.RecordBatchReader | pa.Table):
        return result
    if isinstance(result, pa.RecordBatch):
        return pa.Table.from_batches([result])
    if hasattr(result, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(result)
    if type(result).__module__.startswith("pandas"):
        return pa.Table.from_pandas(result, preserve_index=False)
    if isinstance(result, Iterable):
        batches = iter(result)
        first = next(batches, None)
        if first is None:
            raise TypeError("the reader yielded no batches")
        first = first if isinstance(first, pa.RecordBatch) else pa.record_batch(first)

        def chained() -> Iterator[pa.RecordBatch]:
            yield first
            yield from batches

        return pa.RecordBatchReader.from_batches(first.schema, chained())
    raise TypeError(f"a reader must return Arrow data or a DataFrame, not {type(result).__name__}")
