"""The market-data provider interface shared by the simulated, files and yfinance providers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import date

import polars as pl


class ProviderError(RuntimeError):
    """A provider could not deliver the data asked for (the message says which and why)."""


class NoDataError(ProviderError):
    """The source answered but had no data for the request (unknown ticker, empty range)."""


class MarketDataProvider(ABC):
    """Raw market data in the canonical layouts of `quant_lib.data.schemas`.

    - `universe()`: UNIVERSE_COLUMNS, one row per ticker, the benchmark flagged `is_benchmark`.
    - `prices(start, end, tickers)`: PRICE_COLUMNS for start <= date <= end, raw (uncleaned);
      `tickers=None` means the whole universe including the benchmark.
    - `fundamentals(end, tickers)`: FUNDAMENTAL_FACT_COLUMNS, every fact with available_at <= end.
    """

    @property
    @abstractmethod
    def name(self) -> str: ...

    @property
    @abstractmethod
    def benchmark_ticker(self) -> str: ...

    @abstractmethod
    def universe(self) -> pl.DataFrame: ...

    @abstractmethod
    def prices(self, start: date, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame: ...

    @abstractmethod
    def fundamentals(self, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame: ...

    def stale_tickers(self, as_of: date) -> pl.DataFrame:
        """Tickers the provider lists but whose data ends before `as_of` without a delisting to
        explain it (columns ticker, last_date; last_date null when there is no data at all).
        Providers that cannot tell return no rows."""
        return pl.DataFrame(schema={"ticker": pl.String, "last_date": pl.Date})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, benchmark={self.benchmark_ticker!r})"


def check_date_range(start: date, end: date) -> None:
    """ValueError when the inclusive range is reversed."""
    if start > end:
        raise ValueError(f"start {start} is after end {end}")
