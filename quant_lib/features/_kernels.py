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


@njit(cache=True, nogil=True)
def rolling_by_group(x, pos, n, stat, ddof):  # pragma: no cover - compiled
    """Trailing-window statistic over n rows of one ticker (``pos`` >= n - 1), summed directly
    (no running sum, so a row's value depends only on its own window: bit-identical whatever
    precedes it). ``stat``: 0 mean, 1 sum, 2 std (``ddof``), 3 max, 4 min. NaN where the window
    is incomplete or holds a NaN."""
    out = np.full(x.shape[0], np.nan)
    for t in range(x.shape[0]):
        if pos[t] < n - 1:
            continue
        total, best, ok = 0.0, x[t], True
        for k in range(n):
            value = x[t - k]
            if not np.isfinite(value):
                ok = False
                break
            total += value
            if stat == 3:
                best = max(best, value)
            elif stat == 4:
                best = min(best, value)
        if not ok:
            continue
        if stat == 0:
            out[t] = total / n
        elif stat == 1:
            out[t] = total
        elif stat == 2:
            mean, squares = total / n, 0.0
            for k in range(n):
                squares += (x[t - k] - mean) ** 2
            out[t] = np.sqrt(squares / (n - ddof))
        else:
            out[t] = best
    return out
