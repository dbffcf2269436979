"""Training the meta-labeler on labels known by a date, the champion/challenger decision, and
scoring today's bets.

Point in time: a label is known at its ``touch_date``; a model trained "as of D" uses only labels
with ``touch_date <= D`` and features at each bet's start. Sample weights are average uniqueness
x time decay (``quant_lib.labeling.sample_weights``). The promotion rule (seed 000 §4.6.4): the
challenger's mean purged-CV AUC must exceed ``0.5 + margin`` and be no worse than the champion's
configuration (its params and feature list) refitted on the same folds of the same data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from quant_lib.labeling.weights import sample_weights
from quant_lib.ml.evaluation import CVResult, purged_cv
from quant_lib.ml.meta_labeler import MetaLabeler
from quant_lib.ml.sizing import bet_size


def known_labels(labels: pl.DataFrame, as_of: date) -> pl.DataFrame:
    """Resolved labels whose ``touch_date <= as_of`` (what is known at the close of ``as_of``)."""
    return labels.filter(pl.col("touch_date").is_not_null() & (pl.col("touch_date") <= as_of) & pl.col("meta_label").is_not_null())


def training_frame(
    labels: pl.DataFrame,
    features: pl.DataFrame,
    feature_names: Sequence[str],
    prices: pl.DataFrame,
    as_of: date,
    oldest_weight: float = 1.0,
) -> pl.DataFrame:
    """Known labels joined with their features (``date, ticker`` keys) and sample weights, sorted
    by (date, ticker): the input of ``fit_meta_model``."""
    known = known_labels(labels, as_of).select("date", "ticker", "touch_date", "meta_label", "ret")
    weighted = sample_weights(known, prices.filter(pl.col("date") <= as_of), oldest_weight)
    table = weighted.join(features.select("date", "ticker", *feature_names), on=["date", "ticker"], how="left")
    return table.sort("date", "ticker")


@dataclass(frozen=True)
class MetaModelFit:
    """The labeler fitted on all rows, its purged-CV scores and SHAP feature ranking."""

    model: MetaLabeler
    cv: CVResult
    importance: pl.DataFrame
    feature_names: list[str]
    params: dict[str, Any]
    n_train: int
    base_rate: float

    @property
    def metrics(self) -> dict[str, float]:
        return {**self.cv.summary, "n_train": float(self.n_train), "base_rate": self.base_rate}


def fit_meta_model(
    train: pl.DataFrame,
    feature_names: Sequence[str],
    params: Mapping[str, Any] | None = None,
    n_splits: int = 5,
    embargo_pct: float = 0.01,
    walk_forward: bool = True,
) -> MetaModelFit:
    """Purged CV of ``MetaLabeler(params)`` on ``train``, then the final fit on all of it."""
    if train.height < 2 * n_splits:
        raise ValueError(f"{train.height} known labels are too few for {n_splits}-fold purged CV")
    cv = purged_cv(train, feature_names, params, n_splits, embargo_pct, walk_forward=walk_forward)
    X = train.select(feature_names)
    y = train["meta_label"].to_numpy().astype(float)
    weight = train["sample_weight"].to_numpy() if "sample_weight" in train.columns else None
    model = MetaLabeler(params).fit(X, y, weight)
    return MetaModelFit(model, cv, model.shap_importance(X), list(feature_names), dict(model.params), train.height, float(y.mean()))


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger may become champion, with the numbers behind it."""

    passed: bool
    reason: str
    challenger_auc: float
    champion_auc: float | None
    margin: float
    champion_folds: pl.DataFrame | None = field(default=None, compare=False)


def promotion_decision(challenger_auc: float, champion_auc: float | None, margin: float) -> PromotionDecision:
    """Pass iff ``challenger_auc > 0.5 + margin`` and ``challenger_auc >= champion_auc``."""
    floor = 0.5 + margin
    if not math.isfinite(challenger_auc) or challenger_auc <= floor:
        return PromotionDecision(False, f"purged-CV AUC {challenger_auc:.4f} is not above 0.5 + margin = {floor:.4f}", challenger_auc, champion_auc, margin)
    if champion_auc is not None and math.isfinite(champion_auc) and challenger_auc < champion_auc:
        return PromotionDecision(False, f"purged-CV AUC {challenger_auc:.4f} is worse than the champion's {champion_auc:.4f} on the same folds", challenger_auc, champion_auc, margin)
    versus = "no champion yet" if champion_auc is None else f"champion {champion_auc:.4f} on the same folds"
    return PromotionDecision(True, f"purged-CV AUC {challenger_auc:.4f} > {floor:.4f}; {versus}", challenger_auc, champion_auc, margin)


def challenge_champion(
    train: pl.DataFrame,
    challenger: MetaModelFit,
    champion: tuple[Mapping[str, Any], Sequence[str]] | None,
    margin: float,
    n_splits: int = 5,
    embargo_pct: float = 0.01,
    walk_forward: bool = True,
) -> PromotionDecision:
    """The promotion rule with the champion's configuration ``(params, features)`` refitted on
    the challenger's folds (same rows, same splits); a champion whose features are no longer
    available cannot be compared and counts as absent (said in the reason)."""
    if champion is None:
        return promotion_decision(challenger.cv.mean("auc"), None, margin)
    params, features = champion
    missing = [f for f in features if f not in train.columns]
    if missing:
        decision = promotion_decision(challenger.cv.mean("auc"), None, margin)
        return PromotionDecision(decision.passed, f"{decision.reason}; champion not comparable (features {missing} gone)", decision.challenger_auc, None, margin)
    known = {k: v for k, v in params.items() if k in challenger.model.params}
    cv = purged_cv(train, list(features), known, n_splits, embargo_pct, walk_forward=walk_forward)
    decision = promotion_decision(challenger.cv.mean("auc"), cv.mean("auc"), margin)
    return PromotionDecision(decision.passed, decision.reason, decision.challenger_auc, decision.champion_auc, margin, cv.folds)


def score_bets(model: MetaLabeler, bets: pl.DataFrame, step: float = 0.1) -> pl.DataFrame:
    """``date, ticker, probability, bet_size`` for bets carrying ``model.feature_names``; the size
    is AFML's ``2 Phi(z) - 1`` discretized to ``step`` (<= 0: skip the bet)."""
    if bets.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, "ticker": pl.String, "probability": pl.Float64, "bet_size": pl.Float64})
    probability = model.predict_proba(bets.select(model.feature_names))
    side = bets["side"].to_numpy() if "side" in bets.columns else 1
    return bets.select("date", "ticker").with_columns(
        pl.Series("probability", probability.astype(float)), pl.Series("bet_size", bet_size(probability, side, step=step))
    )
