"""Pandera models of the canonical layouts in `quant_lib.data.schemas` (imported on first use:
pandera pulls in pandas)."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl


class PricesSchema(pa.DataFrameModel):
    """Validated daily OHLCV: positive prices, low <= open, close <= high, volume >= 0."""

    date: pl.Date = pa.Field(nullable=False)
    ticker: str = pa.Field(nullable=False, str_length={"min_value": 1})
    open: float = pa.Field(gt=0, nullable=False)
    high: float = pa.Field(gt=0, nullable=False)
    low: float = pa.Field(gt=0, nullable=False)
    close: float = pa.Field(gt=0, nullable=False)
    adj_close: float = pa.Field(gt=0, nullable=False)
    volume: float = pa.Field(ge=0, nullable=False)

    @pa.dataframe_check
    def ohlc_logic(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("low") <= pl.min_horizontal("open", "close"))
            & (pl.col("high") >= pl.max_horizontal("open", "close"))
        )

    @pa.dataframe_check
    def unique_date_ticker(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(~pl.struct("date", "ticker").is_duplicated())

    class Config:
        strict = True
        coerce = False


class UniverseSchema(pa.DataFrameModel):
    """Securities master: one row per ticker."""

    ticker: str = pa.Field(nullable=False, unique=True)
    name: str = pa.Field(nullable=True)
    sector: str = pa.Field(nullable=False)
    asset_class: str = pa.Field(nullable=False)
    listed_date: pl.Date = pa.Field(nullable=True)
    delisted_date: pl.Date = pa.Field(nullable=True)
    is_benchmark: bool = pa.Field(nullable=False)


class FundamentalFactsSchema(pa.DataFrameModel):
    """Raw facts: every fact becomes known no earlier than its period ends."""

    ticker: str = pa.Field(nullable=False)
    period_end: pl.Date = pa.Field(nullable=False)
    available_at: pl.Date = pa.Field(nullable=False)
    metric: str = pa.Field(nullable=False)
    value: float = pa.Field(nullable=True)

    @pa.dataframe_check
    def known_after_period_end(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(pl.col("available_at") >= pl.col("period_end"))
