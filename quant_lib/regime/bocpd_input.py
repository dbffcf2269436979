"""What BOCPD watches on a return panel: standardized idiosyncratic shocks.

Raw daily returns break every assumption of the detector's model (i.i.d. Gaussian within a run):
the market and sector factors switch regimes, volatility clusters, tails are fat and earnings
days jump. Fed raw returns, BOCPD alarms at every market regime switch and every volatility
cluster. A ticker's own (idiosyncratic) volatility break shows in the residual of a rolling
two-factor regression (``factor_shocks``):

    e_t = r_t - b_m,t m_t - b_s,t s_t,

m_t the leave-one-out cross-sectional mean return of the panel at t (the market proxy, without
the ticker itself, so its own break does not leak into the factor), s_t the leave-one-out mean of
the ticker's sector minus m_t (``sectors`` given and at least one other member has a bar at t;
otherwise the market alone), and (b_m, b_s) OLS slopes over the ``beta_window`` bars *before* t
(so a shock at t does not bend its own beta). Then

    z_t = e_t / sqrt(EWM_{t-1}(e^2))                     (own slow vol, half-life ``vol_half_life``)
    z_t <- z_t / sqrt(C_{t-1}),  C = EWM_fast(c) / EWM_slow(c),  c_t = median_i min(z_i,t^2, 25)

(the common volatility of the panel relative to its slow level: a market-wide regime switch that
lifts every name's idiosyncratic vol together is divided out; a single name's break is not; only
with >= ``min_cross_section`` names at t), and finally clipped at +/- ``clip`` (an earnings gap is
one bar, not a regime). A single series is used as is (no factor, no common vol).

Causal: z_t uses rows up to t only (value at t identical when computed on ``returns[: t + 1]``).
Scale-free: multiplying the panel by any c != 0 leaves z unchanged. ``idiosyncratic_shocks`` is
the earlier, market-only form (in-window beta, no common-vol step), kept as the benchmark's baseline.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

_COMMON_CAP = 25.0


def _frame(values: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(values, schema=[f"c{j}" for j in range(values.shape[1])]).fill_nan(None)


def _rolling_mean(values: np.ndarray, window: int, shift: int = 0) -> np.ndarray:
    rolled = pl.all().rolling_mean(window, min_samples=window // 2)
    return _frame(values).select(rolled.shift(shift) if shift else rolled).to_numpy().astype(np.float64)


def _ewm_before(values: np.ndarray, half_life: float, min_periods: int) -> np.ndarray:
    """EWM mean of each column known at t - 1 (NaN skipped; carried forward over missing bars)."""
    ewm = pl.all().ewm_mean(half_life=half_life, min_samples=min_periods, ignore_nulls=True)
    return _frame(values).select(ewm.forward_fill().shift(1)).to_numpy().astype(np.float64)


def _standardize(residual: np.ndarray, vol_half_life: float, min_periods: int) -> np.ndarray:
    ewm = _ewm_before(residual**2, vol_half_life, min_periods)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ewm > 0, residual / np.sqrt(ewm), np.nan)


def _as_panel(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be [T, N], got shape {r.shape}")
    return r


def idiosyncratic_shocks(
    returns: np.ndarray, beta_window: int = 60, vol_half_life: float = 126.0, clip: float = 5.0, min_periods: int = 20,
) -> np.ndarray:
    """Baseline (market only): e = r - beta m with m the panel mean at t (the ticker included) and
    beta over the window ending at t; z = clip(e / sqrt(EWM_{t-1}(e^2))). ``returns`` [T, N] -> z [T, N]."""
    r = _as_panel(returns)
    if r.shape[1] > 1:
        finite = np.isfinite(r)
        with np.errstate(invalid="ignore", divide="ignore"):
            market = np.where(finite, r, 0.0).sum(axis=1, keepdims=True) / finite.sum(axis=1, keepdims=True)
        m = np.where(finite, market, np.nan)
        cov = _rolling_mean(r * m, beta_window) - _rolling_mean(r, beta_window) * _rolling_mean(m, beta_window)
        var = _rolling_mean(m * m, beta_window) - _rolling_mean(m, beta_window) ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            beta = np.where(var > 0, cov / var, np.nan)
        r = r - beta * m
    return np.clip(_standardize(r, vol_half_life, min_periods), -clip, clip)


def _leave_one_out_means(r: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """mean over j != i with group(j) = group(i) of r_tj, for each (t, i) (NaN where no other member has a bar)."""
    finite = np.isfinite(r)
    values = np.where(finite, r, 0.0)
    sums, counts = np.empty_like(values), np.empty_like(values)
    for group in np.unique(groups):  # row sums per group, not BLAS: bit-identical for any T
        members = groups == group
        sums[:, members] = values[:, members].sum(axis=1, keepdims=True)
        counts[:, members] = finite[:, members].sum(axis=1, keepdims=True)
    sums -= values
    counts -= finite
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / counts, np.nan)


def _rolling_slopes(r: np.ndarray, factors: list[np.ndarray], window: int) -> list[np.ndarray]:
    """OLS slopes (with intercept) of r on one or two factors over the ``window`` bars before t."""
    mask = np.isfinite(r) & np.all([np.isfinite(f) for f in factors], axis=0)
    series = [np.where(mask, x, np.nan) for x in (r, *factors)]
    mean = [_rolling_mean(x, window, shift=1) for x in series]
    k = len(factors)
    cov = {(a, b): _rolling_mean(series[a] * series[b], window, shift=1) - mean[a] * mean[b]
           for a in range(k + 1) for b in range(a, k + 1)}
    with np.errstate(invalid="ignore", divide="ignore"):
        if k == 1:
            return [np.where(cov[1, 1] > 0, cov[0, 1] / cov[1, 1], np.nan)]
        det = cov[1, 1] * cov[2, 2] - cov[1, 2] ** 2
        ok = det > 1e-9 * cov[1, 1] * cov[2, 2]
        return [np.where(ok, (cov[2, 2] * cov[0, 1] - cov[1, 2] * cov[0, 2]) / det, np.nan),
                np.where(ok, (cov[1, 1] * cov[0, 2] - cov[1, 2] * cov[0, 1]) / det, np.nan)]


def factor_residuals(r: np.ndarray, sectors: Sequence[str] | None, beta_window: int) -> np.ndarray:
    """e = r - b_m m - b_s s (module docstring); the market-only residual where the sector term is undefined."""
    market = _leave_one_out_means(r, np.zeros(r.shape[1], dtype=np.int64))
    residual = r - _rolling_slopes(r, [market], beta_window)[0] * market
    if sectors is None:
        return residual
    codes = np.unique(np.asarray([str(s) for s in sectors]), return_inverse=True)[1]
    sector = _leave_one_out_means(r, codes) - market
    b_m, b_s = _rolling_slopes(r, [market, sector], beta_window)
    both = r - b_m * market - b_s * sector
    return np.where(np.isfinite(both), both, residual)


def _common_vol(z: np.ndarray, fast: float, slow: float, min_names: int) -> np.ndarray:
    """C_{t-1} = EWM_fast / EWM_slow of c_t = median_i min(z_i,t^2, 25), known at t - 1 (1 where unknown)."""
    squared = np.minimum(z * z, _COMMON_CAP)
    enough = np.isfinite(squared).sum(axis=1) >= min_names
    c = np.full((z.shape[0], 1), np.nan)
    if enough.any():
        c[enough, 0] = np.nanmedian(squared[enough], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = _ewm_before(c, fast, 5) / _ewm_before(c, slow, 5)
    return np.where(np.isfinite(ratio) & (ratio > 0), ratio, 1.0)


def factor_shocks(
    returns: np.ndarray,
    sectors: Sequence[str] | None = None,
    beta_window: int = 60,
    vol_half_life: float = 126.0,
    common_half_life: float | None = 20.0,
    clip: float = 5.0,
    min_periods: int = 20,
    min_cross_section: int = 5,
) -> np.ndarray:
    """``returns`` [T, N] (NaN where a ticker has no bar), ``sectors`` one label per column (or
    None) -> z [T, N] as in the module docstring (``common_half_life=None``: no common-vol step) (NaN until ``min_periods`` residuals are known and
    where the return is NaN)."""
    r = _as_panel(returns)
    if sectors is not None and len(sectors) != r.shape[1]:
        raise ValueError(f"sectors has {len(sectors)} labels for {r.shape[1]} return columns")
    if r.shape[1] == 1:
        return np.clip(_standardize(r, vol_half_life, min_periods), -clip, clip)
    z = _standardize(factor_residuals(r, sectors, beta_window), vol_half_life, min_periods)
    if common_half_life is not None:
        z = z / np.sqrt(_common_vol(z, common_half_life, vol_half_life, min_cross_section))
    return np.clip(z, -clip, clip)
