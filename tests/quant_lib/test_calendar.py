"""The weekday (24/5) trading calendar: the calendar functions' contract on the simplest calendar.

Exchange sessions (XNYS holidays, half days, 24/7) are tested in test_calendar_exchange.py."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant_lib.data.calendar import (
    WEEKDAYS,
    count_trading_days,
    default_calendar,
    is_trading_day,
    latest_trading_day,
    next_trading_day,
    previous_trading_day,
    shift_trading_days,
    trading_days,
    trading_days_array,
    trading_days_series,
    set_default_calendar,
)


@pytest.fixture(autouse=True)
def weekday_calendar():
    previous = default_calendar()
    set_default_calendar(WEEKDAYS)
    yield
    set_default_calendar(previous)

# 2024-01-05 is a Friday, 2024-01-06 a Saturday, 2024-01-07 a Sunday, 2024-01-08 a Monday.
FRIDAY, SATURDAY, SUNDAY, MONDAY = date(2024, 1, 5), date(2024, 1, 6), date(2024, 1, 7), date(2024, 1, 8)


def test_trading_days_are_the_weekdays_in_the_closed_range() -> None:
    assert trading_days(date(2024, 1, 1), date(2024, 1, 10)) == [
        date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5),
        date(2024, 1, 8), date(2024, 1, 9), date(2024, 1, 10),
    ]
    assert trading_days(SATURDAY, SUNDAY) == []
    assert trading_days(MONDAY, FRIDAY) == []
    assert trading_days(FRIDAY, FRIDAY) == [FRIDAY]


def test_a_year_of_trading_days_matches_a_day_by_day_count() -> None:
    start, end = date(2023, 1, 1), date(2024, 12, 31)
    expected = [start + timedelta(days=k) for k in range((end - start).days + 1)]
    expected = [d for d in expected if d.weekday() < 5]
    assert trading_days(start, end) == expected
    assert count_trading_days(start, end) == len(expected) == 522
    assert count_trading_days(end, start) == 0


def test_series_and_array_variants_agree_with_the_list() -> None:
    start, end = date(2020, 2, 20), date(2020, 3, 10)
    series = trading_days_series(start, end)
    assert series.dtype == pl.Date and series.name == "date"
    assert series.to_list() == trading_days(start, end)
    assert trading_days_array(start, end).dtype == np.dtype("datetime64[D]")
    assert trading_days_series(end, start).len() == 0


def test_previous_latest_and_next_trading_day() -> None:
    assert previous_trading_day(MONDAY) == FRIDAY
    assert previous_trading_day(SUNDAY) == FRIDAY
    assert previous_trading_day(SATURDAY) == FRIDAY
    assert previous_trading_day(date(2024, 1, 10)) == date(2024, 1, 9)
    assert latest_trading_day(SATURDAY) == FRIDAY
    assert latest_trading_day(SUNDAY) == FRIDAY
    assert latest_trading_day(MONDAY) == MONDAY
    assert next_trading_day(FRIDAY) == MONDAY
    assert next_trading_day(SATURDAY) == MONDAY
    assert next_trading_day(MONDAY) == date(2024, 1, 9)


def test_shift_trading_days() -> None:
    assert shift_trading_days(FRIDAY, 1) == MONDAY
    assert shift_trading_days(MONDAY, -1) == FRIDAY
    assert shift_trading_days(MONDAY, 5) == date(2024, 1, 15)
    assert shift_trading_days(MONDAY, 0) == MONDAY
    assert shift_trading_days(SATURDAY, 0) == FRIDAY
    assert shift_trading_days(SATURDAY, 1) == MONDAY
    assert shift_trading_days(SUNDAY, -1) == date(2024, 1, 4)
    assert shift_trading_days(date(2024, 1, 1), 260) == date(2024, 12, 30)


def test_functions_are_vectorized_over_series_arrays_and_lists() -> None:
    dates = [FRIDAY, SATURDAY, SUNDAY, MONDAY]
    series = pl.Series("d", dates, dtype=pl.Date)
    shifted = shift_trading_days(series, 1)
    assert isinstance(shifted, pl.Series) and shifted.name == "d" and shifted.dtype == pl.Date
    assert shifted.to_list() == [shift_trading_days(d, 1) for d in dates]
    assert previous_trading_day(series).to_list() == [previous_trading_day(d) for d in dates]
    assert latest_trading_day(dates) == [FRIDAY, FRIDAY, FRIDAY, MONDAY]
    array = np.array(dates, dtype="datetime64[D]")
    assert next_trading_day(array).tolist() == [MONDAY, MONDAY, MONDAY, date(2024, 1, 9)]
    assert is_trading_day(series).to_list() == [True, False, False, True]
    assert is_trading_day(SATURDAY) is False
    assert is_trading_day(array).tolist() == [True, False, False, True]


def test_bad_input_is_rejected_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="integer"):
        shift_trading_days(MONDAY, 1.5)
    with pytest.raises(ValueError, match="dtype Date"):
        latest_trading_day(pl.Series("x", ["2024-01-01"]))
    with pytest.raises(ValueError, match="null"):
        previous_trading_day(pl.Series("x", [MONDAY, None], dtype=pl.Date))
    with pytest.raises(ValueError, match="datetime.date"):
        trading_days("2024-01-01", MONDAY)
    with pytest.raises(ValueError, match="datetime.date"):
        latest_trading_day(["2024-01-01"])
