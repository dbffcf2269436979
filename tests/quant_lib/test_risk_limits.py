"""RiskManager limit breaches (seed 004 section 8.6) and ATR stop-loss / take-profit."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from quant_lib.risk import Position, RiskLimits, RiskManager


def test_healthy_portfolio_passes():
    ok, violations = RiskManager().check_all(
        {
            "equity": 100_000.0,
            "peak_equity": 105_000.0,
            "day_start_equity": 101_000.0,
            "returns": np.random.default_rng(0).normal(0.0, 0.01, 100),
            "positions": {"AAPL": 9_000.0, "MSFT": {"qty": 10, "price": 400.0}},
        }
    )
    assert ok
    assert violations == []


def test_max_drawdown_breach():
    ok, violations = RiskManager().check_all({"equity": 84_000.0, "equity_history": [100_000.0, 90_000.0, 84_000.0]})
    assert not ok
    assert violations == ["Max drawdown breached: 16.00% > 15.00%"]
    ok, _ = RiskManager().check_all({"equity": 86_000.0, "peak_equity": 100_000.0})
    assert ok


def test_daily_loss_breach():
    ok, violations = RiskManager().check_all({"equity": 96_500.0, "day_start_equity": 100_000.0})
    assert not ok
    assert violations == ["Daily loss limit breached: 3.50% > 3.00%"]


def test_var_breach_and_insufficient_data_skip():
    volatile = np.random.default_rng(1).normal(0.0, 0.05, 250)  # 95% VaR about 8%
    ok, violations = RiskManager().check_all({"equity": 100_000.0, "returns": volatile})
    assert not ok
    assert violations[0].startswith("VaR(95%) breached")
    crashes = np.full(19, -0.10)  # fewer than 20 returns: the VaR check is skipped
    assert RiskManager().check_all({"equity": 100_000.0, "returns": crashes}) == (True, [])


def test_concentration_is_reported_per_position_without_blocking():
    ok, violations = RiskManager().check_all(
        {
            "equity": 100_000.0,
            "positions": {"AAPL": 12_000.0, "MSFT": {"market_value": -15_000.0}, "SPY": 10_000.0},
        }
    )
    assert ok
    assert violations == [
        "Concentration breached for AAPL: 12.00% > 10.00%",
        "Concentration breached for MSFT: 15.00% > 10.00%",
    ]


def test_custom_limits_and_non_positive_equity():
    manager = RiskManager(RiskLimits(max_drawdown=0.01, daily_loss_limit=0.005))
    ok, violations = manager.check_all({"equity": 98_900.0, "peak_equity": 100_000.0, "day_start_equity": 99_500.0})
    assert not ok and len(violations) == 2
    ok, violations = RiskManager().check_all({"equity": 0.0})
    assert not ok and "Equity non-positive" in violations[0]
    with pytest.raises(ValueError, match="equity"):
        RiskManager().check_all({})


def test_stop_loss_and_take_profit_long(caplog):
    manager = RiskManager(RiskLimits(stop_loss_atr=2.0, take_profit_atr=3.0))
    long = Position("AAPL", qty=10, entry_price=100.0, side="long")
    with caplog.at_level(logging.INFO):
        assert manager.check_stop_loss(long, 96.0, atr=2.0)  # stop at 96
    assert "Stop-loss triggered for AAPL" in caplog.text
    assert not manager.check_stop_loss(long, 96.01, atr=2.0)
    assert manager.check_take_profit(long, 106.0, atr=2.0)  # target at 106
    assert not manager.check_take_profit(long, 105.99, atr=2.0)


def test_stop_loss_and_take_profit_short_and_overrides():
    manager = RiskManager()
    short = Position("TSLA", qty=5, entry_price=200.0, side="short", stop_loss_atr=1.0, take_profit_atr=1.5)
    assert manager.check_stop_loss(short, 205.0, atr=5.0)
    assert not manager.check_stop_loss(short, 204.0, atr=5.0)
    assert manager.check_take_profit(short, 192.5, atr=5.0)
    assert not manager.check_take_profit(short, 193.0, atr=5.0)
    assert not manager.check_stop_loss(short, 500.0, atr=0.0)  # no ATR, no stop
    with pytest.raises(ValueError, match="atr"):
        manager.check_stop_loss(short, 200.0, atr=float("nan"))


def test_positions_to_close_vectorised():
    manager = RiskManager()
    positions = [
        Position("A", 1, 100.0),
        Position("B", 1, 100.0, side="short"),
        Position("C", 1, 100.0),
        Position("D", 1, 100.0),
    ]
    close = manager.positions_to_close(positions, np.array([95.0, 95.0, 107.0, 101.0]), np.array([2.0, 2.0, 2.0, 0.0]))
    np.testing.assert_array_equal(close, [True, False, True, False])


def test_position_validation():
    with pytest.raises(ValueError, match="side"):
        Position("A", 1, 100.0, side="sideways")
    with pytest.raises(ValueError, match="entry_price"):
        Position("A", 1, 0.0)
