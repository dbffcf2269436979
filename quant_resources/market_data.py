"""The market-data resource: picks the provider named by `MARKET_DATA_PROVIDER`."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

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
) -> MarketDataProvider:
    if kind == "simulated":
        from quant_resources.providers.simulated import SimulatedProvider

        return SimulatedProvider(
            n_tickers=sim_n_tickers, seed=sim_seed, benchmark_ticker=benchmark_ticker, today=today,
            n_crypto=sim_crypto, n_fx=sim_fx,
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
        )
