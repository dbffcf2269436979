"""A fake Alpaca trading API on 127.0.0.1 for tests: account, clock, positions, orders by id and by
client id, with scripted faults on order submission: "429" (refused, nothing recorded),
"504" (order recorded, then 504), "timeout" (order recorded, answer delayed past the client's
timeout), and the real API's 422 for a client_order_id it already has."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeAlpaca:
    def __init__(self, price: float = 100.0, delay: float = 1.0) -> None:
        self.price = price
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
        qty = float(body["qty"])
        order = {
            "id": str(uuid.uuid4()), "client_order_id": body["client_order_id"], "symbol": body["symbol"],
            "side": body["side"], "qty": str(qty), "filled_qty": str(qty), "filled_avg_price": str(self.price),
            "status": "filled", "type": "market",
        }
        self.orders.append(order)
        signed = qty if body["side"] == "buy" else -qty
        self.positions[body["symbol"]] = self.positions.get(body["symbol"], 0.0) + signed
        return order

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
                        return self._send(200, {"id": "acct", "status": "ACTIVE", "cash": "100000", "equity": "100000"})
                    if url.path == "/v2/clock":
                        return self._send(200, {"is_open": True, "timestamp": "2025-01-02T15:00:00Z"})
                    if url.path == "/v2/positions":
                        return self._send(200, [
                            {"symbol": s, "qty": str(abs(q)), "side": "long" if q > 0 else "short",
                             "avg_entry_price": str(fake.price), "current_price": str(fake.price),
                             "market_value": str(q * fake.price), "unrealized_pl": "0"}
                            for s, q in fake.positions.items() if q
                        ])
                    if url.path == "/v2/orders:by_client_order_id":
                        found = fake.orders_for(query["client_order_id"][0])
                        return self._send(200, found[0]) if found else self._send(404, {"code": 40410000, "message": "order not found"})
                    if url.path == "/v2/orders":
                        return self._send(200, [o for o in fake.orders if o["status"] != "filled"])
                    if url.path.startswith("/v2/orders/"):
                        found = [o for o in fake.orders if o["id"] == url.path.rsplit("/", 1)[1]]
                        return self._send(200, found[0]) if found else self._send(404, {"code": 40410000, "message": "not found"})
                return self._send(404, {"code": 40400000, "message": "no route"})

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
