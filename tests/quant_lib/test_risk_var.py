"""Parametric / component VaR and historical VaR / CVaR against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from quant_lib.risk import component_var, component_var_frame, historical_cvar, historical_var, parametric_var

Z95 = 1.6448536269514722


def two_asset_cov() -> np.ndarray:
    vol = np.array([0.2, 0.1])
    return np.array([[1.0, 0.5], [0.5, 1.0]]) * np.outer(vol, vol)


def test_parametric_var_known_value():
    # w'Sigma w = 0.36*0.04 + 0.16*0.01 + 2*0.6*0.4*0.01 = 0.0208.
    var = parametric_var(np.array([0.6, 0.4]), two_asset_cov(), 0.95, 1_000_000)
    assert var == pytest.approx(Z95 * np.sqrt(0.0208) * 1_000_000, rel=1e-12)


def test_component_var_known_values_and_sum():
    weights = np.array([0.6, 0.4])
    result = component_var(weights, two_asset_cov(), 0.95, 1_000_000)
    sigma = np.sqrt(0.0208)
    # Sigma w = (0.6*0.04 + 0.4*0.01, 0.6*0.01 + 0.4*0.01) = (0.028, 0.010).
    np.testing.assert_allclose(result.marginal, Z95 * np.array([0.028, 0.010]) / sigma, rtol=1e-12)
    np.testing.assert_allclose(result.component, Z95 * np.array([0.6 * 0.028, 0.4 * 0.010]) / sigma * 1e6, rtol=1e-12)
    assert result.component.sum() == pytest.approx(result.total, rel=1e-12)


def test_component_var_sums_to_total_for_random_portfolios():
    rng = np.random.default_rng(0)
    loadings = rng.normal(size=(20, 3))
    cov = (loadings @ loadings.T + np.eye(20)) * 1e-4
    weights = rng.normal(size=20)  # long-short
    result = component_var(weights, cov, 0.99, 5e6)
    assert result.component.sum() == pytest.approx(result.total, rel=1e-12)
    assert result.total == pytest.approx(parametric_var(weights, cov, 0.99, 5e6), rel=1e-12)


def test_component_var_frame_columns():
    frame = component_var_frame(["AAPL", "MSFT"], np.array([0.6, 0.4]), two_asset_cov())
    assert frame.columns == ["ticker", "weight", "marginal_var", "component_var", "pct_contribution"]
    assert frame["pct_contribution"].sum() == pytest.approx(1.0)


def known_sample() -> np.ndarray:
    return np.random.default_rng(1).permutation(np.arange(-50, 50) / 1000.0)


def test_historical_var_and_cvar_on_known_sample():
    # Returns -0.050, -0.049, ..., 0.049 (shuffled): the 5% tail is the five worst, -0.050 ... -0.046.
    returns = known_sample()
    assert historical_var(returns, 0.95) == pytest.approx(0.046)
    assert historical_cvar(returns, 0.95) == pytest.approx(0.048)
    assert historical_var(returns, 0.95, portfolio_value=1e6) == pytest.approx(46_000)
    assert historical_var(returns, 0.99) == pytest.approx(0.050)


def test_historical_var_per_column_and_for_a_portfolio():
    returns = np.column_stack([known_sample(), 2 * known_sample()])
    np.testing.assert_allclose(historical_var(returns, 0.95), [0.046, 0.092])
    np.testing.assert_allclose(historical_cvar(returns, 0.95), [0.048, 0.096])
    assert historical_var(returns, 0.95, weights=np.array([0.5, 0.5])) == pytest.approx(0.069)


def test_bad_confidence_raises():
    with pytest.raises(ValueError, match="confidence"):
        parametric_var(np.ones(2), two_asset_cov(), confidence=95)
    with pytest.raises(ValueError, match="confidence"):
        historical_var(known_sample(), confidence=1.5)
