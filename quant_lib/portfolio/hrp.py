"""Hierarchical Risk Parity (Lopez de Prado 2016), numpy only."""

from __future__ import annotations

import numpy as np

from quant_lib._lazy import LazyModule
from quant_lib.portfolio._validation import as_covariance, as_returns_matrix

hierarchy = LazyModule("scipy.cluster.hierarchy")
distance = LazyModule("scipy.spatial.distance")

HRP_LINKAGES = ("single", "average", "complete", "ward")


def correlation_distance(corr: np.ndarray) -> np.ndarray:
    """Condensed distance vector d_ij = sqrt(0.5 (1 - rho_ij)), rho clipped to [-1, 1]."""
    condensed = distance.squareform(corr, checks=False)
    return np.sqrt(np.minimum(np.maximum((1.0 - condensed) * 0.5, 0.0), 1.0))


def hrp_order(corr: np.ndarray, linkage: str = "single") -> np.ndarray:
    """Quasi-diagonal order: the dendrogram's leaves (scipy `leaves_list`, the same order as
    `to_tree(...).pre_order()`) after clustering the correlation distance."""
    if linkage not in HRP_LINKAGES:
        raise ValueError(f"linkage must be one of {HRP_LINKAGES}, got {linkage!r}")
    if corr.shape[0] == 1:
        return np.zeros(1, dtype=np.intp)
    return hierarchy.leaves_list(hierarchy.linkage(correlation_distance(corr), method=linkage))


def _block_sums(matrix: np.ndarray) -> np.ndarray:
    """2-D prefix sums P with P[a, b] = matrix[:a, :b].sum()."""
    n = matrix.shape[0]
    prefix = np.zeros((n + 1, n + 1))
    np.cumsum(matrix, axis=0, out=prefix[1:, 1:])
    np.cumsum(prefix[1:, 1:], axis=1, out=prefix[1:, 1:])
    return prefix


def recursive_bisection(cov_ordered: np.ndarray) -> np.ndarray:
    """HRP weights for a covariance already in quasi-diagonal order.

    Each cluster [a, b) of the ordered list splits into halves [a, m) and [m, b), m = a + (b-a)//2
    (Lopez de Prado's list bisection, as in PyPortfolioOpt and skfolio). With inverse-variance weights
    u inside a cluster its variance is V = u' Sigma u / (sum u)^2; the left half gets
    alpha = 1 - V_left / (V_left + V_right), the right half 1 - alpha. All clusters of one level are
    split at once: block sums of diag(1/s^2) Sigma diag(1/s^2) come from 2-D prefix sums.
    """
    n = cov_ordered.shape[0]
    if n == 1:
        return np.ones(1)
    variances = np.diag(cov_ordered)
    bad = np.flatnonzero(~(variances > 0) | ~np.isfinite(variances))
    if bad.size:
        raise ValueError(f"HRP needs positive finite variances; ordered positions {bad.tolist()[:10]} are not")
    inv_var = 1.0 / variances
    prefix = _block_sums(cov_ordered * np.outer(inv_var, inv_var))
    inv_var_sum = np.concatenate(([0.0], np.cumsum(inv_var)))

    def cluster_variance(start: np.ndarray, stop: np.ndarray) -> np.ndarray:
        block = prefix[stop, stop] - prefix[start, stop] - prefix[stop, start] + prefix[start, start]
        return block / (inv_var_sum[stop] - inv_var_sum[start]) ** 2

    weights = np.ones(n)
    starts = np.array([0])
    stops = np.array([n])
    while starts.size:
        mids = starts + (stops - starts) // 2
        left_var = cluster_variance(starts, mids)
        right_var = cluster_variance(mids, stops)
        alpha = 1.0 - left_var / (left_var + right_var)
        child_starts = np.column_stack((starts, mids)).ravel()
        child_stops = np.column_stack((mids, stops)).ravel()
        factors = np.column_stack((alpha, 1.0 - alpha)).ravel()
        lengths = child_stops - child_starts
        covered = np.repeat(child_starts, lengths) + (
            np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        )
        weights[covered] *= np.repeat(factors, lengths)
        splittable = lengths > 1
        starts, stops = child_starts[splittable], child_stops[splittable]
    return weights


def hrp_weights(
    returns: np.ndarray | None,
    linkage: str = "single",
    cov: np.ndarray | None = None,
    corr: np.ndarray | None = None,
) -> np.ndarray:
    """Hierarchical Risk Parity weights (Lopez de Prado 2016, "Building diversified portfolios that
    outperform out of sample", J. Portfolio Management).

    1. Tree clustering of d_ij = sqrt(0.5 (1 - rho_ij)) with scipy linkage (`linkage`: "single"
       as in the paper, or "average", "complete", "ward").
    2. Quasi-diagonalisation: order assets by the dendrogram leaves.
    3. Recursive bisection with inverse-variance cluster weights (see `recursive_bisection`).

    Inputs: `returns` T x N (may be None when `cov` is given); `cov` / `corr` override the sample
    covariance (ddof=1) / the correlation implied by the covariance.
    Output: N long-only weights summing to 1, in the input's column order. Matches PyPortfolioOpt's
    `HRPOpt(...).optimize(linkage)` (weights listed in column order) to floating-point precision.
    As in the paper, the bisection halves the ordered leaf list rather than following the tree, so
    with an unbalanced dendrogram the weights depend on scipy's leaf order (and so on the column
    order); with a balanced one they are permutation-equivariant.
    """
    if cov is None:
        if returns is None:
            raise ValueError("hrp_weights needs returns or cov")
        matrix = as_returns_matrix(returns)
        centered = matrix - matrix.mean(axis=0)
        cov = centered.T @ centered / (matrix.shape[0] - 1)
    else:
        cov = as_covariance(cov)
        if returns is not None and np.shape(returns)[-1] != cov.shape[0]:
            raise ValueError(f"returns has {np.shape(returns)[-1]} columns but cov is {cov.shape[0]} x {cov.shape[0]}")
    n = cov.shape[0]
    if corr is None:
        sd = np.sqrt(np.diag(cov))
        bad = np.flatnonzero(~(sd > 0))
        if bad.size:
            raise ValueError(f"HRP needs positive variances; columns {bad.tolist()[:10]} have zero variance")
        corr = cov / np.outer(sd, sd)
    else:
        corr = as_covariance(corr, n_assets=n, name="corr")
    order = hrp_order(corr, linkage)
    ordered_weights = recursive_bisection(cov[np.ix_(order, order)])
    weights = np.empty(n)
    weights[order] = ordered_weights
    return weights
