"""Real bar feeds for `quant live` against a fake Alpaca data server on 127.0.0.1 (alpaca-py's
StockHistoricalDataClient), a fake Yahoo ticker and a fake ccxt exchange, on a fake clock."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import ccxt
import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_lib.data.calendar import session_table
from quant_lib.data.intraday import bar_grid
from quant_lib.live.feed import FeedError, FeedUnavailable
from quant_resources.feeds import build_bar_feed, feed_calendar, is_transient
from quant_resources.providers.ccxt_provider import CcxtSource
from quant_resources.providers.yfinance_intraday import YFinanceIntraday
from tests.quant_lib.test_live_feed import FakeClock
from tests.quant_resources.fake_alpaca_data import FakeAlpacaData

UTC = timezone.utc


def xnys_tape(symbols=("AAPL",), first=date(2025, 2, 24), last=date(2025, 3, 7)) -> pl.DataFrame:
    """5m bars of the XNYS sessions in [first, last], a seeded random walk per symbol."""
    days = session_table("XNYS")[0]
    days = days[(days >= np.datetime64(first)) & (days <= np.datetime64(last))]
    stamps = bar_grid(days, "5m", "XNYS")[1]
    rng = np.random.default_rng(3)
    frames = []
    for symbol in symbols:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, len(stamps))))
        frames.append(pl.DataFrame({
            "timestamp": pl.Series(stamps).dt.replace_time_zone("UTC").dt.cast_time_unit("us"), "symbol": symbol,
            "open": close * 0.999, "high": close * 1.002, "low": close * 0.997, "close": close, "volume": 1000.0,
        }))
    return pl.concat(frames)


@pytest.fixture
def alpaca_env(monkeypatch, tmp_path):
    monkeypatch.setenv("APCA_API_KEY_ID", "key-id")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "secret")
    monkeypatch.setenv("WAREHOUSE_DIR", str(tmp_path / "wh"))
    from quant_resources.settings import get_settings

    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def _stamps(groups):
    return [max(b["timestamp"] for b in g.values()) for g in groups]


def test_alpaca_feed_warms_then_emits_each_closed_bar_and_waits_out_the_night(alpaca_env, caplog):
    clock = FakeClock(datetime(2025, 3, 4, 20, 42, tzinfo=UTC))  # XNYS closes 21:00 UTC (EST)
    with FakeAlpacaData(xnys_tape(), clock) as fake:
        alpaca_env.setenv("APCA_API_DATA_URL", fake.url)
        feed = build_bar_feed("alpaca", ["AAPL"], "5m", clock=clock, poll_delay=1.0)
        assert feed.calendar == "XNYS"
        history = feed.history(100)
        assert len(history) == 100 and _stamps(history)[-1] == datetime(2025, 3, 4, 20, 35, tzinfo=UTC)
        path, query = fake.data_requests[0]
        assert path == "/v2/stocks/bars" and query["timeframe"] == "5Min" and query["feed"] == "iex"
        live = []
        with caplog.at_level(logging.INFO):
            for group in feed:
                live.append(group)
                if len(live) == 6:
                    break
    expected = [datetime(2025, 3, 4, 20, 40, tzinfo=UTC) + k * timedelta(minutes=5) for k in range(4)]
    expected += [datetime(2025, 3, 5, 14, 30, tzinfo=UTC), datetime(2025, 3, 5, 14, 35, tzinfo=UTC)]
    assert _stamps(live) == expected
    assert caplog.text.count("market closed (XNYS)") == 1
    assert feed.stats.gaps == 0 and feed.stats.partial > 0
    assert clock.now_value == datetime(2025, 3, 5, 14, 40, 1, tzinfo=UTC)


def test_alpaca_feed_errors_unknown_symbol_invalid_symbol_and_outage(alpaca_env, caplog):
    clock = FakeClock(datetime(2025, 3, 4, 16, 2, tzinfo=UTC))
    with FakeAlpacaData(xnys_tape(), clock) as fake:
        alpaca_env.setenv("APCA_API_DATA_URL", fake.url)
        with pytest.raises(FeedError, match="alpaca: no 5m bars for ZZZZ"):
            build_bar_feed("alpaca", ["AAPL", "ZZZZ"], "5m", clock=clock).history(10)
        with pytest.raises(FeedError, match="alpaca: BAD 5m: HTTP 422") as error:
            build_bar_feed("alpaca", ["BAD"], "5m", clock=clock).history(10)
        assert not isinstance(error.value, FeedUnavailable)
        fake.data_faults = [503, 503]
        feed = build_bar_feed("alpaca", ["AAPL"], "5m", clock=clock, max_retries=3, backoff=1.0)
        assert len(feed.history(5)) == 5 and clock.sleeps == [1.0, 2.0]
        fake.data_faults = [503] * 4
        with pytest.raises(FeedUnavailable, match="alpaca: unreachable after 4 attempts: .*HTTP 503"):
            feed.poll()
    down = build_bar_feed("alpaca", ["AAPL"], "5m", clock=clock, max_retries=1, backoff=1.0)  # server gone
    with pytest.raises(FeedUnavailable, match="unreachable after 2 attempts"):
        down.history(5)


def test_yfinance_and_ccxt_feeds_drop_the_forming_bar_and_sort_errors():
    clock = FakeClock(datetime(2024, 7, 10, 13, 47, tzinfo=UTC))

    class Ticker:
        def __init__(self, symbol):
            self.symbol = symbol

        def history(self, start, end, interval, **kwargs):  # Yahoo includes the bar still forming
            index = pd.date_range("2024-07-10 09:30", periods=4, freq="5min", tz="America/New_York", name="Datetime")
            return pd.DataFrame({"Open": 1.0, "High": 1.2, "Low": 0.9, "Close": 1.1, "Volume": 100.0}, index=index)

    yahoo = YFinanceIntraday(ticker_factory=Ticker, today=lambda: date(2024, 7, 12))
    feed = build_bar_feed("yfinance", ["AAPL"], "5m", clock=clock, source=yahoo, market_calendar="24/5")
    assert _stamps(feed.history(10))[-1] == datetime(2024, 7, 10, 13, 40, tzinfo=UTC)
    assert feed.stats.partial == 1

    class Exchange:
        timeframes, rateLimit = {"5m": "5m"}, 0

        def __init__(self, error=None):
            self.error = error

        def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None):
            if self.error is not None:
                raise self.error
            if symbol != "BTC/USDT":
                raise ccxt.BadSymbol(f"binance does not have market symbol {symbol}")
            now_ms = int(clock.now().timestamp() * 1000)
            return [[t, 1.0, 1.2, 0.9, 1.1, 5.0] for t in range(since, now_ms, 300_000)][:limit]

    def ccxt_feed(symbols, error=None):
        return build_bar_feed("ccxt", symbols, "5m", clock=clock, source=CcxtSource(exchange=Exchange(error)),
                              max_retries=1, backoff=1.0)

    assert feed_calendar("ccxt", ["BTC/USDT"], "XNYS") == "24/7"
    assert len(ccxt_feed(["BTC/USDT"]).history(20)) == 20
    with pytest.raises(FeedError, match="no 5m bars for ETH/NOPE"):
        ccxt_feed(["BTC/USDT", "ETH/NOPE"]).history(20)
    with pytest.raises(FeedUnavailable, match="network error"):
        ccxt_feed(["BTC/USDT"], ccxt.NetworkError("connection reset")).history(20)
    assert is_transient(ccxt.RequestTimeout("t")) and not is_transient(ValueError("bad"))
    with pytest.raises(FeedError, match="interval '4h' is not offered"):
        build_bar_feed("ccxt", ["BTC/USDT"], "4h", clock=clock)
