"""Event-driven engine throughput (bars/s) with a no-op strategy, against Backtrader in the same run.

Both engines replay the same single-symbol minute bars with a strategy that never trades, so the
number measures the per-bar machinery (mark-to-market, risk checks, strategy call, bookkeeping).
Ours is timed end-to-end (data preparation, ATR, the bar loop, metrics), best of 3 over 200k bars;
Backtrader's ``Cerebro.run()`` with its defaults (preload, runonce), one run over the first 50k
bars (it is slow; the rate is per bar either way). Most of Backtrader's time is its PandasData
loader, which reads every row through pandas ``.iloc``. The issue quotes ~19k bars/s for Backtrader
on this machine; the target for ours is >= 100k bars/s.

Run: ``.venv/bin/python benchmarks/bench_event_engine.py``
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import polars as pl

from quant_lib.backtest.event_engine import BacktestEngine, EventBacktestConfig
from quant_lib.strategies import BaseStrategy

N_BARS, BACKTRADER_BARS, REPEATS, TARGET_BARS_PER_SECOND, BACKTRADER_QUOTED = 200_000, 50_000, 3, 100_000, 19_000


class NoOpStrategy(BaseStrategy):
    name = "noop"

    def generate_signals(self, data, predictions=None):
        return []


def make_bars(n: int) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.0005, n)))
    start = dt.datetime(2020, 1, 1)
    return pl.DataFrame(
        {
            "timestamp": pl.datetime_range(start, start + dt.timedelta(minutes=n - 1), "1m", eager=True),
            "open": close,
            "high": close * 1.0005,
            "low": close * 0.9995,
            "close": close,
            "volume": np.full(n, 1_000.0),
        }
    )


def time_ours(bars: pl.DataFrame) -> float:
    engine = BacktestEngine(EventBacktestConfig(periods_per_year=252 * 390))
    best = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = engine.run({"A": bars}, NoOpStrategy())
        best = min(best, time.perf_counter() - start)
    assert len(result.equity_curve) == bars.height
    return best


def time_backtrader(bars: pl.DataFrame) -> float | None:
    try:
        import backtrader as bt
    except ImportError:
        return None

    class NoOp(bt.Strategy):
        def next(self):
            pass

    frame = bars.head(BACKTRADER_BARS).to_pandas().set_index("timestamp")
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame, timeframe=bt.TimeFrame.Minutes))
    cerebro.addstrategy(NoOp)
    start = time.perf_counter()
    cerebro.run()
    return time.perf_counter() - start


def main() -> None:
    logging.disable(logging.WARNING)
    bars = make_bars(N_BARS)
    ours = time_ours(bars)
    backtrader = time_backtrader(bars)
    ours_rate = N_BARS / ours
    print(f"No-op strategy over {N_BARS:,} one-symbol bars, best of {REPEATS}")
    print(f"{'engine':<28}{'seconds':>10}{'bars/s':>14}")
    print(f"{'ours BacktestEngine':<28}{ours:>10.3f}{ours_rate:>14,.0f}")
    if backtrader is not None:
        backtrader_rate = BACKTRADER_BARS / backtrader
        print(f"{'backtrader Cerebro':<28}{backtrader:>10.3f}{backtrader_rate:>14,.0f}   (first {BACKTRADER_BARS:,} bars, 1 run)")
        print(f"speed-up vs backtrader (same run, bars/s): {ours_rate / backtrader_rate:.1f}x")
        print(f"issue's reference for backtrader on this machine: ~{BACKTRADER_QUOTED:,} bars/s")
    else:
        print(f"backtrader not installed; issue's reference: ~{BACKTRADER_QUOTED:,} bars/s on this machine")
    print(f"target >= {TARGET_BARS_PER_SECOND:,} bars/s: {'MET' if ours_rate >= TARGET_BARS_PER_SECOND else 'NOT MET'}")


if __name__ == "__main__":
    main()
