"""The `broker` resource of the daily graph: `paper` (default) or `alpaca`.

paper: a `quant_lib.execution.PaperExecutor` whose state after each trading day is one JSON file
`<state_dir>/paper_broker/<YYYY-MM-DD>.json` (cash, positions, that day's orders by client order
id), written atomically. The book before day D is the newest file dated before D (or
`initial_cash`). Re-materializing D loads D's recorded orders as well, so submitting the same
client order ids again returns the recorded fills and sends nothing: a day is never applied twice.

alpaca: `quant_resources.brokers.alpaca.LiveExecutor` (keys only from APCA_API_KEY_ID /
APCA_API_SECRET_KEY, APCA_API_BASE_URL honoured, paper account unless `alpaca_paper` is false);
orders carry the same deterministic client order ids, so a retried day adopts the orders already
sent. Every order is tracked (`quant_lib.execution.OrderTracker`, saved atomically as
`<state_dir>/alpaca_broker/orders.json`) and polled by every `holdings` / `orders` / `fills` run;
its status changes and fill increments go to the ledger `<ledger_dir>/daily-alpaca/` (segment
files first, then the tracker naming the last segment: a crash in between re-derives the same
events from the broker). The book before day D is the account now minus the fills of the orders
of days >= D, so re-materializing a day gives the same holdings.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dagster import ConfigurableResource

from quant_lib.execution.paper import PaperExecutor
from quant_resources.atomic import atomic_write_bytes

BROKER_KINDS = ("paper", "alpaca")
ALPACA_LEDGER_RUN = "daily-alpaca"


class BrokerResource(ConfigurableResource):
    """Where the daily `orders` asset sends the trade list (see module doc)."""

    kind: Literal["paper", "alpaca"] = "paper"
    state_dir: str = "warehouse/state"
    slippage_bps: float = 2.0
    commission_bps: float = 1.0
    alpaca_paper: bool = True
    ledger_dir: str = Field("", description="Ledger root of the Alpaca daily path (default: <state_dir>/../ledger).")
    unfilled_at_close: Literal["cancel", "keep"] = Field(
        "cancel", description="Alpaca orders still open at `fills`: cancel them (DAY orders) or keep them working (GTC).")
    fill_wait_s: float = Field(30.0, ge=0, description="How long `fills` polls for the day's Alpaca orders to close.")
    poll_interval_s: float = Field(1.0, gt=0, description="Seconds between two polls while `fills` waits.")

    @property
    def paper_dir(self) -> Path:
        return Path(self.state_dir) / "paper_broker"

    def _day_file(self, day: date) -> Path:
        return self.paper_dir / f"{day.isoformat()}.json"

    def _saved_days(self) -> list[date]:
        if not self.paper_dir.exists():
            return []
        return sorted(date.fromisoformat(p.stem) for p in self.paper_dir.glob("????-??-??.json"))

    def paper_book_before(self, day: date, initial_cash: float) -> PaperExecutor:
        """The paper book at the start of `day`: the newest saved day before it, else all cash."""
        executor = PaperExecutor(initial_cash, self.slippage_bps, self.commission_bps, allow_short=False)
        earlier = [d for d in self._saved_days() if d < day]
        if earlier:
            state = json.loads(self._day_file(earlier[-1]).read_text())
            executor.load_state({**state, "orders": {}})
        return executor

    def book_before(self, day: date, initial_cash: float) -> PaperExecutor:
        """The book `holdings` starts from: the paper book before `day`, or on Alpaca the
        account's cash and positions now (a `PaperExecutor` holding them)."""
        if self.kind == "paper":
            return self.paper_book_before(day, initial_cash)
        from quant_lib.execution.ledger import fills_of_orders_since

        trader = self.live_executor()
        try:
            trader.sync(day.isoformat())
            live = trader.get_portfolio_state()
        finally:
            self.save_alpaca(trader)
            trader.disconnect()
        since, cash_since = fills_of_orders_since(trader.tracker.orders.values(), day.isoformat())
        cash = live["cash"] - cash_since
        positions = {s: [p["qty"] - since.get(s, 0.0), p["avg_price"], p["current_price"]] for s, p in live["positions"].items()}
        positions.update({s: [-q, 0.0, 0.0] for s, q in since.items() if s not in positions})
        executor = PaperExecutor(max(cash, 1e-9), self.slippage_bps, self.commission_bps, allow_short=False)
        executor.load_state({"cash": cash, "positions": {s: p for s, p in positions.items() if abs(p[0]) > 1e-9}})
        return executor

    def recorded_orders(self, day: date) -> dict[str, dict[str, Any]]:
        path = self._day_file(day)
        return json.loads(path.read_text()).get("orders", {}) if path.exists() else {}

    def save_day(self, day: date, executor: PaperExecutor, client_order_ids: list[str]) -> Path:
        state = executor.get_state()
        state["orders"] = {k: v for k, v in state["orders"].items() if k in set(client_order_ids)}
        return atomic_write_bytes(self._day_file(day), json.dumps(state, sort_keys=True, default=str).encode())

    @property
    def alpaca_file(self) -> Path:
        return Path(self.state_dir) / "alpaca_broker" / "orders.json"

    def alpaca_ledger(self):
        from quant_resources.ledger import FileLedgerSink

        root = Path(self.ledger_dir) if self.ledger_dir else Path(self.state_dir).parent / "ledger"
        return FileLedgerSink(root, ALPACA_LEDGER_RUN)

    def live_executor(self):
        """A connected Alpaca `LiveExecutor` holding the saved tracker (raises RuntimeError when
        the keys are missing); ledger segments newer than the tracker are dropped (re-derived)."""
        from quant_lib.execution.ledger import MemoryLedger
        from quant_resources.brokers.alpaca import LiveExecutor

        executor = LiveExecutor(paper=self.alpaca_paper, unfilled_at_close=self.unfilled_at_close, ledger=MemoryLedger())
        executor.connect()
        try:
            saved = json.loads(self.alpaca_file.read_text()) if self.alpaca_file.exists() else {}
        except (OSError, ValueError) as error:
            raise RuntimeError(f"Alpaca order tracker {self.alpaca_file} is unreadable ({error}); restore it, or move "
                               "it away to re-adopt the last day's orders from the broker") from error
        executor.load_state(saved)
        executor.ledger_segment = int(saved.get("ledger_segment", 0))
        self.alpaca_ledger().discard_after(executor.ledger_segment)
        return executor

    def save_alpaca(self, executor) -> None:
        """New ledger events as the next segment, then the tracker (atomic, in that order)."""
        if executor.ledger.events:
            executor.ledger_segment += 1
            self.alpaca_ledger().write_segment(executor.ledger_segment, list(executor.ledger.events))
            executor.ledger.events.clear()
        state = {**executor.get_state(), "ledger_segment": executor.ledger_segment}
        atomic_write_bytes(self.alpaca_file, json.dumps(state, sort_keys=True, default=str).encode())

    def alpaca_orders(self, day: date, trades, holdings) -> tuple[Any, list[str]]:
        """Day `day` on Alpaca: sync, the end-of-day rule for earlier days, the blocking reconcile
        (the account less the fills of orders of days >= `day` must equal `holdings`), then the
        trade list (an id already tracked is returned, not sent; with "keep", a ticker with a
        working order of an earlier day is skipped). Returns (ORDER_COLUMNS rows, mismatches)."""
        import polars as pl

        from quant_lib.execution.ledger import fills_of_orders_since
        from quant_lib.portfolio.book import ORDER_COLUMNS, reconcile, submit_trades
        from quant_resources.brokers.alpaca import parse_instant

        trader = self.live_executor()
        try:
            trader.sync(day.isoformat())
            clock = trader.broker_clock()
            trader.close_session(day.isoformat(), day.isoformat(), parse_instant(clock["timestamp"]))
            since, _ = fills_of_orders_since(trader.tracker.orders.values(), day.isoformat())
            positions = {s: q - since.get(s, 0.0) for s, q in trader.broker_positions().items()}
            positions.update({s: -q for s, q in since.items() if s not in positions})
            mismatches = reconcile(positions, holdings)
            if mismatches:
                return pl.DataFrame(schema=ORDER_COLUMNS), mismatches
            working = {o["symbol"]: o["client_order_id"] for o in trader.tracker.open_orders()
                       if str(o.get("timestamp") or "")[:10] < day.isoformat()}

            def submit(ticker, side, qty, price, coid):
                if coid in trader.tracker.orders:  # adopted after a crash: the id names its day
                    trader.tracker.orders[coid]["timestamp"] = day.isoformat()
                if ticker in working:
                    return {"status": "skipped", "qty": 0.0, "reason": f"working order {working[ticker]} of an earlier day"}
                return trader.submit_order(ticker, side, qty, price, client_order_id=coid, timestamp=day.isoformat(),
                                           session_close=clock.get("next_close"))

            return submit_trades(None, day, trades, submit=submit), []
        finally:
            self.save_alpaca(trader)
            trader.disconnect()

    def alpaca_fill_events(self, day: date, client_order_ids: list[str], timer=None,
                           sleep=None) -> tuple[list[dict[str, Any]], int]:
        """Poll the day's orders until all are closed or `fill_wait_s` passed; then the
        end-of-day rule for every order whose session is over by the broker's clock ("cancel":
        cancel it and record its final status; an order queued for a session not yet over
        keeps working, and the next run's poll records it). Returns the ledger's fill events of
        those orders (one per fill increment) and how many of them are still open."""
        import time

        from quant_resources.brokers.alpaca import parse_instant

        timer, sleep = timer or time.monotonic, sleep or time.sleep
        trader = self.live_executor()
        wanted = set(client_order_ids)
        try:
            deadline = timer() + self.fill_wait_s
            market_open = bool(trader.broker_clock().get("is_open"))
            trader.poll(day.isoformat())
            while market_open and any(o["client_order_id"] in wanted for o in trader.tracker.open_orders()) and timer() < deadline:
                sleep(self.poll_interval_s)
                trader.poll(day.isoformat())
            trader.close_session(day.isoformat(), day.isoformat(), parse_instant(trader.broker_clock()["timestamp"]))
            still_open = sum(o["client_order_id"] in wanted for o in trader.tracker.open_orders())
        finally:
            self.save_alpaca(trader)
            trader.disconnect()
        events = [e for e in self.alpaca_ledger().events() if e.get("event") == "fill" and e["client_order_id"] in wanted]
        return events, still_open


def broker_from_settings(settings) -> BrokerResource:
    return BrokerResource(kind=settings.broker, state_dir=str(settings.state_dir),
                          unfilled_at_close=settings.alpaca_unfilled_at_close,
                          slippage_bps=settings.paper_slippage_bps, commission_bps=settings.paper_commission_bps)
