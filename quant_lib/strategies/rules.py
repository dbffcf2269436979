"""Rule-based reference strategies (no model): moving-average cross and buy-and-hold."""

from __future__ import annotations

import numpy as np
import polars as pl

from quant_lib.strategies.base import BaseStrategy, Signal, StrategyData, bar_timestamp, iter_frames


class MovingAverageCrossStrategy(BaseStrategy):
    """Long when the fast simple moving average of ``close`` is above the slow one, short/exit below.

    On the last bar: direction = sign(SMA_fast - SMA_slow) (-1 becomes 0 when ``long_only``);
    confidence = min(1, |SMA_fast / SMA_slow - 1| / ``full_confidence_gap``); target_position =
    direction. Symbols with fewer than ``slow`` bars give no signal.
    """

    name = "ma_cross"

    def __init__(self, fast: int = 10, slow: int = 30, long_only: bool = False, full_confidence_gap: float = 0.02):
        if not 1 <= fast < slow:
            raise ValueError(f"need 1 <= fast < slow, got fast={fast}, slow={slow}")
        if full_confidence_gap <= 0:
            raise ValueError(f"full_confidence_gap must be > 0, got {full_confidence_gap}")
        self.fast = fast
        self.slow = slow
        self.lookback = slow
        self.long_only = long_only
        self.full_confidence_gap = full_confidence_gap

    def generate_signals(self, data: StrategyData, predictions: np.ndarray | None = None) -> list[Signal]:
        signals = []
        for symbol, frame in iter_frames(data):
            if frame.height < self.slow:
                continue
            close = frame["close"].tail(self.slow).cast(pl.Float64).to_numpy()
            fast_mean = close[-self.fast:].mean()
            slow_mean = close.mean()
            direction = int(np.sign(fast_mean - slow_mean))
            if self.long_only and direction < 0:
                direction = 0
            gap = abs(fast_mean / slow_mean - 1.0) if slow_mean else 0.0
            signals.append(
                Signal(
                    timestamp=bar_timestamp(frame),
                    symbol=symbol,
                    direction=direction,
                    confidence=min(1.0, gap / self.full_confidence_gap),
                    target_position=float(direction),
                    metadata={"fast_sma": float(fast_mean), "slow_sma": float(slow_mean)},
                )
            )
        return signals


class BuyAndHoldStrategy(BaseStrategy):
    """A long signal (confidence 1, target +1) for every symbol on every bar that has data."""

    name = "buy_and_hold"

    def generate_signals(self, data: StrategyData, predictions: np.ndarray | None = None) -> list[Signal]:
        return [
            Signal(timestamp=bar_timestamp(frame), symbol=symbol, direction=1, confidence=1.0, target_position=1.0)
            for symbol, frame in iter_frames(data)
            if frame.height
        ]
