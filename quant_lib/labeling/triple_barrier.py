"""Triple-barrier labels (Lopez de Prado, AFML ch. 3.4; seed 000 §4.3), vectorized over the panel.

For an event entered at the close of ``date`` with side ``s`` and target ``tau`` (a return), the
path is the ticker's next closes up to ``t1`` (or up to ``max_holding`` of its own bars when
``t1`` is absent or null). ``r_k = s * (close_k / close_entry - 1)`` touches the upper barrier
when ``r_k > pt * tau`` and the lower when ``r_k < -sl * tau`` (strict); a zero multiplier
disables a barrier; the first touch wins. With ``use_high_low`` the bar's high and low are
checked too and the stop wins when both barriers lie within one bar. An untouched path that
reaches its end is labelled ``vertical``; one cut short by the end of the data is **unresolved**
(null label and ``touch_date``): a label is known only at its ``touch_date``. With an explicit
``t1`` the path ends at the last bar on or before ``t1`` and the vertical barrier is known at the
first bar on or after ``t1``.

Locating entries and path ends is ``searchsorted`` on integer (ticker, date) keys
(``quant_lib.labeling._panel``); the per-path scans run in one compiled, parallel kernel. No
Python loop per event.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from quant_lib.labeling._kernels import BARRIER_PT, BARRIER_SL, BARRIER_VERTICAL, scan_barriers
from quant_lib.labeling._panel import Panel, bad_rows_error, build_panel, day_numbers, raise_if, require_columns

LABEL_COLUMNS = ("date", "ticker", "side", "target", "t1", "touch_date", "barrier", "ret", "label", "meta_label")
_BARRIER_NAMES = {BARRIER_PT: "pt", BARRIER_SL: "sl", BARRIER_VERTICAL: "vertical"}


def price_panel(prices: pl.DataFrame, use_high_low: bool = False) -> pl.DataFrame:
    """``prices`` sorted by (ticker, date) with a flat row index ``_row`` and each ticker's last row
    ``_last``; duplicate (date, ticker) rows are an error."""
    panel = build_panel(prices, ["close"] + (["high", "low"] if use_high_low else []))
    return panel.frame.with_columns(pl.Series("_row", np.arange(panel.frame.height, dtype=np.int64)), pl.Series("_last", panel.last_row[panel.code]))


def _validate_events(events: pl.DataFrame) -> pl.DataFrame:
    require_columns(events, ["date", "ticker", "side", "target"], "events")
    events = events.with_columns(pl.col("date").cast(pl.Date), pl.col("target").cast(pl.Float64), pl.col("side").cast(pl.Int8, strict=False))
    side = events["side"].fill_null(0).to_numpy()
    target = events["target"].fill_null(np.nan).to_numpy()
    raise_if(bad_rows_error(events, (side != 1) & (side != -1), "have a side not in {-1, +1}"))
    raise_if(bad_rows_error(events, ~(target > 0), "have a non-positive or NaN target"))
    if "t1" in events.columns:
        events = events.with_columns(pl.col("t1").cast(pl.Date))
        raise_if(bad_rows_error(events, (events["t1"] < events["date"]).fill_null(False).to_numpy(), "have t1 before the event date"))
    return events


def _duplicates(key: np.ndarray) -> np.ndarray:
    order = np.argsort(key, kind="stable")
    same = key[order][1:] == key[order][:-1]
    mask = np.zeros(len(key), dtype=bool)
    mask[order[1:][same]] = True
    mask[order[:-1][same]] = True
    return mask


def _locate(panel: Panel, events: pl.DataFrame, max_holding: int) -> dict[str, np.ndarray]:
    """Per event: entry row, path end row, the row at which the vertical barrier is known (-1:
    never, the event is unresolved unless touched)."""
    key, code = panel.keys_of(events["ticker"], events["date"])
    raise_if(bad_rows_error(events, _duplicates(key) & (code >= 0), "are duplicate events (same date and ticker)"))
    entry = panel.rows_of(key, code)
    close = panel.frame["close"].to_numpy()
    missing = (entry < 0) | np.isnan(close[np.maximum(entry, 0)])
    raise_if(bad_rows_error(events, missing, "have no price (or a NaN close) on their date"))
    last = panel.last_row[code]
    horizon = entry + max_holding
    path_end = np.minimum(horizon, last)
    known = np.where(horizon <= last, horizon, -1)
    if "t1" in events.columns:
        explicit = events["t1"].is_not_null().to_numpy()
        t1_key = (code << 32) | (day_numbers(events["t1"].fill_null(events["date"])) + np.int64(2**31))
        before = np.searchsorted(panel.key, t1_key, side="right") - 1
        after = np.searchsorted(panel.key, t1_key, side="left")
        after_known = np.where(after <= last, after, -1)
        path_end = np.where(explicit, before, path_end)
        known = np.where(explicit, after_known, known)
    return {"entry": entry, "path_end": path_end, "known": known}


def triple_barrier(
    prices: pl.DataFrame,
    events: pl.DataFrame,
    pt_sl: tuple[float, float] = (1.0, 1.0),
    max_holding: int = 20,
    use_high_low: bool = False,
    vertical_label: str = "zero",
) -> pl.DataFrame:
    """Label each event by the first barrier its path touches (see the module docstring).

    Returns per event (sorted by date, ticker): ``date, ticker, side, target, t1, touch_date,
    barrier`` (``pt``/``sl``/``vertical``, null when unresolved), ``ret`` (side-adjusted return at
    the touch), ``label`` (+1 pt, -1 sl, vertical 0 or ``sign(ret)`` with
    ``vertical_label="sign"``), ``meta_label`` (1 if ``label == 1`` else 0), then any other event
    columns. Bad input raises a ValueError naming the rows.
    """
    pt, sl = _validate_options(pt_sl, max_holding, vertical_label)
    panel = build_panel(prices, ["close"] + (["high", "low"] if use_high_low else []))
    events = _validate_events(events)
    where = _locate(panel, events, int(max_holding))
    n = events.height
    target = events["target"].to_numpy()
    touch, barrier, ret = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int8), np.empty(n)
    close = panel.frame["close"].to_numpy()
    high = panel.frame["high"].to_numpy() if use_high_low else close
    low = panel.frame["low"].to_numpy() if use_high_low else close
    scan_barriers(
        close, high, low, use_high_low, where["entry"], where["path_end"], where["known"] >= 0,
        events["side"].to_numpy().astype(np.int64),
        pt * target if pt > 0 else np.full(n, np.inf), -sl * target if sl > 0 else np.full(n, -np.inf),
        touch, barrier, ret,
    )  # fmt: skip
    touch = np.where(barrier == BARRIER_VERTICAL, where["known"], touch)
    return _assemble(events, panel, where, max_holding, touch, barrier, ret, vertical_label)


def _validate_options(pt_sl: tuple[float, float], max_holding: int, vertical_label: str) -> tuple[float, float]:
    if len(pt_sl) != 2 or not all(np.isfinite(m) and m >= 0 for m in pt_sl):
        raise ValueError(f"pt_sl must be two finite non-negative multipliers, got {pt_sl!r}")
    if int(max_holding) < 1:
        raise ValueError(f"max_holding must be >= 1 bar, got {max_holding}")
    if vertical_label not in ("zero", "sign"):
        raise ValueError(f"vertical_label must be 'zero' or 'sign', got {vertical_label!r}")
    return float(pt_sl[0]), float(pt_sl[1])


def _dates_at(panel: Panel, rows: np.ndarray) -> pl.Series:
    """Panel dates at ``rows`` (null where ``rows < 0``)."""
    days = panel.frame["date"].cast(pl.Int32).to_numpy()
    values = np.where(rows >= 0, days[np.maximum(rows, 0)], 0)
    return pl.Series(values, dtype=pl.Int32).cast(pl.Date).scatter(np.flatnonzero(rows < 0), None)


def _assemble(events, panel, where, max_holding, touch, barrier, ret, vertical_label) -> pl.DataFrame:
    horizon = where["entry"] + max_holding
    t1_holding = _dates_at(panel, np.where(horizon <= panel.last_row[panel.code[where["entry"]]], horizon, -1))
    t1 = events["t1"].fill_null(t1_holding) if "t1" in events.columns else t1_holding
    vertical_value = pl.col("ret").sign().cast(pl.Int8) if vertical_label == "sign" else pl.lit(0, pl.Int8)
    result = events.with_columns(
        t1.alias("t1"),
        _dates_at(panel, touch).alias("touch_date"),
        pl.Series("barrier", barrier).replace_strict(_BARRIER_NAMES, default=None, return_dtype=pl.String),
        pl.Series("ret", ret).fill_nan(None),
    ).with_columns(
        pl.when(pl.col("barrier") == "pt").then(pl.lit(1, pl.Int8))
        .when(pl.col("barrier") == "sl").then(pl.lit(-1, pl.Int8))
        .when(pl.col("barrier") == "vertical").then(vertical_value)
        .alias("label")
    ).with_columns(
        pl.when(pl.col("label").is_not_null()).then((pl.col("label") == 1).cast(pl.Int8)).alias("meta_label"),
    )  # fmt: skip
    extra = [c for c in result.columns if c not in LABEL_COLUMNS]
    order = np.lexsort((panel.code[where["entry"]], day_numbers(events["date"])))
    return result.select(*LABEL_COLUMNS, *extra)[order]
