"""Value at Risk: parametric with marginal / component decomposition, historical VaR and CVaR."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from quant_lib._lazy import LazyModule
from quant_lib.portfolio._validation import as_covariance, as_returns_matrix, as_vector

special = LazyModule("scipy.special")


class ComponentVaR(NamedTuple):
    """total VaR (money), marginal VaR dVaR/dw (per unit of weight, fraction of value), component VaR
    (money, sums to total)."""

    total: float
    marginal: np.ndarray
    component: np.ndarray


def _z(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence}")
    return float(special.ndtri(confidence))


def parametric_var(
    weights: np.ndarray, cov: np.ndarray, confidence: float = 0.95, portfolio_value: float = 1.0
) -> float:
    """Gaussian VaR = z_c sqrt(w'Sigma w) V (z_0.95 = 1.645), a positive loss amount."""
    matrix = as_covariance(cov)
    w = as_vector(weights, matrix.shape[0], "weights")
    return _z(confidence) * float(np.sqrt(max(w @ matrix @ w, 0.0))) * portfolio_value


def component_var(
    weights: np.ndarray, cov: np.ndarray, confidence: float = 0.95, portfolio_value: float = 1.0
) -> ComponentVaR:
    """Euler decomposition of parametric VaR (seed 000 section 4.5.2; Jorion, Value at Risk, ch. 7).

    VaR = z sigma_p V; marginal VaR_i = z (Sigma w)_i / sigma_p; component VaR_i = w_i MVaR_i V.
    Components sum to VaR because VaR is homogeneous of degree 1 in w. A zero-risk portfolio gives
    zeros.
    """
    matrix = as_covariance(cov)
    w = as_vector(weights, matrix.shape[0], "weights")
    z = _z(confidence)
    sigma_p = float(np.sqrt(max(w @ matrix @ w, 0.0)))
    if sigma_p == 0.0:
        zeros = np.zeros_like(w)
        return ComponentVaR(0.0, zeros, zeros.copy())
    marginal = z * (matrix @ w) / sigma_p
    return ComponentVaR(z * sigma_p * portfolio_value, marginal, w * marginal * portfolio_value)


def component_var_frame(
    tickers: list[str], weights: np.ndarray, cov: np.ndarray, confidence: float = 0.95, portfolio_value: float = 1.0
) -> pl.DataFrame:
    """`component_var` as a frame: ticker, weight, marginal_var, component_var, pct_contribution."""
    result = component_var(weights, cov, confidence, portfolio_value)
    if len(tickers) != result.marginal.shape[0]:
        raise ValueError(f"{len(tickers)} tickers for {result.marginal.shape[0]} weights")
    share = result.component / result.total if result.total > 0 else np.zeros_like(result.component)
    return pl.DataFrame(
        {
            "ticker": list(tickers),
            "weight": np.asarray(weights, dtype=np.float64),
            "marginal_var": result.marginal,
            "component_var": result.component,
            "pct_contribution": share,
        }
    )


def _tail_returns(returns: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    matrix = as_returns_matrix(returns, min_rows=1)
    if weights is not None:
        matrix = (matrix @ as_vector(weights, matrix.shape[1], "weights"))[:, None]
    return matrix


def historical_var(
    returns: np.ndarray,
    confidence: float = 0.95,
    weights: np.ndarray | None = None,
    portfolio_value: float = 1.0,
) -> float | np.ndarray:
    """Historical-simulation VaR = -q_(1-c)(r) V, with q the empirical quantile taken at an observed
    return (numpy's "lower" method: the floor((1-c)(T-1))-th smallest return).

    `returns`: a series (T) or a T x N matrix; with `weights` the matrix is first reduced to portfolio
    returns R w. Returns a float for a series / portfolio, else one VaR per column.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    matrix = _tail_returns(returns, weights)
    var = -np.quantile(matrix, 1.0 - confidence, axis=0, method="lower") * portfolio_value
    return float(var[0]) if var.shape[0] == 1 else var


def historical_cvar(
    returns: np.ndarray,
    confidence: float = 0.95,
    weights: np.ndarray | None = None,
    portfolio_value: float = 1.0,
) -> float | np.ndarray:
    """Historical expected shortfall: minus the mean of the returns at or below the VaR quantile
    (the same quantile as `historical_var`), times V. Same shapes as `historical_var`."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    matrix = _tail_returns(returns, weights)
    threshold = np.quantile(matrix, 1.0 - confidence, axis=0, method="lower")
    in_tail = matrix <= threshold
    cvar = -(np.where(in_tail, matrix, 0.0).sum(axis=0) / in_tail.sum(axis=0)) * portfolio_value
    return float(cvar[0]) if cvar.shape[0] == 1 else cvar
