"""Yahoo intraday: limits named before any request, UTC conversion, 1m chunks, FX symbols."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.yfinance_intraday import YFinanceIntraday

TODAY = date(2024, 7, 12)


class FakeTicker:
    calls: list = []

    def __init__(self, symbol: str):
        self.symbol = symbol

    def history(self, start, end, interval, **kwargs):
        FakeTicker.calls.append((self.symbol, start, end, interval))
        if self.symbol == "NOPE":
            return pd.DataFrame()
        tz = "Europe/London" if self.symbol.endswith("=X") else "America/New_York"
        index = pd.date_range(f"{start} 09:30", periods=3, freq="5min", tz=tz, name="Datetime")
        return pd.DataFrame({"Open": [1.0, 1.1, 1.2], "High": [1.2, 1.2, 1.3], "Low": [0.9, 1.0, 1.1],
                             "Close": [1.1, 1.2, 1.25], "Volume": [100, 200, 300]}, index=index)


def source() -> YFinanceIntraday:
    FakeTicker.calls = []
    return YFinanceIntraday(ticker_factory=FakeTicker, today=lambda: TODAY)


def test_bars_are_utc_float64_and_fx_works():
    bars = source().fetch_ohlcv("AAPL", "5m", date(2024, 7, 10), date(2024, 7, 10))
    assert str(bars["timestamp"].dtype) == "Datetime(time_unit='us', time_zone='UTC')"
    assert str(bars["timestamp"][0]) == "2024-07-10 13:30:00+00:00"  # 09:30 EDT
    assert all(str(bars[c].dtype) == "Float64" for c in ("open", "high", "low", "close", "volume"))
    fx = source().fetch_ohlcv("EURUSD=X", "5m", date(2024, 7, 10), date(2024, 7, 10))
    assert str(fx["timestamp"][0]) == "2024-07-10 08:30:00+00:00"


def test_limits_are_named_before_any_request():
    src = source()
    with pytest.raises(ProviderError, match=r"AAPL 1m: Yahoo serves 1m bars only for the last 30 days"):
        src.fetch_ohlcv("AAPL", "1m", date(2024, 5, 1), date(2024, 5, 2))
    with pytest.raises(ProviderError, match="AAPL 5m: Yahoo serves 5m bars only for the last 60 days"):
        src.fetch_ohlcv("AAPL", "5m", date(2024, 1, 2), date(2024, 1, 3))
    with pytest.raises(ProviderError, match="AAPL 2m: interval not served"):
        src.fetch_ohlcv("AAPL", "2m", date(2024, 7, 1), date(2024, 7, 2))
    assert FakeTicker.calls == []
    source().fetch_ohlcv("AAPL", "1h", date(2023, 1, 3), date(2023, 1, 3))  # 1h: 730 days back


def test_1m_ranges_are_fetched_in_7_day_chunks_and_empty_answers_are_named():
    src = source()
    src.fetch_ohlcv("AAPL", "1m", date(2024, 6, 20), date(2024, 7, 10))
    assert [c[1:3] for c in FakeTicker.calls] == [("2024-06-20", "2024-06-27"), ("2024-06-27", "2024-07-04"), ("2024-07-04", "2024-07-11")]
    with pytest.raises(NoDataError, match="NOPE 5m: empty answer"):
        src.fetch_ohlcv("NOPE", "5m", date(2024, 7, 10), date(2024, 7, 10))
