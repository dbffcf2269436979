"""Shared panel preparation for the factor library.

Every factor is a set of polars expressions evaluated on one long panel sorted by (ticker, date):
`date, ticker, adj_close, close, ret, bench_ret` plus the point-in-time fundamentals snapshot.
Rows of one ticker are its trading days, so a shift of `n` rows is `n` trading days.
"""

from __future__ import annotations

import math

import polars as pl

from quant_lib.data.schemas import FUNDAMENTAL_METRICS

ENGINE = "in-memory"
"""Polars engine for every collect: the streaming engine (polars 2's default) sums window
aggregations in morsels whose layout depends on the whole frame, so a date's scores could differ
in the last bit depending on which other dates are in the frame; the in-memory engine does not."""

TRADING_DAYS_PER_YEAR = 252
SQRT_YEAR = math.sqrt(TRADING_DAYS_PER_YEAR)

SNAPSHOT_VALUE_COLUMNS: tuple[str, ...] = FUNDAMENTAL_METRICS
SNAPSHOT_DATE_COLUMNS: tuple[str, ...] = ("period_end", "report_date")


def require_columns(df: pl.DataFrame | pl.LazyFrame, columns: tuple[str, ...] | list[str], what: str) -> None:
    """Raise a ValueError naming the missing columns of `what`."""
    have = df.collect_schema().names() if isinstance(df, pl.LazyFrame) else df.columns
    missing = [c for c in columns if c not in have]
    if missing:
        raise ValueError(f"{what} is missing required columns {missing}; has {have}")


def finite(expr: pl.Expr) -> pl.Expr:
    """`expr` with NaN and +-inf replaced by null."""
    return pl.when(expr.is_finite()).then(expr)


def _check_unique(df: pl.DataFrame, keys: list[str], what: str) -> None:
    dup = df.select(keys).filter(pl.struct(keys).is_duplicated())
    if dup.height:
        raise ValueError(f"{what} has duplicate {tuple(keys)} rows, e.g. {dup.head(5).rows()}")


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


def sort_by_date_ticker(df: pl.DataFrame, enum: pl.Enum) -> pl.DataFrame:
    """Sort by (date, ticker) unless already so sorted; rows of a ticker are then in date order."""
    key = df.select(row_key(enum)).to_series()
    if key.len() > 1 and not bool((key.diff().drop_nulls() > 0).all()):
        idx = key.arg_sort()
        df = df[idx]
    return df


def normalize_prices(prices: pl.DataFrame, enum: pl.Enum | None = None) -> pl.DataFrame:
    """Validate and select `date, ticker, adj_close, close`, sorted by (date, ticker).

    `ticker` becomes an Enum (`enum`, default: the frame's tickers); `close` falls back to
    `adj_close` when absent. Non-positive prices and duplicate (date, ticker) rows are errors.
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
            f"prices has missing or non-positive adj_close/close in {bad.height} rows, e.g. {bad.head(3).rows()}"
        )
    out = sort_by_date_ticker(out, enum)
    key = out.select(row_key(enum)).to_series()
    if key.len() > 1 and not bool((key.diff().drop_nulls() > 0).all()):
        _check_unique(out, ["date", "ticker"], "prices")
    return out


def with_returns(prices: pl.DataFrame, benchmark_ticker: str | None) -> pl.DataFrame:
    """Add the daily simple return `ret` and the benchmark's return on the same date `bench_ret`.

    `bench_ret` is null everywhere when the benchmark is absent.
    """
    out = prices.with_columns(ret=(pl.col("adj_close") / pl.col("adj_close").shift(1) - 1.0).over("ticker"))
    if benchmark_ticker is None or not has_ticker(out, benchmark_ticker):
        return out.with_columns(bench_ret=pl.lit(None, dtype=pl.Float64))
    bench = out.filter(pl.col("ticker") == benchmark_ticker).select("date", bench_ret=pl.col("ret"))
    return out.join(bench, on="date", how="left", maintain_order="left")


def has_ticker(prices: pl.DataFrame, ticker: str) -> bool:
    return prices.select((pl.col("ticker").cast(pl.String) == ticker).any()).item()


def is_not_ticker(df: pl.DataFrame | pl.LazyFrame, ticker: str | None) -> pl.Expr:
    """Row filter excluding `ticker` (works for String and Enum ticker columns)."""
    dtype = df.collect_schema()["ticker"]
    if ticker is None or (isinstance(dtype, pl.Enum) and ticker not in dtype.categories.to_list()):
        return pl.lit(True)
    return pl.col("ticker") != ticker


def normalize_fundamentals(fundamentals: pl.DataFrame | None, enum: pl.Enum | None = None) -> pl.DataFrame | None:
    """Select the snapshot columns (missing metrics become null), typed; None stays None.

    `ticker` becomes `enum` when given (tickers outside it are dropped). Duplicate (date, ticker)
    rows are an error.
    """
    if fundamentals is None:
        return None
    require_columns(fundamentals, ("date", "ticker"), "fundamentals snapshot")
    ticker = pl.col("ticker").cast(pl.String)
    cols = [pl.col("date").cast(pl.Date), ticker.cast(enum, strict=False) if enum is not None else ticker]
    for c in SNAPSHOT_DATE_COLUMNS:
        cols.append(pl.col(c).cast(pl.Date) if c in fundamentals.columns else pl.lit(None, dtype=pl.Date).alias(c))
    for c in SNAPSHOT_VALUE_COLUMNS:
        cols.append(
            pl.col(c).cast(pl.Float64) if c in fundamentals.columns else pl.lit(None, dtype=pl.Float64).alias(c)
        )
    out = fundamentals.select(cols).filter(pl.col("ticker").is_not_null())
    _check_unique(out, ["date", "ticker"], "fundamentals snapshot")
    return out


def null_fundamental_columns() -> list[pl.Expr]:
    return [pl.lit(None, dtype=pl.Date).alias(c) for c in SNAPSHOT_DATE_COLUMNS] + [
        pl.lit(None, dtype=pl.Float64).alias(c) for c in SNAPSHOT_VALUE_COLUMNS
    ]


def join_fundamentals(panel: pl.DataFrame, fundamentals: pl.DataFrame | None, enum: pl.Enum) -> pl.DataFrame:
    """Left-join the snapshot onto the price panel on (date, ticker), keeping the panel's order."""
    if fundamentals is None:
        return panel.with_columns(null_fundamental_columns())
    right = fundamentals.lazy().with_columns(_key=row_key(enum)).drop("date", "ticker")
    return (
        panel.lazy()
        .with_columns(_key=row_key(enum))
        .join(right, on="_key", how="left", maintain_order="left")
        .drop("_key")
        .collect(engine=ENGINE)
    )


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
    """The long panel every factor expression runs on, sorted by (date, ticker), `ticker` an Enum.

    With prices, rows are the price rows (fundamentals left-joined); with fundamentals only, rows
    are the snapshot rows and the price columns are null.
    """
    enum = ticker_enum(prices, fundamentals)
    fundamentals = normalize_fundamentals(fundamentals, enum)
    if prices is None:
        if fundamentals is None:
            raise ValueError("need prices or a fundamentals snapshot")
        nulls = [pl.lit(None, dtype=pl.Float64).alias(c) for c in ("adj_close", "close", "ret", "bench_ret")]
        return sort_by_date_ticker(fundamentals, enum).select("date", "ticker", *nulls, pl.exclude("date", "ticker"))
    base = with_returns(normalize_prices(prices, enum), benchmark_ticker)
    return join_fundamentals(base, fundamentals, enum)


def trading_day_index(panel_dates: pl.Series) -> pl.Series:
    """Sorted unique trading dates of the panel (the calendar for day counts)."""
    return panel_dates.unique().sort()


def output_frame(lf: pl.LazyFrame, columns: list[str]) -> pl.DataFrame:
    """Select `columns` with `ticker` back to String; rows stay sorted by (date, ticker)."""
    selected = lf.select([pl.col(c).cast(pl.String) if c == "ticker" else pl.col(c) for c in columns])
    return selected.collect(engine=ENGINE)
