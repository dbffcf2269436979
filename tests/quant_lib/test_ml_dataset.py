"""Meta-labeling rows from daily tables: truncation (labels, features and meta-confidence for day
D are identical on data cut at D), the champion comparison on the same folds, and dropping the
scaling target weights by the meta-labeler's bet sizes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.ml import MetaLabeler, challenge_champion, fit_meta_model, score_bets
from quant_lib.ml.dataset import LabelingSpec, barrier_label_table, bet_table, feature_columns
from quant_lib.ml.sizing import apply_meta_confidence

SPEC = LabelingSpec(top_n=4, max_holding=5, vol_span=20)
CUT = dt.date(2024, 3, 15)


@pytest.fixture(scope="module")
def tables():
    market = simulate_market(SimulationConfig(n_tickers=8, seed=3), end=dt.date(2024, 6, 28))
    prices = market.prices.filter(pl.col("date") >= dt.date(2023, 1, 2))
    momentum = (pl.col("adj_close") / pl.col("adj_close").shift(63) - 1).over("ticker")
    rankings = (
        prices.filter(pl.col("ticker") != "SPY").sort("ticker", "date").with_columns(momentum.alias("vsm"))
        .drop_nulls("vsm").filter(pl.col("date") >= dt.date(2023, 9, 1))
        .with_columns(pl.col("vsm").rank("ordinal", descending=True).over("date").cast(pl.Int32).alias("rank"), pl.col("vsm").alias("score"))
        .select("date", "ticker", "score", "rank", "vsm")
    )  # fmt: skip
    regime = rankings.select("date").unique().with_columns(pl.lit("Bear").alias("regime"), pl.lit(0.3).alias("p_bull"), pl.lit(0.7).alias("confidence"))
    news = market.fundamentals.filter(pl.col("metric") == "news_sentiment")
    fundamentals = news.select(pl.col("available_at").alias("date"), "ticker", pl.col("value").alias("news_sentiment"))
    return prices, rankings, regime, fundamentals


def _cut(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("date") <= CUT)


def test_labels_features_and_confidence_for_day_d_identical_on_data_cut_at_d(tables):
    prices, rankings, regime, news = tables
    full = barrier_label_table(prices, rankings, regime, SPEC, CUT, CUT, news)
    cut = barrier_label_table(_cut(prices), _cut(rankings), _cut(regime), SPEC, CUT, CUT, _cut(news))
    assert full.height > 0 and full.equals(cut)
    assert (full["touch_date"] == CUT).all() and full["news_agreement"].null_count() == 0
    bets_full, names = bet_table(prices, rankings, regime, SPEC, CUT, CUT, news)
    bets_cut, _ = bet_table(_cut(prices), _cut(rankings), _cut(regime), SPEC, CUT, CUT, _cut(news))
    assert bets_full.height == SPEC.top_n and bets_full.equals(bets_cut)
    rng = np.random.default_rng(0)
    model = MetaLabeler({"n_estimators": 5}).fit(rng.normal(size=(60, len(names))), rng.integers(0, 2, 60), feature_names=names)
    assert score_bets(model, bets_full).equals(score_bets(model, bets_cut))


def test_label_table_holds_only_labels_known_in_the_range(tables):
    prices, rankings, regime, news = tables
    week = barrier_label_table(prices, rankings, regime, SPEC, dt.date(2024, 3, 11), CUT, news)
    assert week["touch_date"].is_between(dt.date(2024, 3, 11), CUT).all()
    assert week["label"].null_count() == 0
    assert {"vol_20", "mom_21", "z_vsm", "regime_code", "p_bull", "rank", "target", "news_agreement"} <= set(feature_columns(week))
    assert week["regime_code"].unique().to_list() == [-1.0]


def _planted(n: int = 600, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-2 * signal))).astype(np.int8)
    dates = [dt.date(2020, 1, 1) + dt.timedelta(days=i) for i in range(n)]
    return pl.DataFrame({"date": dates, "touch_date": [d + dt.timedelta(days=3) for d in dates], "meta_label": y, "signal": signal, "noise": noise})


def test_challenger_without_the_signal_loses_to_the_champion_on_the_same_folds():
    train = _planted()
    params = {"n_estimators": 20}
    strong = fit_meta_model(train, ["signal", "noise"], params, n_splits=4)
    weak = fit_meta_model(train, ["noise"], params, n_splits=4)
    blocked = challenge_champion(train, weak, (strong.params, strong.feature_names), 0.0, n_splits=4)
    assert not blocked.passed
    assert blocked.champion_auc == pytest.approx(strong.cv.mean("auc"))
    assert blocked.champion_folds["n_test"].to_list() == strong.cv.folds["n_test"].to_list()
    same = challenge_champion(train, strong, (strong.params, strong.feature_names), 0.02, n_splits=4)
    assert same.passed and same.champion_auc == pytest.approx(same.challenger_auc)
    gone = challenge_champion(train, strong, ({}, ["signal", "retired_feature"]), 0.02, n_splits=4)
    assert gone.passed and gone.champion_auc is None and "not comparable" in gone.reason


def test_apply_meta_confidence_scales_weights_and_keeps_raw_weights():
    d1, d2, d3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
    targets = pl.DataFrame({
        "date": [d1] * 3 + [d2] * 2 + [d3], "ticker": ["A", "B", "C", "A", "B", "A"],
        "raw_weight": [0.5, 0.3, 0.2, 0.5, 0.5, 1.0], "weight": [0.4, 0.24, 0.16, 0.5, 0.5, 0.8],
    })  # fmt: skip
    confidence = pl.DataFrame({"date": [d1, d1, d2, d2], "ticker": ["A", "B", "A", "B"], "bet_size": [0.5, -0.2, 0.0, -0.4]})
    sized, dropped, fallback = apply_meta_confidence(targets, confidence)
    assert sized.filter(pl.col("date") == d1)["weight"].to_list() == pytest.approx([0.2, 0.0, 0.16])  # C not scored
    assert sized.filter(pl.col("date") == d2)["weight"].to_list() == [0.5, 0.5]  # every bet skipped: unscaled
    assert sized.filter(pl.col("date") == d3)["weight"].to_list() == [0.8]
    assert sized["raw_weight"].equals(targets["raw_weight"])
    assert (dropped, fallback) == (1, [d2])
    assert apply_meta_confidence(targets, None)[0].equals(targets)
