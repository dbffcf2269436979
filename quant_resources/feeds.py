"""Real bar feeds for `quant live`: issue 9's intraday sources polled for closed bars.

``IntradayBarSource`` adapts an ``IntradaySource`` (``AlpacaBars``: alpaca-py's
StockHistoricalDataClient / CryptoHistoricalDataClient; ``YFinanceIntraday``; ``CcxtSource``) to
``quant_lib.live.feed.BarSource``; ``build_bar_feed`` wraps it in a ``PollingBarFeed`` on the
system clock. No Parquet cache here: the live loop wants the newest bars every poll.

Errors are sorted for the feed's retry policy: the provider unreachable (connection refused or
reset, timeouts, HTTP 429/5xx, ccxt network errors) is ``FeedUnavailable`` (retried with
backoff); anything else (HTTP 4xx such as an invalid symbol or bad keys, an interval the provider
does not offer, a history limit) is ``FeedError`` and stops the loop with the provider's message.
A symbol the provider has no bars for is simply absent from a poll; ``PollingBarFeed.history``
turns "no bars at all in the last sessions" into an error naming it.

Alpaca market data is read from ``APCA_API_DATA_URL`` when set (default: Alpaca's data API;
tests point it at a fake server on 127.0.0.1), stock bars need ``APCA_API_KEY_ID`` /
``APCA_API_SECRET_KEY``, crypto (``BTC/USD``) needs none.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import polars as pl

from quant_lib.data.calendar import ALWAYS_OPEN
from quant_lib.live.feed import FEED_COLUMNS, FeedError, FeedUnavailable, PollingBarFeed
from quant_resources.providers.base import NoDataError, ProviderError

FEEDS = ("simulated", "alpaca", "yfinance", "ccxt")
DATA_URL_ENV = "APCA_API_DATA_URL"
_TRANSIENT_NAMES = ("Connection", "Timeout", "Timed", "RateLimit", "Network", "Temporar", "Unavailable")


class SystemClock:
    """The wall clock (UTC) and ``time.sleep``."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or what caused it) means the provider is unreachable for now."""
    seen: BaseException | None = error
    while seen is not None:
        status = getattr(seen, "status_code", None)
        if isinstance(status, int) and (status == 429 or status >= 500):
            return True
        if isinstance(seen, (ConnectionError, TimeoutError)) or any(n in type(seen).__name__ for n in _TRANSIENT_NAMES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class IntradayBarSource:
    """``BarSource`` over an ``IntradaySource``: per symbol ``fetch_ohlcv`` by UTC date, cut to [start, end)."""

    def __init__(self, source) -> None:
        self.source = source
        self.name = source.name

    def fetch_bars(self, symbols: Sequence[str], interval: str, start: datetime, end: datetime) -> pl.DataFrame:
        frames = [self._one(symbol, interval, start, end) for symbol in symbols]
        frames = [f for f in frames if f is not None]
        if not frames:
            return pl.DataFrame(schema=FEED_COLUMNS)
        stamp = pl.col("timestamp")
        return pl.concat(frames).filter((stamp >= start) & (stamp < end))

    def _one(self, symbol: str, interval: str, start: datetime, end: datetime) -> pl.DataFrame | None:
        last = (end - timedelta(microseconds=1)).date()
        try:
            bars = self.source.fetch_ohlcv(symbol, interval, start.date(), last)
        except NoDataError:
            return None
        except ProviderError as error:
            raise (FeedUnavailable if is_transient(error) else FeedError)(str(error)) from error
        except Exception as error:  # noqa: BLE001 - cleaning or parsing failures: name the source
            if is_transient(error):
                raise FeedUnavailable(f"{self.name}: {symbol} {interval}: {type(error).__name__}: {error}") from error
            raise FeedError(f"{self.name}: {symbol} {interval}: {type(error).__name__}: {error}") from error
        return bars.with_columns(symbol=pl.lit(symbol)).select(list(FEED_COLUMNS)).cast(FEED_COLUMNS)


def intraday_source(kind: str, ccxt_exchange: str = "binance"):
    """The uncached intraday source behind feed ``kind`` (alpaca | yfinance | ccxt)."""
    if kind == "alpaca":
        from quant_resources.providers.alpaca_data import AlpacaBars

        return AlpacaBars(base_url=os.environ.get(DATA_URL_ENV) or None)
    if kind == "yfinance":
        from quant_resources.providers.yfinance_intraday import YFinanceIntraday

        return YFinanceIntraday()
    if kind == "ccxt":
        from quant_resources.providers.ccxt_provider import CcxtSource

        return CcxtSource(exchange_id=ccxt_exchange)
    raise ValueError(f"unknown feed {kind!r}: use one of {', '.join(FEEDS)}")


def feed_calendar(kind: str, symbols: Sequence[str], market_calendar: str) -> str:
    """24/7 for ccxt and for crypto-only symbol lists (BTC/USD, BTC-USD); else the market calendar."""
    crypto = all("/" in s or s.upper().endswith(("-USD", "-USDT", "-EUR")) for s in symbols)
    return ALWAYS_OPEN if kind == "ccxt" or crypto else market_calendar


def build_bar_feed(kind: str, symbols: Sequence[str], interval: str, *, clock=None, source=None,
                   market_calendar: str = "XNYS", ccxt_exchange: str = "binance", poll_delay: float = 2.0,
                   max_retries: int = 5, backoff: float = 2.0, max_catchup_days: float | None = 5.0) -> PollingBarFeed:
    """A ``PollingBarFeed`` over provider ``kind`` (``source``: an IntradaySource to use instead)."""
    from quant_lib.data.intraday import INTERVAL_MINUTES

    if interval not in INTERVAL_MINUTES:
        raise FeedError(f"{kind}: interval {interval!r} is not offered by the live feeds (use {', '.join(INTERVAL_MINUTES)})")
    calendar = feed_calendar(kind, symbols, market_calendar)
    if calendar != ALWAYS_OPEN:
        from quant_resources.calendar_cache import load_session_table
        from quant_resources.settings import get_settings

        load_session_table(calendar, get_settings().cache_dir)
    return PollingBarFeed(
        IntradayBarSource(source if source is not None else intraday_source(kind, ccxt_exchange)), symbols, interval,
        clock or SystemClock(), calendar=calendar, poll_delay=poll_delay, max_retries=max_retries, backoff=backoff,
        max_catchup=timedelta(days=max_catchup_days) if max_catchup_days else None,
    )
