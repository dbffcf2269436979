"""Factor attribution: exact recovery of planted factor returns and an exact return decomposition."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.research.attribution import (
    MARKET,
    SPECIFIC,
    cross_sectional_factor_returns,
    factor_attribution,
    factor_exposures,
)

N_DAYS, N_TICKERS = 30, 12
FACTORS = ["vsm", "bab"]


def _dates(values) -> pl.Series:
    return pl.Series(np.asarray(values, dtype="datetime64[D]")).cast(pl.Date)


def _planted_market(seed: int = 3, noise: float = 0.0):
    """Returns r_{i,t} = a_t + b_vsm,t x_vsm,i,t-1 + b_bab,t x_bab,i,t-1 (+ noise)."""
    rng = np.random.default_rng(seed)
    days = [date(2024, 1, 1) + timedelta(days=k) for k in range(N_DAYS)]
    tickers = [f"T{k:02d}" for k in range(N_TICKERS)]
    z = rng.standard_normal((N_DAYS, N_TICKERS, 2))
    intercept = rng.normal(0.0005, 0.01, N_DAYS)
    premia = rng.normal(0.0, 0.004, (N_DAYS, 2))
    returns = np.zeros((N_DAYS, N_TICKERS))
    returns[1:] = intercept[1:, None] + np.einsum("tnf,tf->tn", z[:-1], premia[1:]) + noise * rng.standard_normal((N_DAYS - 1, N_TICKERS))
    price = 100.0 * np.cumprod(1.0 + returns, axis=0)
    long = {
        "date": _dates(np.repeat(days, N_TICKERS)),
        "ticker": np.tile(tickers, N_DAYS),
    }
    prices = pl.DataFrame({**long, "adj_close": price.ravel()})
    exposures = pl.DataFrame({**long, "vsm": z[:, :, 0].ravel(), "bab": z[:, :, 1].ravel()})
    return prices, exposures, intercept, premia, returns, days, tickers


def test_cross_sectional_regression_recovers_planted_factor_returns():
    prices, exposures, intercept, premia, _, days, _ = _planted_market()
    estimated = cross_sectional_factor_returns(exposures, prices, FACTORS)
    assert estimated["date"].to_list() == days[1:]
    np.testing.assert_allclose(estimated[MARKET].to_numpy(), intercept[1:], atol=1e-9)
    np.testing.assert_allclose(estimated.select(FACTORS).to_numpy(), premia[1:], atol=1e-9)


def test_attribution_sums_to_portfolio_return_and_factor_part_is_exposure_times_premium():
    prices, exposures, intercept, premia, returns, days, tickers = _planted_market(noise=0.002)
    rng = np.random.default_rng(9)
    raw = rng.uniform(0.0, 1.0, (N_DAYS, 4))
    weights = 0.9 * raw / raw.sum(axis=1, keepdims=True)
    held = tickers[:4]
    holdings = pl.DataFrame({
        "date": _dates(np.repeat(days, 4)), "ticker": np.tile(held, N_DAYS), "weight": weights.ravel(),
    })
    portfolio = np.zeros(N_DAYS)
    portfolio[1:] = (weights[:-1] * returns[1:, :4]).sum(axis=1) - 0.0001
    daily = pl.DataFrame({"date": days, "returns": portfolio})

    attribution = factor_attribution(holdings, exposures, prices, daily, FACTORS)
    assert set(attribution["factor"].unique()) == {MARKET, SPECIFIC, *FACTORS}
    totals = attribution.group_by("date").agg(pl.col("contribution").sum()).sort("date")
    np.testing.assert_allclose(totals["contribution"].to_numpy(), portfolio[1:], atol=1e-12)

    estimated = cross_sectional_factor_returns(exposures, prices, FACTORS)
    exposure = factor_exposures(holdings, exposures, FACTORS).sort("date")
    vsm = attribution.filter(pl.col("factor") == "vsm").sort("date")["contribution"].to_numpy()
    np.testing.assert_allclose(vsm, exposure["vsm"].to_numpy()[:-1] * estimated["vsm"].to_numpy(), atol=1e-12)
    market = attribution.filter(pl.col("factor") == MARKET).sort("date")["contribution"].to_numpy()
    np.testing.assert_allclose(market, 0.9 * estimated[MARKET].to_numpy(), atol=1e-12)


def test_missing_exposures_make_the_day_undetermined_not_wrong():
    prices, exposures, *_ = _planted_market()
    day = exposures["date"].unique().sort()[5]
    thin = exposures.filter((pl.col("date") != day) | (pl.col("ticker") < "T02"))
    estimated = cross_sectional_factor_returns(thin, prices, FACTORS)
    next_day = estimated.filter(pl.col("date") == day + timedelta(days=1))
    assert next_day["vsm"][0] is None and next_day[MARKET][0] is None


def test_bad_input_names_the_column():
    prices, exposures, *_ = _planted_market()
    with pytest.raises(ValueError, match="qmj"):
        cross_sectional_factor_returns(exposures, prices, ["vsm", "qmj"])
    with pytest.raises(ValueError, match="weight"):
        factor_attribution(exposures.select("date", "ticker"), exposures, prices, pl.DataFrame({"date": [], "returns": []}), FACTORS)
