"""Black-Litterman: prior recovery without views, known single-view answers, PyPortfolioOpt cross-check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_lib.portfolio import (
    black_litterman,
    black_litterman_posterior,
    implied_returns,
    market_weights_from_caps,
    views_from_scores,
)


def random_cov(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.1, (n, 2))
    return loadings @ loadings.T + np.diag(rng.uniform(0.01, 0.04, n))


def test_no_views_posterior_equals_prior():
    cov = random_cov(6, 0)
    caps = np.array([5.0, 3.0, 1.0, 1.0, 2.0, 8.0])
    result = black_litterman(cov, scores=None, market_caps=caps, risk_aversion=2.5, tau=0.05)
    market = caps / caps.sum()
    np.testing.assert_allclose(result.prior_returns, 2.5 * cov @ market, atol=1e-15)
    np.testing.assert_allclose(result.posterior_returns, result.prior_returns, atol=1e-15)
    np.testing.assert_allclose(result.posterior_cov, 1.05 * cov, atol=1e-15)
    np.testing.assert_allclose(result.weights, market, atol=1e-12)


def test_all_nan_scores_and_zero_confidence_mean_no_views():
    cov = random_cov(4, 1)
    no_scores = black_litterman(cov, scores=np.full(4, np.nan))
    zero_confidence = black_litterman(cov, scores=np.array([1.0, 2.0, 3.0, 4.0]), confidence=0.0)
    for result in (no_scores, zero_confidence):
        np.testing.assert_allclose(result.posterior_returns, result.prior_returns, atol=1e-15)
        np.testing.assert_allclose(result.weights, np.full(4, 0.25), atol=1e-12)


def test_single_certain_view_is_met_exactly():
    cov = random_cov(5, 2)
    pi = implied_returns(cov, market_weights_from_caps(None, 5))
    picking = np.array([[0.0, 1.0, 0.0, 0.0, 0.0]])
    posterior, _ = black_litterman_posterior(cov, pi, picking, np.array([0.07]), tau=0.05, confidences=np.array([1.0]))
    assert posterior[1] == pytest.approx(0.07, abs=1e-12)
    # Other assets move by their covariance with asset 1: mu_i - pi_i = Sigma_i1 / Sigma_11 (0.07 - pi_1).
    np.testing.assert_allclose(posterior - pi, cov[:, 1] / cov[1, 1] * (0.07 - pi[1]), atol=1e-12)


def test_views_from_scores_follow_grinold_kahn():
    cov = np.diag([0.04, 0.09, 0.01, 0.16])
    scores = np.array([1.0, np.nan, 3.0, 2.0])
    picking, view_returns, confidences = views_from_scores(scores, cov, information_coefficient=0.1, confidence=0.7)
    z = np.array([-1.0, 1.0, 0.0]) / np.std([1.0, 3.0, 2.0]) * 1.0
    np.testing.assert_allclose(picking, [[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(view_returns, 0.1 * np.array([0.2, 0.1, 0.4]) * z, atol=1e-15)
    np.testing.assert_allclose(confidences, 0.7)


@pytest.mark.parametrize("use_idzorek", [True, False])
def test_posterior_matches_pypfopt(use_idzorek):
    from pypfopt.black_litterman import BlackLittermanModel

    cov = random_cov(6, 3)
    pi = implied_returns(cov, market_weights_from_caps(np.arange(1.0, 7.0), 6), risk_aversion=3.0)
    scores = np.array([0.5, -1.0, np.nan, 2.0, 0.1, -0.3])
    confidence = np.array([0.2, 0.9, 0.5, 0.6, 0.35, 0.75]) if use_idzorek else 0.5
    picking, view_returns, confidences = views_from_scores(scores, cov, 0.2, confidence)
    posterior, posterior_cov = black_litterman_posterior(cov, pi, picking, view_returns, 0.05, confidences)
    tickers = [f"t{i}" for i in range(6)]
    kwargs = {"omega": "idzorek", "view_confidences": confidences} if use_idzorek else {}
    reference = BlackLittermanModel(
        pd.DataFrame(cov, index=tickers, columns=tickers), pi=pi, P=picking, Q=view_returns, tau=0.05, **kwargs
    )
    np.testing.assert_allclose(posterior, reference.bl_returns().to_numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(posterior_cov, reference.bl_cov().to_numpy(), rtol=1e-10, atol=1e-14)


def test_bullish_score_raises_weight_above_market():
    cov = random_cov(5, 4)
    scores = np.array([3.0, 0.0, 0.0, 0.0, 0.0])
    result = black_litterman(cov, scores=scores, confidence=0.8)
    assert result.posterior_returns[0] > result.prior_returns[0]
    assert result.weights[0] > 0.2
    assert result.weights.sum() == pytest.approx(1.0)
    assert (result.weights >= 0).all()
