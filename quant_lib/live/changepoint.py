"""Streaming change-point scores for the live loop: one BOCPD per symbol, updated once per bar.

Per symbol, each new bar's log return r_t = ln(c_t / c_{t-1}) is standardized as in the offline
feature pipeline for a single ticker (``quant_lib.regime.bocpd_input.factor_shocks`` with one
column, which ``quant_lib.features.FeaturePipeline`` feeds to ``detect_change_points``):

    z_t = clip(r_t / sqrt(EWM_{t-1}(r^2)), -clip, clip)

(EWM with adjust=True weights, half-life ``vol_half_life``, known once ``min_periods`` returns
were seen; earlier bars are skipped), and z_t updates the symbol's
``quant_lib.regime.bocpd.BayesianChangePointDetector`` (same defaults as the offline column). So a
symbol's score equals the offline ``cp_score`` of that symbol run alone over the same bars (to
float rounding of the EWM). The live loop has no panel, so no market/sector factor is removed.

``cp_score`` is the **maximum over symbols** of each symbol's latest score (a break in any traded
symbol is a reason to retrain the shared models), ``cp_severity`` the severity of that symbol,
``cp_symbol`` its name; ``scores`` holds every symbol's latest (cp_score, severity). The whole
state (detectors, EWM sums, latest scores) round-trips through ``get_state`` / ``load_state``,
bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class _SymbolChangePoint:
    __slots__ = ("detector", "num", "den", "count", "decay", "clip", "min_periods")

    def __init__(self, params: Mapping[str, Any], decay: float, clip: float, min_periods: int) -> None:
        from quant_lib.regime.bocpd import BayesianChangePointDetector  # numba: loaded on first use

        self.detector = BayesianChangePointDetector(**params)
        self.num = self.den = 0.0
        self.count = 0
        self.decay, self.clip, self.min_periods = decay, clip, min_periods

    def update(self, log_return: float) -> tuple[float, float] | None:
        if not math.isfinite(log_return):
            return None
        result = None
        if self.count >= self.min_periods and self.num > 0:
            z = log_return / math.sqrt(self.num / self.den)
            result = self.detector.update(min(max(z, -self.clip), self.clip))
        self.num = self.decay * self.num + log_return * log_return
        self.den = self.decay * self.den + 1.0
        self.count += 1
        return result

    def get_state(self) -> dict[str, Any]:
        return {"detector": self.detector.get_state(), "num": self.num, "den": self.den, "count": self.count}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.detector.load_state(dict(state["detector"]))
        self.num, self.den, self.count = float(state["num"]), float(state["den"]), int(state["count"])


class ChangePointMonitor:
    """Per-symbol streaming BOCPD on standardized bar returns (module docstring)."""

    def __init__(self, bocpd_params: Mapping[str, Any] | None = None, vol_half_life: float = 126.0,
                 clip: float = 5.0, min_periods: int = 20) -> None:
        if not vol_half_life > 0 or not clip > 0 or min_periods < 1:
            raise ValueError(f"need vol_half_life > 0, clip > 0, min_periods >= 1; got {vol_half_life}, {clip}, {min_periods}")
        from quant_lib.regime.bocpd import BayesianChangePointDetector  # numba: loaded on first use

        self.bocpd_params = dict(bocpd_params or {})
        BayesianChangePointDetector(**self.bocpd_params)  # bad parameters fail here, not at the first bar
        self.vol_half_life, self.clip, self.min_periods = vol_half_life, clip, min_periods
        self._decay = math.exp(-math.log(2.0) / vol_half_life)
        self._symbols: dict[str, _SymbolChangePoint] = {}
        self.scores: dict[str, tuple[float, float]] = {}

    def _fresh(self) -> _SymbolChangePoint:
        return _SymbolChangePoint(self.bocpd_params, self._decay, self.clip, self.min_periods)

    def update(self, symbol: str, log_return: float) -> tuple[float, float] | None:
        """Feed one bar's log return of ``symbol``; its (cp_score, severity), None while warming up."""
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = self._fresh()
        result = state.update(float(log_return))
        if result is not None:
            self.scores[symbol] = result
        return result

    @property
    def cp_symbol(self) -> str | None:
        return max(self.scores, key=lambda s: self.scores[s][0]) if self.scores else None

    @property
    def cp_score(self) -> float:
        """Max over symbols of the latest change-point score (0 before any symbol is scored)."""
        symbol = self.cp_symbol
        return self.scores[symbol][0] if symbol is not None else 0.0

    @property
    def cp_severity(self) -> float:
        symbol = self.cp_symbol
        return self.scores[symbol][1] if symbol is not None else 0.0

    def get_state(self) -> dict[str, Any]:
        return {"bocpd_params": dict(self.bocpd_params), "vol_half_life": self.vol_half_life, "clip": self.clip,
                "min_periods": self.min_periods, "symbols": {s: c.get_state() for s, c in self._symbols.items()},
                "scores": {s: list(v) for s, v in self.scores.items()}}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.__init__(state.get("bocpd_params"), state.get("vol_half_life", 126.0), state.get("clip", 5.0),
                      state.get("min_periods", 20))
        for symbol, symbol_state in state.get("symbols", {}).items():
            self._symbols[symbol] = self._fresh()
            self._symbols[symbol].load_state(symbol_state)
        self.scores = {s: (float(v[0]), float(v[1])) for s, v in state.get("scores", {}).items()}
