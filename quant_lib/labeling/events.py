"""Events to label: the symmetric CUSUM filter and "every ranked bet"; daily volatility targets.

References: Lopez de Prado (2018), AFML snippets 2.4 (CUSUM filter) and 3.1 (daily volatility);
seed 000 §4.3 (the ranking engine's bets are the primary signal that meta-labeling filters).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant_lib.labeling._kernels import scan_cusum
from quant_lib.labeling._panel import require_columns as _require
from quant_lib.labeling.triple_barrier import price_panel

EVENT_COLUMNS = ("date", "ticker", "side", "target")


def daily_volatility(prices: pl.DataFrame, span: int = 100, price_column: str = "close") -> pl.DataFrame:
    """``date, ticker, volatility``: EWM standard deviation of the ticker's daily simple returns
    (AFML snippet 3.1, ``span`` in bars; at least ``min(span, 20)`` returns), point in time."""
    if span < 2:
        raise ValueError(f"span must be >= 2, got {span}")
    _require(prices, ["date", "ticker", price_column], "prices")
    returns = pl.col(price_column).cast(pl.Float64).pct_change().over("ticker", order_by="date")
    return (
        prices.select("date", "ticker", returns.alias("_ret"))
        .sort("ticker", "date")
        .with_columns(
            pl.col("_ret").ewm_std(span=span, adjust=True, min_samples=min(span, 20), ignore_nulls=True).over("ticker").alias("volatility")
        )
        .select("date", "ticker", pl.col("volatility").fill_nan(None))
    )


def cusum_events(prices: pl.DataFrame, threshold: float = 2.0, span: int = 100, price_column: str = "close") -> pl.DataFrame:
    """CUSUM events ``date, ticker, side, target``: a symmetric CUSUM of log returns triggers when
    a cumulative move exceeds ``threshold`` x the day's volatility (AFML snippet 2.4 with a
    volatility-scaled threshold); ``side`` is the move's sign, ``target`` the day's volatility."""
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 (units of volatility), got {threshold}")
    panel = price_panel(prices.rename({price_column: "close"}) if price_column != "close" else prices)
    vol = daily_volatility(panel.select("date", "ticker", "close"), span=span)
    panel = panel.join(vol, on=["date", "ticker"], how="left").sort("_row")
    log_return = panel.select(pl.col("close").log().diff().over("ticker"))["close"].to_numpy()
    segment_start = _segment_starts(panel)
    trigger = np.zeros(panel.height, dtype=np.int8)
    scan_cusum(log_return, threshold * panel["volatility"].fill_null(np.nan).to_numpy(), segment_start, trigger)
    return (
        panel.with_columns(pl.Series("side", trigger))
        .filter(pl.col("side") != 0)
        .select("date", "ticker", "side", pl.col("volatility").alias("target"))
        .sort("date", "ticker")
    )


def _segment_starts(panel: pl.DataFrame) -> np.ndarray:
    ticker = panel["ticker"].to_numpy()
    starts = np.ones(panel.height, dtype=np.bool_)
    starts[1:] = ticker[1:] != ticker[:-1]
    return starts


def ranked_bet_events(
    rankings: pl.DataFrame,
    volatility: pl.DataFrame,
    top_n: int = 20,
    rebalance_every: int = 1,
) -> pl.DataFrame:
    """Every ranked bet: the top ``top_n`` of ``rankings`` on each rebalance day (every
    ``rebalance_every``-th ranking date, counted from the first), side +1, target = the day's
    volatility. Bets without a positive volatility yet (warm-up) are left out; compare heights
    with ``rankings`` to count them. Extra columns: ``rank``, ``score``."""
    _require(rankings, ["date", "ticker", "rank"], "rankings")
    if top_n < 1 or rebalance_every < 1:
        raise ValueError(f"top_n and rebalance_every must be >= 1, got {top_n}, {rebalance_every}")
    dates = rankings.select(pl.col("date").unique().sort())["date"]
    rebalance_days = dates.gather_every(rebalance_every)
    score = [pl.col("score")] if "score" in rankings.columns else []
    bets = rankings.filter(pl.col("date").is_in(rebalance_days.implode()) & (pl.col("rank") <= top_n))
    return (
        bets.select("date", "ticker", pl.col("rank").cast(pl.Int64), *score)
        .join(volatility.select("date", "ticker", pl.col("volatility").alias("target")), on=["date", "ticker"], how="left")
        .filter(pl.col("target").is_not_null() & (pl.col("target") > 0))
        .select("date", "ticker", pl.lit(1, pl.Int8).alias("side"), "target", "rank", *score)
        .sort("date", "ticker")
    )
