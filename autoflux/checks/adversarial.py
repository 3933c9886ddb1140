"""Adversarial validation (``autoflux[ml]``): how well a model tells train rows from test rows, and by what."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autoflux.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from autoflux.checks.sql import Builder
    from autoflux.engines.base import Engine


def adversarial(engine: Engine, sql: Builder, kinds: dict[str, str], rows: int, *, seed: int = 0) -> dict[str, Any]:
    """Cross-validated AUC of a tree ensemble predicting the split from the features, and the features it uses most."""
    try:
        import numpy as np
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.inspection import permutation_importance
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import train_test_split
    except ImportError:
        raise MissingDependencyError("adversarial validation (ml.checks.adversarial)", extra="ml", package="scikit-learn") from None
    names = [n for n, k in kinds.items() if k in ("integer", "number", "text", "bool")]
    data = engine.query(sql.sample(names))
    labels = np.asarray(data["is_train_"].to_numpy(zero_copy_only=False), dtype=np.int64)
    rng = np.random.default_rng(seed)
    keep = np.concatenate([_sample(np.flatnonzero(labels == value), rows, rng) for value in (0, 1)])
    columns = []
    for name in names:
        column = data[name].take(keep)
        if kinds[name] in ("text", "bool"):
            codes = column.cast("string").dictionary_encode().combine_chunks()
            values = np.asarray(codes.indices.to_numpy(zero_copy_only=False), dtype=np.float64)
            values[np.asarray(column.is_null().to_numpy(zero_copy_only=False))] = np.nan
        else:
            values = np.asarray(column.cast("double").to_numpy(zero_copy_only=False), dtype=np.float64)
        columns.append(values)
    features = np.column_stack(columns) if columns else np.zeros((len(keep), 0))
    categorical = [kinds[n] in ("text", "bool") for n in names]
    x_fit, x_hold, y_fit, y_hold = train_test_split(features, labels[keep], test_size=0.3, random_state=seed, stratify=labels[keep])
    model = HistGradientBoostingClassifier(max_iter=100, categorical_features=categorical or None, random_state=seed)
    model.fit(x_fit, y_fit)
    auc = float(roc_auc_score(y_hold, model.predict_proba(x_hold)[:, 1]))
    importance = permutation_importance(model, x_hold, y_hold, scoring="roc_auc", n_repeats=3, random_state=seed)
    order = np.argsort(-importance.importances_mean)
    return {
        "auc": round(auc, 4),
        "rows": int(len(keep)),
        "drivers": [names[i] for i in order if importance.importances_mean[i] > 0.005],
        "importance": {names[i]: round(float(importance.importances_mean[i]), 4) for i in order},
    }


def _sample(indices, rows: int, rng):
    return indices if len(indices) <= rows else rng.choice(indices, rows, replace=False)
