"""Multivariate Kelly and mean-variance (compiled cvxpy problems) against analytic solutions."""

from __future__ import annotations

import numpy as np
import pytest

from quant_lib.portfolio import KellyOptimizer, MeanVarianceOptimizer, PortfolioOptimizationError

COV = np.array(
    [
        [0.040, 0.006, 0.004],
        [0.006, 0.090, 0.010],
        [0.004, 0.010, 0.010],
    ]
)


def test_interior_solution_is_fraction_times_inverse_cov_mu():
    full_kelly = np.array([0.2, 0.3, 0.1])  # sum 0.6 < leverage cap, all positive: interior optimum
    mu = COV @ full_kelly
    optimizer = KellyOptimizer(3, max_leverage=1.0, long_only=True, fraction=0.5)
    weights = optimizer.solve(mu, COV)
    np.testing.assert_allclose(weights, 0.5 * np.linalg.solve(COV, mu), atol=1e-7)


def test_leverage_cap_binds_and_kkt_holds():
    mu = COV @ np.array([0.5, 0.5, 1.0])  # unconstrained Kelly has gross 2 > 1
    optimizer = KellyOptimizer(3, max_leverage=1.0, long_only=True, fraction=1.0)
    weights = optimizer.solve(mu, COV)
    assert weights.sum() == pytest.approx(1.0, abs=1e-7)
    # KKT with all weights positive: mu - Sigma w = lambda 1, lambda > 0, i.e.
    # w = Sigma^-1 (mu - lambda 1) with lambda = (1' Sigma^-1 mu - 1) / (1' Sigma^-1 1).
    inv_mu, inv_one = np.linalg.solve(COV, mu), np.linalg.solve(COV, np.ones(3))
    lam = (inv_mu.sum() - 1.0) / inv_one.sum()
    expected = inv_mu - lam * inv_one
    assert lam > 0 and (expected > 0).all()
    np.testing.assert_allclose(weights, expected, atol=1e-6)
    gradient = mu - COV @ weights
    np.testing.assert_allclose(gradient, lam, atol=1e-6)


def test_long_only_zeroes_negative_edge_and_fraction_scales():
    mu = np.array([0.01, -0.02, 0.005])
    half = KellyOptimizer(3, fraction=0.5).solve(mu, COV)
    full = KellyOptimizer(3, fraction=1.0).solve(mu, COV)
    assert half[1] == pytest.approx(0.0, abs=1e-8)
    np.testing.assert_allclose(half, 0.5 * full, atol=1e-9)
    # Zero-weight asset: its marginal utility is below the others' (KKT for the w >= 0 bound).
    gradient = mu - COV @ full
    assert gradient[1] < 0


def test_long_short_uses_gross_leverage():
    mu = COV @ np.array([0.8, -0.6, 0.3])
    weights = KellyOptimizer(3, max_leverage=1.0, long_only=False, fraction=1.0).solve(mu, COV)
    assert weights[1] < 0
    assert np.abs(weights).sum() == pytest.approx(1.0, abs=1e-6)


def test_sector_caps_and_beta_band_hold():
    rng = np.random.default_rng(0)
    n = 8
    loadings = rng.normal(0.0, 0.1, (n, 2))
    cov = loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.03, n))
    mu = np.full(n, 0.02) + rng.normal(0, 0.005, n)
    sectors = np.zeros((2, n))
    sectors[0, :4] = 1.0
    sectors[1, 4:] = 1.0
    betas = np.linspace(0.5, 1.5, n)
    optimizer = KellyOptimizer(
        n, max_leverage=1.0, fraction=1.0, sector_matrix=sectors, sector_caps=np.array([0.3, 0.8]), beta_band=(1.1, 1.3)
    )
    weights = optimizer.solve(mu, cov, betas=betas)
    assert weights[:4].sum() <= 0.3 + 1e-6
    assert weights[4:].sum() <= 0.8 + 1e-6
    portfolio_beta = betas @ weights
    assert portfolio_beta >= 1.1 - 1e-6 and portfolio_beta <= 1.3 + 1e-6
    with pytest.raises(ValueError, match="betas"):
        optimizer.solve(mu, cov)


def test_resolve_with_new_parameters_matches_fresh_build():
    rng = np.random.default_rng(1)
    optimizer = KellyOptimizer(3, fraction=0.5)
    optimizer.solve(np.array([0.01, 0.02, 0.01]), COV)
    mu = rng.uniform(0.0, 0.01, 3)
    cov = COV * 1.5
    np.testing.assert_allclose(optimizer.solve(mu, cov), KellyOptimizer(3, fraction=0.5).solve(mu, cov), atol=1e-7)


def test_factor_model_equals_exact_covariance():
    rng = np.random.default_rng(2)
    n, k = 10, 2
    loadings = rng.normal(0.0, 0.1, (n, k))
    specific = rng.uniform(0.005, 0.02, n)
    cov = loadings @ loadings.T + np.diag(specific)
    mu = rng.uniform(0.0, 0.02, n)
    exact = KellyOptimizer(n, fraction=1.0).solve(mu, cov)
    factor = KellyOptimizer(n, fraction=1.0, n_factors=k).solve(mu, factor_loadings=loadings, specific_var=specific)
    np.testing.assert_allclose(factor, exact, atol=1e-6)
    # From a covariance, the statistical model with k = N factors is exact.
    statistical = KellyOptimizer(n, fraction=1.0, n_factors=n).solve(mu, cov)
    np.testing.assert_allclose(statistical, exact, atol=1e-6)


def test_singular_covariance_is_handled():
    returns = np.random.default_rng(3).normal(0.001, 0.01, (5, 8))  # T < N: rank-deficient sample covariance
    cov = np.cov(returns, rowvar=False)
    weights = KellyOptimizer(8, fraction=0.5).solve(returns.mean(axis=0), cov)
    assert np.isfinite(weights).all()
    assert weights.sum() <= 0.5 + 1e-7


def test_mean_variance_min_variance_and_risk_aversion():
    inv_one = np.linalg.solve(COV, np.ones(3))
    min_var = MeanVarianceOptimizer(3, long_only=False).solve(None, COV)
    np.testing.assert_allclose(min_var, inv_one / inv_one.sum(), atol=1e-7)
    mu = np.array([0.05, 0.12, 0.03])
    optimizer = MeanVarianceOptimizer(3, long_only=False)
    # Unconstrained-budget optimum: w = Sigma^-1 (mu - nu 1) / gamma with nu making sum w = 1.
    gamma = 4.0
    inv_mu = np.linalg.solve(COV, mu)
    nu = (inv_mu.sum() - gamma) / inv_one.sum()
    expected = (inv_mu - nu * inv_one) / gamma
    np.testing.assert_allclose(optimizer.solve(mu, COV, risk_aversion=gamma), expected, atol=1e-6)
    # Long-only minimum variance drops asset 1 (its unconstrained weight is negative); on assets 0 and 2
    # it is the unconstrained minimum variance of that pair.
    long_only_min_var = MeanVarianceOptimizer(3).solve(None, COV)
    pair = np.linalg.solve(COV[np.ix_([0, 2], [0, 2])], np.ones(2))
    np.testing.assert_allclose(long_only_min_var, [pair[0] / pair.sum(), 0.0, pair[1] / pair.sum()], atol=1e-7)
    # Very high risk aversion approaches it.
    np.testing.assert_allclose(MeanVarianceOptimizer(3).solve(mu, COV, risk_aversion=1e6), long_only_min_var, atol=1e-4)


def test_infeasible_constraints_raise():
    sectors = np.ones((1, 3))
    optimizer = MeanVarianceOptimizer(3, sector_matrix=sectors, sector_caps=np.array([0.5]))
    with pytest.raises(PortfolioOptimizationError, match="infeasible"):
        optimizer.solve(np.full(3, 0.01), COV)
