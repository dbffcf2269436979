"""Input checks shared by the portfolio, risk and execution functions."""

from __future__ import annotations

import numpy as np


def as_returns_matrix(returns: np.ndarray, name: str = "returns", min_rows: int = 2) -> np.ndarray:
    """`returns` as a finite float64 T x N array (a 1-D series becomes T x 1)."""
    matrix = np.asarray(returns, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a T x N array, got shape {matrix.shape}")
    if matrix.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (periods), got {matrix.shape[0]}")
    if matrix.shape[1] < 1:
        raise ValueError(f"{name} has no columns (assets)")
    bad = ~np.isfinite(matrix)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"{name} contains NaN/inf in columns {sorted(set(cols.tolist()))[:10]} "
            f"(first rows {sorted(set(rows.tolist()))[:10]})"
        )
    return matrix


def as_covariance(cov: np.ndarray, n_assets: int | None = None, name: str = "cov") -> np.ndarray:
    """`cov` as a finite, symmetric float64 N x N array."""
    matrix = np.asarray(cov, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"{name} must be a square N x N array, got shape {matrix.shape}")
    if n_assets is not None and matrix.shape[0] != n_assets:
        raise ValueError(f"{name} is {matrix.shape[0]} x {matrix.shape[0]} but there are {n_assets} assets")
    if not np.isfinite(matrix).all():
        raise ValueError(f"{name} contains NaN/inf")
    scale = max(float(np.abs(matrix).max()), 1e-300)
    if not np.allclose(matrix, matrix.T, rtol=0.0, atol=1e-10 * scale):
        raise ValueError(f"{name} is not symmetric")
    if (np.diag(matrix) < 0).any():
        raise ValueError(f"{name} has negative variances at {np.flatnonzero(np.diag(matrix) < 0).tolist()[:10]}")
    return matrix


def as_vector(values: np.ndarray, n: int, name: str) -> np.ndarray:
    """`values` as a finite float64 vector of length n."""
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.shape[0] != n:
        raise ValueError(f"{name} has length {vector.shape[0]}, expected {n}")
    if not np.isfinite(vector).all():
        raise ValueError(f"{name} contains NaN/inf at {np.flatnonzero(~np.isfinite(vector)).tolist()[:10]}")
    return vector
