"""Numba kernels of the BOCPD recursion (one observation; a batch of series). See ``bocpd.py``."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def bocpd_step(
    x, n, log_r, mu, kappa, alpha, beta, log_pred, const, prior, log_h, log_1mh, short_run, dof, nu
):  # pragma: no cover - compiled
    """Advance the run-length posterior by one observation ``x`` in place.

    ``n``: run lengths currently in support (<= capacity = len(log_r)); ``const[r]`` =
    lgamma(alpha_r + 1/2) - lgamma(alpha_r) - log(2 pi alpha_r) / 2 (alpha_r = alpha0 + r / 2);
    ``prior`` = (mu0, kappa0, alpha0, beta0). Returns (new n, cp_score, severity) with cp_score =
    P(r_t <= short_run).

    ``nu`` > 0: Student-t observations with ``nu`` degrees of freedom (a Gaussian scale mixture),
    approximated per run in the variational-Bayes way: the predictive is a Student-t with
    ``dof[r]`` = 1 / (1 / (2 alpha_r) + 1 / nu) degrees of freedom, and x enters the NIG update
    with weight w = (nu + 1) / (nu + (x - mu_r)^2 alpha_r / beta_r) (kappa' = kappa + w,
    mu' = (kappa mu + w x) / kappa', beta' = beta + w kappa (x - mu)^2 / (2 kappa')), so one
    fat-tailed observation does not look like a new, wider regime. ``nu`` <= 0: Gaussian (w = 1).

    One exp per run length: with e_r = exp(log joint_r - peak) and E = sum e_r, the new posterior
    is P(r_t = 0) = H and P(r_t = r + 1) = (1 - H) e_r / E (renormalized when the longest run is
    dropped at capacity).
    """
    capacity = log_r.shape[0]
    peak = -np.inf
    for r in range(n):
        s2 = beta[r] * (kappa[r] + 1.0) / (alpha[r] * kappa[r])
        d = x - mu[r]
        if nu > 0.0:
            log_pred[r] = log_r[r] + const[r] - 0.5 * math.log(s2) - 0.5 * (dof[r] + 1.0) * math.log1p(d * d / (dof[r] * s2))
        else:
            log_pred[r] = log_r[r] + const[r] - 0.5 * math.log(s2) - (alpha[r] + 0.5) * math.log1p(d * d / (2.0 * alpha[r] * s2))
        if log_pred[r] > peak:
            peak = log_pred[r]
    horizon = short_run
    evidence = 0.0
    for r in range(n):  # log_r is free now: it holds e_r until the shift below overwrites it
        log_r[r] = math.exp(log_pred[r] - peak)
        evidence += log_r[r]
    new_n = n + 1 if n < capacity else capacity
    kept = evidence if new_n == n + 1 else evidence - log_r[n - 1]
    hazard = math.exp(log_h)
    norm = hazard * evidence + (1.0 - hazard) * kept
    log_growth = log_1mh - math.log(norm) - peak
    score = hazard * evidence / norm
    w_short, mu_s, var_s, w_long, mu_l, var_l = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for r in range(new_n - 1, 0, -1):
        k = kappa[r - 1]
        d = x - mu[r - 1]
        p = (1.0 - hazard) * log_r[r - 1] / norm
        log_r[r] = log_pred[r - 1] + log_growth
        if nu > 0.0:
            w = (nu + 1.0) / (nu + d * d * alpha[r - 1] / beta[r - 1])
            beta[r] = beta[r - 1] + w * k * d * d / (2.0 * (k + w))
            mu[r] = (k * mu[r - 1] + w * x) / (k + w)
            kappa[r] = k + w
        else:
            beta[r] = beta[r - 1] + k * d * d / (2.0 * (k + 1.0))
            mu[r] = (k * mu[r - 1] + x) / (k + 1.0)
            kappa[r] = k + 1.0
        alpha[r] = alpha[r - 1] + 0.5
        var = beta[r] / alpha[r]
        if r <= horizon:
            score += p
            w_short += p
            mu_s += p * mu[r]
            var_s += p * var
        else:
            w_long += p
            mu_l += p * mu[r]
            var_l += p * var
    log_r[0] = log_h + math.log(evidence / norm)
    mu[0], kappa[0], alpha[0], beta[0] = prior[0], prior[1], prior[2], prior[3]
    severity = 0.0
    if w_short > 1e-12 and w_long > 1e-12:
        mu_s, var_s, mu_l, var_l = mu_s / w_short, var_s / w_short, mu_l / w_long, var_l / w_long
        severity = score * (abs(mu_s - mu_l) / math.sqrt(var_l) + abs(0.5 * math.log(var_s / var_l)))
    return new_n, min(max(score, 0.0), 1.0), severity


@njit(cache=True, nogil=True)
def warmup_prior(head, kappa0, alpha0):  # pragma: no cover - compiled
    """(mu0, kappa0, alpha0, beta0) from a warm-up window: mu0 = its mean, beta0 = (alpha0 - 1) *
    its sample variance (so the prior mean of sigma^2 is that variance). A constant window gets
    a variance floor of (1e-8 * scale)^2, scale = max |x| (or 1e-150 when all zero)."""
    n = head.shape[0]
    mean = head.mean()
    var = ((head - mean) ** 2).sum() / max(n - 1, 1)
    scale = max(np.abs(head).max(), 1e-150)
    var = max(var, (1e-8 * scale) ** 2)
    return np.array([mean, kappa0, alpha0, (alpha0 - 1.0) * var])


@njit(cache=True, nogil=True)
def log_pdf_constants(capacity, alpha0, nu):  # pragma: no cover - compiled
    """(const[r], dof[r]) of the run-length-r predictive: Student-t with dof = 2 alpha_r (Gaussian
    observations, ``nu`` <= 0) or 1 / (1 / (2 alpha_r) + 1 / nu), alpha_r = alpha0 + r / 2;
    const = lgamma((dof + 1) / 2) - lgamma(dof / 2) - log(pi dof) / 2."""
    const, dof = np.empty(capacity), np.empty(capacity)
    for r in range(capacity):
        a = alpha0 + 0.5 * r
        if nu > 0.0:
            d = 1.0 / (0.5 / a + 1.0 / nu)
            const[r] = math.lgamma(0.5 * (d + 1.0)) - math.lgamma(0.5 * d) - 0.5 * math.log(math.pi * d)
        else:
            d = 2.0 * a
            const[r] = math.lgamma(a + 0.5) - math.lgamma(a) - 0.5 * math.log(2.0 * math.pi * a)
        dof[r] = d
    return const, dof


@njit(cache=True, nogil=True)
def bocpd_batch(values, warmup, capacity, kappa0, alpha0, hazard, short_run, nu):  # pragma: no cover
    """Run BOCPD over each column of ``values`` [T, N] independently (NaN rows of a column are
    skipped and score NaN). The prior of a column comes from its first ``warmup`` finite values;
    those rows score 0. Returns (cp_score [T, N], severity [T, N])."""
    n_rows, n_cols = values.shape
    scores = np.full((n_rows, n_cols), np.nan)
    severity = np.full((n_rows, n_cols), np.nan)
    log_h, log_1mh = math.log(hazard), math.log1p(-hazard)
    const, dof = log_pdf_constants(capacity, alpha0, nu)
    log_r, mu, kappa = np.empty(capacity), np.empty(capacity), np.empty(capacity)
    alpha, beta, log_pred = np.empty(capacity), np.empty(capacity), np.empty(capacity)
    for j in range(n_cols):
        finite = np.flatnonzero(np.isfinite(values[:, j]))
        if finite.shape[0] < warmup:
            continue
        prior = warmup_prior(values[finite[:warmup], j], kappa0, alpha0)
        log_r[0], mu[0], kappa[0], alpha[0], beta[0] = 0.0, prior[0], prior[1], prior[2], prior[3]
        n = 1
        for i in range(finite.shape[0]):
            t = finite[i]
            n, s, sev = bocpd_step(values[t, j], n, log_r, mu, kappa, alpha, beta, log_pred, const, prior,
                                   log_h, log_1mh, short_run, dof, nu)
            scores[t, j] = s if i >= warmup else 0.0
            severity[t, j] = sev if i >= warmup else 0.0
    return scores, severity
