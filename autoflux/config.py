"""Typed configuration: ``autoflux.yml`` in the workspace, overridden by ``AUTOFLUX__SECTION__KEY``.

Environment values are parsed as YAML scalars, so ``AUTOFLUX__INGEST__CSV__BLOCK_SIZE=1048576``
is an integer and ``AUTOFLUX__SOURCES='[data, more]'`` a list. An invalid value is a
:class:`ConfigError` naming the key, the bad value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from autoflux.engine_settings import ENGINE_SETTINGS, DuckDBSettings, EngineSettings
from autoflux.exceptions import ConfigError

CONFIG_FILE = "autoflux.yml"
ENV_PREFIX = "AUTOFLUX__"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _blank_is_default(cls, value: Any) -> Any:
        return {} if value is None else value  # a section whose keys are all commented out


class ReaderSettings(Section):
    pattern: str = Field(description="glob matched against the file's path inside its source, or its name")
    reader: str = Field(description="'package.module:function' or 'file.py:function' (relative to the workspace)")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword arguments passed to the reader")


# pandas' and Arrow's missing-value spellings: a CSV field equal to one of them is null, in every column.
DEFAULT_NULL_VALUES = (
    "",
    "#N/A",
    "#N/A N/A",
    "#NA",
    "-1.#IND",
    "-1.#QNAN",
    "-NaN",
    "-nan",
    "1.#IND",
    "1.#QNAN",
    "<NA>",
    "N/A",
    "NA",
    "NULL",
    "NaN",
    "None",
    "n/a",
    "nan",
    "null",
)


class CsvSettings(Section):
    delimiter: str | None = None
    encoding: str | None = None
    block_size: int = Field(4 << 20, ge=1 << 16)
    null_values: list[str] = Field(
        default_factory=lambda: list(DEFAULT_NULL_VALUES), description="field texts read as null, in every column"
    )


WriteMode = Literal["replace", "append", "merge"]
SchemaPolicy = Literal["evolve", "freeze", "rescue"]


class TableSettings(Section):
    """``ingest.tables.<table>``: how loads change one raw table (unset keys follow ``ingest``)."""

    mode: WriteMode | None = None
    key: list[str] = Field(default_factory=list, description="merge: the columns that identify a row")
    schema_: SchemaPolicy | None = Field(None, alias="schema")
    files: list[str] = Field(default_factory=list, description="globs of the files (paths inside their source) whose union is this table")
    on_missing: Literal["remove", "keep"] = Field("remove", description="a file of this table that is gone: its rows are removed, or kept")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BadRowSettings(Section):
    """``ingest.bad_rows``: how many unparseable rows a file may have (they go to the quarantine table)."""

    max_count: int = Field(0, ge=0)
    max_fraction: float = Field(0.0, ge=0, le=1)


class IngestSettings(Section):
    csv: CsvSettings = Field(default_factory=CsvSettings)
    types: dict[str, dict[str, str]] = Field(default_factory=dict)
    readers: list[ReaderSettings] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    group: bool = Field(True, description="files named as parts or a series become one table; false: one table per file")
    mode: WriteMode = "replace"
    schema_: SchemaPolicy = Field("evolve", alias="schema")
    tables: dict[str, TableSettings] = Field(default_factory=dict)
    bad_rows: BadRowSettings = Field(default_factory=BadRowSettings)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _merge_needs_a_key(self) -> IngestSettings:
        for name, table in self.tables.items():
            merged = (table.mode or self.mode) == "merge"
            if merged != bool(table.key):
                message = "mode merge needs the key columns" if merged else "a key is only used by mode merge"
                error = PydanticCustomError("key", message)
                detail = InitErrorDetails(type=error, loc=("tables", name, "key"), input=table.key)
                raise ValidationError.from_exception_data("ingest", [detail])
        return self


class DbtSettings(Section):
    project_dir: str = "dbt"
    test: bool = True
    threads: int = Field(1, ge=1)


CheckKind = Literal["schema", "drift", "leakage", "adversarial"]


class ChecksSettings(Section):
    """``ml.checks``: the train/test checks the hand-off runs on the engine, and their thresholds."""

    enabled: bool = True
    fail_on: list[CheckKind] = Field(default_factory=list, description="kinds of flag that make the hand-off refuse")
    bins: int = Field(20, ge=2, le=100, description="quantile bins of a numeric feature (drift and leakage)")
    max_categories: int = Field(100, ge=2, description="a text feature with more distinct train values is not binned")
    psi: float = Field(0.2, gt=0, description="drift: flag a feature whose population stability index is above")
    unseen: float = Field(0.05, ge=0, le=1, description="drift: flag a share of test rows with categories unseen in train above")
    leakage: float = Field(0.95, gt=0, le=1, description="leakage: flag a feature whose binned AUC / lift / R² on train reaches")
    id_unique: float = Field(0.99, gt=0, le=1, description="leakage: a feature with this share of distinct values per row is id-like")
    copied_rows: float = Field(0.0, ge=0, le=1, description="leakage: flag when more than this share of test rows copy a train row")
    adversarial: bool = Field(False, description="train a model telling train from test rows (needs autoflux[ml])")
    adversarial_auc: float = Field(0.75, gt=0.5, le=1, description="flag when that model's AUC is above")
    adversarial_rows: int = Field(50_000, ge=100, description="rows sampled from each split for it")


class MLSettings(Section):
    table: str = "ml_training_set"
    schema_: str = Field("marts", alias="schema")
    train_table: str = "train"
    test_table: str = "test"
    split_column: str = "split"
    target: str | None = None
    id: str | None = None
    format: Literal["pandas", "polars", "arrow", "spark"] = "pandas"
    checks: ChecksSettings = Field(default_factory=ChecksSettings)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Config(Section):
    """Everything ``autoflux.yml`` may hold."""

    engine: EngineSettings = Field(default_factory=DuckDBSettings)
    lake: str = "lake"
    sources: list[str] = Field(default_factory=list)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    dbt: DbtSettings = Field(default_factory=DbtSettings)
    ml: MLSettings = Field(default_factory=MLSettings)

    @field_validator("engine", mode="before")
    @classmethod
    def _engine_by_type(cls, value: Any) -> Any:
        if isinstance(value, BaseModel):
            return value
        settings = dict(value or {})
        kind = settings.get("type", "duckdb")
        if kind not in ENGINE_SETTINGS:
            expected = ", ".join(repr(k) for k in ENGINE_SETTINGS)
            detail = InitErrorDetails(type="literal_error", loc=("type",), input=kind, ctx={"expected": expected})
            raise ValidationError.from_exception_data("engine", [detail])
        chosen = ENGINE_SETTINGS[kind]
        # Keys of other engines are ignored, so AUTOFLUX__ENGINE__TYPE can switch a file written for another engine.
        others = {key for name, other in ENGINE_SETTINGS.items() if name != kind for key in other.model_fields}
        return chosen.model_validate({k: v for k, v in settings.items() if k in chosen.model_fields or k not in others})


def load_config(path: Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """The config in ``path`` (defaults when None or missing) with environment overrides applied."""
    data: dict[str, Any] = {}
    if path is not None and path.exists():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise ConfigError(
                f"not valid YAML: {getattr(error, 'problem', error)}",
                path=path,
                line=mark.line + 1 if mark else None,
                hint="fix the YAML syntax",
            ) from None
        if not isinstance(data, dict):
            raise ConfigError("the top level must be a mapping of sections", path=path)
    overridden = _apply_environment(data, os.environ if environ is None else environ)
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        raise _config_error(error, path, overridden) from None


def _apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    overridden: dict[str, str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        if not keys:
            continue
        node = data
        for key in keys[:-1]:
            if node.get(key) is None:
                node[key] = {}
            node = node[key]
            if not isinstance(node, dict):
                raise ConfigError(f"{name} sets a key inside {key!r}, which is not a section")
        try:
            node[keys[-1]] = yaml.safe_load(raw) if raw != "" else None
        except yaml.YAMLError:
            node[keys[-1]] = raw
        overridden[".".join(keys)] = name
    return overridden


def _config_error(error: ValidationError, path: Path | None, overridden: dict[str, str]) -> ConfigError:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"] if not str(part).startswith("function-"))
    origin = overridden.get(key) or next((v for k, v in overridden.items() if key.startswith(f"{k}.") or k.startswith(f"{key}.")), None)
    where = f"{origin} (environment)" if origin else str(path or CONFIG_FILE)
    if first["type"] == "extra_forbidden":
        return ConfigError(f"unknown key {key!r}", path=where, hint="remove it or check its spelling and section")
    message = first["msg"].removeprefix("Value error, ")
    return ConfigError(f"{key} = {first.get('input')!r}: {message}", path=where, hint=_allowed(first))


def _allowed(error: dict[str, Any]) -> str | None:
    expected = (error.get("ctx") or {}).get("expected")
    return f"allowed: {expected}" if expected else None
