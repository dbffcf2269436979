"""Fitness of the standard top-N strategy for the genetic optimizer (seed 000 §4.3.3, §7.2.1).

Strategy (decided at each close ``D`` from data up to ``D``; the backtest adds the execution lag):

1. score: momentum ``adj_close[D - skip] / adj_close[D - lookback] - 1`` per ticker
   (Jegadeesh & Titman 1993), or a supplied ``scores`` frame (date, ticker, score);
2. selection: the ``top_n`` highest scores of the date (the benchmark ticker excluded);
3. base weights: inverse volatility inside the selection, ``w_i = (1/s_i) / sum_j (1/s_j)`` with
   ``s_i`` the ``vol_window``-day standard deviation of daily returns;
4. exposure: ``L = min(max_leverage, vol_target / sigma_p, fractional_kelly * max(mu_p, 0) / sigma_p^2)``
   where ``mu_p`` / ``sigma_p`` are the annualised ``vol_window``-day mean / volatility of the base
   portfolio's daily returns (volatility targeting, seed §4.4.4; fractional Kelly leverage
   ``f * mu / sigma^2``, Thorp 2006, seed §4.4.3). A term is skipped when its parameter is None.

Objectives (``StrategyFitnessConfig.objective``):

- ``sharpe``: Sharpe ratio of the daily net returns;
- ``deflated_sharpe``: deflated Sharpe ratio for ``n_trials`` trials (Bailey & Lopez de Prado 2014);
- ``cv_sharpe``: mean Sharpe ratio over the test folds of ``PurgedWalkForwardCV`` (each day's
  return is its own label interval; the strategy has nothing to fit, so the folds measure the
  stability of the Sharpe ratio across sub-periods).

The weights are numpy over the whole (date x ticker) matrix (rolling moments by cumulative
sums, selection by a row-wise argsort); ``prepare_strategy_data`` pivots the long prices once so a
GA run does not re-pivot for every evaluation. ``quant_lib.backtest`` is imported inside the
functions so this module imports on its own.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

import numpy as np
import polars as pl

DEFAULT_STRATEGY_PARAMS: dict[str, Any] = {
    "lookback": 126,
    "skip": 0,
    "top_n": 20,
    "vol_target": None,
    "fractional_kelly": None,
}
STRATEGY_PARAM_NAMES = frozenset(DEFAULT_STRATEGY_PARAMS) | {"vol_window", "max_leverage"}


@dataclass(frozen=True)
class StrategyFitnessConfig:
    """How ``strategy_fitness`` scores a parameter set.

    ``backtest``: a ``quant_lib.backtest.vectorized.BacktestConfig`` (None -> its defaults).
    ``start_date``: only returns from this date on are scored (a common window for every
    lookback). ``defaults``: parameter values used when the GA does not search them.
    """

    objective: Literal["sharpe", "deflated_sharpe", "cv_sharpe"] = "sharpe"
    backtest: Any = None
    n_trials: int = 1
    trials_sharpe_variance: float | None = None
    n_splits: int = 5
    embargo_pct: float = 0.01
    start_date: date | None = None
    vol_window: int = 63
    max_leverage: float = 1.0
    periods_per_year: int = 252
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.objective not in ("sharpe", "deflated_sharpe", "cv_sharpe"):
            raise ValueError(f"objective must be sharpe, deflated_sharpe or cv_sharpe, got {self.objective!r}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.vol_window < 2:
            raise ValueError(f"vol_window must be >= 2, got {self.vol_window}")
        if not self.max_leverage > 0:
            raise ValueError(f"max_leverage must be > 0, got {self.max_leverage}")


@dataclass(frozen=True)
class StrategyData:
    """Long prices plus their wide (date x ticker) matrices, built once per GA run.

    ``prices``: the long frame the backtest reads; ``dates``/``tickers``: the matrix axes (sorted);
    ``price``: adj_close (NaN where missing); ``score``: the supplied scores aligned to the same
    axes, or None.
    """

    prices: pl.DataFrame
    dates: pl.Series
    tickers: list[str]
    price: np.ndarray
    score: np.ndarray | None


def _wide(frame: pl.DataFrame, value: str, dates: pl.Series, tickers: list[str]) -> np.ndarray:
    duplicated = frame.select("date", "ticker").is_duplicated()
    if duplicated.any():
        example = frame.filter(duplicated).row(0, named=True)
        raise ValueError(f"duplicate (date, ticker) rows, e.g. {example['date']} {example['ticker']}")
    row = np.searchsorted(dates.to_physical().to_numpy(), frame["date"].to_physical().to_numpy())
    col = frame["ticker"].cast(pl.Enum(tickers)).to_physical().to_numpy().astype(np.int64)
    matrix = np.full((dates.len(), len(tickers)), np.nan)
    matrix[row, col] = frame[value].cast(pl.Float64).fill_null(np.nan).to_numpy()
    return matrix


def prepare_strategy_data(
    prices: pl.DataFrame, scores: pl.DataFrame | None = None, exclude_tickers: tuple[str, ...] = ()
) -> StrategyData:
    """Pivot long prices (and scores) to matrices; ``exclude_tickers`` (the benchmark) are never held."""
    missing = [c for c in ("date", "ticker", "adj_close") if c not in prices.columns]
    if missing:
        raise ValueError(f"prices is missing columns {missing}; has {prices.columns}")
    if prices.schema["date"] != pl.Date:
        raise ValueError(f"prices.date must be pl.Date, got {prices.schema['date']}")
    prices = prices.with_columns(pl.col("ticker").cast(pl.String))
    universe = prices.filter(~pl.col("ticker").is_in(list(exclude_tickers)))
    if universe.height == 0:
        raise ValueError("prices has no ticker left after excluding the benchmark")
    dates = prices["date"].unique().sort()
    tickers = universe["ticker"].unique().sort().to_list()
    score = None
    if scores is not None:
        if missing := [c for c in ("date", "ticker", "score") if c not in scores.columns]:
            raise ValueError(f"scores is missing columns {missing}; has {scores.columns}")
        scores = scores.with_columns(pl.col("ticker").cast(pl.String)).filter(
            pl.col("ticker").is_in(tickers) & pl.col("date").is_in(dates.implode())
        )
        score = _wide(scores, "score", dates, tickers)
    return StrategyData(prices, dates, tickers, _wide(universe, "adj_close", dates, tickers), score)


def _shift_rows(matrix: np.ndarray, periods: int) -> np.ndarray:
    """``out[t] = matrix[t - periods]`` (NaN for the first ``periods`` rows)."""
    if periods == 0:
        return matrix
    shifted = np.full_like(matrix, np.nan)
    shifted[periods:] = matrix[:-periods]
    return shifted


def rolling_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Trailing mean and sample std over ``window`` rows via cumulative sums (NaN unless the
    window is complete); works on a vector or column-wise on a matrix."""
    valid = ~np.isnan(values)
    filled = np.where(valid, values, 0.0)
    zeros = np.zeros((1, *values.shape[1:]))
    cum = np.concatenate([zeros, np.cumsum(filled, axis=0)])
    cum_sq = np.concatenate([zeros, np.cumsum(filled * filled, axis=0)])
    cum_n = np.concatenate([zeros, np.cumsum(valid, axis=0)])
    total = np.full(values.shape, np.nan)
    total_sq = np.full(values.shape, np.nan)
    count = np.zeros(values.shape)
    total[window - 1 :] = cum[window:] - cum[:-window]
    total_sq[window - 1 :] = cum_sq[window:] - cum_sq[:-window]
    count[window - 1 :] = cum_n[window:] - cum_n[:-window]
    complete = count == window
    mean = np.where(complete, total / window, np.nan)
    variance = np.where(complete, (total_sq - window * mean * mean) / (window - 1), np.nan)
    return mean, np.sqrt(np.clip(variance, 0.0, None))


def top_n_weight_matrix(
    data: StrategyData,
    *,
    lookback: int = 126,
    skip: int = 0,
    top_n: int = 20,
    vol_target: float | None = None,
    fractional_kelly: float | None = None,
    vol_window: int = 63,
    max_leverage: float = 1.0,
    use_scores: bool = False,
    periods_per_year: int = 252,
) -> np.ndarray:
    """(date x ticker) target weights of the top-N strategy (see the module docstring)."""
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    if vol_window < 2:
        raise ValueError(f"vol_window must be >= 2, got {vol_window}")
    if not use_scores and not 0 <= skip < lookback:
        raise ValueError(f"momentum needs 0 <= skip < lookback, got skip={skip}, lookback={lookback}")
    for label, value in (("vol_target", vol_target), ("fractional_kelly", fractional_kelly)):
        if value is not None and not value > 0:
            raise ValueError(f"{label} must be > 0 or None, got {value}")
    price = data.price
    asset_return = price / _shift_rows(price, 1) - 1.0
    _, asset_vol = rolling_mean_std(asset_return, vol_window)
    if use_scores:
        if data.score is None:
            raise ValueError("use_scores=True but the strategy data has no score matrix")
        score = data.score
    else:
        score = _shift_rows(price, skip) / _shift_rows(price, lookback) - 1.0
    eligible = np.isfinite(score) & (asset_vol > 0)
    ranked = np.where(eligible, -score, np.inf)
    order = np.argsort(ranked, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
    selected = eligible & (rank < top_n)
    inverse_vol = np.where(selected, 1.0 / np.where(selected, asset_vol, 1.0), 0.0)
    row_total = inverse_vol.sum(axis=1, keepdims=True)
    base = np.divide(inverse_vol, row_total, out=np.zeros_like(inverse_vol), where=row_total > 0)

    if vol_target is None and fractional_kelly is None:
        return base * max_leverage
    base_return = np.nansum(_shift_rows(base, 1) * asset_return, axis=1)
    base_return[0] = np.nan
    mean, std = rolling_mean_std(base_return, vol_window)
    sigma = std * math.sqrt(periods_per_year)
    mu = mean * periods_per_year
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.full(base_return.shape, float(max_leverage))
        if vol_target is not None:
            leverage = np.minimum(leverage, vol_target / sigma)
        if fractional_kelly is not None:
            leverage = np.minimum(leverage, fractional_kelly * np.clip(mu, 0.0, None) / sigma**2)
    leverage = np.where(np.isfinite(leverage) & (sigma > 0), leverage, 0.0)
    return base * leverage[:, None]


def weights_to_long(weights: np.ndarray, data: StrategyData) -> pl.DataFrame:
    """Non-zero cells of a weight matrix as a long (date, ticker, weight) frame."""
    rows, cols = np.nonzero(weights > 0)
    return pl.DataFrame(
        {
            "date": data.dates.gather(rows),
            "ticker": pl.Series("ticker", data.tickers, dtype=pl.String).gather(cols),
            "weight": weights[rows, cols],
        }
    )


def top_n_strategy_weights(
    prices: pl.DataFrame,
    scores: pl.DataFrame | None = None,
    *,
    exclude_tickers: tuple[str, ...] = (),
    **params: Any,
) -> pl.DataFrame:
    """Long (date, ticker, weight) targets of the top-N strategy; ``params`` as in
    ``top_n_weight_matrix`` (scores are used when given)."""
    data = prepare_strategy_data(prices, scores, exclude_tickers)
    return weights_to_long(top_n_weight_matrix(data, use_scores=scores is not None, **params), data)


def _resolve_params(params: Mapping[str, Any], config: StrategyFitnessConfig) -> dict[str, Any]:
    unknown = set(params) - STRATEGY_PARAM_NAMES
    if unknown:
        raise ValueError(f"unknown strategy parameters {sorted(unknown)}; expected a subset of {sorted(STRATEGY_PARAM_NAMES)}")
    resolved = {
        **DEFAULT_STRATEGY_PARAMS,
        "vol_window": config.vol_window,
        "max_leverage": config.max_leverage,
        **dict(config.defaults),
        **dict(params),
    }
    for name in ("lookback", "skip", "top_n", "vol_window"):
        resolved[name] = int(resolved[name])
    return resolved


def strategy_returns(
    params: Mapping[str, Any],
    prices: pl.DataFrame | StrategyData,
    scores: pl.DataFrame | None,
    config: StrategyFitnessConfig,
) -> pl.DataFrame:
    """Backtest the strategy with ``params``; the daily frame from ``start_date`` on."""
    from quant_lib.backtest.vectorized import BacktestConfig, run_vectorized_backtest

    backtest_config = config.backtest or BacktestConfig()
    if isinstance(prices, StrategyData):
        data = prices
    else:
        benchmark = getattr(backtest_config, "benchmark_ticker", None)
        data = prepare_strategy_data(prices, scores, (benchmark,) if benchmark else ())
    resolved = _resolve_params(params, config)
    use_scores = data.score is not None and "lookback" not in params
    weights = weights_to_long(
        top_n_weight_matrix(data, use_scores=use_scores, periods_per_year=config.periods_per_year, **resolved),
        data,
    )
    if weights.height == 0:
        raise ValueError(f"parameters {dict(params)} select no position on any date")
    daily = run_vectorized_backtest(weights, data.prices, backtest_config).daily
    if config.start_date is not None:
        daily = daily.filter(pl.col("date") >= config.start_date)
    return daily


def strategy_fitness(
    params: Mapping[str, Any],
    prices: pl.DataFrame | StrategyData,
    scores: pl.DataFrame | None,
    config: StrategyFitnessConfig,
) -> float:
    """Fitness of one parameter set (higher is better); NaN when the strategy never trades.

    ``params`` may hold lookback, skip, top_n, vol_target, fractional_kelly, vol_window,
    max_leverage; missing ones come from ``config.defaults`` then ``DEFAULT_STRATEGY_PARAMS``.
    With ``lookback`` in ``params`` the score is momentum; otherwise ``scores`` is used when given.
    ``prices`` may be a ``StrategyData`` (from ``prepare_strategy_data``) to pivot only once.
    """
    from quant_lib.backtest import statistics

    try:
        daily = strategy_returns(params, prices, scores, config)
    except ValueError as exc:
        if "select no position" in str(exc):
            return float("nan")
        raise
    returns = daily["returns"].fill_null(0.0).to_numpy()
    if returns.size < 3 or not np.any(returns):
        return float("nan")
    periods = config.periods_per_year
    if config.objective == "sharpe":
        return float(statistics.sharpe_ratio(returns, periods_per_year=periods))
    if config.objective == "deflated_sharpe":
        return float(
            statistics.deflated_sharpe_ratio(
                returns,
                n_trials=config.n_trials,
                trials_sharpe_variance=config.trials_sharpe_variance,
                periods_per_year=periods,
            )
        )
    from quant_lib.backtest.validation import PurgedWalkForwardCV

    day_index = np.arange(returns.size)
    splitter = PurgedWalkForwardCV(n_splits=config.n_splits, embargo_pct=config.embargo_pct)
    fold_sharpes = [
        statistics.sharpe_ratio(returns[test_index], periods_per_year=periods)
        for _, test_index in splitter.split(day_index, day_index, day_index)
    ]
    return float(np.mean(fold_sharpes))


def make_strategy_fitness(
    prices: pl.DataFrame, scores: pl.DataFrame | None = None, config: StrategyFitnessConfig | None = None
) -> functools.partial:
    """Picklable ``fitness(params) -> float`` for ``GeneticOptimizer``: the data is pivoted once
    and bound with ``functools.partial``."""
    from quant_lib.backtest.vectorized import BacktestConfig

    config = config or StrategyFitnessConfig()
    benchmark = getattr(config.backtest or BacktestConfig(), "benchmark_ticker", None)
    data = prepare_strategy_data(prices, scores, (benchmark,) if benchmark else ())
    return functools.partial(strategy_fitness, prices=data, scores=None, config=config)
