"""10 calendar encodings: sin/cos of minute of day, hour, day of week, day of month and month.

Each cyclic quantity q with period P becomes (sin(2 pi q / P), cos(2 pi q / P)), in [-1, 1],
never NaN: minute of day (P = 1440), hour (24), ISO weekday - 1 (7), day of month - 1 (31),
month - 1 (12). A ``date`` column counts as midnight.
"""

from __future__ import annotations

import math

import polars as pl

from quant_lib.features._frame import time_column



def _cycles(time: str) -> dict[str, tuple[pl.Expr, float]]:
    t = pl.col(time)
    return {
        "minute_of_day": (t.dt.hour().cast(pl.Float64) * 60 + t.dt.minute(), 1440.0),
        "hour": (t.dt.hour().cast(pl.Float64), 24.0),
        "day_of_week": (t.dt.weekday().cast(pl.Float64) - 1, 7.0),
        "day_of_month": (t.dt.day().cast(pl.Float64) - 1, 31.0),
        "month": (t.dt.month().cast(pl.Float64) - 1, 12.0),
    }


TIME_FEATURE_NAMES: tuple[str, ...] = tuple(
    f"{name}_{fn}" for name in ("minute_of_day", "hour", "day_of_week", "day_of_month", "month") for fn in ("sin", "cos")
)


def time_feature_exprs(time: str) -> list[pl.Expr]:
    exprs = []
    for name, (value, period) in _cycles(time).items():
        angle = value * (2.0 * math.pi / period)
        exprs += [angle.sin().alias(f"{name}_sin"), angle.cos().alias(f"{name}_cos")]
    return exprs


def compute_time_features(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with the 10 ``TIME_FEATURE_NAMES`` columns added (a ``date`` is cast to midnight);
    computed once per distinct time and joined back (a panel repeats each time per ticker)."""
    time = time_column(df)
    source = pl.col(time).cast(pl.Datetime) if df.schema[time] == pl.Date else pl.col(time)
    tmp = "__calendar_time"
    times = df.select(pl.col(time).unique()).with_columns(source.alias(tmp)).with_columns(time_feature_exprs(tmp)).drop(tmp)
    return df.join(times, on=time, how="left", maintain_order="left", nulls_equal=True)
