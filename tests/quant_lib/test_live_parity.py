"""Parity: the same strategy on the same bars fills the same way in the event backtest engine and in
SelfTrainer + PaperExecutor (prices, quantities, sides, order)."""

import polars as pl
import pytest

from quant_lib.backtest.event_engine import BacktestEngine, EventBacktestConfig
from quant_lib.execution import PaperExecutor
from quant_lib.live import LiveConfig, SelfTrainer, synthetic_bars
from quant_lib.portfolio.sizing import PositionSizer
from quant_lib.risk.limits import RiskLimits, RiskManager
from quant_lib.strategies import MovingAverageCrossStrategy
from tests.quant_lib.live_helpers import MemorySink, bar_dicts


def _engine_fills(result):
    fills = []
    for trade in result.trade_log:
        side_in, side_out = ("buy", "sell") if trade["direction"] > 0 else ("sell", "buy")
        fills.append((trade["entry_time"], trade["symbol"], side_in, trade["quantity"], trade["entry_price"]))
        fills.append((trade["exit_time"], trade["symbol"], side_out, trade["quantity"], trade["exit_price"]))
    return sorted(fills, key=lambda f: (f[0], f[1], f[2]))


def test_same_strategy_same_fills_in_backtest_and_live_loop():
    bars = synthetic_bars(["AAA", "BBB"], n_bars=300, seed=11, phi=0.4)
    sizer = PositionSizer(method="fixed_fraction", fixed_fraction=0.3, max_position_pct=0.6)
    engine = BacktestEngine(
        EventBacktestConfig(initial_capital=50_000.0, commission_bps=3.0, slippage_bps=5.0, stop_loss_atr=None,
                            take_profit_atr=None, max_drawdown=1.0, daily_loss_limit=1.0),
        sizer=sizer,
    )
    frames = {s: f.drop("symbol") for (s,), f in bars.partition_by("symbol", as_dict=True).items()}
    result = engine.run(frames, MovingAverageCrossStrategy(fast=5, slow=20))
    expected = _engine_fills(result)
    assert len(expected) > 20

    executor = PaperExecutor(initial_capital=50_000.0, slippage_bps=5.0, commission_bps=3.0)
    loop = SelfTrainer(
        {}, MovingAverageCrossStrategy(fast=5, slow=20), executor, sizer=sizer,
        risk_manager=RiskManager(RiskLimits(max_drawdown=1.0, daily_loss_limit=1.0, var_limit=1.0)),
        config=LiveConfig(initial_capital=50_000.0, use_stops=False, retrain_enabled=False, checkpoint_interval=0),
        ledger_sink=(sink := MemorySink()), register_signals=False,
    )
    loop.start()
    for bar in bar_dicts(bars):
        loop.process_bar(bar)
    loop.shutdown()
    fills = sorted(
        ((pl.Series([f["timestamp"]]).str.to_datetime(time_zone="UTC")[0], f["symbol"], f["side"], f["qty"], f["price"])
         for f in sink.events() if f["event"] == "fill"),
        key=lambda f: (f[0], f[1], f[2]),
    )
    assert [f[:3] for f in fills] == [f[:3] for f in expected]
    for got, want in zip(fills, expected):
        assert got[3] == pytest.approx(want[3], rel=1e-9)
        assert got[4] == pytest.approx(want[4], rel=1e-12)
    assert executor.cash == pytest.approx(result.equity_curve[-1], rel=1e-9)
