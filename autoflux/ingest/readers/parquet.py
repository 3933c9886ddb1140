"""Parquet files, streamed in batches."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.readers import Columns


def read_parquet(path: Path, batch_rows: int = 65_536) -> Columns:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(str(path))
    except (pa.ArrowInvalid, OSError) as error:
        raise IngestError(f"not a readable Parquet file ({error})", path=path, hint="check the file is complete") from None
    schema = parquet.schema_arrow
    return Columns(schema.names, schema.types, parquet.iter_batches(batch_size=batch_rows))
