"""Equity curves of several strategies in one long frame (what the dashboard plots)."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl


def strategy_equity_curves(daily_by_strategy: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Long frame (strategy, date, equity, drawdown) from each strategy's daily backtest frame
    (`date`, `equity`); drawdown_t = E_t / max_{s<=t} E_s - 1 per strategy (<= 0)."""
    schema = {"strategy": pl.String, "date": pl.Date, "equity": pl.Float64, "drawdown": pl.Float64}
    frames = [
        daily.select(pl.lit(name).alias("strategy"), pl.col("date").cast(pl.Date), pl.col("equity").cast(pl.Float64))
        for name, daily in daily_by_strategy.items()
        if daily.height
    ]
    if not frames:
        return pl.DataFrame(schema=schema)
    return (
        pl.concat(frames)
        .sort("strategy", "date")
        .with_columns((pl.col("equity") / pl.col("equity").cum_max().over("strategy") - 1.0).alias("drawdown"))
        .select(list(schema))
    )
