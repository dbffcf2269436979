"""Simulated provider: canonical layouts, inclusive ranges, and nothing after `today`."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from quant_lib.data.cleaning import clean_ohlcv
from quant_lib.data.schemas import (
    FUNDAMENTAL_FACT_COLUMNS,
    PRICE_COLUMNS,
    UNIVERSE_COLUMNS,
    FundamentalFactsSchema,
    UniverseSchema,
)
from quant_resources.providers import MarketDataProvider
from quant_resources.providers.simulated import SimulatedProvider

TODAY = date(2024, 6, 28)


@pytest.fixture(scope="module")
def provider() -> SimulatedProvider:
    return SimulatedProvider(n_tickers=12, seed=7, benchmark_ticker="SPY", today=TODAY)


def test_layouts_and_benchmark(provider):
    assert isinstance(provider, MarketDataProvider)
    assert provider.benchmark_ticker == "SPY" and "simulated" in provider.name
    universe = provider.universe()
    UniverseSchema.validate(universe)
    assert universe.schema == pl.Schema(UNIVERSE_COLUMNS)
    assert universe.filter(pl.col("is_benchmark"))["ticker"].to_list() == ["SPY"]
    prices = provider.prices(date(2024, 6, 3), date(2024, 6, 7))
    assert prices.schema == pl.Schema(PRICE_COLUMNS)
    assert "SPY" in set(prices["ticker"])
    assert prices["date"].min() == date(2024, 6, 3) and prices["date"].max() == date(2024, 6, 7)  # inclusive
    assert clean_ohlcv(prices)[1].rows_out == prices.height


def test_never_returns_data_after_today(provider):
    prices = provider.prices(date(2024, 6, 1), date(2025, 12, 31))
    assert prices["date"].max() == TODAY
    facts = provider.fundamentals(date(2030, 1, 1))
    FundamentalFactsSchema.validate(facts)
    assert facts.schema == pl.Schema(FUNDAMENTAL_FACT_COLUMNS)
    assert facts["available_at"].max() <= TODAY
    universe = provider.universe()
    assert universe["listed_date"].max() <= TODAY
    assert universe["delisted_date"].drop_nulls().max() is None or universe["delisted_date"].drop_nulls().max() <= TODAY
    assert provider.prices(date(2024, 7, 1), date(2024, 7, 31)).is_empty()


def test_ticker_filter_and_fundamentals_cutoff(provider):
    some = provider.universe().filter(~pl.col("is_benchmark"))["ticker"].head(2).to_list()
    prices = provider.prices(date(2024, 1, 1), date(2024, 1, 31), tickers=some)
    assert set(prices["ticker"]) == set(some)
    facts = provider.fundamentals(date(2023, 12, 31), tickers=some)
    assert set(facts["ticker"]) <= set(some) and facts["available_at"].max() <= date(2023, 12, 31)
    with pytest.raises(ValueError, match="after end"):
        provider.prices(date(2024, 2, 1), date(2024, 1, 1))


def test_same_market_for_a_later_today_extends_history_without_changing_it(provider):
    later = SimulatedProvider(n_tickers=12, seed=7, today=date(2024, 12, 31))
    before = provider.prices(date(2024, 1, 1), TODAY)
    assert later.prices(date(2024, 1, 1), TODAY).equals(before)
    assert later.prices(date(2024, 1, 1), date(2024, 12, 31))["date"].max() > TODAY
