"""Leak-free cross-validation for time series with overlapping labels, and walk-forward optimization.

Reference: Lopez de Prado (2018), "Advances in Financial Machine Learning", ch. 7 (purging and
embargo) and ch. 11-12 (walk-forward backtesting).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl


def _n_samples(X: Any) -> int:
    if isinstance(X, (int, np.integer)):
        return int(X)
    if hasattr(X, "shape"):
        return int(X.shape[0])
    return len(X)


class PurgedWalkForwardCV:
    """K contiguous test blocks; training = the other samples minus purged and embargoed ones.

    Each sample ``i`` has a label interval ``[start_i, end_i]`` (``event_start_times``,
    ``event_end_times``, sorted by start). For a test block with window
    ``[test_start, test_end] = [min start, max end]`` of its samples, a training sample is kept iff

    - it ends strictly before the test window starts: ``end_i < test_start`` (purging), or
    - it starts strictly after the test window ends, ``start_i > test_end``, and lies more than
      ``h = ceil(embargo_pct * n_samples)`` positions after the last test sample (embargo);
      with ``train_after_test=False`` no sample after the test block is used (pure walk-forward).

    Vectorized: each split is a handful of numpy comparisons over all samples.
    """

    def __init__(self, n_splits: int = 5, embargo_pct: float = 0.01, train_after_test: bool = True) -> None:
        if n_splits < 2:
            raise ValueError(f"n_splits must be >= 2, got {n_splits}")
        if not 0.0 <= embargo_pct < 1.0:
            raise ValueError(f"embargo_pct must be in [0, 1), got {embargo_pct}")
        self.n_splits = n_splits
        self.embargo_pct = embargo_pct
        self.train_after_test = train_after_test

    def get_n_splits(self, *_: Any, **__: Any) -> int:
        return self.n_splits

    def split(
        self, X: Any, event_start_times: np.ndarray, event_end_times: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (train_idx, test_idx) for each of the ``n_splits`` contiguous test blocks."""
        n = _n_samples(X)
        starts = np.asarray(event_start_times)
        ends = np.asarray(event_end_times)
        if starts.shape != (n,) or ends.shape != (n,):
            raise ValueError(f"event times must have shape ({n},), got {starts.shape} and {ends.shape}")
        if n < self.n_splits:
            raise ValueError(f"n_samples={n} is smaller than n_splits={self.n_splits}")
        if np.any(ends < starts):
            raise ValueError(f"event_end_times < event_start_times at {np.flatnonzero(ends < starts)[:10].tolist()}")
        if np.any(starts[1:] < starts[:-1]):
            raise ValueError("event_start_times must be sorted ascending")
        embargo = int(np.ceil(self.embargo_pct * n))
        index = np.arange(n)
        for test_idx in np.array_split(index, self.n_splits):
            first, last = int(test_idx[0]), int(test_idx[-1])
            test_start = starts[first:last + 1].min()
            test_end = ends[first:last + 1].max()
            before = ends < test_start
            after = (starts > test_end) & (index > last + embargo) if self.train_after_test else np.zeros(n, bool)
            yield np.flatnonzero(before | after), test_idx


class WalkForwardSplitter:
    """Consecutive test blocks at the end of the sample, each trained on data before it, with a gap.

    Fold ``k`` (``k = 0..n_splits-1``) tests on ``[s_k, s_k + test_size)`` with
    ``s_k = n_samples - (n_splits - k) * test_size``, and trains on ``[a_k, s_k - gap)`` where
    ``a_k = 0`` (expanding) or ``max(0, s_k - gap - max_train_size)`` (rolling). Guarantee:
    ``max(train) + gap < min(test)``; every fold has at least ``train_min`` training samples.
    """

    def __init__(
        self, n_splits: int, train_min: int, test_size: int, gap: int = 0, max_train_size: int | None = None
    ) -> None:
        if n_splits < 1 or train_min < 1 or test_size < 1 or gap < 0:
            raise ValueError(
                f"need n_splits >= 1, train_min >= 1, test_size >= 1, gap >= 0; "
                f"got {n_splits}, {train_min}, {test_size}, {gap}"
            )
        if max_train_size is not None and max_train_size < train_min:
            raise ValueError(f"max_train_size={max_train_size} is smaller than train_min={train_min}")
        self.n_splits = n_splits
        self.train_min = train_min
        self.test_size = test_size
        self.gap = gap
        self.max_train_size = max_train_size

    def get_n_splits(self, *_: Any, **__: Any) -> int:
        return self.n_splits

    def split(self, X: Any, *_: Any, **__: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        n = _n_samples(X)
        first_test = n - self.n_splits * self.test_size
        if first_test - self.gap < self.train_min:
            raise ValueError(
                f"n_samples={n} too small: {self.n_splits} test blocks of {self.test_size} plus gap {self.gap} "
                f"leave {first_test - self.gap} training samples < train_min={self.train_min}"
            )
        for k in range(self.n_splits):
            test_start = first_test + k * self.test_size
            train_stop = test_start - self.gap
            train_start = 0 if self.max_train_size is None else max(0, train_stop - self.max_train_size)
            yield np.arange(train_start, train_stop), np.arange(test_start, test_start + self.test_size)


def _candidates(param_grid_or_candidates: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]]) -> list[dict]:
    if isinstance(param_grid_or_candidates, Mapping):
        names = sorted(param_grid_or_candidates)
        values = [list(param_grid_or_candidates[name]) for name in names]
        candidates = [dict(zip(names, combination)) for combination in itertools.product(*values)]
    else:
        candidates = [dict(params) for params in param_grid_or_candidates]
    if not candidates:
        raise ValueError("param_grid_or_candidates yields no candidate")
    return candidates


def walk_forward_optimize(
    param_grid_or_candidates: Mapping[str, Sequence[Any]] | Iterable[Mapping[str, Any]],
    evaluate: Callable[[dict[str, Any], np.ndarray], float],
    test_eval: Callable[[dict[str, Any], np.ndarray], Mapping[str, float]],
    splitter: Any,
    n_samples: int,
    split_kwargs: Mapping[str, Any] | None = None,
) -> pl.DataFrame:
    """Per fold: pick the candidate with the highest in-sample ``evaluate``, then score it out of sample.

    ``param_grid_or_candidates``: a dict of value lists (expanded to their cartesian product) or
    an iterable of parameter dicts. ``evaluate(params, train_idx) -> float`` (higher is better;
    NaN counts as worst, ties go to the first candidate); ``test_eval(params, test_idx) -> dict`` of out-of-sample metrics.
    ``splitter.split(n_samples, **split_kwargs)`` yields (train_idx, test_idx) index arrays.

    Returns one row per fold: fold, train_start, train_end, test_start, test_end (first/last
    index), n_train, n_test, best_params (JSON), train_score, one ``param_<name>`` column per
    parameter and one ``test_<metric>`` column per key returned by ``test_eval``.
    """
    candidates = _candidates(param_grid_or_candidates)
    rows: list[dict[str, Any]] = []
    for fold, (train_idx, test_idx) in enumerate(splitter.split(n_samples, **(split_kwargs or {}))):
        train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
        if train_idx.size == 0 or test_idx.size == 0:
            raise ValueError(f"fold {fold} has an empty train ({train_idx.size}) or test ({test_idx.size}) set")
        scores = np.array([float(evaluate(params, train_idx)) for params in candidates])
        scores = np.where(np.isnan(scores), -np.inf, scores)
        best = candidates[int(np.argmax(scores))]
        row: dict[str, Any] = {
            "fold": fold,
            "train_start": int(train_idx[0]),
            "train_end": int(train_idx[-1]),
            "test_start": int(test_idx[0]),
            "test_end": int(test_idx[-1]),
            "n_train": int(train_idx.size),
            "n_test": int(test_idx.size),
            "best_params": json.dumps(best, sort_keys=True, default=str),
            "train_score": float(scores.max()),
        }
        row.update({f"param_{name}": value for name, value in best.items()})
        row.update({f"test_{name}": float(value) for name, value in dict(test_eval(best, test_idx)).items()})
        rows.append(row)
    return pl.DataFrame(rows)
