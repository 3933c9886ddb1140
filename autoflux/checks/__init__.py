"""Train/test checks on the training mart, computed by the engine in SQL: schema, drift, leakage.

A handful of aggregate queries: a profile of each split (rows, nulls, distinct values), quantiles of
train's numeric and date features (dates as epoch days; from a sample where the engine samples),
the binned counts of every feature per split and target class (one GROUP BY per feature, joined by
UNION ALL), the test rows whose features equal a train row's (by a row hash where the engine has
one), one per high-cardinality text feature for unseen categories, and the raw tables' columns.
Everything else is arithmetic on those aggregates (:mod:`.stats`). Thresholds are ``ml.checks``."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autoflux.checks import stats
from autoflux.checks.sql import NUMERIC, Builder, column_kind

if TYPE_CHECKING:
    from autoflux.engines.base import Engine
    from autoflux.workspace import Workspace

FEW_VALUES = 10_000  # an integer or date feature with at most this many distinct train values is grouped by value before binning
QUANTILE_SAMPLE = 100_000  # rows (of train and test) the engine samples to take train's quantiles from, where it samples


@dataclass
class Flag:
    kind: str  # schema, drift, leakage, adversarial
    check: str
    message: str
    column: str | None = None
    value: float | None = None
    threshold: float | None = None


@dataclass
class CheckReport:
    """Flags raised, and the figures behind them per feature."""

    flags: list[Flag] = field(default_factory=list)
    features: dict[str, dict[str, Any]] = field(default_factory=dict)
    copied_rows: int | None = None
    test_rows: int = 0
    train_rows: int = 0
    adversarial: dict[str, Any] | None = None
    seconds: float = 0.0

    def flag(self, kind: str, check: str, message: str, **fields: Any) -> None:
        self.flags.append(Flag(kind, check, message, **fields))

    def as_dict(self) -> dict[str, Any]:
        return {
            "flags": [vars(f) for f in self.flags],
            "features": self.features,
            "rows": {"train": self.train_rows, "test": self.test_rows},
            "copied_rows": self.copied_rows,
            "adversarial": self.adversarial,
            "seconds": round(self.seconds, 3),
        }


def run_checks(
    workspace: Workspace,
    engine: Engine,
    *,
    table: str | None = None,
    target: str | None,
    id_column: str | None,
    features: list[str],
    schema: str | None = None,
) -> CheckReport:
    """Check ``schema.table`` (default: ``ml.schema``.``ml.table``) on ``engine``; ``features`` exclude target and id."""
    ml = workspace.config.ml
    settings = ml.checks
    started = time.perf_counter()
    report = CheckReport()
    sql = Builder(engine, schema or ml.schema_, table or ml.table, ml.split_column)
    types = {f.name: f.type for f in engine.query(sql.columns()).schema}
    kinds = {name: column_kind(types[name]) for name in features if name in types}
    target_kind = column_kind(types[target]) if target in types else None

    profile = stats.profile(engine.query(sql.profile(kinds, target)), kinds, target)
    train, test = profile["train"], profile["test"]
    quantiles_sql = sql.quantiles(kinds, settings.bins, QUANTILE_SAMPLE / max(train["rows"] + test["rows"], 1))
    if quantiles_sql and train["rows"]:
        stats.add_quantiles(train, engine.query(quantiles_sql), kinds)
    report.train_rows, report.test_rows = train["rows"], test["rows"]
    _schema_checks(workspace, engine, report, kinds, target, train, test)
    categorical_target = target is not None and target_kind in ("text", "bool", "integer") and train["target_distinct"] <= 20
    if target_kind == "integer" and not categorical_target:
        target_kind = "number"
    binned = {}
    for name, kind in kinds.items():
        entry = report.features.setdefault(name, {"kind": kind})
        t = train["columns"][name]
        if kind in ("integer", "text") and _id_like(t, train["rows"], settings.id_unique):
            entry["id_like"] = True
            report.flag(
                "leakage",
                "id_like",
                f"{name} looks like an id ({t['distinct']:,} distinct values in {train['rows']:,} train rows)",
                column=name,
                value=t["distinct"] / max(train["rows"], 1),
            )
        if kind in NUMERIC and t["quantiles"]:
            binned[name] = stats.cut_points(t["quantiles"])
        elif kind in ("text", "bool") and t["distinct"] <= settings.max_categories:
            binned[name] = None
        elif kind == "text":
            entry["high_cardinality"] = True
        else:
            entry["skipped"] = f"{kind} columns are not binned"
    if binned and train["rows"] and test["rows"]:
        few = {
            n for n, cuts in binned.items() if cuts is not None and kinds[n] != "number" and train["columns"][n]["distinct"] <= FEW_VALUES
        }
        groups = engine.query(sql.binned(binned, kinds, target if target_kind else None, categorical_target, few))
        for name, result in stats.binned(groups, list(binned), categorical_target, target_kind is not None).items():
            entry = report.features[name]
            entry.update(result)
            if result["psi"] > settings.psi:
                report.flag(
                    "drift",
                    "psi",
                    f"{name} drifts: population stability index {result['psi']:.3f} (threshold {settings.psi})",
                    column=name,
                    value=result["psi"],
                    threshold=settings.psi,
                )
            if kinds[name] in ("text", "bool") and result["unseen"] > settings.unseen:
                report.flag(
                    "drift",
                    "unseen",
                    f"{name}: {result['unseen']:.1%} of test rows have categories unseen in train",
                    column=name,
                    value=result["unseen"],
                    threshold=settings.unseen,
                )
            score = result.get("leak_score")
            if score is not None and score >= settings.leakage:
                report.flag(
                    "leakage",
                    "target_proxy",
                    f"{name} predicts the target almost perfectly on train ({result['leak_metric']} {score:.3f})",
                    column=name,
                    value=score,
                    threshold=settings.leakage,
                )
    high = [n for n, e in report.features.items() if e.get("high_cardinality")]
    if high and test["rows"]:
        for name, share in stats.unseen(engine.query(sql.unseen(high)), high).items():
            report.features[name]["unseen"] = share
            if share > settings.unseen:
                report.flag(
                    "drift",
                    "unseen",
                    f"{name}: {share:.1%} of test rows have values unseen in train",
                    column=name,
                    value=share,
                    threshold=settings.unseen,
                )
    if kinds and train["rows"] and test["rows"]:
        row = engine.query(sql.copied(list(kinds))).to_pylist()[0]
        report.copied_rows = int(row["copied"] or 0)
        share = report.copied_rows / test["rows"]
        if share > settings.copied_rows:
            report.flag(
                "leakage",
                "copied_rows",
                f"{report.copied_rows:,} test rows ({share:.1%}) have the features of a train row",
                value=share,
                threshold=settings.copied_rows,
            )
    if settings.adversarial and train["rows"] and test["rows"]:
        from autoflux.checks.adversarial import adversarial

        report.adversarial = adversarial(engine, sql, kinds, settings.adversarial_rows)
        auc = report.adversarial["auc"]
        if auc > settings.adversarial_auc:
            top = ", ".join(report.adversarial["drivers"][:3])
            report.flag(
                "adversarial",
                "auc",
                f"a model tells test rows from train rows (AUC {auc:.3f}), mostly by {top}",
                value=auc,
                threshold=settings.adversarial_auc,
            )
    report.seconds = time.perf_counter() - started
    return report


def _id_like(column: dict[str, Any], rows: int, unique: float) -> bool:
    return rows >= 20 and column["distinct"] >= unique * rows


def _schema_checks(workspace, engine, report: CheckReport, kinds, target, train, test) -> None:
    ml = workspace.config.ml
    if target is None:
        report.flag("schema", "target", "no target column: set ml.target, or give train a column test lacks")
    elif train["target_count"] == 0:
        report.flag("schema", "target", f"target {target} has no values in train", column=target)
    if target is not None and test["target_count"]:
        report.flag(
            "schema",
            "target",
            f"target {target} has values in {test['target_count']:,} test rows",
            column=target,
            value=test["target_count"],
        )
    for name in kinds:
        in_train, in_test = train["columns"][name]["count"], test["columns"][name]["count"]
        if train["rows"] and test["rows"] and bool(in_train) != bool(in_test):
            split = "train" if in_train else "test"
            report.flag("schema", "one_split", f"{name} has values in {split} only", column=name)
    store = engine.raw_store()
    present = set(store.tables())
    if ml.train_table in present and ml.test_table in present:
        from autoflux.ingest.schema import LINEAGE_COLUMNS

        left = {f.name: f.type for f in store.schema(ml.train_table) if f.name not in LINEAGE_COLUMNS}
        right = {f.name: f.type for f in store.schema(ml.test_table) if f.name not in LINEAGE_COLUMNS}
        for name in sorted(set(left) ^ set(right)):
            if name != target:
                split = "train" if name in left else "test"
                report.flag("schema", "one_split", f"raw.{split} has column {name}, the other split does not", column=name)
        for name in sorted(set(left) & set(right)):
            if left[name] != right[name]:
                report.flag(
                    "schema",
                    "type",
                    f"{name} is {left[name]} in raw.{ml.train_table} but {right[name]} in raw.{ml.test_table}",
                    column=name,
                )
