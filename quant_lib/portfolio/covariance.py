"""Return matrices and covariance estimators (sample, Ledoit-Wolf shrinkage, RiskMetrics EWMA)."""

from __future__ import annotations

import numpy as np
import polars as pl

from quant_lib.portfolio._validation import as_covariance, as_returns_matrix

COVARIANCE_METHODS = ("sample", "ledoit_wolf", "ledoit_wolf_identity", "ewma")


def returns_matrix(
    prices: pl.DataFrame,
    price_col: str = "adj_close",
    kind: str = "simple",
    missing: str = "drop",
) -> tuple[np.ndarray, list[str]]:
    """T x N matrix of per-period returns from a long price frame.

    Inputs: `prices` with columns `date`, `ticker`, `price_col` (one row per date and ticker).
    `kind`: "simple" (p_t / p_{t-1} - 1) or "log" (ln p_t - ln p_{t-1}), computed per ticker over
    its own consecutive rows (a missing day makes the next return span two days).
    `missing`: "drop" removes every date on which any ticker has no return (the first date always
    goes); "zero" fills missing returns with 0.
    Output: (returns, tickers): a float64 array with rows in date order and columns in the sorted
    order of `tickers`.
    """
    required = {"date", "ticker", price_col}
    absent = required - set(prices.columns)
    if absent:
        raise ValueError(f"prices is missing columns {sorted(absent)}")
    if kind not in ("simple", "log"):
        raise ValueError(f"kind must be 'simple' or 'log', got {kind!r}")
    if missing not in ("drop", "zero"):
        raise ValueError(f"missing must be 'drop' or 'zero', got {missing!r}")
    duplicated = prices.select("date", "ticker").is_duplicated()
    if duplicated.any():
        sample = prices.filter(duplicated).select("date", "ticker").head(5).rows()
        raise ValueError(f"prices has duplicate (date, ticker) rows, e.g. {sample}")
    price = pl.col(price_col).cast(pl.Float64)
    nonpositive = prices.filter(price <= 0)
    if nonpositive.height:
        raise ValueError(
            f"prices has non-positive {price_col} values, e.g. {nonpositive.select('date', 'ticker').head(5).rows()}"
        )
    ret = price.pct_change() if kind == "simple" else price.log().diff()
    long = prices.sort("ticker", "date").with_columns(ret.over("ticker").alias("_ret"))
    wide = long.pivot(on="ticker", index="date", values="_ret", sort_columns=True).sort("date")
    tickers = [c for c in wide.columns if c != "date"]
    wide = wide.select(tickers)
    if missing == "drop":
        wide = wide.drop_nulls()
    else:
        wide = wide.fill_null(0.0).fill_nan(0.0).slice(1)
    return wide.to_numpy().astype(np.float64, copy=False), tickers


def sample_covariance(returns: np.ndarray, ddof: int = 1) -> np.ndarray:
    """Sample covariance S = Xc' Xc / (T - ddof) of a T x N return matrix (Xc demeaned)."""
    matrix = as_returns_matrix(returns)
    centered = matrix - matrix.mean(axis=0)
    return centered.T @ centered / (matrix.shape[0] - ddof)


def cov_to_corr(cov: np.ndarray) -> np.ndarray:
    """Correlation matrix rho_ij = cov_ij / (sigma_i sigma_j); zero-variance assets get rho = 0 off-diagonal."""
    matrix = as_covariance(cov)
    sd = np.sqrt(np.diag(matrix))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = matrix / np.outer(sd, sd)
    corr = np.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def ledoit_wolf_covariance(
    returns: np.ndarray, target: str = "constant_correlation"
) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage Sigma = delta F + (1 - delta) S with the optimal delta in [0, 1].

    `target="constant_correlation"`: F has the sample variances on the diagonal and
    rbar sqrt(s_ii s_jj) off it (rbar = mean pairwise sample correlation); delta = kappa / T with
    kappa = (pi - rho) / gamma (Ledoit & Wolf 2004, "Honey, I shrunk the sample covariance matrix",
    J. Portfolio Management; the estimator of their covCor.m). S uses 1/T as in the paper.
    `target="identity"`: F = (tr S / N) I (Ledoit & Wolf 2004, "A well-conditioned estimator for
    large-dimensional covariance matrices", JMVA), computed by scikit-learn's `ledoit_wolf`.
    Returns (shrunk covariance N x N, delta).
    """
    matrix = as_returns_matrix(returns)
    if target == "identity":
        from sklearn.covariance import ledoit_wolf  # scikit-learn: ~1.7 s to import

        shrunk, delta = ledoit_wolf(matrix)
        return np.asarray(shrunk, dtype=np.float64), float(delta)
    if target != "constant_correlation":
        raise ValueError(f"target must be 'constant_correlation' or 'identity', got {target!r}")
    n_obs, n_assets = matrix.shape
    centered = matrix - matrix.mean(axis=0)
    sample = centered.T @ centered / n_obs
    variances = np.diag(sample)
    if (variances <= 0).any():
        raise ValueError(
            f"returns has zero-variance columns {np.flatnonzero(variances <= 0).tolist()[:10]}; "
            "the constant-correlation target is undefined"
        )
    sd = np.sqrt(variances)
    if n_assets == 1:
        return sample.copy(), 0.0
    corr = sample / np.outer(sd, sd)
    rbar = (corr.sum() - n_assets) / (n_assets * (n_assets - 1))
    prior = rbar * np.outer(sd, sd)
    np.fill_diagonal(prior, variances)

    squared = centered**2
    pi_mat = squared.T @ squared / n_obs - sample**2
    pi_hat = pi_mat.sum()
    theta = (centered**3).T @ centered / n_obs - variances[:, None] * sample
    np.fill_diagonal(theta, 0.0)
    rho_hat = np.trace(pi_mat) + rbar * ((sd[None, :] / sd[:, None]) * theta).sum()
    gamma_hat = ((sample - prior) ** 2).sum()
    if gamma_hat <= 0:
        return sample, 0.0
    delta = float(np.clip((pi_hat - rho_hat) / gamma_hat / n_obs, 0.0, 1.0))
    return delta * prior + (1.0 - delta) * sample, delta


def ewma_covariance(returns: np.ndarray, decay: float = 0.94, demean: bool = False) -> np.ndarray:
    """RiskMetrics (J.P. Morgan 1996) exponentially weighted covariance.

    Equals the recursion Sigma_t = lambda Sigma_{t-1} + (1 - lambda) r_t r_t' seeded with
    Sigma_0 = r_0 r_0': the observation k periods before the last gets weight (1 - lambda) lambda^k and
    the oldest gets lambda^(T-1), so the weights sum to 1. Returns are taken as zero-mean, as in
    RiskMetrics, unless `demean=True`.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"decay must be in (0, 1), got {decay}")
    matrix = as_returns_matrix(returns, min_rows=1)
    if demean:
        matrix = matrix - matrix.mean(axis=0)
    n_obs = matrix.shape[0]
    age = np.arange(n_obs - 1, -1, -1, dtype=np.float64)
    weights = (1.0 - decay) * decay**age
    weights[0] = decay ** (n_obs - 1)
    return (matrix * weights[:, None]).T @ matrix


def covariance_matrix(returns: np.ndarray, method: str = "sample", **kwargs) -> np.ndarray:
    """Covariance of a T x N return matrix by name: "sample", "ledoit_wolf" (constant-correlation
    target), "ledoit_wolf_identity" or "ewma" (kwargs: `decay`, `demean`)."""
    if method == "sample":
        return sample_covariance(returns, **kwargs)
    if method == "ledoit_wolf":
        return ledoit_wolf_covariance(returns, target="constant_correlation")[0]
    if method == "ledoit_wolf_identity":
        return ledoit_wolf_covariance(returns, target="identity")[0]
    if method == "ewma":
        return ewma_covariance(returns, **kwargs)
    raise ValueError(f"unknown covariance method {method!r}; expected one of {COVARIANCE_METHODS}")
