"""The weekly research computations: the comparison set with and without meta-labeler sizing."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from quant_lib.backtest import BacktestConfig
from quant_lib.research.weekly import backtest_candidates, evaluate_candidate, meta_sized_weights

START = date(2024, 1, 1)


def _prices(n_days: int = 120) -> pl.DataFrame:
    rng = np.random.default_rng(4)
    dates = [START + timedelta(days=i) for i in range(n_days)]
    return pl.concat([
        pl.DataFrame({"date": dates, "ticker": t, "adj_close": 50 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, n_days))), "volume": 1e6})
        for t in ("AAA", "BBB", "CCC", "SPY")
    ])  # fmt: skip


def test_meta_sized_weights_scale_sized_bets_and_keep_the_rest():
    weights = pl.DataFrame({"date": [START] * 3, "ticker": ["AAA", "BBB", "CCC"], "weight": [0.5, 0.3, 0.2]})
    sizes = pl.DataFrame({"date": [START, START], "ticker": ["AAA", "BBB"], "bet_size": [0.4, -0.3]})
    assert meta_sized_weights(weights, sizes)["weight"].to_list() == [0.2, 0.0, 0.2]


def test_candidates_with_and_without_meta_sizing_side_by_side():
    prices = _prices()
    rankings = prices.filter(pl.col("ticker") != "SPY").select("date", "ticker", pl.col("adj_close").alias("score"))
    start = START + timedelta(days=70)
    sizes = rankings.filter(pl.col("date") >= start).select("date", "ticker", pl.lit(0.5).alias("bet_size"))
    kwargs = dict(start=start, benchmark="SPY", top_n=2, vol_window=20, model_name="m", trading_assumptions={})
    names = [c.name for c in backtest_candidates(prices, rankings, None, sizes, **kwargs)]
    assert names == ["ranking_top_n", "ranking_top_n_meta", "benchmark", "equal_weight"]
    assert [c.name for c in backtest_candidates(prices, rankings, None, None, **kwargs)] == ["ranking_top_n", "benchmark", "equal_weight"]
    plain, meta = backtest_candidates(prices, rankings, None, sizes, **kwargs)[:2]
    config = BacktestConfig(rebalance="weekly", benchmark_ticker="SPY")
    window = prices.filter(pl.col("date") >= start)
    plain_result, _ = evaluate_candidate(plain, window, config, n_trials=2)
    meta_result, metrics = evaluate_candidate(meta, window, config, n_trials=2)
    assert metrics["n_trials"] == 2.0 and meta.trial["signal"] == "rankings:m+meta_labeler"
    invested = meta_result.daily["gross_exposure"].tail(20).mean()
    assert abs(invested - 0.5 * plain_result.daily["gross_exposure"].tail(20).mean()) < 0.05
