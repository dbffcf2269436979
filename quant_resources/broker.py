"""The `broker` resource of the daily graph: `paper` (default) or `alpaca`.

paper: a `quant_lib.execution.PaperExecutor` whose state after each trading day is one JSON file
`<state_dir>/paper_broker/<YYYY-MM-DD>.json` (cash, positions, that day's orders by client order
id), written atomically. The book before day D is the newest file dated before D (or
`initial_cash`). Re-materializing D loads D's recorded orders as well, so submitting the same
client order ids again returns the recorded fills and sends nothing: a day is never applied twice.

alpaca: `quant_resources.brokers.alpaca.LiveExecutor` (keys only from APCA_API_KEY_ID /
APCA_API_SECRET_KEY, paper account unless `alpaca_paper` is false); orders carry the same
deterministic client order ids, so a retried day adopts the orders already sent.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

from dagster import ConfigurableResource

from quant_lib.execution.paper import PaperExecutor
from quant_resources.atomic import atomic_write_bytes

BROKER_KINDS = ("paper", "alpaca")


class BrokerResource(ConfigurableResource):
    """Where the daily `orders` asset sends the trade list (see module doc)."""

    kind: Literal["paper", "alpaca"] = "paper"
    state_dir: str = "warehouse/state"
    slippage_bps: float = 2.0
    commission_bps: float = 1.0
    alpaca_paper: bool = True

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
        live = self.live_executor().get_portfolio_state()
        executor = PaperExecutor(max(live["cash"], 1e-9), self.slippage_bps, self.commission_bps, allow_short=False)
        executor.load_state({"cash": live["cash"], "positions": {
            s: [p["qty"], p["avg_price"], p["current_price"]] for s, p in live["positions"].items()}})
        return executor

    def recorded_orders(self, day: date) -> dict[str, dict[str, Any]]:
        path = self._day_file(day)
        return json.loads(path.read_text()).get("orders", {}) if path.exists() else {}

    def save_day(self, day: date, executor: PaperExecutor, client_order_ids: list[str]) -> Path:
        state = executor.get_state()
        state["orders"] = {k: v for k, v in state["orders"].items() if k in set(client_order_ids)}
        return atomic_write_bytes(self._day_file(day), json.dumps(state, sort_keys=True, default=str).encode())

    def live_executor(self):
        """A connected Alpaca `LiveExecutor` (raises RuntimeError when the keys are missing)."""
        from quant_resources.brokers.alpaca import LiveExecutor

        executor = LiveExecutor(paper=self.alpaca_paper)
        executor.connect()
        return executor


def broker_from_settings(settings) -> BrokerResource:
    return BrokerResource(kind=settings.broker, state_dir=str(settings.state_dir),
                          slippage_bps=settings.paper_slippage_bps, commission_bps=settings.paper_commission_bps)
