"""Crypto bars through ccxt (seed 004's CryptoProvider): `fetch_ohlcv("BTC/USDT", "5m", start, end)`.

The exchange is `CCXT_EXCHANGE` (default binance; any ccxt exchange id with `fetchOHLCV`). Public
market data needs no keys. Pagination: `fetch_ohlcv(symbol, timeframe, since, limit)` pages of
`page_limit` candles from 00:00 UTC of `start`, `since` moving to the candle after the last one
received, until a page is empty, the day after `end` is reached or a page makes no progress.
Rate limit: requests are spaced by the exchange's `rateLimit` (milliseconds) by this class (ccxt's
own throttle is off so it is not applied twice); a `RateLimitExceeded` answer waits
`rate_limit_backoff` seconds, doubling, up to `max_retries` times, then fails naming the limit.
Duplicate candles (pages overlap on some exchanges) are dropped by `clean_intraday` and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone

import polars as pl

from quant_lib.data.intraday import INTERVAL_MINUTES
from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.intraday import IntradaySource


class CcxtSource(IntradaySource):
    """Bars of one ccxt exchange; `exchange` may be given (a configured ccxt exchange or a fake)."""

    def __init__(
        self,
        exchange_id: str = "binance",
        exchange=None,
        page_limit: int = 1000,
        max_retries: int = 4,
        rate_limit_backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.exchange_id = exchange_id
        self._exchange = exchange
        self.page_limit, self.max_retries, self.rate_limit_backoff = page_limit, max_retries, rate_limit_backoff
        self.sleep, self.clock = sleep, clock
        self._last_request: float | None = None
        self.requests = 0
        self.name = f"ccxt({exchange_id})"

    @property
    def exchange(self):
        if self._exchange is None:
            import ccxt

            if not hasattr(ccxt, self.exchange_id):
                raise ProviderError(f"ccxt: unknown exchange {self.exchange_id!r} (CCXT_EXCHANGE); e.g. binance, kraken, coinbase")
            self._exchange = getattr(ccxt, self.exchange_id)({"enableRateLimit": False})
        return self._exchange

    def check_range(self, symbol: str, interval: str, start: date, end: date) -> None:
        timeframes = getattr(self.exchange, "timeframes", None) or {}
        if timeframes and interval not in timeframes:
            raise ProviderError(f"{self.name}: {symbol} {interval}: interval not served by the exchange ({', '.join(timeframes)})")
        if "/" not in symbol:
            raise ProviderError(f"{self.name}: {symbol} {interval}: bad symbol: ccxt symbols look like BTC/USDT")

    def _throttle(self) -> None:
        spacing = float(getattr(self.exchange, "rateLimit", 0) or 0) / 1000.0
        if self._last_request is not None:
            wait = spacing - (self.clock() - self._last_request)
            if wait > 0:
                self.sleep(wait)
        self._last_request = self.clock()

    def _page(self, symbol: str, interval: str, since: int) -> list:
        import ccxt

        delay = self.rate_limit_backoff
        for attempt in range(self.max_retries + 1):
            self._throttle()
            self.requests += 1
            try:
                return self.exchange.fetch_ohlcv(symbol, interval, since=since, limit=self.page_limit)
            except ccxt.BadSymbol as error:
                raise NoDataError(f"{self.name}: {symbol} {interval}: bad symbol ({error})") from error
            except ccxt.RateLimitExceeded as error:
                if attempt == self.max_retries:
                    raise ProviderError(
                        f"{self.name}: {symbol} {interval}: rate limit exceeded {self.max_retries + 1} times "
                        f"(rateLimit {getattr(self.exchange, 'rateLimit', '?')} ms between requests): {error}"
                    ) from error
                self.sleep(delay)
                delay *= 2
            except ccxt.NetworkError as error:
                raise ProviderError(f"{self.name}: {symbol} {interval}: network error: {error}") from error
        raise AssertionError("unreachable")

    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        step = INTERVAL_MINUTES[interval] * 60_000
        since = int(datetime.combine(start, datetime.min.time(), timezone.utc).timestamp() * 1000)
        until = int(datetime.combine(end + timedelta(days=1), datetime.min.time(), timezone.utc).timestamp() * 1000)
        rows: list = []
        while since < until:
            page = self._page(symbol, interval, since)
            if not page:
                break
            rows.extend(page)
            last = max(candle[0] for candle in page)
            if last + step <= since:
                break
            since = last + step
        frame = pl.DataFrame(
            rows, schema={"ms": pl.Int64, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64,
                          "close": pl.Float64, "volume": pl.Float64}, orient="row",
        )
        return frame.filter(pl.col("ms") < until).select(
            pl.from_epoch("ms", time_unit="ms").dt.replace_time_zone("UTC").alias("timestamp"), pl.exclude("ms")
        )
