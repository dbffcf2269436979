"""Alpaca market data (alpaca-py historical clients) for stocks and crypto: the bars the broker sees.

Keys only from the environment: `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY` (never logged).
Stocks (`AAPL`) go through `StockHistoricalDataClient` (feed `iex` by default: the free plan;
`sip` with a subscription), crypto (`BTC/USD`) through `CryptoHistoricalDataClient` (no keys
needed). The clients page through `next_page_token` themselves and retry HTTP 429 (rate limit).
`base_url` points both clients elsewhere (a local fake server in the tests).
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta, timezone

import polars as pl

from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.intraday import IntradaySource

KEY_ENV, SECRET_ENV = "APCA_API_KEY_ID", "APCA_API_SECRET_KEY"


class AlpacaBars(IntradaySource):
    name = "alpaca"

    def __init__(self, base_url: str | None = None, feed: str = "iex"):
        super().__init__()
        self.base_url, self.feed = base_url, feed

    @staticmethod
    def _keys(symbol: str, interval: str) -> tuple[str, str]:
        key, secret = os.environ.get(KEY_ENV), os.environ.get(SECRET_ENV)
        if not key or not secret:
            raise ProviderError(f"alpaca: {symbol} {interval}: set {KEY_ENV} and {SECRET_ENV} in the environment for stock bars")
        return key, secret

    @staticmethod
    def _timeframe(interval: str):
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        amount, unit = (1, TimeFrameUnit.Hour) if interval == "1h" else (int(interval[:-1]), TimeFrameUnit.Minute)
        return TimeFrame(amount, unit)

    def _request(self, symbol: str, interval: str, start: date, end: date) -> dict:
        from alpaca.data.enums import DataFeed
        from alpaca.data.historical import CryptoHistoricalDataClient, StockHistoricalDataClient
        from alpaca.data.requests import CryptoBarsRequest, StockBarsRequest

        window = dict(
            symbol_or_symbols=symbol, timeframe=self._timeframe(interval),
            start=datetime.combine(start, time(), timezone.utc), end=datetime.combine(end + timedelta(days=1), time(), timezone.utc),
        )
        if "/" in symbol:
            client = CryptoHistoricalDataClient(raw_data=True, url_override=self.base_url)
            return client.get_crypto_bars(CryptoBarsRequest(**window))
        key, secret = self._keys(symbol, interval)
        client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=self.base_url)
        return client.get_stock_bars(StockBarsRequest(**window, feed=DataFeed(self.feed)))

    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        from alpaca.common.exceptions import APIError

        try:
            raw = self._request(symbol, interval, start, end)
        except APIError as error:
            raise ProviderError(f"alpaca: {symbol} {interval}: HTTP {error.status_code}: {error.message}") from error
        except Exception as error:  # noqa: BLE001 - connection errors and the like: name them
            raise ProviderError(f"alpaca: {symbol} {interval}: {type(error).__name__}: {error}") from error
        rows = raw.get(symbol) or []
        if not rows:
            raise NoDataError(f"alpaca: {symbol} {interval}: empty answer for {start}..{end} (unknown symbol or no trading)")
        frame = pl.DataFrame(
            {"timestamp": [r["t"] for r in rows], "open": [r["o"] for r in rows], "high": [r["h"] for r in rows],
             "low": [r["l"] for r in rows], "close": [r["c"] for r in rows], "volume": [r["v"] for r in rows]}
        )
        return frame.with_columns(pl.col("timestamp").str.to_datetime(time_zone="UTC", time_unit="us"))
