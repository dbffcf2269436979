"""FeaturePipeline: raw OHLCV -> (X [T', n_features], y [T']) per seed 004 §3.1 / §8.2.

Steps: 43 technical indicators, 10 calendar encodings, 2 cross-sectional excess returns (return
minus the same bar's mean over the frame's tickers; 0 for a single ticker), BOCPD ``cp_score`` /
``cp_severity`` on each ticker's standardized idiosyncratic shocks (``quant_lib.regime.bocpd_input``;
sector-neutral when the frame has a ``sector`` column); then, decided at ``fit_transform`` and applied
by ``transform``: all-NaN and constant columns dropped, of each pair with |corr| > 0.95 the
second (in column order) dropped; finally a causal rolling z-score per ticker,
``(x - mean_w(x)) / (std_w(x) + epsilon)`` over the last ``zscore_window`` rows (at least
``zscore_min_periods`` finite values; warm-up NaN are skipped, not propagated). Rows whose features are not all finite are dropped.

Targets: ``y[t] = ln(close[t + h] / close[t])`` (h = ``forecast_horizon``), or that minus the
bar's cross-sectional mean (``target="excess_log_return"``). They are computed apart from X and
never enter it. ``fit_transform`` drops rows without a target; ``transform`` keeps them (the
latest bars have none yet: those are the rows a live model predicts from).

Every step is causal per ticker, so a row's features do not change when later rows are added.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Literal

import numpy as np
import polars as pl

from quant_lib.features._frame import prepare_ohlcv
from quant_lib.features.calendar_features import TIME_FEATURE_NAMES, compute_time_features
from quant_lib.features.technical import TECHNICAL_FEATURE_NAMES, add_technical_features

logger = logging.getLogger(__name__)

CROSS_SECTIONAL_FEATURE_NAMES = ("excess_return_1", "excess_return_5")
BOCPD_FEATURE_NAMES = ("cp_score", "cp_severity")
STATE_VERSION = 1


def _bocpd_columns(df: pl.DataFrame, time: str, ticker: str, params: dict[str, Any]) -> pl.DataFrame:
    """cp_score / cp_severity of each ticker's standardized idiosyncratic shocks
    (``quant_lib.regime.bocpd_input.factor_shocks``: residuals against the frame's other tickers,
    and against their sector peers when the frame has a ``sector`` column; raw returns make the
    detector alarm at every market regime switch and volatility cluster), via the offline panel
    detector. A single-ticker frame is standardized on its own (no factor to remove)."""
    from quant_lib.regime.bocpd import detect_change_points
    from quant_lib.regime.bocpd_input import factor_shocks

    wide = df.pivot(on=ticker, index=time, values="log_return_1", sort_columns=True).sort(time)
    names = [c for c in wide.columns if c != time]
    sectors = None
    if "sector" in df.columns:
        sector_of = dict(df.group_by(ticker).agg(pl.col("sector").drop_nulls().first()).iter_rows())
        sectors = [str(sector_of[name]) if sector_of.get(name) is not None else f"_{name}" for name in names]
    shocks = factor_shocks(wide.select(names).to_numpy().astype(np.float64), sectors)
    score, severity = detect_change_points(shocks, **params)
    frames = [
        pl.DataFrame({time: wide[time], ticker: [name] * wide.height, "cp_score": score[:, j], "cp_severity": severity[:, j]})
        for j, name in enumerate(names)
    ]
    return pl.concat(frames).with_columns(pl.col(ticker).cast(df.schema[ticker]))


def build_raw_features(
    df: pl.DataFrame, forecast_horizon: int = 1, include_bocpd: bool = True, bocpd_params: dict[str, Any] | None = None,
    target: str = "log_return",
) -> tuple[pl.DataFrame, str, str, list[str]]:
    """All candidate features and the ``target`` column, sorted by (ticker, time).

    Returns (frame, time column, ticker column, candidate feature names)."""
    df, time, ticker = prepare_ohlcv(df)
    close = pl.col("close")
    df = compute_time_features(add_technical_features(df, ticker))
    forward = (close.shift(-forecast_horizon) / close).log().over(ticker)
    df = df.with_columns(
        (pl.col("log_return_1") - pl.col("log_return_1").mean().over(time)).alias("excess_return_1"),
        (pl.col("log_return_5") - pl.col("log_return_5").mean().over(time)).alias("excess_return_5"),
        forward.fill_null(float("nan")).alias("target"),
    )
    if target == "excess_log_return":
        df = df.with_columns((pl.col("target") - pl.col("target").mean().over(time)).alias("target"))
    elif target != "log_return":
        raise ValueError(f"target must be 'log_return' or 'excess_log_return', got {target!r}")
    names = [*TECHNICAL_FEATURE_NAMES, *TIME_FEATURE_NAMES, *CROSS_SECTIONAL_FEATURE_NAMES]
    if include_bocpd:
        df = df.join(_bocpd_columns(df, time, ticker, bocpd_params or {}), on=[time, ticker], how="left")
        names += list(BOCPD_FEATURE_NAMES)
    return df.sort([ticker, time]), time, ticker, names


def _correlated_drops(matrix: np.ndarray, names: list[str], threshold: float) -> list[str]:
    """Greedy in column order: drop the second of each pair with |corr| > threshold."""
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.abs(np.corrcoef(matrix, rowvar=False))
    dropped: set[int] = set()
    for i in range(len(names)):
        if i in dropped:
            continue
        for j in np.flatnonzero(corr[i, i + 1 :] > threshold) + i + 1:
            dropped.add(int(j))
    return [names[j] for j in sorted(dropped)]


class FeaturePipeline:
    """Seed 004's feature pipeline; ``get_state()`` is JSON-serializable and ``load_state`` restores
    a fitted pipeline exactly (feature names, drops, parameters)."""

    def __init__(
        self,
        forecast_horizon: int = 1,
        zscore_window: int = 252,
        zscore_min_periods: int = 20,
        corr_threshold: float = 0.95,
        epsilon: float = 1e-8,
        include_bocpd: bool = True,
        bocpd_params: dict[str, Any] | None = None,
        target: Literal["log_return", "excess_log_return"] = "log_return",
    ) -> None:
        if forecast_horizon < 1 or zscore_min_periods < 2 or zscore_window < zscore_min_periods:
            raise ValueError(
                f"need forecast_horizon >= 1 and 2 <= zscore_min_periods <= zscore_window; got "
                f"{forecast_horizon}, {zscore_min_periods}, {zscore_window}"
            )
        self.params: dict[str, Any] = dict(
            forecast_horizon=forecast_horizon, zscore_window=zscore_window, zscore_min_periods=zscore_min_periods,
            corr_threshold=corr_threshold, epsilon=epsilon, include_bocpd=include_bocpd,
            bocpd_params=dict(bocpd_params or {}), target=target,
        )
        self.feature_names: list[str] | None = None
        self.dropped_features: dict[str, str] = {}
        self.rolling_stats: dict[str, dict[str, float]] = {}
        self.index_: pl.DataFrame | None = None

    @property
    def is_fitted(self) -> bool:
        return self.feature_names is not None

    def _raw(self, df: pl.DataFrame) -> tuple[pl.DataFrame, str, str, list[str]]:
        p = self.params
        return build_raw_features(df, p["forecast_horizon"], p["include_bocpd"], p["bocpd_params"], p["target"])

    def _zscore(self, df: pl.DataFrame, ticker: str, names: list[str]) -> pl.DataFrame:
        w, m, eps = self.params["zscore_window"], self.params["zscore_min_periods"], self.params["epsilon"]
        x = {n: pl.col(n).fill_nan(None) for n in names}  # warm-up NaN must not poison the windows
        return df.with_columns(
            ((x[n] - x[n].rolling_mean(w, min_samples=m)) / (x[n].rolling_std(w, min_samples=m) + eps))
            .over(ticker)
            .fill_null(float("nan"))
            .alias(n)
            for n in names
        )

    def fit_transform(self, df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Fit the column decisions on ``df`` and return its (X, y) (rows with all finite features
        and a finite target)."""
        raw, time, ticker, names = self._raw(df)
        values = raw.select(names).to_numpy()
        finite = np.isfinite(values)
        dropped = {n: "all NaN" for n, ok in zip(names, finite.any(axis=0)) if not ok}
        with warnings.catch_warnings():  # an all-NaN column has no spread: it is dropped just above
            warnings.simplefilter("ignore", RuntimeWarning)
            std = np.nanstd(np.where(finite, values, np.nan), axis=0)
        dropped.update({n: "constant" for n, s in zip(names, std) if n not in dropped and not s > 0})
        kept = [n for n in names if n not in dropped]
        complete = raw.select(kept).to_numpy()
        complete = complete[np.isfinite(complete).all(axis=1)]
        if complete.shape[0] < 10:
            raise ValueError(
                f"too few rows for the feature windows: {complete.shape[0]} complete rows out of {raw.height} "
                f"(the indicators need ~50 bars of warm-up per ticker)"
            )
        dropped.update({n: "correlated" for n in _correlated_drops(complete, kept, self.params["corr_threshold"])})
        for name, reason in dropped.items():
            logger.warning("feature %s dropped at fit: %s", name, reason)
        self.feature_names = [n for n in names if n not in dropped]
        self.dropped_features = dropped
        frame = self._finish(raw, time, ticker, require_target=True)
        if frame.height < 10:
            self.feature_names = None
            raise ValueError(
                f"too few rows for the feature windows: {frame.height} rows left of {raw.height} after the "
                f"indicator warm-up (~50 bars) and the z-score's {self.params['zscore_min_periods']} bars per ticker"
            )
        tail = frame.group_by(ticker).tail(self.params["zscore_window"])
        self.rolling_stats = {
            n: {"mean": float(tail[n].mean()), "std": float(tail[n].std() or 0.0), "count": int(tail.height)}
            for n in self.feature_names
        }
        return self._arrays(frame)

    def transform(self, df: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """(X, y) for new data with the fitted decisions; y is NaN where the target is not known yet."""
        return self._arrays(self.transform_frame(df))

    def transform_frame(self, df: pl.DataFrame) -> pl.DataFrame:
        """The transformed rows as a frame: time, ticker, the features, ``target``."""
        if not self.is_fitted:
            raise RuntimeError("FeaturePipeline is not fitted: call fit_transform (or load_state) first")
        raw, time, ticker, _ = self._raw(df)
        return self._finish(raw, time, ticker, require_target=False)

    def _finish(self, raw: pl.DataFrame, time: str, ticker: str, require_target: bool) -> pl.DataFrame:
        names = list(self.feature_names or [])
        missing = [n for n in names if n not in raw.columns or raw[n].is_nan().all()]
        if missing:
            logger.warning("features missing in the new data, filled with NaN (z-score 0): %s", missing)
            raw = raw.with_columns(pl.lit(float("nan")).alias(n) for n in missing)
        z = self._zscore(raw.select(time, ticker, *names, "target"), ticker, [n for n in names if n not in missing])
        z = z.with_columns(pl.lit(0.0).alias(n) for n in missing)
        keep = pl.all_horizontal(pl.col(n).is_finite() for n in names)
        if require_target:
            keep = keep & pl.col("target").is_finite()
        out = z.filter(keep)
        self.index_ = out.select(time, ticker)
        return out

    def _arrays(self, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return frame.select(self.feature_names).to_numpy().astype(np.float64), frame["target"].to_numpy().astype(np.float64)

    def get_state(self) -> dict[str, Any]:
        if not self.is_fitted:
            raise RuntimeError("FeaturePipeline is not fitted: nothing to save")
        return {
            "version": STATE_VERSION,
            "params": dict(self.params),
            "feature_names": list(self.feature_names or []),
            "dropped_features": list(self.dropped_features),
            "drop_reasons": dict(self.dropped_features),
            "rolling_means": {n: s["mean"] for n, s in self.rolling_stats.items()},
            "rolling_stds": {n: s["std"] for n, s in self.rolling_stats.items()},
            "rolling_counts": {n: s["count"] for n, s in self.rolling_stats.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported FeaturePipeline state version {state.get('version')!r}")
        self.__init__(**state["params"])
        self.feature_names = list(state["feature_names"])
        self.dropped_features = dict(state.get("drop_reasons") or {n: "" for n in state["dropped_features"]})
        self.rolling_stats = {
            n: {"mean": state["rolling_means"][n], "std": state["rolling_stds"][n], "count": state["rolling_counts"][n]}
            for n in self.feature_names
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeaturePipeline:
        pipeline = cls()
        pipeline.load_state(state)
        return pipeline
