"""The weekly research computations behind the `research` assets (pure: frames in, frames out).

- ``backtest_candidates`` / ``evaluate_candidate`` / ``backtest_row``: the strategies the weekly
  backtest compares - the ranking top-N (inverse-volatility weights), optionally the same sized by
  the meta-labeler's walk-forward bet sizes, the stored portfolio book, buy & hold of the
  benchmark and equal weight - each backtested with the deflated Sharpe over its trial count.
- ``research_tearsheet``: the primary strategy's tear sheet with factor attribution.
- ``walk_forward_top_n``: expanding walk-forward choice of ``top_n`` with a purge gap.
- ``ga_best_run``: the GA's best parameters backtested over the window.

Trials (Bailey & Lopez de Prado 2014): ``strategy_trial_config`` is the configuration recorded as
one trial; it has no dates, so the same strategy evaluated on later data is the same trial.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from quant_lib.backtest import (
    BacktestConfig,
    WalkForwardSplitter,
    compute_metrics,
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    run_vectorized_backtest,
    sharpe_ratio,
    walk_forward_optimize,
)
from quant_lib.research.fitness import StrategyData, StrategyFitnessConfig, strategy_returns, top_n_strategy_weights

PERIODS_PER_YEAR = 252
RANKING_FACTORS = ("vsm", "bab", "qmj", "upside", "pead", "sentiment")
ROW_METRICS = {
    "sharpe": "sharpe_ratio", "annualized_return": "annualized_return", "max_drawdown": "max_drawdown",
    "deflated_sharpe": "deflated_sharpe", "probabilistic_sharpe": "probabilistic_sharpe", "total_return": "total_return",
    "volatility": "volatility", "sortino": "sortino_ratio", "annual_turnover": "annual_turnover", "cost_drag": "cost_drag",
}  # fmt: skip
HEADLINE_METRICS = (
    "total_return", "annualized_return", "volatility", "sharpe_ratio", "deflated_sharpe", "probabilistic_sharpe",
    "n_trials", "sortino_ratio", "calmar_ratio", "max_drawdown", "alpha", "beta", "information_ratio",
    "annual_turnover", "cost_drag", "total_costs",
)  # fmt: skip


def strategy_trial_config(signal: str, params: Mapping[str, Any], trading_assumptions: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration registered as one trial of the strategy experiment."""
    return {"signal": signal, "params": dict(sorted(params.items())), **trading_assumptions}


@dataclass(frozen=True)
class Candidate:
    """A strategy to backtest: its target weights and its trial configuration (None: a baseline)."""

    name: str
    weights: pl.DataFrame
    trial: dict[str, Any] | None
    buy_and_hold: bool = False


def meta_sized_weights(weights: pl.DataFrame, sizes: pl.DataFrame) -> pl.DataFrame:
    """``weight x clip(bet_size, 0, 1)`` where the meta-labeler sized the (date, ticker) bet;
    unsized bets keep their weight; the rest of the book stays in cash."""
    sized = weights.join(sizes.select("date", "ticker", "bet_size"), on=["date", "ticker"], how="left")
    scale = pl.col("bet_size").fill_null(1.0).clip(0.0, 1.0)
    return sized.select("date", "ticker", (pl.col("weight") * scale).alias("weight"))


def backtest_candidates(
    prices: pl.DataFrame,
    rankings: pl.DataFrame,
    book: pl.DataFrame | None,
    meta_sizes: pl.DataFrame | None,
    *,
    start: date,
    benchmark: str,
    top_n: int,
    vol_window: int,
    model_name: str,
    trading_assumptions: Mapping[str, Any],
) -> list[Candidate]:
    """The weekly comparison set (module docstring); ``prices`` is the whole window with its
    signal history, weights start at ``start``."""
    ranked = top_n_strategy_weights(
        prices, rankings.select("date", "ticker", "score"), exclude_tickers=(benchmark,), top_n=top_n, vol_window=vol_window,
    ).filter(pl.col("date") >= start)  # fmt: skip
    params = {"top_n": top_n, "vol_window": vol_window}
    candidates = [Candidate("ranking_top_n", ranked, strategy_trial_config(f"rankings:{model_name}", params, trading_assumptions))]
    if meta_sizes is not None and meta_sizes.height:
        trial = strategy_trial_config(f"rankings:{model_name}+meta_labeler", params, trading_assumptions)
        candidates.append(Candidate("ranking_top_n_meta", meta_sized_weights(ranked, meta_sizes), trial))
    if book is not None:
        book_model = book["model_name"][0] if "model_name" in book.columns else "portfolio_targets"
        trial = strategy_trial_config(f"portfolio_targets:{book_model}", {}, trading_assumptions)
        candidates.append(Candidate("portfolio_targets", book.select("date", "ticker", "weight"), trial))
    window = prices.filter(pl.col("date") >= start)
    if window.filter(pl.col("ticker") == benchmark).height:
        candidates.append(Candidate("benchmark", pl.DataFrame({"date": [start], "ticker": [benchmark], "weight": [1.0]}), None, True))
    universe = window.filter(pl.col("ticker") != benchmark)
    candidates.append(Candidate("equal_weight", universe.select("date", "ticker", (1.0 / pl.len().over("date")).alias("weight")), None))
    return candidates


def evaluate_candidate(candidate: Candidate, prices: pl.DataFrame, config: BacktestConfig, n_trials: int):
    """(BacktestResult, metrics with deflated / probabilistic Sharpe and n_trials). Buy & hold:
    one target row traded at the first possible close and then held."""
    engine_config = replace(config, rebalance="daily") if candidate.buy_and_hold else config
    result = run_vectorized_backtest(candidate.weights, prices, engine_config)
    returns = result.daily["returns"].to_numpy()
    trials = n_trials if candidate.trial is not None else 1
    metrics = {
        **result.metrics,
        "deflated_sharpe": deflated_sharpe_ratio(returns, trials, periods_per_year=PERIODS_PER_YEAR),
        "probabilistic_sharpe": probabilistic_sharpe_ratio(returns, 0.0, PERIODS_PER_YEAR),
        "n_trials": float(trials),
    }
    return result, metrics


def backtest_row(name: str, metrics: Mapping[str, Any], week: date, start: date, end: date) -> dict[str, Any]:
    """One row of the `backtests` table (run ids are added by the caller)."""
    first = ("sharpe", "annualized_return", "max_drawdown", "deflated_sharpe", "probabilistic_sharpe")
    return {
        "strategy": name, "week": week, "start_date": start, "end_date": end,
        **{column: metrics[ROW_METRICS[column]] for column in first},
        "n_trials": int(metrics["n_trials"]),
        **{column: metrics[key] for column, key in ROW_METRICS.items() if column not in first},
    }  # fmt: skip


def available_factors(rankings: pl.DataFrame) -> list[str]:
    return [f for f in RANKING_FACTORS if f in rankings.columns and rankings[f].null_count() < rankings.height]


def research_tearsheet(primary: str, results: Mapping[str, tuple[Any, dict]], rankings, prices, title: str, window: str) -> tuple[str, list[str]]:
    """(HTML tear sheet of ``primary`` with factor attribution, the attribution factors)."""
    from quant_lib.reporting import build_tearsheet
    from quant_lib.research.attribution import factor_attribution

    result, metrics = results[primary]
    factors = available_factors(rankings)
    attribution = None
    if factors:
        attribution = factor_attribution(
            result.positions, rankings.select("date", "ticker", *factors), prices, result.daily.select("date", "returns"), factors,
        )  # fmt: skip
    headline = {
        "strategy": primary, "window": window, **{key: metrics[key] for key in HEADLINE_METRICS},
        **{f"{name}_sharpe": results[name][1]["sharpe_ratio"] for name in results if name != primary},
        **{f"{name}_annualized_return": results[name][1]["annualized_return"] for name in results if name != primary},
    }  # fmt: skip
    return build_tearsheet(result.daily, attribution, title, headline), factors


def fold_metrics(returns: np.ndarray) -> dict[str, float]:
    equity = np.cumprod(1.0 + returns)
    metrics = compute_metrics(equity, None, 1.0, PERIODS_PER_YEAR)
    return {key: metrics[key] for key in ("sharpe_ratio", "total_return", "annualized_return", "volatility", "max_drawdown")}


@dataclass(frozen=True)
class WalkForwardResult:
    """Folds (with their dates), the stitched out-of-sample daily returns and their metrics."""

    folds: pl.DataFrame
    oos_daily: pl.DataFrame
    oos_metrics: dict[str, float]


def walk_forward_top_n(
    data: StrategyData,
    fitness_config: StrategyFitnessConfig,
    grid: list[int],
    n_splits: int,
    min_train_fraction: float,
    gap_days: int,
    initial_capital: float,
    map_fn: Callable[[Callable, list], list] = lambda fn, items: list(map(fn, items)),
) -> WalkForwardResult:
    """Per fold, the ``top_n`` with the best in-sample Sharpe, scored on the next block after a
    ``gap_days`` purge (``WalkForwardSplitter``, expanding). ValueError when the window is too short."""
    candidates = [{"top_n": n} for n in grid]
    dailies = map_fn(functools.partial(strategy_returns, prices=data, scores=None, config=fitness_config), candidates)
    dates = dailies[0]["date"]
    returns = np.column_stack([d["returns"].fill_null(0.0).to_numpy() for d in dailies])
    column = {n: k for k, n in enumerate(grid)}
    n_days = returns.shape[0]
    train_min = max(PERIODS_PER_YEAR // 12, math.ceil(min_train_fraction * n_days))
    test_size = (n_days - train_min - gap_days) // n_splits
    if test_size < 5:
        raise ValueError(
            f"{n_days} days cannot hold {n_splits} test blocks after {train_min} training days and a "
            f"{gap_days}-day gap: lower n_splits / min_train_fraction or raise history_years"
        )
    folds = walk_forward_optimize(
        candidates,
        evaluate=lambda params, index: sharpe_ratio(returns[index, column[params["top_n"]]], PERIODS_PER_YEAR),
        test_eval=lambda params, index: fold_metrics(returns[index, column[params["top_n"]]]),
        splitter=WalkForwardSplitter(n_splits, train_min, test_size, gap=gap_days),
        n_samples=n_days,
    )
    rows = list(folds.iter_rows(named=True))
    out_of_sample = np.concatenate([returns[r["test_start"] : r["test_end"] + 1, column[r["param_top_n"]]] for r in rows])
    oos_dates = pl.concat([dates.slice(r["test_start"], r["n_test"]) for r in rows])
    oos_daily = pl.DataFrame({"date": oos_dates, "returns": out_of_sample, "equity": initial_capital * np.cumprod(1.0 + out_of_sample)})
    oos_metrics = compute_metrics(oos_daily["equity"].to_numpy(), None, initial_capital, PERIODS_PER_YEAR)
    dated = folds.with_columns(dates.gather(folds[name]).alias(f"{name}_date") for name in ("train_start", "train_end", "test_start", "test_end"))
    return WalkForwardResult(dated, oos_daily, oos_metrics)


def ga_best_run(prices: pl.DataFrame, best: Mapping[str, Any], *, benchmark: str, vol_window: int, start: date, config: BacktestConfig, n_trials: int):
    """(BacktestResult, metrics) of the momentum top-N strategy with the GA's best parameters."""
    weights = top_n_strategy_weights(prices, None, exclude_tickers=(benchmark,), vol_window=vol_window, **best).filter(pl.col("date") >= start)
    result = run_vectorized_backtest(weights, prices.filter(pl.col("date") >= start), config)
    metrics = {
        **result.metrics,
        "n_trials": float(n_trials),
        "deflated_sharpe": deflated_sharpe_ratio(result.daily["returns"].to_numpy(), n_trials, periods_per_year=PERIODS_PER_YEAR),
    }
    return result, metrics
