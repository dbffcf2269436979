"""Signals and the reference strategies (seed 004 §4.5, §8.4)."""

from __future__ import annotations

import logging
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.strategies import BaseStrategy, BuyAndHoldStrategy, MovingAverageCrossStrategy, Signal


def _bars(close: np.ndarray, symbol: str | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            "date": [date(2022, 1, 3) + timedelta(days=i) for i in range(close.size)],
            "open": close, "high": close * 1.01, "low": close * 0.99, "close": close, "volume": np.ones(close.size),
        }
    )
    return frame if symbol is None else frame.with_columns(symbol=pl.lit(symbol))


def test_signal_validation_and_clamping():
    signal = Signal(timestamp=date(2022, 1, 3), symbol="A", direction=1, confidence=1.7, target_position=-3.0)
    assert signal.confidence == 1.0
    assert signal.target_position == -1.0
    assert Signal(date(2022, 1, 3), "A", -1, confidence=-0.2).confidence == 0.0
    assert Signal(date(2022, 1, 3), "A", -1).target_position == -1.0  # defaults to the direction
    with pytest.raises(ValueError, match="direction"):
        Signal(date(2022, 1, 3), "A", 2)
    with pytest.raises(ValueError, match="direction"):
        Signal(date(2022, 1, 3), "A", True)
    with pytest.raises(ValueError, match="NaN"):
        Signal(date(2022, 1, 3), "A", 1, confidence=float("nan"))


def test_moving_average_cross_direction_and_confidence():
    rising = _bars(np.linspace(100, 130, 40))
    falling = _bars(np.linspace(130, 100, 40))
    strategy = MovingAverageCrossStrategy(fast=5, slow=20)
    [up] = strategy.generate_signals({"UP": rising})
    [down] = strategy.generate_signals({"DOWN": falling})
    assert (up.symbol, up.direction, up.timestamp) == ("UP", 1, rising["date"][-1])
    assert down.direction == -1
    fast, slow = rising["close"].tail(5).mean(), rising["close"].tail(20).mean()
    assert up.confidence == pytest.approx(min(1.0, abs(fast / slow - 1) / 0.02))
    assert up.metadata["fast_sma"] == pytest.approx(fast)
    assert MovingAverageCrossStrategy(5, 20, long_only=True).generate_signals({"D": falling})[0].direction == 0
    assert strategy.generate_signals({"SHORT": rising.head(10)}) == []
    assert strategy.lookback == 20
    with pytest.raises(ValueError, match="fast < slow"):
        MovingAverageCrossStrategy(fast=20, slow=5)


def test_single_frame_input_uses_its_symbol_column():
    [signal] = BuyAndHoldStrategy().generate_signals(_bars(np.full(5, 10.0), symbol="XYZ"))
    assert signal.symbol == "XYZ" and signal.direction == 1 and signal.target_position == 1.0


def test_safe_generate_signals_handles_missing_predictions_and_errors(caplog):
    class NeedsModel(BaseStrategy):
        name = "needs_model"
        requires_predictions = True

        def generate_signals(self, data, predictions=None):
            return [Signal(date(2022, 1, 3), "A", int(np.sign(predictions[0])))]

    class Broken(BaseStrategy):
        name = "broken"

        def generate_signals(self, data, predictions=None):
            raise RuntimeError("boom")

    data = {"A": _bars(np.full(5, 10.0))}
    assert NeedsModel().safe_generate_signals(data, None) == []
    assert NeedsModel().safe_generate_signals(data, np.array([-0.3]))[0].direction == -1
    with caplog.at_level(logging.ERROR):
        assert Broken().safe_generate_signals(data) == []
    assert "broken" in caplog.text and "boom" in caplog.text
