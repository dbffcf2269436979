"""The market-data resource: picks the provider named by `MARKET_DATA_PROVIDER`."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from quant_resources.providers.base import MarketDataProvider
from quant_resources.settings import PlatformSettings


@lru_cache(maxsize=8)
def _build_provider(
    kind: str,
    benchmark_ticker: str,
    data_dir: str | None,
    sim_seed: int,
    sim_n_tickers: int,
    yfinance_tickers: tuple[str, ...],
    cache_dir: str,
    failure_threshold: int,
    recovery_timeout: float,
    max_retries: int,
    base_delay: float,
    today: date | None,
    sim_crypto: int = 0,
    sim_fx: int = 0,
    market_calendar: str = "XNYS",
) -> MarketDataProvider:
    if kind == "simulated":
        from quant_resources.providers.simulated import SimulatedProvider

        return SimulatedProvider(
            n_tickers=sim_n_tickers, seed=sim_seed, benchmark_ticker=benchmark_ticker, today=today,
            n_crypto=sim_crypto, n_fx=sim_fx, calendar=market_calendar,
        )
    if kind == "files":
        from quant_resources.providers.files import FilesProvider

        if not data_dir:
            raise ValueError("MARKET_DATA_PROVIDER=files needs MARKET_DATA_DIR (a folder of <TICKER>.csv/.parquet files)")
        return FilesProvider(data_dir=data_dir, benchmark_ticker=benchmark_ticker)
    if kind == "yfinance":
        from quant_resources.providers.yfinance_provider import YFinanceProvider

        return YFinanceProvider(
            tickers=list(yfinance_tickers),
            benchmark_ticker=benchmark_ticker,
            cache_dir=cache_dir,
            max_retries=max_retries,
            base_delay=base_delay,
            failure_threshold=failure_threshold,
            recovery_timeout=recovery_timeout,
        )
    raise ValueError(f"unknown MARKET_DATA_PROVIDER {kind!r}: use simulated, yfinance or files")


class MarketDataResource(ConfigurableResource):
    """Market data for the `market` assets: `simulated` (default, offline), `yfinance` or `files`."""

    provider: str = Field("simulated", description="simulated | yfinance | files")
    benchmark_ticker: str = "SPY"
    data_dir: str | None = None
    sim_seed: int = 42
    sim_n_tickers: int = 100
    sim_crypto: int = 0
    sim_fx: int = 0
    market_calendar: str = "XNYS"
    intraday_provider: str = Field("auto", description="auto (= provider) | simulated | yfinance | files | ccxt | alpaca")
    intraday_symbols: list[str] = Field(default_factory=list, description="empty: benchmark + 4 most liquid")
    intraday_intervals: list[str] = Field(default_factory=lambda: ["5m"])
    ccxt_exchange: str = "binance"
    yfinance_tickers: list[str] = Field(default_factory=list)
    cache_dir: str = "warehouse/cache"
    circuit_breaker_failure_threshold: int = 5
    circuit_breaker_recovery_timeout: float = 60.0
    max_retries: int = 4
    retry_base_delay: float = 1.0
    simulated_today: str | None = Field(
        None, description="ISO date: the simulated market's 'today' (default: the real today)."
    )

    @classmethod
    def from_settings(cls, settings: PlatformSettings) -> "MarketDataResource":
        return cls(
            provider=settings.market_data_provider,
            benchmark_ticker=settings.benchmark_ticker,
            data_dir=str(settings.market_data_dir) if settings.market_data_dir else None,
            sim_seed=settings.sim_seed,
            sim_n_tickers=settings.sim_n_tickers,
            sim_crypto=settings.sim_crypto,
            sim_fx=settings.sim_fx,
            market_calendar=settings.market_calendar,
            intraday_provider=settings.intraday_provider,
            intraday_symbols=list(settings.intraday_symbols),
            intraday_intervals=list(settings.intraday_intervals),
            ccxt_exchange=settings.ccxt_exchange,
            yfinance_tickers=list(settings.yfinance_tickers),
            cache_dir=str(settings.cache_dir),
            circuit_breaker_failure_threshold=settings.circuit_breaker_failure_threshold,
            circuit_breaker_recovery_timeout=settings.circuit_breaker_recovery_timeout,
            max_retries=settings.provider_max_retries,
            retry_base_delay=settings.provider_retry_base_delay,
        )

    def get_provider(self) -> MarketDataProvider:
        return _build_provider(
            self.provider,
            self.benchmark_ticker,
            self.data_dir,
            self.sim_seed,
            self.sim_n_tickers,
            tuple(self.yfinance_tickers),
            self.cache_dir,
            self.circuit_breaker_failure_threshold,
            self.circuit_breaker_recovery_timeout,
            self.max_retries,
            self.retry_base_delay,
            date.fromisoformat(self.simulated_today) if self.simulated_today else None,
            self.sim_crypto,
            self.sim_fx,
            self.market_calendar,
        )

    def get_intraday_source(self):
        """The intraday source (`quant_resources.providers.intraday`), cached through Parquet for
        the network ones."""
        return _build_intraday_source(
            self.intraday_provider if self.intraday_provider != "auto" else self.provider,
            self.data_dir, self.cache_dir, self.ccxt_exchange, self.sim_seed, self.get_provider(),
        )

    def resolve_intraday_symbols(self) -> list[str]:
        """INTRADAY_SYMBOLS, or the benchmark plus the 4 most liquid tickers of the last ~60 days."""
        if self.intraday_symbols:
            return list(self.intraday_symbols)
        return _default_intraday_symbols(self.get_provider())


@lru_cache(maxsize=4)
def _default_intraday_symbols(provider: MarketDataProvider) -> list[str]:
    from datetime import timedelta

    from quant_lib.data.intraday import most_liquid

    today = getattr(provider, "today", None) or date.today()
    equities = provider.universe().filter(pl.col("asset_class") == "equity")["ticker"].to_list()
    recent = provider.prices(today - timedelta(days=90), today, equities)
    return [provider.benchmark_ticker, *most_liquid(recent, 4, exclude=[provider.benchmark_ticker])]


@lru_cache(maxsize=8)
def _build_intraday_source(kind: str, data_dir: str | None, cache_dir: str, ccxt_exchange: str, seed: int,
                           provider: MarketDataProvider):
    from quant_resources.providers import intraday

    if kind == "simulated":
        return intraday.SimulatedIntraday(provider, seed=seed)
    if kind == "files":
        from quant_resources.providers.files_intraday import FilesIntraday

        if not data_dir:
            raise ValueError("intraday files need MARKET_DATA_DIR (a folder of <TICKER>_<interval>.csv/.parquet files)")
        return FilesIntraday(data_dir)
    if kind == "yfinance":
        from quant_resources.providers.yfinance_intraday import YFinanceIntraday

        return intraday.CachedSource(YFinanceIntraday(), cache_dir)
    if kind == "ccxt":
        from quant_resources.providers.ccxt_provider import CcxtSource

        return intraday.CachedSource(CcxtSource(exchange_id=ccxt_exchange), cache_dir)
    if kind == "alpaca":
        from quant_resources.providers.alpaca_data import AlpacaBars

        return intraday.CachedSource(AlpacaBars(), cache_dir)
    raise ValueError(f"unknown INTRADAY_PROVIDER {kind!r}: use auto, simulated, yfinance, files, ccxt or alpaca")
