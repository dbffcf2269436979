"""Portfolio risk limits (seed 004 section 8.6) and ATR stop-loss / take-profit checks."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from quant_lib.risk.var import historical_var

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Position:
    """An open position. `qty` is the (positive) number of units; `side` is "long" or "short".
    `stop_loss_atr` / `take_profit_atr` override the RiskLimits multipliers for this position."""

    symbol: str
    qty: float
    entry_price: float
    side: str = "long"
    entry_time: datetime | None = None
    stop_loss_atr: float | None = None
    take_profit_atr: float | None = None

    def __post_init__(self) -> None:
        if self.side not in ("long", "short"):
            raise ValueError(f"Position {self.symbol}: side must be 'long' or 'short', got {self.side!r}")
        if not (math.isfinite(self.qty) and self.qty >= 0):
            raise ValueError(f"Position {self.symbol}: qty must be a non-negative number, got {self.qty}")
        if not (math.isfinite(self.entry_price) and self.entry_price > 0):
            raise ValueError(f"Position {self.symbol}: entry_price must be positive, got {self.entry_price}")

    @property
    def sign(self) -> int:
        return 1 if self.side == "long" else -1


@dataclass(frozen=True)
class RiskLimits:
    """Seed 004 section 8.6 defaults. Drawdown, daily loss and VaR are fractions of equity."""

    max_drawdown: float = 0.15
    daily_loss_limit: float = 0.03
    var_limit: float = 0.05
    var_confidence: float = 0.95
    max_concentration: float = 0.10
    min_var_observations: int = 20
    stop_loss_atr: float = 2.0
    take_profit_atr: float = 3.0


def _market_value(symbol: str, holding: Any) -> float:
    if isinstance(holding, (int, float, np.integer, np.floating)):
        return float(holding)
    if isinstance(holding, Mapping):
        if "market_value" in holding:
            return float(holding["market_value"])
        price = holding.get("current_price", holding.get("price"))
        if "qty" in holding and price is not None:
            return float(holding["qty"]) * float(price)
    raise ValueError(
        f"positions[{symbol!r}] must be a market value or a mapping with 'market_value' or 'qty' and 'price'"
    )


@dataclass(frozen=True)
class RiskManager:
    """Checks a portfolio state against `RiskLimits`.

    `check_all` breaches (drawdown, daily loss, VaR) mean "refuse new trades"; concentration is
    reported per position but does not by itself block trading (seed 004 section 8.6).
    """

    limits: RiskLimits = RiskLimits()

    def check_all(self, portfolio_state: Mapping[str, Any]) -> tuple[bool, list[str]]:
        """(ok, violations) for a portfolio state mapping with keys:

        - "equity" (required): current equity;
        - "peak_equity" or "equity_history" (sequence of past equity values): drawdown = 1 - equity / peak;
        - "day_start_equity": daily loss = 1 - equity / day_start_equity;
        - "returns": recent portfolio returns; historical VaR at `var_confidence` is checked once there
          are at least `min_var_observations` of them (otherwise the check is skipped);
        - "positions": mapping symbol -> market value, or -> {"market_value"} / {"qty", "price"};
          |value| / equity above `max_concentration` is reported per symbol.
        `ok` is False when a drawdown, daily-loss or VaR limit is breached or equity <= 0.
        """
        limits = self.limits
        if "equity" not in portfolio_state:
            raise ValueError("portfolio_state needs 'equity'")
        equity = float(portfolio_state["equity"])
        blocking: list[str] = []
        reports: list[str] = []
        if not equity > 0:
            blocking.append(f"Equity non-positive: {equity:.2f}")
        peak = portfolio_state.get("peak_equity")
        history = portfolio_state.get("equity_history")
        if history is not None and len(history):
            history_peak = float(np.max(np.asarray(history, dtype=np.float64)))
            peak = history_peak if peak is None else max(float(peak), history_peak)
        if peak is not None and peak > 0:
            drawdown = 1.0 - equity / max(float(peak), equity)
            if drawdown > limits.max_drawdown:
                blocking.append(f"Max drawdown breached: {drawdown:.2%} > {limits.max_drawdown:.2%}")
        day_start = portfolio_state.get("day_start_equity")
        if day_start is not None and float(day_start) > 0:
            daily_loss = 1.0 - equity / float(day_start)
            if daily_loss > limits.daily_loss_limit:
                blocking.append(f"Daily loss limit breached: {daily_loss:.2%} > {limits.daily_loss_limit:.2%}")
        returns = portfolio_state.get("returns")
        if returns is not None:
            series = np.asarray(returns, dtype=np.float64).reshape(-1)
            series = series[np.isfinite(series)]
            if series.size >= limits.min_var_observations:
                var = historical_var(series, limits.var_confidence)
                if var > limits.var_limit:
                    blocking.append(
                        f"VaR({limits.var_confidence:.0%}) breached: {var:.2%} > {limits.var_limit:.2%}"
                    )
            else:
                logger.debug("VaR check skipped: %d returns < %d", series.size, limits.min_var_observations)
        positions = portfolio_state.get("positions") or {}
        if equity > 0:
            for symbol, holding in positions.items():
                weight = abs(_market_value(symbol, holding)) / equity
                if weight > limits.max_concentration:
                    reports.append(
                        f"Concentration breached for {symbol}: {weight:.2%} > {limits.max_concentration:.2%}"
                    )
        return not blocking, blocking + reports

    def _levels(self, position: Position, atr: float) -> tuple[float, float] | None:
        if not math.isfinite(atr) or atr < 0:
            raise ValueError(f"atr must be a non-negative number, got {atr}")
        if atr == 0:
            return None
        stop_mult = position.stop_loss_atr if position.stop_loss_atr is not None else self.limits.stop_loss_atr
        take_mult = position.take_profit_atr if position.take_profit_atr is not None else self.limits.take_profit_atr
        return (
            position.entry_price - position.sign * stop_mult * atr,
            position.entry_price + position.sign * take_mult * atr,
        )

    def check_stop_loss(self, position: Position, current_price: float, atr: float) -> bool:
        """True when the price has moved k ATR against the position (long: price <= entry - k ATR;
        short: price >= entry + k ATR), k = stop_loss_atr. ATR = 0 gives no stop (False)."""
        levels = self._levels(position, atr)
        if levels is None:
            return False
        hit = current_price <= levels[0] if position.side == "long" else current_price >= levels[0]
        if hit:
            logger.info("Stop-loss triggered for %s at %.4f (stop %.4f)", position.symbol, current_price, levels[0])
        return bool(hit)

    def check_take_profit(self, position: Position, current_price: float, atr: float) -> bool:
        """True when the price has moved k ATR in favour (long: price >= entry + k ATR; short:
        price <= entry - k ATR), k = take_profit_atr. ATR = 0 gives no target (False)."""
        levels = self._levels(position, atr)
        if levels is None:
            return False
        hit = current_price >= levels[1] if position.side == "long" else current_price <= levels[1]
        if hit:
            logger.info("Take-profit triggered for %s at %.4f (target %.4f)", position.symbol, current_price, levels[1])
        return bool(hit)

    def positions_to_close(
        self, positions: Sequence[Position], prices: np.ndarray, atr: np.ndarray
    ) -> np.ndarray:
        """Vectorised stop-loss / take-profit over many positions: a boolean array, True where either fires."""
        n = len(positions)
        price = np.asarray(prices, dtype=np.float64).reshape(-1)
        atr_values = np.asarray(atr, dtype=np.float64).reshape(-1)
        if price.shape[0] != n or atr_values.shape[0] != n:
            raise ValueError(f"{n} positions but {price.shape[0]} prices and {atr_values.shape[0]} ATRs")
        if (~np.isfinite(atr_values) | (atr_values < 0)).any():
            raise ValueError("atr must be non-negative and finite")
        sign = np.array([p.sign for p in positions], dtype=np.float64)
        entry = np.array([p.entry_price for p in positions], dtype=np.float64)
        stop = np.array([self.limits.stop_loss_atr if p.stop_loss_atr is None else p.stop_loss_atr for p in positions])
        take = np.array(
            [self.limits.take_profit_atr if p.take_profit_atr is None else p.take_profit_atr for p in positions]
        )
        move = sign * (price - entry)
        return (atr_values > 0) & ((move <= -stop * atr_values) | (move >= take * atr_values))
