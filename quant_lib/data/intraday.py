"""Intraday bars: the interval grid of a session, simulated bars consistent with the daily bar,
aggregation back to daily bars and the checks of the `intraday_bars` asset.

Layout (`INTRADAY_COLUMNS`): one row per (timestamp, ticker, interval); `timestamp` is the bar's
start as a UTC `pl.Datetime("us", "UTC")`, `date` the session it belongs to, float64 OHLCV.

Grid: bars start at the session open (`quant_lib.data.calendar.session_open_close`: XNYS
09:30-16:00 New York time, 13:00 on half days; 24/7 and 24/5 00:00-24:00 UTC) every interval; the
last bar of a session that is not a whole number of intervals is shorter (the 15:30 1h bar).
XNYS: 390 1m, 78 5m, 26 15m, 7 1h bars a regular session; 210, 42, 14, 4 on a half day.

Simulation (`simulate_intraday`), exact against the daily bar (O, H, L, C, V) of the same day:
- Volatility follows the day's: sigma_day = ln(H / L) / (2 sqrt(ln 2)) (Parkinson), shared over
  the bars with the U-shaped variance profile u(x) = 0.6 + 2.4 (2x - 1)^2 (x the bar's position
  in the session), so the open and the close are the most volatile.
- Path: the log price at the bar boundaries is a Brownian bridge from ln O to ln C with those
  increments, its deviation from the straight line scaled down (never up) so that the whole path
  stays inside [ln L, ln H]. Bar k opens where bar k-1 closed; the first open is O and the last
  close is C exactly.
- High/low: max(open, close) * exp(0.5 sigma_k E) and min(open, close) * exp(-0.5 sigma_k E')
  (E exponential(1)) clipped to [L, H]; the bars holding the largest high and the smallest low
  are set to H and L exactly, so max(high) = H and min(low) = L.
- Volume: V split over the bars by the U-shaped profile 1 + 3 (2x - 1)^2 times exp(0.3 N(0, 1)),
  cumulative-rounded to whole units, so the bars sum to V exactly.
Random numbers come from a counter-based hash (splitmix64) of (seed, ticker, day, interval, bar,
draw): the bars of one (ticker, day) are the same whatever else is simulated with them.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from quant_lib.data.calendar import default_calendar, session_open_close

INTERVAL_MINUTES: dict[str, int] = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}
"""Supported bar intervals -> minutes."""

INTRADAY_COLUMNS: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("us", "UTC"),
    "date": pl.Date,
    "ticker": pl.String,
    "interval": pl.String,
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}

DAILY_PRICE_RTOL = 1e-9
"""Relative tolerance of the intraday-vs-daily check for simulated bars: they are built to match
exactly; 1e-9 only absorbs float rounding."""
DAILY_VOLUME_TOL = 0.5
"""Absolute volume tolerance (units) for simulated bars: whole units that sum exactly."""

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def interval_minutes(interval: str) -> int:
    """Minutes of a bar interval; ValueError naming the supported ones."""
    if interval not in INTERVAL_MINUTES:
        raise ValueError(f"unsupported interval {interval!r}: use one of {', '.join(INTERVAL_MINUTES)}")
    return INTERVAL_MINUTES[interval]


def bar_grid(days: np.ndarray, interval: str, calendar: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(day position, bar start as UTC datetime64[ns], bar count of its day) for every bar of the
    sessions `days` (datetime64[D]), in day then time order."""
    step = np.timedelta64(interval_minutes(interval), "m").astype("timedelta64[ns]")
    opens, closes = session_open_close(np.asarray(days, dtype="datetime64[D]"), calendar)
    counts = -((opens - closes) // step)  # ceil((close - open) / step)
    day_pos = np.repeat(np.arange(len(days)), counts)
    first_bar = np.concatenate([[0], np.cumsum(counts)[:-1]])
    bar_in_day = np.arange(int(counts.sum())) - first_bar[day_pos]
    return day_pos, opens[day_pos] + bar_in_day * step, counts[day_pos]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        z = ((z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        z = ((z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return z ^ (z >> np.uint64(31))


def _uniform(keys: np.ndarray, draw: int) -> np.ndarray:
    """U(0, 1) (open interval) from 64-bit keys, one independent stream per `draw`."""
    with np.errstate(over="ignore"):
        bits = _splitmix64(keys ^ _splitmix64(np.full(1, draw, dtype=np.uint64)))
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def _normal(keys: np.ndarray, draw: int) -> np.ndarray:
    u1, u2 = _uniform(keys, 2 * draw), _uniform(keys, 2 * draw + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * math.pi * u2)


def _bar_keys(seed: int, tickers: np.ndarray, day_int: np.ndarray, minutes: int, bar_in_day: np.ndarray) -> np.ndarray:
    ticker_hash = np.array([zlib.crc32(t.encode()) for t in tickers], dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = _splitmix64(np.uint64(seed & 0xFFFFFFFF) ^ (ticker_hash << np.uint64(20)))
        key = _splitmix64(key ^ day_int.astype(np.uint64))
        key = _splitmix64(key ^ np.uint64(minutes))
        return _splitmix64(key ^ bar_in_day.astype(np.uint64))


def _group_sum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    return np.add.reduceat(values, starts)


def _cumsum_by_day(values: np.ndarray, day_pos: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting each day, computed row by row of a (day x bar) matrix so a day's
    sums never depend on the other days simulated with it (same bytes whatever the batch)."""
    k = np.arange(len(values)) - first[day_pos]
    matrix = np.zeros((len(first), int(k.max()) + 1))
    matrix[day_pos, k] = values
    np.cumsum(matrix, axis=1, out=matrix)
    return matrix[day_pos, k]


def simulate_intraday(
    daily: pl.DataFrame,
    interval: str = "5m",
    seed: int = 42,
    calendars: Mapping[str, str] | None = None,
    calendar: str | None = None,
) -> pl.DataFrame:
    """Intraday bars of every (date, ticker) row of `daily` (PRICE_COLUMNS), exact against it.

    `calendars` maps a ticker to its calendar (crypto: "24/7"); the others use `calendar`
    (default: the market calendar). Sorted by (timestamp, ticker)."""
    minutes = interval_minutes(interval)
    if daily.is_empty():
        return pl.DataFrame(schema=INTRADAY_COLUMNS)
    names = daily.get_column("ticker")
    per_ticker = names.replace_strict(dict(calendars or {}), default=calendar or default_calendar(), return_dtype=pl.String)
    frames = [
        _simulate_one_calendar(daily.filter(per_ticker == name), interval, minutes, seed, name)
        for name in per_ticker.unique(maintain_order=True).to_list()
    ]
    return pl.concat(frames).sort("timestamp", "ticker")


def _simulate_one_calendar(daily: pl.DataFrame, interval: str, minutes: int, seed: int, calendar: str) -> pl.DataFrame:
    days = daily.get_column("date").to_numpy().astype("datetime64[D]")
    day_pos, start, count = bar_grid(days, interval, calendar)
    first = np.concatenate([[0], np.cumsum(np.bincount(day_pos, minlength=len(days)))[:-1]])
    k = np.arange(len(day_pos)) - first[day_pos]
    keys = _bar_keys(seed, daily.get_column("ticker").to_numpy()[day_pos], days.astype(np.int64)[day_pos], minutes, k)
    o, h, lo, c, v = (daily.get_column(col).to_numpy().astype(np.float64) for col in ("open", "high", "low", "close", "volume"))
    x = (k + 0.5) / count
    share = 0.6 + 2.4 * (2 * x - 1) ** 2
    share /= _group_sum(share, first)[day_pos]
    sigma_bar = (np.log(h / lo) / (2.0 * math.sqrt(math.log(2.0))))[day_pos] * np.sqrt(share)
    log_open, log_close = _bridge(np.log(o), np.log(c), np.log(h), np.log(lo), sigma_bar * _normal(keys, 0), day_pos, first, count)
    bar_open = np.clip(np.exp(log_open), lo[day_pos], h[day_pos])
    bar_close = np.clip(np.exp(log_close), lo[day_pos], h[day_pos])
    bar_open[first], bar_close[first + count[first] - 1] = o, c
    high = np.minimum(np.maximum(bar_open, bar_close) * np.exp(0.5 * sigma_bar * -np.log(_uniform(keys, 10))), h[day_pos])
    low = np.maximum(np.minimum(bar_open, bar_close) * np.exp(-0.5 * sigma_bar * -np.log(_uniform(keys, 11))), lo[day_pos])
    is_max = high == np.maximum.reduceat(high, first)[day_pos]
    high[is_max] = h[day_pos][is_max]
    is_min = low == np.minimum.reduceat(low, first)[day_pos]
    low[is_min] = lo[day_pos][is_min]
    volume = _split_volume(v, (1.0 + 3.0 * (2 * x - 1) ** 2) * np.exp(0.3 * _normal(keys, 6)), day_pos, first, count)
    return pl.DataFrame(
        {
            "timestamp": pl.Series(start.astype("datetime64[us]")).dt.replace_time_zone("UTC"),
            "date": pl.Series(days[day_pos], dtype=pl.Date),
            "ticker": daily.get_column("ticker").gather(day_pos),
            "interval": interval,
            "open": bar_open, "high": high, "low": low, "close": bar_close, "volume": volume,
        },
        schema=INTRADAY_COLUMNS,
    )


def _bridge(log_o, log_c, log_h, log_l, steps, day_pos, first, count) -> tuple[np.ndarray, np.ndarray]:
    """Log open and close of each bar: a Brownian bridge ln O -> ln C inside [ln L, ln H]."""
    walk = _cumsum_by_day(steps, day_pos, first)
    position = (np.arange(len(steps)) - first[day_pos] + 1) / count
    end = walk[first + count[first] - 1]
    deviation = walk - position * end[day_pos]  # zero at the close
    line = log_o[day_pos] + position * (log_c - log_o)[day_pos]
    room = np.where(deviation > 0, (log_h[day_pos] - line) / np.where(deviation > 0, deviation, 1.0),
                    np.where(deviation < 0, (log_l[day_pos] - line) / np.where(deviation < 0, deviation, -1.0), np.inf))
    scale = np.minimum(np.minimum.reduceat(room, first), 1.0)[day_pos]
    log_close = line + scale * deviation
    log_open = np.empty_like(log_close)
    log_open[1:] = log_close[:-1]
    log_open[first] = log_o
    return log_open, log_close


def _split_volume(volume, weights, day_pos, first, count) -> np.ndarray:
    """Whole-unit split of each day's volume by `weights` that sums to it exactly."""
    cumulative = _cumsum_by_day(weights, day_pos, first)
    cumulative /= cumulative[first + count[first] - 1][day_pos]
    cumulative[first + count[first] - 1] = 1.0
    allotted = np.round(volume[day_pos] * cumulative)
    out = np.diff(allotted, prepend=0.0)
    out[first] = allotted[first]
    return out


def aggregate_to_daily(intraday: pl.DataFrame) -> pl.DataFrame:
    """Daily (date, ticker, interval) bars of intraday bars: first open, max high, min low, last
    close, summed volume, bar count."""
    return (
        intraday.sort("timestamp")
        .group_by("date", "ticker", "interval", maintain_order=True)
        .agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
            pl.col("volume").sum(), bars=pl.len(),
        )
        .sort("date", "ticker", "interval")
    )


def intraday_daily_mismatches(
    intraday: pl.DataFrame, prices: pl.DataFrame, price_rtol: float = DAILY_PRICE_RTOL,
    volume_tol: float = DAILY_VOLUME_TOL, volume_rtol: float = 0.0,
) -> pl.DataFrame:
    """(date, ticker, interval, field, intraday, daily) where the aggregated intraday bars differ
    from the daily `prices` row beyond the tolerances (prices: price_rtol * |daily|; volume:
    volume_tol + volume_rtol * daily); days without a daily row are skipped."""
    joined = aggregate_to_daily(intraday).join(prices, on=["date", "ticker"], suffix="_daily")
    parts = []
    for field in ("open", "high", "low", "close", "volume"):
        daily_value = pl.col(f"{field}_daily").abs()
        tol = volume_tol + volume_rtol * daily_value if field == "volume" else daily_value * price_rtol
        parts.append(
            joined.filter((pl.col(field) - pl.col(f"{field}_daily")).abs() > tol).select(
                "date", "ticker", "interval", pl.lit(field).alias("field"),
                pl.col(field).alias("intraday"), pl.col(f"{field}_daily").alias("daily"),
            )
        )
    return pl.concat(parts).sort("date", "ticker", "field")


def bad_intraday_rows(bars: pl.DataFrame) -> pl.DataFrame:
    """Rows that break OHLC logic (low <= open, close <= high; prices > 0; volume >= 0; no NaN)
    or repeat a (timestamp, ticker, interval)."""
    prices = ("open", "high", "low", "close")
    return bars.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.min_horizontal(*prices) <= 0)
        | (pl.col("volume") < 0)
        | pl.any_horizontal(pl.col(c).is_nan() | pl.col(c).is_null() for c in (*prices, "volume"))
        | pl.struct("timestamp", "ticker", "interval").is_duplicated()
    )


OHLCV_COLUMNS: dict[str, pl.DataType] = {
    "timestamp": pl.Datetime("us", "UTC"),
    "open": pl.Float64,
    "high": pl.Float64,
    "low": pl.Float64,
    "close": pl.Float64,
    "volume": pl.Float64,
}
"""What every provider's `fetch_ohlcv` returns (seed 004 §4.2): UTC bar starts, float64 OHLCV."""


class IntradayDataError(ValueError):
    """Intraday bars that cannot be used as given; the message names symbol, interval and problem."""


def clean_intraday(frame: pl.DataFrame, symbol: str, interval: str, naive_is_utc: bool = False) -> tuple[pl.DataFrame, dict[str, int]]:
    """Bars in OHLCV_COLUMNS, sorted and unique by timestamp, valid OHLC (seed 004 §4.2), with the
    count of every repair. The daily cleaning policy (`quant_lib.data.cleaning`) keyed on timestamp:

    | problem                              | action                                  | count key           |
    |--------------------------------------|-----------------------------------------|---------------------|
    | no `timestamp` / not a datetime      | IntradayDataError                       |                     |
    | timezone-naive timestamps            | IntradayDataError, or UTC if naive_is_utc| `naive_as_utc`     |
    | timestamps out of order              | sort                                    | `out_of_order`      |
    | duplicate timestamp                  | keep the first                          | `duplicate`         |
    | null / NaN / inf O, H, L or C        | drop                                    | `missing_ohlc`      |
    | price <= 0 / volume < 0              | drop                                    | `non_positive_price`, `negative_volume` |
    | volume null / NaN                    | 0.0                                     | `volume_filled`     |
    | high < max(O, C) / low > min(O, C)   | clip to max(O, C) / min(O, C)           | `high_clipped`, `low_clipped` |
    """
    where = f"{symbol} {interval}"
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise IntradayDataError(f"{where}: missing column(s) {missing} (have {frame.columns})")
    stamp = frame.schema["timestamp"]
    if not isinstance(stamp, pl.Datetime):
        raise IntradayDataError(f"{where}: `timestamp` must be a datetime, got {stamp}")
    counts: dict[str, int] = {}
    if stamp.time_zone is None:
        if not naive_is_utc:
            raise IntradayDataError(f"{where}: timezone-naive timestamps; give them a time zone (or declare them UTC)")
        counts["naive_as_utc"] = frame.height
        frame = frame.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    frame = frame.select(
        pl.col("timestamp").dt.convert_time_zone("UTC").dt.cast_time_unit("us"),
        *(pl.col(c).cast(pl.Float64) for c in ("open", "high", "low", "close", "volume")),
    )
    counts["out_of_order"] = int((frame["timestamp"].diff().dt.total_microseconds() < 0).sum())
    frame = frame.sort("timestamp", maintain_order=True)
    before = frame.height
    frame = frame.unique("timestamp", keep="first", maintain_order=True)
    counts["duplicate"] = before - frame.height
    ohlc = ("open", "high", "low", "close")
    finite = pl.all_horizontal(pl.col(c).is_finite().fill_null(False) for c in ohlc)
    positive = pl.all_horizontal(pl.col(c) > 0 for c in ohlc)
    counts["missing_ohlc"] = int(frame.select((~finite).sum()).item())
    counts["non_positive_price"] = int(frame.select((finite & ~positive).sum()).item())
    counts["negative_volume"] = int(frame.select((finite & positive & (pl.col("volume") < 0)).sum()).item())
    frame = frame.filter(finite & positive & ~(pl.col("volume") < 0).fill_null(False))
    counts["volume_filled"] = int(frame.select(~pl.col("volume").is_finite().fill_null(False)).sum().item())
    counts["high_clipped"] = int(frame.select((pl.col("high") < pl.max_horizontal("open", "close")).sum()).item())
    counts["low_clipped"] = int(frame.select((pl.col("low") > pl.min_horizontal("open", "close")).sum()).item())
    frame = frame.with_columns(
        pl.when(pl.col("volume").is_finite()).then("volume").otherwise(0.0).alias("volume"),
        pl.max_horizontal("high", "open", "close").alias("high"),
        pl.min_horizontal("low", "open", "close").alias("low"),
    )
    return frame.select(list(OHLCV_COLUMNS)), {k: v for k, v in counts.items() if v}


def most_liquid(prices: pl.DataFrame, n: int, exclude: Sequence[str] = ()) -> list[str]:
    """The `n` tickers with the highest median daily dollar volume (close * volume) in `prices`
    among those present on its last date, ties by ticker."""
    last = prices.get_column("date").max()
    present = prices.filter(pl.col("date") == last).get_column("ticker")
    ranked = (
        prices.filter(pl.col("ticker").is_in(present.implode()) & ~pl.col("ticker").is_in(list(exclude)))
        .group_by("ticker")
        .agg(dollar_volume=(pl.col("close") * pl.col("volume")).median())
        .sort(["dollar_volume", "ticker"], descending=[True, False])
    )
    return ranked.get_column("ticker").head(n).to_list()


def intraday_checks(bars: pl.DataFrame, prices: pl.DataFrame, price_rtol: float = DAILY_PRICE_RTOL,
                    volume_tol: float = DAILY_VOLUME_TOL, volume_rtol: float = 0.0) -> list:
    """Blocking checks of `intraday_bars`: schema, OHLC logic and uniqueness, and the bars of each
    day aggregating to that day's `prices` row within the tolerances (days without one skipped)."""
    from quant_lib.data.quality import CheckOutcome

    schema_ok = bars.schema == pl.Schema(INTRADAY_COLUMNS)
    bad = bad_intraday_rows(bars)
    mismatches = intraday_daily_mismatches(bars, prices, price_rtol, volume_tol, volume_rtol)
    return [
        CheckOutcome("schema", schema_ok, "bars match INTRADAY_COLUMNS" if schema_ok else f"schema {dict(bars.schema)}"),
        CheckOutcome("ohlc_logic", bad.is_empty(), f"{bad.height} rows break OHLC logic or repeat a bar",
                     {"violations": bad.height}),
        CheckOutcome("matches_daily", mismatches.is_empty(),
                     f"{mismatches.height} (day, ticker, field) differ from the daily bar "
                     f"(price rtol {price_rtol:g}, volume tol {volume_tol:g} + {volume_rtol:g} x daily)",
                     {"mismatches": mismatches.height, "first": str(mismatches.head(5).rows())}),
    ]
