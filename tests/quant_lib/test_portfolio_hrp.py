"""HRP: a hand-worked example, invariants, and cross-checks against PyPortfolioOpt and skfolio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant_lib.portfolio import hrp_weights


def factor_returns(n_obs: int, n_assets: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, (n_obs, 3))
    loadings = rng.normal(0.8, 0.5, (n_assets, 3))
    noise = rng.normal(0.0, 0.015, (n_obs, n_assets)) * rng.uniform(0.5, 2.0, n_assets)
    return factors @ loadings.T + noise


def hand_worked_cov() -> np.ndarray:
    """A, B, C, D with vols 0.1, 0.2, 0.1, 0.2; rho(A,B) = 0.8, rho(C,D) = 0.6, 0 across pairs."""
    vol = np.array([0.1, 0.2, 0.1, 0.2])
    corr = np.eye(4)
    corr[0, 1] = corr[1, 0] = 0.8
    corr[2, 3] = corr[3, 2] = 0.6
    return corr * np.outer(vol, vol)


# Hand computation for hand_worked_cov():
# distances sqrt(0.5(1 - rho)): d(A,B) = sqrt(0.1) = 0.316, d(C,D) = sqrt(0.2) = 0.447, across = sqrt(0.5).
# Single linkage merges {A,B}, then {C,D}, then both: leaf order A, B, C, D; first split {A,B} | {C,D}.
# {A,B}: inverse-variance weights (100, 25) / 125 = (0.8, 0.2);
#   V = 0.64*0.01 + 0.04*0.04 + 2*0.8*0.2*(0.8*0.1*0.2) = 0.0064 + 0.0016 + 0.00512 = 0.01312.
# {C,D}: same weights (0.8, 0.2); V = 0.0064 + 0.0016 + 0.32*(0.6*0.02) = 0.01184.
# alpha{A,B} = 1 - 0.01312 / 0.02496 = 37/78; alpha{C,D} = 41/78.
# Inside each pair the singleton variances are 0.01 and 0.04: alpha = 1 - 0.01/0.05 = 0.8.
# Weights: A = 0.8*37/78 = 148/390, B = 37/390, C = 0.8*41/78 = 164/390, D = 41/390.
HAND_WORKED_WEIGHTS = np.array([148.0, 37.0, 164.0, 41.0]) / 390.0


def test_hand_worked_four_assets():
    weights = hrp_weights(None, cov=hand_worked_cov())
    np.testing.assert_allclose(weights, HAND_WORKED_WEIGHTS, rtol=0, atol=1e-14)


def test_hand_worked_weights_follow_the_input_column_order():
    permutation = np.array([2, 0, 3, 1])  # columns C, A, D, B
    cov = hand_worked_cov()[np.ix_(permutation, permutation)]
    weights = hrp_weights(None, cov=cov)
    np.testing.assert_allclose(weights, HAND_WORKED_WEIGHTS[permutation], atol=1e-14)


def test_invariants_sum_and_positive():
    returns = factor_returns(150, 25, seed=1)
    weights = hrp_weights(returns)
    assert weights.shape == (25,)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert (weights > 0).all()


def balanced_hierarchy_cov() -> np.ndarray:
    """8 assets in pairs (rho 0.9) inside quads (rho 0.5), quads 0.1 apart; vols 0.1 ... 0.45."""
    group = np.arange(8)
    corr = np.where(group[:, None] // 2 == group[None, :] // 2, 0.9,
                    np.where(group[:, None] // 4 == group[None, :] // 4, 0.5, 0.1))
    np.fill_diagonal(corr, 1.0)
    vol = 0.1 + 0.05 * group
    return corr * np.outer(vol, vol)


def test_permutation_equivariance_on_a_balanced_hierarchy():
    # Lopez de Prado's list bisection cuts the ordered leaves in halves. When the dendrogram is
    # balanced (pairs, quads, all eight) those halves are the tree's clusters whatever the input
    # order, so permuting the columns permutes the weights. (With unbalanced trees the halves depend
    # on scipy's leaf order, exactly as in the paper's code and PyPortfolioOpt.)
    cov = balanced_hierarchy_cov()
    weights = hrp_weights(None, cov=cov)
    rng = np.random.default_rng(2)
    for _ in range(5):
        permutation = rng.permutation(8)
        permuted = hrp_weights(None, cov=cov[np.ix_(permutation, permutation)])
        np.testing.assert_allclose(permuted, weights[permutation], atol=1e-14)


def test_lower_variance_asset_gets_more_weight_in_uncorrelated_pair():
    cov = np.diag([0.01, 0.04])
    np.testing.assert_allclose(hrp_weights(None, cov=cov), [0.8, 0.2], atol=1e-14)


@pytest.mark.parametrize("linkage", ["single", "average", "ward", "complete"])
def test_matches_pypfopt_hrpopt(linkage):
    from pypfopt import HRPOpt

    returns = factor_returns(120, 40, seed=3)
    columns = [f"asset_{i:02d}" for i in range(40)]
    expected = HRPOpt(pd.DataFrame(returns, columns=columns)).optimize(linkage)
    expected_weights = np.array([expected[c] for c in columns])
    np.testing.assert_allclose(hrp_weights(returns, linkage=linkage), expected_weights, rtol=0, atol=1e-10)


def test_matches_skfolio_single_linkage():
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    returns = factor_returns(120, 30, seed=4)
    model = HierarchicalRiskParity(
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE),
            optimal_ordering=False,
        )
    ).fit(returns)
    np.testing.assert_allclose(hrp_weights(returns), model.weights_, rtol=0, atol=1e-10)


def test_explicit_cov_and_corr_are_used():
    returns = factor_returns(100, 10, seed=5)
    cov = np.cov(returns, rowvar=False)
    np.testing.assert_allclose(hrp_weights(None, cov=cov), hrp_weights(returns), atol=1e-12)
    # A correlation that pairs assets differently changes the tree and so the weights.
    other_corr = np.eye(10)
    other_corr[0, 9] = other_corr[9, 0] = 0.99
    assert not np.allclose(hrp_weights(returns, corr=other_corr), hrp_weights(returns))


def test_bad_inputs_raise_clear_errors():
    returns = factor_returns(50, 4, seed=6)
    with pytest.raises(ValueError, match="linkage"):
        hrp_weights(returns, linkage="median-ish")
    returns[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        hrp_weights(returns)
    constant = factor_returns(50, 4, seed=6)
    constant[:, 1] = 0.0
    with pytest.raises(ValueError, match="zero variance"):
        hrp_weights(constant)
