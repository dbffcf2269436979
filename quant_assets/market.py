"""The `market` group: universe, prices and point-in-time fundamentals, one table each."""


from datetime import date

import polars as pl
from dagster import AssetExecutionContext, asset

from quant_assets.checks import check_specs, validated_output
from quant_assets.partitions import daily_asset, partition_dates
from quant_lib.data.calendar import shift_trading_days, trading_days
from quant_lib.data.cleaning import BadNumberPolicy, clean_ohlcv
from quant_lib.data.pit import fundamentals_snapshot
from quant_lib.data.quality import fundamentals_checks, price_checks, universe_checks
from quant_lib.data.universe import universe_membership
from quant_resources.market_data import MarketDataResource
from quant_resources.settings import get_settings

DAILY = daily_asset("market")
SPIKE_CONTEXT_DAYS = 5


@asset(
    **DAILY,
    check_specs=check_specs(
        "universe",
        [
            ("unique_members", "One row per (date, ticker).", True),
            ("benchmark_listed", "The benchmark is listed on every date with members.", True),
        ],
    ),
    description="Securities master as of each trading day: listed members with sector and asset class.",
)
def universe(context: AssetExecutionContext, market_data: MarketDataResource):
    first, last = partition_dates(context)
    provider = market_data.get_provider()
    membership = universe_membership(provider.universe(), trading_days(first, last))
    context.log.info(f"universe {first}..{last}: {membership.height} member-days from {provider.name}")
    metadata = {
        "provider": provider.name,
        "tickers": membership.get_column("ticker").n_unique(),
        "trading_days": membership.get_column("date").n_unique(),
        "unknown_sector": membership.filter(pl.col("sector") == "Unknown").get_column("ticker").n_unique(),
        **stale_ticker_metadata(context, provider, last),
    }
    without_metadata = getattr(provider, "tickers_without_metadata", None)
    if without_metadata:
        context.log.warning(f"no metadata (sector, name) for {len(without_metadata)} tickers: {without_metadata}")
    yield from validated_output(membership, universe_checks(membership), metadata)


def stale_ticker_metadata(context: AssetExecutionContext, provider, last: date) -> dict[str, int]:
    """Warn about tickers whose data ends before `last` with no delisting to explain it (or that
    have no data at all), naming each with its last date; returns the `stale_tickers` count."""
    stale = provider.stale_tickers(last)
    if stale.height:
        listing = ", ".join(f"{t} (last {d or 'no rows'})" for t, d in stale.iter_rows())
        context.log.warning(f"{stale.height} stale tickers, data ending before {last}: {listing}")
    return {"stale_tickers": stale.height}


@asset(
    **DAILY,
    deps=[universe],
    check_specs=check_specs(
        "prices",
        [
            ("schema", "Cleaned prices match PricesSchema.", True),
            ("ohlc_logic", "low <= open, close <= high; prices > 0.", True),
            ("universe_coverage", "At least 90% of active members have a price each trading day.", True),
            ("no_future_dates", "The provider sent nothing dated after the partition or today.", True),
            ("drop_rate", "Cleaning dropped at most 10% of the rows.", True),
        ],
    ),
    description="Daily OHLCV + adj_close for every ticker and the benchmark, cleaned per the data policy.",
)
def prices(context: AssetExecutionContext, market_data: MarketDataResource):
    first, last = partition_dates(context)
    provider = market_data.get_provider()
    days = trading_days(first, last)
    raw = provider.prices(shift_trading_days(first, -SPIKE_CONTEXT_DAYS), last)
    mode = "daily" if len(days) <= 1 else "backfill"
    settings = get_settings()
    policy = BadNumberPolicy(min_price=settings.price_min, max_price=settings.price_max, max_volume=settings.volume_max)
    cleaned, report = clean_ohlcv(raw, context=mode, policy=policy)
    window = cleaned.filter(pl.col("date").is_between(first, last))
    in_range = window.filter(pl.col("date").is_in(days))  # sessions only: weekend crypto rows, holiday rows
    as_of = min(last, date.today())
    context.log.info(f"prices {first}..{last} ({mode}): {report.summary()}")
    metadata = {
        "provider": provider.name,
        "tickers": in_range.get_column("ticker").n_unique(),
        "first_date": str(first),
        "last_date": str(last),
        "future_rows_dropped": raw.filter(pl.col("date") > as_of).height,
        "non_session_rows_dropped": window.height - in_range.height,
        **stale_ticker_metadata(context, provider, last),
        **report.to_metadata(),
    }
    membership = universe_membership(provider.universe(), days)
    outcomes = price_checks(in_range, membership, raw, report.drop_rate, today=as_of)
    yield from validated_output(in_range, outcomes, metadata)


@asset(
    **DAILY,
    deps=[universe],
    check_specs=check_specs(
        "fundamentals",
        [
            ("schema", "One row per (date, ticker) in the snapshot layout.", True),
            ("point_in_time", "No fact with available_at after the snapshot date.", True),
            ("drop_rate", "At most 10% of the facts were dropped (unknown metrics).", True),
            ("coverage", "Most active equities have a quarterly report (warns only).", False),
        ],
    ),
    description="Point-in-time fundamentals as of each day: the latest fact per ticker and metric with available_at <= date.",
)
def fundamentals(context: AssetExecutionContext, market_data: MarketDataResource):
    first, last = partition_dates(context)
    provider = market_data.get_provider()
    days = trading_days(first, last)
    membership = universe_membership(provider.universe(), days)
    facts = provider.fundamentals(last)
    result = fundamentals_snapshot(facts, days)
    snapshot = result.frame.join(membership.select("date", "ticker"), on=["date", "ticker"], how="semi")
    unknown_rows = result.unknown_metric_rows
    context.log.info(f"fundamentals {first}..{last}: {facts.height} facts -> {snapshot.height} snapshot rows")
    metadata = {"provider": provider.name, "facts_read": facts.height, "unknown_metric_rows_dropped": unknown_rows}
    yield from validated_output(snapshot, fundamentals_checks(snapshot, membership, unknown_rows, facts.height), metadata)
