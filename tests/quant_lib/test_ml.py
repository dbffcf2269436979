"""Meta-labeler: SHAP additivity, a planted feature found out of sample (and nothing on shuffled
labels), metrics and bet sizing with known answers, point-in-time features, promotion rule."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from quant_lib.ml import (
    BIAS_COLUMN,
    MetaLabeler,
    bet_size,
    fit_meta_model,
    log_loss,
    meta_features,
    price_features,
    promotion_decision,
    purged_cv,
    roc_auc,
    score_bets,
    top_decile_precision,
)

START = dt.date(2020, 1, 1)
FEATURES = ["planted", "noise_a", "noise_b", "noise_c"]


def planted_frame(n: int = 1200, seed: int = 3, strength: float = 1.5) -> pl.DataFrame:
    """One bet a day, 5-day labels; success probability sigmoid(strength * planted)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    y = (rng.random(n) < 1 / (1 + np.exp(-strength * X[:, 0]))).astype(np.int8)
    dates = [START + dt.timedelta(days=i) for i in range(n)]
    return pl.DataFrame({
        "date": dates, "ticker": "AAA", "touch_date": [d + dt.timedelta(days=5) for d in dates],
        "meta_label": y, "sample_weight": np.ones(n), **{name: X[:, k] for k, name in enumerate(FEATURES)},
    })  # fmt: skip


@pytest.fixture(scope="module")
def planted():
    return planted_frame()


@pytest.fixture(scope="module")
def fitted(planted):
    return fit_meta_model(planted, FEATURES, {"n_estimators": 40}, n_splits=4, embargo_pct=0.01)


def test_shap_contributions_plus_bias_equal_the_margin(fitted, planted):
    X = planted.select(FEATURES).head(200)
    contributions = fitted.model.explain(X)
    assert contributions.columns == [*FEATURES, BIAS_COLUMN]
    total = contributions.select(pl.sum_horizontal(pl.all()))[:, 0].to_numpy()
    np.testing.assert_allclose(total, fitted.model.predict_margin(X), atol=1e-4)
    p = fitted.model.predict_proba(X)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-total)), atol=1e-5)
    assert ((p >= 0) & (p <= 1)).all()


def test_planted_feature_found_out_of_sample_and_ranked_first_by_shap(fitted):
    assert fitted.cv.mean("auc") > 0.7
    assert fitted.cv.folds.height == 4
    assert fitted.importance["feature"][0] == "planted"
    assert fitted.importance["mean_abs_shap"][0] > 3 * fitted.importance["mean_abs_shap"][1]


def test_shuffled_labels_score_about_one_half(planted):
    shuffled = planted.with_columns(pl.Series("meta_label", np.random.default_rng(9).permutation(planted["meta_label"].to_numpy())))
    cv = purged_cv(shuffled, FEATURES, {"n_estimators": 40}, n_splits=4)
    assert abs(cv.mean("auc") - 0.5) < 0.05


def test_model_round_trips_through_bytes(fitted, planted):
    X = planted.select(FEATURES).head(50)
    restored = MetaLabeler.from_bytes(fitted.model.to_bytes(), fitted.feature_names)
    np.testing.assert_array_equal(restored.predict_proba(X), fitted.model.predict_proba(X))
    same = fit_meta_model(planted, FEATURES, {"n_estimators": 40}, n_splits=4)
    np.testing.assert_array_equal(same.model.predict_proba(X), fitted.model.predict_proba(X))


def test_meta_labeler_bad_input():
    with pytest.raises(ValueError, match="unknown MetaLabeler params"):
        MetaLabeler({"depth": 3})
    with pytest.raises(ValueError, match="single class"):
        MetaLabeler().fit(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="0/1 meta-labels"):
        MetaLabeler().fit(np.zeros((3, 2)), np.array([0, 1, -1]))
    with pytest.raises(ValueError, match="features missing"):
        MetaLabeler().fit(pl.DataFrame({"a": [1.0, 2.0]}), np.array([0, 1]), feature_names=["a", "b"])
    with pytest.raises(RuntimeError, match="not fitted"):
        MetaLabeler().predict_proba(np.zeros((1, 2)))


def test_metrics_known_answers():
    y = np.array([0, 0, 1, 1])
    assert roc_auc(y, np.array([0.1, 0.4, 0.35, 0.8])) == pytest.approx(0.75)
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == pytest.approx(0.5)
    assert np.isnan(roc_auc(np.ones(3), np.array([0.1, 0.2, 0.3])))
    assert log_loss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(np.log(2))
    y10 = np.array([1] + [0] * 9 + [1] * 10)
    p10 = np.array([0.99, 0.98] + [0.1] * 18)
    assert top_decile_precision(y10, p10) == pytest.approx(0.5)


def test_bet_size_afml_known_values_and_discretization():
    assert bet_size(0.5, step=0.0) == pytest.approx(0.0)
    # p = 0.6: z = 0.1 / sqrt(0.24) = 0.2041, 2 Phi(z) - 1 = 0.1617
    assert bet_size(0.6, step=0.0) == pytest.approx(0.16173, abs=1e-4)
    assert bet_size(0.6, step=0.1) == pytest.approx(0.2)
    assert bet_size(0.6, side=-1, step=0.1) == pytest.approx(-0.2)
    assert bet_size(0.3, step=0.1) < 0
    sizes = bet_size(np.linspace(0.01, 0.99, 50), step=0.0)
    assert np.all(np.diff(sizes) > 0) and sizes[-1] <= 1.0
    assert np.allclose(np.round(bet_size(np.linspace(0, 1, 11), step=0.25) / 0.25), bet_size(np.linspace(0, 1, 11), step=0.25) / 0.25)
    with pytest.raises(ValueError, match="probabilities"):
        bet_size(1.2)


def _prices(n_days: int = 200, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for ticker in ("AAA", "BBB"):
        close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, n_days)))
        frames.append(pl.DataFrame({
            "date": [START + dt.timedelta(days=i) for i in range(n_days)], "ticker": ticker, "close": close,
            "high": close * 1.01, "low": close * 0.99, "volume": rng.integers(1000, 5000, n_days).astype(float),
        }))  # fmt: skip
    return pl.concat(frames)


def test_features_are_point_in_time_by_truncation():
    prices = _prices()
    cut = START + dt.timedelta(days=150)
    full = price_features(prices).filter(pl.col("date") <= cut).sort("ticker", "date")
    truncated = price_features(prices.filter(pl.col("date") <= cut)).sort("ticker", "date")
    assert full.equals(truncated)
    assert full.filter(pl.col("date") == cut)["mom_126"].null_count() == 0
    events = pl.DataFrame({"date": [cut, cut], "ticker": ["AAA", "BBB"], "side": [1, 1], "target": [0.01, 0.02]})
    regime = pl.DataFrame({"date": [cut], "regime": ["Bear"], "p_bull": [0.2], "confidence": [0.8]})
    scores = pl.DataFrame({"date": [cut, cut], "ticker": ["AAA", "BBB"], "z_vsm": [1.0, -1.0]})
    table, names = meta_features(events, prices, scores, regime)
    assert {"target", "vol_20", "roll_spread_20", "volume_z_20", "z_vsm", "regime_code", "p_bull"} <= set(names)
    assert table["regime_code"].to_list() == [-1.0, -1.0]
    truncated_table, _ = meta_features(events, prices.filter(pl.col("date") <= cut), scores, regime)
    assert table.equals(truncated_table)


def test_score_bets_sizes_by_probability(fitted, planted):
    bets = planted.head(30).with_columns(pl.lit(1).alias("side"))
    scored = score_bets(fitted.model, bets)
    assert scored.columns == ["date", "ticker", "probability", "bet_size"]
    np.testing.assert_allclose(scored["bet_size"], bet_size(scored["probability"].to_numpy()))
    assert score_bets(fitted.model, bets.head(0)).is_empty()


def test_promotion_rule():
    assert promotion_decision(0.58, None, 0.02).passed
    assert not promotion_decision(0.515, None, 0.02).passed
    assert not promotion_decision(float("nan"), None, 0.02).passed
    worse = promotion_decision(0.58, 0.60, 0.02)
    assert not worse.passed and "worse than the champion" in worse.reason
    assert promotion_decision(0.60, 0.60, 0.02).passed
