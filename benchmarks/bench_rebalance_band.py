"""Turnover controls: the daily book's 21-day turnover and its Sharpe, gross and net of costs.

For each seed, simulates the market (`quant_lib.data.simulate`, 100 tickers), builds the factor
rankings (registry factors, sector-neutral z-scores, HMM regime weights), the targets
(`build_targets`: HRP over the top 20, caps, vol targeting; no meta-confidence sizing) over the
last `--days` sessions, and replays each variant's book through `project_book` (paper fills:
slippage 2 bps, commission 1 bp), all in the same run; the first variant is the baseline with
no control. Columns:
- turnover_21d: one-way traded turnover 0.5 x sum |trade value| / value over 21 sessions, latest
  (mean over seeds) and mean over every day whose window starts after the first full buy-in;
- net / gross Sharpe: annualised Sharpe of the book's daily returns pooled over the seeds, net of
  costs, and gross (the costs paid so far added back to the value); se: Lo (2002),
  sqrt((1 + SR_d^2 / 2) / T) x sqrt(252);
- d_net: net Sharpe minus the baseline's, with the standard error of a difference of two
  correlated Sharpe ratios (Jobson-Korkie with Memmel's 2003 correction), on the same days.

    python benchmarks/bench_rebalance_band.py [--seeds 42,7,2024] [--days 500] [--variants all]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from datetime import date

import numpy as np
import polars as pl

from quant_lib.data.calendar import shift_trading_days
from quant_lib.data.pit import fundamentals_snapshot
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.data.universe import universe_membership
from quant_lib.execution.paper import PaperExecutor
from quant_lib.factors import compute_factor_values, compute_rankings, process_factors
from quant_lib.factors.smoothing import smooth_scores, smoothing_window
from quant_lib.portfolio.book import project_book, traded_turnover
from quant_lib.portfolio.construction import PortfolioConfig, build_targets, portfolio_values
from quant_lib.regime import DynamicFactorWeights, regime_path

END = date(2013, 12, 31)
SLIPPAGE_BPS, COMMISSION_BPS = 2.0, 1.0
NO_CONTROL = dict(rebalance_band=0.0, rebalance_rate=1.0, hold_rank=None, score_half_life=0.0, rebalance_frequency="daily")
VARIANTS: dict[str, dict] = {
    "no control (baseline)": NO_CONTROL,
    "band 2%": {**NO_CONTROL, "rebalance_band": 0.02},
    "band 2% + hold 40 (old default)": {**NO_CONTROL, "rebalance_band": 0.02, "hold_rank": 40},
    "weekly": {**NO_CONTROL, "rebalance_frequency": "weekly"},
    "monthly": {**NO_CONTROL, "rebalance_frequency": "monthly"},
    "ewm 3": {**NO_CONTROL, "score_half_life": 3.0},
    "ewm 10": {**NO_CONTROL, "score_half_life": 10.0},
    "band 2% + rate 0.2": {**NO_CONTROL, "rebalance_band": 0.02, "rebalance_rate": 0.2},
    "ewm 3 + weekly + band 2%": {**NO_CONTROL, "score_half_life": 3.0, "rebalance_frequency": "weekly", "rebalance_band": 0.02},
    "ewm 10 + weekly + band 2%": {**NO_CONTROL, "score_half_life": 10.0, "rebalance_frequency": "weekly", "rebalance_band": 0.02},
    "ewm 3 + band 1% + rate 0.2": {**NO_CONTROL, "score_half_life": 3.0, "rebalance_band": 0.01, "rebalance_rate": 0.2},
    "default: ewm 3 + band 2% + rate 0.2": {},
}


def market_tables(seed: int, days: int) -> dict[str, pl.DataFrame]:
    """Prices, universe and raw rankings of one simulated market, the rankings from `days` sessions
    (plus the longest smoothing window) before END."""
    market = simulate_market(SimulationConfig(n_tickers=100, seed=seed), end=END)
    sessions = market.prices["date"].unique().sort()
    snapshot = fundamentals_snapshot(market.fundamentals, sessions).frame
    scores = process_factors(compute_factor_values(market.prices, snapshot, market.universe).values)
    regimes = regime_path(market.prices.filter(pl.col("ticker") == "SPY"), lookback=252)
    first = shift_trading_days(END, 1 - days)
    rankings = compute_rankings(scores, regimes, DynamicFactorWeights(), with_metadata=False)
    rankings = rankings.filter(pl.col("date") >= shift_trading_days(first, -smoothing_window(40.0)))
    span = rankings.filter(pl.col("date") >= first)["date"].unique().sort()
    return {"rankings": rankings, "first": first, "span": span,
            "prices": market.prices.filter(pl.col("date") >= shift_trading_days(first, -300)),
            "universe": universe_membership(market.universe, span.to_list())}


def replay(tables: dict, config: PortfolioConfig, targets_cache: dict) -> dict[str, np.ndarray | float]:
    """The book of one variant on one market: daily net and gross returns, turnover path, invested."""
    if config.score_half_life not in targets_cache:
        ranked = smooth_scores(tables["rankings"], config.score_half_life).filter(pl.col("date") >= tables["first"])
        targets_cache[config.score_half_life] = (ranked, build_targets(ranked, tables["prices"], tables["universe"], config).targets)
    ranked, targets = targets_cache[config.score_half_life]
    prices = tables["prices"].filter(pl.col("date") >= tables["first"])
    executor = PaperExecutor(config.initial_cash, SLIPPAGE_BPS, COMMISSION_BPS, allow_short=False)
    holdings, orders = project_book(executor, tables["span"].to_list(), targets, prices, ranked, tables["universe"], config)
    values = portfolio_values(holdings, prices)
    costs = (orders.filter(pl.col("status") == "filled").join(prices.select("date", "ticker", "close"), on=["date", "ticker"])
             .group_by("date").agg(((pl.col("fill_price") - pl.col("close")).abs() * pl.col("filled_shares") + pl.col("commission")).sum().alias("cost")))
    book = values.join(costs, on="date", how="left").sort("date").with_columns(
        pl.col("cost").fill_null(0.0).cum_sum().shift(1, fill_value=0.0).alias("paid"))
    net = book["portfolio_value"].to_numpy()
    gross = net + book["paid"].to_numpy()
    trades = orders.filter(pl.col("status") == "filled").select(
        "date", (pl.col("filled_shares") * pl.col("fill_price")).alias("value"))
    turnover = traded_turnover(trades, values)["turnover_21d"].to_numpy()
    cash = holdings.filter(pl.col("ticker") == "CASH").join(values, on="date")
    built = int(np.argmax(1 - cash["value"].to_numpy() / cash["portfolio_value"].to_numpy() > 0.5))
    return {"net": net[1:] / net[:-1] - 1, "gross": gross[1:] / gross[:-1] - 1, "latest": float(turnover[-1]),
            "steady": turnover[built + 21:], "invested": float((1 - cash["value"] / cash["portfolio_value"]).mean())}


def sharpe(returns: np.ndarray) -> tuple[float, float]:
    """Annualised Sharpe and its standard error (Lo 2002, iid)."""
    daily = returns.mean() / returns.std(ddof=1)
    return float(daily * np.sqrt(252)), float(np.sqrt((1 + daily**2 / 2) / returns.size) * np.sqrt(252))


def sharpe_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """SR_a - SR_b (annualised) and its standard error: Jobson-Korkie (1981) with Memmel's (2003)
    correction, Var = (2 - 2 rho + (SR_a^2 + SR_b^2 - 2 SR_a SR_b rho^2) / 2) / T (daily SRs)."""
    sa, sb = a.mean() / a.std(ddof=1), b.mean() / b.std(ddof=1)
    rho = np.corrcoef(a, b)[0, 1]
    var = (2 - 2 * rho + 0.5 * (sa**2 + sb**2 - 2 * sa * sb * rho**2)) / a.size
    return float((sa - sb) * np.sqrt(252)), float(np.sqrt(max(var, 0.0)) * np.sqrt(252))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="42,7,2024", help="comma-separated simulation seeds (one market each)")
    parser.add_argument("--days", type=int, default=500, help="sessions per market (ending 2013-12-31)")
    parser.add_argument("--variants", default="all", help=f"comma-separated variant names, or all: {', '.join(VARIANTS)}")
    args = parser.parse_args()
    chosen = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    started = time.perf_counter()
    results: dict[str, list[dict]] = {v: [] for v in chosen}
    for seed in seeds:
        tables, cache = market_tables(seed, args.days), {}
        for name in chosen:
            results[name].append(replay(tables, dataclasses.replace(PortfolioConfig(), **VARIANTS[name]), cache))
        print(f"seed {seed}: {tables['span'].len()} sessions {tables['span'].min()} .. {tables['span'].max()} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    defaults = PortfolioConfig()
    print(f"default: score_half_life {defaults.score_half_life:g}, band {defaults.rebalance_band:.0%}, rate "
          f"{defaults.rebalance_rate:g}, hold_rank {defaults.hold_rank}, rebalance {defaults.rebalance_frequency}; "
          f"{len(seeds)} seeds x {args.days} sessions")
    base = np.concatenate([r["net"] for r in results[chosen[0]]])
    print(f"{'variant':<32} {'turn latest':>11} {'turn mean':>9} {'net SR':>7} {'se':>5} {'gross SR':>8} {'d_net':>6} {'se':>5} {'invested':>8}")
    for name in chosen:
        runs = results[name]
        net, gross = (np.concatenate([r[k] for r in runs]) for k in ("net", "gross"))
        (net_sr, net_se), (gross_sr, _), (diff, diff_se) = sharpe(net), sharpe(gross), sharpe_difference(net, base)
        print(f"{name:<32} {np.mean([r['latest'] for r in runs]):>11.1%} {np.concatenate([r['steady'] for r in runs]).mean():>9.1%} "
              f"{net_sr:>7.2f} {net_se:>5.2f} {gross_sr:>8.2f} {diff:>+6.2f} {diff_se:>5.2f} {np.mean([r['invested'] for r in runs]):>8.1%}")
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
