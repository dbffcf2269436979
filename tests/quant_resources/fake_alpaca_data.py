"""The fake Alpaca on 127.0.0.1 (`fake_alpaca.FakeAlpaca`: trading) plus the market-data endpoints
`/v2/stocks/bars` and `/v1beta3/crypto/us/bars`, so one server plays the broker and its bars.

Bars come from a tape in memory (timestamp, symbol, OHLCV); the server answers only with bars that
have started by `clock.now()` (kept as `bar_clock`; attributes of this class are prefixed or
named apart from the trading fake's: `tape`, `bar_clock`, `data_faults`, `data_requests`) (the newest one still forming, as the real API and Yahoo do), in
the request's [start, end) window, as alpaca-py expects them (`{"bars": {symbol: [...]},
"next_page_token": null}`). Scripted faults: `data_faults` holds HTTP statuses answered before
any bars (503: the provider down); the symbol `BAD` answers 422 like the real API's invalid symbol."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import parse_qs, urlparse

import polars as pl

from tests.quant_resources.fake_alpaca import FakeAlpaca

DATA_PATHS = ("/v2/stocks/bars", "/v1beta3/crypto/us/bars")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace(" ", "+").replace("Z", "+00:00"))


class FakeAlpacaData(FakeAlpaca):
    def __init__(self, bars: pl.DataFrame, clock, **kwargs) -> None:
        self.tape, self.bar_clock = bars, clock
        self.data_faults: list[int] = []
        self.data_requests: list[tuple[str, dict]] = []
        super().__init__(**kwargs)

    def answer(self, path: str, query: dict) -> tuple[int, dict]:
        self.data_requests.append((path, query))
        if self.data_faults:
            status = self.data_faults.pop(0)
            return status, {"message": f"fake outage ({status})"}
        symbol = query.get("symbols", "")
        if symbol == "BAD":
            return 422, {"message": "invalid symbol: BAD"}
        start, end = _when(query["start"]), min(_when(query["end"]), self.bar_clock.now())
        stamp = pl.col("timestamp")
        rows = self.tape.filter((pl.col("symbol") == symbol) & (stamp >= start) & (stamp < end)).sort("timestamp")
        bars = [{"t": r["timestamp"].strftime("%Y-%m-%dT%H:%M:%SZ"), "o": r["open"], "h": r["high"], "l": r["low"],
                 "c": r["close"], "v": r["volume"], "n": 10, "vw": r["close"]} for r in rows.iter_rows(named=True)]
        return 200, {"bars": {symbol: bars} if bars else {}, "next_page_token": None}

    def _handler(self):
        trading, fake = super()._handler(), self

        class Handler(trading):
            def do_GET(self):
                url = urlparse(self.path)
                if url.path not in DATA_PATHS:
                    return super().do_GET()
                return self._send(*fake.answer(url.path, {k: v[0] for k, v in parse_qs(url.query).items()}))

        return Handler
