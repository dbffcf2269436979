"""The offline default provider: the deterministic simulated market of `quant_lib.data.simulate`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date

import polars as pl

from quant_lib.data.schemas import FUNDAMENTAL_FACT_COLUMNS, PRICE_COLUMNS, UNIVERSE_COLUMNS
from quant_lib.data.simulate import SimulatedMarket, SimulationConfig, simulate_market
from quant_resources.providers.base import MarketDataProvider, check_date_range


class SimulatedProvider(MarketDataProvider):
    """Serves `simulate_market(SimulationConfig(...), end=today)`: nothing dated (or known) after
    `today` ever leaves it, so a run "today" sees exactly what a live feed would have shown."""

    def __init__(
        self,
        n_tickers: int = 100,
        seed: int = 42,
        benchmark_ticker: str = "SPY",
        start: date = SimulationConfig.start,
        today: date | None = None,
        config: SimulationConfig | None = None,
        n_crypto: int = 0,
        n_fx: int = 0,
        calendar: str = "XNYS",
    ):
        self.config = config or SimulationConfig(
            n_tickers=n_tickers, seed=seed, start=start, benchmark_ticker=benchmark_ticker, n_crypto=n_crypto, n_fx=n_fx,
            calendar=calendar,
        )
        self.today = today or date.today()

    @property
    def name(self) -> str:
        return f"simulated(n_tickers={self.config.n_tickers}, seed={self.config.seed}, today={self.today})"

    @property
    def benchmark_ticker(self) -> str:
        return self.config.benchmark_ticker

    @functools.cached_property
    def market(self) -> SimulatedMarket:
        """The simulated market cut at `today`."""
        return simulate_market(self.config, end=self.today)

    def universe(self) -> pl.DataFrame:
        return self.market.universe.select(list(UNIVERSE_COLUMNS))

    def prices(self, start: date, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        check_date_range(start, end)
        frame = self.market.prices.filter(pl.col("date").is_between(start, min(end, self.today)))
        if tickers is not None:
            frame = frame.filter(pl.col("ticker").is_in(list(tickers)))
        return frame.select(list(PRICE_COLUMNS))

    def fundamentals(self, end: date, tickers: Sequence[str] | None = None) -> pl.DataFrame:
        frame = self.market.fundamentals.filter(pl.col("available_at") <= min(end, self.today))
        if tickers is not None:
            frame = frame.filter(pl.col("ticker").is_in(list(tickers)))
        return frame.select(list(FUNDAMENTAL_FACT_COLUMNS))
