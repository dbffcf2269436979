"""Volatility targeting (seed 000 section 4.4.4)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from quant_lib.portfolio._validation import as_returns_matrix, as_vector


class VolTargetResult(NamedTuple):
    """weights scaled by `leverage`; `realized_vol` is the annualised portfolio volatility used."""

    weights: np.ndarray
    leverage: float
    realized_vol: float


def apply_vol_targeting(
    weights: np.ndarray,
    returns: np.ndarray,
    target_vol: float = 0.15,
    lookback: int = 60,
    min_leverage: float = 0.5,
    max_leverage: float = 2.0,
    periods_per_year: int = 252,
) -> VolTargetResult:
    """Scale weights to a target volatility: leverage = clip(target_vol / sigma_p, min, max).

    sigma_p = std(r_p, ddof=1) sqrt(periods_per_year) of the portfolio returns r_p = R w over the
    last `lookback` rows of `returns` (T x N, oldest first; fewer rows are used when T < lookback).
    A zero realised volatility gives leverage 1 before clipping, as in the seed.
    """
    matrix = as_returns_matrix(returns)
    w = as_vector(weights, matrix.shape[1], "weights")
    if not target_vol > 0:
        raise ValueError(f"target_vol must be positive, got {target_vol}")
    if lookback < 2:
        raise ValueError(f"lookback must be >= 2, got {lookback}")
    if not 0 < min_leverage <= max_leverage:
        raise ValueError(f"need 0 < min_leverage <= max_leverage, got {min_leverage}, {max_leverage}")
    portfolio_returns = matrix[-lookback:] @ w
    realized_vol = float(portfolio_returns.std(ddof=1) * np.sqrt(periods_per_year))
    leverage = target_vol / realized_vol if realized_vol > 0 else 1.0
    leverage = float(np.clip(leverage, min_leverage, max_leverage))
    return VolTargetResult(w * leverage, leverage, realized_vol)
