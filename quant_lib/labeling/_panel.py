"""A flat (ticker, date)-sorted price panel addressed by integer keys.

Each row gets ``key = code << 32 | (days + 2**31)`` (``code`` the ticker's index in the sorted
list of tickers, ``days`` the date as days since 1970), so sorting, duplicate detection and
locating a (ticker, date) - or the last bar on or before a date - are numpy sorts and
``searchsorted`` calls on one int64 array instead of joins on strings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

_DAY_OFFSET = np.int64(2**31)
_SHOWN_ROWS = 5


def require_columns(frame: pl.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; has {frame.columns}")


def bad_rows_error(frame: pl.DataFrame, mask: np.ndarray | pl.Series, problem: str) -> ValueError | None:
    """A ValueError naming the rows of ``frame`` where ``mask`` holds (None when there are none)."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    bad = frame.with_row_index("row").filter(pl.Series(mask))
    shown = bad.head(_SHOWN_ROWS).to_dicts()
    return ValueError(f"{bad.height} row(s) {problem}; first {len(shown)}: {shown}")


def raise_if(error: ValueError | None) -> None:
    if error is not None:
        raise error


def day_numbers(dates: pl.Series) -> np.ndarray:
    return dates.cast(pl.Date).cast(pl.Int32).to_numpy().astype(np.int64)


@dataclass(frozen=True)
class Panel:
    """``frame`` (sorted by ticker, date), its ascending ``key`` and per-row ``code``, each
    ticker's last row ``last_row[code]`` and the ticker ``categories`` (sorted)."""

    frame: pl.DataFrame
    key: np.ndarray
    code: np.ndarray
    last_row: np.ndarray
    categories: pl.Enum

    def keys_of(self, tickers: pl.Series, dates: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        """(key, code) of (ticker, date) pairs; code -1 for a ticker the panel does not have."""
        code = tickers.cast(self.categories, strict=False).to_physical().fill_null(-1).to_numpy().astype(np.int64)
        return (np.maximum(code, 0) << 32) | (day_numbers(dates) + _DAY_OFFSET), code

    def rows_of(self, key: np.ndarray, code: np.ndarray) -> np.ndarray:
        """Row of each exact key, -1 when absent."""
        row = np.minimum(np.searchsorted(self.key, key), max(len(self.key) - 1, 0))
        found = (code >= 0) & (len(self.key) > 0) & (self.key[row] == key) if len(self.key) else np.zeros(len(key), bool)
        return np.where(found, row, -1)


def build_panel(prices: pl.DataFrame, value_columns: Sequence[str]) -> Panel:
    """The sorted panel of ``date, ticker, *value_columns`` (floats); duplicate (date, ticker)
    rows are an error that names them."""
    columns = ["date", "ticker", *value_columns]
    require_columns(prices, columns, "prices")
    frame = prices.select(pl.col("date").cast(pl.Date), pl.col("ticker").cast(pl.String), *[pl.col(c).cast(pl.Float64) for c in value_columns])
    categories = pl.Enum(frame["ticker"].unique().sort().drop_nulls())
    code = frame["ticker"].cast(categories).to_physical().to_numpy().astype(np.int64)
    key = (code << 32) | (day_numbers(frame["date"]) + _DAY_OFFSET)
    order = np.argsort(key, kind="stable")
    key = key[order]
    repeated = np.zeros(len(key), dtype=bool)
    repeated[1:] = key[1:] == key[:-1]
    if repeated.any():
        duplicated = np.isin(np.arange(len(key)), order[repeated | np.r_[repeated[1:], False]])
        raise_if(bad_rows_error(frame, duplicated, "of prices repeat a (date, ticker)"))
    code = code[order]
    last_row = np.full(len(categories.categories), -1, dtype=np.int64)
    ends = np.flatnonzero(np.r_[code[1:] != code[:-1], True]) if len(code) else np.zeros(0, dtype=np.int64)
    last_row[code[ends]] = ends
    return Panel(frame[order], key, code, last_row, categories)
