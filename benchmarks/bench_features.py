"""Benchmark: the 43 technical + 10 calendar features over a long multi-ticker panel.

Ours (`quant_lib.features`: polars expressions evaluated per ticker over the whole panel)
against TA-Lib called ticker by ticker for the indicators it has (SMA/EMA, MACD, RSI x2,
STOCHF, WILLR, CCI, +DI/-DI/ADX, ATR/NATR, BBANDS, MFI, OBV, ROC, STDDEV), in the same run on
the simulated market (default 500 tickers x 10 years). pandas-ta is not compared (not a project
dependency). Targets: < 2 s for the panel, within 2x of TA-Lib.
Run: `python benchmarks/bench_features.py [--tickers 500] [--years 10]`.
"""

from __future__ import annotations

import argparse
import time
from datetime import date

import numpy as np
import polars as pl
import talib

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.features.calendar_features import compute_time_features
from quant_lib.features.technical import TECHNICAL_FEATURE_NAMES, compute_technical_features


def talib_panel(groups: list[dict[str, np.ndarray]]) -> int:
    """The TA-Lib indicators of the feature set, ticker by ticker; returns the columns computed."""
    n = 0
    for g in groups:
        o, h, l, c, v = g["open"], g["high"], g["low"], g["close"], g["volume"]  # noqa: E741
        out = [talib.SMA(c, 10), talib.SMA(c, 20), talib.SMA(c, 50), talib.EMA(c, 12), talib.EMA(c, 26),
               *talib.MACD(c, 12, 26, 9), talib.RSI(c, 14), talib.RSI(c, 7), *talib.STOCHF(h, l, c, 14, 3, 0),
               talib.WILLR(h, l, c, 14), talib.CCI(h, l, c, 20), talib.PLUS_DI(h, l, c, 14), talib.MINUS_DI(h, l, c, 14),
               talib.ADX(h, l, c, 14), talib.ATR(h, l, c, 14), talib.NATR(h, l, c, 14), *talib.BBANDS(c, 20, 2.0, 2.0),
               talib.MFI(h, l, c, v, 14), talib.OBV(c, v), talib.ROC(c, 10), talib.STDDEV(np.log(c), 20)]
        n = len(out)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    t0 = time.perf_counter()
    market = simulate_market(SimulationConfig(n_tickers=args.tickers), end=date(2005 + args.years - 1, 12, 31))
    prices = market.prices.drop("adj_close")
    print(f"panel: {prices.height:,} rows ({prices['ticker'].n_unique()} tickers), simulated in {time.perf_counter() - t0:.1f} s")
    ours = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        features = compute_time_features(compute_technical_features(prices))
        ours.append(time.perf_counter() - t)
    theirs, splits = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        parts = prices.sort("ticker", "date").partition_by("ticker", maintain_order=True)
        groups = [{k: p[k].to_numpy() for k in ("open", "high", "low", "close", "volume")} for p in parts]
        splits.append(time.perf_counter() - t)
        t = time.perf_counter()
        n_talib = talib_panel(groups)
        theirs.append(time.perf_counter() - t)
    mine, ref, split = min(ours), min(theirs), min(splits)
    print(f"ours   : {mine:6.2f} s  ({len(TECHNICAL_FEATURE_NAMES)} technical + 10 calendar columns, {features.width} in all)")
    print(f"TA-Lib : {ref:6.2f} s  ({n_talib} indicator outputs, ticker by ticker) + {split:.2f} s to sort and split the panel")
    print(f"ratio ours / TA-Lib incl. split: {mine / (ref + split):.2f}x, indicators only: {mine / ref:.2f}x  "
          f"(target <= 2x: {'met' if mine <= 2 * (ref + split) else 'NOT met'}); "
          f"panel < 2 s: {'met' if mine < 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
