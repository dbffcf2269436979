"""Sharpe statistics: PSR, expected max Sharpe and the Deflated Sharpe Ratio."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kurtosis, norm, skew

from quant_lib.backtest.statistics import (
    EULER_MASCHERONI,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
    sharpe_ratio_variance,
)


@pytest.fixture
def returns() -> np.ndarray:
    return np.random.default_rng(11).normal(0.0005, 0.01, 1_000)


def test_sharpe_ratio_formula(returns):
    expected = returns.mean() / returns.std(ddof=1) * np.sqrt(252)
    assert sharpe_ratio(returns) == pytest.approx(expected, rel=1e-12)
    rf = 0.02
    shifted = returns - ((1 + rf) ** (1 / 252) - 1)
    assert sharpe_ratio(returns, risk_free_rate=rf) == pytest.approx(shifted.mean() / shifted.std(ddof=1) * np.sqrt(252))
    assert sharpe_ratio(np.full(10, 0.001)) == 0.0


def test_psr_matches_bailey_lopez_de_prado_formula(returns):
    sr = returns.mean() / returns.std(ddof=1)
    g3, g4 = skew(returns), kurtosis(returns, fisher=False)
    sigma = np.sqrt((1 - g3 * sr + (g4 - 1) / 4 * sr**2) / (len(returns) - 1))
    benchmark_annual = 0.5
    expected = norm.cdf((sr - benchmark_annual / np.sqrt(252)) / sigma)
    assert probabilistic_sharpe_ratio(returns, benchmark_annual) == pytest.approx(expected, rel=1e-10)
    assert sharpe_ratio_variance(returns) == pytest.approx(sigma**2, rel=1e-10)


def test_psr_of_strongly_positive_series_is_near_one():
    strong = np.random.default_rng(3).normal(0.002, 0.005, 500)  # annual SR ~ 6
    assert probabilistic_sharpe_ratio(strong, 0.0) > 0.999
    weak = np.random.default_rng(3).normal(-0.002, 0.005, 500)
    assert probabilistic_sharpe_ratio(weak, 0.0) < 0.001


def test_expected_max_sharpe_formula_and_single_trial():
    n, variance = 100, 0.04
    z = (1 - EULER_MASCHERONI) * norm.ppf(1 - 1 / n) + EULER_MASCHERONI * norm.ppf(1 - 1 / (n * np.e))
    assert expected_max_sharpe(n, variance) == pytest.approx(np.sqrt(variance) * z, rel=1e-12)
    assert expected_max_sharpe(1, variance) == 0.0
    with pytest.raises(ValueError, match="n_trials"):
        expected_max_sharpe(0, variance)


def test_expected_max_sharpe_close_to_monte_carlo():
    rng = np.random.default_rng(0)
    n_trials, sd = 50, 0.5
    simulated = rng.normal(0, sd, (20_000, n_trials)).max(axis=1).mean()
    assert expected_max_sharpe(n_trials, sd**2) == pytest.approx(simulated, rel=0.03)


def test_dsr_decreases_with_more_trials(returns):
    values = [deflated_sharpe_ratio(returns, n, trials_sharpe_variance=0.5) for n in (1, 2, 10, 100, 1_000)]
    assert all(later < earlier for earlier, later in zip(values, values[1:]))
    own_variance = [deflated_sharpe_ratio(returns, n) for n in (1, 10, 100)]
    assert own_variance[0] > own_variance[1] > own_variance[2]


def test_dsr_with_one_trial_equals_psr_at_zero(returns):
    assert deflated_sharpe_ratio(returns, 1) == pytest.approx(probabilistic_sharpe_ratio(returns, 0.0))


def test_dsr_uses_trials_variance_in_annual_units(returns):
    variance_annual = 0.3
    threshold = expected_max_sharpe(20, variance_annual / 252) * np.sqrt(252)
    assert deflated_sharpe_ratio(returns, 20, variance_annual) == pytest.approx(
        probabilistic_sharpe_ratio(returns, threshold)
    )


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="non-finite"):
        probabilistic_sharpe_ratio([0.01, np.nan, 0.02])
    with pytest.raises(ValueError, match="trials_sharpe_variance"):
        deflated_sharpe_ratio([0.01, 0.02, -0.01], 5, trials_sharpe_variance=-1.0)
