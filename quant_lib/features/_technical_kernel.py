"""One compiled pass per ticker over all 43 technical features (the fast form of ``technical.py``).

Inputs are contiguous float64 OHLCV columns of a panel sorted by (ticker, time) and the ticker
start offsets; ``out`` is a preallocated (43, rows) array, one row per feature in
``FEATURE_ORDER``. Per ticker: the per-bar terms (one loop), then every window and recursion of
``PLAN`` on rows of one scratch block (reused across tickers), then every feature formula in one
loop that writes ``out`` (Inf, from a zero range, becomes NaN). Each formula repeats the polars
reference expression of ``technical.py`` operation for operation (same windows, same summation
order, same warm-up NaN), so both forms agree to rounding. The plan is a table so each window
primitive has one call site (LLVM inlines every call site: compile time grows with them), and
plain loops only (array expressions compile slowly). The kernel releases the GIL, so callers
may run ticker ranges on several threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from quant_lib.features._kernels import (
    REDUCE_MAX,
    REDUCE_MIN,
    REDUCE_SUM,
    ewm_segment,
    window_deviation,
    window_mean,
    window_moments,
    window_reduce,
)

FEATURE_ORDER = (
    "log_return_1", "log_return_5", "log_return_10", "log_return_20", "roc_10",
    "sma_10_dist", "sma_20_dist", "sma_50_dist", "ema_12_dist", "ema_26_dist",
    "macd", "macd_signal", "macd_hist", "rsi_14", "rsi_7",
    "stoch_k_14", "stoch_d_3", "williams_r_14", "cci_20", "plus_di_14",
    "minus_di_14", "adx_14", "atr_14", "natr_14", "bb_position_20",
    "bb_width_20", "keltner_position_20", "realized_vol_5", "realized_vol_20", "vol_ratio_5_20",
    "parkinson_vol_20", "garman_klass_vol_20", "volume_zscore_20", "obv_slope_10", "mfi_14",
    "vwap_dist_20", "skew_20", "kurt_20", "high_low_range", "close_location",
    "gap", "dist_high_20", "dist_low_20",
)
(
    LOG_RETURN_1, LOG_RETURN_5, LOG_RETURN_10, LOG_RETURN_20, ROC_10,
    SMA_10_DIST, SMA_20_DIST, SMA_50_DIST, EMA_12_DIST, EMA_26_DIST,
    MACD, MACD_SIGNAL, MACD_HIST, RSI_14, RSI_7,
    STOCH_K_14, STOCH_D_3, WILLIAMS_R_14, CCI_20, PLUS_DI_14,
    MINUS_DI_14, ADX_14, ATR_14, NATR_14, BB_POSITION_20,
    BB_WIDTH_20, KELTNER_POSITION_20, REALIZED_VOL_5, REALIZED_VOL_20, VOL_RATIO_5_20,
    PARKINSON_VOL_20, GARMAN_KLASS_VOL_20, VOLUME_ZSCORE_20, OBV_SLOPE_10, MFI_14,
    VWAP_DIST_20, SKEW_20, KURT_20, HIGH_LOW_RANGE, CLOSE_LOCATION,
    GAP, DIST_HIGH_20, DIST_LOW_20,
) = range(len(FEATURE_ORDER))
N_FEATURES = len(FEATURE_ORDER)
PARKINSON_SCALE = 4.0 * math.log(2.0)
GARMAN_KLASS_CO = 2.0 * math.log(2.0) - 1.0
ONE_THIRD = 1.0 / 3.0  # polars divides by a literal as a product with its reciprocal


SCRATCH_ROWS = (
    "o", "h", "l", "c", "v", "r", "tp", "tr", "pdm", "mdm", "gain", "loss", "signed", "flow_up", "flow_down", "tpv",
    "hl2", "gk", "sma10", "sma20", "sma50", "hh14", "ll14", "hh20", "ll20", "tp_mean20", "tp_absdev20", "c_sqdev20",
    "r_mean5", "r_sqdev5", "r_mean20", "r_sqdev20", "hl2_mean20", "gk_mean20", "v_mean20", "v_sqdev20", "v_sum20",
    "tpv_sum20", "signed_sum10", "v_sum10", "up_sum14", "down_sum14", "r_m3", "r_m4", "ema12", "ema26",
    "ema20", "atr14", "atr10", "pdm14", "mdm14", "gain14", "loss14", "gain7", "loss7", "macd", "plus_di", "minus_di",
    "dx", "stoch_k", "signal", "adx", "stoch_d", "hl", "rv5", "rv20",
)
(
    S_O, S_H, S_L, S_C, S_V, S_R, S_TP, S_TR, S_PDM, S_MDM, S_GAIN, S_LOSS, S_SIGNED, S_FLOW_UP, S_FLOW_DOWN, S_TPV,
    S_HL2, S_GK, S_SMA10, S_SMA20, S_SMA50, S_HH14, S_LL14, S_HH20, S_LL20, S_TP_MEAN20, S_TP_ABSDEV20, S_C_SQDEV20,
    S_R_MEAN5, S_R_SQDEV5, S_R_MEAN20, S_R_SQDEV20, S_HL2_MEAN20, S_GK_MEAN20, S_V_MEAN20, S_V_SQDEV20, S_V_SUM20,
    S_TPV_SUM20, S_SIGNED_SUM10, S_V_SUM10, S_UP_SUM14, S_DOWN_SUM14, S_R_M3, S_R_M4, S_EMA12, S_EMA26,
    S_EMA20, S_ATR14, S_ATR10, S_PDM14, S_MDM14, S_GAIN14, S_LOSS14, S_GAIN7, S_LOSS7, S_MACD, S_PLUS_DI, S_MINUS_DI,
    S_DX, S_STOCH_K, S_SIGNAL, S_ADX, S_STOCH_D, S_HL, S_RV5, S_RV20,
) = range(len(SCRATCH_ROWS))
N_SCRATCH = len(SCRATCH_ROWS)

# PLAN operations: (op, source row, window n, auxiliary row (the mean), destination row)
SUM, MAX, MIN = REDUCE_SUM, REDUCE_MAX, REDUCE_MIN
MEAN, SQDEV, ABSDEV, EMA, WILDER, MOMENTS, DERIVED = range(3, 10)
PLAN = np.array([
    (MEAN, S_C, 10, 0, S_SMA10), (MEAN, S_C, 20, 0, S_SMA20), (MEAN, S_C, 50, 0, S_SMA50),
    (MAX, S_H, 14, 0, S_HH14), (MIN, S_L, 14, 0, S_LL14), (MAX, S_H, 20, 0, S_HH20), (MIN, S_L, 20, 0, S_LL20),
    (MEAN, S_TP, 20, 0, S_TP_MEAN20), (ABSDEV, S_TP, 20, S_TP_MEAN20, S_TP_ABSDEV20), (SQDEV, S_C, 20, S_SMA20, S_C_SQDEV20),
    (MEAN, S_R, 5, 0, S_R_MEAN5), (SQDEV, S_R, 5, S_R_MEAN5, S_R_SQDEV5),
    (MEAN, S_R, 20, 0, S_R_MEAN20), (SQDEV, S_R, 20, S_R_MEAN20, S_R_SQDEV20), (MOMENTS, S_R, 20, S_R_MEAN20, S_R_M3),
    (MEAN, S_HL2, 20, 0, S_HL2_MEAN20), (MEAN, S_GK, 20, 0, S_GK_MEAN20),
    (MEAN, S_V, 20, 0, S_V_MEAN20), (SQDEV, S_V, 20, S_V_MEAN20, S_V_SQDEV20), (SUM, S_V, 20, 0, S_V_SUM20),
    (SUM, S_TPV, 20, 0, S_TPV_SUM20), (SUM, S_SIGNED, 10, 0, S_SIGNED_SUM10), (SUM, S_V, 10, 0, S_V_SUM10),
    (SUM, S_FLOW_UP, 14, 0, S_UP_SUM14), (SUM, S_FLOW_DOWN, 14, 0, S_DOWN_SUM14),
    (EMA, S_C, 12, 0, S_EMA12), (EMA, S_C, 26, 0, S_EMA26), (EMA, S_C, 20, 0, S_EMA20),
    (WILDER, S_TR, 14, 0, S_ATR14), (WILDER, S_TR, 10, 0, S_ATR10), (WILDER, S_PDM, 14, 0, S_PDM14),
    (WILDER, S_MDM, 14, 0, S_MDM14), (WILDER, S_GAIN, 14, 0, S_GAIN14), (WILDER, S_LOSS, 14, 0, S_LOSS14),
    (WILDER, S_GAIN, 7, 0, S_GAIN7), (WILDER, S_LOSS, 7, 0, S_LOSS7),
    (DERIVED, 0, 0, 0, 0),
    (EMA, S_MACD, 9, 0, S_SIGNAL), (WILDER, S_DX, 14, 0, S_ADX), (MEAN, S_STOCH_K, 3, 0, S_STOCH_D),
], dtype=np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def _bar_terms(o, h, l, c, v, s):  # pragma: no cover - compiled
    """The inputs and the per-bar terms the windows and recursions read (NaN where the
    expression reads a missing previous bar)."""
    for i in range(c.shape[0]):
        s[S_O, i], s[S_H, i], s[S_L, i], s[S_C, i], s[S_V, i] = o[i], h[i], l[i], c[i], v[i]
        s[S_TP, i] = (h[i] + l[i] + c[i]) * ONE_THIRD
        s[S_TPV, i] = s[S_TP, i] * v[i]
        range_log = s[S_HL, i] = np.log(h[i] / l[i])
        s[S_HL2, i] = range_log * range_log
        co = np.log(c[i] / o[i])
        s[S_GK, i] = 0.5 * s[S_HL2, i] - GARMAN_KLASS_CO * (co * co)
        if i == 0:
            for row in (S_R, S_GAIN, S_LOSS, S_SIGNED, S_FLOW_UP, S_FLOW_DOWN):
                s[row, 0] = np.nan
            s[S_TR, 0] = h[0] - l[0]
            s[S_PDM, 0] = s[S_MDM, 0] = 0.0
            continue
        previous = c[i - 1]
        s[S_R, i] = np.log(c[i] / previous)
        s[S_TR, i] = max(h[i] - l[i], abs(h[i] - previous), abs(l[i] - previous))
        up, down = h[i] - h[i - 1], l[i - 1] - l[i]
        s[S_PDM, i] = up if up > down and up > 0 else 0.0
        s[S_MDM, i] = down if down > up and down > 0 else 0.0
        change = c[i] - previous
        s[S_GAIN, i] = change if change > 0 else 0.0
        s[S_LOSS, i] = -change if -change > 0 else 0.0
        s[S_SIGNED, i] = v[i] if c[i] > previous else (-v[i] if c[i] < previous else 0.0)
        s[S_FLOW_UP, i] = s[S_TPV, i] if s[S_TP, i] > s[S_TP, i - 1] else 0.0
        s[S_FLOW_DOWN, i] = s[S_TPV, i] if s[S_TP, i] < s[S_TP, i - 1] else 0.0


@njit(cache=True, nogil=True, error_model="numpy")
def _derived(s):  # pragma: no cover - compiled
    """MACD, +DI/-DI, DX and fast %K: the inputs of the second-stage averages."""
    for i in range(s.shape[1]):
        s[S_MACD, i] = (s[S_EMA12, i] - s[S_EMA26, i]) / s[S_C, i]
        plus = s[S_PLUS_DI, i] = 100.0 * s[S_PDM14, i] / s[S_ATR14, i]
        minus = s[S_MINUS_DI, i] = 100.0 * s[S_MDM14, i] / s[S_ATR14, i]
        s[S_DX, i] = 100.0 * abs(plus - minus) / (plus + minus)
        s[S_STOCH_K, i] = 100.0 * (s[S_C, i] - s[S_LL14, i]) / (s[S_HH14, i] - s[S_LL14, i])


@njit(cache=True, nogil=True, error_model="numpy")
def _run_plan(s):  # pragma: no cover - compiled
    """Each ``PLAN`` row in order."""
    for j in range(PLAN.shape[0]):
        op, n, aux, dst = PLAN[j, 0], PLAN[j, 2], PLAN[j, 3], PLAN[j, 4]
        x = s[PLAN[j, 1]]
        if op == SUM or op == MAX or op == MIN:
            window_reduce(x, n, op, s[dst])
        elif op == MEAN:
            window_mean(x, n, s[dst])
        elif op == SQDEV or op == ABSDEV:
            window_deviation(x, n, s[aux], 2 if op == SQDEV else 1, s[dst])
        elif op == EMA or op == WILDER:
            ewm_segment(x, 2.0 / (n + 1) if op == EMA else 1.0 / n, n, s[dst])
        elif op == MOMENTS:
            window_moments(x, n, s[aux], s[dst], s[dst + 1])
        else:
            _derived(s)


# Feature formulas of a common shape: (shape, feature, row x, row y)
COPY, RATIO_MINUS_ONE, SHARE, RATIO, DIFFERENCE, PERCENT_OF = range(6)
FORMULAS = np.array([
    (COPY, LOG_RETURN_1, S_R, 0), (COPY, MACD, S_MACD, 0), (COPY, MACD_SIGNAL, S_SIGNAL, 0),
    (COPY, STOCH_K_14, S_STOCH_K, 0), (COPY, STOCH_D_3, S_STOCH_D, 0), (COPY, PLUS_DI_14, S_PLUS_DI, 0),
    (COPY, MINUS_DI_14, S_MINUS_DI, 0), (COPY, ADX_14, S_ADX, 0), (COPY, ATR_14, S_ATR14, 0),
    (COPY, REALIZED_VOL_5, S_RV5, 0), (COPY, REALIZED_VOL_20, S_RV20, 0), (COPY, HIGH_LOW_RANGE, S_HL, 0),
    (RATIO_MINUS_ONE, SMA_10_DIST, S_C, S_SMA10), (RATIO_MINUS_ONE, SMA_20_DIST, S_C, S_SMA20),
    (RATIO_MINUS_ONE, SMA_50_DIST, S_C, S_SMA50), (RATIO_MINUS_ONE, EMA_12_DIST, S_C, S_EMA12),
    (RATIO_MINUS_ONE, EMA_26_DIST, S_C, S_EMA26), (RATIO_MINUS_ONE, DIST_HIGH_20, S_C, S_HH20),
    (RATIO_MINUS_ONE, DIST_LOW_20, S_C, S_LL20),
    (SHARE, RSI_14, S_GAIN14, S_LOSS14), (SHARE, RSI_7, S_GAIN7, S_LOSS7), (SHARE, MFI_14, S_UP_SUM14, S_DOWN_SUM14),
    (RATIO, OBV_SLOPE_10, S_SIGNED_SUM10, S_V_SUM10), (RATIO, VOL_RATIO_5_20, S_RV5, S_RV20),
    (DIFFERENCE, MACD_HIST, S_MACD, S_SIGNAL), (PERCENT_OF, NATR_14, S_ATR14, S_C),
], dtype=np.int64)


@njit(cache=True, nogil=True, error_model="numpy")
def _finite(value):  # pragma: no cover - compiled
    return value if np.isfinite(value) else np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def _write_formulas(s, out, a):  # pragma: no cover - compiled
    """The ``FORMULAS`` features into ``out[:, a : a + rows]`` (Inf -> NaN)."""
    for j in range(FORMULAS.shape[0]):
        shape, row, x, y = FORMULAS[j, 0], FORMULAS[j, 1], s[FORMULAS[j, 2]], s[FORMULAS[j, 3]]
        dest = out[row, a : a + x.shape[0]]
        if shape == COPY:
            for i in range(x.shape[0]):
                dest[i] = _finite(x[i])
        elif shape == RATIO_MINUS_ONE:
            for i in range(x.shape[0]):
                dest[i] = _finite(x[i] / y[i] - 1.0)
        elif shape == SHARE:
            for i in range(x.shape[0]):
                dest[i] = _finite(100.0 * x[i] / (x[i] + y[i]))
        elif shape == RATIO:
            for i in range(x.shape[0]):
                dest[i] = _finite(x[i] / y[i])
        elif shape == DIFFERENCE:
            for i in range(x.shape[0]):
                dest[i] = _finite(x[i] - y[i])
        else:
            for i in range(x.shape[0]):
                dest[i] = _finite(100.0 * x[i] / y[i])


@njit(cache=True, nogil=True, error_model="numpy")
def _write_features(s, out, a):  # pragma: no cover - compiled
    """Every feature into ``out[:, a : a + rows]``: the ``FORMULAS`` and the rest (Inf -> NaN)."""
    c, o, h, l, v, m = s[S_C], s[S_O], s[S_H], s[S_L], s[S_V], s.shape[1]  # noqa: E741
    for i in range(m):
        s[S_RV5, i] = np.sqrt(s[S_R_SQDEV5, i] / 4)
        s[S_RV20, i] = np.sqrt(s[S_R_SQDEV20, i] / 19)
    _write_formulas(s, out, a)
    for k, row in ((5, LOG_RETURN_5), (10, LOG_RETURN_10), (20, LOG_RETURN_20)):
        dest = out[row, a : a + m]
        for i in range(m):
            dest[i] = np.log(c[i] / c[i - k]) if i >= k else np.nan
    f = out[:, a : a + m]
    for i in range(m):
        f[ROC_10, i] = 100.0 * (c[i] / c[i - 10] - 1.0) if i >= 10 else np.nan
        f[GAP, i] = np.log(o[i] / c[i - 1]) if i >= 1 else np.nan
    for i in range(m):
        f[WILLIAMS_R_14, i] = _finite(-100.0 * (s[S_HH14, i] - c[i]) / (s[S_HH14, i] - s[S_LL14, i]))
        f[CCI_20, i] = _finite((s[S_TP, i] - s[S_TP_MEAN20, i]) / (0.015 * (s[S_TP_ABSDEV20, i] / 20)))
        f[CLOSE_LOCATION, i] = _finite((c[i] - l[i]) / (h[i] - l[i]))
    for i in range(m):
        sd = np.sqrt(s[S_C_SQDEV20, i] / 20)
        f[BB_POSITION_20, i] = _finite((c[i] - (s[S_SMA20, i] - 2.0 * sd)) / (4.0 * sd))
        f[BB_WIDTH_20, i] = _finite(4.0 * sd / s[S_SMA20, i])
        atr10 = s[S_ATR10, i]
        f[KELTNER_POSITION_20, i] = _finite((c[i] - (s[S_EMA20, i] - 2.0 * atr10)) / (4.0 * atr10))
    for i in range(m):
        f[PARKINSON_VOL_20, i] = np.sqrt(s[S_HL2_MEAN20, i] * (1.0 / PARKINSON_SCALE))
        gk = s[S_GK_MEAN20, i]
        f[GARMAN_KLASS_VOL_20, i] = np.sqrt(0.0 if gk < 0.0 else gk)
        f[VOLUME_ZSCORE_20, i] = _finite((v[i] - s[S_V_MEAN20, i]) / np.sqrt(s[S_V_SQDEV20, i] / 19))
        f[VWAP_DIST_20, i] = _finite(c[i] / (s[S_TPV_SUM20, i] / s[S_V_SUM20, i]) - 1.0)
    for i in range(m):
        variance = s[S_R_SQDEV20, i] / 20
        f[SKEW_20, i] = _finite((s[S_R_M3, i] / 20) / (variance * np.sqrt(variance)))
        f[KURT_20, i] = _finite((s[S_R_M4, i] / 20) / (variance * variance) - 3.0)


@njit(cache=True, nogil=True, error_model="numpy")
def technical_panel(o, h, l, c, v, starts, out):  # pragma: no cover - compiled
    """All ``FEATURE_ORDER`` rows of ``out`` for each ticker ``g`` on rows
    ``starts[g]:starts[g + 1]``, in order (``out`` columns outside those rows are untouched)."""
    longest = 0
    for g in range(starts.shape[0] - 1):
        longest = max(longest, starts[g + 1] - starts[g])
    block = np.empty(N_SCRATCH * longest)
    for g in range(starts.shape[0] - 1):
        a, b = starts[g], starts[g + 1]
        s = block[: N_SCRATCH * (b - a)].reshape((N_SCRATCH, b - a))
        _bar_terms(o[a:b], h[a:b], l[a:b], c[a:b], v[a:b], s)
        _run_plan(s)
        _write_features(s, out, a)
