"""Intraday bars from Yahoo Finance (stocks, ETFs, `BTC-USD` crypto, `EURUSD=X` FX).

Yahoo's real limits on intraday history, checked before any request is sent (the error names
the limit): 1m bars only within the last 30 days and at most 7 days per request (longer ranges
are fetched in 7-day chunks); 5m and 15m within the last 60 days; 1h within the last 730 days.
Bars come stamped in the exchange's time zone and are converted to UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import polars as pl

from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.intraday import IntradaySource

YAHOO_LOOKBACK_DAYS = {"1m": 30, "5m": 60, "15m": 60, "1h": 730}
YAHOO_MAX_SPAN_DAYS = {"1m": 7}


class YFinanceIntraday(IntradaySource):
    """`yf.Ticker(symbol).history(start, end, interval)`; `ticker_factory` replaces yf.Ticker in tests."""

    name = "yfinance"

    def __init__(self, ticker_factory: Callable[[str], Any] | None = None, today: Callable[[], date] = date.today):
        super().__init__()
        self._factory, self.today = ticker_factory, today

    def check_range(self, symbol: str, interval: str, start: date, end: date) -> None:
        oldest = self.today() - timedelta(days=YAHOO_LOOKBACK_DAYS[interval])
        if start < oldest:
            raise ProviderError(
                f"yfinance: {symbol} {interval}: Yahoo serves {interval} bars only for the last "
                f"{YAHOO_LOOKBACK_DAYS[interval]} days (from {oldest}); asked from {start}"
            )

    def _ticker(self, symbol: str) -> Any:
        if self._factory is None:
            from quant_resources.providers.yfinance_provider import _default_ticker_factory

            self._factory = _default_ticker_factory()
        return self._factory(symbol)

    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        span = YAHOO_MAX_SPAN_DAYS.get(interval, 10_000)
        chunks, first = [], start
        while first <= end:
            last = min(end, first + timedelta(days=span - 1))
            try:
                history = self._ticker(symbol).history(
                    start=first.isoformat(), end=(last + timedelta(days=1)).isoformat(), interval=interval,
                    auto_adjust=False, actions=False, prepost=False,
                )
            except Exception as error:  # noqa: BLE001 - yfinance raises many types; name them all
                raise ProviderError(f"yfinance: {symbol} {interval}: {type(error).__name__}: {error}") from error
            if history is not None and len(history):
                chunks.append(history_to_bars(history))
            first = last + timedelta(days=1)
        if not chunks:
            raise NoDataError(f"yfinance: {symbol} {interval}: empty answer for {start}..{end} (bad symbol or no trading)")
        return pl.concat(chunks)


def history_to_bars(history) -> pl.DataFrame:
    """Yahoo's history frame (DatetimeIndex, Open/High/Low/Close/Volume) -> timestamp + OHLCV."""
    frame = pl.from_pandas(history.reset_index())
    rename = {frame.columns[0]: "timestamp", **{c: c.lower() for c in frame.columns[1:]}}
    return frame.rename(rename).select("timestamp", "open", "high", "low", "close", "volume")
