"""Errors AutoFlux raises on purpose.

Every error is a value with fields: what went wrong (``message``), where (``path``, ``line``,
``column`` when known), what to do about it (``hint``) and whether trying again may help
(``retryable``). The CLI prints ``str(error)`` as one line and exits 1; anything else is a bug.
"""

from __future__ import annotations

from pathlib import Path


class AutoFluxError(Exception):
    """Base class of every error AutoFlux raises on purpose."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        path: str | Path | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f", line {self.line}"
        if self.column is not None:
            where += f", column {self.column!r}"
        text = f"{where}: {self.message}" if where else self.message
        return f"{text} — {self.hint}" if self.hint else text


class ConfigError(AutoFluxError):
    """autoflux.yml or an AUTOFLUX__* variable holds a value that is not allowed."""


class WorkspaceError(AutoFluxError):
    """The workspace is missing, incomplete or already exists."""


class MissingDependencyError(AutoFluxError):
    """An optional extra is needed for what was asked."""

    def __init__(self, what: str, *, extra: str, package: str) -> None:
        super().__init__(
            f"{what} needs the Python package {package!r}, which is not installed",
            hint=f'pip install "autoflux[{extra}]"',
        )
        self.extra = extra
        self.package = package


class AcquireError(AutoFluxError):
    """A source could not be fetched (download, Kaggle, object store, archive)."""


class SourceNotFoundError(AcquireError):
    """The source does not exist (missing folder, HTTP 404, unknown competition)."""


class CredentialsError(AcquireError):
    """Credentials are missing or refused."""


class UnsafeArchiveError(AcquireError):
    """An archive entry escapes its target folder or the archive expands past the limit."""


class IngestError(AutoFluxError):
    """A data file could not be turned into a raw table."""


class TableNameClashError(IngestError):
    """Two data files would become the same raw table."""


class TransformError(AutoFluxError):
    """dbt failed: a model did not build or a test did not pass."""


class EngineError(AutoFluxError):
    """The engine (DuckDB, Spark, PostgreSQL) could not be reached or refused a statement."""


class TableNotFoundError(AutoFluxError):
    """A table asked for does not exist in the lake or the engine."""


class ReproduceError(AutoFluxError):
    """Frames cannot be rebuilt as a manifest recorded them (a version vacuumed, models changed, hashes differ)."""


class ChecksFailedError(AutoFluxError):
    """Train/test checks raised flags of a kind ``ml.checks.fail_on`` names; the hand-off refuses."""

    def __init__(self, flags: list[dict], *, path: str | Path | None = None) -> None:
        listed = "; ".join(f"{f['kind']}: {f['message']}" for f in flags)
        super().__init__(
            f"the hand-off refuses: {listed}",
            hint=f"fix the data or the mart, or drop these kinds from ml.checks.fail_on (manifest: {path})",
        )
        self.flags = flags
