"""Sample weights for overlapping labels: average uniqueness and time decay (AFML ch. 4).

A label spans the returns of bars ``(entry, touch]`` of its ticker. The concurrency ``c_t`` of a
bar is the number of labels of that ticker spanning it; a label's average uniqueness is
``u_i = mean_{t in span_i} 1 / c_t`` (AFML snippets 4.1-4.2). Time decay (snippet 4.11) is
piecewise linear in cumulative uniqueness ``x`` (events in date order): ``d = a + b x`` with
``d = 1`` for the newest label and ``d = oldest_weight`` for the oldest (``oldest_weight < 0``:
the oldest ``|oldest_weight|`` share of uniqueness gets weight 0), clipped at 0.
Vectorized: concurrency is a difference array's cumulative sum over the flat (ticker, date) panel.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant_lib.labeling._panel import require_columns as _require
from quant_lib.labeling.triple_barrier import price_panel


def average_uniqueness(entry: np.ndarray, touch: np.ndarray, n_rows: int) -> np.ndarray:
    """``u_i`` for label spans ``(entry_i, touch_i]`` given as flat row indices (ticker-contiguous
    panel of ``n_rows``); a label without a return bar (``touch <= entry``) has uniqueness 1."""
    entry = np.asarray(entry, dtype=np.int64)
    touch = np.asarray(touch, dtype=np.int64)
    spans = touch > entry
    diff = np.zeros(n_rows + 1)
    np.add.at(diff, entry[spans] + 1, 1.0)
    np.add.at(diff, touch[spans] + 1, -1.0)
    concurrency = np.cumsum(diff)[:n_rows]
    inverse = np.divide(1.0, concurrency, out=np.zeros(n_rows), where=concurrency > 0)
    prefix = np.concatenate([[0.0], np.cumsum(inverse)])
    uniqueness = np.ones(entry.shape[0])
    span_length = (touch - entry)[spans]
    uniqueness[spans] = (prefix[touch[spans] + 1] - prefix[entry[spans] + 1]) / span_length
    return uniqueness


def time_decay(uniqueness: np.ndarray, oldest_weight: float = 1.0) -> np.ndarray:
    """AFML snippet 4.11 on uniqueness given in chronological order (``oldest_weight`` in (-1, 1];
    1 means no decay)."""
    if not -1.0 < oldest_weight <= 1.0:
        raise ValueError(f"oldest_weight must be in (-1, 1], got {oldest_weight}")
    cumulative = np.cumsum(np.asarray(uniqueness, dtype=float))
    if cumulative.size == 0 or cumulative[-1] <= 0:
        return np.ones_like(cumulative)
    total = cumulative[-1]
    slope = (1.0 - oldest_weight) / total if oldest_weight >= 0 else 1.0 / ((oldest_weight + 1.0) * total)
    return np.clip(1.0 - slope * total + slope * cumulative, 0.0, None)


def sample_weights(labels: pl.DataFrame, prices: pl.DataFrame, oldest_weight: float = 1.0) -> pl.DataFrame:
    """``labels`` (``date, ticker, touch_date``; unresolved labels span to the ticker's last bar)
    plus ``uniqueness``, ``time_decay`` and ``sample_weight = uniqueness * time_decay`` scaled to
    mean 1; sorted by (date, ticker)."""
    _require(labels, ["date", "ticker", "touch_date"], "labels")
    panel = price_panel(prices.select("date", "ticker", pl.lit(1.0).alias("close")))
    rows = panel.select("date", "ticker", "_row", "_last")
    located = (
        labels.sort("date", "ticker")
        .join(rows, on=["date", "ticker"], how="left")
        .join(rows.select(pl.col("date").alias("touch_date"), "ticker", pl.col("_row").alias("_touch")), on=["touch_date", "ticker"], how="left")
    )
    missing = located.filter(pl.col("_row").is_null() | (pl.col("touch_date").is_not_null() & pl.col("_touch").is_null()))
    if missing.height:
        raise ValueError(f"{missing.height} label(s) have a date or touch_date with no price bar; first: {missing.head(5).select('date', 'ticker', 'touch_date').to_dicts()}")
    entry = located["_row"].to_numpy()
    touch = located["_touch"].fill_null(located["_last"]).to_numpy()
    uniqueness = average_uniqueness(entry, touch, panel.height)
    decay = time_decay(uniqueness, oldest_weight)
    weight = uniqueness * decay
    mean = weight.mean() if weight.size and weight.mean() > 0 else 1.0
    return located.drop("_row", "_last", "_touch").with_columns(
        pl.Series("uniqueness", uniqueness), pl.Series("time_decay", decay), pl.Series("sample_weight", weight / mean)
    )
