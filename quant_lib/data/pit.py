"""Point-in-time fundamentals: what was known about each ticker at the close of each date.

A fact (ticker, period_end, available_at, metric, value) is usable on date D only when
`available_at <= D` (ARCHITECTURE.md, "Point in time"). The snapshot is built with one as-of
join over the whole (date x ticker) grid, never a loop over dates or tickers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import polars as pl

from quant_lib.data.schemas import (
    FUNDAMENTAL_FACT_COLUMNS,
    FUNDAMENTAL_METRICS,
    FUNDAMENTAL_SNAPSHOT_COLUMNS,
    QUARTERLY_METRICS,
    conform,
)


@dataclass(frozen=True)
class FundamentalsSnapshot:
    """The snapshot frame (FUNDAMENTAL_SNAPSHOT_COLUMNS) and the facts it had to ignore."""

    frame: pl.DataFrame
    unknown_metric_rows: int
    unknown_metrics: tuple[str, ...]


def _as_date_series(dates: Sequence[date] | pl.Series) -> pl.Series:
    series = dates if isinstance(dates, pl.Series) else pl.Series("date", list(dates))
    if series.dtype == pl.Null or series.len() == 0:
        return pl.Series("date", [], dtype=pl.Date)
    if isinstance(series.dtype, pl.Datetime):
        series = series.dt.date()
    if series.dtype != pl.Date:
        raise ValueError(f"dates must be dates, got dtype {series.dtype}")
    if series.null_count():
        raise ValueError("dates contain nulls")
    return series.alias("date").unique().sort()


def _latest_reports(quarterly: pl.DataFrame) -> pl.DataFrame:
    """(ticker, period_end, report_date) rows at which the latest known quarter advances.

    report_date of a quarter = the first `available_at` of any of its quarterly facts. A row is
    kept only if its quarter is later than every quarter published before it (and, of quarters
    first published on the same day, only the latest), so an as-of lookup on report_date yields
    the most recent quarter known at each date. Every report_date is the `available_at` of a fact.
    """
    reports = (
        quarterly.group_by("ticker", "period_end")
        .agg(pl.col("available_at").min().alias("report_date"))
        .sort("ticker", "report_date", "period_end")
    )
    previous_best = pl.col("period_end").cum_max().shift(1).over("ticker")
    return (
        reports.filter(previous_best.is_null() | (pl.col("period_end") > previous_best))
        .unique(subset=["ticker", "report_date"], keep="last", maintain_order=True)
        .select("ticker", pl.col("report_date").alias("available_at"), "period_end", "report_date")
    )


def fundamentals_snapshot(
    facts: pl.DataFrame,
    dates: Sequence[date] | pl.Series,
    tickers: Sequence[str] | None = None,
) -> FundamentalsSnapshot:
    """Latest known value of every metric for each (date, ticker), using only `available_at <= date`.

    For metric m, ticker i and date D: value of the fact with the greatest `available_at <= D`
    (ties: the greatest `period_end`, then the last row). A fact whose value is null or NaN
    masks older values (the latest knowledge is "unknown"). `period_end` / `report_date` are the
    quarter end and first publication date of the most recent quarterly report known at D.
    Metrics outside FUNDAMENTAL_METRICS are ignored and counted. `tickers` defaults to every
    ticker in `facts`; the output has one row per (date, ticker), sorted by (date, ticker).
    """
    facts = conform(facts, FUNDAMENTAL_FACT_COLUMNS).filter(
        pl.col("ticker").is_not_null() & pl.col("available_at").is_not_null() & pl.col("metric").is_not_null()
    )
    date_series = _as_date_series(dates)
    known = pl.col("metric").is_in(list(FUNDAMENTAL_METRICS))
    unknown = facts.filter(~known)
    unknown_metrics = tuple(sorted(unknown["metric"].unique().to_list()))
    facts = facts.filter(known)

    ticker_list = sorted(set(tickers) if tickers is not None else set(facts["ticker"].unique().to_list()))
    ticker_enum = pl.Enum(ticker_list)
    facts = facts.filter(pl.col("ticker").is_in(ticker_list))
    if date_series.len():
        facts = facts.filter(pl.col("available_at") <= date_series.max())
    facts = facts.with_columns(pl.col("ticker").cast(ticker_enum))

    metric_columns = list(FUNDAMENTAL_METRICS)
    wide = (
        facts.with_columns(pl.col("value").fill_null(float("nan")))
        .sort("ticker", "available_at", "period_end", maintain_order=True)
        .pivot(
            on="metric",
            on_columns=metric_columns,
            index=["ticker", "available_at"],
            values="value",
            aggregate_function="last",
        )
    )
    reports = _latest_reports(facts.filter(pl.col("metric").is_in(list(QUARTERLY_METRICS))))
    history = (
        wide.join(reports, on=["ticker", "available_at"], how="left", maintain_order="left")
        .with_columns(
            pl.col([*metric_columns, "period_end", "report_date"]).fill_null(strategy="forward").over("ticker")
        )
        .sort("available_at")
    )
    grid = (
        date_series.to_frame()
        .join(pl.Series("ticker", ticker_list, dtype=ticker_enum).to_frame(), how="cross")
        .sort("date", "ticker")
    )
    snapshot = grid.join_asof(
        history,
        left_on="date",
        right_on="available_at",
        by="ticker",
        strategy="backward",
        check_sortedness=False,
    )
    frame = snapshot.with_columns(pl.col(metric_columns).fill_nan(None)).select(
        [pl.col(c).cast(t) for c, t in FUNDAMENTAL_SNAPSHOT_COLUMNS.items()]
    )
    return FundamentalsSnapshot(frame=frame, unknown_metric_rows=unknown.height, unknown_metrics=unknown_metrics)
