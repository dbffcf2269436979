"""Bet sizing from the meta-labeler's probability (AFML ch. 10, snippets 10.1 and 10.3).

For a classifier over K outcomes with P(predicted outcome) = p, the test statistic of
``H0: p = 1/K`` is ``z = (p - 1/K) / sqrt(p (1 - p))`` and the bet size is
``m = side * (2 Phi(z) - 1)`` in [-1, 1]. Sizes are discretized to multiples of ``step``
(``round(m / step) * step``) so tiny probability changes do not cause trades. With meta-labels
(K = 2, p = P(success)), a size <= 0 means "skip the bet".
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.special import ndtr


def bet_size(probability, side=1, n_classes: int = 2, step: float = 0.1) -> np.ndarray:
    """``side * (2 Phi(z) - 1)`` discretized to ``step`` (``step = 0`` leaves it continuous)."""
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")
    if not 0 <= step <= 1:
        raise ValueError(f"step must be in [0, 1], got {step}")
    p = np.asarray(probability, dtype=float)
    if np.any((p < 0) | (p > 1)):
        raise ValueError("probabilities must lie in [0, 1]")
    p = np.clip(p, 1e-12, 1 - 1e-12)
    z = (p - 1.0 / n_classes) / np.sqrt(p * (1 - p))
    size = np.asarray(side, dtype=float) * (2 * ndtr(z) - 1)
    if step > 0:
        size = np.round(size / step) * step
    return np.clip(size, -1.0, 1.0) + 0.0


def apply_meta_confidence(targets: pl.DataFrame, confidence: pl.DataFrame | None) -> tuple[pl.DataFrame, int, list]:
    """Scale each target ``weight`` by its meta bet size clipped to [0, 1] (a size <= 0 drops the
    name; the freed weight stays in cash); ``raw_weight`` (the optimizer's allocation) is kept.
    Names the meta-labeler did not score keep their weight; a date on which every scored bet was
    sized <= 0 is left unscaled (no all-cash book from the filter alone). Adds ``meta_bet_size``.
    Returns (targets, names dropped, fallback dates)."""
    if confidence is None or confidence.is_empty():
        return targets, 0, []
    sizes = confidence.select("date", "ticker", pl.col("bet_size").alias("meta_bet_size"))
    positive = sizes.filter(pl.col("meta_bet_size") > 0).select("date").unique()
    fallback = sizes.select("date").unique().join(positive, on="date", how="anti")["date"].sort().to_list()
    sized = targets.join(sizes.join(positive, on="date", how="semi"), on=["date", "ticker"], how="left")
    scale = pl.col("meta_bet_size").fill_null(1.0).clip(0.0, 1.0)
    dropped = int(sized.filter((pl.col("meta_bet_size") <= 0) & (pl.col("weight") > 0)).height)
    return sized.with_columns(pl.col("weight") * scale), dropped, fallback
