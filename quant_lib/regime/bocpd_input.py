"""What BOCPD watches on a return panel: standardized idiosyncratic shocks.

Raw daily returns break every assumption of the detector's model (i.i.d. Gaussian within a run):
the market and sector factors switch regimes, volatility clusters, tails are fat and earnings
days jump. Fed raw returns, BOCPD alarms at every market regime switch and every volatility
cluster. A ticker's own (idiosyncratic) volatility break shows in

    e_t = r_t - beta_t m_t,    beta_t = cov_w(r, m) / var_w(m) over the last ``beta_window`` bars,

with m_t the cross-sectional mean return of the panel at t (the market proxy; a single series is
used as is), standardized by a slow causal EWM volatility known at t - 1 and clipped:

    z_t = clip(e_t / sqrt(EWM_{t-1}(e^2)), -clip, clip)   (EWM half-life ``vol_half_life``).

The standardization removes the ticker's level and the slow drift of its volatility (so a
clustering episode slower than the half-life does not look like a break) while a jump by a
factor 2-3 shows in full for many bars; the clip keeps a single earnings gap from looking like a
new regime. Causal: z_t uses the panel's rows up to t only. Scale-free: multiplying the panel by
any c != 0 leaves z unchanged.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    frame = pl.DataFrame(values, schema=[f"c{j}" for j in range(values.shape[1])]).fill_nan(None)
    return frame.select(pl.all().rolling_mean(window, min_samples=window // 2)).to_numpy().astype(np.float64)


def idiosyncratic_shocks(
    returns: np.ndarray, beta_window: int = 60, vol_half_life: float = 126.0, clip: float = 5.0, min_periods: int = 20,
) -> np.ndarray:
    """``returns`` [T, N] (NaN where a ticker has no bar) -> z [T, N] as in the module docstring
    (NaN until ``min_periods`` residuals are known and where the return is NaN)."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be [T, N], got shape {r.shape}")
    if r.shape[1] > 1:
        finite = np.isfinite(r)
        count = finite.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            market = np.where(finite, r, 0.0).sum(axis=1, keepdims=True) / count
        m = np.where(np.isfinite(r), market, np.nan)
        cov = _rolling_mean(r * m, beta_window) - _rolling_mean(r, beta_window) * _rolling_mean(m, beta_window)
        var = _rolling_mean(m * m, beta_window) - _rolling_mean(m, beta_window) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = np.where(var > 0, cov / var, np.nan)
        residual = r - beta * m
    else:
        residual = r.copy()
    squared = pl.DataFrame(residual**2, schema=[f"c{j}" for j in range(r.shape[1])]).fill_nan(None)
    ewm = squared.select(pl.all().ewm_mean(half_life=vol_half_life, min_samples=min_periods, ignore_nulls=True))
    ewm = ewm.select(pl.all().forward_fill().shift(1)).to_numpy().astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = np.where(ewm > 0, residual / np.sqrt(ewm), np.nan)
    return np.clip(z, -clip, clip)
