"""Arithmetic on the checks' aggregates: PSI, unseen categories, binned AUC / lift / R²."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyarrow as pa


def profile(result: pa.Table, kinds: dict[str, str], target: str | None) -> dict[str, dict[str, Any]]:
    """The profile query's rows as ``{"train": {...}, "test": {...}}`` (zeros for a split with no rows)."""
    rows = {r["af_s"]: r for r in result.to_pylist()}
    out = {}
    for split, flag in (("train", 1), ("test", 0)):
        row = rows.get(flag, {})
        columns = {}
        for i, name in enumerate(kinds):
            columns[name] = {"count": int(row.get(f"n{i}") or 0), "distinct": int(row.get(f"d{i}") or 0), "quantiles": []}
        out[split] = {
            "rows": int(row.get("rows_") or 0),
            "columns": columns,
            "target_count": int(row.get("target_count") or 0) if target else 0,
            "target_distinct": int(row.get("target_distinct") or 0) if target else 0,
        }
    return out


def add_quantiles(train: dict[str, Any], result: pa.Table, kinds: dict[str, str]) -> None:
    """Train's quantiles (rows of ``Builder.quantiles``) into its profile."""
    found = result.to_pylist()[0] if result.num_rows else {}
    for i, name in enumerate(kinds):
        train["columns"][name]["quantiles"] = [float(v) for v in found.get(f"q{i}") or [] if v is not None]


def cut_points(quantiles: list[float]) -> list[float]:
    """Distinct, finite, sorted quantiles: a value below the k-th cut point falls into bin k."""
    return sorted({q for q in quantiles if math.isfinite(q)})


class _Null:
    """The bin of null values (a key no category equals)."""

    def __repr__(self) -> str:
        return "<null>"


NULL = _Null()


def binned(groups: pa.Table, names: list[str], categorical: bool, has_target: bool) -> dict[str, dict[str, Any]]:
    """PSI, unseen share and the leakage score of each feature from the rows of ``Builder.binned``."""
    data = groups.to_pydict()
    train: list[dict[Any, float]] = [defaultdict(float) for _ in names]
    test: list[dict[Any, float]] = [defaultdict(float) for _ in names]
    classes: list[dict[Any, dict[Any, float]]] = [defaultdict(lambda: defaultdict(float)) for _ in names]
    sums: list[dict[Any, list[float]]] = [defaultdict(lambda: [0.0, 0.0, 0.0]) for _ in names]
    for r in range(len(data["n"])):
        i, key, n = data["af_f"][r], data["af_b"][r], data["n"][r]
        key = NULL if key is None else key
        if data["af_s"][r] == 1:
            train[i][key] += n
            if categorical:
                if data["af_y"][r] is not None:
                    classes[i][key][data["af_y"][r]] += n
            elif has_target:
                entry = sums[i][key]
                entry[0] += data["ny"][r] or 0
                entry[1] += data["sy"][r] or 0.0
                entry[2] += data["syy"][r] or 0.0
        else:
            test[i][key] += n
    result = {}
    for i, name in enumerate(names):
        entry: dict[str, Any] = {"bins": len(train[i]), "psi": psi(train[i], test[i]), "unseen": unseen_share(train[i], test[i])}
        if categorical and classes[i]:
            entry.update(class_score(classes[i]))
        elif has_target and sums[i]:
            entry.update({"leak_metric": "R²", "leak_score": r_squared(sums[i])})
        result[name] = entry
    return result


def psi(train: dict[Any, float], test: dict[Any, float]) -> float:
    """Population stability index over the union of bins, shares smoothed by half a row per bin."""
    keys = set(train) | set(test)
    total_train, total_test = sum(train.values()), sum(test.values())
    if not total_train or not total_test:
        return 0.0
    value = 0.0
    for key in keys:
        p = (train.get(key, 0.0) + 0.5) / (total_train + 0.5 * len(keys))
        q = (test.get(key, 0.0) + 0.5) / (total_test + 0.5 * len(keys))
        value += (q - p) * math.log(q / p)
    return round(value, 6)


def unseen_share(train: dict[Any, float], test: dict[Any, float]) -> float:
    """Share of test rows (nulls aside) in bins no train row falls into."""
    known = {k: v for k, v in test.items() if k is not NULL}
    total = sum(known.values())
    return round(sum(v for k, v in known.items() if not train.get(k)) / total, 6) if total else 0.0


def class_score(classes: dict[Any, dict[Any, float]]) -> dict[str, Any]:
    """Binary target: AUC of the bins' positive rates (max of AUC and 1 − AUC). Otherwise Goodman–Kruskal
    lambda: how much of the error of always guessing the commonest class the bins remove."""
    labels = sorted({c for counts in classes.values() for c in counts}, key=str)
    if len(labels) < 2:
        return {}
    if len(labels) == 2:
        positive = labels[1]
        bins = sorted(classes.values(), key=lambda c: c.get(positive, 0.0) / max(sum(c.values()), 1e-12))
        pos_total = sum(c.get(positive, 0.0) for c in bins)
        neg_total = sum(sum(c.values()) - c.get(positive, 0.0) for c in bins)
        if not pos_total or not neg_total:
            return {}
        negatives_below, area = 0.0, 0.0
        for counts in bins:
            pos = counts.get(positive, 0.0)
            neg = sum(counts.values()) - pos
            area += pos * (negatives_below + 0.5 * neg)
            negatives_below += neg
        auc = area / (pos_total * neg_total)
        return {"leak_metric": "AUC", "leak_score": round(max(auc, 1 - auc), 6)}
    totals: dict[Any, float] = defaultdict(float)
    for counts in classes.values():
        for label, n in counts.items():
            totals[label] += n
    rows, commonest = sum(totals.values()), max(totals.values())
    if rows == commonest:
        return {}
    right = sum(max(counts.values()) for counts in classes.values())
    return {"leak_metric": "lambda", "leak_score": round((right - commonest) / (rows - commonest), 6)}


def r_squared(sums: dict[Any, list[float]]) -> float:
    """Share of the target's variance the bins' means explain (η²)."""
    n = sum(s[0] for s in sums.values())
    if n < 2:
        return 0.0
    total_sum = sum(s[1] for s in sums.values())
    total_squares = sum(s[2] for s in sums.values())
    variance = total_squares - total_sum**2 / n
    if variance <= 1e-12 * max(total_squares, 1.0):
        return 0.0
    between = sum(s[1] ** 2 / s[0] for s in sums.values() if s[0]) - total_sum**2 / n
    return round(max(0.0, min(1.0, between / variance)), 6)


def unseen(result: pa.Table, names: list[str]) -> dict[str, float]:
    """Share of non-null test rows whose value no train row has, per text feature (rows of ``Builder.unseen``)."""
    return {names[r["c"]]: (r["unseen"] or 0) / r["n"] if r["n"] else 0.0 for r in result.to_pylist()}
