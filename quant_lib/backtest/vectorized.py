"""Vectorized target-weight backtest over a (date x ticker) panel.

Timing (no look-ahead): a target row dated ``D`` is decided at the close of ``D`` and trades at
the close of the ``execution_lag``-th trading day after ``D`` (the first trading day on or after
``D`` counts as the decision day when ``D`` is not a trading day). The trading calendar is the
sorted set of dates in ``prices``. The equity at the close of day ``t`` therefore depends only on
prices up to ``t`` and on targets decided on or before ``t - execution_lag``.

Rebalancing: on each rebalance day (every trading day for ``"daily"``, the first trading day of
each ISO week / calendar month otherwise) the portfolio trades to the latest executable target
row; tickers absent from that row have target 0, cash is ``1 - sum(weights)``. Between
rebalances holdings (shares) are kept, so weights drift with prices. Before the first executable
target the portfolio is all cash.

Missing prices: a ticker without a price on a day cannot trade that day (its shares are kept) and
is valued at its last known price; it cannot be bought before its first price.

Costs on each trade's value ``v``: ``|v| * (commission_bps + slippage_bps) / 1e4`` plus the
square-root impact ``|v| * impact_coefficient * daily_vol * sqrt(|v| / adv_value)`` where
``daily_vol`` is the 20-day sample standard deviation of daily returns and ``adv_value`` the 20-day mean of
``adj_close * volume``, both known at the trade's close; impact is 0 without a ``volume`` column.
Buys are limited by the cash left after the sells (no margin): the largest buys are cut first.

Equivalence: with ``slippage_bps = impact_coefficient = 0`` and ``execution_lag = 0`` this is
vectorbt's ``Portfolio.from_orders(close, size=w, size_type="targetpercent", fees=commission_bps/1e4,
cash_sharing=True, group_by=True, call_seq="auto")`` with ``w`` the forward-filled targets and the
columns in sorted ticker order (buys of exactly equal value are executed in column order, so the
order decides which one a cash shortfall cuts).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from quant_lib.backtest.metrics import benchmark_relative_metrics, compute_metrics

IMPACT_WINDOW = 20
MIN_TRADE_FRACTION = 1e-10
"""Orders smaller than this fraction of the portfolio are skipped (floating-point residue)."""
_EPOCH_MONDAY_OFFSET = 4  # 1970-01-01 was a Thursday; day 4 is Monday 1970-01-05


@dataclass(frozen=True)
class CostModel:
    """Trading costs in basis points of traded value plus square-root market impact."""

    commission_bps: float = 1.0
    slippage_bps: float = 2.0
    impact_coefficient: float = 0.1

    def __post_init__(self) -> None:
        for name in ("commission_bps", "slippage_bps", "impact_coefficient"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0:
                raise ValueError(f"CostModel.{name} must be a finite number >= 0, got {value}")


@dataclass(frozen=True)
class BacktestConfig:
    initial_capital: float = 1_000_000.0
    rebalance: Literal["daily", "weekly", "monthly"] = "daily"
    execution_lag: int = 1
    costs: CostModel = field(default_factory=CostModel)
    benchmark_ticker: str | None = "SPY"
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        if not np.isfinite(self.initial_capital) or self.initial_capital <= 0:
            raise ValueError(f"initial_capital must be positive, got {self.initial_capital}")
        if self.rebalance not in ("daily", "weekly", "monthly"):
            raise ValueError(f"rebalance must be 'daily', 'weekly' or 'monthly', got {self.rebalance!r}")
        if not isinstance(self.execution_lag, int) or self.execution_lag < 0:
            raise ValueError(f"execution_lag must be an int >= 0, got {self.execution_lag!r}")
        if self.periods_per_year <= 0:
            raise ValueError(f"periods_per_year must be positive, got {self.periods_per_year}")


@dataclass(frozen=True)
class VectorizedBacktestResult:
    daily: pl.DataFrame
    """date, equity, returns, gross_exposure, net_exposure, turnover, costs, cash_weight, benchmark_returns."""
    positions: pl.DataFrame
    """date, ticker, weight: held (post-trade, drifting) weights at each close; zero weights omitted."""
    trades: pl.DataFrame
    """date, ticker, trade_weight (value / pre-trade equity), trade_value (signed money), cost (money)."""
    metrics: dict[str, float]


@dataclass(frozen=True)
class PricePanel:
    """Prices pivoted once to a (day x ticker) matrix; reusable across many backtests.

    ``dates``: int32 days since 1970-01-01 (the trading calendar, sorted); ``tickers``: sorted
    names; ``adj_close``/``volume``: float64 (T x N) with NaN where missing (``volume`` None when
    the frame has no volume column).
    """

    dates: np.ndarray
    tickers: pl.Series
    adj_close: np.ndarray
    volume: np.ndarray | None


def _require_columns(frame: pl.DataFrame, name: str, columns: dict[str, tuple[type, ...]]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing columns {missing}; has {frame.columns}")
    for column, allowed in columns.items():
        dtype = frame.schema[column]
        if not isinstance(dtype, allowed):
            raise ValueError(f"{name}.{column} must be {[a.__name__ for a in allowed]}, got {dtype}")


_KEY_TYPES = {"date": (pl.Date,), "ticker": (pl.String, pl.Categorical, pl.Enum)}
_NUMERIC = (pl.Float64, pl.Float32, pl.Int64, pl.Int32)


def _codes(series: pl.Series, categories: pl.Series) -> np.ndarray:
    """Index of each value in ``categories``; -1 for values not in it."""
    physical = series.cast(pl.Enum(categories), strict=False).to_physical()
    return physical.fill_null(-1).cast(pl.Int64).to_numpy()


def _date_codes(days: np.ndarray, calendar: np.ndarray) -> np.ndarray:
    lookup = np.full(int(calendar[-1] - calendar[0]) + 1, -1, dtype=np.int64)
    lookup[calendar - calendar[0]] = np.arange(calendar.size)
    inside = (days >= calendar[0]) & (days <= calendar[-1])
    return np.where(inside, lookup[np.clip(days - calendar[0], 0, lookup.size - 1)], -1)


def _scatter(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], fill: float, name: str
) -> np.ndarray:
    flat = rows * shape[1] + cols
    slot = np.full(shape[0] * shape[1], -1, dtype=np.int64)
    slot[flat] = np.arange(flat.size)
    duplicated = np.flatnonzero(slot[flat] != np.arange(flat.size))
    if duplicated.size:
        row, col = divmod(int(flat[duplicated[0]]), shape[1])
        raise ValueError(f"{name} has duplicate (date, ticker) rows, e.g. day index {row}, ticker index {col}")
    matrix = np.full(shape, fill, dtype=np.float64)
    matrix.reshape(-1)[flat] = values
    return matrix


def _float_values(frame: pl.DataFrame, column: str) -> np.ndarray:
    series = frame[column].cast(pl.Float64)
    return (series.fill_null(np.nan) if series.null_count() else series).to_numpy()


def _regular_layout(days: np.ndarray, tickers: pl.Series) -> tuple[str, int, np.ndarray] | None:
    """Detect a complete panel stored date-major or ticker-major, without hashing into a table.

    Returns (kind, n_tickers, calendar) when every day has the same tickers in the same order;
    ticker equality across blocks is checked on 64-bit hashes of the names.
    """
    height = days.size
    width = int(np.argmax(days != days[0])) or height
    if height % width == 0:
        by_date = days.reshape(-1, width)
        calendar = by_date[:, 0]
        if (np.diff(calendar) > 0).all() and (by_date == calendar[:, None]).all():
            hashes = tickers.hash().to_numpy().reshape(-1, width)
            return ("date_major", width, calendar) if (hashes == hashes[:1]).all() else None
    steps = np.diff(days)
    n_days = int(np.argmax(steps <= 0)) + 1 if (steps <= 0).any() else height
    if height % n_days == 0:
        by_ticker = days.reshape(-1, n_days)
        calendar = by_ticker[0]
        if (np.diff(calendar) > 0).all() and (by_ticker == calendar).all():
            hashes = tickers.hash().to_numpy().reshape(-1, n_days)
            if (hashes == hashes[:, :1]).all():
                return "ticker_major", height // n_days, calendar
    return None


def prepare_price_panel(prices: pl.DataFrame) -> PricePanel:
    """Validate a long (date, ticker, adj_close[, volume]) frame and pivot it to a ``PricePanel``.

    Complete panels sorted by (date, ticker order) or (ticker, date) are reshaped directly;
    any other layout is scattered by (day, ticker) codes. Duplicate (date, ticker) rows,
    null keys and non-positive prices raise ValueError.
    """
    _require_columns(prices, "prices", {**_KEY_TYPES, "adj_close": _NUMERIC})
    if prices.height == 0:
        raise ValueError("prices is empty")
    if prices["date"].null_count() or prices["ticker"].null_count():
        raise ValueError("prices has null date or ticker values")
    lowest = prices["adj_close"].min()
    if lowest is not None and lowest <= 0:
        bad = prices.filter(pl.col("adj_close") <= 0)
        raise ValueError(f"prices has non-positive adj_close, e.g. {bad.head(3).to_dicts()}")
    ticker_column = prices["ticker"].cast(pl.String)
    days = prices["date"].to_physical().to_numpy()
    has_volume = "volume" in prices.columns
    layout = _regular_layout(days, ticker_column)
    if layout is not None:
        kind, width, calendar = layout
        names = ticker_column.head(width) if kind == "date_major" else ticker_column.gather_every(calendar.size)
        order = names.arg_sort().to_numpy()
        tickers = names.gather(order)
        if tickers.n_unique() == width:
            identity = bool((order == np.arange(width)).all())

            def reshape(values: np.ndarray) -> np.ndarray:
                matrix = values.reshape(calendar.size, width) if kind == "date_major" else values.reshape(width, -1).T
                return np.ascontiguousarray(matrix if identity else matrix[:, order])

            price_matrix = reshape(_float_values(prices, "adj_close"))
            volume = reshape(_float_values(prices, "volume")) if has_volume else None
            return PricePanel(calendar.astype(np.int32), tickers.alias("ticker"), price_matrix, volume)
    first_day = int(days.min())
    present = np.zeros(int(days.max()) - first_day + 1, dtype=bool)
    present[days - first_day] = True
    calendar = (np.flatnonzero(present) + first_day).astype(np.int32)
    tickers = ticker_column.unique().sort()
    shape = (calendar.size, tickers.len())
    rows, cols = _date_codes(days, calendar), _codes(ticker_column, tickers)
    price_matrix = _scatter(rows, cols, _float_values(prices, "adj_close"), shape, np.nan, "prices")
    volume = None
    if has_volume:
        volume = np.full(shape, np.nan)
        volume.reshape(-1)[rows * shape[1] + cols] = _float_values(prices, "volume")
    return PricePanel(calendar, tickers.alias("ticker"), price_matrix, volume)


@dataclass(frozen=True)
class _TargetRows:
    """Sparse target rows (CSR over tickers), one per distinct execution day."""

    indptr: np.ndarray
    index: np.ndarray
    weight: np.ndarray
    execution_day: np.ndarray


def _target_rows(weights: pl.DataFrame, panel: PricePanel, lag: int) -> _TargetRows:
    """Targets by execution day (decision day index + lag). A decision date that is not a trading
    day counts from the next trading day; weights on tickers that never have a price are dropped."""
    n_days, n_tickers = panel.adj_close.shape
    ticker_codes = _codes(weights["ticker"].cast(pl.String), panel.tickers) if weights.height else np.zeros(0, np.int64)
    weight_days = weights["date"].to_physical().to_numpy()
    first, last = int(panel.dates[0]), int(panel.dates[-1])
    next_trading_day = np.searchsorted(panel.dates, np.arange(first, last + 1), side="left")
    offset = weight_days.astype(np.int64) - first
    decision_index = np.where(
        offset < 0, 0, np.where(offset > last - first, n_days, next_trading_day[np.clip(offset, 0, last - first)])
    )
    on_calendar = panel.dates[np.minimum(decision_index, n_days - 1)] == weight_days
    execution_index = decision_index + lag
    usable = (ticker_codes >= 0) & (execution_index < n_days)
    ticker_codes, weight_days, execution_index = ticker_codes[usable], weight_days[usable], execution_index[usable]
    values = _float_values(weights, "weight")[usable]
    if not on_calendar[usable].all():
        # Several non-trading decision dates can map to one execution day: keep the latest one.
        order = np.lexsort((weight_days, execution_index))
        latest_day = np.empty(n_days, dtype=weight_days.dtype)
        latest_day[execution_index[order]] = weight_days[order]
        keep = weight_days == latest_day[execution_index]
        ticker_codes, execution_index, values = ticker_codes[keep], execution_index[keep], values[keep]
    present = np.zeros(n_days, dtype=bool)
    present[execution_index] = True
    execution_day = np.flatnonzero(present)
    row = (np.cumsum(present) - 1)[execution_index]
    cell = row * n_tickers + ticker_codes
    if cell.size > 1 and not (cell[1:] > cell[:-1]).all():
        order = np.argsort(cell, kind="stable")
        cell, row, ticker_codes, values = cell[order], row[order], ticker_codes[order], values[order]
        repeated = np.flatnonzero(cell[1:] == cell[:-1])
        if repeated.size:
            ticker = panel.tickers[int(ticker_codes[repeated[0]])]
            day = np.datetime64(int(panel.dates[execution_day[row[repeated[0]]]]), "D")
            raise ValueError(f"weights has duplicate (date, ticker) rows, e.g. {ticker} executing on {day}")
    nonzero = values != 0.0
    indptr = np.zeros(execution_day.size + 1, dtype=np.int64)
    np.cumsum(np.bincount(row[nonzero], minlength=execution_day.size), out=indptr[1:])
    return _TargetRows(indptr, ticker_codes[nonzero], values[nonzero], execution_day)


def _rebalance_days(calendar: np.ndarray, frequency: str) -> np.ndarray:
    if frequency == "daily":
        return np.ones(calendar.size, dtype=bool)
    if frequency == "weekly":
        period = (calendar.astype(np.int64) - _EPOCH_MONDAY_OFFSET) // 7
    else:
        period = calendar.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    first = np.ones(calendar.size, dtype=bool)
    first[1:] = period[1:] != period[:-1]
    return first


def _forward_fill(matrix: np.ndarray) -> np.ndarray:
    valid = ~np.isnan(matrix)
    index = np.where(valid, np.arange(matrix.shape[0])[:, None], 0)
    np.maximum.accumulate(index, axis=0, out=index)
    filled = np.take_along_axis(matrix, index, axis=0)
    return filled


def _rolling_sums(matrix: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing ``window``-row count, sum and sum of squares of the non-NaN values."""
    valid = ~np.isnan(matrix)
    values = np.where(valid, matrix, 0.0)
    out = []
    for cumulative in (np.cumsum(valid, axis=0, dtype=np.float64), np.cumsum(values, axis=0), np.cumsum(values**2, axis=0)):
        cumulative[window:] -= cumulative[:-window].copy()
        out.append(cumulative)
    return out[0], out[1], out[2]


def _impact_scale(price: np.ndarray, volume: np.ndarray | None, coefficient: float) -> np.ndarray | None:
    """``coefficient * daily_vol / sqrt(adv_value)``, so that impact cost = scale * |v| ** 1.5.

    daily_vol: sample standard deviation (ddof=1) of the daily returns in the trailing 20 days
    (needs two returns); adv_value: mean of adj_close * volume over the trailing 20 days. Both use
    only data up to and including the trade's day. Impact is 0 where either is unknown or ADV is 0.
    """
    if volume is None or coefficient == 0.0 or np.isnan(volume).all():
        return None
    with np.errstate(invalid="ignore", divide="ignore"):
        returns = np.full_like(price, np.nan)
        returns[1:] = price[1:] / _forward_fill(price)[:-1] - 1.0
        count, total, total_squares = _rolling_sums(returns, IMPACT_WINDOW)
        variance = (total_squares - total * total / count) / (count - 1.0)
        daily_vol = np.sqrt(np.clip(variance, 0.0, None))
        value_count, value_total, _ = _rolling_sums(price * volume, IMPACT_WINDOW)
        adv_value = value_total / value_count
        scale = coefficient * daily_vol / np.sqrt(adv_value)
    return np.where(np.isfinite(scale) & (count > 1) & (adv_value > 0), scale, 0.0)


def _validate_weights(weights: pl.DataFrame) -> None:
    _require_columns(weights, "weights", {**_KEY_TYPES, "weight": _NUMERIC})
    if weights["date"].null_count() or weights["ticker"].null_count():
        raise ValueError("weights has null date or ticker values")
    weight = weights["weight"].cast(pl.Float64)
    if weight.null_count() or not weight.is_finite().all():
        bad = weights.filter(weight.is_null() | ~weight.is_finite())
        raise ValueError(f"weights has null/non-finite weights, e.g. {bad.head(3).to_dicts()}")


def _record_frame(panel: PricePanel, days: np.ndarray, tickers: np.ndarray, **values: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": pl.Series(panel.dates[days], dtype=pl.Int32).cast(pl.Date),
            "ticker": panel.tickers.gather(tickers),
            **values,
        }
    )


@dataclass(frozen=True)
class _Simulation:
    """Kernel output: fills and holdings as parallel arrays, plus the (day x 7) daily book
    (equity, cash, traded value, costs, gross, net, pre-trade equity)."""

    fill_day: np.ndarray
    fill_ticker: np.ndarray
    fill_value: np.ndarray
    fill_cost: np.ndarray
    hold_day: np.ndarray
    hold_ticker: np.ndarray
    hold_weight: np.ndarray
    daily: np.ndarray


_DAILY_COLUMNS = ("equity", "returns", "gross_exposure", "net_exposure", "turnover", "costs", "cash_weight")


def _execution_schedule(
    weights: pl.DataFrame, panel: PricePanel, config: BacktestConfig
) -> tuple[_TargetRows, np.ndarray, np.ndarray]:
    """Target rows by execution day, each day's latest executable row (-1 before the first) and
    the rebalance days that have one."""
    targets = _target_rows(weights, panel, config.execution_lag)
    target_row = np.searchsorted(targets.execution_day, np.arange(panel.dates.size), side="right") - 1
    rebalance = _rebalance_days(panel.dates, config.rebalance) & (target_row >= 0)
    return targets, target_row, rebalance


def _simulate(
    panel: PricePanel, targets: _TargetRows, target_row: np.ndarray, rebalance: np.ndarray, config: BacktestConfig
) -> _Simulation:
    """Run the compiled drift/trade/cost kernel over the panel and trim its output buffers."""
    from quant_lib.backtest._kernels import simulate_target_weights  # numba: compiled on first use

    price = panel.adj_close
    n_days, n_tickers = price.shape
    has_missing = bool(np.isnan(price).any())
    tradable = ~np.isnan(price) if has_missing else np.ones((1, 1), dtype=bool)
    valuation = np.nan_to_num(_forward_fill(price), nan=0.0) if has_missing else price
    costs = config.costs
    impact = _impact_scale(price, panel.volume, costs.impact_coefficient)
    capacity = n_days * n_tickers
    fill_day, fill_ticker = np.empty(capacity, dtype=np.int64), np.empty(capacity, dtype=np.int64)
    fill_value, fill_cost = np.empty(capacity), np.empty(capacity)
    hold_day, hold_ticker = np.empty(capacity, dtype=np.int64), np.empty(capacity, dtype=np.int64)
    hold_weight = np.empty(capacity)
    daily = np.zeros((n_days, 7))
    n_fills, n_holds = simulate_target_weights(
        valuation,
        tradable,
        has_missing,
        targets.indptr,
        targets.index,
        targets.weight,
        np.maximum(target_row, 0),
        rebalance,
        (costs.commission_bps + costs.slippage_bps) / 1e4,
        impact if impact is not None else np.zeros((1, 1)),
        impact is not None,
        float(config.initial_capital),
        MIN_TRADE_FRACTION,
        fill_day, fill_ticker, fill_value, fill_cost,
        hold_day, hold_ticker, hold_weight,
        daily,
    )
    fills = (fill_day[:n_fills], fill_ticker[:n_fills], fill_value[:n_fills], fill_cost[:n_fills])
    return _Simulation(*fills, hold_day[:n_holds], hold_ticker[:n_holds], hold_weight[:n_holds], daily)


def _daily_series(daily: np.ndarray, initial_capital: float) -> dict[str, np.ndarray]:
    """``_DAILY_COLUMNS`` plus ``pre_trade`` equity and ``cost_fraction`` (costs / pre-trade equity)."""
    equity, cash, traded, day_costs, gross, net, pre_trade = daily.T
    previous_equity = np.concatenate(([initial_capital], equity[:-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "equity": equity,
            "returns": np.where(previous_equity > 0, equity / previous_equity - 1.0, 0.0),
            "gross_exposure": gross,
            "net_exposure": net,
            "turnover": np.where(pre_trade > 0, traded / pre_trade, 0.0),
            "costs": day_costs,
            "cash_weight": np.where(equity != 0, cash / equity, 0.0),
            "cost_fraction": np.where(pre_trade > 0, day_costs / pre_trade, 0.0),
            "pre_trade": pre_trade,
        }


def _benchmark_returns(panel: PricePanel, ticker: str | None) -> np.ndarray:
    """Daily adj_close returns of ``ticker`` against its last known price; all NaN when absent."""
    benchmark = np.full(panel.dates.size, np.nan)
    if ticker is not None:
        hits = np.flatnonzero((panel.tickers == ticker).to_numpy())
        if hits.size:
            series = panel.adj_close[:, hits[0]]
            benchmark[1:] = series[1:] / _forward_fill(series[:, None])[:-1, 0] - 1.0
    return benchmark


def _daily_frame(panel: PricePanel, series: dict[str, np.ndarray], benchmark: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "date": pl.Series(panel.dates, dtype=pl.Int32).cast(pl.Date),
            **{name: series[name] for name in _DAILY_COLUMNS},
            "benchmark_returns": pl.Series(benchmark).fill_nan(None),
        }
    )


def _position_and_trade_frames(
    panel: PricePanel, sim: _Simulation, pre_trade: np.ndarray
) -> tuple[pl.DataFrame, pl.DataFrame]:
    positions = _record_frame(panel, sim.hold_day, sim.hold_ticker, weight=sim.hold_weight)
    trades = _record_frame(
        panel,
        sim.fill_day,
        sim.fill_ticker,
        trade_weight=sim.fill_value / pre_trade[sim.fill_day],
        trade_value=sim.fill_value,
        cost=sim.fill_cost,
    )
    return positions, trades


def _backtest_metrics(
    series: dict[str, np.ndarray], benchmark: np.ndarray, n_fills: int, config: BacktestConfig
) -> dict[str, float]:
    """``compute_metrics`` over daily P&L plus turnover, cost and benchmark-relative figures."""
    equity, turnover = series["equity"], series["turnover"]
    daily_pnl = np.diff(equity, prepend=config.initial_capital)
    metrics = compute_metrics(equity, pl.DataFrame({"pnl": daily_pnl}), config.initial_capital, config.periods_per_year)
    metrics["total_trades"] = float(n_fills)
    metrics["avg_daily_turnover"] = float(turnover.mean())
    metrics["annual_turnover"] = float(turnover.mean() * config.periods_per_year)
    metrics["total_costs"] = float(series["costs"].sum())
    metrics["cost_drag"] = float(series["cost_fraction"].mean() * config.periods_per_year)
    metrics.update(benchmark_relative_metrics(series["returns"], benchmark, config.periods_per_year))
    return metrics


def run_vectorized_backtest(
    weights: pl.DataFrame, prices: pl.DataFrame | PricePanel, config: BacktestConfig = BacktestConfig()
) -> VectorizedBacktestResult:
    """Simulate trading to target weights with drift, costs and an execution lag (see module doc).

    ``weights``: long (date, ticker, weight) targets decided at each date's close.
    ``prices``: long (date, ticker, adj_close[, volume]) or a ``PricePanel`` from
    ``prepare_price_panel`` (pivot once, backtest many weight sets).
    Metrics: ``compute_metrics`` of the daily equity, where the trade statistics are taken over
    daily portfolio P&L (a weights backtest has no round trips) and ``total_trades`` is the number
    of fills; plus ``avg_daily_turnover`` (sum |trade value| / pre-trade equity), ``annual_turnover``,
    ``total_costs`` (money), ``cost_drag`` (annualized costs / pre-trade equity) and, against
    ``benchmark_ticker``'s adj_close returns, ``alpha``, ``beta``, ``information_ratio``,
    ``tracking_error`` (NaN when the benchmark is absent).
    """
    _validate_weights(weights)
    panel = prices if isinstance(prices, PricePanel) else prepare_price_panel(prices)
    sim = _simulate(panel, *_execution_schedule(weights, panel, config), config)
    series = _daily_series(sim.daily, config.initial_capital)
    benchmark = _benchmark_returns(panel, config.benchmark_ticker)
    positions, trades = _position_and_trade_frames(panel, sim, series["pre_trade"])
    return VectorizedBacktestResult(
        daily=_daily_frame(panel, series, benchmark),
        positions=positions,
        trades=trades,
        metrics=_backtest_metrics(series, benchmark, sim.fill_day.size, config),
    )
