"""Factor attribution of a backtest: cross-sectional factor returns times portfolio exposures.

Model (Barra-style fundamental factor model; Fama & MacBeth 1973 cross-sectional regressions;
Grinold & Kahn, "Active Portfolio Management", ch. 3 and 17): on each trading day ``t``

    r_{i,t} = a_t + sum_f b_{f,t} x_{f,i,t-1} + e_{i,t}

where ``r_{i,t}`` is ticker ``i``'s close-to-close return, ``x_{f,i,t-1}`` its factor z-score known
at the previous close (a missing z-score counts as 0, the cross-sectional mean) and ``(a_t, b_t)``
the OLS coefficients over every ticker with a return and at least one z-score that day. ``b_{f,t}``
is the return of factor ``f``'s pure factor-mimicking portfolio, ``a_t`` the common (market) return.

A portfolio holding weights ``w_{i,t-1}`` (fractions of equity at the close of ``t-1``, the rest in
cash) then earns ``R_t = sum_i w_{i,t-1} r_{i,t} - costs_t`` which splits exactly into

- ``market``: ``a_t * sum_i w_{i,t-1}``,
- one term per factor: exposure ``E_{f,t-1} = sum_i w_{i,t-1} x_{f,i,t-1}`` times ``b_{f,t}``,
- ``specific``: the rest, ``R_t - market - sum_f E_f b_f`` (stock-specific returns, trading
  costs, and tickers without z-scores).

Everything is numpy over (day x ticker x factor) arrays; the per-day regressions are one batched
solve of the normal equations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

MARKET = "market"
SPECIFIC = "specific"
_RIDGE = 1e-10


def _require(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; has {frame.columns}")
    if "date" in columns and frame.schema["date"] != pl.Date:
        raise ValueError(f"{name}.date must be pl.Date, got {frame.schema['date']}")


def _grid(frame: pl.DataFrame, dates: np.ndarray, tickers: pl.Series, values: Sequence[str]) -> np.ndarray:
    """(day x ticker x len(values)) float matrix of ``frame``'s columns; NaN where absent.
    Rows on dates outside ``dates`` or tickers outside ``tickers`` are ignored."""
    out = np.full((dates.size, tickers.len(), len(values)), np.nan)
    if frame.height == 0:
        return out
    days = frame["date"].to_physical().to_numpy()
    row = np.searchsorted(dates, days)
    inside = (row < dates.size) & (dates[np.minimum(row, dates.size - 1)] == days)
    col = frame["ticker"].cast(pl.String).cast(pl.Enum(tickers), strict=False).to_physical()
    col = col.fill_null(-1).cast(pl.Int64).to_numpy()
    keep = inside & (col >= 0)
    block = np.column_stack([frame[v].cast(pl.Float64).fill_null(np.nan).to_numpy() for v in values])
    out[row[keep], col[keep]] = block[keep]
    return out


def cross_sectional_factor_returns(
    exposures: pl.DataFrame, prices: pl.DataFrame, factors: Sequence[str]
) -> pl.DataFrame:
    """Daily factor returns ``b_{f,t}`` and the intercept ``a_t`` (column ``market``) of the
    regression in the module docstring, one row per price date after the first.

    ``exposures``: (date, ticker, <factor>...) z-scores; ``prices``: (date, ticker, adj_close).
    Days with fewer than ``len(factors) + 2`` usable tickers have null coefficients.
    """
    _require(exposures, "exposures", ["date", "ticker", *factors])
    _require(prices, "prices", ["date", "ticker", "adj_close"])
    if not factors:
        raise ValueError("factors is empty: name at least one exposure column")
    dates, tickers, asset_returns, lagged = _aligned(exposures, prices, factors)
    coefficients = _regress(asset_returns, lagged)
    frame = pl.DataFrame(
        {"date": pl.Series(dates[1:], dtype=pl.Int32).cast(pl.Date), MARKET: coefficients[1:, 0]}
        | {f: coefficients[1:, k + 1] for k, f in enumerate(factors)}
    )
    return frame.with_columns(pl.exclude("date").fill_nan(None))


def _aligned(
    exposures: pl.DataFrame, prices: pl.DataFrame, factors: Sequence[str]
) -> tuple[np.ndarray, pl.Series, np.ndarray, np.ndarray]:
    """Price calendar, tickers, asset returns (T x N; row t = return from t-1 to t) and the
    exposures of the previous day (T x N x F; row t = z-scores at t-1, NaN where unknown)."""
    dates = np.unique(prices["date"].to_physical().to_numpy())
    tickers = prices["ticker"].cast(pl.String).unique().sort()
    price = _grid(prices, dates, tickers, ["adj_close"])[:, :, 0]
    asset_returns = np.full_like(price, np.nan)
    asset_returns[1:] = price[1:] / price[:-1] - 1.0
    current = _grid(exposures, dates, tickers, list(factors))
    lagged = np.full_like(current, np.nan)
    lagged[1:] = current[:-1]
    return dates, tickers, asset_returns, lagged


def _regress(asset_returns: np.ndarray, lagged: np.ndarray) -> np.ndarray:
    """Per-day OLS of returns on [1, exposures] (T x (1 + F)); NaN rows where under-determined."""
    n_days, n_tickers, n_factors = lagged.shape
    usable = np.isfinite(asset_returns) & np.isfinite(lagged).any(axis=2)
    design = np.concatenate([np.ones((n_days, n_tickers, 1)), np.nan_to_num(lagged, nan=0.0)], axis=2)
    design = design * usable[:, :, None]
    target = np.where(usable, asset_returns, 0.0)
    gram = np.einsum("tnk,tnl->tkl", design, design) + _RIDGE * np.eye(n_factors + 1)
    moment = np.einsum("tnk,tn->tk", design, target)
    coefficients = np.linalg.solve(gram, moment[:, :, None])[:, :, 0]
    enough = usable.sum(axis=1) >= n_factors + 2
    return np.where(enough[:, None], coefficients, np.nan)


def factor_attribution(
    holdings: pl.DataFrame,
    exposures: pl.DataFrame,
    prices: pl.DataFrame,
    portfolio_returns: pl.DataFrame,
    factors: Sequence[str],
) -> pl.DataFrame:
    """Daily return contribution of ``market``, each factor and ``specific`` (module docstring).

    ``holdings``: (date, ticker, weight) weights held at each close (a backtest's ``positions``);
    ``exposures``: (date, ticker, <factor>...) z-scores; ``prices``: (date, ticker, adj_close);
    ``portfolio_returns``: (date, returns) net daily returns of the portfolio.
    Returns long (date, factor, contribution) for every date of ``portfolio_returns`` after the
    first price date; per date the contributions sum to the portfolio return.
    """
    _require(holdings, "holdings", ["date", "ticker", "weight"])
    _require(portfolio_returns, "portfolio_returns", ["date", "returns"])
    _require(exposures, "exposures", ["date", "ticker", *factors])
    _require(prices, "prices", ["date", "ticker", "adj_close"])
    if not factors:
        raise ValueError("factors is empty: name at least one exposure column")
    dates, tickers, asset_returns, lagged = _aligned(exposures, prices, factors)
    coefficients = np.nan_to_num(_regress(asset_returns, lagged), nan=0.0)
    weights = np.nan_to_num(_grid(holdings, dates, tickers, ["weight"])[:, :, 0], nan=0.0)
    held = np.zeros_like(weights)
    held[1:] = weights[:-1]
    exposure = np.einsum("tn,tnf->tf", held, np.nan_to_num(lagged, nan=0.0))
    market = coefficients[:, 0] * held.sum(axis=1)
    by_factor = exposure * coefficients[:, 1:]

    contributions = pl.DataFrame(
        {"date": pl.Series(dates, dtype=pl.Int32).cast(pl.Date), MARKET: market}
        | {f: by_factor[:, k] for k, f in enumerate(factors)}
    ).slice(1)
    returns = portfolio_returns.select("date", pl.col("returns").cast(pl.Float64).fill_null(0.0))
    wide = returns.join(contributions, on="date", how="inner").with_columns(
        (pl.col("returns") - pl.sum_horizontal(MARKET, *factors)).alias(SPECIFIC)
    )
    return (
        wide.drop("returns")
        .unpivot(index="date", variable_name="factor", value_name="contribution")
        .sort("date", "factor")
    )


def factor_exposures(holdings: pl.DataFrame, exposures: pl.DataFrame, factors: Sequence[str]) -> pl.DataFrame:
    """Portfolio exposure ``E_{f,t} = sum_i w_{i,t} x_{f,i,t}`` per date (missing z-scores count as 0):
    (date, <factor>...) for every date of ``holdings``."""
    _require(holdings, "holdings", ["date", "ticker", "weight"])
    _require(exposures, "exposures", ["date", "ticker", *factors])
    joined = holdings.select("date", pl.col("ticker").cast(pl.String), "weight").join(
        exposures.select("date", pl.col("ticker").cast(pl.String), *factors), on=["date", "ticker"], how="left"
    )
    return (
        joined.group_by("date")
        .agg((pl.col("weight") * pl.col(f).cast(pl.Float64).fill_null(0.0)).sum().alias(f) for f in factors)
        .sort("date")
    )
