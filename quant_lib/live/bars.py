"""Bars for the live loop: normalising what callers pass in, and a seeded synthetic 5-minute tape.

``normalise_bars`` turns a mapping symbol -> bar mapping, or a polars frame with one row per symbol
(``symbol`` or ``ticker`` column), into symbol -> dict with a ``timestamp`` (datetime) and float
OHLCV. ``synthetic_bars`` is the offline replay source of ``quant live`` and the benchmark: a
random walk whose one-bar log return follows an AR(1) with coefficient ``phi`` (planted
predictability a forecaster can learn), on a 5-minute grid of 78 bars per weekday session.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import numpy as np
import polars as pl

OHLCV = ("open", "high", "low", "close", "volume")


def as_datetime(value: Any) -> datetime:
    """A bar time as a datetime: dates become midnight, ISO strings are parsed."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise ValueError(f"bar timestamp must be a datetime, date or ISO string, got {value!r}")


def _bar(symbol: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    stamp = raw.get("timestamp", raw.get("date"))
    if stamp is None:
        raise ValueError(f"bar for {symbol} has no 'timestamp' or 'date'")
    bar: dict[str, Any] = {"timestamp": as_datetime(stamp)}
    for column in OHLCV:
        value = raw.get(column, raw.get("close") if column != "volume" else 0.0)
        value = float(value) if value is not None else math.nan
        if not math.isfinite(value) or (column != "volume" and value <= 0):
            raise ValueError(f"bar for {symbol} at {stamp} has a bad {column}: {raw.get(column)!r}")
        bar[column] = value
    return bar


def normalise_bars(data: Mapping[str, Mapping[str, Any]] | pl.DataFrame) -> dict[str, dict[str, Any]]:
    if isinstance(data, pl.DataFrame):
        key = next((c for c in ("symbol", "ticker") if c in data.columns), None)
        if key is None:
            raise ValueError(f"bar frame needs a 'symbol' or 'ticker' column, has {data.columns}")
        rows = data.iter_rows(named=True)
        return {str(row[key]): _bar(str(row[key]), row) for row in rows}
    return {str(symbol): _bar(str(symbol), raw) for symbol, raw in data.items()}


def synthetic_bars(
    symbols: list[str] | tuple[str, ...] = ("AAPL",),
    n_bars: int = 1_000,
    seed: int = 7,
    phi: float = 0.3,
    volatility: float = 0.002,
    start: datetime = datetime(2025, 1, 2, 14, 30, tzinfo=timezone.utc),
    bars_per_day: int = 78,
    interval: timedelta = timedelta(minutes=5),
) -> pl.DataFrame:
    """Long frame timestamp, symbol, open, high, low, close, volume (see module doc); weekends skipped."""
    rng = np.random.default_rng(seed)
    n_symbols = len(symbols)
    shocks = rng.standard_normal((n_bars, n_symbols)) * volatility * math.sqrt(1 - phi * phi)
    returns = np.empty_like(shocks)
    returns[0] = shocks[0]
    for t in range(1, n_bars):
        returns[t] = phi * returns[t - 1] + shocks[t]
    close = 100.0 * np.exp(np.cumsum(returns, axis=0))
    open_ = np.vstack([np.full((1, n_symbols), 100.0), close[:-1]])
    spread = np.abs(rng.standard_normal((n_bars, n_symbols))) * volatility * 0.5
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    volume = rng.integers(1_000, 10_000, (n_bars, n_symbols)).astype(np.float64)
    days, slots = np.divmod(np.arange(n_bars), bars_per_day)
    calendar_days = np.array([d + 2 * ((d + start.weekday()) // 5) for d in days])
    stamps = [start + timedelta(days=int(d)) + int(s) * interval for d, s in zip(calendar_days, slots)]
    return pl.DataFrame(
        {
            "timestamp": pl.Series(stamps, dtype=pl.Datetime("us", "UTC")).gather(np.repeat(np.arange(n_bars), n_symbols)),
            "symbol": np.tile(np.array(symbols), n_bars),
            "open": open_.reshape(-1),
            "high": high.reshape(-1),
            "low": low.reshape(-1),
            "close": close.reshape(-1),
            "volume": volume.reshape(-1),
        }
    )


def bar_groups(bars: pl.DataFrame) -> list[dict[str, dict[str, Any]]]:
    """One {symbol: bar} mapping per timestamp of a long frame (timestamp, symbol, OHLCV), oldest first."""
    grouped: dict[Any, dict[str, dict[str, Any]]] = {}
    for row in bars.sort("timestamp", maintain_order=True).iter_rows(named=True):
        grouped.setdefault(row["timestamp"], {})[row["symbol"]] = row
    return list(grouped.values())
