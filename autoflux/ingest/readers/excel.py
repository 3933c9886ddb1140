"""Excel workbooks (.xlsx, .xlsm, .xls): one sheet, read whole."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from autoflux.exceptions import IngestError
from autoflux.ingest.readers import Columns, mixed_array


def read_excel(path: Path, sheet: str | None) -> Columns:
    """One sheet of a workbook (the first when ``sheet`` is None); its first row is the header."""
    from python_calamine import CalamineWorkbook

    try:
        workbook = CalamineWorkbook.from_path(str(path))
        rows = workbook.get_sheet_by_name(sheet or workbook.sheet_names[0]).to_python(skip_empty_area=True)
    except Exception as error:  # calamine raises its own exception types
        raise IngestError(f"not a readable Excel workbook ({error})", path=path, hint="re-save it as .xlsx") from None
    if len(rows) < 2:
        raise IngestError(f"sheet {sheet!r} has no header and data rows", path=path, hint="add data or remove the sheet")
    header = [str(h) if h is not None else "" for h in rows[0]]
    columns = zip(*(list(row) + [None] * (len(header) - len(row)) for row in rows[1:]), strict=False)
    arrays = [_excel_array(list(values)) for values in columns]
    table = pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))])
    return Columns(header, [a.type for a in arrays], iter(table.to_batches()))


def _excel_array(values: list[Any]) -> pa.Array:
    """Excel stores every number as a double: a column of whole numbers is read as integers."""
    cleaned = [None if v == "" else v for v in values]
    numbers = [v for v in cleaned if isinstance(v, float)]
    if all(_whole(n) for n in numbers) or any(isinstance(v, str) for v in cleaned):
        cleaned = [int(v) if _whole(v) else v for v in cleaned]
    return mixed_array(cleaned)


def _whole(value: Any) -> bool:
    return isinstance(value, float) and value.is_integer() and abs(value) < 2**53
