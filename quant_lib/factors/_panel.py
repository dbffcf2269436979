"""Shared panel preparation for the factor library.

Every factor is a set of polars expressions evaluated on one long panel sorted by (ticker, date):
`date, ticker, adj_close, close, ret, bench_ret` plus the point-in-time fundamentals snapshot.
Rows of one ticker are its trading days, so a shift of `n` rows is `n` trading days. `ticker` is
an Enum flagged sorted, so `.over("ticker")` windows work on contiguous slices (several times
faster than hashing); results are returned sorted by (date, ticker) with `ticker` a String.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from quant_lib.data.schemas import FUNDAMENTAL_METRICS

ENGINE = "in-memory"
"""Polars engine for every collect: the streaming engine (polars 2's default) sums window
aggregations in morsels whose layout depends on the whole frame, so a date's scores could differ
in the last bit depending on which other dates are in the frame; the in-memory engine does not."""

TRADING_DAYS_PER_YEAR = 252
SQRT_YEAR = math.sqrt(TRADING_DAYS_PER_YEAR)

SNAPSHOT_VALUE_COLUMNS: tuple[str, ...] = tuple(m for m in FUNDAMENTAL_METRICS if m != "ebitda")
"""The snapshot metrics the factors use (EBITDA is not used by any factor)."""
SNAPSHOT_DATE_COLUMNS: tuple[str, ...] = ("report_date",)


def require_columns(df: pl.DataFrame | pl.LazyFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise a ValueError naming the missing columns of `what`."""
    have = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(f"{what} is missing required columns {missing}; has {have}")


def finite(expr: pl.Expr) -> pl.Expr:
    """`expr` with NaN and +-inf replaced by null (evaluates `expr` twice: use on columns)."""
    return pl.when(expr.is_finite()).then(expr)


def row_sum(exprs: list[pl.Expr]) -> pl.Expr:
    """Row-wise sum of `exprs` (nulls count as 0) added strictly left to right.

    `pl.sum_horizontal` reduces floats in a thread-scheduled order, so its last bit can change from
    run to run; a fixed left fold keeps results bit-for-bit reproducible.
    """
    total = exprs[0].fill_null(0.0)
    for e in exprs[1:]:
        total = total + e.fill_null(0.0)
    return total


def with_finite(lf: pl.LazyFrame, **exprs: pl.Expr) -> pl.LazyFrame:
    """Add the columns, then null out their NaN and +-inf values (each expression runs once)."""
    return lf.with_columns(**exprs).with_columns([finite(pl.col(name)).alias(name) for name in exprs])


def ticker_enum(*frames: pl.DataFrame | None) -> pl.Enum:
    """An Enum over the sorted union of the frames' tickers (fast grouping, joins and sorts)."""
    names: set[str] = set()
    for f in frames:
        if f is not None and f.height:
            names.update(f.get_column("ticker").cast(pl.String).unique().drop_nulls().to_list())
    return pl.Enum(sorted(names))


def row_key(enum: pl.Enum) -> pl.Expr:
    """A unique Int64 per (date, ticker) ordered like (date, ticker): date * n_tickers + code."""
    n = max(len(enum.categories), 1)
    return pl.col("date").cast(pl.Int64) * n + pl.col("ticker").to_physical().cast(pl.Int64)


def _stable_order(values: np.ndarray) -> np.ndarray:
    """Stable argsort of small non-negative integers (radix sort for 16-bit values)."""
    if values.size and values.max() < 2**16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    return np.argsort(values, kind="stable")


def date_major(df: pl.DataFrame, enum: pl.Enum, what: str) -> pl.DataFrame:
    """`df` sorted by (date, ticker) with its `_key` (row_key) column flagged sorted.

    Duplicate (date, ticker) rows are an error naming a few of them.
    """
    df = df.with_columns(_key=row_key(enum))
    key = df.get_column("_key")
    if key.len() > 1 and not bool((key.diff().drop_nulls() > 0).all()):
        df = df[key.arg_sort()]
        key = df.get_column("_key")
        dup = key.is_duplicated()
        if dup.any():
            rows = df.filter(dup).select(pl.col("date"), pl.col("ticker").cast(pl.String)).head(5).rows()
            raise ValueError(f"{what} has duplicate (date, ticker) rows, e.g. {rows}")
    return df.with_columns(pl.col("_key").set_sorted())


def ticker_major(df: pl.DataFrame) -> pl.DataFrame:
    """Reorder a (date, ticker)-sorted frame to (ticker, date) with `ticker` flagged sorted, so
    `.over("ticker")` windows run on contiguous slices."""
    codes = df.get_column("ticker").to_physical().to_numpy()
    return df[_stable_order(codes)].with_columns(pl.col("ticker").set_sorted())


def date_ordered(df: pl.DataFrame) -> pl.DataFrame:
    """Reorder a (ticker, date)-sorted frame to (date, ticker)."""
    if df.height == 0:
        return df
    days = df.get_column("date").to_physical().to_numpy()
    return df[_stable_order(days - days.min())]


def sorted_by_date_and_ticker(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` in (date, ticker) order: returned as is when already strictly ordered (one cheap
    pass), else sorted stably."""
    ordered = frame.select(
        ((pl.col("date").diff() > 0) | ((pl.col("date").diff() == 0) & (pl.col("ticker") > pl.col("ticker").shift())))
        .fill_null(True)
        .all()
    ).item()
    return frame if ordered else frame.sort("date", "ticker", maintain_order=True)


def normalize_prices(prices: pl.DataFrame, enum: pl.Enum | None = None) -> pl.DataFrame:
    """Validate and select `date, ticker, adj_close, close` (+ `_key`), sorted by (date, ticker).

    `ticker` becomes an Enum (`enum`, default: the frame's tickers); `close` falls back to
    `adj_close` when absent. Missing or non-positive prices and duplicate (date, ticker) rows are
    errors.
    """
    require_columns(prices, ("date", "ticker", "adj_close"), "prices")
    enum = enum or ticker_enum(prices)
    close = pl.col("close") if "close" in prices.columns else pl.col("adj_close")
    out = prices.select(
        pl.col("date").cast(pl.Date),
        pl.col("ticker").cast(pl.String).cast(enum),
        pl.col("adj_close").cast(pl.Float64),
        close.cast(pl.Float64).alias("close"),
    )
    bad = out.filter(~(pl.col("adj_close") > 0).fill_null(False) | ~(pl.col("close") > 0).fill_null(False))
    if bad.height:
        raise ValueError(
            f"prices has missing or non-positive adj_close/close in {bad.height} rows, e.g. "
            f"{bad.with_columns(pl.col('ticker').cast(pl.String)).head(3).rows()}"
        )
    if out.select(pl.col("date").is_null().any() | pl.col("ticker").is_null().any()).item():
        raise ValueError("prices has rows with a null date or ticker")
    return date_major(out, enum, "prices")


def with_returns(panel: pl.DataFrame, benchmark_ticker: str | None) -> pl.DataFrame:
    """Add the daily simple return `ret` and the benchmark's return on the same date `bench_ret`
    to a ticker-major panel; `bench_ret` is null everywhere when the benchmark is absent."""
    out = panel.with_columns(ret=(pl.col("adj_close") / pl.col("adj_close").shift(1) - 1.0).over("ticker"))
    if benchmark_ticker is None or not has_ticker(out, benchmark_ticker):
        return out.with_columns(bench_ret=pl.lit(None, dtype=pl.Float64))
    bench = out.filter(pl.col("ticker") == benchmark_ticker).select("date", bench_ret=pl.col("ret"))
    return out.join(bench, on="date", how="left", maintain_order="left").with_columns(
        pl.col("ticker").set_sorted()
    )


def has_ticker(prices: pl.DataFrame, ticker: str) -> bool:
    """Whether any row has `ticker` (String or Enum ticker column)."""
    dtype = prices.schema["ticker"]
    if isinstance(dtype, pl.Enum):
        if ticker not in dtype.categories.to_list():
            return False
        return prices.select((pl.col("ticker") == ticker).any()).item()
    return prices.select((pl.col("ticker").cast(pl.String) == ticker).any()).item()


def is_not_ticker(df: pl.DataFrame | pl.LazyFrame, ticker: str | None) -> pl.Expr:
    """Row filter excluding `ticker` (works for String and Enum ticker columns)."""
    dtype = df.collect_schema()["ticker"]
    if ticker is None or (isinstance(dtype, pl.Enum) and ticker not in dtype.categories.to_list()):
        return pl.lit(True)
    return pl.col("ticker") != ticker


def normalize_fundamentals(fundamentals: pl.DataFrame | None, enum: pl.Enum) -> pl.DataFrame | None:
    """Select the snapshot columns (missing metrics become null), typed, sorted by (date, ticker)
    with `_key`; tickers outside `enum` are dropped. Duplicate (date, ticker) rows are an error."""
    if fundamentals is None:
        return None
    require_columns(fundamentals, ("date", "ticker"), "fundamentals snapshot")
    cols = [pl.col("date").cast(pl.Date), pl.col("ticker").cast(pl.String).cast(enum, strict=False)]
    for c in SNAPSHOT_DATE_COLUMNS:
        cols.append(pl.col(c).cast(pl.Date) if c in fundamentals.columns else pl.lit(None, dtype=pl.Date).alias(c))
    for c in SNAPSHOT_VALUE_COLUMNS:
        cols.append(
            pl.col(c).cast(pl.Float64) if c in fundamentals.columns else pl.lit(None, dtype=pl.Float64).alias(c)
        )
    out = fundamentals.select(cols).filter(pl.col("ticker").is_not_null() & pl.col("date").is_not_null())
    return date_major(out, enum, "fundamentals snapshot")


def null_fundamental_columns() -> list[pl.Expr]:
    return [pl.lit(None, dtype=pl.Date).alias(c) for c in SNAPSHOT_DATE_COLUMNS] + [
        pl.lit(None, dtype=pl.Float64).alias(c) for c in SNAPSHOT_VALUE_COLUMNS
    ]


def join_fundamentals(prices: pl.DataFrame, fundamentals: pl.DataFrame | None) -> pl.DataFrame:
    """Left-join the snapshot onto date-major prices on (date, ticker) via the sorted `_key`."""
    if fundamentals is None:
        return prices.with_columns(null_fundamental_columns()).drop("_key")
    right = fundamentals.drop("date", "ticker")
    return prices.join(right, on="_key", how="left", maintain_order="left").drop("_key")


def non_null_columns(df: pl.DataFrame | None, columns: tuple[str, ...]) -> set[str]:
    """The subset of `columns` holding at least one non-null value."""
    if df is None or df.height == 0:
        return set()
    present = [c for c in columns if c in df.columns]
    if not present:
        return set()
    counts = df.select([pl.col(c).is_not_null().any().alias(c) for c in present]).row(0, named=True)
    return {c for c, ok in counts.items() if ok}


def build_panel(
    prices: pl.DataFrame | None,
    fundamentals: pl.DataFrame | None,
    benchmark_ticker: str | None,
) -> pl.DataFrame:
    """The long panel every factor expression runs on: sorted by (ticker, date), `ticker` an Enum
    flagged sorted, with `ret` and `bench_ret`.

    With prices, rows are the price rows (fundamentals left-joined); with fundamentals only, rows
    are the snapshot rows and the price columns are null.
    """
    enum = ticker_enum(prices, fundamentals)
    snapshot = normalize_fundamentals(fundamentals, enum)
    if prices is None:
        if snapshot is None:
            raise ValueError("need prices or a fundamentals snapshot")
        nulls = [pl.lit(None, dtype=pl.Float64).alias(c) for c in ("adj_close", "close", "ret", "bench_ret")]
        panel = snapshot.drop("_key").select("date", "ticker", *nulls, pl.exclude("date", "ticker"))
        return ticker_major(panel)
    joined = join_fundamentals(normalize_prices(prices, enum), snapshot)
    return with_returns(ticker_major(joined), benchmark_ticker)


def trading_day_index(panel_dates: pl.Series) -> pl.Series:
    """Sorted unique trading dates of the panel (the calendar for day counts)."""
    return panel_dates.unique().sort()


def output_frame(lf: pl.LazyFrame, columns: list[str]) -> pl.DataFrame:
    """Collect `columns` of a ticker-major panel as a (date, ticker)-sorted frame, ticker a String."""
    selected = lf.select([pl.col(c).cast(pl.String) if c == "ticker" else pl.col(c) for c in columns])
    return date_ordered(selected.collect(engine=ENGINE))
