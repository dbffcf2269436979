"""Known answer on the simulated market's planted meta-label structure (issue 9,
`truth.meta_label`): a momentum bet whose side agrees with the ticker's latest news_sentiment
drifts its way. Triple-barrier labels of momentum bets + point-in-time features, then the
XGBoost meta-labeler under purged walk-forward CV: out-of-sample AUC clearly above 0.5 with the
planted feature, about 0.5 on shuffled labels, and SHAP ranks the planted feature first."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.labeling import daily_volatility, triple_barrier
from quant_lib.ml import fit_meta_model, meta_features, purged_cv, roc_auc

PLANTED = "news_agreement"
FEATURES = [PLANTED, "vol_20", "mom_21", "mom_63", "ret_5", "hl_range_20", "dist_ma50"]
PARAMS = {"n_estimators": 50, "max_depth": 3}
HORIZON = 10


@pytest.fixture(scope="module")
def bets() -> pl.DataFrame:
    """Every 3rd day per ticker a momentum bet (side = sign of the 20-day return), barriers at
    +-1 x EWM vol x sqrt(10) within 10 days; the bets that touched pt or sl, with features
    (directional ones side-adjusted by `meta_features`)."""
    market = simulate_market(SimulationConfig(n_tickers=30, seed=7), end=date(2014, 12, 31))
    assert market.truth.meta_label["feature"] == "news_sentiment" and market.truth.meta_label["sign"] == 1
    prices = market.prices.filter(pl.col("ticker") != "SPY").select("date", "ticker", pl.col("adj_close").alias("close"), "high", "low")
    news = market.fundamentals.filter(pl.col("metric") == "news_sentiment").select("ticker", pl.col("available_at").alias("date"), pl.col("value").alias("news"))
    side = (pl.col("close") / pl.col("close").shift(20) - 1).over("ticker").sign().cast(pl.Int8)
    events = (
        prices.sort("ticker", "date")
        .with_columns(side.alias("side"), pl.int_range(pl.len()).over("ticker").alias("day"))
        .filter((pl.col("day") % 3 == 0) & (pl.col("side") != 0))
        .join(daily_volatility(prices, span=20), on=["date", "ticker"])
        .drop_nulls("volatility")
        .select("date", "ticker", "side", (pl.col("volatility") * np.sqrt(HORIZON)).alias("target"))
    )
    labels = triple_barrier(prices, events, (1.0, 1.0), HORIZON).filter(pl.col("barrier").is_in(["pt", "sl"]))
    features, names = meta_features(labels.select("date", "ticker", "side", "target"), prices)
    assert set(FEATURES) - {PLANTED} <= set(names)
    return (
        labels.join(features.drop("side", "target"), on=["date", "ticker"], how="left")
        .join(news, on=["date", "ticker"], how="left")
        .with_columns((pl.col("side") * pl.col("news")).alias(PLANTED))
        .sort("date", "ticker")
    )


@pytest.fixture(scope="module")
def fitted(bets):
    return fit_meta_model(bets, FEATURES, PARAMS, n_splits=4)


def test_planted_feature_alone_separates_the_outcomes(bets):
    assert bets.height > 10_000
    assert roc_auc(bets["meta_label"].to_numpy(), bets[PLANTED].fill_null(0.0).to_numpy()) > 0.54


def test_out_of_sample_auc_clearly_above_one_half(fitted):
    aucs = fitted.cv.folds["auc"].drop_nans()
    assert aucs.len() == 3  # walk-forward: the first block only trains
    assert fitted.cv.mean("auc") > 0.515 and aucs.min() > 0.51


def test_shuffled_labels_give_about_one_half(bets):
    shuffled = bets.with_columns(pl.Series("meta_label", np.random.default_rng(0).permutation(bets["meta_label"].to_numpy())))
    assert abs(purged_cv(shuffled, FEATURES, PARAMS, n_splits=4).mean("auc") - 0.5) < 0.015


def test_shap_ranks_the_planted_feature_first(fitted):
    importance = fitted.importance
    assert importance["feature"][0] == PLANTED
    assert importance["mean_abs_shap"][0] > 1.2 * importance["mean_abs_shap"][1]
