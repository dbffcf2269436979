"""Vectorized backtest vs vectorbt: daily-rebalanced top-50 of 500 tickers over 10 years.

Both engines get the same prices, the same equal-weight top-50 targets (by a seeded random-walk
score) and proportional fees of 10 bps; execution at the close of the target's own day
(``execution_lag=0``, no slippage, no impact), which is vectorbt's ``from_orders`` with
``size_type="targetpercent", cash_sharing=True, group_by=True, call_seq="auto"``.
vectorbt is run once first so that numba has compiled, then both are timed warm (best of N).

Timings:
- ours end-to-end: ``run_vectorized_backtest`` from long polars frames (pivot, simulation, daily
  frame, sparse positions/trades frames, metrics);
- ours kernel: the compiled recursion alone, on the already pivoted matrices;
- vectorbt: ``Portfolio.from_orders`` from wide pandas frames plus ``final_value()``.

Run: ``.venv/bin/python benchmarks/bench_backtest.py``
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import polars as pl
import vectorbt as vbt

from quant_lib.backtest.vectorized import BacktestConfig, CostModel, prepare_price_panel, run_vectorized_backtest

N_DAYS, N_TICKERS, TOP_N, FEES, SEED, REPEATS = 2_520, 500, 50, 0.001, 7, 20
INITIAL_CAPITAL = 1_000_000.0


def make_panel() -> tuple[pd.DatetimeIndex, list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (N_DAYS, N_TICKERS)), axis=0))
    score = np.cumsum(rng.normal(size=(N_DAYS, N_TICKERS)), axis=0)
    top = np.argpartition(-score, TOP_N, axis=1)[:, :TOP_N]
    weights = np.zeros((N_DAYS, N_TICKERS))
    np.put_along_axis(weights, top, 1.0 / TOP_N, axis=1)
    dates = pd.bdate_range("2014-01-01", periods=N_DAYS)
    tickers = [f"T{i:03d}" for i in range(N_TICKERS)]
    return dates, tickers, close, weights


def best_of(function, repeats: int = REPEATS) -> tuple[float, object]:
    timings, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        timings.append(time.perf_counter() - start)
    return min(timings), result


def main() -> None:
    dates, tickers, close, weights = make_panel()
    close_pd = pd.DataFrame(close, index=dates, columns=tickers)
    weights_pd = pd.DataFrame(weights, index=dates, columns=tickers)
    day_values = dates.to_numpy().astype("datetime64[D]")
    date_column = pl.Series(np.repeat(day_values, N_TICKERS)).cast(pl.Date)
    ticker_column = pl.Series(np.tile(tickers, N_DAYS))
    prices_pl = pl.DataFrame({"date": date_column, "ticker": ticker_column, "adj_close": close.ravel()})
    nonzero = weights.ravel() > 0
    weights_pl = pl.DataFrame(
        {"date": date_column.filter(nonzero), "ticker": ticker_column.filter(nonzero), "weight": weights.ravel()[nonzero]}
    )
    config = BacktestConfig(
        initial_capital=INITIAL_CAPITAL,
        execution_lag=0,
        costs=CostModel(commission_bps=FEES * 1e4, slippage_bps=0.0, impact_coefficient=0.0),
        benchmark_ticker=None,
    )

    def vectorbt_run() -> float:
        portfolio = vbt.Portfolio.from_orders(
            close_pd,
            size=weights_pd,
            size_type="targetpercent",
            fees=FEES,
            cash_sharing=True,
            group_by=True,
            call_seq="auto",
            init_cash=INITIAL_CAPITAL,
            freq="1D",
        )
        return float(portfolio.final_value())

    def ours_run() -> float:
        return float(run_vectorized_backtest(weights_pl, prices_pl, config).daily["equity"][-1])

    panel = prepare_price_panel(prices_pl)

    def panel_run() -> float:
        return float(run_vectorized_backtest(weights_pl, panel, config).daily["equity"][-1])

    warmup = time.perf_counter()
    vectorbt_run()
    vectorbt_first = time.perf_counter() - warmup
    ours_run()
    panel_run()
    vbt_seconds, vbt_value = best_of(vectorbt_run)
    ours_seconds, ours_value = best_of(ours_run)
    panel_seconds, panel_value = best_of(panel_run)
    relative_gap = max(abs(ours_value / vbt_value - 1.0), abs(panel_value / vbt_value - 1.0))

    print(f"Daily-rebalanced top-{TOP_N} of {N_TICKERS} tickers x {N_DAYS} days, fees {FEES:.4f}, best of {REPEATS}")
    print(f"(vectorbt first call incl. numba compile: {vectorbt_first:.2f} s)")
    print(f"{'engine':<34}{'seconds':>10}{'final value':>20}{'speed-up':>10}")
    print(f"{'vectorbt from_orders (warm)':<34}{vbt_seconds:>10.4f}{vbt_value:>20.6f}{1.0:>9.1f}x")
    print(f"{'ours run_vectorized_backtest':<34}{ours_seconds:>10.4f}{ours_value:>20.6f}{vbt_seconds / ours_seconds:>9.1f}x")
    print(f"{'ours with a prepared PricePanel':<34}{panel_seconds:>10.4f}{panel_value:>20.6f}{vbt_seconds / panel_seconds:>9.1f}x")
    print(f"relative final-value gap vs vectorbt: {relative_gap:.2e} (target <= 1e-6): {'MET' if relative_gap <= 1e-6 else 'NOT MET'}")
    speedup = vbt_seconds / ours_seconds
    print(f"speed-up end-to-end: {speedup:.1f}x (target >= 10x): {'MET' if speedup >= 10 else 'NOT MET'}")
    print(f"end-to-end time: {ours_seconds * 1e3:.1f} ms (target < 50 ms): {'MET' if ours_seconds < 0.05 else 'NOT MET'}")


if __name__ == "__main__":
    main()
