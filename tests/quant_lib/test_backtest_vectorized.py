"""Vectorized target-weight backtest: known answers, vectorbt equivalence, no look-ahead, costs, bad input."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_lib.backtest.vectorized import (
    BacktestConfig,
    CostModel,
    PricePanel,
    prepare_price_panel,
    run_vectorized_backtest,
)

CAPITAL = 1_000_000.0
NO_COSTS = CostModel(commission_bps=0.0, slippage_bps=0.0, impact_coefficient=0.0)


def _business_days(n: int, start: date = date(2021, 1, 4)) -> list[date]:
    return pd.bdate_range(start, periods=n).date.tolist()


def _panel(n_days: int = 60, n_tickers: int = 6, seed: int = 0, volume: bool = False):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, (n_days, n_tickers)), axis=0))
    days = _business_days(n_days)
    tickers = [f"T{i:02d}" for i in range(n_tickers)]
    frame = pl.DataFrame(
        {
            "date": np.repeat(np.array(days, dtype="datetime64[D]"), n_tickers),
            "ticker": np.tile(tickers, n_days),
            "adj_close": close.ravel(),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    if volume:
        frame = frame.with_columns(volume=pl.Series(rng.uniform(1e5, 1e6, n_days * n_tickers)))
    return frame, close, days, tickers


def _weights_frame(weights: np.ndarray, days: list[date], tickers: list[str]) -> pl.DataFrame:
    rows, cols = np.nonzero(weights)
    return pl.DataFrame(
        {"date": [days[r] for r in rows], "ticker": [tickers[c] for c in cols], "weight": weights[rows, cols]}
    )


def _top_k_weights(close: np.ndarray, k: int, seed: int, total: float = 1.0) -> np.ndarray:
    score = np.cumsum(np.random.default_rng(seed).normal(size=close.shape), axis=0)
    top = np.argsort(-score, axis=1)[:, :k]
    weights = np.zeros_like(close)
    np.put_along_axis(weights, top, total / k, axis=1)
    return weights


def test_buy_and_hold_without_costs_follows_the_price_path():
    prices, close, days, tickers = _panel(n_days=40, n_tickers=3)
    weights = pl.DataFrame({"date": [days[0]], "ticker": ["T01"], "weight": [1.0]})
    result = run_vectorized_backtest(weights, prices, BacktestConfig(costs=NO_COSTS, benchmark_ticker=None))
    equity = result.daily["equity"].to_numpy()
    assert equity[0] == CAPITAL  # decided at day 0's close, traded at day 1's close
    expected = CAPITAL * close[1:, 1] / close[1, 1]
    np.testing.assert_allclose(equity[1:], expected, rtol=1e-12)
    assert result.trades.height == 1  # no rebalancing trade needed while fully invested in one asset
    assert result.trades["trade_value"][0] == pytest.approx(CAPITAL)
    assert result.metrics["total_return"] == pytest.approx(close[-1, 1] / close[1, 1] - 1, rel=1e-12)


def test_buy_and_hold_pays_one_entry_commission():
    prices, close, days, _ = _panel(n_days=40, n_tickers=3)
    weights = pl.DataFrame({"date": [days[0]], "ticker": ["T01"], "weight": [1.0]})
    fee = 5e-4
    config = BacktestConfig(costs=CostModel(commission_bps=3.0, slippage_bps=2.0, impact_coefficient=0.0))
    result = run_vectorized_backtest(weights, prices, config)
    invested = CAPITAL / (1 + fee)  # the buy is cut so that value + commission fits in the cash
    np.testing.assert_allclose(result.daily["equity"].to_numpy()[1:], invested * close[1:, 1] / close[1, 1], rtol=1e-12)
    assert result.trades.height == 1
    assert result.trades["cost"][0] == pytest.approx(CAPITAL - invested, rel=1e-12)
    assert result.metrics["total_costs"] == pytest.approx(CAPITAL - invested, rel=1e-12)


@pytest.mark.parametrize("total_weight", [1.0, 0.8])
def test_matches_vectorbt_targetpercent(total_weight):
    import vectorbt as vbt
    prices, close, days, tickers = _panel(n_days=150, n_tickers=12, seed=1)
    weights = _top_k_weights(close, 4, seed=2, total=total_weight)
    fee = 0.001
    index = pd.DatetimeIndex(days)
    portfolio = vbt.Portfolio.from_orders(
        pd.DataFrame(close, index=index, columns=tickers),
        size=pd.DataFrame(weights, index=index, columns=tickers),
        size_type="targetpercent",
        fees=fee,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        init_cash=CAPITAL,
        freq="1D",
    )
    config = BacktestConfig(execution_lag=0, costs=CostModel(fee * 1e4, 0.0, 0.0), benchmark_ticker=None)
    result = run_vectorized_backtest(_weights_frame(weights, days, tickers), prices, config)
    ours = result.daily["equity"].to_numpy()
    assert ours[-1] == pytest.approx(float(portfolio.final_value()), rel=1e-6)
    np.testing.assert_allclose(ours, portfolio.value().to_numpy(), rtol=1e-9)
    assert result.trades.height == len(portfolio.orders.records)


def test_monthly_rebalance_matches_vectorbt_with_orders_on_first_trading_days():
    import vectorbt as vbt
    prices, close, days, tickers = _panel(n_days=130, n_tickers=8, seed=4)
    weights = _top_k_weights(close, 3, seed=5)
    months = np.array([d.month for d in days])
    first_of_month = np.concatenate(([True], months[1:] != months[:-1]))
    sizes = np.where(first_of_month[:, None], weights, np.nan)
    index = pd.DatetimeIndex(days)
    portfolio = vbt.Portfolio.from_orders(
        pd.DataFrame(close, index=index, columns=tickers),
        size=pd.DataFrame(sizes, index=index, columns=tickers),
        size_type="targetpercent", fees=0.0005, cash_sharing=True, group_by=True, call_seq="auto",
        init_cash=CAPITAL, freq="1D",
    )
    config = BacktestConfig(rebalance="monthly", execution_lag=0, costs=CostModel(5.0, 0.0, 0.0), benchmark_ticker=None)
    result = run_vectorized_backtest(_weights_frame(weights, days, tickers), prices, config)
    assert result.daily["equity"][-1] == pytest.approx(float(portfolio.final_value()), rel=1e-6)
    traded_days = set(result.trades["date"].to_list())
    assert traded_days == {d for d, first in zip(days, first_of_month) if first}


def test_weekly_rebalance_trades_on_first_trading_day_of_each_week():
    prices, close, days, tickers = _panel(n_days=30, n_tickers=5)
    weights = _top_k_weights(close, 2, seed=3)
    result = run_vectorized_backtest(
        _weights_frame(weights, days, tickers), prices, BacktestConfig(rebalance="weekly", benchmark_ticker=None)
    )
    traded = sorted(set(result.trades["date"].to_list()))
    assert traded and all(d.weekday() == 0 for d in traded)  # business days: first day of the week is Monday


def test_no_look_ahead_in_prices_or_weights():
    prices, close, days, tickers = _panel(n_days=50, n_tickers=6, seed=7)
    weights = _top_k_weights(close, 2, seed=8)
    config = BacktestConfig(costs=CostModel(2.0, 1.0, 0.0), execution_lag=1, benchmark_ticker=None)
    base = run_vectorized_backtest(_weights_frame(weights, days, tickers), prices, config).daily["equity"].to_numpy()
    cut = 30  # day D

    future_shock = np.ones_like(close)
    future_shock[cut + 1:] = np.random.default_rng(1).uniform(0.5, 1.5, future_shock[cut + 1:].shape)
    shocked_prices, _, _, _ = _panel(n_days=50, n_tickers=6, seed=7)
    shocked_prices = shocked_prices.with_columns(pl.col("adj_close") * pl.Series(future_shock.ravel()))
    shocked = run_vectorized_backtest(_weights_frame(weights, days, tickers), shocked_prices, config)
    assert np.array_equal(shocked.daily["equity"].to_numpy()[: cut + 1], base[: cut + 1])
    assert not np.allclose(shocked.daily["equity"].to_numpy()[cut + 1:], base[cut + 1:])

    changed = weights.copy()
    changed[cut:] = np.roll(changed[cut:], 3, axis=1)  # different targets decided from day D on
    moved = run_vectorized_backtest(_weights_frame(changed, days, tickers), prices, config).daily["equity"].to_numpy()
    # decided at D's close, traded at D+1's close: equity through D is identical ...
    assert np.array_equal(moved[: cut + 1], base[: cut + 1])
    # ... D+1 differs only by the trading costs of the different trades, later days by returns
    assert moved[cut + 1] == pytest.approx(base[cut + 1], rel=1e-3)
    assert not np.allclose(moved[cut + 2:], base[cut + 2:])

    no_costs = BacktestConfig(costs=NO_COSTS, execution_lag=1, benchmark_ticker=None)
    free_base = run_vectorized_backtest(_weights_frame(weights, days, tickers), prices, no_costs).daily["equity"]
    free_moved = run_vectorized_backtest(_weights_frame(changed, days, tickers), prices, no_costs).daily["equity"]
    np.testing.assert_allclose(free_moved.to_numpy()[: cut + 2], free_base.to_numpy()[: cut + 2], rtol=1e-12)


def test_execution_lag_shifts_the_first_trade():
    prices, close, days, tickers = _panel(n_days=20, n_tickers=3)
    weights = pl.DataFrame({"date": [days[2]], "ticker": ["T00"], "weight": [0.5]})
    for lag in (0, 1, 3):
        result = run_vectorized_backtest(weights, prices, BacktestConfig(execution_lag=lag, benchmark_ticker=None))
        assert result.trades["date"].min() == days[2 + lag]


def test_weight_on_a_non_trading_date_waits_for_the_next_trading_day():
    prices, close, days, tickers = _panel(n_days=20, n_tickers=3)
    saturday = days[4] + timedelta(days=(5 - days[4].weekday()) % 7)
    weights = pl.DataFrame({"date": [saturday], "ticker": ["T00"], "weight": [0.5]})
    result = run_vectorized_backtest(weights, prices, BacktestConfig(execution_lag=1, benchmark_ticker=None))
    next_trading = min(d for d in days if d > saturday)
    assert result.trades["date"].min() == days[days.index(next_trading) + 1]


def test_costs_follow_the_documented_formulas():
    prices, close, days, tickers = _panel(n_days=45, n_tickers=4, seed=9, volume=True)
    weights = _top_k_weights(close, 2, seed=10, total=0.9)
    costs = CostModel(commission_bps=1.0, slippage_bps=2.0, impact_coefficient=0.5)
    result = run_vectorized_backtest(_weights_frame(weights, days, tickers), prices, BacktestConfig(costs=costs))
    wide = prices.pivot(on="ticker", index="date", values=["adj_close", "volume"]).sort("date").to_pandas()
    price_table = wide[[f"adj_close_{t}" for t in tickers]].to_numpy()
    volume_table = wide[[f"volume_{t}" for t in tickers]].to_numpy()
    vol = pd.DataFrame(price_table).pct_change().rolling(20, min_periods=1).std().to_numpy()
    adv = pd.DataFrame(price_table * volume_table).rolling(20, min_periods=1).mean().to_numpy()
    day_index = {d: i for i, d in enumerate(days)}
    checked_impact = 0
    for row in result.trades.iter_rows(named=True):
        i, j = day_index[row["date"]], tickers.index(row["ticker"])
        value = abs(row["trade_value"])
        impact = 0.5 * vol[i, j] * np.sqrt(value / adv[i, j]) * value if np.isfinite(vol[i, j]) else 0.0
        checked_impact += impact > 0
        if row["trade_weight"] > 0 and row["cost"] < value * 3e-4 + impact - 1e-6:
            continue  # a cash-limited (partially filled) buy
        assert row["cost"] == pytest.approx(value * 3e-4 + impact, rel=1e-9)
    assert checked_impact > 10
    without_volume = run_vectorized_backtest(
        _weights_frame(weights, days, tickers), prices.drop("volume"), BacktestConfig(costs=costs)
    )
    ratio = without_volume.trades["cost"] / without_volume.trades["trade_value"].abs()
    np.testing.assert_allclose(ratio.to_numpy(), 3e-4, rtol=1e-9)


def test_missing_price_blocks_trading_and_keeps_the_holding():
    prices, close, days, tickers = _panel(n_days=20, n_tickers=2)
    gap_day = days[10]
    holey = prices.filter(~((pl.col("ticker") == "T01") & (pl.col("date") == gap_day)))
    weights = np.tile([0.5, 0.5], (20, 1))
    result = run_vectorized_backtest(_weights_frame(weights, days, tickers), holey, BacktestConfig(benchmark_ticker=None))
    assert result.trades.filter((pl.col("date") == gap_day) & (pl.col("ticker") == "T01")).height == 0
    held_before = result.positions.filter((pl.col("date") == days[9]) & (pl.col("ticker") == "T01"))["weight"][0]
    held_on_gap = result.positions.filter((pl.col("date") == gap_day) & (pl.col("ticker") == "T01"))["weight"][0]
    assert held_on_gap == pytest.approx(held_before, rel=0.05)  # still held, valued at the last price
    assert result.daily["equity"].is_finite().all()


def test_outputs_are_consistent():
    prices, close, days, tickers = _panel(n_days=40, n_tickers=6, seed=12)
    spy = prices.filter(pl.col("ticker") == "T00").with_columns(ticker=pl.lit("SPY"))
    weights = _top_k_weights(close, 3, seed=13, total=0.9)
    result = run_vectorized_backtest(_weights_frame(weights, days, tickers), pl.concat([prices, spy]), BacktestConfig())
    daily = result.daily
    assert daily.columns == [
        "date", "equity", "returns", "gross_exposure", "net_exposure", "turnover", "costs", "cash_weight",
        "benchmark_returns",
    ]
    held = result.positions.group_by("date").agg(pl.col("weight").sum()).sort("date")
    joined = daily.join(held, on="date", how="left").with_columns(pl.col("weight").fill_null(0.0))
    np.testing.assert_allclose((joined["weight"] + joined["cash_weight"]).to_numpy(), 1.0, rtol=1e-9)
    np.testing.assert_allclose(daily["benchmark_returns"].to_numpy()[1:], close[1:, 0] / close[:-1, 0] - 1)
    np.testing.assert_allclose(
        daily["returns"].to_numpy(), daily["equity"].to_numpy() / np.concatenate(([CAPITAL], daily["equity"][:-1])) - 1
    )
    assert result.metrics["total_trades"] == result.trades.height
    assert {"alpha", "beta", "information_ratio", "tracking_error", "avg_daily_turnover", "sharpe_ratio"} <= set(
        result.metrics
    )
    assert np.isfinite(result.metrics["beta"])


def test_price_panel_reuse_and_unsorted_input_give_identical_results():
    prices, close, days, tickers = _panel(n_days=40, n_tickers=6, seed=14)
    weights = _weights_frame(_top_k_weights(close, 2, seed=15), days, tickers)
    panel = prepare_price_panel(prices)
    assert isinstance(panel, PricePanel)
    direct = run_vectorized_backtest(weights, prices).daily
    reused = run_vectorized_backtest(weights, panel).daily
    ticker_major = run_vectorized_backtest(weights, prices.sort("ticker", "date")).daily
    shuffled = run_vectorized_backtest(weights, prices.sample(fraction=1.0, shuffle=True, seed=3)).daily
    for other in (reused, ticker_major, shuffled):
        assert other.equals(direct)


def test_bad_input_raises_clear_errors():
    prices, close, days, tickers = _panel(n_days=10, n_tickers=2)
    weights = pl.DataFrame({"date": [days[0]], "ticker": ["T00"], "weight": [0.5]})
    with pytest.raises(ValueError, match="duplicate"):
        run_vectorized_backtest(weights, pl.concat([prices, prices.head(1)]))
    with pytest.raises(ValueError, match="missing columns"):
        run_vectorized_backtest(weights, prices.drop("adj_close"))
    with pytest.raises(ValueError, match="non-positive"):
        run_vectorized_backtest(weights, prices.with_columns(adj_close=pl.lit(-1.0)))
    with pytest.raises(ValueError, match="non-finite"):
        run_vectorized_backtest(weights.with_columns(weight=pl.lit(float("nan"))), prices)
    with pytest.raises(ValueError, match="duplicate"):
        run_vectorized_backtest(pl.concat([weights, weights]), prices)
    with pytest.raises(ValueError, match="rebalance"):
        BacktestConfig(rebalance="hourly")
    with pytest.raises(ValueError, match="execution_lag"):
        BacktestConfig(execution_lag=-1)
