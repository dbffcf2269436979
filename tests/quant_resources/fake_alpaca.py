"""A fake Alpaca trading API on 127.0.0.1 for tests: account, clock, positions, orders by id and by
client id, with scripted faults on order submission: "429" (refused, nothing recorded),
"504" (order recorded, then 504), "timeout" (order recorded, answer delayed past the client's
timeout), and the real API's 422 for a client_order_id it already has.

Order lifecycle: by default an order fills at submit (at ``prices[symbol]`` or ``price``). With
``hold = True`` a new order is only ``accepted``; ``fill(coid, qty, price)`` then fills it in
parts (``partially_filled`` -> ``filled``), ``expire()`` ends what is still open (a day order at
the close), DELETE cancels. ``poll_faults`` scripts answers to GET /v2/orders/<id> ("404", "504").
Cash and positions follow the fills."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeAlpaca:
    def __init__(self, price: float = 100.0, delay: float = 1.0, cash: float = 100_000.0) -> None:
        self.price = price
        self.prices: dict[str, float] = {}
        self.cash = cash
        self.hold = False
        self.poll_faults: list[str] = []
        self.deletes = 0
        self.clock = {"is_open": True, "timestamp": "2025-01-02T15:00:00Z", "next_open": "2025-01-03T14:30:00Z",
                      "next_close": "2025-01-02T21:00:00Z"}
        self.delay = delay
        self.orders: list[dict] = []
        self.positions: dict[str, float] = {}
        self.faults: list[str] = []
        self.account_faults = 0
        self.posts = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.server.handle_error = lambda request, address: None  # the client hung up on a "timeout" answer
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def orders_for(self, coid: str) -> list[dict]:
        return [o for o in self.orders if o["client_order_id"] == coid]

    def _accept(self, body: dict) -> dict:
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"
        order = {
            "id": str(uuid.uuid4()), "client_order_id": body["client_order_id"], "symbol": body["symbol"],
            "side": body["side"], "qty": str(float(body["qty"])), "filled_qty": "0", "filled_avg_price": None,
            "status": "accepted", "type": "market", "time_in_force": body.get("time_in_force", "day"),
            "submitted_at": now, "created_at": now, "updated_at": now,
        }
        self.orders.append(order)
        if not self.hold:
            self._fill(order, None, None)
        return order

    def _fill(self, order: dict, qty: float | None, price: float | None) -> None:
        done, total = float(order["filled_qty"]), float(order["qty"])
        qty = total - done if qty is None else min(qty, total - done)
        price = self.prices.get(order["symbol"], self.price) if price is None else price
        if qty <= 0 or order["status"] in ("filled", "canceled", "expired"):
            return
        average = float(order["filled_avg_price"] or 0.0)
        order["filled_avg_price"] = str((done * average + qty * price) / (done + qty))
        order["filled_qty"] = str(done + qty)
        order["status"] = "filled" if done + qty >= total - 1e-9 else "partially_filled"
        signed = qty if order["side"] == "buy" else -qty
        self.positions[order["symbol"]] = self.positions.get(order["symbol"], 0.0) + signed
        self.cash -= signed * price

    def fill(self, coid: str | None = None, qty: float | None = None, price: float | None = None) -> None:
        """Fill ``qty`` (default: the rest) of the order ``coid`` (default: every open order)."""
        with self.lock:
            for order in self.orders:
                if coid is None or order["client_order_id"] == coid:
                    self._fill(order, qty, price)

    def expire(self) -> None:
        with self.lock:
            for order in self.open_orders():
                order["status"] = "expired"

    def open_orders(self) -> list[dict]:
        return [o for o in self.orders if o["status"] in ("accepted", "new", "partially_filled")]

    def _listed(self, query: dict) -> list[dict]:
        status = query.get("status", ["open"])[0]
        found = self.open_orders() if status == "open" else [
            o for o in self.orders if status == "all" or o not in self.open_orders()]
        after = query.get("after", [""])[0].replace("+00:00", "Z")
        found = [o for o in found if o["submitted_at"] > after] if after else found
        return found[: int(query.get("limit", ["50"])[0])]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def _send(self, status: int, payload) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                url = urlparse(self.path)
                query = parse_qs(url.query)
                with fake.lock:
                    if url.path == "/v2/account":
                        if fake.account_faults > 0:
                            fake.account_faults -= 1
                            return self._send(503, {"code": 50300000, "message": "unavailable"})
                        equity = fake.cash + sum(q * fake.prices.get(s, fake.price) for s, q in fake.positions.items())
                        return self._send(200, {"id": "acct", "status": "ACTIVE", "cash": str(fake.cash), "equity": str(equity)})
                    if url.path == "/v2/clock":
                        return self._send(200, dict(fake.clock))
                    if url.path == "/v2/positions":
                        return self._send(200, [
                            {"symbol": s, "qty": str(abs(q)), "side": "long" if q > 0 else "short",
                             "avg_entry_price": str(fake.prices.get(s, fake.price)),
                             "current_price": str(fake.prices.get(s, fake.price)),
                             "market_value": str(q * fake.prices.get(s, fake.price)), "unrealized_pl": "0"}
                            for s, q in fake.positions.items() if q
                        ])
                    if url.path == "/v2/orders:by_client_order_id":
                        found = fake.orders_for(query["client_order_id"][0])
                        return self._send(200, found[0]) if found else self._send(404, {"code": 40410000, "message": "order not found"})
                    if url.path == "/v2/orders":
                        return self._send(200, fake._listed(query))
                    if url.path.startswith("/v2/orders/"):
                        fault = fake.poll_faults.pop(0) if fake.poll_faults else "ok"
                        if fault in ("404", "504"):
                            return self._send(int(fault), {"code": 40410000, "message": f"scripted {fault}"})
                        found = [o for o in fake.orders if o["id"] == url.path.rsplit("/", 1)[1]]
                        return self._send(200, found[0]) if found else self._send(404, {"code": 40410000, "message": "not found"})
                return self._send(404, {"code": 40400000, "message": "no route"})

            def do_DELETE(self):
                url = urlparse(self.path)
                with fake.lock:
                    fake.deletes += 1
                    if url.path == "/v2/orders":
                        cancelled = fake.open_orders()
                        for order in cancelled:
                            order["status"] = "canceled"
                        return self._send(207, [{"id": o["id"], "status": 200} for o in cancelled])
                    found = [o for o in fake.orders if o["id"] == url.path.rsplit("/", 1)[1]]
                    if not found:
                        return self._send(404, {"code": 40410000, "message": "order not found"})
                    if found[0] not in fake.open_orders():
                        return self._send(422, {"code": 42210000, "message": f"order is already {found[0]['status']}"})
                    found[0]["status"] = "canceled"
                self.send_response(204)
                self.end_headers()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake.lock:
                    fake.posts += 1
                    fault = fake.faults.pop(0) if fake.faults else "ok"
                    if fault == "429":
                        return self._send(429, {"code": 42910000, "message": "rate limit exceeded"})
                    if fake.orders_for(body["client_order_id"]):
                        return self._send(422, {"code": 40010001, "message": "client_order_id must be unique"})
                    order = fake._accept(body)
                if fault == "504":
                    return self._send(504, {"code": 50400000, "message": "gateway timeout"})
                if fault == "timeout":
                    time.sleep(fake.delay)
                return self._send(200, order)

        return Handler
