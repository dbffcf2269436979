"""Ensemble weights from realized out-of-sample performance (seed 004 §3.3 step 10).

Each model's daily strategy return is the mean over symbols of ``signal x realized next-bar log
return`` (signal = sign of the forecast, or the position for the momentum net). Its Sharpe
ratio over the last ``lookback`` realized days, annualized by sqrt(252), gives the weight
``w_m = max(S_m, 0) / sum_k max(S_k, 0)``. With fewer than ``min_obs`` realized days a model's
weight is 0; when no model has a positive Sharpe every weight is 0 (``status`` says why): the
ensemble then stands aside rather than follow models that lost money.
"""

from __future__ import annotations

import math

import polars as pl


def realized_strategy_returns(predictions: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """(date, model, strategy_return, n_symbols): a prediction made at the close of ``date`` earns
    the next bar's log return. ``predictions``: date, ticker, model, signal; ``prices``: date,
    ticker, close. Rows whose next bar is not known yet are left out."""
    nxt = (
        prices.sort("ticker", "date")
        .with_columns((pl.col("close").shift(-1) / pl.col("close")).log().over("ticker").alias("next_return"))
        .select("date", "ticker", "next_return")
        .drop_nulls()
    )
    joined = predictions.join(nxt, on=["date", "ticker"], how="inner")
    return (
        joined.group_by("date", "model")
        .agg((pl.col("signal") * pl.col("next_return")).mean().alias("strategy_return"), pl.len().alias("n_symbols"))
        .sort("model", "date")
    )


def ensemble_weights(returns: pl.DataFrame, models: list[str], dates: list, lookback: int = 63, min_obs: int = 20) -> pl.DataFrame:
    """For each date D and model: the Sharpe of the model's last ``lookback`` strategy returns of
    prediction dates before D (realized by D's close), n_obs, weight and status.

    ``returns``: date, model, strategy_return (``realized_strategy_returns``)."""
    stats = (
        returns.sort("model", "date")
        .with_columns(
            pl.col("strategy_return").rolling_mean(lookback, min_samples=1).over("model").alias("_mean"),
            pl.col("strategy_return").rolling_std(lookback, min_samples=2).over("model").alias("_sd"),
            pl.int_range(1, pl.len() + 1).over("model").clip(upper_bound=lookback).alias("n_obs"),
        )
        .with_columns(
            pl.when((pl.col("n_obs") >= min_obs) & (pl.col("_sd") > 0))
            .then(pl.col("_mean") / pl.col("_sd") * math.sqrt(252.0))
            .otherwise(None)
            .alias("sharpe")
        )
        .select(pl.col("date").alias("_realized"), "model", "sharpe", "n_obs")
    )
    date_dtype = returns.schema.get("date", pl.Date)
    grid = pl.DataFrame({"date": dates}, schema={"date": date_dtype}).join(pl.DataFrame({"model": models}), how="cross")
    joined = grid.sort("date").join_asof(
        stats.sort("_realized"), left_on="date", right_on="_realized", by="model", strategy="backward",
        allow_exact_matches=False, check_sortedness=False,  # both sides are sorted just above
    )
    positive = pl.col("sharpe").fill_null(0.0).clip(lower_bound=0.0)
    total = positive.sum().over("date")
    return (
        joined.with_columns(pl.col("n_obs").fill_null(0))
        .with_columns(
            pl.when(total > 0).then(positive / total).otherwise(0.0).alias("weight"),
            pl.when(total > 0).then(pl.lit("ok")).otherwise(pl.lit("no model with a positive out-of-sample Sharpe")).alias("status"),
        )
        .select("date", "model", "sharpe", "n_obs", "weight", "status")
        .sort("date", "model")
    )
