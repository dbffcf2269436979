"""Black-Litterman (1992) posterior returns from an equilibrium prior and ranking-score views."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quant_lib._lazy import LazyModule
from quant_lib.portfolio._validation import as_covariance, as_vector

scipy_linalg = LazyModule("scipy.linalg")


@dataclass(frozen=True)
class BlackLittermanResult:
    """prior_returns pi (N), posterior_returns mu_BL (N), posterior_cov Sigma_BL (N x N), weights (N, sum 1)."""

    prior_returns: np.ndarray
    posterior_returns: np.ndarray
    posterior_cov: np.ndarray
    weights: np.ndarray


def market_weights_from_caps(market_caps: np.ndarray | None, n_assets: int) -> np.ndarray:
    """Cap weights w_i = cap_i / sum cap, or equal weights 1/N when `market_caps` is None."""
    if market_caps is None:
        return np.full(n_assets, 1.0 / n_assets)
    caps = as_vector(market_caps, n_assets, "market_caps")
    if (caps < 0).any() or not caps.sum() > 0:
        raise ValueError("market_caps must be non-negative with a positive sum")
    return caps / caps.sum()


def implied_returns(
    cov: np.ndarray, market_weights: np.ndarray, risk_aversion: float = 2.5, risk_free_rate: float = 0.0
) -> np.ndarray:
    """Reverse-optimised equilibrium excess returns pi = delta Sigma w_mkt (+ r_f), Black & Litterman (1992)."""
    matrix = as_covariance(cov)
    weights = as_vector(market_weights, matrix.shape[0], "market_weights")
    return risk_aversion * matrix @ weights + risk_free_rate


def views_from_scores(
    scores: np.ndarray,
    cov: np.ndarray,
    information_coefficient: float = 0.1,
    confidence: float | np.ndarray = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Absolute views from cross-sectional ranking scores.

    Each asset with a finite score gets the view  r_i = IC sigma_i z_i  where z is the cross-sectional
    z-score of the scores and sigma_i = sqrt(Sigma_ii): Grinold & Kahn's "alpha = IC x volatility x
    score" (Active Portfolio Management, 2000, ch. 14). Assets whose score is NaN get no view.
    `confidence` (scalar or one per asset, in [0, 1]) is carried to `black_litterman_posterior`.
    Returns (P: k x N picking matrix, Q: k view returns, confidences: k).
    """
    matrix = as_covariance(cov)
    n = matrix.shape[0]
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if values.shape[0] != n:
        raise ValueError(f"scores has length {values.shape[0]}, expected {n}")
    confidences = np.broadcast_to(np.asarray(confidence, dtype=np.float64), (n,))
    has_view = np.isfinite(values)
    idx = np.flatnonzero(has_view)
    if idx.size == 0:
        return np.zeros((0, n)), np.zeros(0), np.zeros(0)
    chosen = values[idx]
    spread = chosen.std()
    z = (chosen - chosen.mean()) / spread if spread > 0 else np.zeros_like(chosen)
    picking = np.zeros((idx.size, n))
    picking[np.arange(idx.size), idx] = 1.0
    view_returns = information_coefficient * np.sqrt(np.diag(matrix))[idx] * z
    return picking, view_returns, confidences[idx].copy()


def black_litterman_posterior(
    cov: np.ndarray,
    prior_returns: np.ndarray,
    picking: np.ndarray,
    view_returns: np.ndarray,
    tau: float = 0.05,
    confidences: np.ndarray | None = None,
    omega: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and covariance (He & Litterman 1999):

        mu_BL    = pi + tau Sigma P' (P tau Sigma P' + Omega)^-1 (Q - P pi)
        Sigma_BL = Sigma + tau Sigma - tau Sigma P' (P tau Sigma P' + Omega)^-1 P tau Sigma

    Omega: given, or diagonal Omega_kk = tau (P Sigma P')_kk (1 - c_k) / c_k from view confidences c_k
    in [0, 1] (Idzorek 2005 in Walters' closed form, as PyPortfolioOpt's omega="idzorek"); c = 0.5,
    the default, is He & Litterman's Omega = diag(tau P Sigma P'). Views with c = 0 are dropped
    (infinite uncertainty). With no views mu_BL = pi and Sigma_BL = (1 + tau) Sigma.
    Returns (mu_BL, Sigma_BL).
    """
    matrix = as_covariance(cov)
    n = matrix.shape[0]
    pi = as_vector(prior_returns, n, "prior_returns")
    if not 0 < tau <= 1:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    p = np.asarray(picking, dtype=np.float64).reshape(-1, n)
    q = np.asarray(view_returns, dtype=np.float64).reshape(-1)
    if q.shape[0] != p.shape[0]:
        raise ValueError(f"{p.shape[0]} views in the picking matrix but {q.shape[0]} view returns")
    if not (np.isfinite(p).all() and np.isfinite(q).all()):
        raise ValueError("picking matrix and view returns must be finite")
    tau_sigma = tau * matrix
    if omega is None:
        c = np.full(q.shape[0], 0.5) if confidences is None else np.asarray(confidences, dtype=np.float64).reshape(-1)
        if c.shape[0] != q.shape[0]:
            raise ValueError(f"{q.shape[0]} views but {c.shape[0]} confidences")
        if ((c < 0) | (c > 1) | ~np.isfinite(c)).any():
            raise ValueError("view confidences must lie in [0, 1]")
        keep = c > 0
        p, q, c = p[keep], q[keep], c[keep]
        omega = np.diag(np.einsum("kn,nm,km->k", p, tau_sigma, p) * (1.0 - c) / c)
    else:
        omega = np.asarray(omega, dtype=np.float64)
        if omega.shape != (q.shape[0], q.shape[0]):
            raise ValueError(f"omega must be {q.shape[0]} x {q.shape[0]}, got {omega.shape}")
    if q.shape[0] == 0:
        return pi.copy(), matrix * (1.0 + tau)
    sigma_pt = tau_sigma @ p.T
    middle = p @ sigma_pt + omega
    posterior_returns = pi + sigma_pt @ np.linalg.solve(middle, q - p @ pi)
    posterior_cov = matrix + tau_sigma - sigma_pt @ np.linalg.solve(middle, sigma_pt.T)
    return posterior_returns, 0.5 * (posterior_cov + posterior_cov.T)


def black_litterman_weights(
    posterior_returns: np.ndarray, posterior_cov: np.ndarray, risk_aversion: float = 2.5, long_only: bool = True
) -> np.ndarray:
    """Unconstrained optimum w = (delta Sigma_BL)^-1 mu_BL scaled to sum 1 (He & Litterman 1999). With
    `long_only`, negative weights are set to 0 before rescaling. With no views it returns the prior
    (market) weights. Raises LinAlgError for a singular Sigma_BL and ValueError when the weights do
    not have a positive sum."""
    matrix = as_covariance(posterior_cov)
    mu = as_vector(posterior_returns, matrix.shape[0], "posterior_returns")
    try:
        factor = scipy_linalg.cho_factor(risk_aversion * matrix, check_finite=False)
    except np.linalg.LinAlgError as exc:
        raise np.linalg.LinAlgError("posterior covariance is not positive definite; use a shrunk covariance") from exc
    weights = scipy_linalg.cho_solve(factor, mu, check_finite=False)
    if long_only:
        weights = np.clip(weights, 0.0, None)
    total = weights.sum()
    if not total > 0:
        raise ValueError("Black-Litterman weights have no positive sum (all views bearish?)")
    return weights / total


def black_litterman(
    cov: np.ndarray,
    scores: np.ndarray | None = None,
    market_weights: np.ndarray | None = None,
    market_caps: np.ndarray | None = None,
    risk_aversion: float = 2.5,
    tau: float = 0.05,
    information_coefficient: float = 0.1,
    confidence: float | np.ndarray = 0.5,
    long_only: bool = True,
) -> BlackLittermanResult:
    """Black-Litterman end to end.

    Prior: w_mkt = `market_weights`, else cap weights from `market_caps`, else 1/N; pi = delta Sigma w_mkt.
    Views: `views_from_scores(scores, ...)` (None = no views). Posterior: `black_litterman_posterior`.
    Weights: `black_litterman_weights`.
    """
    matrix = as_covariance(cov)
    n = matrix.shape[0]
    prior_weights = (
        market_weights_from_caps(market_caps, n)
        if market_weights is None
        else as_vector(market_weights, n, "market_weights")
    )
    pi = implied_returns(matrix, prior_weights, risk_aversion)
    if scores is None:
        picking, view_returns, confidences = np.zeros((0, n)), np.zeros(0), np.zeros(0)
    else:
        picking, view_returns, confidences = views_from_scores(scores, matrix, information_coefficient, confidence)
    posterior_returns, posterior_cov = black_litterman_posterior(
        matrix, pi, picking, view_returns, tau=tau, confidences=confidences
    )
    weights = black_litterman_weights(posterior_returns, posterior_cov, risk_aversion, long_only)
    return BlackLittermanResult(pi, posterior_returns, posterior_cov, weights)
