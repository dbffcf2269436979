"""Multivariate Kelly and mean-variance as parametrised (DPP) cvxpy problems: compile once, re-solve.

Both maximise  w'mu - (gamma / 2) w'Sigma w.  The risk term is written so that the problem is DPP
(disciplined parametrised programming) and cvxpy caches its canonicalisation: a re-solve only
rewrites parameter values and calls the solver (warm-started where the solver supports it).

Two risk models, fixed at construction:
- exact (`n_factors=None`): w'Sigma w = ||L'w||^2 with L (N x N, L L' = Sigma) a `cp.Parameter`;
- factor (`n_factors=k`): w'Sigma w = ||B'w||^2 + ||d o w||^2 with loadings B (N x k) and specific
  volatilities d (N) as parameters, Sigma = B B' + diag(d^2). Much faster for large N because the
  solver's KKT system no longer has a dense N x N block (Boyd et al. 2017, "Multi-period trading via
  convex optimization", section 4.2). Pass a real factor model, or a covariance, which is turned into
  a statistical one by `statistical_factor_model`.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from quant_lib._lazy import LazyModule
from quant_lib.portfolio._validation import as_covariance, as_vector

cp = LazyModule("cvxpy")
scipy_linalg = LazyModule("scipy.linalg")

SOLVER_PREFERENCE = ("CLARABEL", "OSQP", "SCS")
# Weight errors scale like sqrt(objective gap), so the default 1e-8 gaps leave ~1e-4 noise in weights.
_TIGHT_TOLERANCES: dict[str, dict[str, float]] = {
    "CLARABEL": {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11, "tol_ktratio": 1e-9},
    "OSQP": {"eps_abs": 1e-9, "eps_rel": 1e-9, "max_iter": 100_000},
}


class PortfolioOptimizationError(RuntimeError):
    """The optimiser did not return a usable solution (infeasible, unbounded, not converged)."""


def covariance_factor(cov: np.ndarray) -> np.ndarray:
    """A square root L with L L' = Sigma: Cholesky when Sigma is positive definite, otherwise the
    eigen square root V diag(sqrt(max(lambda, 0))) (singular Sigma, e.g. sample covariance with T < N)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        return eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))


def statistical_factor_model(cov: np.ndarray, n_factors: int) -> tuple[np.ndarray, np.ndarray]:
    """Principal-component risk model Sigma ~ B B' + diag(s).

    B = V_k diag(sqrt(lambda_k)) from the k largest eigenpairs; s = diag(Sigma) - diag(B B') clipped
    at 0, so every asset keeps its own variance. Returns (loadings N x k, specific variances N).
    """
    matrix = as_covariance(cov)
    n = matrix.shape[0]
    if not 1 <= n_factors <= n:
        raise ValueError(f"n_factors must be in [1, {n}], got {n_factors}")
    eigenvalues, eigenvectors = scipy_linalg.eigh(
        matrix, subset_by_index=[n - n_factors, n - 1], check_finite=False, driver="evr"
    )
    loadings = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    specific = np.clip(np.diag(matrix) - np.einsum("ik,ik->i", loadings, loadings), 0.0, None)
    return loadings, specific


def default_solver() -> str:
    """The first installed solver among CLARABEL, OSQP, SCS."""
    installed = set(cp.installed_solvers())
    for name in SOLVER_PREFERENCE:
        if name in installed:
            return name
    raise PortfolioOptimizationError(f"none of {SOLVER_PREFERENCE} is installed (have {sorted(installed)})")



def _weight_constraints(w, budget: str, gross_cap: float | None, long_only: bool, max_weight: float | None) -> list:
    """Sign, budget (sum w = 1, or gross <= cap) and per-name cap constraints on `w`."""
    constraints: list = []
    if long_only:
        constraints.append(w >= 0)
        gross = cp.sum(w)
    else:
        gross = cp.norm1(w)
    if budget == "eq":
        constraints.append(cp.sum(w) == 1.0)
        if not long_only and gross_cap is not None:
            constraints.append(gross <= gross_cap)
    elif budget == "leq":
        constraints.append(gross <= gross_cap)
    else:
        raise ValueError(f"budget must be 'eq' or 'leq', got {budget!r}")
    if max_weight is not None:
        if not max_weight > 0:
            raise ValueError(f"max_weight must be positive, got {max_weight}")
        constraints.append(w <= max_weight if long_only else cp.abs(w) <= max_weight)
    return constraints


def _sector_constraints(w, n_assets: int, sector_matrix: np.ndarray | None, sector_caps: np.ndarray | None) -> list:
    """S w <= caps (S: n_sectors x n_assets membership), or nothing without sectors."""
    if (sector_matrix is None) != (sector_caps is None):
        raise ValueError("sector_matrix and sector_caps must be given together")
    if sector_matrix is None:
        return []
    sector_matrix = np.asarray(sector_matrix, dtype=np.float64)
    sector_caps = np.asarray(sector_caps, dtype=np.float64).reshape(-1)
    if sector_matrix.ndim != 2 or sector_matrix.shape[1] != n_assets:
        raise ValueError(f"sector_matrix must be n_sectors x {n_assets}, got {sector_matrix.shape}")
    if sector_caps.shape[0] != sector_matrix.shape[0]:
        raise ValueError(f"sector_caps has {sector_caps.shape[0]} entries for {sector_matrix.shape[0]} sectors")
    return [sector_matrix @ w <= sector_caps]

class _QuadraticUtilityProblem:
    """max w'mu - (gamma/2) w'Sigma w over w, with the constraints fixed at construction.

    budget "leq": gross exposure <= gross_cap (Kelly); "eq": sum w = 1 and, long-short,
    gross <= gross_cap. gamma enters through the parameter values (sqrt(gamma) L, sqrt(gamma) B,
    sqrt(gamma) d), which keeps the problem DPP.
    """

    def __init__(
        self,
        n_assets: int,
        budget: str,
        gross_cap: float | None,
        long_only: bool,
        max_weight: float | None,
        sector_matrix: np.ndarray | None,
        sector_caps: np.ndarray | None,
        beta_band: tuple[float, float] | None,
        n_factors: int | None,
        solver: str | None,
        solver_options: dict[str, Any] | None,
    ) -> None:
        if n_assets < 1:
            raise ValueError(f"n_assets must be >= 1, got {n_assets}")
        if gross_cap is not None and not gross_cap > 0:
            raise ValueError(f"max_leverage must be positive, got {gross_cap}")
        if budget == "leq" and gross_cap is None:
            raise ValueError("Kelly needs a max_leverage")
        if n_factors is not None and not 1 <= n_factors <= n_assets:
            raise ValueError(f"n_factors must be in [1, {n_assets}], got {n_factors}")
        self.n_assets = n_assets
        self.n_factors = n_factors
        self.solver = solver or default_solver()
        self.solver_options = {**_TIGHT_TOLERANCES.get(self.solver, {}), **(solver_options or {})}
        self._lock = threading.Lock()
        self.weights = cp.Variable(n_assets, name="weights")
        self.expected_returns = cp.Parameter(n_assets, name="expected_returns")
        w = self.weights
        objective = cp.Maximize(self.expected_returns @ w - 0.5 * self._risk_term(n_assets, n_factors))
        constraints = _weight_constraints(w, budget, gross_cap, long_only, max_weight)
        constraints += _sector_constraints(w, n_assets, sector_matrix, sector_caps)
        self.betas: cp.Parameter | None = None
        if beta_band is not None:
            low, high = (float(b) for b in beta_band)
            if low > high:
                raise ValueError(f"beta_band lower bound {low} exceeds upper bound {high}")
            self.betas = cp.Parameter(n_assets, name="betas")
            constraints += [self.betas @ w >= low, self.betas @ w <= high]
        self.problem = cp.Problem(objective, constraints)
        if not self.problem.is_dpp():
            raise AssertionError("portfolio problem is not DPP")

    def _risk_term(self, n_assets: int, n_factors: int | None):
        """w' Sigma w as ||C' w||^2 with Sigma = C C' (full), or ||B' w||^2 + ||s * w||^2 (factor model)."""
        w = self.weights
        if n_factors is None:
            self.cov_factor = cp.Parameter((n_assets, n_assets), name="cov_factor")
            return cp.sum_squares(self.cov_factor.T @ w)
        self.loadings = cp.Parameter((n_assets, n_factors), name="factor_loadings")
        self.specific_sd = cp.Parameter(n_assets, nonneg=True, name="specific_sd")
        return cp.sum_squares(self.loadings.T @ w) + cp.sum_squares(cp.multiply(self.specific_sd, w))

    def _risk_values(
        self,
        cov: np.ndarray | None,
        cov_factor: np.ndarray | None,
        factor_loadings: np.ndarray | None,
        specific_var: np.ndarray | None,
    ) -> tuple[np.ndarray, ...]:
        n = self.n_assets
        if self.n_factors is None:
            if cov_factor is not None:
                factor = np.asarray(cov_factor, dtype=np.float64)
                if factor.shape != (n, n) or not np.isfinite(factor).all():
                    raise ValueError(f"cov_factor must be a finite {n} x {n} array, got shape {factor.shape}")
                return (factor,)
            if cov is None:
                raise ValueError("solve needs cov or cov_factor")
            return (covariance_factor(as_covariance(cov, n_assets=n)),)
        if factor_loadings is not None:
            loadings = np.asarray(factor_loadings, dtype=np.float64)
            if loadings.shape != (n, self.n_factors) or not np.isfinite(loadings).all():
                raise ValueError(
                    f"factor_loadings must be a finite {n} x {self.n_factors} array, got shape {loadings.shape}"
                )
            if specific_var is None:
                raise ValueError("factor_loadings need specific_var")
            specific = as_vector(specific_var, n, "specific_var")
            if (specific < 0).any():
                raise ValueError(f"specific_var is negative at {np.flatnonzero(specific < 0).tolist()[:10]}")
            return loadings, np.sqrt(specific)
        if cov is None:
            raise ValueError("solve needs cov or factor_loadings + specific_var")
        loadings, specific = statistical_factor_model(cov, self.n_factors)
        return loadings, np.sqrt(specific)

    def solve(
        self,
        expected_returns: np.ndarray,
        cov: np.ndarray | None = None,
        cov_factor: np.ndarray | None = None,
        factor_loadings: np.ndarray | None = None,
        specific_var: np.ndarray | None = None,
        risk_aversion: float = 1.0,
        betas: np.ndarray | None = None,
    ) -> np.ndarray:
        n = self.n_assets
        mu = as_vector(expected_returns, n, "expected_returns")
        risk_values = self._risk_values(cov, cov_factor, factor_loadings, specific_var)
        # Dividing the objective by the mean variance s leaves the argmax unchanged and brings the
        # problem data to O(1), which the solvers' absolute tolerances need (daily variances ~1e-4).
        mean_variance = sum(float(np.square(v).sum()) for v in risk_values) / n
        objective_scale = 1.0 / mean_variance if mean_variance > 0 else 1.0
        mu = mu * objective_scale
        risk_values = [v * np.sqrt(risk_aversion * objective_scale) for v in risk_values]
        beta_values = None
        if self.betas is not None:
            if betas is None:
                raise ValueError("this optimiser has a beta band: pass betas")
            beta_values = as_vector(betas, n, "betas")
        with self._lock:
            self.expected_returns.value = mu
            if self.n_factors is None:
                self.cov_factor.value = risk_values[0]
            else:
                self.loadings.value, self.specific_sd.value = risk_values
            if self.betas is not None:
                self.betas.value = beta_values
            try:
                self.problem.solve(solver=self.solver, warm_start=True, **self.solver_options)
            except cp.error.SolverError as exc:
                raise PortfolioOptimizationError(f"{self.solver} failed: {exc}") from exc
            status = self.problem.status
            value = self.weights.value
        if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE) or value is None:
            raise PortfolioOptimizationError(f"portfolio problem status {status!r}")
        weights = np.asarray(value, dtype=np.float64).copy()
        if not np.isfinite(weights).all():
            raise PortfolioOptimizationError("solver returned non-finite weights")
        return weights


class KellyOptimizer:
    """Multivariate Kelly (seed 000 section 4.4.3): max E[log W] ~ w'mu - 0.5 w'Sigma w.

    Constraints: gross leverage sum|w| <= max_leverage (sum w when long-only); w >= 0 when long-only;
    optional cap |w_i| <= max_weight; sector exposures sector_matrix @ w <= sector_caps
    (sector_matrix: n_sectors x n_assets, 1 where the asset belongs to the sector); optional
    portfolio-beta band beta_band[0] <= betas'w <= beta_band[1] (betas passed to `solve`).
    The full-Kelly solution is multiplied by `fraction` (0.5 = half Kelly) after solving, as in
    the seed, so the constraints bind on the full-Kelly weights (half Kelly has half the leverage,
    sector exposure and beta).

    Build once per universe size; `solve` re-solves the compiled problem. `mu` are expected excess
    returns per period and Sigma their covariance over the same period. `n_factors=None` uses the exact
    covariance; `n_factors=k` a k-factor risk model (see module docstring): for 500 assets the exact
    model re-solves in about 0.5 s on 2 cores and a 20-factor model in about 40 ms
    (benchmarks/bench_portfolio.py). Output weights are
    fractions of capital summing to at most fraction * max_leverage (the rest is cash).
    """

    def __init__(
        self,
        n_assets: int,
        max_leverage: float = 1.0,
        long_only: bool = True,
        sector_matrix: np.ndarray | None = None,
        sector_caps: np.ndarray | None = None,
        beta_band: tuple[float, float] | None = None,
        fraction: float = 0.5,
        max_weight: float | None = None,
        n_factors: int | None = None,
        solver: str | None = None,
        solver_options: dict[str, Any] | None = None,
    ) -> None:
        if not 0 < fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {fraction}")
        self.n_assets = n_assets
        self.fraction = fraction
        self.max_leverage = max_leverage
        self.long_only = long_only
        self._problem = _QuadraticUtilityProblem(
            n_assets, "leq", max_leverage, long_only, max_weight, sector_matrix, sector_caps, beta_band,
            n_factors, solver, solver_options,
        )
        self.solver = self._problem.solver

    @property
    def problem(self) -> cp.Problem:
        """The compiled cvxpy problem (full Kelly, before the fraction)."""
        return self._problem.problem

    def solve(
        self,
        expected_returns: np.ndarray,
        cov: np.ndarray | None = None,
        *,
        cov_factor: np.ndarray | None = None,
        factor_loadings: np.ndarray | None = None,
        specific_var: np.ndarray | None = None,
        betas: np.ndarray | None = None,
    ) -> np.ndarray:
        """Fractional-Kelly weights (N,) for expected excess returns `mu` (N,) and either `cov`
        (N x N), `cov_factor` L (N x N, L L' = Sigma; exact model) or `factor_loadings` (N x k) +
        `specific_var` (N; factor model). Raises PortfolioOptimizationError when not solved."""
        weights = self._problem.solve(expected_returns, cov, cov_factor, factor_loadings, specific_var, 1.0, betas)
        if self.long_only:
            weights = np.clip(weights, 0.0, None)
        return weights * self.fraction


class MeanVarianceOptimizer:
    """Markowitz mean-variance: max w'mu - (risk_aversion / 2) w'Sigma w subject to sum w = 1,
    w >= 0 when long-only (gross sum|w| <= max_leverage otherwise, if given), and the optional per-asset cap,
    sector caps and beta band of `KellyOptimizer`. With mu = 0 it is the minimum-variance portfolio.
    Compile once, `solve(mu, cov, risk_aversion)` re-solves."""

    def __init__(
        self,
        n_assets: int,
        long_only: bool = True,
        max_weight: float | None = None,
        sector_matrix: np.ndarray | None = None,
        sector_caps: np.ndarray | None = None,
        beta_band: tuple[float, float] | None = None,
        max_leverage: float | None = None,
        n_factors: int | None = None,
        solver: str | None = None,
        solver_options: dict[str, Any] | None = None,
    ) -> None:
        self.n_assets = n_assets
        self.long_only = long_only
        self._problem = _QuadraticUtilityProblem(
            n_assets, "eq", max_leverage, long_only, max_weight, sector_matrix, sector_caps, beta_band,
            n_factors, solver, solver_options,
        )
        self.solver = self._problem.solver

    @property
    def problem(self) -> cp.Problem:
        return self._problem.problem

    def solve(
        self,
        expected_returns: np.ndarray | None,
        cov: np.ndarray | None = None,
        risk_aversion: float = 1.0,
        *,
        cov_factor: np.ndarray | None = None,
        factor_loadings: np.ndarray | None = None,
        specific_var: np.ndarray | None = None,
        betas: np.ndarray | None = None,
    ) -> np.ndarray:
        """Weights (N,) summing to 1. `expected_returns=None` means mu = 0 (minimum variance)."""
        if not risk_aversion > 0:
            raise ValueError(f"risk_aversion must be positive, got {risk_aversion}")
        mu = np.zeros(self.n_assets) if expected_returns is None else expected_returns
        weights = self._problem.solve(mu, cov, cov_factor, factor_loadings, specific_var, risk_aversion, betas)
        if self.long_only:
            weights = np.clip(weights, 0.0, None)
            total = weights.sum()
            if not total > 0:
                raise PortfolioOptimizationError("long-only mean-variance weights are all zero")
            weights = weights / total
        return weights
