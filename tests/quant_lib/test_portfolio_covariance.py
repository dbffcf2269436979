"""Return matrix from a long price frame and the covariance estimators."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.covariance import LedoitWolf

from quant_lib.portfolio import (
    cov_to_corr,
    covariance_matrix,
    ewma_covariance,
    ledoit_wolf_covariance,
    returns_matrix,
    sample_covariance,
)


def long_prices() -> pl.DataFrame:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(4)]
    return pl.DataFrame(
        {
            "date": days * 2,
            "ticker": ["MSFT"] * 4 + ["AAPL"] * 4,
            "adj_close": [100.0, 110.0, 99.0, 99.0, 50.0, 55.0, 60.5, 60.5],
        }
    ).sample(fraction=1.0, shuffle=True, seed=7)


def test_returns_matrix_from_long_frame():
    matrix, tickers = returns_matrix(long_prices())
    assert tickers == ["AAPL", "MSFT"]
    np.testing.assert_allclose(matrix, [[0.1, 0.1], [0.1, -0.1], [0.0, 0.0]], atol=1e-12)
    log_matrix, _ = returns_matrix(long_prices(), kind="log")
    np.testing.assert_allclose(log_matrix[:, 0], np.log([1.1, 1.1, 1.0]), atol=1e-12)


def test_returns_matrix_missing_dates_drop_or_zero():
    prices = long_prices().filter(~((pl.col("ticker") == "AAPL") & (pl.col("date") == date(2024, 1, 3))))
    dropped, _ = returns_matrix(prices)
    # Returns run from each ticker's previous observation: AAPL's 2024-01-04 return is vs 2024-01-02.
    assert dropped.shape == (2, 2)
    np.testing.assert_allclose(dropped[1], [60.5 / 55.0 - 1.0, 0.0])
    filled, _ = returns_matrix(prices, missing="zero")
    assert filled.shape == (3, 2)
    assert filled[1, 0] == 0.0


def test_returns_matrix_rejects_bad_frames():
    with pytest.raises(ValueError, match="missing columns"):
        returns_matrix(long_prices().drop("adj_close"))
    duplicated = pl.concat([long_prices(), long_prices().head(1)])
    with pytest.raises(ValueError, match="duplicate"):
        returns_matrix(duplicated)


def test_sample_covariance_matches_numpy():
    returns = np.random.default_rng(0).normal(size=(60, 5))
    np.testing.assert_allclose(sample_covariance(returns), np.cov(returns, rowvar=False), atol=1e-14)
    corr = cov_to_corr(sample_covariance(returns))
    np.testing.assert_allclose(corr, np.corrcoef(returns, rowvar=False), atol=1e-12)


def test_ledoit_wolf_identity_target_matches_sklearn():
    returns = np.random.default_rng(1).normal(size=(40, 8))
    cov, delta = ledoit_wolf_covariance(returns, target="identity")
    reference = LedoitWolf().fit(returns)
    np.testing.assert_allclose(cov, reference.covariance_, atol=1e-14)
    assert delta == pytest.approx(reference.shrinkage_)


def constant_correlation_by_the_paper(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit & Wolf (2004, 'Honey...') appendix formulas, written element by element."""
    t, n = x.shape
    z = x - x.mean(axis=0)
    s = z.T @ z / t
    sd = np.sqrt(np.diag(s))
    rbar = sum(s[i, j] / (sd[i] * sd[j]) for i in range(n) for j in range(n) if i < j) * 2 / (n * (n - 1))
    f = np.array([[s[i, i] if i == j else rbar * sd[i] * sd[j] for j in range(n)] for i in range(n)])
    pi = np.array([[np.mean((z[:, i] * z[:, j] - s[i, j]) ** 2) for j in range(n)] for i in range(n)])

    def theta(k: int, i: int, j: int) -> float:
        return np.mean((z[:, k] ** 2 - s[k, k]) * (z[:, i] * z[:, j] - s[i, j]))

    rho = np.trace(pi) + sum(
        rbar / 2 * (sd[j] / sd[i] * theta(i, i, j) + sd[i] / sd[j] * theta(j, i, j))
        for i in range(n)
        for j in range(n)
        if i != j
    )
    gamma = ((f - s) ** 2).sum()
    delta = max(0.0, min(1.0, (pi.sum() - rho) / gamma / t))
    return delta * f + (1 - delta) * s, delta


def test_ledoit_wolf_constant_correlation_matches_the_paper_formulas():
    rng = np.random.default_rng(2)
    returns = rng.normal(size=(30, 1)) * 0.01 + rng.normal(size=(30, 5)) * 0.02 * rng.uniform(0.5, 2.0, 5)
    cov, delta = ledoit_wolf_covariance(returns)
    expected_cov, expected_delta = constant_correlation_by_the_paper(returns)
    assert 0 < delta < 1
    assert delta == pytest.approx(expected_delta, rel=1e-10)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-10)


def test_ledoit_wolf_constant_correlation_close_to_pypfopt():
    import pandas as pd
    from pypfopt.risk_models import CovarianceShrinkage

    rng = np.random.default_rng(3)
    returns = rng.normal(size=(250, 1)) * 0.01 + rng.normal(size=(250, 12)) * 0.02
    # PyPortfolioOpt mixes a 1/(T-1) sample covariance into the same estimator, so agreement is to O(1/T).
    _, delta = ledoit_wolf_covariance(returns)
    reference = CovarianceShrinkage(pd.DataFrame(returns), returns_data=True)
    reference.ledoit_wolf(shrinkage_target="constant_correlation")
    assert delta == pytest.approx(reference.delta, rel=0.02)


def test_ewma_equals_riskmetrics_recursion():
    returns = np.random.default_rng(4).normal(size=(50, 3)) * 0.01
    state = np.outer(returns[0], returns[0])
    for row in returns[1:]:
        state = 0.94 * state + 0.06 * np.outer(row, row)
    np.testing.assert_allclose(ewma_covariance(returns, 0.94), state, rtol=1e-12)


def test_covariance_matrix_dispatch():
    returns = np.random.default_rng(5).normal(size=(40, 4))
    np.testing.assert_allclose(covariance_matrix(returns, "sample"), sample_covariance(returns))
    np.testing.assert_allclose(covariance_matrix(returns, "ewma"), ewma_covariance(returns))
    np.testing.assert_allclose(covariance_matrix(returns, "ledoit_wolf"), ledoit_wolf_covariance(returns)[0])
    with pytest.raises(ValueError, match="unknown covariance method"):
        covariance_matrix(returns, "magic")
