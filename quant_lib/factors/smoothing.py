"""Signal smoothing of the composite score: a truncated exponential moving average per ticker.

Re-optimising targets daily from a noisy score churns the book: names near the top-N cut-off
enter and leave every few days although the premia the score measures move slowly. Averaging the
score over time keeps the slow signal and damps the fast noise (Grinold and Kahn, Active
Portfolio Management, 2nd ed., ch. 16: blending past and present alphas cuts turnover at little
cost in information ratio when the signal decays slowly; Garleanu and Pedersen (2013): trade
toward an aim portfolio built from past and expected signals).
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

SMOOTHING_HORIZON = 5.0
"""The window holds `ceil(SMOOTHING_HORIZON x half_life)` dates: the dropped tail weighs
0.5^5 ~ 3% of an infinite EWM."""


def smoothing_window(half_life: float) -> int:
    """Dates a smoothed score depends on: K = ceil(5 x half_life), at least 1."""
    if not half_life >= 0 or not math.isfinite(half_life):
        raise ValueError(f"score half-life must be a finite number >= 0, got {half_life}")
    return max(1, math.ceil(SMOOTHING_HORIZON * half_life))


def smooth_scores(rankings: pl.DataFrame, half_life: float) -> pl.DataFrame:
    """`rankings` with `score` replaced by its causal truncated EWM and `rank` recomputed.

    With lambda = 0.5^(1/half_life) and K = `smoothing_window(half_life)`, over the panel of the
    frame's dates (every date present in `rankings`):
    score_s(t, i) = sum_{k<K} lambda^k s(t-k, i) / sum_{k<K, s(t-k, i) known} lambda^k,
    the missing scores of a ticker (not ranked that date) dropped from both sums, so a new listing
    starts at its raw score. score_s(t) uses the dates t-K+1..t only: causal, and the same for any
    input that holds those K dates (truncation-invariant). rank = 1 for the highest smoothed score
    per date (ties by ticker); the raw score is kept as `raw_score`. half_life 0 returns the frame
    unchanged (plus `raw_score`). Rows and their order are kept.
    """
    missing = [c for c in ("date", "ticker", "score") if c not in rankings.columns]
    if missing:
        raise ValueError(f"rankings is missing columns {missing}")
    window = smoothing_window(half_life)
    frame = rankings.with_columns(pl.col("score").cast(pl.Float64).alias("raw_score"))
    if half_life == 0 or frame.is_empty():
        return frame
    dup = frame.select("date", "ticker").is_duplicated()
    if dup.any():
        raise ValueError(f"rankings has duplicate (date, ticker) rows, e.g. {frame.filter(dup).select('date', 'ticker').head(3).rows()}")
    wide = frame.pivot(on="ticker", index="date", values="raw_score").sort("date")
    tickers = [c for c in wide.columns if c != "date"]
    values = wide.drop("date").cast(pl.Float64).to_numpy()
    smoothed = _truncated_ewm(values, 0.5 ** (1.0 / half_life), window)
    long = pl.DataFrame({"date": wide["date"], **{t: smoothed[:, j] for j, t in enumerate(tickers)}}).unpivot(
        index="date", variable_name="ticker", value_name="_smoothed"
    )
    rank = pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32)
    return (
        frame.with_row_index("_row")
        .join(long, on=["date", "ticker"], how="left")
        .with_columns(pl.col("_smoothed").fill_nan(None).fill_null(pl.col("raw_score")).alias("score"))
        .sort("date", "ticker")
        .with_columns(rank.alias("rank") if "rank" in frame.columns else rank.alias("_rank"))
        .sort("_row")
        .drop("_row", "_smoothed", "_rank", strict=False)
    )


def _truncated_ewm(values: np.ndarray, decay: float, window: int) -> np.ndarray:
    """sum_{k<window} decay^k x[t-k] / sum over the known x[t-k] of decay^k, per column (NaN: missing)."""
    known = np.isfinite(values)
    filled = np.where(known, values, 0.0)
    numerator = np.zeros_like(filled)
    denominator = np.zeros_like(filled)
    for lag in range(min(window, values.shape[0])):
        weight = decay**lag
        numerator[lag:] += weight * filled[: values.shape[0] - lag]
        denominator[lag:] += weight * known[: values.shape[0] - lag]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known, numerator / denominator, np.nan)
