"""One raw table of a workspace on any engine: set its policy, load CSV text into it, read it back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
from ingesting import run_ingest

from autoflux.engines import create_engine
from autoflux.ingest import FileResult, IngestReport
from autoflux.ingest.schema import LINEAGE_COLUMNS
from autoflux.workspace import Workspace


class Loads:
    """``raw.<table>`` of the workspace at ``root``, loaded from ``folder/<table>.csv``."""

    def __init__(self, root: Path, table: str, folder: Path, configure: Callable) -> None:
        self.root, self.table, self.folder, self.configure = root, table, folder, configure
        self.file = folder / f"{table}.csv"
        folder.mkdir()

    def policy(self, mode: str = "replace", schema: str = "evolve", key: list[str] | None = None) -> None:
        entry = {"mode": mode, "schema": schema} | ({"key": key} if key else {})
        self.configure(self.root, {"ingest": {"tables": {self.table: entry}}})

    def load(self, text: str) -> FileResult:
        self.file.write_text(text)
        return self.run()

    def ingest(self, *, force: bool = False) -> IngestReport:
        return run_ingest(Workspace.open(self.root), [self.folder], force=force)

    def run(self, *, force: bool = False) -> FileResult:
        (result,) = self.ingest(force=force).files
        return result

    @property
    def engine(self):
        return create_engine(Workspace.open(self.root))

    def table_rows(self) -> pa.Table:
        return self.engine.raw_store().read(self.table)

    def data(self) -> list[dict]:
        """Rows without lineage, sorted by id."""
        return sorted(self.table_rows().drop_columns(list(LINEAGE_COLUMNS)).to_pylist(), key=lambda r: r["id"])

    def types(self) -> dict[str, str]:
        return {f.name: str(f.type) for f in self.engine.raw_store().table(self.table).schema if f.name not in LINEAGE_COLUMNS}

    def version(self) -> int | None:
        return self.engine.raw_store().table(self.table).version
