"""compute_metrics: exact answers on constructed curves and a cross-check against pandas formulas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from quant_lib.backtest.metrics import METRIC_KEYS, benchmark_relative_metrics, compute_metrics

CAPITAL = 100_000.0


def test_constant_daily_return_gives_known_values():
    n = 252
    equity = CAPITAL * 1.001 ** np.arange(1, n + 1)
    metrics = compute_metrics(equity, [], CAPITAL)
    assert metrics["total_return"] == pytest.approx(1.001**n - 1, rel=1e-12)
    assert metrics["annualized_return"] == pytest.approx(1.001**252 - 1, rel=1e-12)
    assert metrics["volatility"] == 0.0
    assert metrics["sharpe_ratio"] == 0.0  # zero dispersion: undefined ratio reported as 0
    assert metrics["sortino_ratio"] == 0.0
    assert metrics["max_drawdown"] == 0.0
    assert metrics["max_drawdown_duration"] == 0.0
    assert metrics["calmar_ratio"] == 0.0
    assert metrics["best_day"] == pytest.approx(0.001, rel=1e-9)
    assert metrics["worst_day"] == pytest.approx(0.001, rel=1e-9)
    assert metrics["n_periods"] == n
    assert metrics["final_equity"] == pytest.approx(equity[-1])


def test_known_drawdown_and_duration():
    equity = np.array([110.0, 99.0, 88.0, 99.0, 121.0, 120.0]) * 1000
    metrics = compute_metrics(equity, None, CAPITAL)
    assert metrics["max_drawdown"] == pytest.approx(88 / 110 - 1)
    # underwater from 99 (after the 110 peak) through 99 again: 3 periods; then 120 < 121: 1 period
    assert metrics["max_drawdown_duration"] == 3.0
    assert metrics["total_return"] == pytest.approx(0.2)


def test_trade_statistics_from_pnl():
    trades = [{"pnl": 100.0}, {"pnl": -50.0}, {"pnl": 200.0}, {"pnl": -25.0}, {"pnl": 0.0}]
    metrics = compute_metrics([CAPITAL + 225], trades, CAPITAL)
    assert metrics["total_trades"] == 5
    assert metrics["win_rate"] == pytest.approx(2 / 5)
    assert metrics["profit_factor"] == pytest.approx(300 / 75)
    assert metrics["avg_win"] == pytest.approx(150.0)
    assert metrics["avg_loss"] == pytest.approx(-37.5)
    assert metrics["expectancy"] == pytest.approx(45.0)
    frame_metrics = compute_metrics([CAPITAL + 225], pl.DataFrame({"pnl": [t["pnl"] for t in trades]}), CAPITAL)
    assert frame_metrics["profit_factor"] == metrics["profit_factor"]


@pytest.mark.parametrize("curve", [[], [CAPITAL], [CAPITAL] * 30])
def test_degenerate_curves_are_finite_zeros(curve):
    metrics = compute_metrics(curve, [], CAPITAL)
    assert set(METRIC_KEYS) <= set(metrics)
    assert all(np.isfinite(value) for value in metrics.values())
    for key in ("total_return", "volatility", "sharpe_ratio", "sortino_ratio", "max_drawdown", "win_rate"):
        assert metrics[key] == 0.0
    assert metrics["final_equity"] == CAPITAL


def test_bad_input_raises():
    with pytest.raises(ValueError, match="non-finite"):
        compute_metrics([CAPITAL, np.nan], [], CAPITAL)
    with pytest.raises(ValueError, match="pnl"):
        compute_metrics([CAPITAL], [{"profit": 1.0}], CAPITAL)
    with pytest.raises(ValueError, match="initial_capital"):
        compute_metrics([CAPITAL], [], 0.0)


def _pandas_reference(equity: np.ndarray, capital: float, periods: int, rf_annual: float) -> dict[str, float]:
    """Independent implementation of the documented formulas with pandas."""
    curve = pd.Series(np.concatenate(([capital], equity)))
    returns = curve.pct_change().dropna()
    rf = (1 + rf_annual) ** (1 / periods) - 1
    excess = returns - rf
    running_peak = curve.cummax()
    drawdown = (curve / running_peak - 1).iloc[1:]
    underwater = drawdown < 0
    runs = underwater.groupby((~underwater).cumsum()).sum()
    years = len(returns) / periods
    cagr = (curve.iloc[-1] / capital) ** (1 / years) - 1
    downside = np.sqrt((excess.clip(upper=0) ** 2).mean())
    q05, q95 = returns.quantile(0.05), returns.quantile(0.95)
    cumulative_log = np.log1p(returns).cumsum().reset_index(drop=True)
    return {
        "total_return": curve.iloc[-1] / capital - 1,
        "annualized_return": cagr,
        "volatility": returns.std() * np.sqrt(periods),
        "sharpe_ratio": excess.mean() / excess.std() * np.sqrt(periods),
        "sortino_ratio": excess.mean() / downside * np.sqrt(periods),
        "max_drawdown": drawdown.min(),
        "max_drawdown_duration": float(runs.max()),
        "calmar_ratio": cagr / abs(drawdown.min()),
        "best_day": returns.max(),
        "worst_day": returns.min(),
        "skewness": returns.skew(),
        "kurtosis": returns.kurt(),
        "tail_ratio": abs(q95) / abs(q05),
        "omega_ratio": returns[returns > 0].sum() / -returns[returns < 0].sum(),
        "value_at_risk": q05,
        "conditional_value_at_risk": returns[returns <= q05].mean(),
        "stability": pd.Series(np.arange(len(cumulative_log)), dtype=float).corr(cumulative_log) ** 2,
    }


@pytest.mark.parametrize("seed, rf", [(0, 0.0), (1, 0.03), (2, 0.0)])
def test_matches_independent_pandas_implementation(seed, rf):
    rng = np.random.default_rng(seed)
    returns = rng.standard_t(df=4, size=600) * 0.01 + 0.0004
    equity = CAPITAL * np.cumprod(1 + returns)
    ours = compute_metrics(equity, [], CAPITAL, periods_per_year=252, risk_free_rate=rf)
    reference = _pandas_reference(equity, CAPITAL, 252, rf)
    for key, expected in reference.items():
        assert ours[key] == pytest.approx(expected, rel=1e-9, abs=1e-12), key


def test_benchmark_relative_metrics_recover_beta_and_alpha():
    rng = np.random.default_rng(5)
    benchmark = rng.normal(0.0004, 0.01, 2_000)
    returns = 0.0002 + 1.5 * benchmark
    result = benchmark_relative_metrics(returns, benchmark)
    assert result["beta"] == pytest.approx(1.5, rel=1e-9)
    assert result["alpha"] == pytest.approx(1.0002**252 - 1, rel=1e-9)
    active = returns - benchmark
    assert result["tracking_error"] == pytest.approx(active.std(ddof=1) * np.sqrt(252))
    assert result["information_ratio"] == pytest.approx(active.mean() / active.std(ddof=1) * np.sqrt(252))
    assert np.isnan(benchmark_relative_metrics(returns, np.full_like(returns, np.nan))["beta"])
