"""Position sizing (seed 004 sections 4.6 and 8.5): Kelly, volatility-adjusted (ATR), fixed fraction."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SIZING_METHODS = ("kelly", "volatility", "fixed_fraction")


def kelly_fraction(win_rate: np.ndarray | float, win_loss_ratio: np.ndarray | float) -> np.ndarray:
    """Single-bet Kelly fraction f* = p - (1 - p) / b (Kelly 1956), floored at 0: never bet negative."""
    p = np.asarray(win_rate, dtype=np.float64)
    b = np.asarray(win_loss_ratio, dtype=np.float64)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("win_rate must lie in [0, 1]")
    if (b <= 0).any():
        raise ValueError("win_loss_ratio (average win / average loss) must be positive")
    return np.clip(p - (1.0 - p) / b, 0.0, None)


def _signal_parts(signal: Any) -> tuple[float, float]:
    """(direction in {-1, 0, 1}, strength in [0, 1]) from a number, a mapping or a Signal-like object."""
    if isinstance(signal, (int, float, np.integer, np.floating)):
        value = float(signal)
        return float(np.sign(value)), min(abs(value), 1.0)
    if isinstance(signal, Mapping):
        direction = signal.get("direction")
        confidence = signal.get("confidence", 1.0)
    else:
        direction = getattr(signal, "direction", None)
        confidence = getattr(signal, "confidence", 1.0)
    if direction is None:
        raise ValueError("signal needs a direction (a number, or an object / mapping with 'direction')")
    return float(np.sign(direction)), float(np.clip(confidence, 0.0, 1.0))


@dataclass(frozen=True)
class PositionSizer:
    """Signed position quantities with |qty * price| <= capital * max_position_pct.

    method "kelly": notional = capital * kelly_multiplier * f* * strength, f* from `kelly_fraction`
    (win_rate, win_loss_ratio in the market data; falls back to fixed fraction without them).
    method "volatility": qty = capital * risk_per_trade * strength / (atr_multiplier * ATR), the size
    whose ATR stop loses `risk_per_trade` of capital; ATR = 0 or missing falls back to fixed fraction.
    method "fixed_fraction": notional = capital * fixed_fraction * strength.
    Capital <= 0 gives 0 (with a warning); a non-positive price raises ValueError.
    """

    method: str = "fixed_fraction"
    max_position_pct: float = 0.10
    fixed_fraction: float = 0.05
    kelly_multiplier: float = 0.5
    risk_per_trade: float = 0.01
    atr_multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.method not in SIZING_METHODS:
            raise ValueError(f"method must be one of {SIZING_METHODS}, got {self.method!r}")
        for name in ("max_position_pct", "fixed_fraction", "kelly_multiplier", "risk_per_trade", "atr_multiplier"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive, got {value}")

    def calculate_many(
        self,
        capital: float,
        prices: np.ndarray,
        directions: np.ndarray,
        strengths: np.ndarray | None = None,
        atr: np.ndarray | None = None,
        win_rate: np.ndarray | None = None,
        win_loss_ratio: np.ndarray | None = None,
    ) -> np.ndarray:
        """Vectorised sizing: signed quantities (fractional shares) for arrays of prices, directions
        (sign taken), strengths in [0, 1] (default 1), and optional ATR / win statistics (NaN = missing)."""
        price = np.asarray(prices, dtype=np.float64).reshape(-1)
        n = price.shape[0]
        if not np.isfinite(capital) or capital <= 0:
            logger.warning("capital %s <= 0: position size 0", capital)
            return np.zeros(n)
        bad = ~np.isfinite(price) | (price <= 0)
        if bad.any():
            raise ValueError(f"prices must be positive and finite; bad at {np.flatnonzero(bad).tolist()[:10]}")
        direction = np.sign(np.broadcast_to(np.asarray(directions, dtype=np.float64), (n,)))
        strength = np.ones(n) if strengths is None else np.broadcast_to(np.asarray(strengths, dtype=np.float64), (n,))
        strength = np.clip(np.nan_to_num(strength, nan=0.0), 0.0, 1.0)
        fixed_notional = capital * self.fixed_fraction * strength
        notional = fixed_notional
        if self.method == "kelly" and win_rate is not None and win_loss_ratio is not None:
            p = np.broadcast_to(np.asarray(win_rate, dtype=np.float64), (n,))
            b = np.broadcast_to(np.asarray(win_loss_ratio, dtype=np.float64), (n,))
            known = np.isfinite(p) & np.isfinite(b)
            f_star = np.zeros(n)
            f_star[known] = kelly_fraction(p[known], b[known])
            notional = np.where(known, capital * self.kelly_multiplier * f_star * strength, fixed_notional)
        elif self.method == "volatility" and atr is not None:
            atr_values = np.broadcast_to(np.asarray(atr, dtype=np.float64), (n,))
            usable = np.isfinite(atr_values) & (atr_values > 0)
            with np.errstate(divide="ignore", invalid="ignore"):
                atr_qty = capital * self.risk_per_trade * strength / (self.atr_multiplier * atr_values)
            notional = np.where(usable, atr_qty * price, fixed_notional)
        notional = np.minimum(notional, capital * self.max_position_pct)
        return direction * notional / price

    def calculate(
        self, capital: float, price: float, signal: Any, market_data: Mapping[str, float] | None = None
    ) -> float:
        """Signed quantity for one instrument (seed 004 PositionSizer contract).

        `signal`: a number (sign = direction, |value| clipped to 1 = strength, e.g. a target
        position in [-1, 1]) or an object / mapping with `direction` and optional `confidence`.
        `market_data`: optional "atr", "win_rate", and "win_loss_ratio" (or "avg_win" and "avg_loss").
        """
        direction, strength = _signal_parts(signal)
        data = dict(market_data or {})
        win_loss = data.get("win_loss_ratio")
        if win_loss is None and data.get("avg_win") is not None and data.get("avg_loss"):
            win_loss = abs(data["avg_win"]) / abs(data["avg_loss"])
        quantity = self.calculate_many(
            capital,
            np.array([price], dtype=np.float64),
            np.array([direction]),
            np.array([strength]),
            atr=None if data.get("atr") is None else np.array([data["atr"]], dtype=np.float64),
            win_rate=None if data.get("win_rate") is None else np.array([data["win_rate"]], dtype=np.float64),
            win_loss_ratio=None if win_loss is None else np.array([win_loss], dtype=np.float64),
        )
        return float(quantity[0])
