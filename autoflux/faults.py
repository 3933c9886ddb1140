"""Fault injection for crash tests: ``AUTOFLUX_FAULT=<point>[:<n>]`` SIGKILLs the process the n-th time it reaches ``point``.

Points: ``parse`` (a batch of a file was read), ``write`` (the writer has every row of a file, its
commit is not made), ``publish`` (the PostgreSQL engine: a file's data commit is made, the copy of its rows in
PostgreSQL not yet committed), ``commit`` (a file's data commit is made, nothing recorded about it yet),
``log`` (the run is recording its loads: quarantined rows published, the load log not yet updated).
Without the variable this does nothing.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_reached: Counter[str] = Counter()


def fault(point: str) -> None:
    spec = os.environ.get("AUTOFLUX_FAULT")
    if not spec:
        return
    name, _, count = spec.partition(":")
    if name == point:
        _reached[point] += 1
        if _reached[point] >= int(count or 1):
            os.kill(os.getpid(), signal.SIGKILL)
