"""Running performance of the live book and of each model (seed 004 §3.3 step 8, §7 "performance")."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np


def sharpe_ratio(returns: np.ndarray, periods_per_year: int) -> float:
    """mean / std (ddof 1) * sqrt(periods_per_year); 0 with fewer than 2 returns or zero spread."""
    if returns.size < 2:
        return 0.0
    std = float(returns.std(ddof=1))
    return float(returns.mean() / std * math.sqrt(periods_per_year)) if std > 1e-12 else 0.0


class PerformanceTracker:
    """Equity and returns of the book, its rolling Sharpe over ``window`` bars, and each model's
    rolling Sharpe: model m earns sign(score of m at t-1) * r_t averaged over the symbols it
    scored (its own directional P&L, before costs)."""

    def __init__(self, initial_capital: float, window: int, periods_per_year: int, history_limit: int) -> None:
        self.initial_capital = initial_capital
        self.window = window
        self.periods_per_year = periods_per_year
        self.equity_history: deque[float] = deque(maxlen=history_limit)
        self.returns_history: deque[float] = deque(maxlen=history_limit)
        self.trade_history: deque[dict[str, Any]] = deque(maxlen=history_limit)
        self.model_returns: dict[str, deque[float]] = {}
        self.last_directions: dict[str, dict[str, float]] = {}
        self.rolling_sharpe = 0.0

    def update(self, equity: float, asset_returns: Mapping[str, float], directions: Mapping[str, Mapping[str, float]]) -> None:
        previous = self.equity_history[-1] if self.equity_history else self.initial_capital
        self.returns_history.append(equity / previous - 1.0 if previous > 0 else 0.0)
        self.equity_history.append(equity)
        recent = np.fromiter(self.returns_history, dtype=np.float64)[-self.window:]
        self.rolling_sharpe = sharpe_ratio(recent, self.periods_per_year)
        for model, previous_directions in self.last_directions.items():
            earned = [d * asset_returns[s] for s, d in previous_directions.items() if s in asset_returns]
            if earned:
                self.model_returns.setdefault(model, deque(maxlen=self.window)).append(sum(earned) / len(earned))
        self.last_directions = {m: dict(d) for m, d in directions.items()}

    def model_sharpes(self) -> dict[str, float]:
        return {m: sharpe_ratio(np.fromiter(r, dtype=np.float64), self.periods_per_year) for m, r in self.model_returns.items()}

    def get_state(self) -> dict[str, Any]:
        return {
            "equity_history": list(self.equity_history),
            "returns_history": list(self.returns_history),
            "trade_history": list(self.trade_history),
            "rolling_sharpe": self.rolling_sharpe,
            "model_returns": {m: list(r) for m, r in self.model_returns.items()},
            "last_directions": self.last_directions,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        limit = self.equity_history.maxlen
        self.equity_history = deque(state.get("equity_history", []), maxlen=limit)
        self.returns_history = deque(state.get("returns_history", []), maxlen=limit)
        self.trade_history = deque(state.get("trade_history", []), maxlen=limit)
        self.rolling_sharpe = float(state.get("rolling_sharpe", 0.0))
        self.model_returns = {m: deque(r, maxlen=self.window) for m, r in state.get("model_returns", {}).items()}
        self.last_directions = {m: dict(d) for m, d in state.get("last_directions", {}).items()}
