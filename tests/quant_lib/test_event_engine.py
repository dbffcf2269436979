"""Event-driven engine: equity bookkeeping, stops, risk breaches, sizing limits, checkpoints, no look-ahead."""

from __future__ import annotations

import json
import logging
from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.backtest.event_engine import BacktestEngine, EventBacktestConfig
from quant_lib.strategies import BaseStrategy, BuyAndHoldStrategy, MovingAverageCrossStrategy, Signal

FREE = dict(commission_bps=0.0, slippage_bps=0.0)


def _bars(close, spread: float = 0.0, start: date = date(2022, 1, 3)) -> pl.DataFrame:
    close = np.asarray(close, dtype=float)
    return pl.DataFrame(
        {
            "date": [start + timedelta(days=i) for i in range(close.size)],
            "open": close, "high": close * (1 + spread), "low": close * (1 - spread), "close": close,
            "volume": np.full(close.size, 1e6),
        }
    )


class ScriptedStrategy(BaseStrategy):
    """Emits the given direction for a symbol on chosen bars (by the bar's date)."""

    name = "scripted"

    def __init__(self, plan: dict[date, int], symbol: str = "A"):
        self.plan = plan
        self.symbol = symbol

    def generate_signals(self, data, predictions=None):
        frame = data[self.symbol]
        today = frame["date"][-1]
        direction = self.plan.get(today, 0)
        return [Signal(today, self.symbol, direction)] if direction else []


def _random_walk(n: int, seed: int = 0, drift: float = 0.0005) -> np.ndarray:
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(drift, 0.01, n)))


def test_buy_and_hold_equity_tracks_price_and_lengths_match():
    close = _random_walk(120)
    config = EventBacktestConfig(max_position_pct=1.0, stop_loss_atr=None, take_profit_atr=None, **FREE)
    result = BacktestEngine(config).run({"A": _bars(close)}, BuyAndHoldStrategy())
    assert len(result.equity_curve) == len(result.returns) == len(result.timestamps) == len(result.positions_history) == 120
    np.testing.assert_allclose(result.equity_curve, 100_000 * close / close[0], rtol=1e-12)
    assert len(result.trade_log) == 1  # opened once, closed at the end
    trade = result.trade_log[0]
    assert trade["exit_reason"] == "end_of_backtest"
    assert trade["pnl"] == pytest.approx(100_000 * (close[-1] / close[0] - 1), rel=1e-9)
    assert result.metrics["total_trades"] == 1.0
    assert result.metrics["total_return"] == pytest.approx(close[-1] / close[0] - 1, rel=1e-9)
    assert result.timestamps[0] == date(2022, 1, 3)


def test_commission_and_slippage_are_charged_on_both_legs():
    close = np.full(30, 50.0)
    config = EventBacktestConfig(commission_bps=10.0, slippage_bps=20.0, max_position_pct=0.5,
                                 stop_loss_atr=None, take_profit_atr=None)
    result = BacktestEngine(config).run({"A": _bars(close)}, ScriptedStrategy({date(2022, 1, 5): 1}))
    [trade] = result.trade_log
    quantity = 100_000 * 0.5 / 50.0
    entry, exit_ = 50.0 * 1.002, 50.0 * 0.998
    assert trade["entry_price"] == pytest.approx(entry) and trade["exit_price"] == pytest.approx(exit_)
    expected_pnl = quantity * (exit_ - entry) - quantity * (entry + exit_) * 0.001
    assert trade["pnl"] == pytest.approx(expected_pnl)
    assert result.equity_curve[-1] == pytest.approx(100_000 + expected_pnl)


def test_stop_loss_triggers_and_fills_at_the_stop():
    close = np.concatenate((np.full(30, 100.0), np.linspace(99, 80, 10)))
    config = EventBacktestConfig(atr_period=5, stop_loss_atr=2.0, take_profit_atr=10.0, **FREE)
    frame = _bars(close, spread=0.01)
    result = BacktestEngine(config).run({"A": frame}, ScriptedStrategy({frame["date"][20]: 1}))
    [trade] = result.trade_log
    assert trade["exit_reason"] == "stop_loss"
    atr_at_entry = 2.0  # constant bars: high - low = 2 for a close of 100
    stop = 100.0 - 2.0 * atr_at_entry
    exit_bar = next(i for i in range(len(close)) if close[i] * 0.99 <= stop)
    assert trade["exit_time"] == frame["date"][exit_bar]
    assert trade["exit_price"] == pytest.approx(min(close[exit_bar], stop))
    assert result.positions_history[exit_bar] == {}
    assert result.positions_history[exit_bar - 1]["A"] > 0


def test_take_profit_triggers():
    close = np.concatenate((np.full(30, 100.0), np.linspace(101, 120, 10)))
    config = EventBacktestConfig(atr_period=5, stop_loss_atr=2.0, take_profit_atr=3.0, **FREE)
    frame = _bars(close, spread=0.01)
    result = BacktestEngine(config).run({"A": frame}, ScriptedStrategy({frame["date"][20]: 1}))
    [trade] = result.trade_log
    assert trade["exit_reason"] == "take_profit"
    target = 100.0 + 3.0 * 2.0  # entry + 3 ATR (ATR 2 on the flat bars)
    exit_bar = next(i for i in range(len(close)) if close[i] * 1.01 >= target)
    assert trade["exit_time"] == frame["date"][exit_bar]
    assert trade["exit_price"] == pytest.approx(max(close[exit_bar], target))
    assert trade["pnl"] == pytest.approx(trade["quantity"] * (trade["exit_price"] - 100.0))


def test_risk_breach_refuses_new_trades(caplog):
    close = np.concatenate((np.full(10, 100.0), np.full(10, 50.0), np.full(10, 50.0)))
    frame = _bars(close)
    plan = {frame["date"][2]: 1, frame["date"][12]: -1, frame["date"][15]: 1}
    config = EventBacktestConfig(max_position_pct=1.0, stop_loss_atr=None, take_profit_atr=None, max_drawdown=0.2, **FREE)
    with caplog.at_level(logging.INFO, logger="quant_lib.backtest.event_engine"):
        result = BacktestEngine(config).run({"A": frame}, ScriptedStrategy(plan))
    # the crash to 50 draws the account down 50 %: the exit signal still closes, the re-entry is refused
    assert [t["exit_reason"] for t in result.trade_log] == ["signal"]
    assert all(not history for history in result.positions_history[13:])
    assert "Max drawdown breached" in caplog.text
    assert "Risk breached; skipping signal" in caplog.text
    assert result.risk_events[0]["kind"] == "max_drawdown" and result.risk_events[0]["bar_index"] == 10
    allowed = BacktestEngine(EventBacktestConfig(max_position_pct=1.0, stop_loss_atr=None, take_profit_atr=None,
                                                 max_drawdown=0.9, daily_loss_limit=0.9, **FREE))
    assert len(allowed.run({"A": frame}, ScriptedStrategy(plan)).trade_log) == 2


def test_daily_loss_limit_and_injected_risk_manager():
    close = np.concatenate((np.full(10, 100.0), [95.0], np.full(10, 96.0)))
    frame = _bars(close)
    plan = {frame["date"][1]: 1, frame["date"][10]: -1, frame["date"][11]: 1}
    config = EventBacktestConfig(max_position_pct=1.0, stop_loss_atr=None, take_profit_atr=None,
                                 daily_loss_limit=0.03, max_drawdown=0.5, **FREE)
    result = BacktestEngine(config).run({"A": frame}, ScriptedStrategy(plan))
    assert [e["kind"] for e in result.risk_events] == ["daily_loss"]
    assert len(result.trade_log) == 2  # bar 11 is a new day without a loss: re-entry allowed

    class RefuseAll:
        calls = 0

        def check_all(self, state):
            RefuseAll.calls += 1
            json.dumps({k: v for k, v in state.items() if k != "returns"})
            return False, ["test veto"]

        def check_stop_loss(self, position, price, atr):
            return False

        def check_take_profit(self, position, price, atr):
            return False

    vetoed = BacktestEngine(config, risk_manager=RefuseAll()).run({"A": frame}, ScriptedStrategy(plan))
    assert vetoed.trade_log == [] and RefuseAll.calls == len(close)


def test_insufficient_cash_reduces_quantity_and_sizer_is_used():
    close = np.full(20, 10.0)
    huge = lambda capital, price, signal, market_data: 1e9  # noqa: E731
    engine = BacktestEngine(EventBacktestConfig(commission_bps=10.0, slippage_bps=0.0), sizer=huge)
    result = engine.run({"A": _bars(close)}, ScriptedStrategy({date(2022, 1, 5): 1}))
    [trade] = result.trade_log
    assert trade["quantity"] == pytest.approx(100_000 / (10.0 * 1.001))
    assert min(result.equity_curve) > 99_000

    class HalfSizer:
        def calculate(self, capital, price, signal, market_data):
            assert set(market_data) >= {"atr", "close"}
            return -capital * 0.5 / price  # sign ignored: the signal gives the side

    result = BacktestEngine(EventBacktestConfig(**FREE), sizer=HalfSizer()).run(
        {"A": _bars(close)}, ScriptedStrategy({date(2022, 1, 5): 1})
    )
    assert result.trade_log[0]["quantity"] == pytest.approx(5_000)


def test_checkpoints_are_emitted_and_json_serializable():
    states = []
    engine = BacktestEngine(EventBacktestConfig(checkpoint_every=25), checkpoint_callback=states.append)
    result = engine.run({"A": _bars(_random_walk(100)), "B": _bars(_random_walk(100, seed=1))}, BuyAndHoldStrategy())
    assert [s["bar_index"] for s in states] == [24, 49, 74, 99]
    for state in states[:-1]:
        restored = json.loads(json.dumps(state))
        assert restored["equity"] == pytest.approx(result.equity_curve[state["bar_index"]], rel=1e-12)
    # the last checkpoint precedes the end-of-backtest exits, whose costs the final equity includes
    assert states[-1]["equity"] > result.equity_curve[-1] > states[-1]["equity"] * 0.999
    assert set(states[0]["positions"]) == {"A", "B"}


def test_no_look_ahead_future_bars_do_not_change_the_past():
    close = _random_walk(300, seed=4, drift=0.0)
    changed = close.copy()
    changed[200:] *= np.random.default_rng(9).uniform(0.7, 1.3, 100)
    config = EventBacktestConfig(atr_period=10, close_at_end=False, allow_short=True)
    strategy = MovingAverageCrossStrategy(fast=5, slow=20)
    base = BacktestEngine(config).run({"A": _bars(close, spread=0.005)}, strategy)
    other = BacktestEngine(config).run({"A": _bars(changed, spread=0.005)}, strategy)
    assert len(base.trade_log) > 3
    assert base.equity_curve[:200] == other.equity_curve[:200]
    assert base.equity_curve[200:] != other.equity_curve[200:]


def test_multi_symbol_alignment_strategy_errors_and_models():
    a = _bars(_random_walk(50))
    b = _bars(_random_walk(40, seed=2), start=date(2022, 1, 13))  # starts 10 days later
    seen = []

    class Recorder(BaseStrategy):
        requires_predictions = True

        def generate_signals(self, data, predictions=None):
            seen.append((sorted(data), predictions))
            if len(seen) == 3:
                raise RuntimeError("strategy bug")
            return []

    class Model:
        def predict(self, window):
            return np.array([len(window)])

    result = BacktestEngine(EventBacktestConfig()).run({"A": a, "B": b}, Recorder(), model=Model())
    assert len(result.equity_curve) == 50
    assert seen[0] == (["A"], np.array([1])) and seen[-1][0] == ["A", "B"]
    assert len(seen) == 50  # the exception on bar 2 was logged, the run continued
    timestamped = a.rename({"date": "timestamp"}).with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")) + pl.duration(hours=16)
    )
    intraday = BacktestEngine(EventBacktestConfig()).run({"A": timestamped}, BuyAndHoldStrategy())
    assert isinstance(intraday.timestamps[0], datetime)
    with pytest.raises(ValueError, match="missing columns"):
        BacktestEngine().run({"A": a.drop("high")}, BuyAndHoldStrategy())
    with pytest.raises(ValueError, match="duplicate timestamps"):
        BacktestEngine().run({"A": pl.concat([a, a.head(1)])}, BuyAndHoldStrategy())
