"""Trading-day calendars: exchange sessions from `exchange-calendars`, plus 24/7 and 24/5.

A calendar is named by an exchange-calendars code (default `XNYS`, the New York Stock Exchange:
no sessions on NYSE holidays such as 2024-07-04 or 2024-12-25; half days such as 2024-11-29 are
ordinary sessions that close at 13:00), by `24/7` (every calendar day, crypto) or by `24/5`
(every weekday, FX; holidays included). `exchange-calendars` was chosen over
`pandas-market-calendars` because it is the maintained pure library of the two (no network, no
pandas-market-calendars wrapper layer), exposes sessions, opens, closes and early closes as arrays
and supports 50+ exchanges under ISO MIC codes.

Every function takes an optional `calendar`; without it the process default applies
(`set_default_calendar`, which the platform calls with the `MARKET_CALENDAR` setting; `XNYS`
until then). Sessions are computed once per calendar for `SESSION_RANGE` and cached, so every
function is a `numpy.searchsorted` over a sorted `datetime64[D]` array. Functions accept one
`datetime.date` or a vector (`numpy.ndarray` of `datetime64[D]`, a `polars.Series` of dtype Date,
or a list of dates) and return the same kind they were given.

Asset classes trade on their own calendars (`calendar_for_asset_class`): equities and ETFs on
the market calendar, crypto on `24/7`, FX on `24/5`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date
from typing import TypeVar

import numpy as np
import polars as pl

DateLike = TypeVar("DateLike", date, np.ndarray, pl.Series, list)

DEFAULT_CALENDAR = "XNYS"
ALWAYS_OPEN = "24/7"
WEEKDAYS = "24/5"
SESSION_RANGE = (date(2000, 1, 3), date(2040, 12, 31))
"""Sessions are known for these dates (inclusive); a date outside is an error that says so."""

ASSET_CLASS_CALENDARS: dict[str, str | None] = {"equity": None, "etf": None, "crypto": ALWAYS_OPEN, "fx": WEEKDAYS}
"""Asset class -> its calendar (None: the market calendar)."""

_default_calendar = [DEFAULT_CALENDAR]


def set_default_calendar(name: str) -> None:
    """Make `name` the calendar the functions use when none is given (validated, sessions cached)."""
    sessions(name)
    _default_calendar[0] = name


def default_calendar() -> str:
    """The calendar used when none is given."""
    return _default_calendar[0]


def calendar_for_asset_class(asset_class: str, market_calendar: str | None = None) -> str:
    """The calendar an asset class trades on (equity/etf: the market calendar)."""
    if asset_class not in ASSET_CLASS_CALENDARS:
        raise ValueError(f"unknown asset_class {asset_class!r}: expected one of {sorted(ASSET_CLASS_CALENDARS)}")
    return ASSET_CLASS_CALENDARS[asset_class] or market_calendar or default_calendar()


_registered_tables: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def register_session_table(name: str, days: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> None:
    """Use these sessions of `name` (e.g. read back from a cache file) instead of computing them
    with exchange-calendars, which imports pandas and takes ~1 s per calendar."""
    days = np.asarray(days, dtype="datetime64[D]")
    if not (len(days) == len(opens) == len(closes)) or not (np.diff(days) > np.timedelta64(0, "D")).all():
        raise ValueError(f"session table of {name!r} must be sorted, unique and of equal lengths")
    _registered_tables[name] = (days, np.asarray(opens, "datetime64[ns]"), np.asarray(closes, "datetime64[ns]"))
    _session_table.cache_clear()


def session_table(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sessions as datetime64[D], opens and closes as UTC datetime64[ns]) over SESSION_RANGE."""
    return _session_table(name)


@functools.lru_cache(maxsize=8)
def _session_table(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if name in _registered_tables:
        return _registered_tables[name]
    first, last = (np.datetime64(d, "D") for d in SESSION_RANGE)
    if name in (ALWAYS_OPEN, WEEKDAYS):
        days = np.arange(first, last + 1)
        if name == WEEKDAYS:
            days = days[np.is_busday(days)]
        opens = days.astype("datetime64[ns]")
        return days, opens, opens + np.timedelta64(1, "D")
    import exchange_calendars

    try:
        cal = exchange_calendars.get_calendar(name, start=SESSION_RANGE[0].isoformat(), end=SESSION_RANGE[1].isoformat())
    except exchange_calendars.errors.InvalidCalendarName as exc:
        raise ValueError(
            f"unknown market calendar {name!r}: use an exchange-calendars code such as XNYS, XLON, XTKS, "
            f"or {ALWAYS_OPEN!r} / {WEEKDAYS!r}"
        ) from exc
    days = cal.sessions.values.astype("datetime64[D]")
    opens = cal.opens.values.astype("datetime64[ns]")
    closes = cal.closes.values.astype("datetime64[ns]")
    return days, opens, closes


def sessions(calendar: str | None = None) -> np.ndarray:
    """All sessions of the calendar within SESSION_RANGE, sorted `datetime64[D]` (read-only)."""
    days = _session_table(calendar or default_calendar())[0]
    days.flags.writeable = False
    return days


def session_open_close(days: DateLike, calendar: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """UTC open and close (`datetime64[ns]`) of each session in `days` (a non-session is an error).

    XNYS: 09:30-16:00 New York time, 13:00 on half days; 24/7 and 24/5: 00:00-24:00 UTC."""
    name = calendar or default_calendar()
    table_days, opens, closes = _session_table(name)
    values = _to_datetime64(days)
    idx = _index(values, table_days, "left", name)
    bad = table_days[np.minimum(idx, len(table_days) - 1)] != values
    if bad.any():
        raise ValueError(f"{values[bad][:3].tolist()} are not {name} sessions")
    return opens[idx], closes[idx]


def _index(values: np.ndarray, table: np.ndarray, side: str, name: str) -> np.ndarray:
    first, last = SESSION_RANGE
    out = (values < np.datetime64(first, "D")) | (values > np.datetime64(last, "D"))
    if out.any():
        raise ValueError(
            f"dates {values[out][:3].tolist()} are outside the {name} sessions known ({first}..{last})"
        )
    return np.searchsorted(table, values, side=side)


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


def trading_days_array(start: date, end: date, calendar: str | None = None) -> np.ndarray:
    """Sessions in [start, end] (both inclusive) as a `datetime64[D]` array; empty if end < start."""
    _check_range(start, end)
    if end < start:
        return np.array([], dtype="datetime64[D]")
    name = calendar or default_calendar()
    table = sessions(name)
    lo = _index(np.array([start], dtype="datetime64[D]"), table, "left", name)[0]
    hi = _index(np.array([end], dtype="datetime64[D]"), table, "right", name)[0]
    return table[lo:hi].copy()


def trading_days(start: date, end: date, calendar: str | None = None) -> list[date]:
    """Sessions in [start, end] (both inclusive), as a list of `datetime.date`."""
    return trading_days_array(start, end, calendar).tolist()


def trading_days_series(start: date, end: date, name: str = "date", calendar: str | None = None) -> pl.Series:
    """Sessions in [start, end] (both inclusive), as a polars Series of dtype Date."""
    return pl.Series(name, trading_days_array(start, end, calendar), dtype=pl.Date)


def count_trading_days(start: date, end: date, calendar: str | None = None) -> int:
    """Number of sessions in [start, end] (both inclusive); 0 if end < start."""
    return len(trading_days_array(start, end, calendar))


def is_trading_day(d: DateLike, calendar: str | None = None) -> bool | np.ndarray | pl.Series | list:
    """True where the date is a session."""
    name = calendar or default_calendar()
    values, table = _to_datetime64(d), sessions(name)
    idx = np.minimum(_index(values, table, "left", name), len(table) - 1)
    flags = table[idx] == values
    if isinstance(d, pl.Series):
        return pl.Series(d.name, flags, dtype=pl.Boolean)
    if isinstance(d, np.ndarray):
        return flags
    if isinstance(d, date):
        return bool(flags[0])
    return flags.tolist()


def _shift(d: DateLike, side: str, offset: int, calendar: str | None) -> DateLike:
    name = calendar or default_calendar()
    table = sessions(name)
    idx = _index(_to_datetime64(d), table, side, name) + offset
    if (idx < 0).any() or (idx >= len(table)).any():
        raise ValueError(f"the shifted date falls outside the {name} sessions known ({SESSION_RANGE[0]}..{SESSION_RANGE[1]})")
    return _like(d, table[idx])


def latest_trading_day(on_or_before: DateLike, calendar: str | None = None) -> DateLike:
    """The latest session on or before the date (a Saturday or a holiday maps to the session before)."""
    return _shift(on_or_before, "right", -1, calendar)


def previous_trading_day(d: DateLike, calendar: str | None = None) -> DateLike:
    """The latest session strictly before the date (Monday -> Friday; the day after a holiday -> before it)."""
    return _shift(d, "left", -1, calendar)


def next_trading_day(d: DateLike, calendar: str | None = None) -> DateLike:
    """The earliest session strictly after the date (Friday -> Monday, 2024-07-03 -> 2024-07-05)."""
    return _shift(d, "right", 0, calendar)


def shift_trading_days(d: DateLike, n: int, calendar: str | None = None) -> DateLike:
    """Move `n` sessions from the date (negative `n` moves back).

    A non-session date is first rolled back to `latest_trading_day(d)`, so
    `shift_trading_days(d, 0) == latest_trading_day(d)` and `shift_trading_days(saturday, 1)` is
    the following session.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
        raise ValueError(f"n must be an integer number of trading days, got {n!r}")
    return _shift(d, "right", int(n) - 1, calendar)


def holidays(start: date, end: date, calendar: str | None = None) -> np.ndarray:
    """Weekdays in [start, end] that are not sessions (exchange holidays), `datetime64[D]`."""
    _check_range(start, end)
    days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
    weekdays = days[np.is_busday(days)]
    return np.setdiff1d(weekdays, trading_days_array(start, end, calendar), assume_unique=True)


def universe_calendars(universe: pl.DataFrame, market_calendar: str | None = None) -> pl.DataFrame:
    """ticker, asset_class, calendar: the calendar each ticker of a universe trades on."""
    mapping = {k: v or market_calendar or default_calendar() for k, v in ASSET_CLASS_CALENDARS.items()}
    return universe.select(
        "ticker", "asset_class",
        calendar=pl.col("asset_class").replace_strict(mapping, default=market_calendar or default_calendar()),
    )
