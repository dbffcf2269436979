"""PositionSizer edge cases (seed 004 section 8.5) and the weight-cap helpers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pytest

from quant_lib.portfolio import PositionSizer, apply_sector_caps, apply_weight_caps, cap_weights, kelly_fraction


@dataclass
class Signal:
    direction: int
    confidence: float


def test_kelly_known_value_and_negative_floor():
    assert kelly_fraction(0.6, 1.0) == pytest.approx(0.2)
    assert kelly_fraction(0.5, 2.0) == pytest.approx(0.25)
    assert kelly_fraction(0.3, 1.0) == 0.0  # -0.4 floored: never bet negative
    sizer = PositionSizer(method="kelly", max_position_pct=0.25, kelly_multiplier=0.5)
    # f* = 0.2, half Kelly 0.1 of 100k = 10k notional at 50 = 200 shares.
    assert sizer.calculate(100_000, 50.0, 1, {"win_rate": 0.6, "win_loss_ratio": 1.0}) == pytest.approx(200.0)
    assert sizer.calculate(100_000, 50.0, 1, {"win_rate": 0.3, "avg_win": 1.0, "avg_loss": -1.0}) == 0.0


def test_max_position_pct_caps_every_method():
    capital, price = 100_000.0, 37.0
    data = {"win_rate": 0.9, "win_loss_ratio": 5.0, "atr": 0.01}
    for method in ("kelly", "volatility", "fixed_fraction"):
        sizer = PositionSizer(method=method, max_position_pct=0.10, fixed_fraction=0.5, kelly_multiplier=1.0)
        quantity = sizer.calculate(capital, price, Signal(-1, 1.0), data)
        assert abs(quantity * price) == pytest.approx(capital * 0.10)
        assert quantity < 0


def test_atr_sizing_and_zero_atr_fallback():
    sizer = PositionSizer(method="volatility", risk_per_trade=0.01, atr_multiplier=2.0, fixed_fraction=0.03)
    # 1% of 100k = 1000 at risk over a 2 x ATR = 4 stop: 250 shares (5k notional, under the 10k cap).
    assert sizer.calculate(100_000, 20.0, 1, {"atr": 2.0}) == pytest.approx(250.0)
    # ATR = 0 falls back to fixed fraction: 3% of 100k at 20 = 150 shares.
    assert sizer.calculate(100_000, 20.0, 1, {"atr": 0.0}) == pytest.approx(150.0)
    assert sizer.calculate(100_000, 20.0, 1, {}) == pytest.approx(150.0)


def test_signal_strength_and_direction():
    sizer = PositionSizer(method="fixed_fraction", fixed_fraction=0.05)
    assert sizer.calculate(100_000, 10.0, Signal(1, 0.5)) == pytest.approx(250.0)
    assert sizer.calculate(100_000, 10.0, -0.5) == pytest.approx(-250.0)
    assert sizer.calculate(100_000, 10.0, {"direction": 0, "confidence": 1.0}) == 0.0


def test_non_positive_equity_returns_zero_with_warning(caplog):
    sizer = PositionSizer()
    with caplog.at_level(logging.WARNING):
        assert sizer.calculate(0.0, 10.0, 1) == 0.0
        assert sizer.calculate(-5_000.0, 10.0, 1) == 0.0
    assert "capital" in caplog.text


def test_bad_price_and_config_raise():
    with pytest.raises(ValueError, match="prices"):
        PositionSizer().calculate(100_000, 0.0, 1)
    with pytest.raises(ValueError, match="method"):
        PositionSizer(method="martingale")


def test_calculate_many_is_vectorised():
    sizer = PositionSizer(method="volatility", risk_per_trade=0.01, atr_multiplier=2.0, fixed_fraction=0.03)
    quantities = sizer.calculate_many(
        100_000, np.array([20.0, 20.0, 10.0]), np.array([1, -1, 1]), atr=np.array([2.0, np.nan, 0.0])
    )
    np.testing.assert_allclose(quantities, [250.0, -150.0, 300.0])


def test_cap_weights_water_filling_known_answer():
    # 0.5 -> 0.3 frees 0.2: B, C, D get 0.12, 0.04, 0.04; B (0.42) -> 0.3 frees 0.12 for C, D.
    np.testing.assert_allclose(cap_weights(np.array([0.5, 0.3, 0.1, 0.1]), 0.3), [0.3, 0.3, 0.2, 0.2], atol=1e-15)


def test_cap_weights_invariants_and_errors():
    weights = np.random.default_rng(0).dirichlet(np.full(30, 0.3))
    capped = cap_weights(weights, 0.06)
    assert capped.max() <= 0.06 + 1e-15
    assert capped.sum() == pytest.approx(1.0)
    uncapped = weights < 0.06 * 0.5
    assert (capped[uncapped] >= weights[uncapped]).all()
    with pytest.raises(ValueError, match="caps sum"):
        cap_weights(np.full(4, 0.25), 0.2)
    with pytest.raises(ValueError, match="long-only"):
        cap_weights(np.array([1.2, -0.2]), 1.0)


def test_sector_caps_redistribute_to_other_sectors():
    weights = np.array([0.3, 0.3, 0.2, 0.2])
    sectors = np.array(["Tech", "Tech", "Energy", "Health"])
    capped = apply_sector_caps(weights, sectors, {"Tech": 0.4})
    # Tech 0.6 -> 0.4 (each 0.2); the 0.2 excess splits 50/50 over Energy and Health.
    np.testing.assert_allclose(capped, [0.2, 0.2, 0.3, 0.3], atol=1e-15)


def test_position_and_sector_caps_together():
    weights = np.array([0.4, 0.2, 0.2, 0.1, 0.1])
    sectors = np.array(["A", "A", "B", "B", "C"])
    capped = apply_weight_caps(weights, max_weight=0.3, sectors=sectors, sector_caps=0.45)
    assert capped.max() <= 0.3 + 1e-10
    totals = {s: capped[sectors == s].sum() for s in "ABC"}
    assert max(totals.values()) <= 0.45 + 1e-10
    assert capped.sum() == pytest.approx(1.0)
