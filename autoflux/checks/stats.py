"""Arithmetic on the checks' aggregates: PSI, unseen categories, binned AUC / lift / R²."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyarrow as pa


def profile(result: pa.Table, quantiles: pa.Table | None, kinds: dict[str, str], target: str | None) -> dict[str, dict[str, Any]]:
    """The profile query's rows as ``{"train": {...}, "test": {...}}`` (zeros for a split with no rows), train's quantiles."""
    rows = {r["af_s"]: r for r in result.to_pylist()}
    cuts = quantiles.to_pylist()[0] if quantiles is not None and quantiles.num_rows else {}
    out = {}
    for split in ("train", "test"):
        row = rows.get(split, {})
        columns = {}
        for i, name in enumerate(kinds):
            found = (cuts.get(f"q{i}") if split == "train" else None) or []
            columns[name] = {
                "count": int(row.get(f"n{i}") or 0),
                "distinct": int(row.get(f"d{i}") or 0),
                "quantiles": [float(v) for v in found if v is not None],
            }
        out[split] = {
            "rows": int(row.get("rows_") or 0),
            "columns": columns,
            "target_count": int(row.get("target_count") or 0) if target else 0,
            "target_distinct": int(row.get("target_distinct") or 0) if target else 0,
        }
    return out


def cut_points(quantiles: list[float]) -> list[float]:
    """Distinct, finite, sorted quantiles: a value below the k-th cut point falls into bin k."""
    return sorted({q for q in quantiles if math.isfinite(q)})


def binned(groups: pa.Table, names: list[str], categorical: bool, has_target: bool) -> dict[str, dict[str, Any]]:
    """PSI, unseen share and the leakage score of each feature from the GROUPING SETS rows."""
    data = groups.to_pydict()
    count = len(data["n"])
    result = {}
    for i, name in enumerate(names):
        column = data[f"b{i}"]
        train: dict[Any, float] = defaultdict(float)
        test: dict[Any, float] = defaultdict(float)
        classes: dict[Any, dict[Any, float]] = defaultdict(lambda: defaultdict(float))
        sums: dict[Any, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for r in range(count):
            key = column[r]
            if key is None:
                continue
            n = data["n"][r]
            if data["af_s"][r] == "train":
                train[key] += n
                if categorical:
                    if data["af_y"][r] is not None:
                        classes[key][data["af_y"][r]] += n
                elif has_target:
                    entry = sums[key]
                    entry[0] += data["ny"][r] or 0
                    entry[1] += data["sy"][r] or 0.0
                    entry[2] += data["syy"][r] or 0.0
            else:
                test[key] += n
        entry: dict[str, Any] = {"bins": len(train), "psi": psi(train, test), "unseen": unseen_share(train, test)}
        if categorical and classes:
            entry.update(class_score(classes))
        elif has_target and sums:
            entry.update({"leak_metric": "R²", "leak_score": r_squared(sums)})
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
    from autoflux.checks.sql import NULL_BIN

    known = {k: v for k, v in test.items() if k not in (NULL_BIN, -1)}
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
