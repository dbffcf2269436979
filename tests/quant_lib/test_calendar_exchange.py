"""Exchange calendars: XNYS holidays are not sessions, half days are, crypto trades every day."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from quant_lib.data.calendar import (
    ALWAYS_OPEN,
    calendar_for_asset_class,
    count_trading_days,
    default_calendar,
    holidays,
    is_trading_day,
    latest_trading_day,
    next_trading_day,
    previous_trading_day,
    session_open_close,
    shift_trading_days,
    trading_days,
)


def test_default_is_xnys_without_its_holidays() -> None:
    assert default_calendar() == "XNYS"
    days = trading_days(date(2024, 7, 1), date(2024, 7, 9))
    assert date(2024, 7, 4) not in days and len(days) == 6
    assert not is_trading_day(date(2024, 12, 25)) and not is_trading_day(date(2024, 1, 1))
    assert count_trading_days(date(2024, 1, 1), date(2024, 12, 31)) == 252
    assert holidays(date(2024, 1, 1), date(2024, 12, 31)).astype(str).tolist() == [
        "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27",
        "2024-06-19", "2024-07-04", "2024-09-02", "2024-11-28", "2024-12-25",
    ]


def test_holidays_are_skipped_by_the_shifts() -> None:
    assert next_trading_day(date(2024, 7, 3)) == date(2024, 7, 5)
    assert previous_trading_day(date(2024, 7, 5)) == date(2024, 7, 3)
    assert latest_trading_day(date(2024, 12, 25)) == date(2024, 12, 24)
    assert shift_trading_days(date(2024, 7, 4), 0) == date(2024, 7, 3)
    assert shift_trading_days(date(2024, 7, 4), 1) == date(2024, 7, 5)
    assert shift_trading_days(date(2024, 7, 8), -3) == date(2024, 7, 2)


def test_half_days_are_sessions_that_close_early() -> None:
    assert is_trading_day(date(2024, 11, 29)) and is_trading_day(date(2024, 12, 24))
    opens, closes = session_open_close([date(2024, 11, 29), date(2024, 11, 27), date(2024, 7, 1)])
    hours = (closes - opens) / np.timedelta64(1, "m") / 60
    assert hours.tolist() == [3.5, 6.5, 6.5]
    assert str(opens[2]) == "2024-07-01T13:30:00.000000000"  # 09:30 EDT
    with pytest.raises(ValueError, match="not XNYS sessions"):
        session_open_close([date(2024, 7, 4)])


def test_crypto_trades_every_day_and_fx_every_weekday() -> None:
    assert calendar_for_asset_class("crypto") == ALWAYS_OPEN
    assert calendar_for_asset_class("equity") == "XNYS" and calendar_for_asset_class("etf", "XLON") == "XLON"
    assert len(trading_days(date(2024, 7, 1), date(2024, 7, 7), calendar=calendar_for_asset_class("crypto"))) == 7
    assert len(trading_days(date(2024, 7, 1), date(2024, 7, 7), calendar=calendar_for_asset_class("fx"))) == 5
    with pytest.raises(ValueError, match="asset_class"):
        calendar_for_asset_class("bond")


def test_unknown_calendars_and_dates_out_of_range_fail_clearly() -> None:
    with pytest.raises(ValueError, match="unknown market calendar 'NOPE'"):
        trading_days(date(2024, 1, 1), date(2024, 1, 5), calendar="NOPE")
    with pytest.raises(ValueError, match="outside the XNYS sessions known"):
        latest_trading_day(date(1995, 1, 3))


def test_universe_calendars_follow_the_asset_class() -> None:
    import polars as pl

    from quant_lib.data.calendar import universe_calendars

    universe = pl.DataFrame({"ticker": ["SPY", "AAA", "BTC-USD", "EURUSD=X"], "asset_class": ["etf", "equity", "crypto", "fx"]})
    assert universe_calendars(universe)["calendar"].to_list() == ["XNYS", "XNYS", "24/7", "24/5"]

