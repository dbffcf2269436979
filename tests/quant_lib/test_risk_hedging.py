"""Black-Scholes prices, put-call parity and the tail-hedge cost."""

from __future__ import annotations

import numpy as np
import pytest

from quant_lib.risk import black_scholes_call, black_scholes_put, tail_hedge_cost


def test_known_black_scholes_prices():
    # Hull, Options Futures and Other Derivatives: S=K=100, T=1, r=5%, sigma=20%.
    assert black_scholes_put(100.0, 100.0, 1.0, 0.05, 0.2) == pytest.approx(5.5735, abs=5e-5)
    assert black_scholes_call(100.0, 100.0, 1.0, 0.05, 0.2) == pytest.approx(10.4506, abs=5e-5)
    # Hull example 15.6: S=42, K=40, T=0.5, r=10%, sigma=20%: call 4.76, put 0.81.
    assert black_scholes_call(42.0, 40.0, 0.5, 0.10, 0.2) == pytest.approx(4.76, abs=5e-3)
    assert black_scholes_put(42.0, 40.0, 0.5, 0.10, 0.2) == pytest.approx(0.81, abs=5e-3)


def test_put_call_parity_on_a_grid():
    spot = np.array([50.0, 80.0, 100.0, 120.0, 200.0])[:, None]
    strike = np.array([60.0, 100.0, 150.0])[None, :]
    call = black_scholes_call(spot, strike, 0.75, 0.03, 0.35)
    put = black_scholes_put(spot, strike, 0.75, 0.03, 0.35)
    np.testing.assert_allclose(call - put, spot - strike * np.exp(-0.03 * 0.75), atol=1e-10)


def test_tail_hedge_cost():
    result = tail_hedge_cost(
        1_000_000.0, spot=400.0, volatility=0.25, hedge_fraction=0.5, otm_pct=0.2, duration_months=3
    )
    assert set(result) == {"put_price", "strike", "total_cost", "cost_bps", "annualized_cost_bps"}
    assert result["strike"] == pytest.approx(320.0)
    assert result["put_price"] == pytest.approx(black_scholes_put(400.0, 320.0, 0.25, 0.04, 0.25))
    assert result["total_cost"] == pytest.approx(1_250 * result["put_price"])  # 500k / 400 = 1250 units
    assert result["cost_bps"] == pytest.approx(result["total_cost"] / 1_000_000 * 1e4)
    assert result["annualized_cost_bps"] == pytest.approx(4 * result["cost_bps"])


def test_deeper_otm_and_longer_hedges():
    near = tail_hedge_cost(1e6, 100.0, 0.2, otm_pct=0.05)
    far = tail_hedge_cost(1e6, 100.0, 0.2, otm_pct=0.30)
    assert far["cost_bps"] < near["cost_bps"]
    long_dated = tail_hedge_cost(1e6, 100.0, 0.2, duration_months=12)
    assert long_dated["annualized_cost_bps"] == pytest.approx(long_dated["cost_bps"])


def test_bad_inputs():
    with pytest.raises(ValueError, match="volatility"):
        black_scholes_put(100.0, 100.0, 1.0, 0.05, 0.0)
    with pytest.raises(ValueError, match="otm_pct"):
        tail_hedge_cost(1e6, 100.0, 0.2, otm_pct=1.5)
