"""HMM regimes: labelling, Unknown cases, the path without look-ahead, recovery on the simulator."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.regime import REQUIRED_HISTORY_DAYS, fit_regime, regime_path


def _two_regime_returns(seed: int = 0, end_in_bear: bool = True) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bull = lambda n: rng.normal(0.0006, 0.008, n)  # noqa: E731
    bear = lambda n: rng.normal(-0.0010, 0.022, n)  # noqa: E731
    parts = [bull(400), bear(150), bull(500), bear(200)]
    if not end_in_bear:
        parts.append(bull(300))
    return np.concatenate(parts)


def _bench_frame(returns: np.ndarray, start: date = date(2010, 1, 4)) -> pl.DataFrame:
    prices = 100.0 * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    return pl.DataFrame({"date": [start + timedelta(days=i) for i in range(prices.size)], "adj_close": prices})


def test_labels_the_high_volatility_state_bear() -> None:
    bear = fit_regime(_two_regime_returns(end_in_bear=True), lookback=1250)
    assert bear.state == "Bear" and bear.reason is None
    assert bear.confidence == pytest.approx(bear.posterior["Bear"]) and bear.confidence > 0.9
    assert bear.posterior["Bull"] + bear.posterior["Bear"] == pytest.approx(1.0)
    assert bear.labels == ("Bull", "Bear")
    assert bear.vols[0] == pytest.approx(0.008, rel=0.15) and bear.vols[1] == pytest.approx(0.022, rel=0.15)
    assert bear.means[0] > bear.means[1]
    bull = fit_regime(_two_regime_returns(end_in_bear=False), lookback=1550)
    assert bull.state == "Bull" and bull.confidence > 0.9


def test_is_deterministic_and_ignores_non_finite_returns() -> None:
    returns = _two_regime_returns(seed=1)
    a = fit_regime(returns, lookback=1250, seed=7)
    b = fit_regime(np.concatenate([[np.nan], returns]), lookback=1250, seed=7)
    assert a == b


def test_unknown_with_too_little_data_or_no_convergence() -> None:
    short = fit_regime(np.full(30, 0.001) + np.random.default_rng(0).normal(0, 0.01, 30))
    assert short.state == "Unknown" and "only 30" in short.reason
    assert np.isnan(short.confidence)
    flat = fit_regime(np.zeros(200))
    assert flat.state == "Unknown" and "variance" in flat.reason
    capped = fit_regime(_two_regime_returns(), n_iter=1)
    assert capped.state == "Unknown" and "did not converge" in capped.reason
    with pytest.raises(ValueError, match="n_states"):
        fit_regime(_two_regime_returns(), n_states=1)


def test_path_refits_monthly_and_filters_forward_without_look_ahead() -> None:
    bench = _bench_frame(_two_regime_returns(seed=2, end_in_bear=False))
    full = regime_path(bench, lookback=500)
    assert full.columns == ["date", "regime", "p_bull", "p_bear", "confidence", "reason"]
    assert full.height == bench.height
    known = full.filter(pl.col("regime") != "Unknown")
    assert ((known["p_bull"] + known["p_bear"] - 1.0).abs() < 1e-9).all()
    assert known.select((pl.col("confidence") == pl.max_horizontal("p_bull", "p_bear")).all()).item()
    assert full["reason"][0].startswith("only")

    for cut in (date(2012, 3, 15), date(2013, 2, 1), bench["date"][-1]):
        truncated = regime_path(bench.filter(pl.col("date") <= cut), lookback=500)
        assert truncated.filter(pl.col("date") == cut).equals(full.filter(pl.col("date") == cut))
        start = cut - timedelta(days=500 + 40)
        late_start = regime_path(bench.filter(pl.col("date").is_between(start, cut)), lookback=500)
        assert late_start.filter(pl.col("date") == cut).equals(full.filter(pl.col("date") == cut))


def test_refit_day_equals_fit_regime_and_requested_dates_map_backward() -> None:
    returns = _two_regime_returns(seed=3)
    bench = _bench_frame(returns)
    first_of_month = bench.filter(pl.col("date").dt.month() != pl.col("date").shift(1).dt.month())["date"][-1]
    i = bench["date"].to_list().index(first_of_month)
    est = fit_regime(returns[:i], lookback=400)
    path = regime_path(bench, [first_of_month, first_of_month + timedelta(days=365 * 10)], lookback=400)
    assert path["regime"][0] == est.state
    assert path["p_bear"][0] == pytest.approx(est.posterior["Bear"], abs=1e-12)
    assert path["p_bull"][1] == pytest.approx(regime_path(bench, lookback=400)["p_bull"][-1])
    before = regime_path(bench, [date(2000, 1, 1)])
    assert before["regime"][0] == "Unknown" and "no benchmark price" in before["reason"][0]


def test_recovers_the_simulated_regime_path() -> None:
    market = simulate_market(SimulationConfig(n_tickers=80, seed=2), end=date(2014, 12, 31))
    path = regime_path(market.prices.filter(pl.col("ticker") == "SPY"))
    joined = path.join(market.truth.regime, on="date").filter(pl.col("regime") != "Unknown")
    assert joined.height > 2000
    predicted = joined["regime"].replace_strict({"Bull": 0, "Bear": 1}, return_dtype=pl.Int32)
    accuracy = (predicted == joined["state"]).mean()
    assert accuracy >= 0.8
    assert REQUIRED_HISTORY_DAYS > 1260
