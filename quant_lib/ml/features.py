"""Point-in-time features of a bet at its start (seed 000 §4.3: volatility, momentum, factor
z-scores, regime, spread proxies).

Every feature of the row (date D, ticker) is built from bars dated <= D only (trailing windows
per ticker), so features for D are identical on data cut at D (tested by truncation).

Price features (``close``, ``high``, ``low``, optional ``volume``; windows in the ticker's bars):
- ``vol_20`` std of daily returns over 20 bars; ``vol_ratio`` = vol_20 / vol_60 (volatility regime);
- ``mom_21``, ``mom_63``, ``mom_126``: close / close 21, 63, 126 bars ago - 1;
- ``dist_ma50``: close / 50-bar mean close - 1; ``ret_5``: 5-bar return (short-term reversal);
- ``hl_range_20``: mean (high - low) / close over 20 bars (Parkinson-style spread/vol proxy);
- ``roll_spread_20``: Roll (1984) effective spread 2 sqrt(max(0, -cov(r_t, r_t-1))) over 20 bars;
- ``volume_z_20`` (when volume exists): (log volume - its 20-bar mean) / its 20-bar std.
When the events have a ``side``, the directional features (``DIRECTIONAL_FEATURES``) are
multiplied by it: the meta-labeler sees each move from the bet's point of view (a short bet's
falling price is favourable momentum), not the side itself.
Joined: the event's ``target`` (its volatility), ``rank`` when present, numeric columns of
``factor_scores`` (``z_<factor>``), the regime's ``p_bull``/``confidence``/``regime_code``
(Bull +1, Bear -1, else 0).
"""

from __future__ import annotations

import polars as pl

PRICE_FEATURES = ("vol_20", "vol_ratio", "mom_21", "mom_63", "mom_126", "dist_ma50", "ret_5", "hl_range_20", "roll_spread_20")
DIRECTIONAL_FEATURES = ("mom_21", "mom_63", "mom_126", "dist_ma50", "ret_5")
_REGIME_CODES = {"Bull": 1.0, "Bear": -1.0}


def price_features(prices: pl.DataFrame, price_column: str = "close") -> pl.DataFrame:
    """``date, ticker`` + the price features of the module docstring, per (date, ticker)."""
    missing = [c for c in ("date", "ticker", price_column, "high", "low") if c not in prices.columns]
    if missing:
        raise ValueError(f"prices is missing column(s) {missing}; has {prices.columns}")
    close = pl.col(price_column).cast(pl.Float64)
    ret = close.pct_change()
    frame = prices.sort("ticker", "date").with_columns(ret.over("ticker").alias("_ret"))
    r, r_lag = pl.col("_ret"), pl.col("_ret").shift(1)
    roll_cov = (r * r_lag).rolling_mean(20) - r.rolling_mean(20) * r_lag.rolling_mean(20)
    per_ticker = [
        r.rolling_std(20).alias("vol_20"),
        (r.rolling_std(20) / r.rolling_std(60)).alias("vol_ratio"),
        *[(close / close.shift(n) - 1).alias(f"mom_{n}") for n in (21, 63, 126)],
        (close / close.rolling_mean(50) - 1).alias("dist_ma50"),
        (close / close.shift(5) - 1).alias("ret_5"),
        ((pl.col("high") - pl.col("low")) / close).rolling_mean(20).alias("hl_range_20"),
        (2 * (-roll_cov).clip(lower_bound=0).sqrt()).alias("roll_spread_20"),
    ]
    if "volume" in prices.columns:
        log_volume = (pl.col("volume").cast(pl.Float64) + 1).log()
        per_ticker.append(((log_volume - log_volume.rolling_mean(20)) / log_volume.rolling_std(20)).alias("volume_z_20"))
    features = frame.select("date", "ticker", *[e.over("ticker") for e in per_ticker])
    return features.with_columns(pl.selectors.float().fill_nan(None))


def meta_features(
    events: pl.DataFrame,
    prices: pl.DataFrame,
    factor_scores: pl.DataFrame | None = None,
    regime: pl.DataFrame | None = None,
    price_column: str = "close",
) -> tuple[pl.DataFrame, list[str]]:
    """``events`` (``date, ticker, target`` [, ``rank``]) joined with their features at the bet's
    start; returns (frame, feature names). Missing values stay null (XGBoost handles them)."""
    base = [c for c in ("target", "rank") if c in events.columns]
    table = events.join(price_features(prices, price_column), on=["date", "ticker"], how="left")
    if "side" in events.columns:
        table = table.with_columns((pl.col(c) * pl.col("side")).alias(c) for c in DIRECTIONAL_FEATURES)
    names = [*base, *[c for c in table.columns if c in PRICE_FEATURES or c == "volume_z_20"]]
    if factor_scores is not None:
        z_columns = [c for c in factor_scores.columns if c.startswith("z_")]
        table = table.join(factor_scores.select("date", "ticker", *z_columns), on=["date", "ticker"], how="left")
        names += z_columns
    if regime is not None:
        regime_columns = [
            *[pl.col(c).cast(pl.Float64) for c in ("p_bull", "confidence") if c in regime.columns],
            pl.col("regime").replace_strict(_REGIME_CODES, default=0.0, return_dtype=pl.Float64).alias("regime_code"),
        ]
        regime_table = regime.select("date", *regime_columns)
        table = table.join(regime_table, on="date", how="left")
        names += [c for c in regime_table.columns if c != "date"]
    return table.with_columns(pl.col(n).cast(pl.Float64) for n in names), names
