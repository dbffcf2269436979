"""Meta-labeling rows from daily tables: truncation (labels, features and meta-confidence for day
D are identical on data cut at D), the champion comparison on the same folds, and dropping the
bets the meta-labeler sizes at zero from the rankings."""

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
    return prices, rankings, regime


def _cut(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("date") <= CUT)


def test_labels_features_and_confidence_for_day_d_identical_on_data_cut_at_d(tables):
    prices, rankings, regime = tables
    full = barrier_label_table(prices, rankings, regime, SPEC, CUT, CUT)
    cut = barrier_label_table(_cut(prices), _cut(rankings), _cut(regime), SPEC, CUT, CUT)
    assert full.height > 0 and full.equals(cut)
    assert (full["touch_date"] == CUT).all()
    bets_full, names = bet_table(prices, rankings, regime, SPEC, CUT, CUT)
    bets_cut, _ = bet_table(_cut(prices), _cut(rankings), _cut(regime), SPEC, CUT, CUT)
    assert bets_full.height == SPEC.top_n and bets_full.equals(bets_cut)
    rng = np.random.default_rng(0)
    model = MetaLabeler({"n_estimators": 5}).fit(rng.normal(size=(60, len(names))), rng.integers(0, 2, 60), feature_names=names)
    assert score_bets(model, bets_full).equals(score_bets(model, bets_cut))


def test_label_table_holds_only_labels_known_in_the_range(tables):
    prices, rankings, regime = tables
    week = barrier_label_table(prices, rankings, regime, SPEC, dt.date(2024, 3, 11), CUT)
    assert week["touch_date"].is_between(dt.date(2024, 3, 11), CUT).all()
    assert week["label"].null_count() == 0
    assert {"vol_20", "mom_21", "z_vsm", "regime_code", "p_bull", "rank", "target"} <= set(feature_columns(week))
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


def test_apply_meta_confidence_keeps_confirmed_bets():
    d1, d2, d3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)
    rankings = pl.DataFrame({"date": [d1] * 3 + [d2] * 3 + [d3] * 2, "ticker": ["A", "B", "C", "A", "B", "C", "A", "B"], "rank": [1, 2, 3, 1, 2, 3, 1, 2]})
    confidence = pl.DataFrame({"date": [d1, d1, d2, d2], "ticker": ["A", "B", "A", "B"], "bet_size": [0.4, 0.0, -0.2, 0.0]})
    filtered, dropped, fallback = apply_meta_confidence(rankings, confidence)
    assert filtered.filter(pl.col("date") == d1)["ticker"].to_list() == ["A"]
    assert filtered.filter(pl.col("date") == d2).height == 3  # every bet skipped: keep the plain rankings
    assert filtered.filter(pl.col("date") == d3).height == 2  # not scored
    assert (dropped, fallback) == (1, [d2])
    assert apply_meta_confidence(rankings, None)[0].equals(rankings)
