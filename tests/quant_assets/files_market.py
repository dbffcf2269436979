"""A small `files`-provider market for tests: one CSV per ticker, steady prices, with chosen
cells replaced by raw text (bad numbers, missing markers)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import polars as pl

NUMBER_COLUMNS = ("open", "high", "low", "close", "adj_close", "volume")


def weekdays(first: date, last: date) -> list[date]:
    days = pl.date_range(first, last, eager=True)
    return days.filter(days.dt.weekday() <= 5).to_list()


def write_price_files(
    folder: Path, tickers: Sequence[str], days: Sequence[date], cells: dict[str, tuple[str, date, str]] | None = None
) -> None:
    """Write `<ticker>.csv` for each ticker over `days`; `cells[ticker] = (column, day, text)`
    puts `text` in that cell."""
    for k, ticker in enumerate(tickers):
        close = [40.0 + k + 0.05 * i for i in range(len(days))]
        frame = pl.DataFrame({
            "date": [d.isoformat() for d in days], "open": close, "high": [c + 1 for c in close],
            "low": [c - 1 for c in close], "close": close, "adj_close": [c * 0.98 for c in close],
            "volume": [1e6] * len(days),
        }).cast({c: pl.String for c in NUMBER_COLUMNS})
        if cells and ticker in cells:
            column, day, text = cells[ticker]
            frame = frame.with_columns(
                pl.when(pl.col("date") == day.isoformat()).then(pl.lit(text)).otherwise(pl.col(column)).alias(column)
            )
        frame.write_csv(folder / f"{ticker}.csv")
