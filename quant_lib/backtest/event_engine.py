"""Event-driven (bar-by-bar) backtest engine (seed 004 §3.2, §4.7, §8.4-8.6).

Per bar ``t`` of the union timeline of all symbols:

1. mark to market: ``equity = cash + sum(qty * close)`` (a symbol without a bar keeps its last close);
2. stop-loss / take-profit: levels fixed at entry at ``entry -/+ k * ATR`` (Wilder ATR of
   ``atr_period`` bars, known at the entry bar's close). A long stops out when the bar's low
   reaches the stop and fills at ``min(open, stop)`` (gap through the stop fills at the open);
   take-profit when the high reaches the target, filling at ``max(open, target)`` (exits pay
   slippage and commission like any fill); if both are touched in one bar the stop wins (conservative). Shorts mirror this. An injected
   ``risk_manager`` (duck-typed ``check_stop_loss(position, price, atr)`` /
   ``check_take_profit(...)``) replaces the built-in rule and exits at the close;
3. portfolio risk: drawdown from the running peak beyond ``max_drawdown`` or a loss since the
   previous day's last bar beyond ``daily_loss_limit`` flags a breach (or the injected
   ``risk_manager.check_all(state) -> (ok, reasons)``); while breached no position is opened
   (closing signals still execute);
4. signals: once ``seq_len`` bars exist, the window (the last ``seq_len`` rows of every symbol
   that has a bar at ``t``, as a lazy read-only mapping symbol -> polars frame) goes through
   ``pipeline.transform`` and ``model.predict`` when given, then ``strategy.safe_generate_signals``;
5. each signal with direction != 0 passes the confidence and cooldown filters, is sized (injected
   ``sizer.calculate(capital, price, signal, market_data)`` or callable, else the built-in sizer
   ``qty = min(equity * risk_per_trade / (stop_loss_atr * ATR), equity * max_position_pct * |target_position| / price)``,
   the fixed fraction alone when ATR is unknown or 0, 0 when equity <= 0) and filled at the close with slippage
   (``close * (1 +/- slippage_bps / 1e4)``) and commission (``commission_bps`` of notional);
   insufficient buying power reduces the quantity (buying power = cash minus twice the short
   notional: shorts post 100 % margin on top of their proceeds); a signal against an open position
   closes it, and opens the opposite side only when ``allow_short`` (for a short) and not breached;
6. equity, return and positions are recorded; 7. every ``checkpoint_every`` bars a
   JSON-serializable state dict goes to ``checkpoint_callback`` (the engine writes no files).

At the end open positions are closed at the last close (``close_at_end``), and the last equity
point includes those exit costs. Signals are generated with data up to the bar's close and fill
at that close: no later bar is ever read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from quant_lib.backtest.metrics import compute_metrics
from quant_lib.strategies.base import BaseStrategy, Signal

logger = logging.getLogger(__name__)

_PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass(frozen=True)
class EventBacktestConfig:
    initial_capital: float = 100_000.0
    commission_bps: float = 1.0
    slippage_bps: float = 2.0
    max_position_pct: float = 0.10
    risk_per_trade: float = 0.01
    atr_period: int = 14
    stop_loss_atr: float | None = 2.0
    take_profit_atr: float | None = 3.0
    max_drawdown: float = 0.15
    daily_loss_limit: float = 0.03
    min_confidence: float = 0.0
    cooldown_bars: int = 0
    allow_short: bool = False
    seq_len: int = 1
    checkpoint_every: int = 0
    close_at_end: bool = True
    periods_per_year: int = 252

    def __post_init__(self) -> None:
        if not math.isfinite(self.initial_capital) or self.initial_capital <= 0:
            raise ValueError(f"initial_capital must be positive, got {self.initial_capital}")
        for name in ("commission_bps", "slippage_bps", "risk_per_trade", "min_confidence"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 < self.max_position_pct <= 1:
            raise ValueError(f"max_position_pct must be in (0, 1], got {self.max_position_pct}")
        if self.atr_period < 1 or self.seq_len < 1 or self.cooldown_bars < 0 or self.checkpoint_every < 0:
            raise ValueError("atr_period and seq_len must be >= 1; cooldown_bars and checkpoint_every >= 0")
        if not (0 < self.max_drawdown <= 1 and 0 < self.daily_loss_limit <= 1):
            raise ValueError("max_drawdown and daily_loss_limit must be in (0, 1]")


@dataclass
class BacktestResult:
    equity_curve: list[float]
    returns: list[float]
    trade_log: list[dict[str, Any]]
    metrics: dict[str, float]
    positions_history: list[dict[str, float]]
    timestamps: list[Any]
    risk_events: list[dict[str, Any]] = field(default_factory=list)
    """First bar of each risk-breach episode: bar_index, timestamp, kind, message."""


class _Position:
    __slots__ = ("symbol", "column", "quantity", "entry_price", "entry_bar", "entry_commission", "stop", "target", "atr")

    def __init__(self, symbol: str, column: int, quantity: float, entry_price: float, entry_bar: int,
                 entry_commission: float, stop: float, target: float, atr: float) -> None:
        self.symbol = symbol
        self.column = column
        self.quantity = quantity
        self.entry_price = entry_price
        self.entry_bar = entry_bar
        self.entry_commission = entry_commission
        self.stop = stop
        self.target = target
        self.atr = atr

    def as_dict(self, timestamps: list[Any]) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "quantity": self.quantity,
            "direction": 1 if self.quantity > 0 else -1,
            "entry_price": self.entry_price,
            "entry_time": str(timestamps[self.entry_bar]),
            "entry_bar": self.entry_bar,
            "entry_commission": self.entry_commission,
            "stop_loss": None if math.isnan(self.stop) else self.stop,
            "take_profit": None if math.isnan(self.target) else self.target,
            "atr": None if math.isnan(self.atr) else self.atr,
        }


@dataclass(frozen=True)
class _Market:
    symbols: list[str]
    frames: dict[str, pl.DataFrame]
    timestamps: list[Any]
    day: list[int]
    open: list[list[float]]
    high: list[list[float]]
    low: list[list[float]]
    close: list[list[float]]  # forward-filled (valuation)
    has_bar: list[list[bool]]
    atr: list[list[float]]
    rows_through: dict[str, np.ndarray]  # per symbol: rows with time <= timeline[t]


class _WindowView(Mapping):
    """Read-only mapping symbol -> last ``length`` rows up to bar ``t`` (sliced lazily)."""

    __slots__ = ("_market", "_t", "_length")

    def __init__(self, market: _Market, t: int, length: int) -> None:
        self._market = market
        self._t = t
        self._length = length

    def __getitem__(self, symbol: str) -> pl.DataFrame:
        end = int(self._market.rows_through[symbol][self._t])
        start = max(0, end - self._length)
        return self._market.frames[symbol].slice(start, end - start)

    def __iter__(self) -> Iterator[str]:
        market, t = self._market, self._t
        return (symbol for column, symbol in enumerate(market.symbols) if market.has_bar[column][t])

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _time_column(frame: pl.DataFrame, symbol: str) -> str:
    for column in ("timestamp", "date"):
        if column in frame.columns:
            return column
    raise ValueError(f"data[{symbol!r}] needs a 'timestamp' or 'date' column, has {frame.columns}")


def _wilder_atr(frame: pl.DataFrame, period: int) -> np.ndarray:
    """Wilder ATR: EMA (alpha = 1/period, no adjustment) of the true range; NaN for the first period-1 bars."""
    previous_close = pl.col("close").shift(1)
    true_range = pl.max_horizontal(
        pl.col("high") - pl.col("low"),
        (pl.col("high") - previous_close).abs(),
        (pl.col("low") - previous_close).abs(),
    )
    atr = frame.select(true_range.ewm_mean(alpha=1.0 / period, adjust=False, min_samples=period)).to_series()
    return atr.fill_null(np.nan).to_numpy()


def _prepare_market(data: Mapping[str, pl.DataFrame] | pl.DataFrame, atr_period: int) -> _Market:
    if isinstance(data, pl.DataFrame):
        key = next((c for c in ("symbol", "ticker") if c in data.columns), None)
        data = {"asset": data} if key is None else {str(k[0]): f for k, f in data.partition_by(key, as_dict=True).items()}
    if not data:
        raise ValueError("data has no symbol")
    frames: dict[str, pl.DataFrame] = {}
    keys: dict[str, np.ndarray] = {}
    time_dtype = None
    for symbol, frame in data.items():
        time_column = _time_column(frame, symbol)
        missing = [c for c in _PRICE_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"data[{symbol!r}] is missing columns {missing}")
        if frame.height == 0:
            raise ValueError(f"data[{symbol!r}] is empty")
        frame = frame.sort(time_column)
        dtype = frame.schema[time_column]
        if time_dtype is None:
            time_dtype = dtype
        elif dtype != time_dtype:
            raise ValueError(f"data[{symbol!r}] time column is {dtype}, other symbols use {time_dtype}")
        if not isinstance(dtype, (pl.Date, pl.Datetime)):
            raise ValueError(f"data[{symbol!r}].{time_column} must be Date or Datetime, got {dtype}")
        key = frame[time_column].to_physical().to_numpy().astype(np.int64)
        if np.any(key[1:] == key[:-1]):
            raise ValueError(f"data[{symbol!r}] has duplicate timestamps")
        prices = [pl.col(c).cast(pl.Float64) for c in _PRICE_COLUMNS]
        nulls = frame.select(pl.any_horizontal(p.is_null() | p.is_nan() for p in prices).any()).item()
        if nulls:
            raise ValueError(f"data[{symbol!r}] has null/NaN prices")
        frames[str(symbol)] = frame
        keys[str(symbol)] = key
    if len(keys) == 1:
        timeline = next(iter(keys.values()))
    else:
        merged = np.sort(np.concatenate(list(keys.values())), kind="stable")
        timeline = merged[np.concatenate(([True], merged[1:] != merged[:-1]))]
    symbols = list(frames)
    n_bars = timeline.size
    opens, highs, lows, closes, has_bar, atrs, rows_through = [], [], [], [], [], [], {}
    for symbol in symbols:
        frame, key = frames[symbol], keys[symbol]
        position = np.searchsorted(timeline, key)
        present = np.zeros(n_bars, dtype=bool)
        present[position] = True
        rows = np.searchsorted(key, timeline, side="right")
        rows_through[symbol] = rows
        last_row = np.maximum(rows - 1, 0)

        def aligned(values: np.ndarray, fill_forward: bool) -> list[float]:
            out = values[last_row] if fill_forward else np.where(present, values[last_row], np.nan)
            return np.where(rows > 0, out, np.nan).tolist()

        opens.append(aligned(frame["open"].cast(pl.Float64).to_numpy(), False))
        highs.append(aligned(frame["high"].cast(pl.Float64).to_numpy(), False))
        lows.append(aligned(frame["low"].cast(pl.Float64).to_numpy(), False))
        closes.append(aligned(frame["close"].cast(pl.Float64).to_numpy(), True))
        atrs.append(aligned(_wilder_atr(frame, atr_period), True))
        has_bar.append(present.tolist())
    timestamps = pl.Series(timeline).cast(pl.Int64)
    if isinstance(time_dtype, pl.Date):
        timeline_series = timestamps.cast(pl.Int32).cast(pl.Date)
        day = timeline.tolist()
    else:
        timeline_series = timestamps.cast(time_dtype)
        day = timeline_series.dt.date().to_physical().to_numpy().tolist()
    return _Market(symbols, frames, timeline_series.to_list(), day, opens, highs, lows, closes, has_bar, atrs, rows_through)


class BacktestEngine:
    """Bar-by-bar simulation of a strategy (see module doc). Optional injected collaborators
    (duck-typed, never imported here): ``sizer`` with ``calculate(capital, price, signal, market_data)``
    returning a quantity (its sign is ignored; the signal gives the side) or a plain callable with
    that signature; ``risk_manager`` with ``check_all(state) -> (ok, reasons)``,
    ``check_stop_loss(position, price, atr)`` and ``check_take_profit(position, price, atr)``.
    """

    def __init__(
        self,
        config: EventBacktestConfig = EventBacktestConfig(),
        *,
        sizer: Any = None,
        risk_manager: Any = None,
        checkpoint_callback: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.sizer = sizer
        self.risk_manager = risk_manager
        self.checkpoint_callback = checkpoint_callback

    def run(
        self,
        data: Mapping[str, pl.DataFrame] | pl.DataFrame,
        strategy: BaseStrategy,
        model: Any = None,
        pipeline: Any = None,
    ) -> BacktestResult:
        return _Simulation(self, _prepare_market(data, self.config.atr_period), strategy, model, pipeline).run()


class _Simulation:
    def __init__(self, engine: BacktestEngine, market: _Market, strategy: BaseStrategy, model: Any, pipeline: Any):
        config = engine.config
        self.config = config
        self.market = market
        self.strategy = strategy
        self.model = model
        self.pipeline = pipeline
        self.sizer = engine.sizer
        self.risk_manager = engine.risk_manager
        self.checkpoint_callback = engine.checkpoint_callback
        self.cash = float(config.initial_capital)
        self.positions: dict[int, _Position] = {}
        self.trade_log: list[dict[str, Any]] = []
        self.risk_events: list[dict[str, Any]] = []
        self.breach_bars: set[int] = set()
        self.last_breach_bar: dict[str, int] = {}
        self.last_trade_bar: dict[int, int] = {}
        self.column_of = {symbol: column for column, symbol in enumerate(market.symbols)}
        self.slippage = config.slippage_bps / 1e4
        self.commission = config.commission_bps / 1e4

    # fills -----------------------------------------------------------------------------------
    def _close(self, position: _Position, raw_price: float, t: int, reason: str) -> None:
        direction = 1.0 if position.quantity > 0 else -1.0
        fill = raw_price * (1.0 - direction * self.slippage)
        commission = abs(position.quantity) * fill * self.commission
        self.cash += position.quantity * fill - commission
        pnl = position.quantity * (fill - position.entry_price) - position.entry_commission - commission
        del self.positions[position.column]
        self.last_trade_bar[position.column] = t
        timestamps = self.market.timestamps
        self.trade_log.append(
            {
                "symbol": position.symbol,
                "direction": int(direction),
                "quantity": abs(position.quantity),
                "entry_time": timestamps[position.entry_bar],
                "exit_time": timestamps[t],
                "entry_price": position.entry_price,
                "exit_price": fill,
                "commission": position.entry_commission + commission,
                "pnl": pnl,
                "return_pct": pnl / (abs(position.quantity) * position.entry_price),
                "bars_held": t - position.entry_bar,
                "exit_reason": reason,
            }
        )

    def _buying_power(self, t: int) -> float:
        close = self.market.close
        short_notional = sum(-p.quantity * close[p.column][t] for p in self.positions.values() if p.quantity < 0)
        return self.cash - 2.0 * short_notional

    def _open(self, column: int, direction: int, quantity: float, t: int, atr: float) -> None:
        raw = self.market.close[column][t]
        fill = raw * (1.0 + direction * self.slippage)
        affordable = max(self._buying_power(t), 0.0) / (fill * (1.0 + self.commission))
        quantity = min(quantity, affordable)
        if not quantity > 0.0:
            return
        commission = quantity * fill * self.commission
        self.cash -= direction * quantity * fill + commission
        config = self.config
        has_atr = atr == atr and atr > 0.0
        stop = fill - direction * config.stop_loss_atr * atr if has_atr and config.stop_loss_atr else math.nan
        target = fill + direction * config.take_profit_atr * atr if has_atr and config.take_profit_atr else math.nan
        symbol = self.market.symbols[column]
        self.positions[column] = _Position(symbol, column, direction * quantity, fill, t, commission, stop, target, atr)
        self.last_trade_bar[column] = t

    def _size(self, signal: Signal, equity: float, price: float, atr: float) -> float:
        if self.sizer is not None:
            market_data = {"atr": atr, "close": price, "symbol": signal.symbol}
            calculate = getattr(self.sizer, "calculate", self.sizer)
            return abs(float(calculate(equity, price, signal, market_data)))
        if equity <= 0.0 or price <= 0.0:
            return 0.0
        config = self.config
        cap = equity * config.max_position_pct * abs(signal.target_position) / price
        if atr == atr and atr > 0.0 and config.stop_loss_atr:
            return min(cap, equity * config.risk_per_trade / (config.stop_loss_atr * atr))
        return cap

    # per-bar steps ---------------------------------------------------------------------------
    def _equity(self, t: int) -> float:
        close = self.market.close
        return self.cash + sum(p.quantity * close[p.column][t] for p in self.positions.values())

    def _check_exits(self, t: int) -> None:
        market = self.market
        for position in list(self.positions.values()):
            column = position.column
            if not market.has_bar[column][t]:
                continue
            if self.risk_manager is not None:
                price, atr = market.close[column][t], market.atr[column][t]
                state = position.as_dict(market.timestamps)
                if self.risk_manager.check_stop_loss(state, price, atr):
                    self._close(position, price, t, "stop_loss")
                elif self.risk_manager.check_take_profit(state, price, atr):
                    self._close(position, price, t, "take_profit")
                continue
            bar_open, high, low = market.open[column][t], market.high[column][t], market.low[column][t]
            stop, target = position.stop, position.target
            if position.quantity > 0:
                if low <= stop:
                    self._close(position, min(bar_open, stop), t, "stop_loss")
                elif high >= target:
                    self._close(position, max(bar_open, target), t, "take_profit")
            else:
                if high >= stop:
                    self._close(position, max(bar_open, stop), t, "stop_loss")
                elif low <= target:
                    self._close(position, min(bar_open, target), t, "take_profit")

    def _portfolio_breached(self, t: int, equity: float, peak: float, day_start: float, equity_curve: list[float]) -> bool:
        if self.risk_manager is not None:
            history = np.asarray(equity_curve)
            returns = np.diff(history, prepend=self.config.initial_capital) / np.concatenate(
                ([self.config.initial_capital], history[:-1])
            ) if history.size else history
            state = {
                "bar_index": t,
                "equity": equity,
                "peak_equity": peak,
                "cash": self.cash,
                "day_start_equity": day_start,
                "returns": returns,
                "positions": {p.symbol: p.as_dict(self.market.timestamps) for p in self.positions.values()},
            }
            ok, reasons = self.risk_manager.check_all(state)
            if not ok:
                self._risk_event(t, "risk_manager", "; ".join(map(str, reasons)))
            return not ok
        config = self.config
        breached = False
        if peak > 0 and equity / peak - 1.0 <= -config.max_drawdown:
            self._risk_event(t, "max_drawdown", f"Max drawdown breached: {equity / peak - 1.0:.2%}")
            breached = True
        if day_start > 0 and equity / day_start - 1.0 <= -config.daily_loss_limit:
            self._risk_event(t, "daily_loss", f"Daily loss limit breached: {equity / day_start - 1.0:.2%}")
            breached = True
        return breached

    def _risk_event(self, t: int, kind: str, message: str) -> None:
        """Count the breached bar; log and record only the first bar of each breach episode."""
        self.breach_bars.add(t)
        if self.last_breach_bar.get(kind) != t - 1:
            logger.warning("%s at bar %d", message, t)
            self.risk_events.append({"bar_index": t, "timestamp": self.market.timestamps[t], "kind": kind, "message": message})
        self.last_breach_bar[kind] = t

    def _execute(self, signal: Signal, t: int, equity: float, breached: bool) -> None:
        direction = signal.direction
        column = self.column_of.get(signal.symbol)
        market = self.market
        if direction == 0 or column is None or not market.has_bar[column][t]:
            return
        config = self.config
        if signal.confidence < config.min_confidence:
            return
        last = self.last_trade_bar.get(column)
        if last is not None and t - last < config.cooldown_bars:
            return
        position = self.positions.get(column)
        if position is not None:
            if (position.quantity > 0) == (direction > 0):
                return
            self._close(position, market.close[column][t], t, "signal")
        if direction < 0 and not config.allow_short:
            return
        if breached:
            logger.info("Risk breached; skipping signal %s %+d at bar %d", signal.symbol, direction, t)
            return
        price, atr = market.close[column][t], market.atr[column][t]
        self._open(column, direction, self._size(signal, equity, price, atr), t, atr)

    def _checkpoint(self, t: int, equity: float, peak: float, day_start: float, breached: bool) -> dict[str, Any]:
        return {
            "bar_index": t,
            "timestamp": str(self.market.timestamps[t]),
            "cash": self.cash,
            "equity": equity,
            "peak_equity": peak,
            "day_start_equity": day_start,
            "risk_breached": breached,
            "n_trades": len(self.trade_log),
            "positions": {p.symbol: p.as_dict(self.market.timestamps) for p in self.positions.values()},
            "last_trade_bar": {self.market.symbols[c]: b for c, b in self.last_trade_bar.items()},
        }

    def run(self) -> BacktestResult:
        market, config = self.market, self.config
        n_bars = len(market.timestamps)
        equity_curve: list[float] = []
        positions_history: list[dict[str, float]] = []
        strategy = self.strategy
        generate = strategy.generate_signals
        needs_predictions = strategy.requires_predictions
        predicts = self.model is not None or self.pipeline is not None
        seq_len = config.seq_len
        window_length = max(seq_len, int(getattr(strategy, "lookback", 1)))
        checkpoint_every = config.checkpoint_every if self.checkpoint_callback is not None else 0
        custom_risk = self.risk_manager is not None
        drawdown_floor = 1.0 - config.max_drawdown
        daily_floor = 1.0 - config.daily_loss_limit
        previous_equity = peak = day_start = float(config.initial_capital)
        days = market.day
        current_day = days[0]
        positions = self.positions
        for t in range(n_bars):
            if positions:
                equity = self._equity(t)
                self._check_exits(t)
            else:
                equity = self.cash
            if days[t] != current_day:
                current_day = days[t]
                day_start = previous_equity
            if equity > peak:
                peak = equity
            if custom_risk or equity <= peak * drawdown_floor or equity <= day_start * daily_floor:
                breached = self._portfolio_breached(t, equity, peak, day_start, equity_curve)
            else:
                breached = False
            if t + 1 >= seq_len:
                window = _WindowView(market, t, window_length)
                predictions = self._predict(window, t) if predicts else None
                if predictions is None and needs_predictions:
                    signals = ()
                else:
                    try:
                        signals = generate(window, predictions)
                    except Exception:
                        logger.exception("strategy %s raised at bar %d; no signals", strategy.name, t)
                        signals = ()
                for signal in signals:
                    self._execute(signal, t, equity, breached)
            equity = self._equity(t) if positions else self.cash
            equity_curve.append(equity)
            previous_equity = equity
            positions_history.append({p.symbol: p.quantity for p in positions.values()} if positions else {})
            if checkpoint_every and (t + 1) % checkpoint_every == 0:
                self.checkpoint_callback(self._checkpoint(t, equity, peak, day_start, breached))
        if config.close_at_end and positions and n_bars:
            last = n_bars - 1
            for position in list(positions.values()):
                self._close(position, market.close[position.column][last], last, "end_of_backtest")
            equity_curve[last] = self.cash
            positions_history[last] = {}
        equity_array = np.asarray(equity_curve)
        previous = np.concatenate(([config.initial_capital], equity_array[:-1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = np.where(previous != 0, equity_array / previous - 1.0, 0.0)
        metrics = compute_metrics(equity_array, self.trade_log, config.initial_capital, config.periods_per_year)
        metrics["n_bars"] = float(n_bars)
        metrics["risk_breach_bars"] = float(len(self.breach_bars))
        return BacktestResult(
            equity_curve=equity_curve,
            returns=returns.tolist(),
            trade_log=self.trade_log,
            metrics=metrics,
            positions_history=positions_history,
            timestamps=market.timestamps,
            risk_events=self.risk_events,
        )

    def _predict(self, window: _WindowView, t: int) -> np.ndarray | None:
        try:
            features = self.pipeline.transform(window) if self.pipeline is not None else window
            return self.model.predict(features) if self.model is not None else features
        except Exception:
            logger.exception("pipeline/model failed at bar %d; no predictions", t)
            return None
