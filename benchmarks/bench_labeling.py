"""Triple-barrier labels: ``quant_lib.labeling.triple_barrier`` vs a pandas per-event loop.

500 tickers x 10 years (2,520 trading days) of random-walk closes, an event every day per ticker
(~1.26M events: side +-1, target = a per-event volatility), ``pt_sl=(1, 1)``, ``max_holding=20``.

- ours: ``triple_barrier`` end to end from long polars frames (validation, joins that locate every
  entry and path end, the compiled parallel scan, the labelled frame); run once first so numba's
  cache is warm, then best of N.
- baseline: the straightforward mlfinlab-style loop (AFML snippet 3.2 / the seed's
  ``apply_triple_barrier``): for each event, slice the ticker's pandas close series up to the
  vertical barrier, compute the side-adjusted returns, take the first index above/below the
  barriers. It is timed on a random subsample of events and extrapolated linearly to all events
  (its cost is per event). Both label the subsample and must agree exactly.

Run: ``.venv/bin/python benchmarks/bench_labeling.py [--sample 3000]``
"""

from __future__ import annotations

import argparse
import time
import timeit

import numpy as np
import pandas as pd
import polars as pl

from quant_lib.labeling import triple_barrier

N_DAYS, N_TICKERS, MAX_HOLDING, SEED, REPEATS = 2_520, 500, 20, 11, 5


def make_data() -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(SEED)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, (N_DAYS, N_TICKERS)), axis=0))
    dates = pl.Series(pd.bdate_range("2014-01-01", periods=N_DAYS).to_numpy().astype("datetime64[D]")).cast(pl.Date)
    tickers = [f"T{i:03d}" for i in range(N_TICKERS)]
    prices = pl.DataFrame({
        "date": np.repeat(dates.to_numpy(), N_TICKERS), "ticker": np.tile(tickers, N_DAYS), "close": close.ravel(),
    }).with_columns(pl.col("date").cast(pl.Date))  # fmt: skip
    events = prices.select(
        "date", "ticker",
        pl.Series("side", rng.choice(np.array([-1, 1], dtype=np.int8), prices.height)),
        pl.Series("target", rng.uniform(0.01, 0.05, prices.height)),
    )  # fmt: skip
    return prices, events


def pandas_loop(prices: pl.DataFrame, events: pd.DataFrame, pt: float, sl: float, max_holding: int) -> list[tuple]:
    """mlfinlab-style: one pandas slice per event; returns (date, ticker, touch_date, label)."""
    series = {t: g.set_index("date")["close"] for t, g in prices.to_pandas().groupby("ticker")}
    out = []
    for event in events.itertuples(index=False):
        close = series[event.ticker]
        start = close.index.get_loc(event.date)
        path = close.iloc[start : start + max_holding + 1]
        returns = (path / close.iloc[start] - 1.0) * event.side
        pt_hits = returns[returns > pt * event.target].index
        sl_hits = returns[returns < -sl * event.target].index
        first_pt = pt_hits.min() if len(pt_hits) else pd.NaT
        first_sl = sl_hits.min() if len(sl_hits) else pd.NaT
        if pd.isna(first_pt) and pd.isna(first_sl):
            resolved = start + max_holding < len(close)
            out.append((event.date, event.ticker, close.index[start + max_holding] if resolved else None, 0 if resolved else None))
        elif pd.isna(first_sl) or (not pd.isna(first_pt) and first_pt < first_sl):
            out.append((event.date, event.ticker, first_pt, 1))
        else:
            out.append((event.date, event.ticker, first_sl, -1))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=3000, help="events the pandas loop labels (extrapolated)")
    args = parser.parse_args()
    prices, events = make_data()

    first = time.perf_counter()
    triple_barrier(prices.head(10_000), events.head(1_000), max_holding=MAX_HOLDING)
    compile_seconds = time.perf_counter() - first
    labels = triple_barrier(prices, events, max_holding=MAX_HOLDING)
    ours_seconds = min(timeit.repeat(lambda: triple_barrier(prices, events, max_holding=MAX_HOLDING), number=1, repeat=REPEATS))

    sample = events.sample(args.sample, seed=SEED).sort("date", "ticker")
    start = time.perf_counter()
    looped = pandas_loop(prices, sample.to_pandas(), 1.0, 1.0, MAX_HOLDING)
    loop_seconds = time.perf_counter() - start
    loop_total = loop_seconds / args.sample * events.height

    expected = pl.DataFrame(looped, schema=["date", "ticker", "touch_date", "label"], orient="row").with_columns(
        pl.col("date").cast(pl.Date), pl.col("touch_date").cast(pl.Date), pl.col("label").cast(pl.Int8)
    )
    got = labels.join(sample.select("date", "ticker"), on=["date", "ticker"], how="semi").select(expected.columns)
    agree = got.sort("date", "ticker").equals(expected.sort("date", "ticker"))

    print(f"Triple barrier: {N_TICKERS} tickers x {N_DAYS} days, {events.height:,} events, max_holding={MAX_HOLDING}, best of {REPEATS}")
    print(f"(first call incl. numba load/compile: {compile_seconds:.2f} s)")
    print(f"{'implementation':<46}{'seconds':>10}{'events/s':>14}{'speed-up':>10}")
    print(f"{'pandas per-event loop (extrapolated)':<46}{loop_total:>10.1f}{events.height / loop_total:>14,.0f}{1.0:>9.1f}x")
    print(f"{'  measured on ' + f'{args.sample:,} events':<46}{loop_seconds:>10.2f}")
    print(f"{'ours triple_barrier (polars + numba)':<46}{ours_seconds:>10.3f}{events.height / ours_seconds:>14,.0f}{loop_total / ours_seconds:>9.1f}x")
    print(f"labels identical on the {args.sample:,} sampled events: {agree}")
    print(f"time: {ours_seconds:.3f} s (target < 1 s): {'MET' if ours_seconds < 1 else 'NOT MET'}")
    speedup = loop_total / ours_seconds
    print(f"speed-up: {speedup:.0f}x (target >= 100x): {'MET' if speedup >= 100 else 'NOT MET'}")


if __name__ == "__main__":
    main()
