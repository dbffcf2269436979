"""The order and fill ledger: deterministic client order ids and the small protocol executors write to.

Every executor (paper or live) records one event per order submission, status change and fill.
The ledger is what the platform keeps (``warehouse/ledger/``, ingested into ``live_fills``);
``quant_lib`` only defines the event shape and an in-memory ledger, the file ledger lives in
``quant_resources.ledger``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
