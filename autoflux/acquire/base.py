"""What every way of acquiring shares: the result, the progress callback and the retry policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str, int, int | None], None]


@dataclass(frozen=True)
class Acquired:
    """What :func:`acquire` fetched.

    ``path`` is the local folder (or single file) holding the data files, archives unpacked;
    ``from_cache`` is True when nothing was downloaded because the cache was complete;
    ``downloaded_bytes`` counts the bytes received over the network by this call;
    ``note`` says, in one line, what the check of a cached copy found when it is worth telling
    (the source changed and was fetched again, or could not be checked and the cache was used).
    """

    source: str
    path: Path
    from_cache: bool
    downloaded_bytes: int
    note: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How downloads retry on timeouts, dropped connections, 429 and 5xx answers.

    ``attempts`` counts every try (1 = no retry); the delay before try n+1 is
    ``backoff * 2**(n-1)`` seconds, capped at ``max_backoff``; ``timeout`` bounds connecting
    and each read, in seconds.
    """

    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    timeout: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based)."""
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
