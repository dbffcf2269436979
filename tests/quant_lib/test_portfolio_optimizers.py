"""Risk parity, minimum variance, `optimize_portfolio` and its fallbacks, volatility targeting."""

from __future__ import annotations

import numpy as np
import pytest

from quant_lib.portfolio import (
    METHODS,
    apply_vol_targeting,
    hrp_weights,
    min_variance_weights,
    optimize_portfolio,
    risk_parity_weights,
)


def factor_returns(n_obs: int, n_assets: int, seed: int, drift: float = 0.0005) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (n_obs, 2))
    loadings = rng.normal(0.8, 0.4, (n_assets, 2))
    return drift + factors @ loadings.T + rng.normal(0.0, 0.015, (n_obs, n_assets))


def test_risk_parity_equalises_risk_contributions():
    returns = factor_returns(200, 12, seed=0)
    cov = np.cov(returns, rowvar=False)
    weights = risk_parity_weights(cov)
    contributions = weights * (cov @ weights) / (weights @ cov @ weights)
    np.testing.assert_allclose(contributions, np.full(12, 1 / 12), atol=1e-10)
    assert weights.sum() == pytest.approx(1.0)


def test_risk_parity_two_assets_is_inverse_volatility():
    vol = np.array([0.1, 0.3])
    corr = np.array([[1.0, 0.4], [0.4, 1.0]])
    weights = risk_parity_weights(corr * np.outer(vol, vol))
    np.testing.assert_allclose(weights, [0.75, 0.25], atol=1e-12)


def test_risk_parity_budget():
    cov = np.diag([0.04, 0.01, 0.09])
    weights = risk_parity_weights(cov, risk_budget=np.array([0.5, 0.25, 0.25]))
    contributions = weights * (cov @ weights) / (weights @ cov @ weights)
    np.testing.assert_allclose(contributions, [0.5, 0.25, 0.25], atol=1e-10)


def test_min_variance_unconstrained_matches_closed_form():
    cov = np.cov(factor_returns(300, 6, seed=1), rowvar=False)
    inv_one = np.linalg.solve(cov, np.ones(6))
    np.testing.assert_allclose(min_variance_weights(cov, long_only=False), inv_one / inv_one.sum(), atol=1e-6)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_finite_weights(method):
    returns = factor_returns(250, 10, seed=2)
    scores = np.linspace(-1, 1, 10)
    result = optimize_portfolio(method, returns, scores=scores if method == "black_litterman" else None)
    assert result.method_used == method
    assert result.fallback_reason is None
    assert np.isfinite(result.weights).all()
    assert (result.weights >= -1e-9).all()
    if method == "kelly":
        assert 0 < result.weights.sum() <= 0.5 + 1e-7
    else:
        assert result.weights.sum() == pytest.approx(1.0, abs=1e-7)


def test_hrp_through_optimize_portfolio_is_hrp_weights():
    returns = factor_returns(250, 10, seed=3)
    np.testing.assert_allclose(optimize_portfolio("hrp", returns).weights, hrp_weights(returns), atol=1e-14)


def test_zero_variance_asset_falls_back_without_nan():
    returns = factor_returns(100, 6, seed=4)
    returns[:, 2] = 0.0  # a halted stock: singular covariance, HRP and risk parity cannot split it
    returns[:, 4] = returns[:, 3]  # and a duplicated column
    for method in ("hrp", "risk_parity"):
        result = optimize_portfolio(method, returns)
        assert np.isfinite(result.weights).all()
        assert result.method_used != method
        assert f"{method} failed" in result.fallback_reason
        assert result.weights.sum() == pytest.approx(1.0, abs=1e-7)


def test_singular_covariance_in_black_litterman_falls_back():
    returns = factor_returns(8, 12, seed=12)  # T < N: the sample covariance is singular
    result = optimize_portfolio("black_litterman", returns, cov_method="sample", scores=np.arange(12.0))
    assert result.method_used == "hrp"
    assert "black_litterman failed" in result.fallback_reason
    assert np.isfinite(result.weights).all() and result.weights.sum() == pytest.approx(1.0)
    # A shrunk covariance (the default) is positive definite, so Black-Litterman works.
    assert optimize_portfolio("black_litterman", returns, scores=np.arange(12.0)).method_used == "black_litterman"


def test_infeasible_constraints_fall_back_to_hrp():
    returns = factor_returns(200, 5, seed=5)
    sectors = np.ones((1, 5))
    result = optimize_portfolio("mean_variance", returns, sector_matrix=sectors, sector_caps=np.array([0.4]))
    assert result.method_used == "hrp"
    assert "mean_variance failed" in result.fallback_reason
    assert "infeasible" in result.fallback_reason
    np.testing.assert_allclose(result.weights, hrp_weights(returns), atol=1e-14)


def test_all_negative_edges_give_equal_weight():
    returns = factor_returns(200, 4, seed=6, drift=-0.01)
    result = optimize_portfolio("kelly", returns)
    assert result.method_used == "equal_weight"
    assert "near zero" in result.fallback_reason
    np.testing.assert_allclose(result.weights, 0.25)


def test_everything_failing_ends_in_equal_weight():
    returns = np.zeros((50, 3))
    result = optimize_portfolio("risk_parity", returns)
    assert result.method_used == "equal_weight"
    np.testing.assert_allclose(result.weights, 1 / 3)
    assert not np.isnan(result.weights).any()


def test_max_weight_caps_every_method():
    returns = factor_returns(250, 10, seed=7)
    for method in ("hrp", "min_variance", "risk_parity", "mean_variance"):
        weights = optimize_portfolio(method, returns, max_weight=0.15).weights
        assert weights.max() <= 0.15 + 1e-7
        assert weights.sum() == pytest.approx(1.0, abs=1e-7)


def test_bad_inputs_raise():
    returns = factor_returns(50, 3, seed=8)
    with pytest.raises(ValueError, match="unknown method"):
        optimize_portfolio("astrology", returns)
    bad = returns.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        optimize_portfolio("hrp", bad)
    with pytest.raises(ValueError, match="expected_returns"):
        optimize_portfolio("kelly", returns, expected_returns=np.zeros(2))


def test_vol_targeting_scales_and_clips():
    rng = np.random.default_rng(9)
    weights = np.array([0.5, 0.5])
    daily = 0.15 / np.sqrt(252)
    # Portfolio returns with exactly 15%/sqrt(252)*1.25 daily vol -> leverage 0.8.
    z = rng.normal(size=60)
    z = (z - z.mean()) / z.std(ddof=1)
    returns = np.column_stack([z, z]) * daily * 1.25
    result = apply_vol_targeting(weights, returns, target_vol=0.15, lookback=60)
    assert result.realized_vol == pytest.approx(0.1875)
    assert result.leverage == pytest.approx(0.8)
    np.testing.assert_allclose(result.weights, [0.4, 0.4])
    assert apply_vol_targeting(weights, returns * 10).leverage == 0.5
    assert apply_vol_targeting(weights, returns / 10).leverage == 2.0
    assert apply_vol_targeting(weights, np.zeros((60, 2))).leverage == 1.0


def test_vol_targeting_uses_only_the_lookback():
    calm = np.full((100, 1), 0.001) + np.random.default_rng(10).normal(0, 0.001, (100, 1))
    wild = np.random.default_rng(11).normal(0, 0.05, (100, 1))
    returns = np.vstack([wild, calm])
    assert apply_vol_targeting(np.ones(1), returns, lookback=60).leverage == 2.0
    assert apply_vol_targeting(np.ones(1), returns, lookback=200).leverage == 0.5
