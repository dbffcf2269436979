"""Top-N strategy fitness for the GA: weights against hand computations, no look-ahead
(truncation), vol targeting / fractional Kelly scaling, objectives, and a GA run on it."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from quant_lib.backtest import statistics
from quant_lib.backtest.vectorized import BacktestConfig, CostModel
from quant_lib.research import GeneticOptimizer
from quant_lib.research.fitness import (
    StrategyFitnessConfig,
    make_strategy_fitness,
    prepare_strategy_data,
    rolling_mean_std,
    strategy_fitness,
    strategy_returns,
    top_n_strategy_weights,
    top_n_weight_matrix,
)

START = dt.date(2020, 1, 1)


def trading_days(n_days: int) -> pl.Series:
    days = pl.date_range(START, START + dt.timedelta(days=2 * n_days), "1d", eager=True)
    return days.filter(days.dt.weekday() <= 5)[:n_days]


def planted_panel(n_tickers: int = 30, n_days: int = 600, seed: int = 0, drift_scale: float = 0.0008) -> pl.DataFrame:
    """Tickers with persistent drifts (momentum pays) plus a benchmark 'SPY' that trends hardest."""
    rng = np.random.default_rng(seed)
    drift = np.linspace(-drift_scale, drift_scale, n_tickers)
    returns = drift + rng.normal(0.0, 0.012, (n_days, n_tickers)) * rng.uniform(0.5, 1.5, n_tickers)
    benchmark = 0.004 + rng.normal(0.0, 0.005, n_days)
    prices = 100.0 * np.exp(np.cumsum(np.column_stack([returns, benchmark]), axis=0))
    tickers = [f"T{i:02d}" for i in range(n_tickers)] + ["SPY"]
    return pl.DataFrame(
        {
            "date": np.repeat(trading_days(n_days).to_numpy(), n_tickers + 1),
            "ticker": tickers * n_days,
            "adj_close": prices.ravel(),
            "volume": 1e6,
        }
    )


def wide(frame: pl.DataFrame, value: str) -> pl.DataFrame:
    return frame.pivot(on="ticker", index="date", values=value, sort_columns=True).sort("date")


def test_rolling_mean_std_matches_polars():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(50, 3))
    values[:4, 0] = np.nan
    values[20, 1] = np.nan
    mean, std = rolling_mean_std(values, 5)
    frame = pl.DataFrame(values, schema=["a", "b", "c"], orient="row").fill_nan(None)
    for j, column in enumerate(frame.columns):
        expected_mean = frame[column].rolling_mean(5).to_numpy()
        expected_std = frame[column].rolling_std(5).to_numpy()
        np.testing.assert_allclose(mean[:, j], expected_mean, rtol=1e-9, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(std[:, j], expected_std, rtol=1e-7, atol=1e-12, equal_nan=True)
    assert np.isnan(std[20:25, 1]).all(), "a window containing a missing value is undefined"


def test_top_n_selects_strongest_momentum_with_inverse_vol_weights():
    prices = planted_panel(n_tickers=8, n_days=200, drift_scale=0.004)
    weights = top_n_strategy_weights(prices, lookback=60, top_n=3, vol_window=20, exclude_tickers=("SPY",))
    last_day = weights["date"].max()
    on_day = weights.filter(pl.col("date") == last_day).sort("ticker")
    assert on_day.height == 3
    assert "SPY" not in set(weights["ticker"]), "the benchmark trends hardest but is never held"
    assert on_day["weight"].sum() == pytest.approx(1.0)

    closes = wide(prices, "adj_close")
    history = closes.filter(pl.col("date") <= last_day)
    momentum = {t: history[t][-1] / history[t][-61] - 1.0 for t in closes.columns[1:] if t != "SPY"}
    assert set(sorted(momentum, key=momentum.get)[-3:]) == set(on_day["ticker"])
    vol = {t: history[t].pct_change().tail(20).std() for t in on_day["ticker"]}
    inverse = {t: 1.0 / v for t, v in vol.items()}
    expected = {t: inverse[t] / sum(inverse.values()) for t in inverse}
    assert dict(zip(on_day["ticker"], on_day["weight"])) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("params", [{}, {"vol_target": 0.1, "fractional_kelly": 0.5}])
def test_weights_use_no_future_data(params):
    prices = planted_panel(n_tickers=12, n_days=260)
    full = top_n_strategy_weights(prices, lookback=40, top_n=4, vol_window=20, exclude_tickers=("SPY",), **params)
    for cutoff in trading_days(260).gather([120, 180, 259]).to_list():
        truncated = top_n_strategy_weights(
            prices.filter(pl.col("date") <= cutoff), lookback=40, top_n=4, vol_window=20, exclude_tickers=("SPY",), **params
        )
        assert full.filter(pl.col("date") == cutoff).equals(truncated.filter(pl.col("date") == cutoff))


def test_vol_target_scales_exposure_and_max_leverage_caps_it():
    data = prepare_strategy_data(planted_panel(n_tickers=12, n_days=300), exclude_tickers=("SPY",))
    common = {"lookback": 40, "top_n": 4, "vol_window": 20}
    low = top_n_weight_matrix(data, vol_target=0.02, max_leverage=100.0, **common)
    high = top_n_weight_matrix(data, vol_target=0.04, max_leverage=100.0, **common)
    active = low.sum(axis=1) > 0
    assert active.sum() > 100
    np.testing.assert_allclose(high[active], 2.0 * low[active], rtol=1e-12)
    capped = top_n_weight_matrix(data, vol_target=5.0, max_leverage=0.6, **common)
    assert capped.sum(axis=1).max() == pytest.approx(0.6)
    base = top_n_weight_matrix(data, **common)
    assert set(np.round(base.sum(axis=1), 12)) <= {0.0, 1.0}


def test_fractional_kelly_goes_flat_when_trend_is_negative():
    n_days, n_tickers = 250, 10
    wiggle = 0.002 * (-1.0) ** np.arange(n_days)[:, None] * np.linspace(0.5, 1.5, n_tickers)
    log_prices = np.cumsum(-0.004 + wiggle, axis=0)
    falling = pl.DataFrame(
        {
            "date": np.repeat(trading_days(n_days).to_numpy(), n_tickers),
            "ticker": [f"T{i:02d}" for i in range(n_tickers)] * n_days,
            "adj_close": 100.0 * np.exp(log_prices).ravel(),
        }
    )
    data = prepare_strategy_data(falling, exclude_tickers=("SPY",))
    without_kelly = top_n_weight_matrix(data, lookback=40, top_n=3, vol_window=20)
    assert without_kelly.sum() > 100.0
    weights = top_n_weight_matrix(data, lookback=40, top_n=3, vol_window=20, fractional_kelly=0.5)
    assert weights.sum() == 0.0
    config = StrategyFitnessConfig(defaults={"fractional_kelly": 0.5, "vol_window": 20})
    assert math.isnan(strategy_fitness({"lookback": 40, "top_n": 3}, falling, None, config))


def test_sharpe_objective_is_the_backtest_sharpe_and_deterministic():
    prices = planted_panel()
    config = StrategyFitnessConfig(
        backtest=BacktestConfig(costs=CostModel(1.0, 2.0, 0.0)), start_date=trading_days(600)[150]
    )
    params = {"lookback": 60, "top_n": 5, "vol_target": 0.15}
    daily = strategy_returns(params, prices, None, config)
    assert daily["date"].min() == trading_days(600)[150]
    expected = statistics.sharpe_ratio(daily["returns"].fill_null(0.0).to_numpy())
    fitness = make_strategy_fitness(prices, config=config)
    assert fitness(params) == pytest.approx(expected, rel=1e-12)
    assert fitness(params) == strategy_fitness(params, prices, None, config)
    assert fitness(params) > 0.5, "momentum on planted drifts must pay"


def test_deflated_and_cross_validated_objectives():
    prices = planted_panel()
    start = trading_days(600)[150]
    params = {"lookback": 60, "top_n": 5}
    daily = strategy_returns(params, prices, None, StrategyFitnessConfig(start_date=start))
    returns = daily["returns"].fill_null(0.0).to_numpy()
    deflated = [
        strategy_fitness(params, prices, None, StrategyFitnessConfig("deflated_sharpe", n_trials=n, start_date=start))
        for n in (1, 10, 200)
    ]
    assert all(0.0 <= value <= 1.0 for value in deflated)
    assert deflated[0] > deflated[1] > deflated[2]
    assert deflated[1] == pytest.approx(statistics.deflated_sharpe_ratio(returns, n_trials=10))
    cv = strategy_fitness(params, prices, None, StrategyFitnessConfig("cv_sharpe", n_splits=4, start_date=start))
    folds = [statistics.sharpe_ratio(block) for block in np.array_split(returns, 4)]
    assert cv == pytest.approx(np.mean(folds))


def test_supplied_scores_drive_selection():
    prices = planted_panel(n_tickers=6, n_days=120)
    tickers = [f"T{i:02d}" for i in range(6)]
    dates = trading_days(120)
    scores = pl.DataFrame(
        {
            "date": np.repeat(dates.to_numpy(), 6),
            "ticker": tickers * 120,
            "score": np.tile([5.0, 0.0, 4.0, 1.0, 3.0, 2.0], 120),
        }
    )
    weights = top_n_strategy_weights(prices, scores, top_n=2, vol_window=10, exclude_tickers=("SPY",))
    assert set(weights["ticker"]) == {"T00", "T02"}


def test_ga_over_strategy_parameters_is_reproducible():
    fitness = make_strategy_fitness(planted_panel(), config=StrategyFitnessConfig(start_date=trading_days(600)[130]))
    ranges = {"lookback": (20, 120, int), "top_n": (2, 12, int), "vol_target": (0.05, 0.3, float)}
    first = GeneticOptimizer(fitness, ranges, population_size=6, n_generations=2, seed=5).run()
    second = GeneticOptimizer(fitness, ranges, population_size=6, n_generations=2, seed=5).run()
    assert first.best_params == second.best_params and first.best_fitness == second.best_fitness
    assert first.best_fitness == first.all_evaluations["fitness"].max()
    assert fitness(first.best_params) == first.best_fitness


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p: strategy_fitness({"lookbak": 10}, p, None, StrategyFitnessConfig()), "unknown strategy parameters"),
        (lambda p: top_n_strategy_weights(p, lookback=10, skip=10), "0 <= skip < lookback"),
        (lambda p: top_n_strategy_weights(p.drop("adj_close")), r"missing columns \['adj_close'\]"),
        (lambda p: top_n_strategy_weights(pl.concat([p, p.head(1)])), "duplicate"),
        (lambda p: top_n_strategy_weights(p, top_n=0), "top_n"),
        (lambda p: StrategyFitnessConfig(objective="sortino"), "objective"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call(planted_panel(n_tickers=4, n_days=80))
