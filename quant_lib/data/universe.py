"""Point-in-time universe membership and market-data quality measures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import polars as pl

MEMBERSHIP_COLUMNS = [
    "date", "ticker", "name", "sector", "asset_class", "is_benchmark", "listed_date", "delisted_date",
]


def universe_membership(universe: pl.DataFrame, dates: Sequence[date] | pl.Series) -> pl.DataFrame:
    """Securities master as of each date: tickers with listed_date <= date < delisted_date.

    A null `listed_date` means listed since before the data starts; a null `delisted_date`
    means still listed. Sorted by (date, ticker).
    """
    day = pl.DataFrame({"date": pl.Series("date", list(dates), dtype=pl.Date)})
    return (
        day.join(universe, how="cross")
        .filter(
            (pl.col("listed_date").is_null() | (pl.col("listed_date") <= pl.col("date")))
            & (pl.col("delisted_date").is_null() | (pl.col("delisted_date") > pl.col("date")))
        )
        .select(MEMBERSHIP_COLUMNS)
        .sort("date", "ticker")
    )


def coverage_by_date(prices: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """Per date: active members, members with a price, coverage fraction, and whether the
    whole market is absent (a market holiday: no member has a price).

    Columns: date, expected, present, coverage, market_closed.
    """
    priced = prices.select("date", "ticker").unique().with_columns(pl.lit(True).alias("has_price"))
    return (
        membership.select("date", "ticker")
        .join(priced, on=["date", "ticker"], how="left")
        .group_by("date")
        .agg(
            pl.len().alias("expected"),
            pl.col("has_price").fill_null(False).sum().alias("present"),
        )
        .with_columns(
            (pl.col("present") / pl.col("expected")).alias("coverage"),
            (pl.col("present") == 0).alias("market_closed"),
        )
        .sort("date")
    )


def missing_members(prices: pl.DataFrame, membership: pl.DataFrame, limit: int = 20) -> pl.DataFrame:
    """The first `limit` (date, ticker) pairs of active members without a price."""
    return (
        membership.select("date", "ticker")
        .join(prices.select("date", "ticker"), on=["date", "ticker"], how="anti")
        .sort("date", "ticker")
        .head(limit)
    )
