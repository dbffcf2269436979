"""Out-of-sample scores of the meta-labeler under purged walk-forward CV with embargo.

Folds come from ``quant_lib.backtest.validation.PurgedWalkForwardCV`` on the label intervals
``[date, touch_date]`` (AFML ch. 7): a training label overlapping a test block is purged, and
labels right after it are embargoed. Metrics per fold: ROC AUC (Mann-Whitney with average ranks
for ties), log loss (probabilities clipped to [1e-15, 1 - 1e-15]) and the precision of the top
decile (share of successes among the 10% of bets with the highest P(success)).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from scipy.stats import rankdata

from quant_lib.backtest.validation import PurgedWalkForwardCV
from quant_lib.ml.meta_labeler import MetaLabeler

_EPS = 1e-15


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative); NaN with a single class."""
    y = np.asarray(y, dtype=float)
    n_pos = float(y.sum())
    n_neg = float(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean binary cross-entropy."""
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    y = np.asarray(y, dtype=float)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def top_decile_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Share of successes among the ceil(10%) highest-probability rows."""
    y = np.asarray(y, dtype=float)
    if y.size == 0:
        return float("nan")
    top = np.argsort(-np.asarray(p, dtype=float), kind="stable")[: max(1, int(np.ceil(0.1 * y.size)))]
    return float(y[top].mean())


@dataclass(frozen=True)
class CVResult:
    """Per-fold metrics (``fold, n_train, n_test, auc, log_loss, top_decile_precision``), the
    out-of-fold probabilities (NaN where a row was never tested) and the mean fold metrics
    (folds that could not be scored are left out)."""

    folds: pl.DataFrame
    oof_probability: np.ndarray

    def mean(self, metric: str) -> float:
        values = self.folds[metric].drop_nans().drop_nulls()
        return float(values.mean()) if values.len() else float("nan")

    @property
    def summary(self) -> dict[str, float]:
        return {f"cv_{m}": self.mean(m) for m in ("auc", "log_loss", "top_decile_precision")}


def purged_cv(
    train: pl.DataFrame,
    feature_names: Sequence[str],
    params: Mapping[str, Any] | None = None,
    n_splits: int = 5,
    embargo_pct: float = 0.01,
    label_column: str = "meta_label",
    walk_forward: bool = True,
) -> CVResult:
    """Fit a ``MetaLabeler(params)`` on each purged training set and score its test block.

    ``train``: sorted by ``date``, with ``date, touch_date``, the label, ``sample_weight`` (1
    when absent) and the features. ``walk_forward``: train only on labels before each test block
    (the first block is then never tested), so the out-of-fold probabilities are what a model
    refitted through time would have said - the backtest can size with them. A fold whose
    training set is empty or has a single class is scored NaN.
    """
    missing = [c for c in ("date", "touch_date", label_column, *feature_names) if c not in train.columns]
    if missing:
        raise ValueError(f"training frame is missing column(s) {missing}")
    if train["date"].is_sorted() is False:
        raise ValueError("training frame must be sorted by date")
    starts = train["date"].to_numpy().astype("datetime64[D]")
    ends = train["touch_date"].to_numpy().astype("datetime64[D]")
    y = train[label_column].to_numpy().astype(float)
    weight = train["sample_weight"].to_numpy() if "sample_weight" in train.columns else np.ones(train.height)
    X = train.select(feature_names)
    oof = np.full(train.height, np.nan)
    rows = []
    splitter = PurgedWalkForwardCV(n_splits=n_splits, embargo_pct=embargo_pct, train_after_test=not walk_forward)
    for fold, (train_idx, test_idx) in enumerate(splitter.split(train.height, starts, ends)):
        row = {"fold": fold, "n_train": int(train_idx.size), "n_test": int(test_idx.size)}
        if np.unique(y[train_idx]).size < 2:
            rows.append({**row, "auc": float("nan"), "log_loss": float("nan"), "top_decile_precision": float("nan")})
            continue
        model = MetaLabeler(params).fit(X[train_idx], y[train_idx], weight[train_idx])
        p = model.predict_proba(X[test_idx])
        oof[test_idx] = p
        rows.append({
            **row, "auc": roc_auc(y[test_idx], p), "log_loss": log_loss(y[test_idx], p),
            "top_decile_precision": top_decile_precision(y[test_idx], p),
        })  # fmt: skip
    return CVResult(folds=pl.DataFrame(rows), oof_probability=oof)
