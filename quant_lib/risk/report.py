"""The daily risk report of the target portfolio: parametric VaR with its Euler decomposition,
historical VaR / CVaR of the current weights, limit status and the cost of a tail hedge
(seed 000 sections 4.5.2-4.5.3 and the GET /quant/risk/metrics response of section 5.2; limits
of seed 004 section 8.6)."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from quant_lib.portfolio.construction import (
    covariance_by_date,
    return_panel,
    stored_covariance,
    trailing_returns,
)
from quant_lib.portfolio.covariance import covariance_matrix
from quant_lib.risk.hedging import tail_hedge_cost
from quant_lib.risk.limits import RiskLimits, RiskManager
from quant_lib.risk.var import component_var_frame, historical_cvar, historical_var

RISK_REPORT_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "weight": pl.Float64(),
    "marginal_var": pl.Float64(),
    "component_var": pl.Float64(),
    "pct_contribution": pl.Float64(),
    "portfolio_value": pl.Float64(),
    "portfolio_var": pl.Float64(),
    "portfolio_var_pct": pl.Float64(),
    "historical_var_pct": pl.Float64(),
    "historical_cvar_pct": pl.Float64(),
    "var_limit": pl.Float64(),
    "var_limit_breached": pl.Boolean(),
    "hedge_put_price": pl.Float64(),
    "hedge_strike": pl.Float64(),
    "hedge_total_cost": pl.Float64(),
    "hedge_cost_bps": pl.Float64(),
    "hedge_annualized_cost_bps": pl.Float64(),
    "limit_status": pl.String(),
}
"""One row per (date, held ticker); every column after pct_contribution is per date, repeated.
marginal_var is per unit of weight (fraction of value); component_var and portfolio_var are money
and sum: sum_i component_var_i = portfolio_var = portfolio_var_pct x portfolio_value."""

MIN_VAR_OBSERVATIONS = 20
"""Historical VaR / CVaR need this many daily portfolio returns (seed 004 section 8.6)."""


def _values_by_date(portfolio_value: float | pl.DataFrame, dates: list[date]) -> dict[date, float]:
    if isinstance(portfolio_value, pl.DataFrame):
        _require(portfolio_value, "portfolio_value", ("date", "portfolio_value"))
        values = dict(portfolio_value.select("date", "portfolio_value").iter_rows())
        missing = [d for d in dates if not (values.get(d) or 0) > 0]
        if missing:
            raise ValueError(f"no positive portfolio_value for dates {missing[:10]}")
        return values
    if not portfolio_value > 0:
        raise ValueError(f"portfolio_value must be positive, got {portfolio_value}")
    return dict.fromkeys(dates, float(portfolio_value))


def _require(frame: pl.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}")


def _hedge(spot: float | None, bench_returns: np.ndarray, value: float, exposure: float, vol_window: int) -> dict:
    recent = bench_returns[np.isfinite(bench_returns)][-vol_window:]
    volatility = float(recent.std(ddof=1) * np.sqrt(252)) if recent.size >= 2 else 0.0
    if spot is None or not spot > 0 or not volatility > 0 or not exposure > 0:
        return dict.fromkeys(("put_price", "strike", "total_cost", "cost_bps", "annualized_cost_bps"))
    return tail_hedge_cost(value, spot, volatility, hedge_fraction=exposure)


def _limit_status(manager: RiskManager, parametric_pct: float, var_limit: float, confidence: float, value: float,
                  portfolio_returns: np.ndarray, tickers: np.ndarray, weights: np.ndarray) -> str:
    ok, violations = manager.check_all({
        "equity": value,
        "returns": portfolio_returns,
        "positions": dict(zip(tickers.tolist(), (weights * value).tolist())),
    })
    breaches = [] if ok else [v for v in violations if "Concentration" not in v]
    if parametric_pct > var_limit:
        breaches.insert(0, f"Parametric VaR({confidence:.0%}) breached: {parametric_pct:.2%} > {var_limit:.2%}")
    warnings = [v for v in violations if "Concentration" in v]
    if breaches:
        return "BREACH: " + "; ".join(breaches + warnings)
    return "WARN: " + "; ".join(warnings) if warnings else "OK"


def risk_report(
    targets: pl.DataFrame,
    covariance: pl.DataFrame | None,
    prices: pl.DataFrame,
    benchmark_ticker: str,
    portfolio_value: float | pl.DataFrame,
    var_limit: float = 0.03,
    confidence: float = 0.95,
    *,
    lookback_days: int = 252,
    cov_method: str = "ledoit_wolf",
    hedge_vol_window: int = 60,
    max_concentration: float = 0.10,
) -> pl.DataFrame:
    """Risk of each date's target weights (`RISK_REPORT_COLUMNS`).

    - Parametric VaR = z_c sqrt(w' Sigma w) V with Sigma the date's stored `covariance` block of the
      held names (estimated by `cov_method` from the trailing returns when not stored), split into
      marginal and component VaR (`component_var_frame`; components sum to the total).
    - Historical VaR / CVaR of the current weights: r_p = R w over the trailing `lookback_days`
      daily returns of the held names (null with fewer than `MIN_VAR_OBSERVATIONS` returns).
    - var_limit_breached: parametric VaR / V > `var_limit`. limit_status: "OK", "WARN: ..."
      (position concentration above `max_concentration`) or "BREACH: ..." (parametric VaR above
      `var_limit`, or `RiskManager.check_all`'s historical VaR above it): refuse new trades.
    - Tail hedge: `tail_hedge_cost` of 3-month puts 20% out of the money on the benchmark (spot =
      its close, volatility = its trailing `hedge_vol_window`-day annualised return std) covering
      the invested fraction sum(w) of V.
    `portfolio_value`: one value for every date, or a frame (date, portfolio_value).
    """
    _require(targets, "targets", ("date", "ticker", "weight"))
    _require(prices, "prices", ("date", "ticker", "adj_close", "close"))
    held = targets.filter(pl.col("weight") > 0).sort("date", "ticker")
    if held.is_empty():
        return pl.DataFrame(schema=RISK_REPORT_COLUMNS)
    if benchmark_ticker not in set(prices["ticker"].unique().to_list()):
        raise ValueError(f"prices has no rows for the benchmark {benchmark_ticker!r}")
    panel = return_panel(prices)
    stored = covariance_by_date(covariance)
    bench_col = int(panel.columns([benchmark_ticker])[0])
    bench_close = prices.filter(pl.col("ticker") == benchmark_ticker).select("date", "close").sort("date")
    close_dates = bench_close["date"].to_numpy().astype("datetime64[D]")
    close_values = bench_close["close"].to_numpy().astype(np.float64)
    by_date = {k[0]: f for k, f in held.partition_by("date", as_dict=True, maintain_order=True).items()}
    values = _values_by_date(portfolio_value, list(by_date))
    manager = RiskManager(RiskLimits(var_limit=var_limit, var_confidence=confidence, max_concentration=max_concentration,
                                     min_var_observations=MIN_VAR_OBSERVATIONS))
    reports = []
    for day, frame in by_date.items():
        tickers = frame["ticker"].to_numpy().astype(object)
        weights = frame["weight"].to_numpy().astype(np.float64)
        cols = panel.columns(tickers)
        if (cols < 0).any():
            raise ValueError(f"{day}: no prices for held tickers {tickers[cols < 0].tolist()[:10]}")
        end = panel.end_row(day)
        returns = trailing_returns(panel, cols, end, lookback_days, 2)
        value = values[day]
        cov = stored_covariance(stored, day, tickers)
        if cov is None:
            cov = covariance_matrix(returns, cov_method)
        components = component_var_frame(tickers.tolist(), weights, cov, confidence, value)
        total = float(components["component_var"].sum())
        portfolio_returns = returns @ weights
        enough = portfolio_returns.size >= MIN_VAR_OBSERVATIONS
        at = int(np.searchsorted(close_dates, np.datetime64(day, "D"), side="right")) - 1
        hedge = _hedge(
            float(close_values[at]) if at >= 0 else None,
            panel.returns[max(0, end - hedge_vol_window):end, bench_col],
            value, float(weights.sum()), hedge_vol_window,
        )
        per_date = {
            "date": day,
            "portfolio_value": value,
            "portfolio_var": total,
            "portfolio_var_pct": total / value,
            "historical_var_pct": float(historical_var(portfolio_returns, confidence)) if enough else None,
            "historical_cvar_pct": float(historical_cvar(portfolio_returns, confidence)) if enough else None,
            "var_limit": var_limit,
            "var_limit_breached": total / value > var_limit,
            "hedge_put_price": hedge["put_price"],
            "hedge_strike": hedge["strike"],
            "hedge_total_cost": hedge["total_cost"],
            "hedge_cost_bps": hedge["cost_bps"],
            "hedge_annualized_cost_bps": hedge["annualized_cost_bps"],
            "limit_status": _limit_status(manager, total / value, var_limit, confidence, value, portfolio_returns,
                                          tickers, weights),
        }
        reports.append(components.with_columns(
            *(pl.lit(v, dtype=RISK_REPORT_COLUMNS[k]).alias(k) for k, v in per_date.items())
        ))
    return pl.concat(reports).select([pl.col(c).cast(t) for c, t in RISK_REPORT_COLUMNS.items()])
