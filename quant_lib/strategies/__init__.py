"""Strategies: turn data and model predictions into trading signals."""

from quant_lib.strategies.base import BaseStrategy, Signal, StrategyData, bar_timestamp, iter_frames
from quant_lib.strategies.ensemble import EnsembleStrategy
from quant_lib.strategies.ml_signal import MLSignalStrategy, prediction_score
from quant_lib.strategies.rules import BuyAndHoldStrategy, MovingAverageCrossStrategy

__all__ = [
    "BaseStrategy",
    "BuyAndHoldStrategy",
    "EnsembleStrategy",
    "MLSignalStrategy",
    "MovingAverageCrossStrategy",
    "Signal",
    "StrategyData",
    "bar_timestamp",
    "iter_frames",
    "prediction_score",
]
