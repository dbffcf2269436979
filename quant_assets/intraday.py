"""`intraday_bars` (group `market`): bars of INTRADAY_SYMBOLS at INTRADAY_INTERVALS per trading day."""

import polars as pl
from dagster import AssetExecutionContext, AssetIn, Output, asset

from quant_assets.checks import check_specs, to_check_results
from quant_assets.partitions import daily_asset, partition_dates
from quant_lib.data.intraday import DAILY_PRICE_RTOL, DAILY_VOLUME_TOL, intraday_checks
from quant_resources.market_data import MarketDataResource

REAL_PRICE_RTOL, REAL_VOLUME_RTOL = 0.02, 0.25
"""Tolerance of the intraday-vs-daily check for real providers: a consolidated daily bar
includes the auction prints and late trades that intraday bars of one venue or feed may miss."""


@asset(
    **daily_asset("market"),
    ins={"prices": AssetIn("prices")},
    check_specs=check_specs(
        "intraday_bars",
        [
            ("schema", "Bars match INTRADAY_COLUMNS (UTC timestamp, float64 OHLCV).", True),
            ("ohlc_logic", "low <= open, close <= high; prices > 0; one row per (timestamp, ticker, interval).", True),
            ("matches_daily", "Each day's bars aggregate to that day's prices row (first open, max high, "
                              "min low, last close, summed volume) within the documented tolerance.", True),
        ],
    ),
    description="Intraday OHLCV bars (1m/5m/15m/1h) of INTRADAY_SYMBOLS, one row per (timestamp, ticker, interval).",
)
def intraday_bars(context: AssetExecutionContext, market_data: MarketDataResource, prices: pl.DataFrame):
    first, last = partition_dates(context)
    source = market_data.get_intraday_source()
    symbols = market_data.resolve_intraday_symbols()
    bars = pl.concat([source.fetch_many(symbols, interval, first, last) for interval in market_data.intraday_intervals])
    bars = bars.filter(pl.col("date").is_between(first, last))
    simulated = source.name == "simulated"
    daily = prices.filter(pl.col("ticker").is_in(symbols))
    tolerances = (DAILY_PRICE_RTOL, DAILY_VOLUME_TOL, 0.0) if simulated else (REAL_PRICE_RTOL, DAILY_VOLUME_TOL, REAL_VOLUME_RTOL)
    context.log.info(f"intraday_bars {first}..{last}: {bars.height} bars of {symbols} from {source.name}")
    yield Output(
        bars,
        metadata={"source": source.name, "symbols": ", ".join(symbols), "intervals": ", ".join(market_data.intraday_intervals),
                  "dagster/row_count": bars.height, "repairs": str(source.last_repairs)},
    )
    yield from to_check_results(intraday_checks(bars, daily, *tolerances))
