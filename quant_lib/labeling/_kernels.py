"""Compiled per-path scans of the labeling module (numba).

A barrier touch or a CUSUM trigger depends on the path walked so far, so each event's scan is
sequential; the scans of different events are independent and run in parallel (``prange``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

BARRIER_NONE = 0
BARRIER_PT = 1
BARRIER_SL = 2
BARRIER_VERTICAL = 3


@njit(cache=True, parallel=True, nogil=True)
def scan_barriers(
    close: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    use_high_low: bool,
    entry: np.ndarray,
    path_end: np.ndarray,
    resolved_at_end: np.ndarray,
    side: np.ndarray,
    upper: np.ndarray,
    lower: np.ndarray,
    touch: np.ndarray,
    barrier: np.ndarray,
    ret: np.ndarray,
) -> None:
    """First touch of each event's barriers on rows ``entry+1 .. path_end`` of the flat panel.

    ``r_k = side * (close_k / close_entry - 1)``; upper touched when ``r_k > upper`` (``upper``
    = ``pt * target``, ``inf`` when disabled), lower when ``r_k < lower`` (``-sl * target``,
    ``-inf`` when disabled). With ``use_high_low`` the bar's favourable extreme (high for a long,
    low for a short) and adverse extreme are checked too; both in one bar -> the stop wins, and
    ``ret`` is the barrier level unless the close itself crossed it. NaN bars touch nothing.
    Untouched paths end vertical at ``path_end`` when ``resolved_at_end`` (``ret`` at the last
    finite close), else unresolved (``touch = -1``, ``ret = NaN``).
    """
    for i in prange(entry.shape[0]):
        e = entry[i]
        c0 = close[e]
        s = side[i]
        up = upper[i]
        lo = lower[i]
        touch[i] = -1
        barrier[i] = BARRIER_NONE
        ret[i] = np.nan
        last_ret = 0.0
        for k in range(e + 1, path_end[i] + 1):
            r_close = s * (close[k] / c0 - 1.0)
            if r_close == r_close:
                last_ret = r_close
            hit_up = r_close > up
            hit_lo = r_close < lo
            if use_high_low:
                fav = high[k] if s > 0 else low[k]
                adv = low[k] if s > 0 else high[k]
                hit_up = hit_up or s * (fav / c0 - 1.0) > up
                hit_lo = hit_lo or s * (adv / c0 - 1.0) < lo
            if hit_lo:
                touch[i] = k
                barrier[i] = BARRIER_SL
                ret[i] = r_close if r_close < lo else lo
                break
            if hit_up:
                touch[i] = k
                barrier[i] = BARRIER_PT
                ret[i] = r_close if r_close > up else up
                break
        if barrier[i] == BARRIER_NONE and resolved_at_end[i]:
            touch[i] = path_end[i]
            barrier[i] = BARRIER_VERTICAL
            ret[i] = last_ret


@njit(cache=True, nogil=True)
def scan_cusum(
    log_return: np.ndarray, threshold: np.ndarray, segment_start: np.ndarray, trigger: np.ndarray
) -> None:
    """Symmetric CUSUM filter (AFML snippet 2.4) over a ticker-contiguous flat panel.

    ``S+ = max(0, S+ + r)``, ``S- = min(0, S- + r)``; when ``S+ > h`` (``trigger = +1``) or
    ``S- < -h`` (``trigger = -1``) that sum resets. Rows with NaN return or threshold are skipped;
    both sums reset where ``segment_start`` (a new ticker).
    """
    s_pos = 0.0
    s_neg = 0.0
    for k in range(log_return.shape[0]):
        if segment_start[k]:
            s_pos = 0.0
            s_neg = 0.0
        trigger[k] = 0
        r = log_return[k]
        h = threshold[k]
        if not (r == r and h == h):
            continue
        s_pos = max(0.0, s_pos + r)
        s_neg = min(0.0, s_neg + r)
        if s_neg < -h:
            s_neg = 0.0
            trigger[k] = -1
        elif s_pos > h:
            s_pos = 0.0
            trigger[k] = 1
