"""VWAP slicing and square-root market impact (seed 000 section 4.5.1)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import numpy as np
import polars as pl

DEFAULT_VOLUME_PROFILE = np.array(
    [0.15, 0.10, 0.08, 0.06, 0.05, 0.05, 0.05, 0.05, 0.06, 0.07, 0.08, 0.09, 0.11]
)
"""U-shaped intraday volume share of the thirteen 30-minute bins from 09:30 to 16:00 (sums to 1)."""


def largest_remainder_allocation(total: int, shares: np.ndarray) -> np.ndarray:
    """Integers n_i >= 0 summing exactly to `total` (>= 0) and closest to total * s_i (s normalised):
    floor everything, then give one more unit to the largest fractional parts (Hamilton's method;
    ties go to the earlier bin)."""
    if total < 0:
        raise ValueError(f"total must be non-negative, got {total}")
    profile = np.asarray(shares, dtype=np.float64).reshape(-1)
    ideal = total * profile / profile.sum()
    base = np.floor(ideal).astype(np.int64)
    remainder = int(total - base.sum())
    if remainder > 0:
        order = np.argsort(-(ideal - base), kind="stable")
        base[order[:remainder]] += 1
    return base


def vwap_schedule(
    total_shares: int,
    volume_profile: np.ndarray | None = None,
    start: str | time = "09:30",
    bin_minutes: int = 30,
) -> pl.DataFrame:
    """Split an order across intraday bins in proportion to expected volume.

    Inputs: `total_shares` (integer; negative for a sell, the sign is kept on every slice);
    `volume_profile` (non-negative bin weights, default `DEFAULT_VOLUME_PROFILE`); bins of
    `bin_minutes` from `start`. Output: one row per bin with `slice_start` (pl.Time), `shares`
    (Int64, summing exactly to `total_shares` by largest-remainder rounding) and `pct` (the normalised
    profile).
    """
    if int(total_shares) != total_shares:
        raise ValueError(f"total_shares must be a whole number, got {total_shares}")
    total = int(total_shares)
    profile = DEFAULT_VOLUME_PROFILE if volume_profile is None else np.asarray(volume_profile, dtype=np.float64)
    profile = profile.reshape(-1)
    if profile.size == 0 or not np.isfinite(profile).all() or (profile < 0).any() or not profile.sum() > 0:
        raise ValueError("volume_profile must be non-negative, finite and have a positive sum")
    if bin_minutes <= 0:
        raise ValueError(f"bin_minutes must be positive, got {bin_minutes}")
    start_time = datetime.strptime(start, "%H:%M").time() if isinstance(start, str) else start
    opening = datetime.combine(datetime(2000, 1, 1), start_time)
    ends_at = opening + timedelta(minutes=bin_minutes * profile.size)
    if ends_at.date() != opening.date():
        raise ValueError("the schedule runs past midnight")
    pct = profile / profile.sum()
    shares = np.sign(total) * largest_remainder_allocation(abs(total), pct)
    return pl.DataFrame(
        {
            "slice_start": [(opening + timedelta(minutes=bin_minutes * i)).time() for i in range(profile.size)],
            "shares": shares.astype(np.int64),
            "pct": pct,
        },
        schema={"slice_start": pl.Time, "shares": pl.Int64, "pct": pl.Float64},
    )


def square_root_impact_bps(
    order_shares: np.ndarray | float,
    daily_volume: np.ndarray | float,
    volatility: np.ndarray | float,
    gamma: float = 1.0,
) -> np.ndarray | float:
    """Square-root market impact (Almgren et al. 2005; Torre 1997): cost_bps = gamma sigma sqrt(|Q| / V) 1e4,
    with sigma the daily volatility, Q the order size and V the daily volume (same units)."""
    q = np.abs(np.asarray(order_shares, dtype=np.float64))
    v = np.asarray(daily_volume, dtype=np.float64)
    sigma = np.asarray(volatility, dtype=np.float64)
    if (v <= 0).any() or not np.isfinite(v).all():
        raise ValueError("daily_volume must be positive and finite")
    if (sigma < 0).any():
        raise ValueError("volatility must be non-negative")
    cost = gamma * sigma * np.sqrt(q / v) * 1e4
    return float(cost) if np.ndim(cost) == 0 else cost
