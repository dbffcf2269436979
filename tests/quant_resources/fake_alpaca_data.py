"""A fake Alpaca market-data API on 127.0.0.1: `/v2/stocks/bars` and `/v1beta3/crypto/us/bars`.

Bars come from a tape in memory (timestamp, symbol, OHLCV); the server answers only with bars that
have started by `clock.now()` (the newest one still forming, as the real API and Yahoo do), in
the request's [start, end) window, as alpaca-py expects them (`{"bars": {symbol: [...]},
"next_page_token": null}`). Scripted faults: `faults` holds HTTP statuses answered before any
bars (503: the provider down), the symbol `BAD` answers 422 like the real API's invalid symbol."""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import polars as pl


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "+").replace("Z", "+00:00"))


class FakeAlpacaData:
    def __init__(self, bars: pl.DataFrame, clock) -> None:
        self.bars, self.clock = bars, clock
        self.faults: list[int] = []
        self.requests: list[tuple[str, dict]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
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

    def answer(self, path: str, query: dict) -> tuple[int, dict]:
        self.requests.append((path, query))
        if self.faults:
            status = self.faults.pop(0)
            return status, {"message": f"fake outage ({status})"}
        symbol = query.get("symbols", "")
        if symbol == "BAD":
            return 422, {"message": "invalid symbol: BAD"}
        if path not in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
            return 404, {"message": "not found"}
        start, end = _when(query["start"]), _when(query["end"])
        end = min(end, self.clock.now())
        stamp = pl.col("timestamp")
        rows = self.bars.filter((pl.col("symbol") == symbol) & (stamp >= start) & (stamp < end)).sort("timestamp")
        bars = [{"t": r["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ"), "o": r["open"], "h": r["high"], "l": r["low"],
                 "c": r["close"], "v": r["volume"], "n": 10, "vw": r["close"]} for r in rows.iter_rows(named=True)]
        return 200, {"bars": {symbol: bars} if bars else {}, "next_page_token": None}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                status, body = fake.answer(url.path, query)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
