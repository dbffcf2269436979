"""The intraday source interface: Parquet cache with partial-fetch merge, simulated source errors."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest

from quant_resources.providers.base import NoDataError
from quant_resources.providers.intraday import CachedSource, IntradaySource, SimulatedIntraday
from quant_resources.providers.simulated import SimulatedProvider


class CountingSource(IntradaySource):
    name = "counting"

    def __init__(self):
        super().__init__()
        self.downloads = []

    def _download(self, symbol, interval, start, end):
        self.downloads.append((start, end))
        days = [start + timedelta(days=k) for k in range((end - start).days + 1)]
        stamps = [datetime(d.year, d.month, d.day, 14, 30, tzinfo=timezone.utc) for d in days]
        return pl.DataFrame({"timestamp": stamps, "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0})


def test_cache_fetches_only_the_missing_days_and_merges(tmp_path):
    inner = CountingSource()
    cached = CachedSource(inner, str(tmp_path))
    assert cached.fetch_ohlcv("BTC/USDT", "5m", date(2024, 7, 1), date(2024, 7, 3)).height == 3
    both = cached.fetch_ohlcv("BTC/USDT", "5m", date(2024, 7, 1), date(2024, 7, 5))
    assert both.height == 5 and both["timestamp"].is_sorted()
    assert inner.downloads == [(date(2024, 7, 1), date(2024, 7, 3)), (date(2024, 7, 4), date(2024, 7, 5))]
    assert (tmp_path / "5m" / "BTC_USDT.parquet").exists() or any(tmp_path.glob("5m/*.parquet"))


def test_simulated_source_names_unknown_symbols():
    source = SimulatedIntraday(SimulatedProvider(n_tickers=10, seed=3, today=date(2024, 7, 12)))
    bars = source.fetch_ohlcv("SPY", "15m", date(2024, 7, 10), date(2024, 7, 11))
    assert bars.height == 52
    with pytest.raises(NoDataError, match=r"\['ZZZ'\] 5m: unknown symbols"):
        source.fetch_many(["SPY", "ZZZ"], "5m", date(2024, 7, 10), date(2024, 7, 11))


def test_intraday_settings_parse_and_reject_unknown_intervals(monkeypatch) -> None:
    from pydantic import ValidationError

    from quant_resources.settings import PlatformSettings

    monkeypatch.setenv("INTRADAY_SYMBOLS", "SPY, AAPL")
    monkeypatch.setenv("INTRADAY_INTERVALS", "1m,1h")
    settings = PlatformSettings()
    assert settings.intraday_symbols == ["SPY", "AAPL"] and settings.intraday_intervals == ["1m", "1h"]
    assert settings.market_calendar == "XNYS" and settings.intraday_history_days == 60
    monkeypatch.setenv("INTRADAY_INTERVALS", "2m")
    with pytest.raises(ValidationError, match="unsupported"):
        PlatformSettings()
