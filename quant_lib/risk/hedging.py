"""Black-Scholes prices and the cost of a protective-put tail hedge (seed 000 section 4.5.3)."""

from __future__ import annotations

import numpy as np

from quant_lib._lazy import LazyModule

special = LazyModule("scipy.special")


def _d1_d2(spot, strike, maturity, rate, volatility) -> tuple[np.ndarray, np.ndarray]:
    s, k, t, sigma = (np.asarray(x, dtype=np.float64) for x in (spot, strike, maturity, volatility))
    if (s <= 0).any() or (k <= 0).any():
        raise ValueError("spot and strike must be positive")
    if (t <= 0).any() or (sigma <= 0).any():
        raise ValueError("maturity and volatility must be positive")
    sqrt_t = np.sqrt(t)
    d1 = (np.log(s / k) + (rate + 0.5 * sigma**2) * t) / (sigma * sqrt_t)
    return d1, d1 - sigma * sqrt_t


def black_scholes_call(spot, strike, maturity, rate, volatility):
    """European call C = S N(d1) - K e^{-rT} N(d2) (Black & Scholes 1973); numpy-broadcast inputs,
    maturity in years, continuously compounded rate."""
    d1, d2 = _d1_d2(spot, strike, maturity, rate, volatility)
    price = np.asarray(spot) * special.ndtr(d1) - np.asarray(strike) * np.exp(-rate * np.asarray(maturity)) * special.ndtr(d2)
    return float(price) if np.ndim(price) == 0 else price


def black_scholes_put(spot, strike, maturity, rate, volatility):
    """European put P = K e^{-rT} N(-d2) - S N(-d1); P = C - S + K e^{-rT} (put-call parity)."""
    d1, d2 = _d1_d2(spot, strike, maturity, rate, volatility)
    price = np.asarray(strike) * np.exp(-rate * np.asarray(maturity)) * special.ndtr(-d2) - np.asarray(spot) * special.ndtr(-d1)
    return float(price) if np.ndim(price) == 0 else price


def tail_hedge_cost(
    portfolio_value: float,
    spot: float,
    volatility: float,
    hedge_fraction: float = 1.0,
    otm_pct: float = 0.20,
    duration_months: int = 3,
    rate: float = 0.04,
) -> dict[str, float]:
    """Cost of protecting `hedge_fraction` of the portfolio with puts struck `otm_pct` below spot.

    strike K = S (1 - otm_pct), T = duration_months / 12, put price from Black-Scholes;
    contracts' underlying units = V h / S; total_cost = units * put; cost_bps = total_cost / V * 1e4;
    annualized_cost_bps = cost_bps * 12 / duration_months.
    Returns {"put_price", "strike", "total_cost", "cost_bps", "annualized_cost_bps"}.
    """
    if not portfolio_value > 0:
        raise ValueError(f"portfolio_value must be positive, got {portfolio_value}")
    if not 0 <= otm_pct < 1:
        raise ValueError(f"otm_pct must be in [0, 1), got {otm_pct}")
    if not 0 <= hedge_fraction:
        raise ValueError(f"hedge_fraction must be non-negative, got {hedge_fraction}")
    if duration_months <= 0:
        raise ValueError(f"duration_months must be positive, got {duration_months}")
    maturity = duration_months / 12.0
    strike = spot * (1.0 - otm_pct)
    put_price = black_scholes_put(spot, strike, maturity, rate, volatility)
    units = portfolio_value * hedge_fraction / spot
    total_cost = units * put_price
    cost_bps = total_cost / portfolio_value * 1e4
    return {
        "put_price": float(put_price),
        "strike": float(strike),
        "total_cost": float(total_cost),
        "cost_bps": float(cost_bps),
        "annualized_cost_bps": float(cost_bps * 12.0 / duration_months),
    }
