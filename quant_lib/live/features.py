"""Incremental bar features for the live loop: O(1) per bar and symbol, the same numbers in bulk.

Per symbol, from OHLCV: r1 = log(c_t / c_{t-1}), r5 = log(c_t / c_{t-5}), r20 = log(c_t / c_{t-20}),
vol20 = standard deviation of the last 20 r1, hl = log(h / l), co = log(c / o), and
dvol = log1p(volume) - its EWM. Each is z-scored by its own exponentially weighted mean and
variance (span ``norm_window``; z = (x - m) / (s + 1e-8), clipped to +/-8), updated after the
bar's value is scored, so a row never sees its own future. Rows before ``warmup`` bars are None.

The live loop can use ``quant_lib.features.FeaturePipeline`` instead through the same
``BarFeatures`` protocol; this class is the dependency-free default and the benchmark's.

Both engines also run a streaming change-point detector per symbol on the bar returns
(``quant_lib.live.changepoint.ChangePointMonitor``, ``bocpd=False`` turns it off) and expose
``cp_score`` (max over symbols of the latest score), ``cp_severity`` and ``cp_symbol``: the
live loop's ``bocpd`` retrain trigger reads ``cp_score``. It is not one of the feature columns
here; its state is part of ``get_state`` / ``load_state``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from quant_lib.live.changepoint import ChangePointMonitor

FEATURE_NAMES = ("r1", "r5", "r20", "vol20", "hl", "co", "dvol")
_EPS = 1e-8
_CLIP = 8.0


class _SymbolFeatures:
    __slots__ = ("closes", "returns", "sum_r", "sum_r2", "vol_ewm", "mean", "var", "count", "alpha")

    def __init__(self, alpha: float) -> None:
        self.closes: deque[float] = deque(maxlen=21)
        self.returns: deque[float] = deque(maxlen=20)
        self.sum_r = self.sum_r2 = 0.0
        self.vol_ewm: float | None = None
        self.mean = np.zeros(len(FEATURE_NAMES))
        self.var = np.ones(len(FEATURE_NAMES))
        self.count = 0
        self.alpha = alpha

    def raw(self, bar: Mapping[str, float]) -> np.ndarray | None:
        close, high, low = float(bar["close"]), float(bar["high"]), float(bar["low"])
        if not (close > 0 and high > 0 and low > 0):
            raise ValueError(f"bar prices must be positive, got close={close}, high={high}, low={low}")
        closes, returns = self.closes, self.returns
        if closes:
            r1 = math.log(close / closes[-1])
            if len(returns) == returns.maxlen:
                old = returns[0]
                self.sum_r -= old
                self.sum_r2 -= old * old
            returns.append(r1)
            self.sum_r += r1
            self.sum_r2 += r1 * r1
        closes.append(close)
        log_volume = math.log1p(max(float(bar.get("volume", 0.0) or 0.0), 0.0))
        self.vol_ewm = log_volume if self.vol_ewm is None else self.vol_ewm + 0.1 * (log_volume - self.vol_ewm)
        if len(closes) < closes.maxlen:
            return None
        n = len(returns)
        variance = max(self.sum_r2 / n - (self.sum_r / n) ** 2, 0.0)
        return np.array([
            returns[-1],
            math.log(close / closes[-6]),
            math.log(close / closes[0]),
            math.sqrt(variance),
            math.log(high / low) if high >= low else 0.0,
            math.log(close / float(bar.get("open", close) or close)),
            log_volume - self.vol_ewm,
        ])

    def update(self, bar: Mapping[str, float], warmup: int) -> np.ndarray | None:
        x = self.raw(bar)
        if x is None:
            return None
        z = np.clip((x - self.mean) / (np.sqrt(self.var) + _EPS), -_CLIP, _CLIP)
        delta = x - self.mean
        self.mean += self.alpha * delta
        self.var = (1.0 - self.alpha) * (self.var + self.alpha * delta * delta)
        self.count += 1
        return z if self.count > warmup else None

    def get_state(self) -> dict[str, Any]:
        return {
            "closes": list(self.closes), "returns": list(self.returns), "vol_ewm": self.vol_ewm,
            "sum_r": self.sum_r, "sum_r2": self.sum_r2,
            "mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        self.closes = deque(state["closes"], maxlen=21)
        self.returns = deque(state["returns"], maxlen=20)
        self.sum_r = float(state.get("sum_r", sum(self.returns)))
        self.sum_r2 = float(state.get("sum_r2", sum(r * r for r in self.returns)))
        self.vol_ewm = state["vol_ewm"]
        self.mean = np.asarray(state["mean"], dtype=np.float64)
        self.var = np.asarray(state["var"], dtype=np.float64)
        self.count = int(state["count"])


class _ChangePointScores:
    """``cp_score`` / ``cp_severity`` / ``cp_symbol`` of the engine's ``changepoint`` monitor (None when off)."""

    changepoint: ChangePointMonitor | None

    def _feed_changepoint(self, symbol: str, previous_close: float | None, close: float) -> None:
        if self.changepoint is not None and previous_close is not None and previous_close > 0 and close > 0:
            self.changepoint.update(symbol, math.log(close / previous_close))

    @property
    def cp_score(self) -> float | None:
        return self.changepoint.cp_score if self.changepoint is not None else None

    @property
    def cp_severity(self) -> float | None:
        return self.changepoint.cp_severity if self.changepoint is not None else None

    @property
    def cp_symbol(self) -> str | None:
        return self.changepoint.cp_symbol if self.changepoint is not None else None

    def _changepoint_state(self) -> dict[str, Any]:
        return {"changepoint": self.changepoint.get_state()} if self.changepoint is not None else {}

    def _load_changepoint(self, state: Mapping[str, Any]) -> None:
        """A state saved without a detector (older checkpoints) restarts it from scratch."""
        if self.changepoint is not None:
            if state.get("changepoint"):
                self.changepoint.load_state(state["changepoint"])
            else:
                self.changepoint = ChangePointMonitor(self.changepoint.bocpd_params)


class IncrementalBarFeatures(_ChangePointScores):
    """``BarFeatures`` implementation (see module doc); state round-trips through get/load_state."""

    feature_names = FEATURE_NAMES
    n_features = len(FEATURE_NAMES)

    def __init__(self, norm_window: int = 100, warmup: int = 20, bocpd: bool = True,
                 bocpd_params: Mapping[str, Any] | None = None) -> None:
        if norm_window < 2 or warmup < 0:
            raise ValueError(f"need norm_window >= 2 and warmup >= 0, got {norm_window}, {warmup}")
        self.norm_window = norm_window
        self.warmup = warmup
        self._symbols: dict[str, _SymbolFeatures] = {}
        self.changepoint = ChangePointMonitor(bocpd_params) if bocpd else None

    def _fresh(self) -> _SymbolFeatures:
        return _SymbolFeatures(2.0 / (self.norm_window + 1.0))

    def update(self, symbol: str, bar: Mapping[str, float]) -> np.ndarray | None:
        state = self._symbols.get(symbol)
        if state is None:
            state = self._symbols[symbol] = self._fresh()
        previous_close = state.closes[-1] if state.closes else None
        row = state.update(bar, self.warmup)
        self._feed_changepoint(symbol, previous_close, state.closes[-1])
        return row

    def training_set(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Rows past warm-up of a fresh pass over ``frame`` (one symbol's bars, oldest first) and
        their targets log(close[t+1] / close[t]) (NaN for the last row)."""
        missing = [c for c in ("open", "high", "low", "close") if c not in frame.columns]
        if missing:
            raise ValueError(f"training frame is missing columns {missing}")
        fresh = self._fresh()
        rows = [fresh.update(bar, self.warmup) for bar in frame.iter_rows(named=True)]
        close = frame["close"].cast(pl.Float64).to_numpy()
        targets = np.append(np.log(close[1:] / close[:-1]), np.nan)
        keep = np.array([row is not None for row in rows], dtype=bool)
        if not keep.any():
            return np.empty((0, self.n_features)), np.empty(0)
        return np.stack([row for row in rows if row is not None]), targets[keep]

    def get_state(self) -> dict[str, Any]:
        return {"norm_window": self.norm_window, "warmup": self.warmup,
                "symbols": {s: f.get_state() for s, f in self._symbols.items()}, **self._changepoint_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        self._symbols = {}
        for symbol, symbol_state in state.get("symbols", {}).items():
            features = self._symbols[symbol] = self._fresh()
            features.load_state(symbol_state)
        self._load_changepoint(state)


class PipelineBarFeatures(_ChangePointScores):
    """``BarFeatures`` over a fitted batch pipeline such as ``quant_lib.features.FeaturePipeline``
    (duck-typed: ``transform(frame) -> (X, y)``, ``feature_names``, ``index_`` (the time column of
    the rows it kept), ``get_state`` / ``load_state``).

    Per bar the last ``window`` bars of the symbol (columns timestamp, ticker, OHLCV) are
    transformed and the row of the current bar is returned (None while the pipeline drops it in
    warm-up). That is a full recompute per bar, O(window); ``IncrementalBarFeatures`` is O(1).

    A pipeline's own ``cp_score`` / ``cp_severity`` columns (``FeaturePipeline``) are recomputed
    over those ``window`` bars, so their detector restarts every bar; the retrain trigger reads
    this adapter's ``cp_score`` instead: a streaming detector per symbol over every bar since the
    start (the offline column's definition for a single ticker, ``quant_lib.live.changepoint``).
    """

    def __init__(self, pipeline: Any, window: int = 300, bocpd: bool = True,
                 bocpd_params: Mapping[str, Any] | None = None) -> None:
        if not getattr(pipeline, "feature_names", None):
            raise ValueError("PipelineBarFeatures needs a fitted pipeline (feature_names is empty)")
        self.pipeline = pipeline
        self.window = window
        self.history: dict[str, deque[dict[str, Any]]] = {}
        self.changepoint = ChangePointMonitor(bocpd_params) if bocpd else None

    @property
    def n_features(self) -> int:
        return len(self.pipeline.feature_names)

    def _frame(self, symbol: str, bars: Any) -> pl.DataFrame:
        return pl.DataFrame(list(bars)).with_columns(pl.lit(symbol).alias("ticker"))

    def update(self, symbol: str, bar: Mapping[str, Any]) -> np.ndarray | None:
        history = self.history.setdefault(symbol, deque(maxlen=self.window))
        previous_close = float(history[-1]["close"]) if history else None
        history.append(dict(bar))
        self._feed_changepoint(symbol, previous_close, float(bar["close"]))
        features, _ = self.pipeline.transform(self._frame(symbol, history))
        index = getattr(self.pipeline, "index_", None)
        if not len(features) or index is None or index.height == 0 or index[:, 0][-1] != bar["timestamp"]:
            return None
        return features[-1]

    def training_set(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        symbol = str(frame["ticker"][0]) if "ticker" in frame.columns else "asset"
        return self.pipeline.transform(frame if "ticker" in frame.columns else frame.with_columns(pl.lit(symbol).alias("ticker")))

    def get_state(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline.get_state(), "history": {s: list(h) for s, h in self.history.items()},
                **self._changepoint_state()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        if "pipeline" in state:
            self.pipeline.load_state(state["pipeline"])
        from quant_lib.live.bars import as_datetime

        self.history = {s: deque(({**b, "timestamp": as_datetime(b["timestamp"])} for b in h), maxlen=self.window)
                        for s, h in state.get("history", {}).items()}
        self._load_changepoint(state)
