"""Trade list: whole shares, minimum trade size, exits, cash, conviction and the dashboard fields."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from quant_lib.execution import TRADE_LIST_SCHEMA, build_trade_list, conviction_labels


def frames():
    targets = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC"], "weight": [0.5, 0.3, 0.15]})
    holdings = pl.DataFrame({"ticker": ["AAA", "DDD"], "shares": [10, 5]})
    prices = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC", "DDD"], "price": [100.0, 33.0, 7.0, 50.0]})
    return targets, holdings, prices


def test_known_trade_list():
    targets, holdings, prices = frames()
    trades = build_trade_list(targets, holdings, prices, 10_000.0)
    assert trades.schema == pl.Schema(TRADE_LIST_SCHEMA)
    rows = {r["ticker"]: r for r in trades.to_dicts()}
    # AAA: 0.5 * 10k / 100 = 50 target, 10 held -> buy 40. BBB: floor(3000 / 33) = 90.
    # CCC: floor(1500 / 7) = 214. DDD: not a target -> sell all 5.
    assert (rows["AAA"]["side"], rows["AAA"]["shares"], rows["AAA"]["reason"]) == ("BUY", 40, "Rebalance")
    assert (rows["BBB"]["shares"], rows["BBB"]["target_shares"], rows["BBB"]["reason"]) == (90, 90, "New position")
    assert rows["CCC"]["shares"] == 214
    assert (rows["DDD"]["side"], rows["DDD"]["shares"], rows["DDD"]["reason"]) == ("SELL", 5, "Exit")
    assert rows["DDD"]["final_weight"] == 0.0
    assert trades["ticker"][0] == "DDD"  # sells first
    assert rows["BBB"]["value"] == pytest.approx(90 * 33.0)


def test_max_position_cap_and_raw_weight():
    targets, holdings, prices = frames()
    targets = targets.with_columns(pl.Series("raw_weight", [0.45, 0.3, 0.15]))
    trades = build_trade_list(targets, holdings, prices, 10_000.0, max_position=0.4)
    row = trades.filter(pl.col("ticker") == "AAA").to_dicts()[0]
    assert (row["raw_weight"], row["final_weight"], row["target_shares"]) == (0.45, 0.4, 40)
    assert row["reason"] == "Capped at max position"


def test_min_trade_value_filter_keeps_exits():
    targets = pl.DataFrame({"ticker": ["AAA", "BBB"], "weight": [0.5, 0.5]})
    holdings = pl.DataFrame({"ticker": ["AAA", "BBB", "DUST"], "shares": [49, 40, 1]})
    prices = pl.DataFrame({"ticker": ["AAA", "BBB", "DUST"], "price": [100.0, 100.0, 3.0]})
    trades = build_trade_list(targets, holdings, prices, 10_000.0, min_trade_value=500.0)
    # AAA needs +1 share (100 < 500: dropped); BBB needs +10 (1000: kept); DUST (3) is an exit: kept.
    assert trades.select("ticker", "side", "shares").rows() == [("DUST", "SELL", 1), ("BBB", "BUY", 10)]


def test_scores_give_conviction_and_universe_gives_names():
    targets, holdings, prices = frames()
    scores = pl.DataFrame({"ticker": ["AAA", "BBB", "CCC", "DDD", "EEE"], "score": [2.0, 1.0, -1.0, 0.0, None]})
    universe = pl.DataFrame(
        {"ticker": ["AAA", "BBB", "CCC", "DDD"], "name": ["A Inc", "B Co", "C plc", "D AG"], "sector": ["Tech"] * 4}
    )
    trades = build_trade_list(targets, holdings, prices, 10_000.0, scores=scores, universe=universe)
    rows = {r["ticker"]: r for r in trades.to_dicts()}
    # Percentiles among the 4 scored tickers: AAA 4/4, BBB 3/4, DDD 2/4, CCC 1/4.
    assert rows["AAA"]["conviction"] == "High" and rows["AAA"]["alpha_score"] == 2.0
    assert rows["BBB"]["conviction"] == "Medium"
    assert rows["DDD"]["conviction"] == "Medium"
    assert rows["CCC"]["conviction"] == "Low"
    assert rows["AAA"]["name"] == "A Inc" and rows["AAA"]["sector"] == "Tech"
    labels = conviction_labels(scores)
    assert labels.filter(pl.col("ticker") == "EEE")["conviction"][0] is None


def test_cash_is_never_exceeded_and_shares_are_whole():
    rng = np.random.default_rng(0)
    tickers = [f"T{i:03d}" for i in range(60)]
    for trial in range(20):
        prices = pl.DataFrame({"ticker": tickers, "price": rng.uniform(5.0, 900.0, 60)})
        weights = rng.dirichlet(np.full(40, 0.5))
        targets = pl.DataFrame({"ticker": tickers[:40], "weight": weights})
        held = rng.choice(60, 30, replace=False)
        holdings = pl.DataFrame({"ticker": [tickers[i] for i in held], "shares": rng.integers(1, 200, 30)})
        holdings_value = holdings.join(prices, on="ticker").select(pl.col("shares") * pl.col("price")).sum().item()
        portfolio_value = holdings_value + rng.uniform(0.0, 50_000.0)
        trades = build_trade_list(targets, holdings, prices, portfolio_value, min_trade_value=1_000.0)
        buys = trades.filter(pl.col("side") == "BUY")["value"].sum()
        sells = trades.filter(pl.col("side") == "SELL")["value"].sum()
        cash = portfolio_value - holdings_value
        assert buys <= cash + sells + 1e-6, f"trial {trial}"
        assert trades["shares"].dtype == pl.Int64 and (trades["shares"] > 0).all()


def test_bad_inputs_raise():
    targets, holdings, prices = frames()
    with pytest.raises(ValueError, match="no positive price"):
        build_trade_list(targets, holdings, prices.filter(pl.col("ticker") != "CCC"), 10_000.0)
    with pytest.raises(ValueError, match="negative weights"):
        build_trade_list(targets.with_columns(pl.lit(-0.1).alias("weight")), holdings, prices, 10_000.0)
    with pytest.raises(ValueError, match="whole"):
        build_trade_list(targets, holdings.with_columns(pl.lit(1.5).alias("shares")), prices, 10_000.0)
    with pytest.raises(ValueError, match="duplicate"):
        build_trade_list(pl.concat([targets, targets]), holdings, prices, 10_000.0)
    with pytest.raises(ValueError, match="missing columns"):
        build_trade_list(targets.drop("weight"), holdings, prices, 10_000.0)


def test_buys_are_scaled_down_when_a_skipped_sell_leaves_less_cash():
    targets = pl.DataFrame({"ticker": ["AAA", "BBB"], "weight": [0.55, 0.45]})
    holdings = pl.DataFrame({"ticker": ["AAA"], "shares": [60]})
    prices = pl.DataFrame({"ticker": ["AAA", "BBB"], "price": [100.0, 100.0]})
    # Selling 5 AAA (500) is under the 1000 minimum and skipped, so only 4000 of cash is left:
    # the 45-share BBB buy (4500) is cut to floor(45 * 4000 / 4500) = 40 shares.
    trades = build_trade_list(targets, holdings, prices, 10_000.0, min_trade_value=1_000.0)
    assert trades.select("ticker", "side", "shares", "target_shares").rows() == [("BBB", "BUY", 40, 40)]
    levered = build_trade_list(targets, holdings, prices, 10_000.0, min_trade_value=1_000.0, max_gross_exposure=1.1)
    assert levered["shares"].to_list() == [45]
