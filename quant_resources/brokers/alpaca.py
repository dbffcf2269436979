"""Alpaca execution (seed 004 §4.8, §8.7) with alpaca-py's ``TradingClient``: idempotent orders.

Keys come only from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (never logged, never stored);
paper trading by default; ``APCA_API_BASE_URL`` (or ``base_url``) overrides the endpoint.

Idempotence. Every order carries a deterministic ``client_order_id`` (per decision, symbol, leg;
``quant_lib.execution.client_order_id``). alpaca-py 0.44 retries 429/504 on every method, POST
included, and sets no timeout; here its own retries are turned off (``_retry = 0``) and every
request has a timeout, and an ambiguous outcome (timeout, connection error, 429, 5xx, or 422
"client_order_id must be unique") is resolved by ``get_order_by_client_id``: an order the broker
has is adopted, one it does not have is sent again (same id) after an exponential backoff. So a
broker that accepted an order and answered 504 ends with exactly one order.

Order tracking. Alpaca usually answers a market order ``accepted`` / ``new`` and fills it later,
possibly in parts. Every order is kept in a ``quant_lib.execution.OrderTracker`` (part of the
executor's state): ``poll()`` asks the broker for each open order (by broker id, falling back to
``get_order_by_client_id``; an order sent whose answer was lost is "unconfirmed" and looked up by
client id, and closed "not_found" when the broker does not have it) and writes every status
change and each fill increment (filled_qty / filled_avg_price growth) to the ledger exactly once,
keyed by (order id, cumulative filled qty). The tracker's positions and cash follow those fills.

End of day (``unfilled_at_close``): "cancel" (default) sends DAY orders and ``close_session(day)``
cancels every order of an earlier day that is still open (Alpaca expires unfilled DAY orders at
the close; the poll records it either way), then records the final status and any fill that raced
the cancel. "keep" sends GTC orders that keep working across sessions and stay tracked and polled
until they fill or are canceled (no new order is sent for a symbol with a working order).

Reconcile on start (fail closed): ``reconcile()`` polls the tracked open orders, then adopts every
order of ours (client id prefix ``qp-``) submitted since the last sync (less a day) that the
tracker has not seen, with its fills: a crash between a fill at the broker and the ledger write
loses nothing and duplicates nothing. It then compares the broker's positions with the tracker's,
reports every difference and raises ``ReconcileError`` unless ``allow_mismatch`` (then the
broker's book is adopted).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from quant_lib.execution.ledger import (
    CLIENT_ORDER_ID_PREFIX,
    OPEN_ORDER_STATUSES,
    MemoryLedger,
    OrderLedger,
    OrderTracker,
    client_order_id,
)

logger = logging.getLogger(__name__)

KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"
BASE_URL_ENV = "APCA_API_BASE_URL"
OPEN_STATUSES = OPEN_ORDER_STATUSES
UNFILLED_AT_CLOSE = ("cancel", "keep")
ADOPTION_LOOKBACK = timedelta(days=1)
ORDER_PAGE = 500


class ReconcileError(RuntimeError):
    """The broker's book differs from the local state; trading must not start."""


class EmergencyStop(ConnectionError):
    """The broker could not be reached after ``max_retries`` attempts; trading is halted."""


def _float(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


class LiveExecutor:
    """Alpaca broker behind the executor interface that ``SelfTrainer`` and the ``orders`` asset use."""

    def __init__(
        self,
        paper: bool = True,
        base_url: str | None = None,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        timeout: float = 10.0,
        max_order_size: float = 50_000.0,
        ledger: OrderLedger | None = None,
        expected_positions: Mapping[str, float] | None = None,
        allow_mismatch: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        unfilled_at_close: str = "cancel",
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        if max_retries < 1 or backoff_base < 0 or not timeout > 0 or not max_order_size > 0:
            raise ValueError("need max_retries >= 1, backoff_base >= 0, timeout > 0 and max_order_size > 0")
        if unfilled_at_close not in UNFILLED_AT_CLOSE:
            raise ValueError(f"unfilled_at_close must be one of {UNFILLED_AT_CLOSE}, got {unfilled_at_close!r}")
        self.paper = paper
        self.base_url = base_url
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.timeout = timeout
        self.max_order_size = max_order_size
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self.tracker = OrderTracker(expected_positions)
        self.allow_mismatch = allow_mismatch
        self.sleep = sleep
        self.unfilled_at_close = unfilled_at_close
        self.clock = clock
        self.synced_at: datetime | None = None
        self.client: Any = None
        self.emergency_stopped = False

    @property
    def expected_positions(self) -> dict[str, float]:
        """The positions our fills make (``tracker.positions``): what the broker must hold."""
        return dict(self.tracker.positions)

    @expected_positions.setter
    def expected_positions(self, positions: Mapping[str, float]) -> None:
        self.tracker.positions = {s: float(q) for s, q in positions.items() if q}

    # connection ------------------------------------------------------------------------------
    def _backoff(self, attempt: int) -> None:
        """Wait base * 2^attempt seconds (seed 004 §8.1)."""
        self.sleep(self.backoff_base * (2 ** attempt))

    def connect(self) -> None:
        """Build the client and check the account, retrying with exponential backoff; after
        ``max_retries`` failures set ``emergency_stopped`` and raise ``EmergencyStop``."""
        api_key, secret_key = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
        if not api_key or not secret_key:
            raise RuntimeError(f"Alpaca API keys missing: set {KEY_ENV} and {SECRET_ENV} in the environment")
        from alpaca.trading.client import TradingClient

        url = (self.base_url or os.environ.get(BASE_URL_ENV) or "").rstrip("/")
        url = url[:-3] if url.endswith("/v2") else url
        client = TradingClient(api_key, secret_key, paper=self.paper, raw_data=True, url_override=url or None)
        client._retry = 0  # alpaca-py 0.44 has no constructor knob on TradingClient; retries are ours
        client._session.request = functools.partial(client._session.request, timeout=self.timeout)
        for attempt in range(self.max_retries):
            try:
                account = client.get_account()
            except Exception as error:  # noqa: BLE001 - any failure to reach the broker is retried
                logger.warning("Alpaca connect attempt %d/%d failed: %s", attempt + 1, self.max_retries, type(error).__name__)
                if attempt + 1 < self.max_retries:
                    self._backoff(attempt)
                continue
            self.client = client
            self.emergency_stopped = False
            logger.info("Connected to Alpaca (%s), account status %s", "paper" if self.paper else "LIVE",
                        account.get("status"))
            return
        self.emergency_stopped = True
        logger.error("EMERGENCY STOP: Alpaca unreachable after %d attempts; trading halted", self.max_retries)
        raise EmergencyStop(f"Alpaca unreachable after {self.max_retries} attempts; emergency stop")

    def disconnect(self) -> None:
        if self.client is not None:
            self.client._session.close()
        self.client = None

    def _require(self) -> Any:
        if self.emergency_stopped:
            raise EmergencyStop("emergency stop is active; reconnect first")
        if self.client is None:
            raise RuntimeError("LiveExecutor is not connected; call connect() first")
        return self.client

    # orders ----------------------------------------------------------------------------------
    @staticmethod
    def _ambiguous(error: Exception) -> bool:
        """True when the order may or may not exist at the broker."""
        from alpaca.common.exceptions import APIError
        from requests import RequestException

        if isinstance(error, RequestException):
            return True
        if isinstance(error, APIError):
            status = error.status_code or 0
            return status == 429 or status >= 500 or (status == 422 and "client_order_id" in str(error))
        return False

    def _lookup(self, coid: str) -> dict[str, Any] | None:
        from alpaca.common.exceptions import APIError

        for attempt in range(self.max_retries):
            try:
                return self._require().get_order_by_client_id(coid)
            except APIError as error:
                if error.status_code == 404:
                    return None
                logger.warning("order lookup %s failed (%s); retrying", coid, error.status_code)
            except Exception as error:  # noqa: BLE001
                logger.warning("order lookup %s failed (%s); retrying", coid, type(error).__name__)
            self._backoff(attempt)
        raise ConnectionError(f"could not look up order {coid} after {self.max_retries} attempts")

    def _send(self, request: Any, coid: str) -> tuple[dict[str, Any], bool]:
        """(order, adopted): submit, resolving every ambiguous outcome through the client id."""
        for attempt in range(self.max_retries):
            try:
                return self._require().submit_order(request), False
            except Exception as error:  # noqa: BLE001
                if not self._ambiguous(error):
                    raise
                logger.warning("order %s: ambiguous outcome (%s); looking it up", coid,
                               getattr(error, "status_code", None) or type(error).__name__)
            found = self._lookup(coid)
            if found is not None:
                logger.info("order %s found at the broker (id %s); adopted", coid, found.get("id"))
                return found, True
            self._backoff(attempt)
        raise ConnectionError(f"order {coid} not confirmed after {self.max_retries} attempts")

    def submit_order(
        self,
        symbol: str,
        side: str,
        qty: float,
        price: float | None = None,
        client_order_id: str | None = None,
        timestamp: Any = None,
        order_type: str = "market",
        session_close: str | None = None,
    ) -> dict[str, Any]:
        """Send a market order (DAY under "cancel", GTC under "keep" and for crypto pairs such as
        "BTC/USD", which Alpaca trades GTC only); ``price`` (the reference price) is only used for
        the ``max_order_size`` check, which raises ValueError before anything is sent.
        ``session_close`` (ISO), when given, is when the end-of-day rule may cancel the order."""
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r} for {symbol}")
        if not (math.isfinite(qty) and qty > 0):
            raise ValueError(f"qty must be positive and finite, got {qty} for {symbol}")
        if order_type != "market":
            raise ValueError(f"only market orders are supported, got {order_type!r}")
        if price is not None and qty * price > self.max_order_size:
            raise ValueError(f"order {side} {qty} {symbol} at {price} is {qty * price:,.2f}, over max_order_size {self.max_order_size:,.2f}")
        self._require()
        coid = client_order_id or _manual_id(symbol, side, qty, timestamp)
        if coid in self.tracker.orders:
            return self._result(coid, adopted=True)
        from alpaca.trading.enums import OrderSide, TimeInForce
        from alpaca.trading.requests import MarketOrderRequest

        tif = TimeInForce.DAY if self.unfilled_at_close == "cancel" and "/" not in symbol else TimeInForce.GTC
        request = MarketOrderRequest(symbol=symbol, qty=qty, side=OrderSide(side), time_in_force=tif, client_order_id=coid)
        self._write(self.tracker.track(coid, symbol, side, float(qty), timestamp, reference_price=price,
                                       order_type=order_type, session_close=session_close))
        try:
            order, adopted = self._send(request, coid)
        except ConnectionError as error:
            logger.error("order %s %s %s unconfirmed (%s); polled by client id until found or not found",
                         side, symbol, coid, str(error)[:300])
            return {**self._result(coid, False), "reason": str(error)[:300]}
        except Exception as error:  # noqa: BLE001 - seed §8.7: log and return a failed status
            logger.error("order %s %s %s failed: %s", side, symbol, coid, str(error)[:300])
            self._write([{**e, "event": "reject"} for e in self.tracker.close(coid, "failed", str(error)[:300], timestamp)])
            return {**self._result(coid, False), "reason": str(error)[:300]}
        self._write(self.tracker.apply(order, timestamp))
        return self._result(coid, adopted)

    def _write(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for event in events:
            self.ledger.record(event)
        return events

    def _result(self, coid: str, adopted: bool) -> dict[str, Any]:
        """The executor's order record: ``qty`` and ``price`` are what has filled so far."""
        order = self.tracker.orders[coid]
        filled = order["filled_qty"]
        return {"symbol": order["symbol"], "side": order["side"], "client_order_id": coid,
                "timestamp": order.get("timestamp"), "status": order["status"], "order_id": order["order_id"],
                "requested_qty": order["qty"], "qty": filled, "price": order["filled_avg_price"] if filled else math.nan,
                "commission": 0.0, "adopted": adopted}

    # tracking --------------------------------------------------------------------------------
    def _fetch(self, order: Mapping[str, Any]) -> tuple[bool, dict[str, Any] | None]:
        """(answered, report): the broker's view of a tracked order, by id, else by client id."""
        if order["order_id"]:
            try:
                return True, self._require().get_order_by_id(order["order_id"])
            except EmergencyStop:
                raise
            except Exception as error:  # noqa: BLE001 - fall back to the client id
                logger.warning("poll of order %s by id failed (%s); looking it up by client id", order["client_order_id"],
                               getattr(error, "status_code", None) or type(error).__name__)
        try:
            return True, self._lookup(order["client_order_id"])
        except ConnectionError as error:
            logger.warning("poll of order %s skipped this round: %s", order["client_order_id"], error)
            return False, None

    def poll(self, timestamp: Any = None) -> list[dict[str, Any]]:
        """Ask the broker for every open order; write status changes and new fills to the ledger
        (each once); returns the new fill events."""
        events: list[dict[str, Any]] = []
        for order in self.tracker.open_orders():
            answered, report = self._fetch(order)
            if report is not None:
                events += self.tracker.apply(report, timestamp)
            elif answered and order["status"] == "unconfirmed":
                events += self.tracker.close(order["client_order_id"], "not_found",
                                             "the broker has no order with this client id", timestamp)
        self._write(events)
        return [e for e in events if e["event"] == "fill"]

    def open_symbols(self) -> set[str]:
        """Symbols with a working order (the live loop sends no second order for them)."""
        return self.tracker.open_symbols()

    def broker_clock(self) -> dict[str, Any]:
        """Alpaca's market clock: timestamp, is_open, next_open, next_close (ISO with offset)."""
        return dict(self._require().get_clock())

    @staticmethod
    def _session_over(order: Mapping[str, Any], day: Any, now: datetime | None) -> bool:
        """An order's session is over when its recorded ``session_close`` is at or before ``now``
        (the broker's clock), else when it was submitted on a date before ``day``."""
        close = order.get("session_close")
        if close and now is not None:
            return parse_instant(close) <= now
        return str(order.get("timestamp") or "")[:10] < str(day)[:10]

    def close_session(self, day: Any, timestamp: Any = None, now: datetime | None = None) -> list[dict[str, Any]]:
        """End-of-day rule for the open orders whose session is over (``_session_over``):
        "cancel" cancels them and records their final status (and any fill that raced the
        cancel); "keep" leaves them working. Returns the new fill events."""
        if self.unfilled_at_close == "keep":
            return []
        if not any(self._session_over(o, day, now) for o in self.tracker.open_orders()):
            return []
        fills = self.poll(timestamp)
        stale = [o for o in self.tracker.open_orders() if self._session_over(o, day, now)]
        for order in stale:
            logger.info("end of day: canceling %s %s %s (%g of %g filled)", order["side"], order["symbol"],
                        order["client_order_id"], order["filled_qty"], order["qty"])
            if order["order_id"]:
                self.cancel_order(order["order_id"])
        return fills + self.poll(timestamp) if stale else fills

    def _recent_orders(self) -> list[dict[str, Any]]:
        """Every order the broker got since the last sync (or now, without one) less
        ADOPTION_LOOKBACK, oldest first, in pages of ORDER_PAGE."""
        from alpaca.common.enums import Sort
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        after = (self.synced_at or self.clock()) - ADOPTION_LOOKBACK
        reports: list[dict[str, Any]] = []
        while True:
            page = self._require().get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, after=after,
                                                                limit=ORDER_PAGE, direction=Sort.ASC))
            reports += page
            if len(page) < ORDER_PAGE or not page[-1].get("submitted_at"):
                return reports
            after = parse_instant(page[-1]["submitted_at"])

    def _adopt_recent(self, timestamp: Any = None) -> int:
        """Fold every order of ours (client id prefix) from ``_recent_orders`` into the tracker:
        unseen ones are adopted with their fills, dated by the broker's ``submitted_at``.
        Returns how many were new."""
        prefix = f"{CLIENT_ORDER_ID_PREFIX}-"
        ours = [r for r in self._recent_orders() if str(r.get("client_order_id") or "").startswith(prefix)]
        known = set(self.tracker.orders)
        events = self._write([e for r in ours for e in self.tracker.apply(
            r, timestamp if r["client_order_id"] in known else r.get("submitted_at") or timestamp)])
        adopted = len({r["client_order_id"] for r in ours} - known)
        if adopted:
            logger.warning("Adopted %d orders found at the broker that the local ledger had not seen (%d fills)",
                           adopted, sum(e["event"] == "fill" for e in events))
        return adopted

    def get_order_status(self, order_id: str) -> dict[str, Any]:
        order = self._require().get_order_by_id(order_id)
        return {"order_id": str(order.get("id")), "client_order_id": order.get("client_order_id"),
                "status": order.get("status"), "filled_qty": _float(order.get("filled_qty"))}

    def cancel_order(self, order_id: str) -> bool:
        try:
            self._require().cancel_order_by_id(order_id)
        except Exception as error:  # noqa: BLE001
            logger.error("cancel %s failed: %s", order_id, str(error)[:200])
            return False
        return True

    def cancel_all_orders(self) -> bool:
        try:
            self._require().cancel_orders()
        except Exception as error:  # noqa: BLE001
            logger.error("cancel all orders failed: %s", str(error)[:200])
            return False
        return True

    def close_position(self, symbol: str, price: float | None = None, client_order_id: str | None = None,
                       timestamp: Any = None) -> dict[str, Any]:
        """Flatten ``symbol`` with an opposing market order (idempotent through its client id)."""
        held = self.get_portfolio_state()["positions"].get(symbol, {}).get("qty", 0.0)
        if not held:
            return {"symbol": symbol, "status": "no_position", "qty": 0.0}
        return self.submit_order(symbol, "sell" if held > 0 else "buy", abs(held), None, client_order_id, timestamp)

    def close_all_positions(self, prices: Mapping[str, float] | None = None, timestamp: Any = None,
                            decision: str | None = None) -> list[dict[str, Any]]:
        """Cancel every working order (recording what filled meanwhile), then flatten each position."""
        working = [o for o in self.tracker.open_orders() if o["order_id"]]
        for order in working:
            self.cancel_order(order["order_id"])
        if working:
            self.poll(timestamp)
        decision = decision or f"close_all|{timestamp}"
        return [self.close_position(s, None, client_order_id(decision, s, "close_all"), timestamp)
                for s in self.get_portfolio_state()["positions"]]

    # book ------------------------------------------------------------------------------------
    def update_market_prices(self, prices: Mapping[str, float]) -> None:
        """The broker marks positions itself."""

    def get_portfolio_state(self) -> dict[str, Any]:
        client = self._require()
        account = client.get_account()
        positions = {}
        for row in client.get_all_positions():
            qty = _float(row.get("qty"))
            if row.get("side") == "short" and qty > 0:
                qty = -qty
            positions[str(row["symbol"])] = {
                "qty": qty,
                "avg_price": _float(row.get("avg_entry_price")),
                "current_price": _float(row.get("current_price")),
                "market_value": _float(row.get("market_value")),
                "unrealized_pnl": _float(row.get("unrealized_pl")),
            }
        return {"cash": _float(account.get("cash")), "equity": _float(account.get("equity")), "positions": positions,
                "unrealized_pnl": sum(p["unrealized_pnl"] for p in positions.values())}

    def broker_positions(self) -> dict[str, float]:
        return {s: p["qty"] for s, p in self.get_portfolio_state()["positions"].items()}

    def sync(self, timestamp: Any = None) -> int:
        """Poll the tracked open orders and adopt unseen orders of ours (see module doc); returns
        how many orders were adopted."""
        self.poll(timestamp)
        adopted = self._adopt_recent(timestamp)
        self.synced_at = self.clock()
        return adopted

    def reconcile(self, timestamp: Any = None) -> dict[str, Any]:
        """Sync, then compare the broker's positions with the tracker's (see module doc)."""
        adopted = self.sync(timestamp)
        broker, local = self.broker_positions(), self.expected_positions
        symbols = sorted(set(broker) | set(local))
        mismatches = [f"{s}: broker {broker.get(s, 0.0):g}, local {local.get(s, 0.0):g}"
                      for s in symbols if abs(broker.get(s, 0.0) - local.get(s, 0.0)) > 1e-9]
        open_orders = len(self.tracker.open_orders())
        report = {"positions": broker, "open_orders": open_orders, "adopted_orders": adopted, "mismatches": mismatches}
        if mismatches and not self.allow_mismatch:
            logger.error("Reconcile failed; trading will not start: %s", "; ".join(mismatches))
            raise ReconcileError("broker positions differ from the local state: " + "; ".join(mismatches))
        if mismatches:
            logger.warning("Reconcile mismatches overridden; adopting the broker's book: %s", "; ".join(mismatches))
        self.expected_positions = broker
        logger.info("Reconciled with Alpaca: %d positions, %d open orders tracked, %d orders adopted",
                    len(broker), open_orders, adopted)
        return report

    def get_state(self) -> dict[str, Any]:
        """What a restart needs to reconcile: the tracked orders and the positions their fills
        make (no keys, no account ids)."""
        return {"expected_positions": self.expected_positions, "tracker": self.tracker.get_state(),
                "synced_at": self.synced_at.isoformat() if self.synced_at else None}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if state.get("tracker"):
            self.tracker.load_state(state["tracker"])
        self.expected_positions = {s: float(q) for s, q in state.get("expected_positions", {}).items()}
        self.synced_at = datetime.fromisoformat(state["synced_at"]) if state.get("synced_at") else None


def parse_instant(value: Any) -> datetime:
    """An aware datetime from an ISO string ("Z" or an offset) or a datetime (naive = UTC)."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _manual_id(symbol: str, side: str, qty: float, timestamp: Any) -> str:
    return client_order_id(f"manual|{timestamp}", symbol, f"{side}|{qty:.10g}")
