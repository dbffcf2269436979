"""The daily book: fills feed the next day's holdings, the no-trade band and partial adjustment
cut turnover, reconciliation names what differs."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_lib.execution.paper import PaperExecutor
from quant_lib.execution.trade_list import build_trade_list
from quant_lib.portfolio.book import fills_of, project_book, reconcile, traded_turnover
from quant_lib.portfolio.construction import PortfolioConfig

D1, D2 = date(2024, 6, 3), date(2024, 6, 4)
TICKERS = ["AAA", "BBB", "CCC"]


def _frames(weights_day2: dict[str, float]):
    prices = pl.DataFrame({"date": [D1] * 3 + [D2] * 3, "ticker": TICKERS * 2, "close": [100.0, 50.0, 20.0] * 2})
    weights_day1 = {"AAA": 0.3, "BBB": 0.3, "CCC": 0.3}
    rows = [(d, t, w) for d, ws in ((D1, weights_day1), (D2, weights_day2)) for t, w in ws.items()]
    targets = pl.DataFrame(rows, schema={"date": pl.Date, "ticker": pl.String, "weight": pl.Float64}, orient="row")
    rankings = targets.select("date", "ticker", pl.col("weight").alias("score"))
    universe = prices.select("date", "ticker")
    return targets, prices, rankings, universe


def test_fills_feed_holdings_and_day_two_trades_only_the_difference():
    targets, prices, rankings, universe = _frames({"AAA": 0.3, "BBB": 0.3, "CCC": 0.2})
    config = PortfolioConfig(initial_cash=100_000.0, max_position=0.5, min_trade_value=500.0, rebalance_band=0.0, rebalance_rate=1.0)
    executor = PaperExecutor(100_000.0, slippage_bps=2.0, commission_bps=1.0, allow_short=False)
    holdings, orders = project_book(executor, [D1, D2], targets, prices, rankings, universe, config)

    day1 = holdings.filter(pl.col("date") == D1)
    assert day1.rows() == [(D1, "CASH", 100_000.0, 1.0, 100_000.0)]
    fills = fills_of(orders.filter(pl.col("date") == D1))
    assert sorted(fills.select("ticker", "shares").rows()) == [("AAA", 300.0), ("BBB", 600.0), ("CCC", 1500.0)]
    day2 = dict(holdings.filter(pl.col("date") == D2).select("ticker", "shares").iter_rows())
    assert day2["CASH"] == pytest.approx(100_000.0 + fills["cash_effect"].sum())
    assert {t: day2[t] for t in TICKERS} == {"AAA": 300.0, "BBB": 600.0, "CCC": 1500.0}
    day2_orders = orders.filter(pl.col("date") == D2)
    value2 = day2["CASH"] + 300 * 100.0 + 600 * 50.0 + 1500 * 20.0
    ccc_target = int(0.2 * value2 / 20.0)
    assert day2_orders.select("ticker", "side", "submitted_shares").rows() == [("CCC", "sell", 1500 - ccc_target)]
    assert executor.positions["CCC"].qty == ccc_target and executor.positions["AAA"].qty == 300


def test_band_and_partial_adjustment_cut_turnover():
    prices = pl.DataFrame({"ticker": TICKERS, "price": [100.0, 50.0, 20.0]})
    held = pl.DataFrame({"ticker": TICKERS, "shares": [300, 600, 1500]})
    targets = pl.DataFrame({"ticker": TICKERS, "weight": [0.31, 0.25, 0.0]})
    full = build_trade_list(targets, held, prices, 100_000.0)
    assert dict(full.select("ticker", "shares").iter_rows()) == {"AAA": 10, "BBB": 100, "CCC": 1500}
    banded = build_trade_list(targets, held, prices, 100_000.0, rebalance_band=0.02)
    assert dict(banded.select("ticker", "shares").iter_rows()) == {"BBB": 100, "CCC": 1500}, "1% rebalance skipped, exit kept"
    half = build_trade_list(targets, held, prices, 100_000.0, rebalance_band=0.02, rebalance_rate=0.5)
    assert dict(half.select("ticker", "shares").iter_rows()) == {"BBB": 50, "CCC": 750}, "half of each gap"
    values = pl.DataFrame({"date": [D1, D2], "portfolio_value": [100_000.0, 100_000.0]})
    turnover = {name: traded_turnover(frame.with_columns(pl.lit(D2).alias("date")), values)["turnover_21d"][-1]
                for name, frame in (("full", full), ("banded", banded), ("half", half))}
    assert turnover["full"] == pytest.approx(0.5 * (1000 + 5000 + 30000) / 100_000)
    assert turnover["half"] < turnover["banded"] < turnover["full"]
    with pytest.raises(ValueError, match="rebalance_rate"):
        build_trade_list(targets, held, prices, 100_000.0, rebalance_rate=0.0)


def test_reconcile_names_tickers_and_quantities():
    holdings = pl.DataFrame({"date": [D1] * 3, "ticker": ["CASH", "AAA", "BBB"], "shares": [5.0, 10.0, 20.0]})
    assert reconcile({"AAA": 10.0, "BBB": 20.0}, holdings) == []
    assert reconcile({"AAA": 12.0, "ZZZ": 3.0}, holdings) == [
        "AAA: broker 12, holdings 10", "BBB: broker 0, holdings 20", "ZZZ: broker 3, holdings 0",
    ]


def test_exit_buffer_keeps_a_dropped_name_that_still_ranks_high():
    prices = pl.DataFrame({"ticker": TICKERS, "price": [100.0, 50.0, 20.0]})
    held = pl.DataFrame({"ticker": ["CCC"], "shares": [500]})
    targets = pl.DataFrame({"ticker": ["AAA"], "weight": [0.1]})
    scores = pl.DataFrame({"ticker": TICKERS, "score": [3.0, 2.0, 1.0]})
    kept = build_trade_list(targets, held, prices, 100_000.0, scores=scores, hold_rank=3)
    assert kept["ticker"].to_list() == ["AAA"], "CCC ranks 3rd: kept"
    sold = build_trade_list(targets, held, prices, 100_000.0, scores=scores, hold_rank=2)
    assert sold.filter(pl.col("ticker") == "CCC").select("side", "shares", "reason").row(0) == ("SELL", 500, "Exit")


def test_a_delisted_holding_is_valued_and_sold_at_its_last_price():
    from quant_lib.portfolio.construction import build_trade_lists, portfolio_values

    holdings = pl.DataFrame({"date": [D2] * 3, "ticker": ["CASH", "AAA", "ZZZ"], "shares": [1_000.0, 10.0, 50.0],
                             "price": [1.0, 100.0, 8.0], "value": [1_000.0, 1_000.0, 400.0]})
    prices = pl.DataFrame({"date": [D2], "ticker": ["AAA"], "close": [110.0]})  # ZZZ has no close any more
    assert portfolio_values(holdings, prices)["portfolio_value"].to_list() == [1_000.0 + 1_100.0 + 400.0]
    targets = pl.DataFrame({"date": [D2], "ticker": ["AAA"], "weight": [0.44]})
    config = PortfolioConfig(rebalance_rate=1.0, max_position=0.5)
    trades = build_trade_lists(targets, holdings, prices, targets.select("date", "ticker", pl.lit(1.0).alias("score")),
                               targets.select("date", "ticker"), config)
    assert trades.filter(pl.col("ticker") == "ZZZ").select("side", "shares", "price", "reason").rows() == [("SELL", 50, 8.0, "Exit")]
    with pytest.raises(ValueError, match="without a close"):
        portfolio_values(holdings.drop("price"), prices)
