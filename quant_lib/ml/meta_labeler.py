"""XGBoost meta-labeler: P(the primary model's bet succeeds) and its SHAP explanation.

Seed 000 §4.3: the ranking engine decides the side; a gradient-boosted classifier trained on
triple-barrier meta-labels (1 = the profit-taking barrier was hit first) learns when a bet pays
off. Defaults follow the seed: 100 trees, depth 4, learning rate 0.1, subsample 0.8, column
subsample 0.8; one thread and a fixed seed so fits are reproducible.

SHAP: ``shap.TreeExplainer`` fails on xgboost >= 3.1 (shap issues #4184/#4288: ``base_score``
stored as a string), so ``explain`` uses xgboost's own TreeSHAP (``pred_contribs=True``), which
gives the same exact values: per row, contributions + bias = the margin (log-odds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 100,
    "max_depth": 4,
    "learning_rate": 0.1,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "reg_lambda": 1.0,
    "seed": 0,
    "nthread": 1,
}
BIAS_COLUMN = "bias"


def _matrix(X: pl.DataFrame | np.ndarray, feature_names: Sequence[str] | None) -> tuple[np.ndarray, list[str]]:
    if isinstance(X, pl.DataFrame):
        names = list(feature_names) if feature_names is not None else X.columns
        missing = [n for n in names if n not in X.columns]
        if missing:
            raise ValueError(f"features missing from X: {missing}; X has {X.columns}")
        return X.select(pl.col(n).cast(pl.Float64) for n in names).to_numpy(), names
    array = np.asarray(X, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {array.shape}")
    names = list(feature_names) if feature_names is not None else [f"f{i}" for i in range(array.shape[1])]
    if len(names) != array.shape[1]:
        raise ValueError(f"{len(names)} feature names for {array.shape[1]} columns")
    return array, names


class MetaLabeler:
    """Binary XGBoost classifier on meta-labels with ``fit`` / ``predict_proba`` / ``explain``."""

    def __init__(self, params: Mapping[str, Any] | None = None) -> None:
        unknown = set(params or {}) - set(DEFAULT_PARAMS)
        if unknown:
            raise ValueError(f"unknown MetaLabeler params {sorted(unknown)}; known: {sorted(DEFAULT_PARAMS)}")
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.feature_names: list[str] = []
        self._booster = None

    def _booster_params(self) -> dict[str, Any]:
        params = {k: v for k, v in self.params.items() if k not in ("n_estimators", "colsample_bytree")}
        params.update(
            objective="binary:logistic", eval_metric="logloss", tree_method="hist",
            colsample_bytree=self.params["colsample_bytree"],
        )  # fmt: skip
        return params

    def fit(self, X, y, sample_weight=None, feature_names: Sequence[str] | None = None) -> MetaLabeler:
        """Fit on features ``X`` (polars frame or 2-D array) and 0/1 labels ``y``."""
        import xgboost as xgb

        matrix, names = _matrix(X, feature_names)
        labels = np.asarray(y, dtype=float)
        if labels.shape != (matrix.shape[0],):
            raise ValueError(f"y has shape {labels.shape}, expected ({matrix.shape[0]},)")
        if not np.isin(labels, (0.0, 1.0)).all():
            raise ValueError(f"y must be 0/1 meta-labels; got values {np.unique(labels)[:10].tolist()}")
        if np.unique(labels).size < 2:
            raise ValueError(f"y has a single class ({labels[0] if labels.size else 'empty'}): nothing to learn")
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        if weight is not None and (weight.shape != labels.shape or not np.all(np.isfinite(weight)) or (weight < 0).any()):
            raise ValueError("sample_weight must be finite, non-negative and one per row")
        data = xgb.DMatrix(matrix, label=labels, weight=weight, feature_names=names)
        self._booster = xgb.train(self._booster_params(), data, num_boost_round=int(self.params["n_estimators"]))
        self.feature_names = names
        return self

    def _dmatrix(self, X):
        import xgboost as xgb

        if self._booster is None:
            raise RuntimeError("MetaLabeler is not fitted")
        matrix, names = _matrix(X, self.feature_names)
        return xgb.DMatrix(matrix, feature_names=names)

    def predict_proba(self, X) -> np.ndarray:
        """P(success) in [0, 1] per row."""
        data = self._dmatrix(X)
        return self._booster.predict(data)

    def predict_margin(self, X) -> np.ndarray:
        """Log-odds per row (the quantity SHAP values add up to)."""
        data = self._dmatrix(X)
        return self._booster.predict(data, output_margin=True)

    def explain(self, X) -> pl.DataFrame:
        """Exact TreeSHAP values: one column per feature plus ``bias``; each row sums to the margin."""
        data = self._dmatrix(X)
        contributions = self._booster.predict(data, pred_contribs=True)
        return pl.DataFrame(contributions, schema=[*self.feature_names, BIAS_COLUMN], orient="row")

    def shap_importance(self, X) -> pl.DataFrame:
        """``feature, mean_abs_shap`` sorted descending: the global ranking of the features."""
        values = self.explain(X).drop(BIAS_COLUMN)
        importance = [float(np.mean(np.abs(values[c].to_numpy()))) for c in values.columns]
        return pl.DataFrame({"feature": values.columns, "mean_abs_shap": importance}).sort(
            "mean_abs_shap", "feature", descending=[True, False]
        )

    def to_bytes(self) -> bytes:
        """The fitted booster as xgboost's JSON (the registry's ``model.json``)."""
        if self._booster is None:
            raise RuntimeError("MetaLabeler is not fitted")
        return bytes(self._booster.save_raw(raw_format="json"))

    @classmethod
    def from_bytes(cls, data: bytes, feature_names: Sequence[str], params: Mapping[str, Any] | None = None) -> MetaLabeler:
        """A fitted labeler from ``to_bytes`` output and its feature list."""
        import xgboost as xgb

        model = cls({k: v for k, v in (params or {}).items() if k in DEFAULT_PARAMS})
        booster = xgb.Booster()
        booster.load_model(bytearray(data))
        model._booster = booster
        model.feature_names = list(feature_names)
        return model
