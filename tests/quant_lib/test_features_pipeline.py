"""FeaturePipeline (seed 004 §8.2): fit decisions, JSON state, targets apart from X, bad input."""

from __future__ import annotations

import json
import logging
from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.features import FeaturePipeline


@pytest.fixture(scope="module")
def prices() -> pl.DataFrame:
    market = simulate_market(SimulationConfig(n_tickers=6, seed=5), end=date(2006, 12, 29))
    return market.prices.drop("adj_close")


@pytest.fixture(scope="module")
def fitted(prices: pl.DataFrame) -> tuple[FeaturePipeline, np.ndarray, np.ndarray]:
    pipeline = FeaturePipeline(zscore_window=120)
    X, y = pipeline.fit_transform(prices)
    return pipeline, X, y


def test_fit_transform_outputs_and_column_decisions(fitted) -> None:
    pipeline, X, y = fitted
    assert X.shape == (y.size, len(pipeline.feature_names)) and np.isfinite(X).all() and np.isfinite(y).all()
    assert {"cp_score", "cp_severity", "log_return_1"} <= set(pipeline.feature_names)
    assert pipeline.dropped_features["hour_sin"] == "constant"  # daily bars: no intraday clock
    corr = np.abs(np.corrcoef(X, rowvar=False))
    np.fill_diagonal(corr, 0)
    assert corr.max() < 0.99  # decided on raw values at fit: z-scoring may move a pair a little
    assert any(reason == "correlated" for reason in pipeline.dropped_features.values())


def test_target_is_forward_log_return_and_not_in_features(prices: pl.DataFrame, fitted) -> None:
    pipeline, X, y = fitted
    index = pipeline.index_
    day, ticker = index.row(100)
    px = prices.filter(pl.col("ticker") == ticker).sort("date")
    i = px["date"].to_list().index(day)
    assert y[100] == pytest.approx(np.log(px["close"][i + 1] / px["close"][i]))
    assert max(abs(np.corrcoef(X[:, j], y)[0, 1]) for j in range(X.shape[1])) < 0.3


def test_state_is_json_and_restores_the_same_transform(prices: pl.DataFrame, fitted) -> None:
    pipeline, _, _ = fitted
    state = json.loads(json.dumps(pipeline.get_state()))
    assert state["feature_names"] == pipeline.feature_names and "cp_score" in state["rolling_means"]
    restored = FeaturePipeline.from_state(state)
    a, ya = pipeline.transform(prices)
    b, yb = restored.transform(prices)
    np.testing.assert_array_equal(a, b)
    assert np.isnan(ya[-1]) and np.array_equal(ya, yb, equal_nan=True)


def test_transform_is_truncation_invariant(prices: pl.DataFrame, fitted) -> None:
    pipeline, _, _ = fitted
    cut = date(2006, 6, 30)
    full = pipeline.transform_frame(prices).filter(pl.col("date") <= cut)
    part = pipeline.transform_frame(prices.filter(pl.col("date") <= cut))
    np.testing.assert_array_equal(part.select(pipeline.feature_names).to_numpy(), full.select(pipeline.feature_names).to_numpy())


def test_not_fitted_missing_columns_and_bad_input(prices: pl.DataFrame, fitted, caplog) -> None:
    with pytest.raises(RuntimeError, match="not fitted"):
        FeaturePipeline().transform(prices)
    state = fitted[0].get_state()
    state["feature_names"] = [*state["feature_names"], "order_book_imbalance"]
    for key in ("rolling_means", "rolling_stds", "rolling_counts"):
        state[key]["order_book_imbalance"] = 0.0
    with caplog.at_level(logging.WARNING):
        X, _ = FeaturePipeline.from_state(state).transform(prices)
    assert "order_book_imbalance" in caplog.text and X.shape[0] > 0 and np.all(X[:, -1] == 0.0)
    with pytest.raises(ValueError, match="too few rows"):
        FeaturePipeline().fit_transform(prices.filter(pl.col("date") < date(2005, 2, 15)))
    broken = prices.with_columns(pl.when(pl.int_range(pl.len()) == 7).then(float("nan")).otherwise(pl.col("close")).alias("close"))
    with pytest.raises(ValueError, match="NaN/Inf or non-positive"):
        FeaturePipeline().fit_transform(broken)
