"""The ccxt source against a fake exchange: pagination, rate limits, empty pages, duplicate candles."""

from __future__ import annotations

from datetime import date, datetime, timezone

import ccxt
import pytest

from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.ccxt_provider import CcxtSource

STEP = 5 * 60_000
DAY0 = int(datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp() * 1000)


class FakeExchange:
    """ccxt's fetch_ohlcv contract over 2 days of 5m candles; `script` injects errors per call."""

    timeframes = {"1m": "1m", "5m": "5m", "1h": "1h"}
    rateLimit = 200

    def __init__(self, script=(), overlap: int = 0, days: int = 2):
        self.candles = [[DAY0 + k * STEP, 100.0 + k, 101.0 + k, 99.0 + k, 100.5 + k, 10.0] for k in range(288 * days)]
        self.script, self.overlap, self.calls = list(script), overlap, []

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None):
        self.calls.append(since)
        if self.script:
            action = self.script.pop(0)
            if isinstance(action, Exception):
                raise action
            if action == "empty":
                return []
        if symbol != "BTC/USDT":
            raise ccxt.BadSymbol(f"binance does not have market symbol {symbol}")
        start = since - self.overlap * STEP
        page = [c for c in self.candles if c[0] >= start][:limit]
        return page


class Clock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self):
        return self.now


def source(exchange, **kw) -> tuple[CcxtSource, Clock]:
    clock = Clock()
    return CcxtSource(exchange=exchange, page_limit=100, sleep=clock.sleep, clock=clock, **kw), clock


def test_pages_over_since_and_limit_until_the_end_honouring_the_rate_limit():
    fake = FakeExchange()
    src, clock = source(fake)
    bars = src.fetch_ohlcv("BTC/USDT", "5m", date(2024, 3, 1), date(2024, 3, 2))
    assert bars.height == 576 and bars["timestamp"].is_sorted() and bars["timestamp"].n_unique() == 576
    assert str(bars["timestamp"][0]) == "2024-03-01 00:00:00+00:00"
    assert fake.calls[:2] == [DAY0, DAY0 + 100 * STEP] and len(fake.calls) == 6  # stops at the end: no extra request
    assert clock.slept and min(clock.slept) == pytest.approx(0.2)  # rateLimit 200 ms between requests
    one_day = source(FakeExchange())[0].fetch_ohlcv("BTC/USDT", "5m", date(2024, 3, 1), date(2024, 3, 1))
    assert one_day.height == 288


def test_rate_limit_errors_back_off_then_fail_naming_the_limit():
    src, clock = source(FakeExchange(script=[ccxt.RateLimitExceeded("429")]), rate_limit_backoff=1.0)
    assert src.fetch_ohlcv("BTC/USDT", "5m", date(2024, 3, 1), date(2024, 3, 1)).height == 288
    assert clock.slept.count(1.0) >= 1  # one back-off of rate_limit_backoff seconds
    always = [ccxt.RateLimitExceeded("429")] * 10
    src, _ = source(FakeExchange(script=always), max_retries=2)
    with pytest.raises(ProviderError, match=r"BTC/USDT 5m: rate limit exceeded 3 times \(rateLimit 200 ms"):
        src.fetch_ohlcv("BTC/USDT", "5m", date(2024, 3, 1), date(2024, 3, 1))


def test_empty_answer_bad_symbol_and_unserved_interval_are_named():
    src, _ = source(FakeExchange(script=["empty"]))
    with pytest.raises(NoDataError, match="BTC/USDT 5m: empty answer"):
        src.fetch_ohlcv("BTC/USDT", "5m", date(2024, 3, 1), date(2024, 3, 1))
    with pytest.raises(NoDataError, match="ETH/USDT 5m: bad symbol"):
        source(FakeExchange())[0].fetch_ohlcv("ETH/USDT", "5m", date(2024, 3, 1), date(2024, 3, 1))
    with pytest.raises(ProviderError, match="BTC/USDT 15m: interval not served by the exchange"):
        source(FakeExchange())[0].fetch_ohlcv("BTC/USDT", "15m", date(2024, 3, 1), date(2024, 3, 1))
    with pytest.raises(ProviderError, match="BTCUSDT 5m: bad symbol"):
        source(FakeExchange())[0].fetch_ohlcv("BTCUSDT", "5m", date(2024, 3, 1), date(2024, 3, 1))


def test_overlapping_pages_give_no_duplicate_candles_and_count_them():
    src, _ = source(FakeExchange(overlap=3))
    bars = src.fetch_ohlcv("BTC/USDT", "5m", date(2024, 3, 1), date(2024, 3, 2))
    assert bars.height == 576 and bars["timestamp"].n_unique() == 576
    assert src.last_repairs["duplicate"] > 0
