"""Model predictions to signals (seed 004 §8.4): threshold, confidence scaling, N-bar confirmation, cooldown."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from quant_lib.strategies.base import BaseStrategy, Signal, StrategyData, bar_timestamp, iter_frames

PREDICTION_KINDS = ("return", "position")


def prediction_score(predictions: Any, symbol: str, kind: str = "return") -> float | None:
    """One number per symbol from a model's output.

    ``predictions``: an array (the same forecast for every symbol; ``[horizon]`` or ``[1, horizon]``)
    or a mapping symbol -> array. A return forecast ([horizon] log returns) scores as its mean
    over the horizon; a position output (``kind="position"``, momentum nets) as its first value.
    None when the symbol has no prediction or it is not finite.
    """
    if isinstance(predictions, Mapping):
        predictions = predictions.get(symbol)
    if predictions is None:
        return None
    values = np.asarray(predictions, dtype=np.float64).reshape(-1)
    if values.size == 0:
        return None
    score = float(values[0]) if kind == "position" else float(values.mean())
    return score if math.isfinite(score) else None


class MLSignalStrategy(BaseStrategy):
    """Signals from one model's predictions.

    score s = mean predicted log return over the horizon (``kind="return"``) or the model's
    position in [-1, 1] (``kind="position"``). Per symbol and bar:

    - raw direction d = sign(s) when |s| >= ``threshold``, else 0;
    - confidence c = min(1, |s| / ``confidence_scale``) (``confidence_scale`` is the score that
      earns full confidence); target_position = d * c;
    - confirmation: the signal fires only when the raw direction has been d for the last
      ``confirmation_bars`` bars (1 = no confirmation);
    - confidence gate: c < ``min_confidence`` suppresses it;
    - cooldown: after a signal on a symbol, the next ``cooldown_bars`` bars give none for it.

    A flat raw direction gives no signal (it does not close positions: exits come from risk rules
    or the opposite signal). The per-symbol counters are the strategy's state (``get_state`` /
    ``load_state``) so a restarted live loop continues where it stopped.
    """

    name = "ml_signal"
    requires_predictions = True

    def __init__(
        self,
        threshold: float = 0.0,
        confidence_scale: float = 0.001,
        min_confidence: float = 0.0,
        cooldown_bars: int = 0,
        confirmation_bars: int = 1,
        kind: str = "return",
        long_only: bool = False,
        name: str | None = None,
    ) -> None:
        if kind not in PREDICTION_KINDS:
            raise ValueError(f"kind must be one of {PREDICTION_KINDS}, got {kind!r}")
        if threshold < 0 or not confidence_scale > 0 or not 0 <= min_confidence <= 1:
            raise ValueError(
                f"need threshold >= 0, confidence_scale > 0, min_confidence in [0, 1]; got "
                f"{threshold}, {confidence_scale}, {min_confidence}"
            )
        if cooldown_bars < 0 or confirmation_bars < 1:
            raise ValueError(f"need cooldown_bars >= 0 and confirmation_bars >= 1, got {cooldown_bars}, {confirmation_bars}")
        self.threshold = threshold
        self.confidence_scale = confidence_scale
        self.min_confidence = min_confidence
        self.cooldown_bars = cooldown_bars
        self.confirmation_bars = confirmation_bars
        self.kind = kind
        self.long_only = long_only
        if name is not None:
            self.name = name
        self._streak: dict[str, list[int]] = {}
        """symbol -> [last raw direction, consecutive bars with it]."""
        self._bars_since_signal: dict[str, int] = {}

    def generate_signals(self, data: StrategyData, predictions: Any = None) -> list[Signal]:
        if predictions is None:
            return []
        signals = []
        for symbol, frame in iter_frames(data):
            if frame.height == 0:
                continue
            score = prediction_score(predictions, symbol, self.kind)
            signal = self._step(symbol, score, bar_timestamp(frame))
            if signal is not None:
                signals.append(signal)
        return signals

    def _step(self, symbol: str, score: float | None, timestamp: Any) -> Signal | None:
        since = self._bars_since_signal.get(symbol)
        if since is not None:
            self._bars_since_signal[symbol] = since = since + 1
        direction = 0 if score is None or abs(score) < self.threshold else int(np.sign(score))
        if self.long_only and direction < 0:
            direction = 0
        streak = self._streak.setdefault(symbol, [0, 0])
        streak[1] = streak[1] + 1 if streak[0] == direction else 1
        streak[0] = direction
        if direction == 0 or streak[1] < self.confirmation_bars:
            return None
        confidence = min(1.0, abs(score) / self.confidence_scale)
        if confidence < self.min_confidence:
            return None
        if since is not None and since <= self.cooldown_bars:
            return None
        self._bars_since_signal[symbol] = 0
        return Signal(
            timestamp=timestamp,
            symbol=symbol,
            direction=direction,
            confidence=confidence,
            target_position=direction * confidence,
            metadata={"score": score, "strategy": self.name},
        )

    def get_state(self) -> dict[str, Any]:
        return {
            "streak": {s: list(v) for s, v in self._streak.items()},
            "bars_since_signal": dict(self._bars_since_signal),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._streak = {str(s): [int(v[0]), int(v[1])] for s, v in state.get("streak", {}).items()}
        self._bars_since_signal = {str(s): int(v) for s, v in state.get("bars_since_signal", {}).items()}
