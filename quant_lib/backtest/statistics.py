"""Statistical validation of Sharpe ratios: PSR and the Deflated Sharpe Ratio.

References:
- Bailey & Lopez de Prado (2012), "The Sharpe Ratio Efficient Frontier" (PSR, SR estimator variance).
- Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality" (expected maximum SR, DSR).

Units: ``sharpe_ratio`` and every ``benchmark_sr`` / ``trials_sharpe_variance`` argument are
ANNUALIZED (``SR_annual = SR_period * sqrt(P)``); internally the tests run on per-period values
as in the papers, where the variance of the per-period SR estimator over ``T`` returns is

    V[SR] = (1 - g3 * SR + (g4 - 1) / 4 * SR^2) / (T - 1)

with ``g3`` the skewness and ``g4`` the (non-excess) kurtosis of the returns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from quant_lib._lazy import LazyModule

special = LazyModule("scipy.special")

EULER_MASCHERONI = 0.5772156649015329


def _returns_array(returns: Sequence[float] | np.ndarray | pl.Series) -> np.ndarray:
    array = returns.cast(pl.Float64).to_numpy() if isinstance(returns, pl.Series) else np.asarray(returns, float)
    if array.ndim != 1:
        raise ValueError(f"returns must be 1-D, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"returns has non-finite values at positions {np.flatnonzero(~np.isfinite(array))[:10].tolist()}")
    return array


def _per_period_sharpe(returns: np.ndarray) -> float:
    if returns.size < 2:
        return 0.0
    std = returns.std(ddof=1)
    return float(returns.mean() / std) if std > 1e-12 else 0.0


def sharpe_ratio(
    returns: Sequence[float] | np.ndarray | pl.Series, periods_per_year: int = 252, risk_free_rate: float = 0.0
) -> float:
    """Annualized Sharpe ratio mean(r - rf) / std(r - rf, ddof=1) * sqrt(P); 0 when undefined.

    ``risk_free_rate`` is annual, converted per period as ``(1 + rf) ** (1 / P) - 1``.
    """
    array = _returns_array(returns) - ((1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0)
    return _per_period_sharpe(array) * float(np.sqrt(periods_per_year))


def sharpe_ratio_variance(returns: Sequence[float] | np.ndarray | pl.Series) -> float:
    """Variance of the per-period SR estimator (module doc); 0 with fewer than 2 returns or no variation."""
    array = _returns_array(returns)
    n = array.size
    if n < 2:
        return 0.0
    sr = _per_period_sharpe(array)
    deviations = array - array.mean()
    m2 = float(np.mean(deviations**2))
    if m2 <= 1e-24:
        return 0.0
    skewness = float(np.mean(deviations**3)) / m2**1.5
    kurtosis = float(np.mean(deviations**4)) / m2**2
    return max((1.0 - skewness * sr + (kurtosis - 1.0) / 4.0 * sr**2) / (n - 1.0), 0.0)


def probabilistic_sharpe_ratio(
    returns: Sequence[float] | np.ndarray | pl.Series, benchmark_sr: float = 0.0, periods_per_year: int = 252
) -> float:
    """PSR = Phi((SR - SR*) / sqrt(V[SR])): probability that the true SR exceeds ``benchmark_sr``.

    SR and SR* per period (``benchmark_sr`` is given annualized and divided by sqrt(P)).
    With fewer than 2 returns, or a zero estimator variance, the answer is 1.0 if SR > SR*,
    0.0 if SR < SR*, 0.5 if equal.
    """
    array = _returns_array(returns)
    sr = _per_period_sharpe(array)
    threshold = benchmark_sr / np.sqrt(periods_per_year)
    variance = sharpe_ratio_variance(array)
    if variance <= 0.0:
        return float(0.5 * (1.0 + np.sign(sr - threshold)))
    return float(special.ndtr((sr - threshold) / np.sqrt(variance)))


def expected_max_sharpe(n_trials: int, variance: float) -> float:
    """Expected maximum SR of ``n_trials`` independent trials with true SR 0 and SR variance ``variance``.

    E[max SR] ~= sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e))),
    gamma = Euler-Mascheroni (Bailey & Lopez de Prado 2014, eq. 6). In the units of sqrt(variance).
    One trial gives 0 (no selection).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if variance < 0 or not np.isfinite(variance):
        raise ValueError(f"variance must be finite and >= 0, got {variance}")
    if n_trials == 1:
        return 0.0
    z = (1.0 - EULER_MASCHERONI) * special.ndtri(1.0 - 1.0 / n_trials) + EULER_MASCHERONI * special.ndtri(
        1.0 - 1.0 / (n_trials * np.e)
    )
    return float(np.sqrt(variance) * z)


def deflated_sharpe_ratio(
    returns: Sequence[float] | np.ndarray | pl.Series,
    n_trials: int,
    trials_sharpe_variance: float | None = None,
    periods_per_year: int = 252,
) -> float:
    """DSR = PSR(SR*) with SR* = expected_max_sharpe(n_trials, V[{SR_n}]) (selection-bias corrected).

    ``trials_sharpe_variance`` is the variance of the ANNUALIZED Sharpe ratios across the trials
    that were tried (converted per period by dividing by P). When None, the variance of this
    strategy's own SR estimator (module doc) stands in for it, as in the seed specification.
    ``n_trials = 1`` gives SR* = 0, i.e. DSR = PSR(0). DSR decreases as ``n_trials`` grows.
    """
    array = _returns_array(returns)
    if trials_sharpe_variance is None:
        variance = sharpe_ratio_variance(array)
    else:
        if trials_sharpe_variance < 0 or not np.isfinite(trials_sharpe_variance):
            raise ValueError(f"trials_sharpe_variance must be finite and >= 0, got {trials_sharpe_variance}")
        variance = trials_sharpe_variance / periods_per_year
    threshold_per_period = expected_max_sharpe(n_trials, variance)
    return probabilistic_sharpe_ratio(array, threshold_per_period * np.sqrt(periods_per_year), periods_per_year)
