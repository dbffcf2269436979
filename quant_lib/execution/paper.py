"""Paper broker (seed 004 §4.8, §8.7): immediate fills with slippage and commission, positions and P&L.

Fill price = price * (1 + slippage) for a buy, price * (1 - slippage) for a sell; commission =
commission_rate * |qty| * fill. The part of an order that adds exposure is capped by buying power
(cash minus twice the short notional: a short posts 100 % margin on top of its proceeds), the
same rule as ``quant_lib.backtest.event_engine``, so the same decisions fill the same way in a
backtest and on paper. The part that reduces a position always fills. Orders carry a
``client_order_id``; submitting one twice returns the first fill record and fills nothing.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from quant_lib.execution.ledger import MemoryLedger, OrderLedger, client_order_id

logger = logging.getLogger(__name__)

SIDES = ("buy", "sell")


@dataclass
class PaperPosition:
    qty: float
    """Signed quantity: > 0 long, < 0 short."""
    avg_price: float
    current_price: float

    def as_dict(self) -> dict[str, float]:
        return {
            "qty": self.qty,
            "avg_price": self.avg_price,
            "current_price": self.current_price,
            "market_value": self.qty * self.current_price,
            "unrealized_pnl": self.qty * (self.current_price - self.avg_price),
        }


class PaperExecutor:
    """Simulated broker with the seed's executor interface; state round-trips via get/load_state
    (which keeps the last ``remembered_orders`` client order ids for idempotence)."""

    remembered_orders = 5000

    def __init__(
        self,
        initial_capital: float = 100_000.0,
        slippage_bps: float = 2.0,
        commission_bps: float = 1.0,
        ledger: OrderLedger | None = None,
        allow_short: bool = True,
    ) -> None:
        if not (math.isfinite(initial_capital) and initial_capital > 0):
            raise ValueError(f"initial_capital must be positive, got {initial_capital}")
        if slippage_bps < 0 or commission_bps < 0:
            raise ValueError(f"slippage_bps and commission_bps must be >= 0, got {slippage_bps}, {commission_bps}")
        self.initial_capital = float(initial_capital)
        self.slippage = slippage_bps / 1e4
        self.commission_rate = commission_bps / 1e4
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.allow_short = allow_short
        self.cash = float(initial_capital)
        self.positions: dict[str, PaperPosition] = {}
        self.realized_pnl = 0.0
        self.commissions = 0.0
        self._orders: dict[str, dict[str, Any]] = {}
        self._sequence = itertools.count(1)

    # prices and state ------------------------------------------------------------------------
    def update_market_prices(self, prices: Mapping[str, float]) -> None:
        for symbol, price in prices.items():
            position = self.positions.get(symbol)
            if position is not None and math.isfinite(price) and price > 0:
                position.current_price = float(price)

    def buying_power(self) -> float:
        short_notional = sum(-p.qty * p.current_price for p in self.positions.values() if p.qty < 0)
        return self.cash - 2.0 * short_notional

    def equity(self) -> float:
        return self.cash + sum(p.qty * p.current_price for p in self.positions.values())

    def get_portfolio_state(self) -> dict[str, Any]:
        positions = {s: p.as_dict() for s, p in self.positions.items()}
        return {
            "cash": self.cash,
            "equity": self.equity(),
            "positions": positions,
            "realized_pnl": self.realized_pnl,
            "unrealized_pnl": sum(p["unrealized_pnl"] for p in positions.values()),
            "commissions": self.commissions,
            "n_orders": len(self._orders),
        }

    # orders ----------------------------------------------------------------------------------
    def submit_order(
        self,
        symbol: str,
        side: str,
        qty: float,
        price: float,
        client_order_id: str | None = None,
        timestamp: Any = None,
    ) -> dict[str, Any]:
        """Fill ``qty`` of ``symbol`` now at ``price`` +/- slippage; returns the fill record
        (``status`` "filled", or "rejected" with a ``reason`` when nothing could be filled)."""
        if side not in SIDES:
            raise ValueError(f"side must be one of {SIDES}, got {side!r} for {symbol}")
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"price must be positive and finite, got {price} for {symbol}")
        if not (math.isfinite(qty) and qty > 0):
            raise ValueError(f"qty must be positive and finite, got {qty} for {symbol}")
        order_id = f"paper-{next(self._sequence)}"
        client_order_id = client_order_id or order_id
        if client_order_id in self._orders:
            logger.info("order %s already filled; returning its record", client_order_id)
            return self._orders[client_order_id]
        base = {"symbol": symbol, "side": side, "client_order_id": client_order_id, "order_id": order_id, "timestamp": timestamp}
        self.ledger.record({**base, "event": "order", "qty": float(qty), "price": float(price), "order_type": "market"})
        record = self._fill(symbol, side, float(qty), float(price), base)
        self._orders[client_order_id] = record
        self.ledger.record({**record, "event": "fill" if record["status"] == "filled" else "reject"})
        return record

    def _fill(self, symbol: str, side: str, qty: float, price: float, base: dict[str, Any]) -> dict[str, Any]:
        sign = 1.0 if side == "buy" else -1.0
        fill_price = price * (1.0 + sign * self.slippage)
        position = self.positions.get(symbol)
        held = position.qty if position is not None else 0.0
        reducing = min(qty, abs(held)) if held * sign < 0 else 0.0
        adding = qty - reducing
        if adding > 0 and sign < 0 and not self.allow_short:
            adding = 0.0
        realized = 0.0
        if reducing > 0:
            realized = reducing * (fill_price - position.avg_price) * (1.0 if held > 0 else -1.0)
            self.cash += sign * -reducing * fill_price - reducing * fill_price * self.commission_rate
            position.qty += sign * reducing
            if abs(position.qty) < 1e-12:
                del self.positions[symbol]
        if adding > 0:
            affordable = max(self.buying_power(), 0.0) / (fill_price * (1.0 + self.commission_rate))
            adding = min(adding, affordable)
        if adding > 0:
            self.cash -= sign * adding * fill_price + adding * fill_price * self.commission_rate
            current = self.positions.get(symbol)
            if current is None:
                self.positions[symbol] = PaperPosition(sign * adding, fill_price, price)
            else:
                total = current.qty + sign * adding
                current.avg_price = (current.avg_price * abs(current.qty) + fill_price * adding) / abs(total)
                current.qty = total
        filled = reducing + adding
        if filled <= 0:
            reason = "short selling disabled" if sign < 0 and not self.allow_short else "insufficient buying power"
            return {**base, "status": "rejected", "reason": reason, "requested_qty": qty, "qty": 0.0}
        if symbol in self.positions:
            self.positions[symbol].current_price = price
        commission = filled * fill_price * self.commission_rate
        self.commissions += commission
        self.realized_pnl += realized
        if adding < qty - reducing:
            logger.info("%s %s reduced from %.6g to %.6g to fit buying power", side, symbol, qty, filled)
        return {
            **base,
            "status": "filled",
            "requested_qty": qty,
            "qty": filled,
            "price": fill_price,
            "reference_price": price,
            "commission": commission,
            "realized_pnl": realized,
        }

    def close_position(self, symbol: str, price: float | None = None, client_order_id: str | None = None,
                       timestamp: Any = None) -> dict[str, Any]:
        """Flatten ``symbol`` at ``price`` (default: its last market price); a status dict
        "no_position" when there is nothing to close."""
        position = self.positions.get(symbol)
        if position is None:
            return {"symbol": symbol, "status": "no_position", "qty": 0.0}
        side = "sell" if position.qty > 0 else "buy"
        price = position.current_price if price is None else price
        return self.submit_order(symbol, side, abs(position.qty), price, client_order_id, timestamp)

    def close_all_positions(self, prices: Mapping[str, float] | None = None, timestamp: Any = None,
                            decision: str | None = None) -> list[dict[str, Any]]:
        prices = prices or {}
        records = []
        for symbol in list(self.positions):
            coid = None if decision is None else client_order_id(decision, symbol, "close_all")
            records.append(self.close_position(symbol, prices.get(symbol), coid, timestamp))
        return records

    # state -----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "cash": self.cash,
            "positions": {s: [p.qty, p.avg_price, p.current_price] for s, p in self.positions.items()},
            "realized_pnl": self.realized_pnl,
            "commissions": self.commissions,
            "orders": {k: dict(v) for k, v in list(self._orders.items())[-self.remembered_orders:]},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.cash = float(state["cash"])
        self.positions = {s: PaperPosition(*map(float, v)) for s, v in state.get("positions", {}).items()}
        self.realized_pnl = float(state.get("realized_pnl", 0.0))
        self.commissions = float(state.get("commissions", 0.0))
        self._orders = {k: dict(v) for k, v in state.get("orders", {}).items()}
        self._sequence = itertools.count(len(self._orders) + 1)
