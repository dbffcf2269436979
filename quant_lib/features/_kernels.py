"""Compiled window primitives for the technical features, over one ticker's rows (a segment).

Every trailing-window sum adds ``x[t] + x[t-1] + ... + x[t-n+1]`` in that order, so a row's value
depends only on its own window: bit-identical whatever precedes it (no running sums). The loops
run over the lag ``k`` outside and the row ``t`` inside, which keeps that order per row while the
inner loop vectorizes. Plain loops only (no array expressions): they compile fast. The
``*_by_group`` forms apply them to a panel sorted by (ticker, time), restarting where
``pos == 0`` (the polars reference path of ``technical.py`` uses those).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def ewm_segment(x, alpha, min_samples, out):  # pragma: no cover - compiled
    """y_t = (1 - alpha) y_t-1 + alpha x_t seeded with the first finite value; NaN inputs are
    skipped; NaN until ``min_samples`` finite values."""
    state, count = np.nan, 0
    for i in range(x.shape[0]):
        v = x[i]
        if np.isfinite(v):
            state = v if count == 0 else (1.0 - alpha) * state + alpha * v
            count += 1
        out[i] = state if count >= min_samples else np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _warm_up(out, n):  # pragma: no cover - compiled
    for t in range(min(n - 1, out.shape[0])):
        out[t] = np.nan


REDUCE_SUM, REDUCE_MAX, REDUCE_MIN = 0, 1, 2


@njit(cache=True, nogil=True, error_model="numpy")
def window_reduce(x, n, op, out):  # pragma: no cover - compiled
    """Over the trailing n rows: ``REDUCE_SUM`` x[t] + x[t-1] + ... + x[t-n+1] (in that order;
    NaN where the window holds a NaN/Inf), ``REDUCE_MAX`` / ``REDUCE_MIN`` (of finite x); NaN for
    t < n - 1."""
    m = x.shape[0]
    _warm_up(out, n)
    if m < n:
        return
    acc = out[n - 1 :]
    for t in range(acc.shape[0]):
        acc[t] = x[n - 1 + t]
    for k in range(1, n):
        lagged = x[n - 1 - k : m - k]
        if op == REDUCE_SUM:
            for t in range(acc.shape[0]):
                acc[t] += lagged[t]
        elif op == REDUCE_MAX:
            for t in range(acc.shape[0]):
                acc[t] = max(acc[t], lagged[t])
        else:
            for t in range(acc.shape[0]):
                acc[t] = min(acc[t], lagged[t])
    if op == REDUCE_SUM:
        for t in range(acc.shape[0]):
            if not np.isfinite(acc[t]):
                acc[t] = np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def window_mean(x, n, out):  # pragma: no cover - compiled
    """``window_reduce(REDUCE_SUM) / n``."""
    window_reduce(x, n, REDUCE_SUM, out)
    for t in range(out.shape[0]):
        out[t] /= n


@njit(cache=True, nogil=True, error_model="numpy")
def window_deviation(x, n, mean, power, out):  # pragma: no cover - compiled
    """out[t] = sum_k |x[t-k] - mean[t]|^power over the trailing n rows (k = 0 first), ``power``
    1 or 2; NaN where t < n - 1 or ``mean`` is NaN."""
    m = x.shape[0]
    _warm_up(out, n)
    if m < n:
        return
    acc, centre = out[n - 1 :], mean[n - 1 :]
    for t in range(acc.shape[0]):
        acc[t] = 0.0
    for k in range(n):
        lagged = x[n - 1 - k : m - k]
        if power == 2:
            for t in range(acc.shape[0]):
                d = lagged[t] - centre[t]
                acc[t] += d * d
        else:
            for t in range(acc.shape[0]):
                acc[t] += abs(lagged[t] - centre[t])


@njit(cache=True, nogil=True, error_model="numpy")
def window_std(x, n, ddof, mean, out):  # pragma: no cover - compiled
    """sqrt(sum_k (x[t-k] - mean[t])^2 / (n - ddof)); ``mean``: ``window_mean(x, n)``."""
    window_deviation(x, n, mean, 2, out)
    for t in range(out.shape[0]):
        out[t] = np.sqrt(out[t] / (n - ddof))


@njit(cache=True, nogil=True, error_model="numpy")
def window_moments(x, n, mean, m3, m4):  # pragma: no cover - compiled
    """Central moment sums m_p[t] = sum_k (x[t-k] - mean[t])^p, p = 3, 4 (k = 0 first)."""
    _warm_up(m3, n)
    _warm_up(m4, n)
    m = x.shape[0]
    if m < n:
        return
    centre, a3, a4 = mean[n - 1 :], m3[n - 1 :], m4[n - 1 :]
    for t in range(centre.shape[0]):
        a3[t] = a4[t] = 0.0
    for k in range(n):
        lagged = x[n - 1 - k : m - k]
        for t in range(centre.shape[0]):
            d = lagged[t] - centre[t]
            d2 = d * d
            a3[t] += d2 * d
            a4[t] += d2 * d2


@njit(cache=True, nogil=True, error_model="numpy")
def _segment_starts(pos):  # pragma: no cover - compiled
    starts = [0]
    for i in range(1, pos.shape[0]):
        if pos[i] == 0:
            starts.append(i)
    starts.append(pos.shape[0])
    return starts


@njit(cache=True, nogil=True, error_model="numpy")
def ewm_by_group(x, pos, alpha, min_samples):  # pragma: no cover - compiled
    """``ewm_segment`` restarted where ``pos == 0`` (a new ticker)."""
    out = np.empty(x.shape[0])
    starts = _segment_starts(pos)
    for g in range(len(starts) - 1):
        a, b = starts[g], starts[g + 1]
        ewm_segment(x[a:b], alpha, min_samples, out[a:b])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def rolling_by_group(x, pos, n, stat, ddof):  # pragma: no cover - compiled
    """Trailing-window statistic over n rows of one ticker (restarted where ``pos == 0``).
    ``stat``: 0 mean, 1 sum, 2 std (``ddof``), 3 max, 4 min (of finite x). NaN where the window
    is incomplete or (sum, mean, std) holds a NaN/Inf."""
    out = np.empty(x.shape[0])
    starts = _segment_starts(pos)
    op = REDUCE_MAX if stat == 3 else (REDUCE_MIN if stat == 4 else REDUCE_SUM)
    for g in range(len(starts) - 1):
        a, b = starts[g], starts[g + 1]
        if stat == 0 or stat == 2:
            window_mean(x[a:b], n, out[a:b])
        else:
            window_reduce(x[a:b], n, op, out[a:b])
        if stat == 2:
            window_std(x[a:b], n, ddof, out[a:b].copy(), out[a:b])
    return out


@njit(cache=True, nogil=True, error_model="numpy")
def mean_abs_deviation(x, n):  # pragma: no cover - compiled
    """mean_i |x_i - mean(x)| over each trailing window of n values (NaN before n values)."""
    mean, out = np.empty(x.shape[0]), np.empty(x.shape[0])
    window_mean(x, n, mean)
    window_deviation(x, n, mean, 1, out)
    for t in range(out.shape[0]):
        out[t] /= n
    return out
