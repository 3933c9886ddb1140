"""What "the same table on every engine" means: types of one family, values equal (floats within 1e-9).

Shared by the engine-parity tests (tests/integration/test_engine_parity.py) and the corpus's
cross-engine test (tests/corpus/test_corpus_engines.py).
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa


def family(kind: pa.DataType) -> str:
    """Types that map to each other across engines share a family."""
    checks = [
        ("integer", pa.types.is_integer),
        ("float", pa.types.is_floating),
        ("decimal", pa.types.is_decimal),
        ("boolean", pa.types.is_boolean),
        ("date", pa.types.is_date),
        ("timestamp", pa.types.is_timestamp),
        ("string", lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)),
    ]
    return next((name for name, check in checks if check(kind)), str(kind))


def same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or math.isclose(left, right, rel_tol=1e-9, abs_tol=1e-12)
    return left == right
