"""Signals and the strategy interface (seed 004 §4.5, §8.4).

A strategy turns market data (and optionally model predictions) into ``Signal`` objects; it never
sizes positions or trades (the backtest engine / portfolio layer does).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
import polars as pl

logger = logging.getLogger(__name__)

StrategyData = Mapping[str, pl.DataFrame] | pl.DataFrame


@dataclass
class Signal:
    """A directional view on one symbol at one time.

    ``direction`` must be -1, 0 or +1 (ValueError otherwise); ``confidence`` is clamped to
    [0, 1] and ``target_position`` to [-1, 1] (NaN in either raises ValueError);
    ``target_position`` defaults to ``direction``.
    """

    timestamp: datetime | date
    symbol: str
    direction: int
    confidence: float = 1.0
    target_position: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.direction, bool) or self.direction not in (-1, 0, 1):
            raise ValueError(f"Signal.direction must be -1, 0 or 1, got {self.direction!r} for {self.symbol}")
        self.direction = int(self.direction)
        if self.target_position is None:
            self.target_position = float(self.direction)
        for name, low in (("confidence", 0.0), ("target_position", -1.0)):
            value = float(getattr(self, name))
            if math.isnan(value):
                raise ValueError(f"Signal.{name} is NaN for {self.symbol}")
            setattr(self, name, min(max(value, low), 1.0))


class BaseStrategy(ABC):
    """Strategy interface: ``generate_signals(data, predictions) -> list[Signal]``.

    ``data`` is a mapping symbol -> frame (columns date or timestamp, open, high, low, close,
    volume; the last row is the current bar) or a single frame. Strategies that need model output
    set ``requires_predictions = True``. Callers (engines, ensembles) use
    ``safe_generate_signals``, which returns [] when predictions are required but None and logs
    and swallows any exception of the strategy (seed 004 §8.4).
    """

    name: str = "strategy"
    requires_predictions: bool = False
    lookback: int = 1
    """Bars of history the strategy needs in each frame (engines pass at least this many)."""

    @abstractmethod
    def generate_signals(self, data: StrategyData, predictions: np.ndarray | None = None) -> list[Signal]:
        """Signals for the current bar (the last row of each frame)."""

    def safe_generate_signals(self, data: StrategyData, predictions: np.ndarray | None = None) -> list[Signal]:
        if predictions is None and self.requires_predictions:
            return []
        try:
            return list(self.generate_signals(data, predictions))
        except Exception:
            logger.exception("strategy %s raised; returning no signals", self.name)
            return []


def iter_frames(data: StrategyData, default_symbol: str = "asset") -> list[tuple[str, pl.DataFrame]]:
    """(symbol, frame) pairs of a mapping, or of a single frame (symbol from its ``symbol``/``ticker``
    column when present, else ``default_symbol``)."""
    if isinstance(data, pl.DataFrame):
        for column in ("symbol", "ticker"):
            if column in data.columns and data.height:
                return [(str(data[column][-1]), data)]
        return [(default_symbol, data)]
    return list(data.items())


def bar_timestamp(frame: pl.DataFrame) -> Any:
    """The last row's ``timestamp`` (or ``date``) value, None for an empty frame."""
    if frame.height == 0:
        return None
    for column in ("timestamp", "date"):
        if column in frame.columns:
            return frame[column][-1]
    raise ValueError(f"frame needs a 'timestamp' or 'date' column, has {frame.columns}")
