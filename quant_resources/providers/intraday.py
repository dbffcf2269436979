"""One interface for bars of any interval: `fetch_ohlcv(symbol, interval, start, end)`.

Every source returns `quant_lib.data.intraday.OHLCV_COLUMNS` (UTC `timestamp` of the bar start,
float64 open/high/low/close/volume) for start <= session date <= end, cleaned by
`clean_intraday` (the daily policy keyed on timestamp; its repair counts are kept in
`last_repairs`). `CachedSource` puts any source behind the Parquet cache
(`cache_dir/<interval>/<symbol>.parquet`, partial-fetch merge by day).

Sources: `SimulatedIntraday` (offline default, from the simulated daily bars),
`YFinanceIntraday`, `CcxtSource` (crypto), `AlpacaBars` (stocks and crypto), `FilesIntraday`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date, timedelta

import polars as pl

from quant_lib.data.intraday import INTERVAL_MINUTES, OHLCV_COLUMNS, clean_intraday, simulate_intraday
from quant_resources.providers.base import NoDataError, ProviderError
from quant_resources.providers.cache import ParquetBarCache

logger = logging.getLogger(__name__)

CACHED_COLUMNS = {**OHLCV_COLUMNS, "date": pl.Date}


class IntradaySource(ABC):
    """Bars of one symbol and interval; subclasses implement `_download` and name their limits."""

    name: str = "source"
    intervals: tuple[str, ...] = tuple(INTERVAL_MINUTES)
    naive_is_utc: bool = False

    def __init__(self) -> None:
        self.last_repairs: dict[str, int] = {}

    def fetch_ohlcv(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        """Cleaned OHLCV_COLUMNS bars of `symbol` whose UTC date lies in [start, end]."""
        if interval not in self.intervals:
            raise ProviderError(f"{self.name}: {symbol} {interval}: interval not served (use one of {', '.join(self.intervals)})")
        if start > end:
            raise ProviderError(f"{self.name}: {symbol} {interval}: start {start} is after end {end}")
        self.check_range(symbol, interval, start, end)
        raw = self._download(symbol, interval, start, end)
        if raw.is_empty():
            raise NoDataError(f"{self.name}: {symbol} {interval}: empty answer for {start}..{end}")
        bars, repairs = clean_intraday(raw, symbol, interval, naive_is_utc=self.naive_is_utc)
        self.last_repairs = repairs
        if repairs:
            logger.info("%s %s %s: repaired %s", self.name, symbol, interval, repairs)
        day = pl.col("timestamp").dt.date()
        return bars.filter(day.is_between(start, end))

    def fetch_many(self, symbols: Sequence[str], interval: str, start: date, end: date) -> pl.DataFrame:
        """Bars of several symbols with `ticker` and session `date` (INTRADAY_COLUMNS order)."""
        frames = [
            self.fetch_ohlcv(s, interval, start, end).with_columns(ticker=pl.lit(s), interval=pl.lit(interval))
            for s in symbols
        ]
        return _intraday_layout(pl.concat(frames) if frames else pl.DataFrame(schema={**OHLCV_COLUMNS, "ticker": pl.String, "interval": pl.String}))

    def check_range(self, symbol: str, interval: str, start: date, end: date) -> None:
        """Raise ProviderError naming the limit when [start, end] cannot be served (before any request)."""

    @abstractmethod
    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        """Raw bars with a `timestamp` column and open, high, low, close, volume."""


def _intraday_layout(frame: pl.DataFrame) -> pl.DataFrame:
    from quant_lib.data.intraday import INTRADAY_COLUMNS

    with_date = frame if "date" in frame.columns else frame.with_columns(date=pl.col("timestamp").dt.date())
    return with_date.select(list(INTRADAY_COLUMNS)).cast(INTRADAY_COLUMNS).sort("timestamp", "ticker")


class IntradayBarCache(ParquetBarCache):
    """The Parquet bar cache for timestamped bars (coverage by UTC date, bars keyed by timestamp)."""

    COLUMNS = CACHED_COLUMNS
    KEY = "timestamp"


class CachedSource(IntradaySource):
    """`source` behind the Parquet cache: only the days the cache lacks are downloaded; today's
    bars (still changing) are fetched again next time."""

    def __init__(self, source: IntradaySource, cache_dir: str):
        super().__init__()
        self.source, self.cache = source, IntradayBarCache(cache_dir)
        self.name, self.intervals = f"cached({source.name})", source.intervals

    def fetch_ohlcv(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        bars = super().fetch_ohlcv(symbol, interval, start, end)
        self.last_repairs = self.source.last_repairs
        return bars

    def check_range(self, symbol: str, interval: str, start: date, end: date) -> None:
        self.source.check_range(symbol, interval, start, end)

    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        """Cached bars, downloading (cleaned, through `source`) only the days the cache lacks."""

        def fetch(a: date, b: date) -> pl.DataFrame:
            bars = self.source.fetch_ohlcv(symbol, interval, a, b)
            return bars.with_columns(date=pl.col("timestamp").dt.date())

        rows = self.cache.get_or_fetch(
            symbol, start, end, fetch, interval=interval, complete_until=date.today() - timedelta(days=1)
        )
        return rows.select(list(OHLCV_COLUMNS))


class SimulatedIntraday(IntradaySource):
    """Intraday bars simulated from the simulated market's daily bars (exact against them)."""

    name = "simulated"

    def __init__(self, provider, seed: int = 42):
        super().__init__()
        self.provider, self.seed = provider, seed

    def _calendars(self) -> dict[str, str]:
        from quant_lib.data.calendar import calendar_for_asset_class

        universe = self.provider.universe()
        other = universe.filter(pl.col("asset_class").is_in(["crypto", "fx"]))
        return {t: calendar_for_asset_class(c) for t, c in other.select("ticker", "asset_class").iter_rows()}

    def fetch_many(self, symbols: Sequence[str], interval: str, start: date, end: date) -> pl.DataFrame:
        daily = self.provider.prices(start, end, list(symbols))
        unknown = sorted(set(symbols) - set(self.provider.universe()["ticker"]))
        if unknown:
            raise NoDataError(f"simulated: {unknown} {interval}: unknown symbols (not in the simulated universe)")
        calendar = getattr(getattr(self.provider, "config", None), "calendar", None)
        return simulate_intraday(daily, interval, self.seed, self._calendars(), calendar)

    def _download(self, symbol: str, interval: str, start: date, end: date) -> pl.DataFrame:
        return self.fetch_many([symbol], interval, start, end).select(list(OHLCV_COLUMNS))
