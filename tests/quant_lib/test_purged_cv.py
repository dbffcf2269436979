"""Purged CV leaks nothing; walk-forward splits keep their gap; walk-forward optimization picks in-sample."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quant_lib.backtest.validation import PurgedWalkForwardCV, WalkForwardSplitter, walk_forward_optimize


def _events(n: int = 1_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Daily label starts with random holding horizons of 1..20 days (overlapping labels)."""
    rng = np.random.default_rng(seed)
    starts = np.datetime64("2020-01-01") + np.arange(n).astype("timedelta64[D]")
    ends = starts + rng.integers(1, 21, n).astype("timedelta64[D]")
    return starts, ends


@pytest.mark.parametrize("embargo_pct", [0.0, 0.01, 0.05])
def test_purged_cv_no_leakage(embargo_pct):
    starts, ends = _events()
    cv = PurgedWalkForwardCV(n_splits=5, embargo_pct=embargo_pct)
    embargo = int(np.ceil(embargo_pct * starts.size))
    splits = list(cv.split(starts.size, starts, ends))
    assert len(splits) == 5
    tested = np.concatenate([test for _, test in splits])
    assert np.array_equal(tested, np.arange(starts.size))
    for train, test in splits:
        test_start, test_end = starts[test].min(), ends[test].max()
        assert np.intersect1d(train, test).size == 0
        before = train[train < test[0]]
        after = train[train > test[-1]]
        if before.size:
            assert ends[before].max() < test_start, "Look-ahead bias detected!"
        if after.size:
            assert starts[after].min() > test_end
            assert after.min() > test[-1] + embargo
        # nothing is dropped that did not need to be
        expected_before = np.flatnonzero(ends[: test[0]] < test_start)
        assert np.array_equal(before, expected_before)


def test_purged_cv_walk_forward_only_uses_the_past():
    starts, ends = _events(300)
    for train, test in PurgedWalkForwardCV(n_splits=3, train_after_test=False).split(np.zeros((300, 2)), starts, ends):
        assert (train < test[0]).all()


def test_purged_cv_rejects_bad_times():
    starts, ends = _events(50)
    cv = PurgedWalkForwardCV(n_splits=5)
    with pytest.raises(ValueError, match="end_times < event_start_times"):
        next(cv.split(50, starts, starts - np.timedelta64(1, "D")))
    with pytest.raises(ValueError, match="sorted"):
        next(cv.split(50, starts[::-1], ends[::-1]))
    with pytest.raises(ValueError, match="shape"):
        next(cv.split(40, starts, ends))


@pytest.mark.parametrize("max_train_size", [None, 250])
def test_walk_forward_splitter_gap_guarantee(max_train_size):
    splitter = WalkForwardSplitter(n_splits=4, train_min=200, test_size=50, gap=7, max_train_size=max_train_size)
    splits = list(splitter.split(500))
    assert len(splits) == 4
    for k, (train, test) in enumerate(splits):
        assert train.max() + 7 < test.min()
        assert test.size == 50
        assert train.size >= 200
        if max_train_size:
            assert train.size <= max_train_size
        else:
            assert train[0] == 0
    assert splits[-1][1][-1] == 499
    with pytest.raises(ValueError, match="too small"):
        list(WalkForwardSplitter(n_splits=5, train_min=300, test_size=50, gap=10).split(500))


def test_walk_forward_optimize_selects_best_in_sample_and_reports_out_of_sample():
    signal = np.linspace(0, 1, 400)

    def evaluate(params, train_idx):
        return -abs(params["threshold"] - signal[train_idx].mean())

    def test_eval(params, test_idx):
        return {"error": abs(params["threshold"] - signal[test_idx].mean()), "n": float(test_idx.size)}

    splitter = WalkForwardSplitter(n_splits=3, train_min=100, test_size=50, gap=5)
    grid = {"threshold": [0.1, 0.2, 0.3, 0.4], "unused": ["a"]}
    result = walk_forward_optimize(grid, evaluate, test_eval, splitter, n_samples=400)
    assert result.height == 3
    assert result["fold"].to_list() == [0, 1, 2]
    for row in result.iter_rows(named=True):
        train_mean = signal[row["train_start"]: row["train_end"] + 1].mean()
        best = min(grid["threshold"], key=lambda value: abs(value - train_mean))
        assert row["param_threshold"] == best
        assert json.loads(row["best_params"]) == {"threshold": best, "unused": "a"}
        assert row["train_end"] + 5 < row["test_start"]
        assert row["test_n"] == 50.0
    candidates = [{"threshold": 0.9}, {"threshold": 0.2}]
    purged = walk_forward_optimize(
        candidates, evaluate, test_eval, PurgedWalkForwardCV(n_splits=4), 400,
        split_kwargs={"event_start_times": np.arange(400), "event_end_times": np.arange(400) + 3},
    )
    assert purged.height == 4
    assert set(purged["param_threshold"]) <= {0.9, 0.2}
