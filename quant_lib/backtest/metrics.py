"""Performance metrics of an equity curve and a trade log.

Conventions follow empyrical / quantstats:

- Period returns are simple returns of the equity curve with the initial capital prepended:
  ``r_t = E_t / E_{t-1} - 1`` with ``E_{-1} = initial_capital``; so ``n`` equity points give
  ``n`` returns.
- ``risk_free_rate`` is an annual rate, converted per period as ``(1 + rf) ** (1 / P) - 1``
  (``P`` = periods per year) and subtracted from each return for Sharpe and Sortino.
- Ratios whose denominator is zero (flat curve, no losing trade, no drawdown, fewer than two
  returns) are reported as ``0.0``: every value is a finite float, never NaN or inf.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

METRIC_KEYS: tuple[str, ...] = (
    "total_return",
    "annualized_return",
    "volatility",
    "sharpe_ratio",
    "sortino_ratio",
    "calmar_ratio",
    "max_drawdown",
    "max_drawdown_duration",
    "total_trades",
    "win_rate",
    "profit_factor",
    "avg_win",
    "avg_loss",
    "expectancy",
    "best_day",
    "worst_day",
    "skewness",
    "kurtosis",
    "tail_ratio",
    "omega_ratio",
    "value_at_risk",
    "conditional_value_at_risk",
    "stability",
    "n_periods",
    "final_equity",
)

_ZERO_STD = 1e-12


def _as_float_array(values: Any, name: str) -> np.ndarray:
    if isinstance(values, pl.Series):
        array = values.cast(pl.Float64).to_numpy()
    elif isinstance(values, pl.DataFrame):
        raise ValueError(f"{name} must be a 1-D sequence of floats, got a DataFrame")
    else:
        array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise ValueError(f"{name} has non-finite values at positions {bad[:10].tolist()}")
    return array


def trade_pnls(trade_log: Sequence[Mapping[str, Any]] | pl.DataFrame | None) -> np.ndarray:
    """The ``pnl`` of every trade in a trade log (list of dicts or a frame with a ``pnl`` column)."""
    if trade_log is None:
        return np.empty(0)
    if isinstance(trade_log, pl.DataFrame):
        if trade_log.height == 0:
            return np.empty(0)
        if "pnl" not in trade_log.columns:
            raise ValueError(f"trade_log frame needs a 'pnl' column, has {trade_log.columns}")
        return _as_float_array(trade_log["pnl"], "trade_log.pnl")
    missing = [i for i, trade in enumerate(trade_log) if "pnl" not in trade]
    if missing:
        raise ValueError(f"trade_log entries {missing[:10]} have no 'pnl'")
    return _as_float_array([trade["pnl"] for trade in trade_log], "trade_log.pnl")


def _safe_ratio(numerator: float, denominator: float) -> float:
    if denominator == 0.0 or not np.isfinite(denominator):
        return 0.0
    value = numerator / denominator
    return float(value) if np.isfinite(value) else 0.0


def drawdown_series(equity: np.ndarray, initial_capital: float) -> np.ndarray:
    """Drawdown ``E_t / max_{s<=t} E_s - 1`` (<= 0), the running peak starting at the capital."""
    peaks = np.maximum.accumulate(np.concatenate(([initial_capital], equity)))[1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        drawdown = np.where(peaks > 0, equity / peaks - 1.0, 0.0)
    return drawdown


def longest_underwater_run(drawdown: np.ndarray) -> int:
    """Longest run of consecutive periods strictly below the previous peak."""
    underwater = drawdown < 0.0
    if not underwater.any():
        return 0
    index = np.arange(underwater.size)
    last_dry = np.maximum.accumulate(np.where(underwater, -1, index))
    return int((index - last_dry).max())


def compute_metrics(
    equity_curve: Sequence[float] | np.ndarray | pl.Series,
    trade_log: Sequence[Mapping[str, Any]] | pl.DataFrame | None,
    initial_capital: float,
    periods_per_year: int = 252,
    risk_free_rate: float = 0.0,
) -> dict[str, float]:
    """Return, risk and trade statistics (``METRIC_KEYS``), all finite floats.

    With ``r`` the period returns (see module doc), ``P`` periods per year, ``n = len(r)``:

    - total_return = E_last / initial_capital - 1
    - annualized_return (CAGR) = (E_last / initial_capital) ** (P / n) - 1  (-1 if E_last <= 0)
    - volatility = std(r, ddof=1) * sqrt(P)
    - sharpe_ratio = mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)
    - sortino_ratio = mean(r - rf) / sqrt(mean(min(r - rf, 0) ** 2)) * sqrt(P)   (empyrical)
    - max_drawdown = min_t(E_t / running_peak_t - 1), a negative fraction (peak starts at capital)
    - max_drawdown_duration = longest run of periods below the running peak
    - calmar_ratio = annualized_return / |max_drawdown|
    - best_day / worst_day = max(r) / min(r)
    - skewness, kurtosis = sample skewness and excess kurtosis, bias-corrected (pandas ``skew``/``kurt``)
    - tail_ratio = |q95(r)| / |q5(r)|                      (empyrical, linear percentiles)
    - omega_ratio = sum(max(r, 0)) / sum(max(-r, 0))      (threshold 0, empyrical)
    - value_at_risk = q5(r) (historical, a negative number); conditional_value_at_risk = mean(r | r <= VaR)
    - stability = R^2 of a linear fit of cumsum(log1p(r)) on time (empyrical ``stability_of_timeseries``)
    - trades (from each entry's ``pnl``): total_trades = count; win_rate = #(pnl > 0) / count;
      profit_factor = sum(pnl > 0) / |sum(pnl < 0)|; avg_win = mean(pnl | pnl > 0);
      avg_loss = mean(pnl | pnl < 0) (negative); expectancy = mean(pnl)
    - n_periods = n; final_equity = E_last (initial_capital if the curve is empty)

    Edge cases: an empty curve gives zeros (final_equity = capital); one return gives volatility
    and Sharpe 0; zero dispersion (std < 1e-12) gives Sharpe/Sortino 0; no trades give zero
    trade statistics.
    """
    if not np.isfinite(initial_capital) or initial_capital <= 0:
        raise ValueError(f"initial_capital must be a positive number, got {initial_capital}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    equity = _as_float_array(equity_curve, "equity_curve")
    pnl = trade_pnls(trade_log)
    metrics = dict.fromkeys(METRIC_KEYS, 0.0)
    metrics["final_equity"] = float(equity[-1]) if equity.size else float(initial_capital)
    metrics.update(_trade_statistics(pnl))
    if equity.size == 0:
        return metrics

    previous = np.concatenate(([initial_capital], equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.where(previous > 0, equity / previous - 1.0, 0.0)
    n = returns.size
    rf_per_period = (1.0 + risk_free_rate) ** (1.0 / periods_per_year) - 1.0
    excess = returns - rf_per_period
    growth = equity[-1] / initial_capital
    annualized = growth ** (periods_per_year / n) - 1.0 if growth > 0 else -1.0
    drawdown = drawdown_series(equity, initial_capital)
    max_drawdown = float(drawdown.min()) if drawdown.min() < 0 else 0.0

    std = float(returns.std(ddof=1)) if n > 1 else 0.0
    excess_std = float(excess.std(ddof=1)) if n > 1 else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)))
    sqrt_p = np.sqrt(periods_per_year)
    q05, q95 = np.percentile(returns, [5.0, 95.0])
    gains = float(returns[returns > 0].sum())
    losses = float(-returns[returns < 0].sum())
    varying = std > _ZERO_STD

    metrics.update(
        total_return=float(growth - 1.0),
        annualized_return=float(annualized),
        volatility=std * sqrt_p if varying else 0.0,
        sharpe_ratio=_safe_ratio(float(excess.mean()), excess_std) * sqrt_p if excess_std > _ZERO_STD else 0.0,
        sortino_ratio=_safe_ratio(float(excess.mean()), downside) * sqrt_p if downside > _ZERO_STD else 0.0,
        max_drawdown=max_drawdown,
        max_drawdown_duration=float(longest_underwater_run(drawdown)),
        calmar_ratio=_safe_ratio(float(annualized), abs(max_drawdown)),
        best_day=float(returns.max()),
        worst_day=float(returns.min()),
        skewness=_sample_skewness(returns) if n > 2 and varying else 0.0,
        kurtosis=_sample_excess_kurtosis(returns) if n > 3 and varying else 0.0,
        tail_ratio=_safe_ratio(abs(float(q95)), abs(float(q05))),
        omega_ratio=_safe_ratio(gains, losses),
        value_at_risk=float(q05),
        conditional_value_at_risk=float(returns[returns <= q05].mean()),
        stability=_stability(returns) if varying else 0.0,
        n_periods=float(n),
    )
    return {key: (float(value) if np.isfinite(value) else 0.0) for key, value in metrics.items()}


def _stability(returns: np.ndarray) -> float:
    """R^2 of the least-squares line through cumsum(log1p(r)): squared Pearson correlation with time."""
    if returns.size < 2 or np.any(returns <= -1.0):
        return 0.0
    cumulative_log = np.cumsum(np.log1p(returns))
    if cumulative_log.std() == 0.0:
        return 0.0
    correlation = np.corrcoef(np.arange(returns.size, dtype=np.float64), cumulative_log)[0, 1]
    return float(correlation**2)


def _central_moments(returns: np.ndarray) -> tuple[float, float, float]:
    deviations = returns - returns.mean()
    squared = deviations * deviations
    return float(squared.mean()), float((squared * deviations).mean()), float((squared * squared).mean())


def _sample_skewness(returns: np.ndarray) -> float:
    """Adjusted Fisher-Pearson skewness G1 = sqrt(n (n-1)) / (n-2) * m3 / m2^1.5 (pandas ``skew``)."""
    n = returns.size
    m2, m3, _ = _central_moments(returns)
    return float(np.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / m2**1.5)


def _sample_excess_kurtosis(returns: np.ndarray) -> float:
    """Bias-corrected excess kurtosis G2 = ((n+1) g2 + 6) (n-1) / ((n-2)(n-3)), g2 = m4/m2^2 - 3 (pandas ``kurt``)."""
    n = returns.size
    m2, _, m4 = _central_moments(returns)
    g2 = m4 / (m2 * m2) - 3.0
    return float(((n + 1.0) * g2 + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0)))


def _trade_statistics(pnl: np.ndarray) -> dict[str, float]:
    count = pnl.size
    if count == 0:
        return {}
    wins = pnl[pnl > 0]
    losses = pnl[pnl < 0]
    return {
        "total_trades": float(count),
        "win_rate": wins.size / count,
        "profit_factor": _safe_ratio(float(wins.sum()), abs(float(losses.sum()))),
        "avg_win": float(wins.mean()) if wins.size else 0.0,
        "avg_loss": float(losses.mean()) if losses.size else 0.0,
        "expectancy": float(pnl.mean()),
    }


def benchmark_relative_metrics(
    returns: np.ndarray, benchmark_returns: np.ndarray, periods_per_year: int = 252
) -> dict[str, float]:
    """alpha, beta, information_ratio, tracking_error against a benchmark (empyrical conventions).

    Over periods where both series are finite: beta = cov(r, b) / var(b);
    alpha = (1 + mean(r - beta * b)) ** P - 1 (annualized, as empyrical ``alpha``);
    tracking_error = std(r - b, ddof=1) * sqrt(P); information_ratio = mean(r - b) / std(r - b, ddof=1) * sqrt(P).
    All NaN when fewer than two common periods or the benchmark does not vary.
    """
    nan = float("nan")
    result = {"alpha": nan, "beta": nan, "information_ratio": nan, "tracking_error": nan}
    both = np.isfinite(returns) & np.isfinite(benchmark_returns)
    r, b = returns[both], benchmark_returns[both]
    if r.size < 2:
        return result
    active = r - b
    active_std = float(active.std(ddof=1))
    result["tracking_error"] = active_std * np.sqrt(periods_per_year)
    result["information_ratio"] = (
        float(active.mean()) / active_std * np.sqrt(periods_per_year) if active_std > _ZERO_STD else 0.0
    )
    b_var = float(b.var(ddof=1))
    if b_var > _ZERO_STD**2:
        beta = float(np.cov(r, b, ddof=1)[0, 1]) / b_var
        result["beta"] = beta
        result["alpha"] = float((1.0 + np.mean(r - beta * b)) ** periods_per_year - 1.0)
    return result
