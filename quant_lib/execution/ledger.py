"""The order and fill ledger: deterministic client order ids and the small protocol executors write to.

Every executor (paper or live) records one event per order submission, status change and fill.
The ledger is what the platform keeps (``warehouse/ledger/``, ingested into ``live_fills``);
``quant_lib`` only defines the event shape and an in-memory ledger, the file ledger lives in
``quant_resources.ledger``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

LEDGER_EVENTS = ("order", "status", "fill", "reject", "equity")
CLIENT_ORDER_ID_PREFIX = "qp"


def client_order_id(decision: str, symbol: str, leg: str | int, prefix: str = CLIENT_ORDER_ID_PREFIX) -> str:
    """Deterministic id of one order: ``prefix-`` + the first 32 hex digits of
    sha256("decision|symbol|leg"). ``decision`` names the decision (strategy + bar timestamp, or
    trading day), ``leg`` which order of that decision (e.g. "close", "open"). A retry or a replay
    after a crash computes the same id, so the broker can refuse a second order (Alpaca: at most
    128 characters, unique per account)."""
    digest = hashlib.sha256(f"{decision}|{symbol}|{leg}".encode()).hexdigest()[:32]
    return f"{prefix}-{digest}"


@runtime_checkable
class OrderLedger(Protocol):
    """Where executors write order, status and fill events (plain JSON-serialisable dicts with at
    least ``event`` (one of LEDGER_EVENTS), ``client_order_id`` and ``symbol``)."""

    def record(self, event: dict[str, Any]) -> None: ...


class MemoryLedger:
    """An in-memory ledger (tests, backtests, the buffer a file ledger flushes)."""

    def __init__(self, events: Iterable[dict[str, Any]] = ()) -> None:
        self.events: list[dict[str, Any]] = list(events)

    def record(self, event: dict[str, Any]) -> None:
        if event.get("event") not in LEDGER_EVENTS:
            raise ValueError(f"ledger event must be one of {LEDGER_EVENTS}, got {event.get('event')!r}")
        self.events.append(dict(event))

    def fills(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "fill"]

    def orders(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "order"]


def duplicate_client_order_ids(events: Iterable[dict[str, Any]]) -> list[str]:
    """Client order ids that were submitted (event "order") more than once: must be empty."""
    seen: set[str] = set()
    duplicated: list[str] = []
    for event in events:
        if event.get("event") != "order":
            continue
        key = event["client_order_id"]
        if key in seen:
            duplicated.append(key)
        seen.add(key)
    return duplicated


# order tracking --------------------------------------------------------------------------------
OPEN_ORDER_STATUSES = frozenset({
    "unconfirmed", "pending_new", "new", "accepted", "partially_filled", "accepted_for_bidding", "held",
    "calculated", "pending_cancel", "pending_replace", "done_for_day", "stopped", "suspended",
})
"""Alpaca order statuses that may still fill (plus "unconfirmed": sent, answer lost, to be looked up)."""
CLOSED_ORDER_STATUSES = frozenset({"filled", "canceled", "expired", "rejected", "replaced", "not_found", "failed"})
"""Statuses after which an order never fills again: it is closed out in the ledger."""
FILL_QTY_TOLERANCE = 1e-9


def fill_increment(known_qty: float, known_avg: float, cum_qty: float, cum_avg: float) -> tuple[float, float] | None:
    """The fill between two cumulative reports of one order, as (qty, price), or None when the
    report adds nothing (same or stale cumulative quantity).

    qty = cum_qty - known_qty; price = (cum_qty x cum_avg - known_qty x known_avg) / qty, so the
    increments' notionals add up to the broker's cumulative notional (filled_qty x filled_avg_price)."""
    qty = cum_qty - known_qty
    if qty <= FILL_QTY_TOLERANCE:
        return None
    return qty, (cum_qty * cum_avg - known_qty * known_avg) / qty


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0


class OrderTracker:
    """Every order a broker holds for us, its status and cumulative fill, and the book its fills make.

    ``track`` registers an order before it is sent (event "order"); ``apply(report)`` folds one
    broker report of an order (Alpaca's order object: id, client_order_id, symbol, side, qty,
    status, filled_qty, filled_avg_price) into it and returns the new ledger events: "status" on
    every status change (``closed`` true once the order is in ``CLOSED_ORDER_STATUSES``) and one
    "fill" per increase of the cumulative filled quantity (``fill_increment``), whose ``fill_id``
    is "order id:cumulative qty". Applying the same or an older report again adds nothing, so a
    poll, a restart's re-poll and a replay never record a fill twice; a report of an order the
    tracker does not know adopts it (its "order" event has ``adopted`` true). ``positions`` (signed
    shares) and ``cash`` (cash effect of every fill, commissions on the broker's statement) follow
    the fills. A closed order never reopens; its late fill increments still count.
    """

    remembered_closed = 5000

    def __init__(self, positions: Mapping[str, float] | None = None, cash: float = 0.0) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.positions: dict[str, float] = {s: float(q) for s, q in (positions or {}).items() if q}
        self.cash = float(cash)

    def track(self, coid: str, symbol: str, side: str, qty: float, timestamp: Any = None,
              adopted: bool = False, **extra: Any) -> list[dict[str, Any]]:
        """Register an order about to be sent (or found at the broker); [] when already known."""
        if coid in self.orders:
            return []
        self.orders[coid] = {"client_order_id": coid, "order_id": None, "symbol": symbol, "side": side,
                             "qty": float(qty), "status": "unconfirmed", "filled_qty": 0.0, "filled_avg_price": 0.0,
                             "timestamp": timestamp, **extra}
        return [{"event": "order", "client_order_id": coid, "symbol": symbol, "side": side, "qty": float(qty),
                 "timestamp": timestamp, "adopted": adopted, **extra}]

    def apply(self, report: Mapping[str, Any], timestamp: Any = None) -> list[dict[str, Any]]:
        """Fold one broker report into the order it names (see class doc); returns new events."""
        coid = str(report["client_order_id"])
        events = [] if coid in self.orders else self.track(
            coid, str(report["symbol"]), str(report["side"]), _number(report.get("qty")), timestamp, adopted=True)
        order = self.orders[coid]
        order["order_id"] = str(report.get("id") or order["order_id"] or "") or None
        status = str(report.get("status") or order["status"])
        increment = fill_increment(order["filled_qty"], order["filled_avg_price"], _number(report.get("filled_qty")),
                                   _number(report.get("filled_avg_price")))
        if increment is not None:
            events.append(self._fill(order, *increment, _number(report.get("filled_avg_price")), timestamp))
        if status != order["status"] and order["status"] not in CLOSED_ORDER_STATUSES:
            events.append(self._status(order, status, timestamp))
        return events

    def close(self, coid: str, status: str, reason: str, timestamp: Any = None) -> list[dict[str, Any]]:
        """Close an order locally (``failed``: never reached the broker; ``not_found``: the broker
        does not know its client id); [] when it is already closed."""
        if status not in CLOSED_ORDER_STATUSES:
            raise ValueError(f"close status must be one of {sorted(CLOSED_ORDER_STATUSES)}, got {status!r}")
        order = self.orders[coid]
        if order["status"] in CLOSED_ORDER_STATUSES:
            return []
        return [{**self._status(order, status, timestamp), "reason": reason}]

    def _status(self, order: dict[str, Any], status: str, timestamp: Any) -> dict[str, Any]:
        previous, order["status"] = order["status"], status
        return {"event": "status", "client_order_id": order["client_order_id"], "order_id": order["order_id"],
                "symbol": order["symbol"], "side": order["side"], "status": status, "previous_status": previous,
                "requested_qty": order["qty"], "filled_qty": order["filled_qty"],
                "unfilled_qty": max(order["qty"] - order["filled_qty"], 0.0),
                "closed": status in CLOSED_ORDER_STATUSES, "timestamp": timestamp}

    def _fill(self, order: dict[str, Any], qty: float, price: float, cum_avg: float, timestamp: Any) -> dict[str, Any]:
        sign = 1.0 if order["side"] == "buy" else -1.0
        order["filled_qty"] += qty
        order["filled_avg_price"] = cum_avg
        symbol = order["symbol"]
        held = self.positions.get(symbol, 0.0) + sign * qty
        if abs(held) > FILL_QTY_TOLERANCE:
            self.positions[symbol] = held
        else:
            self.positions.pop(symbol, None)
        self.cash -= sign * qty * price
        return {"event": "fill", "client_order_id": order["client_order_id"], "order_id": order["order_id"],
                "symbol": symbol, "side": order["side"], "qty": qty, "price": price, "commission": 0.0,
                "cum_qty": order["filled_qty"], "cum_avg_price": cum_avg,
                "fill_id": f"{order['order_id']}:{order['filled_qty']:.10g}", "timestamp": timestamp}

    def open_orders(self) -> list[dict[str, Any]]:
        return [o for o in self.orders.values() if o["status"] not in CLOSED_ORDER_STATUSES]

    def open_symbols(self) -> set[str]:
        return {o["symbol"] for o in self.open_orders()}

    def get_state(self) -> dict[str, Any]:
        """JSON-serialisable: every open order, the last ``remembered_closed`` closed ones, the book."""
        closed = [k for k, o in self.orders.items() if o["status"] in CLOSED_ORDER_STATUSES]
        forget = set(closed[:-self.remembered_closed]) if len(closed) > self.remembered_closed else set()
        return {"orders": {k: dict(o) for k, o in self.orders.items() if k not in forget},
                "positions": dict(self.positions), "cash": self.cash}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.orders = {k: dict(o) for k, o in state.get("orders", {}).items()}
        self.positions = {s: float(q) for s, q in state.get("positions", {}).items()}
        self.cash = float(state.get("cash", 0.0))


def fills_of_orders_since(orders: Iterable[Mapping[str, Any]], since: str) -> tuple[dict[str, float], float]:
    """(signed shares, cash effect) of the cumulative fills of the tracked orders whose
    ``timestamp`` (ISO) is on or after ``since``: what the book gained from them. The book before
    ``since`` = the broker's book minus these."""
    shares: dict[str, float] = {}
    cash = 0.0
    for order in orders:
        if str(order.get("timestamp") or "") < since or not order["filled_qty"]:
            continue
        sign = 1.0 if order["side"] == "buy" else -1.0
        shares[order["symbol"]] = shares.get(order["symbol"], 0.0) + sign * order["filled_qty"]
        cash -= sign * order["filled_qty"] * order["filled_avg_price"]
    return shares, cash
