"""SelfTrainer: the per-bar live loop with online retraining (seed 004 §3.3, §4.9, §6, §8.8).

``process_bar(data)``: 1. bar_counter += 1; 2. buffer the bar (ring of 2 * retrain_interval bars
per symbol); 3. features (incremental, per symbol); 4. every model's predictions (one batch over
the symbols); 5. strategy signals (an ensemble gets each model's predictions, any other strategy
the mean return forecast); 6. risk (``RiskManager.check_all``; stop-loss / take-profit at the
close); 7. execution through the injected executor, with the event engine's rules (a signal
against a position closes it, then opens the other side only when shorts are allowed and risk
is not breached; a signal with the position is ignored; sizing by ``PositionSizer``); 8.
performance; 9. retrain check and per-model fine-tuning with accept/reject; 10. ensemble weights
from each model's rolling Sharpe; 11. a checkpoint every ``checkpoint_interval`` bars.

Everything with side effects is injected: executor (paper or live), state store
(``SystemStateManager``), ledger sink (files under ``warehouse/ledger``), clock. Orders carry
deterministic client ids per (strategy tag + bar time, symbol, leg), so a replay after a crash
re-submits the same ids and never doubles an order. A checkpoint writes the ledger segment
first and the state second; ``start()`` discards ledger segments newer than the state it
resumes from (the replay writes them again, identically). Segments are numbered by the bar
counter, or the last segment + 1 when a second checkpoint with new events falls on the same bar
(shutdown, events adopted at start), so a segment is never overwritten by a later checkpoint;
the state records the last segment written.

A live broker that fills orders later (Alpaca: ``poll`` / ``close_session`` / ``open_symbols``)
is polled at the top of every bar: its end-of-day rule runs on the first bar of a new day, new
fills reach the trade history, and a symbol with a working order gets no second order.
"""

from __future__ import annotations

import atexit
import logging
import math
import signal as signals_module
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

import numpy as np
import polars as pl

from quant_lib.execution.ledger import OPEN_ORDER_STATUSES, MemoryLedger, client_order_id
from quant_lib.live.bars import as_datetime, normalise_bars
from quant_lib.live.config import LiveConfig
from quant_lib.live.features import IncrementalBarFeatures
from quant_lib.live.performance import PerformanceTracker
from quant_lib.portfolio.sizing import PositionSizer
from quant_lib.risk.limits import Position, RiskLimits, RiskManager
from quant_lib.strategies.base import BaseStrategy, Signal
from quant_lib.strategies.ensemble import EnsembleStrategy

logger = logging.getLogger(__name__)


def _model_kind(name: str, model: Any) -> str:
    return "position" if getattr(model, "architecture", name) == "momentum" else "return"


def _trace(model: Any, example: Any) -> Any:
    """A frozen, inference-optimised TorchScript trace of ``model`` (eager ``model`` if tracing fails)."""
    import warnings

    import torch

    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(model.eval(), example)
            return torch.jit.optimize_for_inference(torch.jit.freeze(traced))
    except Exception as error:  # noqa: BLE001 - any net that cannot be traced runs eagerly
        logger.warning("cannot trace %s (%s); predicting eagerly", type(model).__name__, error)
        return model


class SelfTrainer:
    def __init__(
        self,
        models: Mapping[str, Any],
        strategy: BaseStrategy,
        executor: Any,
        *,
        features: Any = None,
        risk_manager: Any = None,
        sizer: Any = None,
        state_store: Any = None,
        ledger_sink: Any = None,
        config: LiveConfig = LiveConfig(),
        clock: Callable[[], datetime] | None = None,
        trainers: Mapping[str, Any] | None = None,
        register_signals: bool = True,
    ) -> None:
        self.models = dict(models)
        self.strategy = strategy
        self.executor = executor
        self.features = features if features is not None else IncrementalBarFeatures()
        self.risk_manager = risk_manager if risk_manager is not None else RiskManager(RiskLimits())
        self.sizer = sizer if sizer is not None else PositionSizer(method="fixed_fraction", fixed_fraction=0.1)
        self.state_store = state_store
        self.ledger_sink = ledger_sink
        self.config = config
        self.clock = clock or (lambda: datetime.now(timezone.utc))
        self.trainers: dict[str, Any] = dict(trainers or {})
        self.register_signals = register_signals
        self.kinds = {name: _model_kind(name, model) for name, model in self.models.items()}
        self.seq_lens = {name: int(getattr(model, "config", {}).get("seq_len", 1)) for name, model in self.models.items()}
        self.window_len = max(self.seq_lens.values(), default=1)
        self.bar_len = max(config.buffer_size, int(getattr(strategy, "lookback", 1)))
        self.pending = MemoryLedger()
        if hasattr(executor, "ledger"):
            executor.ledger = self.pending
        self.performance = PerformanceTracker(config.initial_capital, config.sharpe_window, config.periods_per_year,
                                              config.history_limit)
        self.bar_counter = 0
        self.ledger_segment = 0
        self.last_timestamp: datetime | None = None
        self.last_retrain_bar = 0
        self.retrain_count = 0
        self.samples_since_retrain = 0
        self.bars: dict[str, deque[dict[str, Any]]] = {}
        self.feature_rows: dict[str, deque[np.ndarray]] = {}
        self.atr: dict[str, list[float]] = {}
        self.last_trade_bar: dict[str, int] = {}
        self.risk = {"peak_equity": config.initial_capital, "day_start_equity": config.initial_capital,
                     "current_day": None, "breached": False, "previous_equity": config.initial_capital}
        self._compiled: dict[tuple[str, int], Any] = {}
        self._book: dict[str, Any] | None = None
        self._previous_handlers: dict[int, Any] = {}
        self._running = False
        self._shut_down = False
        self._in_bar = False
        self._stop_requested = False
        for model in self.models.values():
            model.eval()

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the newest state (if any), reconcile a live broker, register shutdown hooks."""
        state = self.state_store.load() if self.state_store is not None else None
        if state is not None:
            self.load_full_state(state)
            logger.info("Resumed from checkpoint at bar_counter=%d", self.bar_counter)
        else:
            logger.info("No checkpoint found; starting fresh at bar_counter=0")
        if self.ledger_sink is not None:
            discarded = self.ledger_sink.discard_after(self.ledger_segment)
            if discarded:
                logger.warning("Discarded %d ledger segments newer than bar_counter=%d (the replay rewrites them)",
                               discarded, self.bar_counter)
        reconcile = getattr(self.executor, "reconcile", None)
        if callable(reconcile):
            reconcile()
        atexit.register(self.shutdown)
        if self.register_signals and threading.current_thread() is threading.main_thread():
            self._previous_handlers = {
                number: signals_module.signal(number, self._on_signal)
                for number in (signals_module.SIGINT, signals_module.SIGTERM)
            }
        self._running = True
        self._shut_down = False

    def _on_signal(self, signum: int, frame: Any) -> None:
        logger.warning("Signal %d received; shutting down after the current bar", signum)
        self._stop_requested = True
        if not self._in_bar:
            self.shutdown()
            raise SystemExit(0)

    def shutdown(self) -> None:
        """Close positions where configured, then always checkpoint (idempotent)."""
        if self._shut_down or not self._running:
            return
        self._shut_down = True
        try:
            if self.config.close_on_shutdown:
                prices = {s: b[-1]["close"] for s, b in self.bars.items() if b}
                stamp = self.last_timestamp.isoformat() if self.last_timestamp else "start"
                self.executor.close_all_positions(prices, stamp, f"{self.config.strategy_tag}|shutdown|{stamp}")
        finally:
            self.checkpoint()
            self._running = False
            atexit.unregister(self.shutdown)
            if threading.current_thread() is threading.main_thread():
                for number, handler in self._previous_handlers.items():
                    signals_module.signal(number, handler)
            self._previous_handlers = {}
            logger.info("Shutdown complete at bar_counter=%d; state saved", self.bar_counter)

    def checkpoint(self) -> None:
        """Ledger segment first, then the state: a crash in between replays into the same segment."""
        if self.ledger_sink is not None and self.pending.events:
            segment = max(self.bar_counter, self.ledger_segment + 1)
            self.ledger_sink.write_segment(segment, list(self.pending.events))
            self.ledger_segment = segment
        if self.state_store is not None:
            self.state_store.save(self.get_full_state())
        self.pending.events.clear()

    def run(self, bars: Iterable[Any], sleep: Callable[[], None] | None = None) -> list[dict[str, Any]]:
        """Feed ``bars`` (each what ``process_bar`` takes) until exhausted or a stop signal."""
        results = []
        for data in bars:
            if self._stop_requested:
                break
            results.append(self.process_bar(data))
            if sleep is not None:
                sleep()
        return results

    def warm_up(self, history: Iterable[Any]) -> int:
        """Past bars into the buffers and features only (no predictions, orders or bar count):
        a fresh start on a real feed. Bars at or before the last one seen are ignored; returns
        how many were used."""
        if not self._running:
            raise RuntimeError("SelfTrainer.warm_up() called before start()")
        used = 0
        for data in history:
            bars = normalise_bars(data)
            timestamp = max(bar["timestamp"] for bar in bars.values())
            if self.last_timestamp is not None and timestamp <= self.last_timestamp:
                continue
            self._ingest(bars)
            self.last_timestamp = timestamp
            used += 1
        if used:
            self.executor.update_market_prices({s: b[-1]["close"] for s, b in self.bars.items() if b})
            logger.info("Warmed up on %d past bars (up to %s)", used, self.last_timestamp)
        return used

    # the bar ---------------------------------------------------------------------------------
    def process_bar(self, data: Any) -> dict[str, Any]:
        if not self._running:
            raise RuntimeError("SelfTrainer.process_bar() called before start()")
        bars = normalise_bars(data)
        if not bars:
            raise ValueError("process_bar got no bars")
        timestamp = max(bar["timestamp"] for bar in bars.values())
        if self.last_timestamp is not None and timestamp <= self.last_timestamp:
            return {"skipped": True, "bar_counter": self.bar_counter, "timestamp": timestamp}
        self._in_bar = True
        try:
            result = self._process(bars, timestamp)
        finally:
            self._in_bar = False
        if self._stop_requested:
            self.shutdown()
            raise SystemExit(0)
        return result

    def _process(self, bars: dict[str, dict[str, Any]], timestamp: datetime) -> dict[str, Any]:
        self.bar_counter += 1
        self.samples_since_retrain += 1
        self.last_timestamp = timestamp
        asset_returns = self._ingest(bars)
        predictions = self._predict()
        trade_signals = self._signals(bars, predictions)
        prices = {s: b["close"] for s, b in bars.items()}
        self.executor.update_market_prices(prices)
        self._book = None
        self.performance.trade_history.extend(self._sync_orders(timestamp))
        equity = float(self.book()["equity"])
        ok, violations = self._risk_check(equity, timestamp)
        if self.config.use_stops:
            self._check_stops(prices, timestamp)
        fills = [f for s in trade_signals for f in self._execute(s, prices, equity, not ok, timestamp)]
        state = self.book()
        equity = float(state["equity"])
        self.performance.trade_history.extend(f for f in fills if f.get("status") in ("filled", "partially_filled") and f.get("qty"))
        self.performance.update(equity, asset_returns, self._directions(predictions))
        self.risk["previous_equity"] = equity
        retrained = self._maybe_retrain()
        if self.bar_counter % self.config.weight_update_interval == 0 and hasattr(self.strategy, "update_weights"):
            sharpes = self.performance.model_sharpes()
            if sharpes:
                self.strategy.update_weights(sharpes)
        self.pending.events.append({"event": "equity", "timestamp": timestamp.isoformat(), "bar_counter": self.bar_counter,
                                    "equity": equity, "cash": float(state["cash"]), "symbol": "", "client_order_id": ""})
        if self.config.checkpoint_interval and self.bar_counter % self.config.checkpoint_interval == 0:
            self.checkpoint()
        return {"bar_counter": self.bar_counter, "timestamp": timestamp, "equity": equity, "signals": trade_signals,
                "fills": fills, "risk_ok": ok, "violations": violations, "retrained": retrained,
                "predictions": predictions}

    def _ingest(self, bars: dict[str, dict[str, Any]]) -> dict[str, float]:
        returns = {}
        for symbol, bar in bars.items():
            history = self.bars.get(symbol)
            if history is None:
                history = self.bars[symbol] = deque(maxlen=self.bar_len)
            if history:
                returns[symbol] = math.log(bar["close"] / history[-1]["close"])
                self._update_atr(symbol, bar, history[-1]["close"])
            else:
                self._update_atr(symbol, bar, None)
            history.append(bar)
            row = self.features.update(symbol, bar)
            if row is not None:
                rows = self.feature_rows.get(symbol)
                if rows is None:
                    rows = self.feature_rows[symbol] = deque(maxlen=self.window_len)
                rows.append(np.asarray(row, dtype=np.float32))
        return returns

    def _update_atr(self, symbol: str, bar: dict[str, Any], previous_close: float | None) -> None:
        """Wilder ATR: EWM (alpha = 1 / atr_period) of the true range, valid after atr_period bars."""
        high, low = bar["high"], bar["low"]
        true_range = high - low if previous_close is None else max(high - low, abs(high - previous_close), abs(low - previous_close))
        value, count = self.atr.get(symbol, (true_range, 0))
        alpha = 1.0 / self.config.atr_period
        self.atr[symbol] = [true_range if count == 0 else value + alpha * (true_range - value), count + 1]

    def _atr(self, symbol: str) -> float:
        value, count = self.atr.get(symbol, (math.nan, 0))
        return value if count >= self.config.atr_period else math.nan

    def _predict(self) -> dict[str, dict[str, np.ndarray]]:
        if not self.models:
            return {}
        import torch

        predictions: dict[str, dict[str, np.ndarray]] = {}
        batches: dict[int, tuple[list[str], Any]] = {}
        for seq_len in set(self.seq_lens.values()):
            ready = [s for s, rows in self.feature_rows.items() if len(rows) >= seq_len and s in self.bars]
            if ready:
                windows = np.stack([np.stack(list(self.feature_rows[s])[-seq_len:]) for s in ready])
                batches[seq_len] = (ready, torch.from_numpy(windows))
        with torch.inference_mode():
            for name, model in self.models.items():
                batch = batches.get(self.seq_lens[name])
                if batch is None:
                    continue
                try:
                    output = self._forward(name, model, batch[1]).numpy()
                except Exception:
                    logger.exception("model %s failed at bar %d; no predictions from it", name, self.bar_counter)
                    continue
                predictions[name] = dict(zip(batch[0], output))
        return predictions

    def _forward(self, name: str, model: Any, x: Any) -> Any:
        """``model(x)``, through a frozen trace per (model, batch size) when ``jit_inference``."""
        if not self.config.jit_inference:
            return model(x)
        key = (name, int(x.shape[0]))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _trace(model, x)
        return compiled(x)

    def _directions(self, predictions: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, float]]:
        directions = {}
        for name, per_symbol in predictions.items():
            pick = (lambda a: float(a[0])) if self.kinds[name] == "position" else (lambda a: float(np.mean(a)))
            directions[name] = {s: float(np.sign(pick(a))) for s, a in per_symbol.items()}
        return directions

    def _strategy_input(self, predictions: dict[str, dict[str, np.ndarray]]) -> Any:
        if not self.models:
            return None
        if not predictions:
            return None
        if isinstance(self.strategy, EnsembleStrategy):
            return predictions
        returns = [p for n, p in predictions.items() if self.kinds[n] == "return"] or list(predictions.values())
        symbols = set().union(*returns)
        return {s: np.mean([np.mean(p[s]) for p in returns if s in p], keepdims=True) for s in symbols}

    def _signals(self, bars: dict[str, dict[str, Any]], predictions: dict[str, dict[str, np.ndarray]]) -> list[Signal]:
        strategy_predictions = self._strategy_input(predictions)
        if strategy_predictions is None and self.strategy.requires_predictions:
            return []
        lookback = int(getattr(self.strategy, "lookback", 1))
        frames = {s: pl.DataFrame(list(self.bars[s])[-lookback:]) for s in bars}
        try:
            return list(self.strategy.generate_signals(frames, strategy_predictions))
        except Exception:
            logger.exception("strategy %s raised at bar %d; no signals", self.strategy.name, self.bar_counter)
            return []

    # risk and execution ----------------------------------------------------------------------
    def _sync_orders(self, timestamp: datetime) -> list[dict[str, Any]]:
        """A tracking broker's new fills since the last bar (end-of-day rule first); [] on paper."""
        poll = getattr(self.executor, "poll", None)
        if not callable(poll):
            return []
        stamp = timestamp.isoformat()
        close_session = getattr(self.executor, "close_session", None)
        fills = close_session(stamp[:10], stamp) if callable(close_session) else []
        return [{**f, "status": "filled"} for f in fills + poll(stamp)]

    def book(self) -> dict[str, Any]:
        """The executor's portfolio state, read once per bar and again after an order (a live
        broker answers it over the network)."""
        if self._book is None:
            self._book = self.executor.get_portfolio_state()
        return self._book

    def _risk_check(self, equity: float, timestamp: datetime) -> tuple[bool, list[str]]:
        risk = self.risk
        day = timestamp.date().isoformat()
        if risk["current_day"] != day:
            if risk["current_day"] is not None:
                risk["day_start_equity"] = risk["previous_equity"]
            risk["current_day"] = day
        risk["peak_equity"] = max(risk["peak_equity"], equity)
        positions = self.book().get("positions", {})
        returns = np.fromiter(self.performance.returns_history, dtype=np.float64)[-250:]
        ok, violations = self.risk_manager.check_all({
            "equity": equity, "peak_equity": risk["peak_equity"], "day_start_equity": risk["day_start_equity"],
            "returns": returns, "positions": {s: p["market_value"] for s, p in positions.items()},
        })
        if not ok and not risk["breached"]:
            for violation in violations:
                logger.warning("%s at bar %d", violation, self.bar_counter)
        risk["breached"] = not ok
        return ok, violations

    def _check_stops(self, prices: dict[str, float], timestamp: datetime) -> None:
        working = getattr(self.executor, "open_symbols", None)
        busy = working() if callable(working) else set()
        for symbol, held in list(self.book().get("positions", {}).items()):
            atr, price = self._atr(symbol), prices.get(symbol)
            if price is None or not atr > 0 or symbol in busy:
                continue
            position = Position(symbol, abs(held["qty"]), held["avg_price"], "long" if held["qty"] > 0 else "short")
            for leg, check in (("stop_loss", self.risk_manager.check_stop_loss), ("take_profit", self.risk_manager.check_take_profit)):
                if check(position, price, atr):
                    self._submit(symbol, "sell" if held["qty"] > 0 else "buy", abs(held["qty"]), price, timestamp, leg)
                    break

    def _submit(self, symbol: str, side: str, qty: float, price: float, timestamp: datetime, leg: str) -> dict[str, Any]:
        decision = f"{self.config.strategy_tag}|{timestamp.isoformat()}"
        record = self.executor.submit_order(symbol, side, qty, price, client_order_id(decision, symbol, leg), timestamp.isoformat())
        self._book = None
        if record.get("status") == "filled" or record.get("status") in OPEN_ORDER_STATUSES:
            self.last_trade_bar[symbol] = self.bar_counter
        return record

    def _execute(self, signal: Signal, prices: dict[str, float], equity: float, breached: bool, timestamp: datetime) -> list[dict[str, Any]]:
        direction, symbol = signal.direction, signal.symbol
        config = self.config
        if direction == 0 or symbol not in prices or signal.confidence < config.min_confidence:
            return []
        last = self.last_trade_bar.get(symbol)
        if last is not None and self.bar_counter - last < config.cooldown_bars:
            return []
        working = getattr(self.executor, "open_symbols", None)
        if callable(working) and symbol in working():
            logger.info("%s has a working order; signal %+d skipped at bar %d", symbol, direction, self.bar_counter)
            return []
        held = self.book().get("positions", {}).get(symbol, {}).get("qty", 0.0)
        price, records = prices[symbol], []
        if held:
            if (held > 0) == (direction > 0):
                return []
            records.append(self._submit(symbol, "sell" if held > 0 else "buy", abs(held), price, timestamp, "close"))
        if direction < 0 and not config.allow_short:
            return records
        if breached:
            logger.info("Risk breached; skipping signal %s %+d at bar %d", symbol, direction, self.bar_counter)
            return records
        market_data = {"atr": self._atr(symbol), "close": price, "symbol": symbol}
        qty = abs(float(self.sizer.calculate(equity, price, signal, market_data)))
        if qty > 0:
            records.append(self._submit(symbol, "buy" if direction > 0 else "sell", qty, price, timestamp, "open"))
        return records

    # retraining ------------------------------------------------------------------------------
    def retrain_reasons(self) -> list[str]:
        config = self.config
        if not config.retrain_enabled or not self.models or self.samples_since_retrain < config.retrain_min_samples:
            return []
        reasons = []
        since = self.bar_counter - self.last_retrain_bar
        if since >= config.retrain_interval:
            reasons.append(f"interval ({since} bars >= {config.retrain_interval})")
        sharpe = self.performance.rolling_sharpe
        if len(self.performance.returns_history) >= config.sharpe_window and sharpe < config.sharpe_threshold:
            reasons.append(f"sharpe ({sharpe:.2f} < {config.sharpe_threshold:.2f})")
        cp_score = getattr(self.features, "cp_score", None)
        if cp_score is not None and cp_score > config.cp_score_threshold:
            where = getattr(self.features, "cp_symbol", None)
            reasons.append(f"bocpd (cp_score {cp_score:.2f} > {config.cp_score_threshold:.2f}{f' on {where}' if where else ''})")
        return reasons

    def _maybe_retrain(self) -> list[dict[str, Any]]:
        reasons = self.retrain_reasons()
        if not reasons:
            return []
        logger.info("Retrain triggered at bar %d | reasons: %s", self.bar_counter, ", ".join(reasons))
        self.samples_since_retrain = 0
        try:
            parts = [self.features.training_set(pl.DataFrame(list(b))) for b in self.bars.values() if len(b) > 1]
            parts = [(np.asarray(x), np.asarray(y)) for x, y in parts if len(x)]
        except Exception:
            logger.exception("Feature pipeline failed during retrain at bar %d; retrain skipped this cycle", self.bar_counter)
            return []
        from quant_lib.live.retrain import make_trainer, retrain_model

        config, outcomes = self.config, []
        for name, model in self.models.items():
            trainer = self.trainers.get(name)
            if trainer is None:
                trainer = self.trainers[name] = make_trainer(model, config.retrain_lr, config.seed)
            try:
                outcome = retrain_model(name, trainer, parts, config.retrain_epochs, config.retrain_lr_factor,
                                        config.retrain_batch_size, config.retrain_val_fraction, config.seed + self.bar_counter)
            except Exception:
                logger.exception("Retrain '%s' failed at bar %d; model unchanged", name, self.bar_counter)
                continue
            outcomes.append(outcome.__dict__)
        self._compiled.clear()
        self.last_retrain_bar = self.bar_counter
        self.retrain_count += 1
        return outcomes

    # state -----------------------------------------------------------------------------------
    def _model_state(self, name: str, model: Any) -> dict[str, Any]:
        trainer = self.trainers.get(name)
        best = getattr(trainer, "best_val_loss", math.inf) if trainer is not None else math.inf
        return {
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "config": dict(getattr(model, "config", {})),
            "optimizer_state": trainer.optimizer.state_dict() if trainer is not None else None,
            "epoch": int(getattr(trainer, "epoch", 0)),
            "best_val_loss": best if math.isfinite(best) else None,
        }

    def get_full_state(self) -> dict[str, Any]:
        """Everything a restart needs (seed 004 §7 plus executor, buffers and risk counters)."""
        return {
            "bar_counter": self.bar_counter,
            "ledger_segment": self.ledger_segment,
            "last_bar_timestamp": self.last_timestamp.isoformat() if self.last_timestamp else None,
            "models": {name: self._model_state(name, model) for name, model in self.models.items()},
            "feature_pipeline": self.features.get_state(),
            "ensemble": self.strategy.get_state() if hasattr(self.strategy, "get_state") else {},
            "performance": self.performance.get_state(),
            "training": {"last_retrain_bar": self.last_retrain_bar, "retrain_count": self.retrain_count,
                         "samples_since_retrain": self.samples_since_retrain},
            "executor": self.executor.get_state() if hasattr(self.executor, "get_state") else {},
            "risk": dict(self.risk),
            "buffers": {s: list(b) for s, b in self.bars.items()},
            "feature_windows": {s: [r.tolist() for r in rows] for s, rows in self.feature_rows.items()},
            "atr": dict(self.atr),
            "last_trade_bar": dict(self.last_trade_bar),
            "config": self.config.as_dict(),
        }

    def load_full_state(self, state: Mapping[str, Any]) -> None:
        self._compiled.clear()
        self.bar_counter = int(state["bar_counter"])
        self.ledger_segment = int(state.get("ledger_segment", self.bar_counter))
        stamp = state.get("last_bar_timestamp")
        self.last_timestamp = as_datetime(stamp) if stamp else None
        for name, model_state in state.get("models", {}).items():
            model = self.models.get(name)
            if model is None:
                logger.warning("state has model %r that is not configured; ignored", name)
                continue
            model.load_state_dict(model_state["state_dict"])
            model.eval()
        self.features.load_state(state.get("feature_pipeline", {}))
        if hasattr(self.strategy, "load_state"):
            self.strategy.load_state(state.get("ensemble", {}))
        self.performance.load_state(state.get("performance", {}))
        training = state.get("training", {})
        self.last_retrain_bar = int(training.get("last_retrain_bar", 0))
        self.retrain_count = int(training.get("retrain_count", 0))
        self.samples_since_retrain = int(training.get("samples_since_retrain", 0))
        if state.get("executor") and hasattr(self.executor, "load_state"):
            self.executor.load_state(state["executor"])
        self.risk.update(state.get("risk", {}))
        self.bars = {s: deque(({**b, "timestamp": as_datetime(b["timestamp"])} for b in rows), maxlen=self.bar_len)
                     for s, rows in state.get("buffers", {}).items()}
        self.feature_rows = {s: deque((np.asarray(r, dtype=np.float32) for r in rows), maxlen=self.window_len)
                             for s, rows in state.get("feature_windows", {}).items()}
        self.atr = {s: list(v) for s, v in state.get("atr", {}).items()}
        self.last_trade_bar = {s: int(b) for s, b in state.get("last_trade_bar", {}).items()}
