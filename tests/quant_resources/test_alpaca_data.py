"""Alpaca bars through alpaca-py's clients against a fake data server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from quant_resources.providers.alpaca_data import AlpacaBars
from quant_resources.providers.base import NoDataError, ProviderError


def bar(ts: str, price: float) -> dict:
    return {"t": ts, "o": price, "h": price + 1, "l": price - 1, "c": price + 0.5, "v": 100, "n": 5, "vw": price}


class FakeAlpaca(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        FakeAlpaca.requests.append((url.path, query, self.headers.get("APCA-API-KEY-ID")))
        symbol = query.get("symbols")
        if symbol == "BAD":
            return self._send(422, {"message": "invalid symbol: BAD"})
        if url.path == "/v2/stocks/bars" and symbol == "AAPL":
            if query.get("page_token") != "p2":  # two pages, the second out of order with a duplicate
                body = {"bars": {"AAPL": [bar("2024-07-10T13:30:00Z", 10), bar("2024-07-10T13:35:00Z", 11)]}, "next_page_token": "p2"}
            else:
                body = {"bars": {"AAPL": [bar("2024-07-10T13:45:00Z", 13), bar("2024-07-10T13:35:00Z", 11)]}, "next_page_token": None}
        elif url.path == "/v1beta3/crypto/us/bars" and symbol == "BTC/USD":
            body = {"bars": {"BTC/USD": [bar("2024-07-10T00:00:00Z", 57000)]}, "next_page_token": None}
        else:
            body = {"bars": {}, "next_page_token": None}
        self._send(200, body)

    def _send(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server_url():
    server = HTTPServer(("127.0.0.1", 0), FakeAlpaca)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_stock_bars_page_through_with_env_keys_and_are_cleaned(server_url, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "secret")
    FakeAlpaca.requests = []
    src = AlpacaBars(base_url=server_url)
    bars = src.fetch_ohlcv("AAPL", "5m", date(2024, 7, 10), date(2024, 7, 10))
    assert [str(t) for t in bars["timestamp"]] == ["2024-07-10 13:30:00+00:00", "2024-07-10 13:35:00+00:00", "2024-07-10 13:45:00+00:00"]
    assert src.last_repairs == {"out_of_order": 1, "duplicate": 1}
    path, query, key = FakeAlpaca.requests[0]
    assert path == "/v2/stocks/bars" and query["timeframe"] == "5Min" and query["feed"] == "iex" and key == "key-id"
    assert len(FakeAlpaca.requests) == 2


def test_crypto_needs_no_keys_and_errors_are_named(server_url, monkeypatch):
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    src = AlpacaBars(base_url=server_url)
    assert src.fetch_ohlcv("BTC/USD", "1h", date(2024, 7, 10), date(2024, 7, 10)).height == 1
    with pytest.raises(ProviderError, match="AAPL 5m: set APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        src.fetch_ohlcv("AAPL", "5m", date(2024, 7, 10), date(2024, 7, 10))
    monkeypatch.setenv("APCA_API_KEY_ID", "key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "secret")
    with pytest.raises(ProviderError, match="alpaca: BAD 5m: HTTP 422"):
        src.fetch_ohlcv("BAD", "5m", date(2024, 7, 10), date(2024, 7, 10))
    with pytest.raises(NoDataError, match="alpaca: ZZZZ 5m: empty answer"):
        src.fetch_ohlcv("ZZZZ", "5m", date(2024, 7, 10), date(2024, 7, 10))
