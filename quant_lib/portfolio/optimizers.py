"""Minimum variance, risk parity, equal weight and `optimize_portfolio`, the one entry point with
the fallbacks of seed 004 section 8.5."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from quant_lib.portfolio._validation import as_covariance, as_returns_matrix, as_vector
from quant_lib.portfolio.black_litterman import black_litterman
from quant_lib.portfolio.constraints import cap_weights
from quant_lib.portfolio.covariance import covariance_matrix
from quant_lib.portfolio.hrp import HRP_LINKAGES, hrp_weights
from quant_lib.portfolio.kelly import KellyOptimizer, MeanVarianceOptimizer, PortfolioOptimizationError

logger = logging.getLogger(__name__)

METHODS = ("hrp", "kelly", "mean_variance", "min_variance", "risk_parity", "equal_weight", "black_litterman")
_ALIASES = {"mvo": "mean_variance", "bl": "black_litterman", "erc": "risk_parity", "equal": "equal_weight"}
_NUMERICAL_FAILURES = (PortfolioOptimizationError, np.linalg.LinAlgError, ValueError, ArithmeticError)


@dataclass(frozen=True)
class OptimizationResult:
    """weights (N, finite), the method that produced them, and why the requested one was not used."""

    weights: np.ndarray
    method_used: str
    fallback_reason: str | None


def equal_weights(n_assets: int) -> np.ndarray:
    """1/N for each of `n_assets` assets."""
    if n_assets < 1:
        raise ValueError(f"n_assets must be >= 1, got {n_assets}")
    return np.full(n_assets, 1.0 / n_assets)


@lru_cache(maxsize=16)
def _cached_mean_variance(n_assets: int, long_only: bool, max_weight: float | None, max_leverage: float | None,
                          n_factors: int | None) -> MeanVarianceOptimizer:
    return MeanVarianceOptimizer(n_assets, long_only=long_only, max_weight=max_weight, max_leverage=max_leverage,
                                 n_factors=n_factors)


@lru_cache(maxsize=16)
def _cached_kelly(n_assets: int, max_leverage: float, long_only: bool, fraction: float, max_weight: float | None,
                  n_factors: int | None) -> KellyOptimizer:
    return KellyOptimizer(n_assets, max_leverage=max_leverage, long_only=long_only, fraction=fraction,
                          max_weight=max_weight, n_factors=n_factors)


def min_variance_weights(cov: np.ndarray, long_only: bool = True, max_weight: float | None = None) -> np.ndarray:
    """Minimum-variance weights: min w'Sigma w s.t. sum w = 1 (w >= 0, w <= max_weight when given),
    solved with a cached compiled `MeanVarianceOptimizer` and mu = 0."""
    matrix = as_covariance(cov)
    optimizer = _cached_mean_variance(matrix.shape[0], long_only, max_weight, None, None)
    return optimizer.solve(None, matrix)


def risk_parity_weights(
    cov: np.ndarray, risk_budget: np.ndarray | None = None, tol: float = 1e-13, max_iter: int = 100
) -> np.ndarray:
    """Equal-risk-contribution (or risk-budget) long-only weights.

    Solves Spinu's (2013, "An algorithm for computing risk parity weights") strictly convex problem
    min_x 0.5 x'Sigma x - sum_i b_i ln x_i by damped Newton steps; w = x / sum x then has risk
    contributions w_i (Sigma w)_i / w'Sigma w = b_i (b defaults to 1/N and is rescaled to sum 1).
    Stops when max_i |x_i (Sigma x)_i - b_i| < tol (the optimality condition; x'Sigma x = 1 there).
    Raises PortfolioOptimizationError if it does not converge.
    """
    matrix = as_covariance(cov)
    n = matrix.shape[0]
    budget = np.full(n, 1.0 / n) if risk_budget is None else as_vector(risk_budget, n, "risk_budget")
    if (budget <= 0).any():
        raise ValueError("risk_budget entries must be positive")
    budget = budget / budget.sum()
    variances = np.diag(matrix)
    if (variances <= 0).any():
        raise PortfolioOptimizationError(
            f"risk parity needs positive variances; zero at {np.flatnonzero(variances <= 0).tolist()[:10]}"
        )

    def objective(x: np.ndarray) -> float:
        return 0.5 * x @ matrix @ x - budget @ np.log(x)

    x = 1.0 / np.sqrt(variances)
    x /= np.sqrt(x @ matrix @ x)
    value = objective(x)
    for _ in range(max_iter):
        sigma_x = matrix @ x
        if np.abs(x * sigma_x - budget).max() < tol:
            return x / x.sum()
        gradient = sigma_x - budget / x
        hessian = matrix + np.diag(budget / x**2)
        step = np.linalg.solve(hessian, -gradient)
        decrement = -gradient @ step
        if decrement < 1e-30:
            return x / x.sum()
        ratio = np.where(step < 0, -x / np.where(step < 0, step, -1.0), np.inf).min()
        t = min(1.0, 0.99 * ratio)
        while True:
            candidate = x + t * step
            candidate_value = objective(candidate)
            if candidate_value <= value - 1e-4 * t * decrement or t < 1e-12:
                break
            t *= 0.5
        x, value = candidate, candidate_value
    raise PortfolioOptimizationError(f"risk parity Newton did not converge in {max_iter} iterations")


def _resolve_method(method: str) -> str:
    name = _ALIASES.get(method.lower(), method.lower())
    if name not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS} or aliases {sorted(_ALIASES)}")
    return name


def optimize_portfolio(
    method: str,
    returns: np.ndarray,
    expected_returns: np.ndarray | None = None,
    *,
    cov: np.ndarray | None = None,
    cov_method: str | None = None,
    linkage: str = "single",
    long_only: bool = True,
    max_leverage: float | None = None,
    fraction: float = 0.5,
    risk_aversion: float | None = None,
    max_weight: float | None = None,
    sector_matrix: np.ndarray | None = None,
    sector_caps: np.ndarray | None = None,
    beta_band: tuple[float, float] | None = None,
    betas: np.ndarray | None = None,
    scores: np.ndarray | None = None,
    market_weights: np.ndarray | None = None,
    tau: float = 0.05,
    view_confidence: float | np.ndarray = 0.5,
    information_coefficient: float = 0.1,
    risk_budget: np.ndarray | None = None,
    n_factors: int | None = None,
    zero_tol: float = 1e-8,
) -> OptimizationResult:
    """Portfolio weights by `method`, never NaN.

    Inputs: `returns` T x N (per-period returns, columns = assets); `expected_returns` (N) for
    "kelly" / "mean_variance" (default: the sample mean of `returns`); `cov` overrides the estimate
    from `cov_method` ("sample", "ledoit_wolf", "ledoit_wolf_identity", "ewma"; default "sample" for
    hrp / risk_parity, "ledoit_wolf" otherwise). Methods: "hrp" (`hrp_weights`, `linkage`),
    "kelly" (`KellyOptimizer`: max_leverage (default 1), fraction, long_only, max_weight,
    sector_matrix / sector_caps, beta_band / betas, n_factors), "mean_variance"
    (`MeanVarianceOptimizer`, risk_aversion default 1, max_leverage = gross cap when long-short),
    "min_variance", "risk_parity" (risk_budget), "equal_weight",
    "black_litterman" (scores, market_weights, tau, view_confidence, information_coefficient,
    risk_aversion default 2.5). `max_weight` is a constraint for kelly / mean_variance / min_variance
    and a water-filling cap (`cap_weights`) for the others.

    Fallbacks (seed 004 section 8.5): when the method raises (infeasible, not converged, singular
    covariance) or returns non-finite weights, try "hrp", then "min_variance", then "equal_weight";
    when the weights are all ~0 (sum |w| < zero_tol), use equal weight 1/N. `fallback_reason` records
    each failure. Kelly weights are fractions of capital and may sum to less than 1 (cash); the
    others sum to 1.
    Bad inputs (shapes, NaN in returns, unknown method) raise ValueError instead.
    """
    requested = _resolve_method(method)
    matrix = as_returns_matrix(returns)
    n = matrix.shape[1]
    if linkage not in HRP_LINKAGES:
        raise ValueError(f"linkage must be one of {HRP_LINKAGES}, got {linkage!r}")
    mu = matrix.mean(axis=0) if expected_returns is None else as_vector(expected_returns, n, "expected_returns")
    if cov is not None:
        cov = as_covariance(cov, n_assets=n)
    if sector_matrix is not None:
        sector_matrix = np.asarray(sector_matrix, dtype=np.float64)
        if sector_matrix.ndim != 2 or sector_matrix.shape[1] != n or sector_caps is None:
            raise ValueError(f"sector_matrix must be n_sectors x {n} and come with sector_caps")
        sector_caps = as_vector(sector_caps, sector_matrix.shape[0], "sector_caps")
    if beta_band is not None:
        if betas is None:
            raise ValueError("beta_band needs betas")
        betas = as_vector(betas, n, "betas")
    if scores is not None and np.asarray(scores).reshape(-1).shape[0] != n:
        raise ValueError(f"scores must have {n} entries")
    covariances: dict[str, np.ndarray] = {}

    def covariance_for(name: str) -> np.ndarray:
        if cov is not None:
            return cov
        chosen = cov_method or ("sample" if name in ("hrp", "risk_parity") else "ledoit_wolf")
        if chosen not in covariances:
            covariances[chosen] = covariance_matrix(matrix, chosen)
        return covariances[chosen]

    def capped(weights: np.ndarray) -> np.ndarray:
        return weights if max_weight is None else cap_weights(weights, max_weight)

    def compute(name: str) -> np.ndarray:
        if name == "equal_weight":
            return capped(equal_weights(n))
        if name == "hrp":
            return capped(hrp_weights(matrix, linkage=linkage, cov=covariance_for(name)))
        if name == "risk_parity":
            return capped(risk_parity_weights(covariance_for(name), risk_budget))
        if name == "min_variance":
            return min_variance_weights(covariance_for(name), long_only=long_only, max_weight=max_weight)
        if name == "black_litterman":
            result = black_litterman(
                covariance_for(name), scores=scores, market_weights=market_weights,
                risk_aversion=2.5 if risk_aversion is None else risk_aversion, tau=tau,
                information_coefficient=information_coefficient, confidence=view_confidence, long_only=long_only,
            )
            return capped(result.weights)
        custom = sector_matrix is not None or beta_band is not None
        if name == "kelly":
            kelly_leverage = 1.0 if max_leverage is None else max_leverage
            if custom:
                optimizer = KellyOptimizer(n, kelly_leverage, long_only, sector_matrix, sector_caps, beta_band,
                                           fraction=fraction, max_weight=max_weight, n_factors=n_factors)
            else:
                optimizer = _cached_kelly(n, kelly_leverage, long_only, fraction, max_weight, n_factors)
            return optimizer.solve(mu, covariance_for(name), betas=betas)
        if custom:
            optimizer = MeanVarianceOptimizer(n, long_only, max_weight, sector_matrix, sector_caps, beta_band,
                                              max_leverage=max_leverage, n_factors=n_factors)
        else:
            optimizer = _cached_mean_variance(n, long_only, max_weight, max_leverage, n_factors)
        return optimizer.solve(mu, covariance_for(name), 1.0 if risk_aversion is None else risk_aversion,
                               betas=betas)

    chain = [requested] + [m for m in ("hrp", "min_variance") if m != requested] + ["equal_weight"]
    reasons: list[str] = []
    for name in dict.fromkeys(chain):
        try:
            weights = np.asarray(compute(name), dtype=np.float64)
        except _NUMERICAL_FAILURES as exc:
            reasons.append(f"{name} failed: {exc}")
            logger.warning("optimizer %s failed (%s); falling back", name, exc)
            continue
        if weights.shape != (n,) or not np.isfinite(weights).all():
            reasons.append(f"{name} returned non-finite weights")
            continue
        if np.abs(weights).sum() < zero_tol:
            reasons.append(f"{name} weights are all near zero")
            logger.warning("optimizer %s gave all-zero weights; using equal weight", name)
            try:
                fallback = capped(equal_weights(n))
            except ValueError:
                fallback = equal_weights(n)
            return OptimizationResult(fallback, "equal_weight", "; ".join(reasons))
        return OptimizationResult(weights, name, "; ".join(reasons) or None)
    return OptimizationResult(equal_weights(n), "equal_weight", "; ".join(reasons))
