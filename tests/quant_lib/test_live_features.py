"""Live features: incremental rows equal the bulk pass; the batch-pipeline adapter; state round trips."""

import numpy as np
import polars as pl

from quant_lib.live import IncrementalBarFeatures, PipelineBarFeatures, synthetic_bars
from quant_lib.live.bars import normalise_bars


def _rows(frame):
    return [normalise_bars({"A": row})["A"] for row in frame.iter_rows(named=True)]


def test_incremental_rows_equal_bulk_pass_and_survive_a_restart():
    frame = synthetic_bars(["A"], n_bars=120, seed=1).drop("symbol")
    bulk, targets = IncrementalBarFeatures().training_set(frame)
    first, second, straight = IncrementalBarFeatures(), IncrementalBarFeatures(), IncrementalBarFeatures()
    rows, scores, straight_scores = [], [], []
    for i, bar in enumerate(_rows(frame)):
        if i == 60:
            second.load_state(first.get_state())
            first = second
        row = first.update("A", bar)
        straight.update("A", bar)
        scores.append((first.cp_score, first.cp_severity))
        straight_scores.append((straight.cp_score, straight.cp_severity))
        if row is not None:
            rows.append(row)
    np.testing.assert_array_equal(np.stack(rows), bulk)  # bit for bit, across the restart
    assert scores == straight_scores and len(set(scores[60:])) > 1  # the change-point detector too
    close = frame["close"].to_numpy()
    np.testing.assert_allclose(targets[:-1], np.log(close[1:] / close[:-1])[-len(targets) + 1:])
    assert np.isnan(targets[-1])


class _Pipeline:
    """A tiny fitted pipeline: features r1 and r2 (1- and 2-bar log returns), no z-score."""

    feature_names = ["r1", "r2"]

    def __init__(self):
        self.index_ = None
        self.loaded = None

    def transform(self, frame):
        out = frame.sort("timestamp").with_columns(
            (pl.col("close") / pl.col("close").shift(1)).log().alias("r1"),
            (pl.col("close") / pl.col("close").shift(2)).log().alias("r2"),
            (pl.col("close").shift(-1) / pl.col("close")).log().alias("target"),
        ).drop_nulls(["r1", "r2"])
        self.index_ = out.select("timestamp", "ticker")
        return out.select("r1", "r2").to_numpy(), out["target"].fill_null(np.nan).to_numpy()

    def get_state(self):
        return {"fitted": True}

    def load_state(self, state):
        self.loaded = state


def test_pipeline_adapter_returns_the_current_bar_row():
    frame = synthetic_bars(["A"], n_bars=10, seed=2).drop("symbol")
    features = PipelineBarFeatures(_Pipeline(), window=5)
    out = [features.update("A", bar) for bar in _rows(frame)]
    assert out[0] is None and out[1] is None and features.n_features == 2
    close = frame["close"].to_numpy()
    np.testing.assert_allclose(out[-1], [np.log(close[-1] / close[-2]), np.log(close[-1] / close[-3])])
    restored = PipelineBarFeatures(_Pipeline(), window=5)
    restored.load_state(features.get_state())
    assert restored.pipeline.loaded == {"fitted": True} and len(restored.history["A"]) == 5
    assert restored.get_state()["changepoint"] == features.get_state()["changepoint"]
    assert (restored.cp_score, restored.cp_severity) == (features.cp_score, features.cp_severity) == (0.0, 0.0)  # warm-up
