"""Compiled helpers for the technical features (group-aware recursions over a sorted panel)."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def ewm_by_group(x, pos, alpha, min_samples):  # pragma: no cover - compiled
    """y_t = (1 - alpha) y_t-1 + alpha x_t, restarted where ``pos == 0`` (a new ticker), seeded
    with the first finite value; NaN inputs are skipped; NaN until ``min_samples`` finite values."""
    out = np.empty(x.shape[0])
    state, count = np.nan, 0
    for i in range(x.shape[0]):
        if pos[i] == 0:
            state, count = np.nan, 0
        v = x[i]
        if np.isfinite(v):
            state = v if count == 0 else (1.0 - alpha) * state + alpha * v
            count += 1
        out[i] = state if count >= min_samples else np.nan
    return out


@njit(cache=True, nogil=True)
def mean_abs_deviation(x, n):  # pragma: no cover - compiled
    """mean_i |x_i - mean(x)| over each trailing window of n values (NaN before n values)."""
    out = np.full(x.shape[0], np.nan)
    for t in range(n - 1, x.shape[0]):
        m = 0.0
        for k in range(n):
            m += x[t - k]
        m /= n
        d = 0.0
        for k in range(n):
            d += abs(x[t - k] - m)
        out[t] = d / n
    return out
