"""Rebalance band: the daily book's 21-day turnover and Sharpe with and without the no-trade band.

Replays the warehouse's `portfolio_targets` (written by `make run`) through the daily book
(`quant_lib.portfolio.book.project_book`: holdings fed by the paper broker's fills, slippage
2 bps, commission 1 bp) once per band, in the same run; band 0 is the baseline. Reports the
target churn (the old turnover measure), the book's traded 21-day turnover (latest and mean over
the days with a full window), the mean invested fraction and the annualised Sharpe of the book's daily value.

    python benchmarks/bench_rebalance_band.py [--warehouse DIR] [--bands 0,0.01,0.02,0.03,0.05]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import polars as pl

from quant_lib.data.calendar import trading_days
from quant_lib.execution.paper import PaperExecutor
from quant_lib.portfolio.book import project_book, traded_turnover
from quant_lib.portfolio.construction import PortfolioConfig, build_trade_lists, monthly_turnover, portfolio_values
from quant_resources.settings import get_settings
from quant_resources.warehouse import Warehouse


def measure(tables: dict[str, pl.DataFrame], band: float, rate: float, hold: int) -> dict[str, float]:
    config = dataclasses.replace(PortfolioConfig(), rebalance_band=band, rebalance_rate=rate, hold_rank=hold or None)
    targets = tables["portfolio_targets"]
    days = trading_days(targets["date"].min(), targets["date"].max())
    started = time.perf_counter()
    holdings, _ = project_book(PaperExecutor(config.initial_cash, 2.0, 1.0, allow_short=False), days, targets,
                               tables["prices"], tables["rankings"], tables["universe"], config)
    seconds = time.perf_counter() - started
    values = portfolio_values(holdings, tables["prices"])
    trades = build_trade_lists(targets, holdings, tables["prices"], tables["rankings"], tables["universe"], config)
    turnover = traded_turnover(trades, values)["turnover_21d"].to_numpy()
    cash = holdings.filter(pl.col("ticker") == "CASH").select("date", pl.col("value").alias("cash")).join(values, on="date")
    invested = float((1 - cash["cash"] / cash["portfolio_value"]).mean())
    returns = np.diff(values["portfolio_value"].to_numpy()) / values["portfolio_value"].to_numpy()[:-1]
    return {"band": band, "rate": rate, "hold": hold, "turnover_21d_latest": float(turnover[-1]), "turnover_21d_mean": float(turnover[21:].mean()),
            "sharpe": float(returns.mean() / returns.std(ddof=1) * np.sqrt(252)), "total_return": float(values["portfolio_value"][-1] / config.initial_cash - 1),
            "trades": trades.height, "invested": invested, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warehouse", default=None, help="warehouse folder (default: WAREHOUSE_DIR)")
    parser.add_argument("--bands", default="0,0.02,0,0.02,0.02,0.02", help="comma-separated bands (fraction of value)")
    parser.add_argument("--rates", default="1,1,1,1,0.5,1", help="comma-separated rebalance rates, one per band")
    parser.add_argument("--holds", default="0,0,40,40,40,60", help="comma-separated hold ranks (0: off), one per band")
    args = parser.parse_args()
    folder = args.warehouse or str(get_settings().warehouse_dir)
    wh = Warehouse(f"{folder}/quant.duckdb")
    targets = wh.read("portfolio_targets")
    first = targets["date"].min()
    tables = {"portfolio_targets": targets, **{name: wh.read(name).filter(pl.col("date") >= first)
                                               for name in ("prices", "rankings", "universe")}}
    churn = monthly_turnover(targets)["turnover_21d"].to_numpy()
    print(f"{targets['date'].n_unique()} target days {first} .. {targets['date'].max()}; "
          f"target churn (old measure): latest {churn[-1]:.1%}, mean {churn[21:].mean():.1%}")
    print(f"{'band':>6} {'rate':>5} {'hold':>4} {'turnover_21d':>13} {'mean_21d':>9} {'sharpe':>7} {'return':>8} {'trades':>7} {'invested':>8} {'sec':>5}")
    settings = zip(*(map(kind, text.split(",")) for kind, text in ((float, args.bands), (float, args.rates), (int, args.holds))))
    for band, rate, hold in settings:
        r = measure(tables, band, rate, hold)
        print(f"{r['band']:>6.2%} {r['rate']:>5.2f} {r['hold']:>4d} {r['turnover_21d_latest']:>13.1%} {r['turnover_21d_mean']:>9.1%} "
              f"{r['sharpe']:>7.2f} {r['total_return']:>8.2%} {r['trades']:>7d} {r['invested']:>8.1%} {r['seconds']:>5.1f}")


if __name__ == "__main__":
    main()
