"""Daily portfolio construction: candidates from the rankings, covariance, optimizer, caps,
volatility targeting, the trade list against holdings and VWAP execution schedules.

The unit of work is one rebalance date: every date selects its top-N ranked candidates,
estimates their covariance over the trailing window and runs one optimization. Prices are
pivoted once into a T x N return matrix that every date slices; nothing loops over tickers.

Weights (fractions of portfolio value, long-only cash account):
- `optimizer_weight`: the optimizer's allocation of the invested capital, clipped at 0 and
  normalised to sum 1 (Kelly's own cash fraction is dropped: exposure is set by vol targeting
  for every optimizer alike);
- `raw_weight`: that allocation after the per-position and per-sector caps (water-filled, so it
  still sums to 1 whenever the caps can hold 1);
- `weight = raw_weight * leverage`, leverage = clip(target_vol / realised vol, min_leverage,
  max_leverage) (seed 000 section 4.4.4); the rest (1 - sum weight) is cash.
max_leverage defaults to 1.0, not the seed's 2.0: a long-only cash account cannot borrow, and
leverage above 1 needs a margin account and a financing cost the platform does not model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import polars as pl

from quant_lib.execution import build_trade_list, square_root_impact_bps, vwap_schedule
from quant_lib.execution.trade_list import TRADE_LIST_SCHEMA
from quant_lib.portfolio.constraints import apply_weight_caps
from quant_lib.portfolio.covariance import COVARIANCE_METHODS, covariance_matrix
from quant_lib.portfolio.optimizers import METHODS, optimize_portfolio
from quant_lib.portfolio.risk_control import apply_vol_targeting
from quant_lib.portfolio.schedule import REBALANCE_FREQUENCIES, rebalance_day_flags

CASH_TICKER = "CASH"
_WEIGHT_FLOOR = 1e-8

TARGET_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "sector": pl.String(),
    "score": pl.Float64(),
    "weight": pl.Float64(),
    "raw_weight": pl.Float64(),
    "optimizer_weight": pl.Float64(),
    "model_name": pl.String(),
    "method_used": pl.String(),
    "fallback_reason": pl.String(),
    "leverage": pl.Float64(),
}
"""Columns of `build_targets(...).targets`; the seed's targets schema (ticker, date, weight,
model_name) plus the construction trail."""

DIAGNOSTIC_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "n_candidates": pl.Int64(),
    "method_used": pl.String(),
    "fallback_reason": pl.String(),
    "leverage": pl.Float64(),
    "realized_vol": pl.Float64(),
    "invested": pl.Float64(),
    "covariance_source": pl.String(),
}

COVARIANCE_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "other_ticker": pl.String(),
    "covariance": pl.Float64(),
}

HOLDINGS_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "shares": pl.Float64(),
    "price": pl.Float64(),
    "value": pl.Float64(),
}

SCHEDULE_COLUMNS: dict[str, pl.DataType] = {
    "date": pl.Date(),
    "ticker": pl.String(),
    "side": pl.String(),
    "slice_start": pl.Time(),
    "shares": pl.Int64(),
    "pct": pl.Float64(),
    "expected_impact_bps": pl.Float64(),
}


@dataclass(frozen=True)
class PortfolioConfig:
    """Knobs of the daily portfolio (seed 000 sections 4.4-4.5, seed 004 sections 8.5-8.6).

    optimizer: one of `quant_lib.portfolio.METHODS`.
    Expected returns for kelly / mean_variance follow Grinold's alpha = IC x daily vol x score.
    sector_cap / target_vol None disable the sector caps / vol targeting (leverage 1).
    rebalance_band / rebalance_rate: no-trade band (fraction of portfolio value) and the fraction
    of the gap to target traded per day; hold_rank: held names dropped from the targets are kept
    while their score ranks within the best hold_rank (None: off) (`build_trade_list`).
    score_half_life: half-life in trading days of the EWM of the ranking score the targets are
    built from (0: the raw score; `quant_lib.factors.smoothing.smooth_scores`, applied by the
    caller to the rankings history). rebalance_frequency: "daily", "weekly" or "monthly" (first
    session of the period, `quant_lib.portfolio.schedule`); on other days nothing is traded.
    The turnover defaults (half-life 3, band 2%, rate 0.2, no hold_rank, daily) keep the book's
    21-day turnover near 35% at the no-control book's net Sharpe (`bench_rebalance_band.py`).
    var_limit (daily parametric VaR as a fraction of value), var_confidence and max_turnover (sum
    of one-way turnover over 21 trading days) are the risk report's warning thresholds.
    """

    optimizer: str = "hrp"
    top_n: int = 20
    lookback_days: int = 252
    min_history_days: int = 60
    cov_method: str = "ledoit_wolf"
    max_position: float = 0.10
    sector_cap: float | None = 0.35
    target_vol: float | None = 0.15
    vol_lookback: int = 60
    min_leverage: float = 0.5
    max_leverage: float = 1.0
    information_coefficient: float = 0.05
    initial_cash: float = 1_000_000.0
    min_trade_value: float = 100.0
    var_limit: float = 0.03
    var_confidence: float = 0.95
    max_turnover: float = 0.50
    rebalance_band: float = 0.02
    rebalance_rate: float = 0.2
    hold_rank: int | None = None
    score_half_life: float = 3.0
    rebalance_frequency: str = "daily"

    def __post_init__(self) -> None:
        problems = []
        if self.optimizer not in METHODS:
            problems.append(f"optimizer must be one of {METHODS}, got {self.optimizer!r}")
        if self.cov_method not in COVARIANCE_METHODS:
            problems.append(f"cov_method must be one of {COVARIANCE_METHODS}, got {self.cov_method!r}")
        if self.top_n < 1:
            problems.append(f"top_n must be >= 1, got {self.top_n}")
        if not 2 <= self.min_history_days <= self.lookback_days:
            problems.append(
                f"need 2 <= min_history_days <= lookback_days, got {self.min_history_days}, {self.lookback_days}"
            )
        if not 0 < self.max_position <= 1:
            problems.append(f"max_position must be in (0, 1], got {self.max_position}")
        if self.sector_cap is not None and not 0 < self.sector_cap <= 1:
            problems.append(f"sector_cap must be in (0, 1] or None, got {self.sector_cap}")
        if self.target_vol is not None and not self.target_vol > 0:
            problems.append(f"target_vol must be positive or None, got {self.target_vol}")
        if self.vol_lookback < 2:
            problems.append(f"vol_lookback must be >= 2, got {self.vol_lookback}")
        if not 0 < self.min_leverage <= self.max_leverage:
            problems.append(f"need 0 < min_leverage <= max_leverage, got {self.min_leverage}, {self.max_leverage}")
        if not self.initial_cash > 0:
            problems.append(f"initial_cash must be positive, got {self.initial_cash}")
        if self.min_trade_value < 0:
            problems.append(f"min_trade_value must be >= 0, got {self.min_trade_value}")
        if not 0 < self.var_limit < 1:
            problems.append(f"var_limit must be in (0, 1), got {self.var_limit}")
        if not 0.5 < self.var_confidence < 1:
            problems.append(f"var_confidence must be in (0.5, 1), got {self.var_confidence}")
        if self.hold_rank is not None and self.hold_rank < 1:
            problems.append(f"hold_rank must be >= 1 or None, got {self.hold_rank}")
        if not 0 < self.rebalance_rate <= 1:
            problems.append(f"rebalance_rate must be in (0, 1], got {self.rebalance_rate}")
        if not 0 <= self.rebalance_band < 1:
            problems.append(f"rebalance_band must be in [0, 1), got {self.rebalance_band}")
        if not (self.score_half_life >= 0 and np.isfinite(self.score_half_life)):
            problems.append(f"score_half_life must be a finite number >= 0, got {self.score_half_life}")
        if self.rebalance_frequency not in REBALANCE_FREQUENCIES:
            problems.append(f"rebalance_frequency must be one of {REBALANCE_FREQUENCIES}, got {self.rebalance_frequency!r}")
        if not self.max_turnover > 0:
            problems.append(f"max_turnover must be positive, got {self.max_turnover}")
        if problems:
            raise ValueError("invalid PortfolioConfig: " + "; ".join(problems))

    @property
    def model_name(self) -> str:
        """Optimizer identifier of the targets, e.g. "hrp_top20"."""
        return f"{self.optimizer}_top{self.top_n}"

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))


@dataclass(frozen=True)
class TargetsResult:
    """targets: `TARGET_COLUMNS` rows of held names per date; diagnostics: one row per date
    (`DIAGNOSTIC_COLUMNS`), including dates that ended in cash."""

    targets: pl.DataFrame
    diagnostics: pl.DataFrame

    @property
    def fallbacks(self) -> pl.DataFrame:
        """Dates on which the requested optimizer or the caps needed a fallback."""
        return self.diagnostics.filter(pl.col("fallback_reason").is_not_null())


# --------------------------------------------------------------------------------------------
# Return panel and candidate selection


@dataclass(frozen=True)
class ReturnPanel:
    """Daily simple returns r_t = p_t / p_{t-1} - 1 of every ticker as a T x N matrix (NaN where a
    price or the previous one is missing), dates ascending, tickers sorted."""

    dates: np.ndarray
    tickers: np.ndarray
    returns: np.ndarray

    def end_row(self, day: date) -> int:
        """Rows [0, end) are known at the close of `day`."""
        return int(np.searchsorted(self.dates, np.datetime64(day, "D"), side="right"))

    def columns(self, tickers: Sequence[str] | np.ndarray) -> np.ndarray:
        """Column of each ticker, -1 where the panel has none."""
        names = np.asarray(tickers, dtype=object)
        if self.tickers.size == 0 or names.size == 0:
            return np.full(names.size, -1, dtype=np.int64)
        pos = np.searchsorted(self.tickers, names)
        found = pos < self.tickers.size
        found[found] = self.tickers[pos[found]] == names[found]
        return np.where(found, pos, -1).astype(np.int64)


def return_panel(prices: pl.DataFrame, price_col: str = "adj_close") -> ReturnPanel:
    """Pivot `prices` (date, ticker, `price_col`) once into a `ReturnPanel`."""
    _require(prices, "prices", ("date", "ticker", price_col))
    duplicated = prices.select("date", "ticker").is_duplicated()
    if duplicated.any():
        raise ValueError(f"prices has duplicate (date, ticker) rows, e.g. {prices.filter(duplicated).head(3).rows()}")
    if prices.is_empty():
        return ReturnPanel(np.array([], dtype="datetime64[D]"), np.array([], dtype=object), np.zeros((0, 0)))
    wide = prices.pivot(on="ticker", index="date", values=price_col, sort_columns=True).sort("date")
    tickers = np.asarray([c for c in wide.columns if c != "date"], dtype=object)
    level = wide.drop("date").cast(pl.Float64).to_numpy()
    level = np.where(level > 0, level, np.nan)
    returns = np.full(level.shape, np.nan)
    returns[1:] = level[1:] / level[:-1] - 1.0
    return ReturnPanel(wide["date"].to_numpy().astype("datetime64[D]"), tickers, returns)


@dataclass(frozen=True)
class _Candidates:
    tickers: np.ndarray
    sectors: np.ndarray
    scores: np.ndarray
    returns: np.ndarray


def trailing_returns(panel: ReturnPanel, cols: np.ndarray, end: int, lookback: int, min_rows: int) -> np.ndarray:
    """The last `lookback` rows before `end` of the panel columns `cols`: the rows where all of them
    have a return when there are at least `min_rows` such rows (a common window, so a covariance
    estimate is complete), else every row where any has one, with missing returns set to 0."""
    window = panel.returns[max(0, end - lookback):end][:, cols]
    finite = np.isfinite(window)
    complete = finite.all(axis=1)
    if complete.sum() >= min_rows:
        return window[complete]
    return np.where(finite, window, 0.0)[finite.any(axis=1)]


def _select_candidates(panel: ReturnPanel, ranked: pl.DataFrame, end: int, config: PortfolioConfig) -> _Candidates:
    """The `top_n` best-ranked tickers with at least `min_history_days` returns and a positive
    variance in the trailing `lookback_days` rows ending at `end`; tickers sorted."""
    cols = ranked["_col"].to_numpy()
    window = panel.returns[max(0, end - config.lookback_days):end]
    in_panel = cols >= 0
    counts = np.zeros(cols.size, dtype=np.int64)
    spread = np.zeros(cols.size)
    if window.shape[0] and in_panel.any():
        block = window[:, cols[in_panel]]
        finite = np.isfinite(block)
        counts[in_panel] = finite.sum(axis=0)
        spread[in_panel] = np.where(finite, block, -np.inf).max(axis=0) - np.where(finite, block, np.inf).min(axis=0)
    eligible = in_panel & (counts >= config.min_history_days) & (spread > 0)
    chosen = np.flatnonzero(eligible)[: config.top_n]
    order = np.argsort(ranked["ticker"].to_numpy()[chosen], kind="stable")
    chosen = chosen[order]
    returns = trailing_returns(panel, cols[chosen], end, config.lookback_days, config.min_history_days)
    return _Candidates(
        ranked["ticker"].to_numpy()[chosen].astype(object),
        ranked["sector"].to_numpy()[chosen].astype(object),
        ranked["score"].to_numpy()[chosen].astype(np.float64),
        returns,
    )


def _ranked_by_date(rankings: pl.DataFrame, panel: ReturnPanel, universe: pl.DataFrame | None) -> dict:
    _require(rankings, "rankings", ("date", "ticker", "score", "rank"))
    ranked = rankings.select("date", "ticker", pl.col("score").cast(pl.Float64), "rank").filter(
        pl.col("score").is_not_null() & pl.col("score").is_finite()
    )
    if universe is not None:
        _require(universe, "universe", ("date", "ticker", "sector"))
        info = universe.select(
            "date", "ticker", "sector",
            (pl.col("is_benchmark") if "is_benchmark" in universe.columns else pl.lit(False)).alias("_benchmark"),
        ).unique(["date", "ticker"])
        ranked = (
            ranked.join(info, on=["date", "ticker"], how="left")
            .filter(~pl.col("_benchmark").fill_null(False))
            .drop("_benchmark")
        )
    else:
        ranked = ranked.with_columns(pl.lit(None, dtype=pl.String).alias("sector"))
    ranked = ranked.with_columns(
        pl.col("sector").fill_null("Unknown"),
        pl.Series("_col", panel.columns(ranked["ticker"].to_numpy())),
    ).sort("date", "rank", "ticker")
    return {key[0]: frame for key, frame in ranked.partition_by("date", as_dict=True, maintain_order=True).items()}


def _long_covariance(day: date, tickers: np.ndarray, cov: np.ndarray) -> dict[str, np.ndarray]:
    n = tickers.size
    return {
        "date": np.full(n * n, np.datetime64(day, "D")),
        "ticker": np.repeat(tickers, n),
        "other_ticker": np.tile(tickers, n),
        "covariance": cov.reshape(-1),
    }


def _frame(parts: list[dict[str, np.ndarray]], schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """One frame from per-date column arrays (concatenated once)."""
    if not parts:
        return pl.DataFrame(schema=schema)
    return pl.DataFrame(
        [_series(name, np.concatenate([p[name] for p in parts]), dtype) for name, dtype in schema.items()]
    )


def _series(name: str, values: np.ndarray, dtype: pl.DataType) -> pl.Series:
    """A typed column; object arrays (strings with None) go through a list, since polars infers
    `Object` from an object array whose first element is None and cannot cast that."""
    if values.dtype == object:
        return pl.Series(name, values.tolist(), dtype=dtype)
    return pl.Series(name, values).cast(dtype)


def candidate_covariance(rankings: pl.DataFrame, prices: pl.DataFrame, config: PortfolioConfig) -> pl.DataFrame:
    """Per ranking date, the `config.cov_method` covariance of daily returns of the candidates
    (`top_n` ranked tickers with >= `min_history_days` returns in the trailing `lookback_days`).

    Returns use only prices up to the date (known at its close). Output: date, ticker,
    other_ticker, covariance (daily, N x N per date, sorted by date, ticker, other_ticker).
    """
    panel = return_panel(prices)
    parts = []
    for day, ranked in sorted(_ranked_by_date(rankings, panel, None).items()):
        candidates = _select_candidates(panel, ranked, panel.end_row(day), config)
        if candidates.tickers.size:
            cov = covariance_matrix(candidates.returns, config.cov_method)
            parts.append(_long_covariance(day, candidates.tickers, cov))
    return _frame(parts, COVARIANCE_COLUMNS)


def stored_covariance(stored: dict, day: date, tickers: np.ndarray) -> np.ndarray | None:
    """The block of `tickers` (sorted) of the covariance stored for `day` (`covariance_by_date`),
    or None when it does not cover them all."""
    frame = stored.get(day)
    if frame is None or tickers.size == 0:
        return None
    block = frame.filter(pl.col("ticker").is_in(tickers.tolist()) & pl.col("other_ticker").is_in(tickers.tolist()))
    if block.height != tickers.size**2:
        return None
    block = block.sort("ticker", "other_ticker")
    return block["covariance"].to_numpy().reshape(tickers.size, tickers.size)


def covariance_by_date(covariance: pl.DataFrame | None) -> dict:
    """A long covariance frame (`COVARIANCE_COLUMNS`) split by date: {date: frame}."""
    if covariance is None or covariance.is_empty():
        return {}
    _require(covariance, "covariance", tuple(COVARIANCE_COLUMNS))
    return {k[0]: f for k, f in covariance.partition_by("date", as_dict=True).items()}


# --------------------------------------------------------------------------------------------
# Caps


def _cap_capacity(sectors: np.ndarray, max_position: float, sector_cap: float | None) -> tuple[np.ndarray, float]:
    """Largest weight each name can hold when its sector's names share the sector cap equally,
    min(max_position, sector_cap / n_sector), and the total those weights reach."""
    _, inverse, counts = np.unique(sectors, return_inverse=True, return_counts=True)
    per_name = np.full(sectors.size, max_position)
    if sector_cap is not None:
        per_name = np.minimum(per_name, sector_cap / counts[inverse])
    return per_name, float(per_name.sum())


def apply_caps(
    weights: np.ndarray, sectors: np.ndarray, max_position: float, sector_cap: float | None
) -> tuple[np.ndarray, str | None]:
    """Water-fill long-only weights (sum 1) under the position and sector caps, keeping the sum.

    Uses `apply_weight_caps` (alternating `cap_weights` and `apply_sector_caps`). When the caps
    cannot hold a total of 1 (fewer than 1 / max_position names, or too few sectors), every name
    gets its capacity min(max_position, sector_cap / n_sector): the caps are hard risk limits, the
    shortfall stays in cash and is reported. Returns (weights, note or None).
    """
    capacity_weights, capacity = _cap_capacity(sectors, max_position, sector_cap)
    if capacity < 1.0 - 1e-9:
        return capacity_weights, (
            f"caps hold only {capacity:.1%} of the portfolio ({sectors.size} names, max_position "
            f"{max_position:.0%}, sector_cap {sector_cap}); the rest stays in cash"
        )
    try:
        capped = apply_weight_caps(weights, max_position, sectors, sector_cap)
    except ValueError as exc:
        return capacity_weights / capacity, f"cap water-filling failed ({exc}); used capacity weights"
    return capped, None


# --------------------------------------------------------------------------------------------
# Targets


def _optimize_date(candidates: _Candidates, cov: np.ndarray, config: PortfolioConfig) -> dict:
    n = candidates.tickers.size
    daily_vol = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    expected = config.information_coefficient * daily_vol * candidates.scores
    result = optimize_portfolio(
        config.optimizer,
        candidates.returns,
        expected,
        cov=cov,
        max_weight=config.max_position if n * config.max_position >= 1.0 - 1e-12 else None,
        scores=candidates.scores,
        information_coefficient=config.information_coefficient,
        max_leverage=1.0,
    )
    weights = np.clip(result.weights, 0.0, None)
    weights = np.where(weights < _WEIGHT_FLOOR, 0.0, weights)
    reasons = [result.fallback_reason] if result.fallback_reason else []
    if weights.sum() <= 0:
        weights = np.full(n, 1.0 / n)
        reasons.append(f"{result.method_used} gave no positive weight; equal weight")
    weights = weights / weights.sum()
    capped, note = apply_caps(weights, candidates.sectors, config.max_position, config.sector_cap)
    if note:
        reasons.append(note)
    leverage, realized = 1.0, float("nan")
    if config.target_vol is not None:
        scaled = apply_vol_targeting(
            capped, candidates.returns, config.target_vol, config.vol_lookback, config.min_leverage, config.max_leverage
        )
        leverage, realized = scaled.leverage, scaled.realized_vol
    return {
        "optimizer_weight": weights,
        "raw_weight": capped,
        "leverage": leverage,
        "realized_vol": realized,
        "method_used": result.method_used,
        "fallback_reason": "; ".join(reasons) or None,
    }


def build_targets(
    rankings: pl.DataFrame,
    prices: pl.DataFrame,
    universe: pl.DataFrame,
    config: PortfolioConfig = PortfolioConfig(),
    covariance: pl.DataFrame | None = None,
) -> TargetsResult:
    """Target weights per ranking date.

    Per date: candidates (`candidate_covariance`'s selection) -> covariance (the stored
    `covariance` frame when it covers exactly the candidates, else estimated with
    `config.cov_method`) -> `optimize_portfolio(config.optimizer, R, mu, cov=..., max_weight=...,
    scores=...)` with mu = IC x daily vol x score (Grinold) -> optimizer_weight (sum 1) ->
    `apply_caps` -> raw_weight (sum 1) -> `apply_vol_targeting` leverage in [min_leverage,
    max_leverage] -> weight = raw_weight * leverage. Fallbacks (optimizer, caps) are recorded in
    `fallback_reason`; a date without candidates is all cash (diagnostics only). Never NaN.
    """
    panel = return_panel(prices)
    stored = covariance_by_date(covariance)
    target_parts, diagnostics = [], []
    for day, ranked in sorted(_ranked_by_date(rankings, panel, universe).items()):
        candidates = _select_candidates(panel, ranked, panel.end_row(day), config)
        n = candidates.tickers.size
        if n == 0:
            diagnostics.append({
                "date": day, "n_candidates": 0, "method_used": None, "leverage": 0.0, "realized_vol": None,
                "fallback_reason": f"no ranked ticker has {config.min_history_days} returns in the last "
                f"{config.lookback_days} days; all cash", "invested": 0.0, "covariance_source": None,
            })
            continue
        cov = stored_covariance(stored, day, candidates.tickers)
        source = "stored" if cov is not None else "estimated"
        if cov is None:
            cov = covariance_matrix(candidates.returns, config.cov_method)
        out = _optimize_date(candidates, cov, config)
        held = out["raw_weight"] > 0
        target_parts.append({
            "date": np.full(int(held.sum()), np.datetime64(day, "D")),
            "ticker": candidates.tickers[held],
            "sector": candidates.sectors[held],
            "score": candidates.scores[held],
            "weight": out["raw_weight"][held] * out["leverage"],
            "raw_weight": out["raw_weight"][held],
            "optimizer_weight": out["optimizer_weight"][held],
            "model_name": np.full(int(held.sum()), config.model_name, dtype=object),
            "method_used": np.full(int(held.sum()), out["method_used"], dtype=object),
            "fallback_reason": np.full(int(held.sum()), out["fallback_reason"], dtype=object),
            "leverage": np.full(int(held.sum()), out["leverage"]),
        })
        diagnostics.append({
            "date": day, "n_candidates": n, "method_used": out["method_used"], "leverage": out["leverage"],
            "realized_vol": None if np.isnan(out["realized_vol"]) else out["realized_vol"],
            "fallback_reason": out["fallback_reason"], "invested": float(out["raw_weight"].sum() * out["leverage"]),
            "covariance_source": source,
        })
    targets = _frame(target_parts, TARGET_COLUMNS).sort("date", "ticker")
    return TargetsResult(targets, pl.DataFrame(diagnostics, schema=DIAGNOSTIC_COLUMNS, orient="row"))


def monthly_turnover(targets_history: pl.DataFrame, window: int = 21) -> pl.DataFrame:
    """date, turnover_21d: the sum over the last `window` target dates of the one-way turnover
    0.5 sum_i |w_i,t - w_i,t-1| (weights missing on a date count as 0). The first date of the
    history has no previous weights and contributes nothing; earlier sums cover fewer days."""
    _require(targets_history, "targets_history", ("date", "ticker", "weight"))
    if targets_history.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, "turnover_21d": pl.Float64})
    wide = (
        targets_history.pivot(on="ticker", index="date", values="weight", aggregate_function="sum")
        .sort("date")
        .fill_null(0.0)
    )
    weights = wide.drop("date").to_numpy().astype(np.float64)
    daily = np.zeros(weights.shape[0])
    daily[1:] = 0.5 * np.abs(np.diff(weights, axis=0)).sum(axis=1)
    return wide.select("date").with_columns(
        pl.Series("turnover_21d", daily).rolling_sum(window_size=window, min_samples=1)
    )


# --------------------------------------------------------------------------------------------
# Holdings, trade lists, execution schedules


def cash_holdings(dates: Sequence[date], cash: float) -> pl.DataFrame:
    """The all-cash book: one row per date with ticker "CASH", shares = cash, price 1, value = cash."""
    if not cash > 0:
        raise ValueError(f"cash must be positive, got {cash}")
    days = list(dates)
    return pl.DataFrame(
        {"date": days, "ticker": [CASH_TICKER] * len(days), "shares": [float(cash)] * len(days),
         "price": [1.0] * len(days), "value": [float(cash)] * len(days)},
        schema=HOLDINGS_COLUMNS,
    )


def portfolio_values(holdings: pl.DataFrame, prices: pl.DataFrame) -> pl.DataFrame:
    """date, portfolio_value = cash + sum shares x close of the day. A held ticker without a close
    that day (delisted) is valued at the holdings' own `price` (its last known close) when the
    holdings carry one; else ValueError naming the held tickers without a close."""
    _require(holdings, "holdings", ("date", "ticker", "shares"))
    _require(prices, "prices", ("date", "ticker", "close"))
    last_known = pl.col("price") if "price" in holdings.columns else pl.lit(None, dtype=pl.Float64)
    priced = holdings.join(prices.select("date", "ticker", "close"), on=["date", "ticker"], how="left").with_columns(
        pl.when(pl.col("ticker") == CASH_TICKER).then(1.0).otherwise(pl.col("close").fill_null(last_known)).alias("_price")
    )
    missing = priced.filter(pl.col("_price").is_null() & (pl.col("shares") != 0))
    if missing.height:
        raise ValueError(f"held tickers without a close: {missing.select('date', 'ticker').head(10).rows()}")
    return (
        priced.group_by("date")
        .agg((pl.col("shares").cast(pl.Float64) * pl.col("_price").fill_null(0.0)).sum().alias("portfolio_value"))
        .sort("date")
    )


def _split_by_date(
    plan: pl.DataFrame, holdings: pl.DataFrame, prices: pl.DataFrame, rankings: pl.DataFrame, universe: pl.DataFrame
) -> dict[str, dict]:
    """Each input of `build_trade_lists` split once into {date: that day's rows}."""
    return {
        name: {k[0]: f for k, f in frame.partition_by("date", as_dict=True).items()}
        for name, frame in (
            ("targets", plan),
            ("holdings", holdings.filter(pl.col("ticker") != CASH_TICKER).select("date", "ticker", "shares")),
            ("prices", _prices_with_held(prices, holdings)),
            ("scores", rankings.select("date", "ticker", "score")),
            ("universe", universe.select(
                "date", "ticker", *(c for c in ("name", "sector") if c in universe.columns)
            )),
        )
    }


def build_trade_lists(
    targets: pl.DataFrame,
    holdings: pl.DataFrame,
    prices: pl.DataFrame,
    rankings: pl.DataFrame,
    universe: pl.DataFrame,
    config: PortfolioConfig = PortfolioConfig(),
) -> pl.DataFrame:
    """Per target date, `build_trade_list` from that day's holdings to its targets.

    portfolio_value = cash + shares x close of the day (`portfolio_values`); prices = the day's
    close; alpha_score / conviction from the day's ranking scores; name / sector from the
    universe. The trade list's raw_weight is the optimizer's weight at the day's leverage
    (optimizer_weight x leverage), so reason "Capped at max position" marks names the caps cut.
    Output: date + `TRADE_LIST_SCHEMA` (seed 000 section 5.2 trade fields, side, current and
    target shares, price), sells first then by value, per date. Whole shares; buys never exceed
    cash plus sale proceeds. Only rebalance days of `config.rebalance_frequency` trade (the other
    dates get no rows). A target date without holdings raises ValueError.
    """
    _require(targets, "targets", ("date", "ticker", "weight"))
    _require(rankings, "rankings", ("date", "ticker", "score"))
    _require(universe, "universe", ("date", "ticker"))
    schema = {"date": pl.Date(), **TRADE_LIST_SCHEMA}
    if targets.is_empty():
        return pl.DataFrame(schema=schema)
    targets = targets.filter(rebalance_day_flags(targets["date"], config.rebalance_frequency))
    if targets.is_empty():
        return pl.DataFrame(schema=schema)
    values = portfolio_values(holdings, prices)
    dates = targets["date"].unique().sort()
    missing = dates.filter(~dates.is_in(values["date"]))
    if missing.len():
        raise ValueError(f"no holdings for target dates {missing.head(10).to_list()}")
    wanted = pl.col("optimizer_weight") * pl.col("leverage") if {"optimizer_weight", "leverage"} <= set(targets.columns) else pl.col("weight")
    plan = targets.select("date", "ticker", "weight", wanted.alias("raw_weight"))
    by_date = _split_by_date(plan, holdings, prices, rankings, universe)
    value_of = dict(values.iter_rows())
    empty_holdings = pl.DataFrame(schema={"ticker": pl.String, "shares": pl.Float64})
    lists = []
    for day in dates.to_list():
        trades = build_trade_list(
            by_date["targets"][day].drop("date"),
            by_date["holdings"].get(day, empty_holdings).drop("date", strict=False),
            by_date["prices"].get(day, pl.DataFrame(schema={"date": pl.Date, "ticker": pl.String, "price": pl.Float64})).drop("date"),
            float(value_of[day]),
            scores=by_date["scores"][day].drop("date") if day in by_date["scores"] else None,
            min_trade_value=config.min_trade_value,
            universe=by_date["universe"][day].drop("date") if day in by_date["universe"] else None,
            max_position=config.max_position,
            rebalance_band=config.rebalance_band,
            rebalance_rate=config.rebalance_rate,
            hold_rank=config.hold_rank,
        )
        lists.append(trades.with_columns(pl.lit(day, dtype=pl.Date).alias("date")).select(list(schema)))
    return pl.concat(lists) if lists else pl.DataFrame(schema=schema)


def _prices_with_held(prices: pl.DataFrame, holdings: pl.DataFrame) -> pl.DataFrame:
    """date, ticker, price: the day's close, and for a held ticker without one (delisted) the
    holdings' last known price, so its exit trades there."""
    closes = prices.select("date", "ticker", pl.col("close").alias("price"))
    if "price" not in holdings.columns:
        return closes
    stale = holdings.filter(pl.col("ticker") != CASH_TICKER).select("date", "ticker", pl.col("price").cast(pl.Float64))
    return pl.concat([closes, stale.join(closes, on=["date", "ticker"], how="anti")])


def liquidity_stats(prices: pl.DataFrame, window: int = 20) -> pl.DataFrame:
    """date, ticker, adv (mean volume over the last `window` days, inclusive) and daily_vol (std
    of the last `window` daily adj_close returns), per ticker over its own rows."""
    _require(prices, "prices", ("date", "ticker", "adj_close", "volume"))
    ret = pl.col("adj_close").cast(pl.Float64).pct_change().over("ticker")
    return (
        prices.sort("ticker", "date")
        .with_columns(ret.alias("_ret"))
        .select(
            "date",
            "ticker",
            pl.col("volume").cast(pl.Float64).rolling_mean(window, min_samples=1).over("ticker").alias("adv"),
            pl.col("_ret").rolling_std(window, min_samples=2).over("ticker").alias("daily_vol"),
        )
    )


def execution_schedules(
    trade_list: pl.DataFrame,
    prices: pl.DataFrame,
    volume_window: int = 20,
    volume_profile: np.ndarray | None = None,
) -> pl.DataFrame:
    """VWAP slices of every order (seed 000 section 4.5.1).

    Each order's unsigned `shares` is split over the intraday bins by `vwap_schedule` (slices sum
    exactly to the order); expected_impact_bps = `square_root_impact_bps(shares, adv, daily_vol)`
    with the ticker's `volume_window`-day average volume and daily volatility up to the trade date
    (a VWAP order trades at a constant share of volume, so every slice has the order's
    participation and impact; null when volume or volatility is unknown). Output:
    `SCHEDULE_COLUMNS`.
    """
    _require(trade_list, "trade_list", ("date", "ticker", "side", "shares"))
    orders = trade_list.filter(pl.col("shares") > 0).join(
        liquidity_stats(prices, volume_window), on=["date", "ticker"], how="left"
    )
    if orders.is_empty():
        return pl.DataFrame(schema=SCHEDULE_COLUMNS)
    adv = orders["adv"].fill_null(0.0).to_numpy()
    vol = orders["daily_vol"].fill_nan(None).fill_null(-1.0).to_numpy()
    known = (adv > 0) & (vol >= 0)
    impact = np.full(orders.height, np.nan)
    if known.any():
        impact[known] = square_root_impact_bps(orders["shares"].to_numpy()[known], adv[known], vol[known])
    orders = orders.with_columns(pl.Series("expected_impact_bps", impact).fill_nan(None))
    slices = [
        vwap_schedule(int(row["shares"]), volume_profile).with_columns(
            pl.lit(row["date"], dtype=pl.Date).alias("date"),
            pl.lit(row["ticker"]).alias("ticker"),
            pl.lit(row["side"]).alias("side"),
            pl.lit(row["expected_impact_bps"], dtype=pl.Float64).alias("expected_impact_bps"),
        )
        for row in orders.select("date", "ticker", "side", "shares", "expected_impact_bps").iter_rows(named=True)
    ]
    return pl.concat(slices).select([pl.col(c).cast(t) for c, t in SCHEDULE_COLUMNS.items()])


def _require(frame: pl.DataFrame, name: str, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}")
