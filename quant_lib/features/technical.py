"""~41 technical indicators from OHLCV over a long multi-ticker frame.

Every indicator is causal: the value at row t uses rows <= t of the same ticker only, so
computing on ``df[: t + 1]`` gives the same row t. Warm-up rows are NaN (up to ~50 bars).
Two forms compute the same values: ``TECHNICAL_FEATURES`` holds one polars expression per
feature, the readable definition (``compute_technical_features_reference``); what runs is one
compiled pass per ticker over contiguous columns of the sorted panel (``_technical_kernel``,
``compute_technical_features``), which repeats each expression operation for operation. In the
expressions ticker boundaries are respected by the row's position in its ticker (``POS``): a lag
k is null where ``POS < k``, the recursive averages restart at ``POS == 0`` and rolling windows
never mix tickers; every window is summed directly in the same order in both forms, so values
are bit-identical to a ticker computed alone, to the data cut at any row, and between the forms
(skew/kurtosis to ~1e-10: the reference takes polars' online rolling moments).
EMAs use ``alpha = 2 / (n + 1)``, Wilder averages ``alpha = 1 / n``, both recursive from the
first value (TA-Lib seeds with an SMA; the difference decays as (1 - alpha)^t). Notation: o, h,
l, c, v = open, high, low, close, volume; r = ln(c / c[-1]); TP = (h + l + c) / 3;
HH_n / LL_n = rolling max(h) / min(l); TR = max(h - l, |h - c[-1]|, |l - c[-1]|).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from quant_lib.features._frame import OHLCV, TICKER, prepare_ohlcv
from quant_lib.features._kernels import ewm_by_group, mean_abs_deviation, rolling_by_group
from quant_lib.features._technical_kernel import FEATURE_ORDER, technical_panel

POS_COLUMN = "__pos"
POS = pl.col(POS_COLUMN)
o, h, l, c, v = (pl.col(name) for name in ("open", "high", "low", "close", "volume"))  # noqa: E741


def _lag(x: pl.Expr, k: int) -> pl.Expr:
    return pl.when(POS >= k).then(x.shift(k))


def _window(rolled: pl.Expr, n: int) -> pl.Expr:
    return pl.when(POS >= n - 1).then(rolled)


def _recursive(x: pl.Expr, alpha: float, n: int) -> pl.Expr:
    return pl.struct(x.alias("x"), POS.alias("p")).map_batches(
        lambda s: pl.Series(ewm_by_group(s.struct.field("x").cast(pl.Float64).to_numpy(writable=True), s.struct.field("p").to_numpy(), alpha, n)),
        return_dtype=pl.Float64,
    )


r = (c / _lag(c, 1)).log()
tp = (h + l + c) / 3.0
tr = pl.max_horizontal(h - l, (h - _lag(c, 1)).abs(), (l - _lag(c, 1)).abs())


def _ema(x: pl.Expr, n: int) -> pl.Expr:
    return _recursive(x, 2.0 / (n + 1), n)


def _wilder(x: pl.Expr, n: int) -> pl.Expr:
    return _recursive(x, 1.0 / n, n)


def _rolling(x: pl.Expr, n: int, stat: int, ddof: int = 1) -> pl.Expr:
    return pl.struct(x.alias("x"), POS.alias("p")).map_batches(
        lambda s: pl.Series(rolling_by_group(s.struct.field("x").cast(pl.Float64).to_numpy(writable=True), s.struct.field("p").to_numpy(), n, stat, ddof)),
        return_dtype=pl.Float64,
    )


def _sma(x: pl.Expr, n: int) -> pl.Expr:
    return _rolling(x, n, 0)


def _sum(x: pl.Expr, n: int) -> pl.Expr:
    return _rolling(x, n, 1)


def _std(x: pl.Expr, n: int, ddof: int = 1) -> pl.Expr:
    return _rolling(x, n, 2, ddof)


def _hh(n: int) -> pl.Expr:
    return _rolling(h, n, 3)


def _ll(n: int) -> pl.Expr:
    return _rolling(l, n, 4)


def _rsi(n: int) -> pl.Expr:
    change = c - _lag(c, 1)
    gain, loss = _wilder(change.clip(lower_bound=0), n), _wilder((-change).clip(lower_bound=0), n)
    return 100.0 * gain / (gain + loss)


def _stoch_k() -> pl.Expr:
    return 100.0 * (c - pl.col("__ll14")) / (pl.col("__hh14") - pl.col("__ll14"))


def _di(sign: int) -> pl.Expr:
    return 100.0 * pl.col("__pdm14" if sign > 0 else "__mdm14") / pl.col("__atr14")


def _adx(n: int) -> pl.Expr:
    plus, minus = _di(1), _di(-1)
    return _wilder(100.0 * (plus - minus).abs() / (plus + minus), n)


def _cci(n: int) -> pl.Expr:
    mean = _sma(tp, n)
    deviation = tp.map_batches(lambda x: pl.Series(mean_abs_deviation(x.to_numpy().astype(np.float64), n)), return_dtype=pl.Float64)
    return (tp - mean) / (0.015 * _window(deviation, n))


def _bollinger(k: float = 2.0) -> tuple[pl.Expr, pl.Expr]:
    mid, sd = pl.col("__sma20"), pl.col("__sd20")
    return (c - (mid - k * sd)) / (2 * k * sd), 2 * k * sd / mid


def _keltner_position(n: int = 20, atr_n: int = 10, k: float = 2.0) -> pl.Expr:
    mid, atr = _ema(c, n), _wilder(tr, atr_n)
    return (c - (mid - k * atr)) / (2 * k * atr)


def _realized_vol(n: int) -> pl.Expr:
    return _std(r, n)


def _parkinson(n: int) -> pl.Expr:
    return (_sma((h / l).log().pow(2), n) / (4.0 * math.log(2.0))).sqrt()


def _garman_klass(n: int) -> pl.Expr:
    hl, co = (h / l).log().pow(2), (c / o).log().pow(2)
    return _sma(0.5 * hl - (2.0 * math.log(2.0) - 1.0) * co, n).clip(lower_bound=0).sqrt()


def _obv_slope(n: int) -> pl.Expr:
    previous = _lag(c, 1)
    signed = pl.when(c > previous).then(v).when(c < previous).then(-v).when(previous.is_not_null()).then(0.0)
    return _sum(signed, n) / _sum(v, n)


def _mfi(n: int) -> pl.Expr:
    flow = tp * v
    previous = _lag(tp, 1)
    up = _sum(pl.when(tp > previous).then(flow).when(previous.is_not_null()).then(0.0), n)
    down = _sum(pl.when(tp < previous).then(flow).when(previous.is_not_null()).then(0.0), n)
    return 100.0 * up / (up + down)


def _volume_z(n: int) -> pl.Expr:
    return (v - _sma(v, n)) / _std(v, n)


def _dm(sign: int) -> pl.Expr:
    up, down = h - _lag(h, 1), _lag(l, 1) - l
    move, other = (up, down) if sign > 0 else (down, up)
    return pl.when((move > other) & (move > 0)).then(move).otherwise(0.0)


# Intermediate columns several features share, computed once per stage (polars does not merge
# repeated Python UDFs): stage 2 may use stage 1's columns.
SHARED_STAGES: tuple[dict[str, Callable[[], pl.Expr]], ...] = (
    {
        "__ema12": lambda: _ema(c, 12), "__ema26": lambda: _ema(c, 26), "__atr14": lambda: _wilder(tr, 14),
        "__pdm14": lambda: _wilder(_dm(1), 14), "__mdm14": lambda: _wilder(_dm(-1), 14),
        "__hh14": lambda: _hh(14), "__ll14": lambda: _ll(14), "__hh20": lambda: _hh(20), "__ll20": lambda: _ll(20),
        "__sma20": lambda: _sma(c, 20), "__sd20": lambda: _std(c, 20, ddof=0),
        "__rv5": lambda: _realized_vol(5), "__rv20": lambda: _realized_vol(20),
    },
    {"__macd": lambda: (pl.col("__ema12") - pl.col("__ema26")) / c},
    {"__macd_signal": lambda: _ema(pl.col("__macd"), 9)},
)
SHARED_NAMES: tuple[str, ...] = tuple(name for stage in SHARED_STAGES for name in stage)
S = pl.col


TECHNICAL_FEATURES: dict[str, tuple[Callable[[], pl.Expr], str]] = {
    "log_return_1": (lambda: r, "ln(c / c[-1])"),
    "log_return_5": (lambda: (c / _lag(c, 5)).log(), "ln(c / c[-5])"),
    "log_return_10": (lambda: (c / _lag(c, 10)).log(), "ln(c / c[-10])"),
    "log_return_20": (lambda: (c / _lag(c, 20)).log(), "ln(c / c[-20])"),
    "roc_10": (lambda: 100.0 * (c / _lag(c, 10) - 1.0), "100 (c / c[-10] - 1)  (TA-Lib ROC)"),
    "sma_10_dist": (lambda: c / _sma(c, 10) - 1.0, "c / SMA_10(c) - 1"),
    "sma_20_dist": (lambda: c / _sma(c, 20) - 1.0, "c / SMA_20(c) - 1"),
    "sma_50_dist": (lambda: c / _sma(c, 50) - 1.0, "c / SMA_50(c) - 1"),
    "ema_12_dist": (lambda: c / S("__ema12") - 1.0, "c / EMA_12(c) - 1"),
    "ema_26_dist": (lambda: c / S("__ema26") - 1.0, "c / EMA_26(c) - 1"),
    "macd": (lambda: S("__macd"), "(EMA_12(c) - EMA_26(c)) / c"),
    "macd_signal": (lambda: S("__macd_signal"), "EMA_9(macd)"),
    "macd_hist": (lambda: S("__macd") - S("__macd_signal"), "macd - macd_signal"),
    "rsi_14": (lambda: _rsi(14), "100 W14(gain) / (W14(gain) + W14(loss)), W = Wilder average"),
    "rsi_7": (lambda: _rsi(7), "RSI over 7 bars"),
    "stoch_k_14": (lambda: _stoch_k(), "100 (c - LL_14) / (HH_14 - LL_14)  (fast %K)"),
    "stoch_d_3": (lambda: _sma(_stoch_k(), 3), "SMA_3(stoch_k_14)  (fast %D)"),
    "williams_r_14": (lambda: -100.0 * (S("__hh14") - c) / (S("__hh14") - S("__ll14")), "-100 (HH_14 - c) / (HH_14 - LL_14)"),
    "cci_20": (lambda: _cci(20), "(TP - SMA_20(TP)) / (0.015 mean|TP_i - SMA_20(TP)|)"),
    "plus_di_14": (lambda: _di(1), "100 W14(+DM) / W14(TR)"),
    "minus_di_14": (lambda: _di(-1), "100 W14(-DM) / W14(TR)"),
    "adx_14": (lambda: _adx(14), "W14(100 |+DI - -DI| / (+DI + -DI))"),
    "atr_14": (lambda: S("__atr14"), "W14(TR)  (price units)"),
    "natr_14": (lambda: 100.0 * S("__atr14") / c, "100 ATR_14 / c"),
    "bb_position_20": (lambda: _bollinger()[0], "(c - (SMA_20 - 2 sd_20)) / (4 sd_20), sd with ddof=0"),
    "bb_width_20": (lambda: _bollinger()[1], "4 sd_20 / SMA_20"),
    "keltner_position_20": (_keltner_position, "(c - (EMA_20 - 2 ATR_10)) / (4 ATR_10)"),
    "realized_vol_5": (lambda: S("__rv5"), "std_5(r)"),
    "realized_vol_20": (lambda: S("__rv20"), "std_20(r)"),
    "vol_ratio_5_20": (lambda: S("__rv5") / S("__rv20"), "std_5(r) / std_20(r)"),
    "parkinson_vol_20": (lambda: _parkinson(20), "sqrt(mean_20(ln(h/l)^2) / (4 ln 2))  (Parkinson 1980)"),
    "garman_klass_vol_20": (lambda: _garman_klass(20), "sqrt(mean_20(0.5 ln(h/l)^2 - (2 ln 2 - 1) ln(c/o)^2))"),
    "volume_zscore_20": (lambda: _volume_z(20), "(v - mean_20(v)) / std_20(v)"),
    "obv_slope_10": (lambda: _obv_slope(10), "(OBV - OBV[-10]) / sum_10(v)"),
    "mfi_14": (lambda: _mfi(14), "100 sum_14(TP v | TP up) / sum_14(TP v | TP moved)"),
    "vwap_dist_20": (lambda: c / (_sum(tp * v, 20) / _sum(v, 20)) - 1.0, "c / (sum_20(TP v) / sum_20(v)) - 1"),
    "skew_20": (lambda: r.rolling_skew(20).over(TICKER), "sample skewness of r over 20 bars (biased)"),
    "kurt_20": (lambda: r.rolling_kurtosis(20).over(TICKER), "excess kurtosis of r over 20 bars (biased)"),
    "high_low_range": (lambda: (h / l).log(), "ln(h / l)"),
    "close_location": (lambda: (c - l) / (h - l), "(c - l) / (h - l)"),
    "gap": (lambda: (o / _lag(c, 1)).log(), "ln(o / c[-1])"),
    "dist_high_20": (lambda: c / S("__hh20") - 1.0, "c / HH_20 - 1"),
    "dist_low_20": (lambda: c / S("__ll20") - 1.0, "c / LL_20 - 1"),
}
TECHNICAL_FEATURE_NAMES: tuple[str, ...] = tuple(TECHNICAL_FEATURES)
assert TECHNICAL_FEATURE_NAMES == FEATURE_ORDER, "the compiled pass writes the features in this order"


def technical_feature_exprs() -> list[pl.Expr]:
    """One expression per feature over a frame sorted by (ticker, time) with the ``POS_COLUMN``
    and the ``SHARED_NAMES`` columns (``with_position``); then ``finite_or_nan`` (Inf from a zero
    range, nulls -> NaN) and drop ``POS_COLUMN`` and ``SHARED_NAMES``."""
    return [build().cast(pl.Float64).alias(name) for name, (build, _) in TECHNICAL_FEATURES.items()]


def with_position(df: pl.DataFrame, ticker: str) -> pl.DataFrame:
    """Add ``POS_COLUMN`` (the row's index within its ticker, 0 at each ticker's first row) and the
    intermediate ``SHARED_NAMES`` columns the feature expressions read."""
    df = df.with_columns(pl.int_range(pl.len()).over(ticker).alias(POS_COLUMN))
    for stage in SHARED_STAGES:
        df = df.with_columns(build().alias(name) for name, build in stage.items())
    return df


def finite_or_nan(names: list[str] | tuple[str, ...]) -> list[pl.Expr]:
    return [pl.when(pl.col(n).is_infinite()).then(float("nan")).otherwise(pl.col(n)).fill_null(float("nan")).alias(n) for n in names]


def _run_panel(columns: list[np.ndarray], starts: np.ndarray, out: np.ndarray, threads: int) -> None:
    """``technical_panel`` over ticker ranges of ~equal rows on ``threads`` threads (the kernel
    releases the GIL; each range writes its own columns of ``out``)."""
    threads = max(1, min(threads, starts.size - 1))
    if threads == 1:
        technical_panel(*columns, starts, out)
        return
    cuts = np.unique(np.searchsorted(starts, np.linspace(0, starts[-1], threads + 1), side="left"))
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: technical_panel(*columns, starts[cuts[i] : cuts[i + 1] + 1], out), range(cuts.size - 1)))


def add_technical_features(df: pl.DataFrame, ticker: str, threads: int = 1) -> pl.DataFrame:
    """``df`` (validated, sorted by (ticker, time): ``prepare_ohlcv``) with the
    ``TECHNICAL_FEATURE_NAMES`` columns added by one compiled pass per ticker, the tickers split
    over ``threads`` threads (0: one per CPU)."""
    ids = df.select(pl.col(ticker).rle_id()).to_series().to_numpy()
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1, [df.height])).astype(np.int64)
    columns = [np.ascontiguousarray(df[name].to_numpy(), dtype=np.float64) for name in OHLCV]
    out = np.empty((len(FEATURE_ORDER), df.height))
    _run_panel(columns, starts, out, threads or os.cpu_count() or 1)
    return df.hstack([pl.Series(name, out[i]) for i, name in enumerate(FEATURE_ORDER)])


def compute_technical_features(df: pl.DataFrame, threads: int = 1) -> pl.DataFrame:
    """``df`` (``timestamp`` or ``date``, optional ``ticker``, OHLCV) sorted by (ticker, time),
    with the ``TECHNICAL_FEATURE_NAMES`` columns added (Float64; NaN during warm-up); ``threads``
    as in ``add_technical_features``."""
    df, _, ticker = prepare_ohlcv(df)
    return add_technical_features(df, ticker, threads)


def compute_technical_features_reference(df: pl.DataFrame) -> pl.DataFrame:
    """The same columns from the polars expressions of ``TECHNICAL_FEATURES`` (slower; the
    definition the compiled pass is tested against)."""
    df, _, ticker = prepare_ohlcv(df)
    out = with_position(df, ticker).with_columns(technical_feature_exprs())
    return out.with_columns(finite_or_nan(TECHNICAL_FEATURE_NAMES)).drop(POS_COLUMN, *SHARED_NAMES)
