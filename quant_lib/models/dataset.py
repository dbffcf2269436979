"""TimeSeriesDataset: sliding windows over a feature matrix, never crossing a ticker boundary.

Sample i with window end e: ``x = features[e - seq_len + 1 : e + 1]`` ([seq_len, n_features]) and
``y = targets[e : e + forecast_horizon]`` ([forecast_horizon]), where ``targets[t]`` is the
forward log return known after bar t (from ``FeaturePipeline``: log(close[t+1] / close[t])).
So y holds the next H one-bar returns after the window; x never sees them. Windows whose
targets are not finite are skipped. Splits over windows: ``WalkForwardSplitter`` /
``PurgedWalkForwardCV`` in ``quant_lib.backtest.validation`` (with ``gap >= forecast_horizon``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from quant_lib.backtest.validation import WalkForwardSplitter

__all__ = ["TimeSeriesDataset", "WalkForwardSplitter", "make_loader"]


class TimeSeriesDataset(Dataset):
    def __init__(
        self,
        features: np.ndarray,
        targets: np.ndarray | None,
        seq_len: int,
        forecast_horizon: int = 1,
        groups: np.ndarray | None = None,
    ) -> None:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [T, n_features], got shape {x.shape}")
        if seq_len < 1 or forecast_horizon < 1:
            raise ValueError(f"seq_len and forecast_horizon must be >= 1, got {seq_len}, {forecast_horizon}")
        if not np.isfinite(x).all():
            bad = np.argwhere(~np.isfinite(x))[0]
            raise ValueError(f"features contain NaN/Inf (first at row {bad[0]}, column {bad[1]})")
        n = x.shape[0]
        y = np.full(n, np.nan, np.float32) if targets is None else np.asarray(targets, dtype=np.float32).reshape(n)
        g = np.zeros(n, np.int64) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
        self.features = torch.from_numpy(x)
        self.seq_len, self.forecast_horizon = seq_len, forecast_horizon
        self.ends, self._y = _window_ends(y, g, seq_len, forecast_horizon, require_targets=targets is not None)
        if self.ends.size == 0:
            raise ValueError(
                f"too few rows ({n}) for windows of seq_len={seq_len} + forecast_horizon={forecast_horizon}"
            )

    def __len__(self) -> int:
        return int(self.ends.size)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        end = int(self.ends[idx])
        return self.features[end - self.seq_len + 1 : end + 1], self._y[idx]

    def targets(self) -> torch.Tensor:
        """All samples' targets [N, forecast_horizon]."""
        return self._y


def _window_ends(
    y: np.ndarray, groups: np.ndarray, seq_len: int, horizon: int, require_targets: bool
) -> tuple[np.ndarray, torch.Tensor]:
    """Window end rows whose window and targets lie inside one group, and their target vectors."""
    n = y.size
    start_of_group = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    group_start = np.repeat(start_of_group, np.diff(np.r_[start_of_group, n]))
    group_end = np.r_[start_of_group[1:], n][np.searchsorted(start_of_group, np.arange(n), side="right") - 1]
    rows = np.arange(n)
    last_needed = rows + (horizon - 1 if require_targets else 0)
    ok = (rows - seq_len + 1 >= group_start) & (last_needed < group_end)
    ends = rows[ok]
    offsets = np.clip(ends[:, None] + np.arange(horizon)[None, :], 0, n - 1)
    targets = y[offsets]
    if require_targets:
        finite = np.isfinite(targets).all(axis=1)
        ends, targets = ends[finite], targets[finite]
    return ends, torch.from_numpy(np.ascontiguousarray(targets, dtype=np.float32))


def make_loader(dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = 0, indices=None) -> DataLoader:
    """A deterministic DataLoader (seeded shuffling, no worker processes) over ``indices`` if given."""
    data = Subset(dataset, list(map(int, indices))) if indices is not None else dataset
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator, num_workers=0)
