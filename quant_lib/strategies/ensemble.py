"""Sharpe-weighted vote across sub-strategies (seed 004 §4.5, §8.4)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from quant_lib.strategies.base import BaseStrategy, Signal, StrategyData

logger = logging.getLogger(__name__)


class EnsembleStrategy(BaseStrategy):
    """Weighted vote of sub-strategies (one per model).

    ``predictions``: a mapping name -> that model's predictions (each sub-strategy gets its own;
    a sub-strategy without an entry gets none) or one array given to every sub-strategy.
    Per symbol: consensus = sum_i w_i * d_i * c_i over the strategies that voted (direction d_i,
    confidence c_i, weights normalised to sum 1 over all strategies). |consensus| <
    ``min_consensus`` (0.1) means flat: no signal; otherwise direction = sign(consensus),
    confidence = target_position magnitude = |consensus|. A sub-strategy that raises is logged and
    skipped for that bar.

    ``update_weights(performance)`` (name -> rolling Sharpe) moves the weights toward
    w_i ∝ exp(Sharpe_i / temperature) by ``learning_rate`` (1 = jump there), then floors each at
    ``min_weight`` and renormalises: better models get more say, none is silenced for good.
    """

    name = "ensemble"
    requires_predictions = True

    def __init__(
        self,
        strategies: Mapping[str, BaseStrategy],
        weights: Mapping[str, float] | None = None,
        min_consensus: float = 0.1,
        temperature: float = 1.0,
        learning_rate: float = 0.5,
        min_weight: float = 0.02,
    ) -> None:
        if not strategies:
            raise ValueError("EnsembleStrategy needs at least one sub-strategy")
        if not temperature > 0 or not 0 < learning_rate <= 1 or not 0 <= min_weight < 1.0 / len(strategies):
            raise ValueError(
                f"need temperature > 0, learning_rate in (0, 1], 0 <= min_weight < 1/n; got "
                f"{temperature}, {learning_rate}, {min_weight}"
            )
        self.strategies = dict(strategies)
        self.min_consensus = min_consensus
        self.temperature = temperature
        self.learning_rate = learning_rate
        self.min_weight = min_weight
        self.lookback = max(int(getattr(s, "lookback", 1)) for s in self.strategies.values())
        self.weights = self._normalised(weights or {n: 1.0 for n in self.strategies})
        self.rolling_sharpes: dict[str, float] = {n: 0.0 for n in self.strategies}

    def _normalised(self, weights: Mapping[str, float]) -> dict[str, float]:
        unknown = set(weights) - set(self.strategies)
        if unknown:
            raise ValueError(f"weights for unknown strategies {sorted(unknown)}; known {sorted(self.strategies)}")
        raw = np.array([max(float(weights.get(n, 0.0)), 0.0) for n in self.strategies])
        if not np.isfinite(raw).all() or raw.sum() <= 0:
            raw = np.ones(len(self.strategies))
        return dict(zip(self.strategies, (raw / raw.sum()).tolist()))

    def generate_signals(self, data: StrategyData, predictions: Any = None) -> list[Signal]:
        votes: dict[str, float] = {}
        timestamps: dict[str, Any] = {}
        voters: dict[str, dict[str, int]] = {}
        for name, strategy in self.strategies.items():
            own = predictions.get(name) if isinstance(predictions, Mapping) else predictions
            if own is None and strategy.requires_predictions:
                continue
            try:
                signals = strategy.generate_signals(data, own)
            except Exception:
                logger.exception("ensemble member %s raised; skipped for this bar", name)
                continue
            for signal in signals:
                votes[signal.symbol] = votes.get(signal.symbol, 0.0) + self.weights[name] * signal.direction * signal.confidence
                timestamps[signal.symbol] = signal.timestamp
                voters.setdefault(signal.symbol, {})[name] = signal.direction
        signals = []
        for symbol, consensus in votes.items():
            if abs(consensus) < self.min_consensus:
                continue
            magnitude = min(abs(consensus), 1.0)
            direction = 1 if consensus > 0 else -1
            signals.append(
                Signal(
                    timestamp=timestamps[symbol],
                    symbol=symbol,
                    direction=direction,
                    confidence=magnitude,
                    target_position=direction * magnitude,
                    metadata={"consensus": consensus, "votes": voters[symbol]},
                )
            )
        return signals

    def update_weights(self, performance: Mapping[str, float]) -> None:
        """Shift weight toward models with a higher rolling Sharpe (see class doc); NaN counts as 0."""
        for name, value in performance.items():
            if name in self.strategies:
                self.rolling_sharpes[name] = float(value) if math.isfinite(value) else 0.0
        sharpe = np.array([self.rolling_sharpes[n] for n in self.strategies])
        scaled = np.exp((sharpe - sharpe.max()) / self.temperature)
        target = scaled / scaled.sum()
        current = np.array([self.weights[n] for n in self.strategies])
        blended = (1.0 - self.learning_rate) * current + self.learning_rate * target
        floored = np.maximum(blended / blended.sum(), self.min_weight)
        self.weights = dict(zip(self.strategies, (floored / floored.sum()).tolist()))

    def get_state(self) -> dict[str, Any]:
        return {
            "weights": dict(self.weights),
            "rolling_sharpes": dict(self.rolling_sharpes),
            "members": {n: s.get_state() for n, s in self.strategies.items() if hasattr(s, "get_state")},
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        known = {n: w for n, w in state.get("weights", {}).items() if n in self.strategies}
        dropped = sorted(set(state.get("weights", {})) - set(known))
        if dropped:
            logger.warning("ensemble state has weights for unknown models %s; ignored", dropped)
        self.weights = self._normalised(known)
        self.rolling_sharpes.update({n: float(v) for n, v in state.get("rolling_sharpes", {}).items() if n in self.strategies})
        for name, member_state in state.get("members", {}).items():
            member = self.strategies.get(name)
            if member is not None and hasattr(member, "load_state"):
                member.load_state(member_state)

    def save_state(self, sink: Callable[[dict[str, Any]], Any] | Any) -> None:
        """Hand ``get_state()`` to a store: a callable, or an object with ``save(state)`` (e.g.
        ``quant_resources.state.SystemStateManager``). quant_lib writes no files itself."""
        save = getattr(sink, "save", sink)
        save(self.get_state())
