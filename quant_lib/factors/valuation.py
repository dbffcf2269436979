"""Valuation upside: a five-year DCF of an operating-cash-flow proxy with a Gordon terminal value,
and a Gordon dividend-discount model as a cross-check, both against the share price."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import polars as pl

from quant_lib.factors._panel import build_panel, finite, output_frame, with_finite
from quant_lib.factors.price_factors import apply_beta

Num = TypeVar("Num")


@dataclass(frozen=True)
class ValuationParams:
    """Constants of the valuation model (annual rates as fractions).

    cost of equity = max(risk_free + beta * equity_risk_premium, terminal_growth + min_spread) (CAPM);
    explicit growth = clip(revenue YoY growth, growth_floor, growth_cap), default_growth when unknown.
    """

    risk_free: float = 0.04
    equity_risk_premium: float = 0.055
    terminal_growth: float = 0.025
    min_spread: float = 0.02
    years: int = 5
    growth_floor: float = -0.05
    growth_cap: float = 0.15
    default_growth: float = 0.03
    default_beta: float = 1.0
    upside_floor: float = -1.0
    upside_cap: float = 3.0
    growth_lag: int = 252


def dcf_value_per_share(
    cash_flow: Num,
    growth: Num,
    cost_of_equity: Num,
    terminal_growth: float = 0.025,
    years: int = 5,
) -> Num:
    """Two-stage DCF (Damodaran, "Investment Valuation", ch. 12).

    V = sum_{t=1..years} CF q^t + CF q^years (1+g_T) / (r - g_T),  q = (1+g) / (1+r),
    i.e. CF (1+g)^t discounted at (1+r)^t plus the Gordon terminal value CF (1+g)^years (1+g_T) / (r - g_T)
    discounted `years` periods. CF = current annual cash flow per share, g = explicit growth,
    r = cost of equity (> g_T).
    Works on floats, numpy arrays and polars expressions.
    """
    ratio = (1.0 + growth) / (1.0 + cost_of_equity)
    value = cash_flow * ratio
    for t in range(2, years + 1):
        value = value + cash_flow * ratio**t
    return value + cash_flow * ratio**years * (1.0 + terminal_growth) / (cost_of_equity - terminal_growth)


def ddm_value_per_share(dividend: Num, cost_of_equity: Num, terminal_growth: float = 0.025) -> Num:
    """Gordon growth dividend-discount model (Gordon 1959): V = D (1 + g) / (r - g), D = annual dividend."""
    return dividend * (1.0 + terminal_growth) / (cost_of_equity - terminal_growth)


def apply_valuation_upside(lf: pl.LazyFrame, params: ValuationParams = ValuationParams()) -> pl.LazyFrame:
    """Add `intrinsic_value`, `upside` and `upside_ddm` (see `valuation_upside`)."""
    names = lf.collect_schema().names()
    p = params
    shares = pl.when(pl.col("shares_outstanding") > 0).then(pl.col("shares_outstanding"))
    lf = lf.with_columns(_rev_lag=pl.col("revenue").shift(p.growth_lag).over("ticker"))
    revenue_lag = pl.col("_rev_lag")
    growth = (
        finite(pl.col("revenue") / pl.when(revenue_lag > 0).then(revenue_lag) - 1.0)
        .clip(p.growth_floor, p.growth_cap)
        .fill_null(p.default_growth)
    )
    beta = pl.col("beta").fill_null(p.default_beta) if "beta" in names else pl.lit(p.default_beta)
    cost = pl.max_horizontal(p.risk_free + beta * p.equity_risk_premium, pl.lit(p.terminal_growth + p.min_spread))
    lf = lf.with_columns(
        _cf=4.0 * pl.col("operating_cash_flow") / shares,
        _dps=4.0 * pl.col("dividends") / shares,
        _g=growth,
        _r=cost,
        _price=pl.when(pl.col("close") > 0).then(pl.col("close")),
    )
    cf, dps, g, r, price = (pl.col(c) for c in ("_cf", "_dps", "_g", "_r", "_price"))
    lf = with_finite(
        lf,
        intrinsic_value=dcf_value_per_share(cf, g, r, p.terminal_growth, p.years),
        _ddm=pl.when(dps > 0).then(ddm_value_per_share(dps, r, p.terminal_growth)),
    )
    return lf.with_columns(
        upside=finite(pl.col("intrinsic_value") / price - 1.0).clip(p.upside_floor, p.upside_cap),
        upside_ddm=finite(pl.col("_ddm") / price - 1.0).clip(p.upside_floor, p.upside_cap),
    ).drop("_cf", "_dps", "_g", "_r", "_price", "_ddm", "_rev_lag")


def valuation_upside(
    fundamentals: pl.DataFrame,
    prices: pl.DataFrame,
    benchmark_ticker: str | None = "SPY",
    params: ValuationParams = ValuationParams(),
) -> pl.DataFrame:
    """Valuation upside from a simple DCF (the seed's valuation module).

    cash flow = 4 * latest quarterly operating_cash_flow / shares_outstanding (annualized free-cash-flow
    proxy); growth g = revenue growth vs `growth_lag` trading days earlier clipped to [-5%, 15%]
    (3% if unknown) for 5 years, then a Gordon terminal value at 2.5%; discount rate = CAPM cost of
    equity 4% + beta * 5.5% (shrunk 252-day beta to the benchmark, 1 when unknown), at least 4.5%.
    upside = clip(intrinsic_value / close - 1, -1, 3). Cross-check upside_ddm uses the Gordon DDM
    on 4 * quarterly dividends per share where dividends > 0 (null otherwise).
    Returns (date, ticker, intrinsic_value, upside, upside_ddm) for the price rows (benchmark included).
    """
    panel = build_panel(prices, fundamentals, benchmark_ticker).lazy()
    if benchmark_ticker is not None:
        panel = apply_beta(panel)
    out = apply_valuation_upside(panel, params)
    return output_frame(out, ["date", "ticker", "intrinsic_value", "upside", "upside_ddm"])
