"""Trading-day calendar: weekdays (Monday to Friday).

There is no exchange-holiday calendar: every weekday is a trading day, so New Year's Day or
Thanksgiving count as trading days. This is the calendar of the simulated market
(`quant_lib.data.simulate`) and of the daily partitions; real providers simply have no rows on
holidays.

Every function is built on numpy's business-day routines (`np.is_busday`, `np.busday_offset`,
`np.busday_count`, default weekmask Mon-Fri) and accepts either one `datetime.date` or a vector
(`numpy.ndarray` of `datetime64[D]`, a `polars.Series` of dtype Date, or a list of dates), returning
the same kind it was given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TypeVar

import numpy as np
import polars as pl

DateLike = TypeVar("DateLike", date, np.ndarray, pl.Series, list)


def _to_datetime64(value: object) -> np.ndarray:
    if isinstance(value, pl.Series):
        if value.dtype != pl.Date:
            raise ValueError(f"expected a polars Series of dtype Date, got {value.dtype} ({value.name!r})")
        if value.null_count():
            raise ValueError(f"date series {value.name!r} has {value.null_count()} null values")
        return value.to_numpy().astype("datetime64[D]")
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.datetime64):
            raise ValueError(f"expected a datetime64 array, got dtype {value.dtype}")
        return value.astype("datetime64[D]")
    if isinstance(value, date):
        return np.array([value], dtype="datetime64[D]")
    if isinstance(value, Sequence) and not isinstance(value, str):
        bad = [v for v in value if not isinstance(v, date)]
        if bad:
            raise ValueError(f"expected datetime.date values, got {bad[:3]!r}")
        return np.array(value, dtype="datetime64[D]")
    raise ValueError(f"expected a date, a list of dates, a datetime64 array or a Date series; got {type(value)!r}")


def _like(original: object, days: np.ndarray) -> object:
    if isinstance(original, pl.Series):
        return pl.Series(original.name, days, dtype=pl.Date)
    if isinstance(original, np.ndarray):
        return days
    if isinstance(original, date):
        return days[0].item()
    return days.tolist()


def _check_range(start: date, end: date) -> None:
    if not isinstance(start, date) or not isinstance(end, date):
        raise ValueError(f"start and end must be datetime.date, got {type(start)!r} and {type(end)!r}")


def trading_days_array(start: date, end: date) -> np.ndarray:
    """Weekdays in [start, end] (both inclusive) as a `datetime64[D]` array; empty if end < start."""
    _check_range(start, end)
    if end < start:
        return np.array([], dtype="datetime64[D]")
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1, dtype="datetime64[D]")
    return days[np.is_busday(days)]


def trading_days(start: date, end: date) -> list[date]:
    """Weekdays in [start, end] (both inclusive), as a list of `datetime.date`."""
    return trading_days_array(start, end).tolist()


def trading_days_series(start: date, end: date, name: str = "date") -> pl.Series:
    """Weekdays in [start, end] (both inclusive), as a polars Series of dtype Date."""
    return pl.Series(name, trading_days_array(start, end), dtype=pl.Date)


def count_trading_days(start: date, end: date) -> int:
    """Number of weekdays in [start, end] (both inclusive); 0 if end < start."""
    _check_range(start, end)
    if end < start:
        return 0
    return int(np.busday_count(np.datetime64(start, "D"), np.datetime64(end, "D") + 1))


def is_trading_day(d: DateLike) -> bool | np.ndarray | pl.Series | list:
    """True where the date is a weekday."""
    flags = np.is_busday(_to_datetime64(d))
    if isinstance(d, pl.Series):
        return pl.Series(d.name, flags, dtype=pl.Boolean)
    if isinstance(d, np.ndarray):
        return flags
    if isinstance(d, date):
        return bool(flags[0])
    return flags.tolist()


def latest_trading_day(on_or_before: DateLike) -> DateLike:
    """The latest weekday on or before the date (a Saturday or Sunday maps to the Friday before)."""
    days = np.busday_offset(_to_datetime64(on_or_before), 0, roll="backward")
    return _like(on_or_before, days)


def previous_trading_day(d: DateLike) -> DateLike:
    """The latest weekday strictly before the date (Monday -> Friday, Sunday -> Friday)."""
    days = np.busday_offset(_to_datetime64(d), -1, roll="forward")
    return _like(d, days)


def next_trading_day(d: DateLike) -> DateLike:
    """The earliest weekday strictly after the date (Friday -> Monday, Saturday -> Monday)."""
    days = np.busday_offset(_to_datetime64(d), 1, roll="backward")
    return _like(d, days)


def shift_trading_days(d: DateLike, n: int) -> DateLike:
    """Move `n` trading days from the date (negative `n` moves back).

    A non-trading date is first rolled back to `latest_trading_day(d)`, so
    `shift_trading_days(d, 0) == latest_trading_day(d)` and `shift_trading_days(saturday, 1)` is
    the following Monday.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise ValueError(f"n must be an integer number of trading days, got {n!r}")
    days = np.busday_offset(_to_datetime64(d), int(n), roll="backward")
    return _like(d, days)
