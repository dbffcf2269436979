"""Strategies: turn data and model predictions into trading signals."""

from quant_lib.strategies.base import BaseStrategy, Signal, StrategyData, bar_timestamp, iter_frames
from quant_lib.strategies.rules import BuyAndHoldStrategy, MovingAverageCrossStrategy

__all__ = [
    "BaseStrategy",
    "BuyAndHoldStrategy",
    "MovingAverageCrossStrategy",
    "Signal",
    "StrategyData",
    "bar_timestamp",
    "iter_frames",
]
