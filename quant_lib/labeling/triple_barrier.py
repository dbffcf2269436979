"""Triple-barrier labels (Lopez de Prado, AFML ch. 3.4; seed 000 §4.3), vectorized over the panel.

For an event entered at the close of ``date`` with side ``s`` and target ``tau`` (a return), the
path is the ticker's next closes up to ``t1`` (or up to ``max_holding`` of its own bars when
``t1`` is absent). ``r_k = s * (close_k / close_entry - 1)`` touches the upper barrier when
``r_k > pt * tau`` and the lower when ``r_k < -sl * tau`` (strict); a zero multiplier disables a
barrier; the first touch wins. With ``use_high_low`` the bar's high and low are checked too and
the stop wins when both barriers lie within one bar. An untouched path that reaches its end is
labelled ``vertical``; one cut short by the end of the data is **unresolved** (null label and
``touch_date``): a label is known only at its ``touch_date``.

The per-path scans run in one compiled, parallel kernel over a flat (ticker, date)-sorted panel;
locating entries and path ends is a handful of polars joins. No Python loop per event.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from quant_lib.labeling._kernels import BARRIER_PT, BARRIER_SL, BARRIER_VERTICAL, scan_barriers

LABEL_COLUMNS = ("date", "ticker", "side", "target", "t1", "touch_date", "barrier", "ret", "label", "meta_label")
_BARRIER_NAMES = {BARRIER_PT: "pt", BARRIER_SL: "sl", BARRIER_VERTICAL: "vertical"}
_SHOWN_ROWS = 5


def bad_rows_error(frame: pl.DataFrame, mask: pl.Series | pl.Expr, problem: str) -> ValueError | None:
    """A ValueError naming the rows of ``frame`` where ``mask`` holds (None when there are none)."""
    bad = frame.with_row_index("row").filter(mask)
    if bad.is_empty():
        return None
    shown = bad.head(_SHOWN_ROWS).to_dicts()
    return ValueError(f"{bad.height} row(s) {problem}; first {len(shown)}: {shown}")


def _require(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; has {frame.columns}")


def _raise_if(error: ValueError | None) -> None:
    if error is not None:
        raise error


def price_panel(prices: pl.DataFrame, use_high_low: bool = False) -> pl.DataFrame:
    """``prices`` sorted by (ticker, date) with a flat row index ``_row`` and each ticker's last row
    ``_last``; duplicate (date, ticker) rows are an error."""
    columns = ["date", "ticker", "close"] + (["high", "low"] if use_high_low else [])
    _require(prices, columns, "prices")
    panel = prices.select(columns).with_columns(pl.col(c).cast(pl.Float64) for c in columns[2:])
    _raise_if(bad_rows_error(panel, pl.struct("date", "ticker").is_duplicated(), "of prices repeat a (date, ticker)"))
    panel = panel.sort("ticker", "date").with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64))
    return panel.with_columns(pl.col("_row").max().over("ticker").alias("_last"))


def _validate_events(events: pl.DataFrame) -> pl.DataFrame:
    _require(events, ["date", "ticker", "side", "target"], "events")
    events = events.with_columns(pl.col("target").cast(pl.Float64), pl.col("side").cast(pl.Int8, strict=False))
    checks = [
        (~pl.col("side").is_in([-1, 1]) | pl.col("side").is_null(), "have a side not in {-1, +1}"),
        (pl.col("target").is_null() | pl.col("target").is_nan() | (pl.col("target") <= 0), "have a non-positive or NaN target"),
        (pl.struct("date", "ticker").is_duplicated(), "are duplicate events (same date and ticker)"),
    ]
    if "t1" in events.columns:
        checks.append((pl.col("t1") < pl.col("date"), "have t1 before the event date"))
    for mask, problem in checks:
        _raise_if(bad_rows_error(events, mask, problem))
    return events


def _locate(panel: pl.DataFrame, events: pl.DataFrame, max_holding: int) -> pl.DataFrame:
    """Per event: entry row, path end row, the row at which the vertical barrier is known, t1."""
    located = events.with_row_index("_event").join(
        panel.select("date", "ticker", "_row", "_last", pl.col("close").alias("_entry_close")),
        on=["date", "ticker"],
        how="left",
    )
    missing = pl.col("_row").is_null() | pl.col("_entry_close").is_nan()
    _raise_if(bad_rows_error(located.drop("_event"), missing, "have no price (or a NaN close) on their date"))
    horizon = pl.col("_row") + max_holding
    by_holding = located.with_columns(
        pl.min_horizontal(horizon, pl.col("_last")).alias("_path_end"),
        pl.when(horizon <= pl.col("_last")).then(horizon).alias("_known"),
    )
    by_holding = by_holding.join(
        panel.select(pl.col("_row").alias("_known"), pl.col("date").alias("_t1_holding")), on="_known", how="left"
    )
    if "t1" not in events.columns:
        return by_holding.rename({"_t1_holding": "t1"}).sort("_event")
    return _locate_t1(panel, by_holding).sort("_event")


def _locate_t1(panel: pl.DataFrame, located: pl.DataFrame) -> pl.DataFrame:
    """Events with an explicit ``t1``: the path ends at the last bar on or before ``t1``; the
    vertical barrier is known at the first bar on or after ``t1`` (unresolved when none)."""
    bars = panel.select("ticker", pl.col("date").alias("_bar_date"), pl.col("_row").alias("_bar_row")).sort("_bar_date")
    explicit = located.filter(pl.col("t1").is_not_null()).sort("t1")
    before = explicit.join_asof(bars, left_on="t1", right_on="_bar_date", by="ticker", strategy="backward", check_sortedness=False)
    after = explicit.select("_event", "t1", "ticker").join_asof(
        bars, left_on="t1", right_on="_bar_date", by="ticker", strategy="forward", check_sortedness=False
    )
    explicit = before.select(pl.exclude("_path_end", "_known", "_bar_date", "_bar_row"), pl.col("_bar_row").alias("_path_end")).join(
        after.select("_event", pl.col("_bar_row").alias("_known")), on="_event"
    )
    implicit = located.filter(pl.col("t1").is_null()).with_columns(pl.col("_t1_holding").alias("t1"))
    columns = [c for c in explicit.columns if c != "_t1_holding"]
    return pl.concat([explicit.select(columns), implicit.select(columns)])


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
    panel = price_panel(prices, use_high_low)
    events = _validate_events(events)
    located = _locate(panel, events, max_holding)
    n = located.height
    target = located["target"].to_numpy()
    side = located["side"].to_numpy().astype(np.int64)
    touch = np.empty(n, dtype=np.int64)
    barrier = np.empty(n, dtype=np.int8)
    ret = np.empty(n)
    close = panel["close"].to_numpy()
    high = panel["high"].to_numpy() if use_high_low else close
    low = panel["low"].to_numpy() if use_high_low else close
    scan_barriers(
        close, high, low, use_high_low,
        located["_row"].to_numpy(), located["_path_end"].to_numpy(),
        located["_known"].is_not_null().to_numpy(), side,
        pt * target if pt > 0 else np.full(n, np.inf), -sl * target if sl > 0 else np.full(n, -np.inf),
        touch, barrier, ret,
    )  # fmt: skip
    known = located["_known"].fill_null(-1).to_numpy()
    touch = np.where(barrier == BARRIER_VERTICAL, known, touch)
    return _assemble(located, panel, touch, barrier, ret, vertical_label)


def _validate_options(pt_sl: tuple[float, float], max_holding: int, vertical_label: str) -> tuple[float, float]:
    if len(pt_sl) != 2 or not all(np.isfinite(m) and m >= 0 for m in pt_sl):
        raise ValueError(f"pt_sl must be two finite non-negative multipliers, got {pt_sl!r}")
    if int(max_holding) < 1:
        raise ValueError(f"max_holding must be >= 1 bar, got {max_holding}")
    if vertical_label not in ("zero", "sign"):
        raise ValueError(f"vertical_label must be 'zero' or 'sign', got {vertical_label!r}")
    return float(pt_sl[0]), float(pt_sl[1])


def _assemble(located, panel, touch, barrier, ret, vertical_label) -> pl.DataFrame:
    dates = panel["date"]
    touch_date = dates.gather(np.where(touch >= 0, touch, 0)).to_frame("touch_date").select(
        pl.when(pl.Series(touch >= 0)).then(pl.col("touch_date")).alias("touch_date")
    )["touch_date"]
    vertical_value = pl.col("ret").sign().cast(pl.Int8) if vertical_label == "sign" else pl.lit(0, pl.Int8)
    code = pl.Series("code", barrier)
    result = located.with_columns(
        touch_date.alias("touch_date"),
        code.replace_strict(_BARRIER_NAMES, default=None, return_dtype=pl.String).alias("barrier"),
        pl.Series("ret", ret),
    ).with_columns(
        pl.when(pl.col("barrier") == "pt").then(pl.lit(1, pl.Int8))
        .when(pl.col("barrier") == "sl").then(pl.lit(-1, pl.Int8))
        .when(pl.col("barrier") == "vertical").then(vertical_value)
        .alias("label")
    ).with_columns(
        pl.col("ret").fill_nan(None),
        pl.when(pl.col("label").is_not_null()).then((pl.col("label") == 1).cast(pl.Int8)).alias("meta_label"),
    )  # fmt: skip
    extra = [c for c in result.columns if c not in LABEL_COLUMNS and not c.startswith("_")]
    return result.select(*LABEL_COLUMNS, *extra).sort("date", "ticker")
