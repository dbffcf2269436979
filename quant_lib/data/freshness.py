"""Data freshness measured in trading time (seed 000 §4.6.7, §7.3.4)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from quant_lib.data.calendar import count_trading_days, is_trading_day


def trading_hours_lag(
    last_date: date | None,
    now: datetime,
    close_hour: int = 16,
    timezone: str = "America/New_York",
    calendar: str | None = None,
) -> float:
    """Hours of trading time between the close of `last_date` and `now`: the hours of that
    interval that fall on sessions of `calendar` (default: the market calendar), in the exchange
    time zone.

    Weekend and holiday hours do not count: Friday's data read on Sunday evening is 8 hours old
    (the rest of Friday), and read on Monday at 18:00 it is 26 hours old; Wednesday 2024-07-03's
    read on Friday 07-05 at 18:00 is 26 hours old (07-04 is an NYSE holiday). `now` must be
    timezone-aware.
    No data at all (`last_date` None) is infinitely stale.
    """
    if last_date is None:
        return float("inf")
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware")
    tz = ZoneInfo(timezone)
    start = datetime.combine(last_date, time(close_hour), tzinfo=tz)
    end = now.astimezone(tz)
    if end <= start:
        return 0.0

    def weekday_hours_within_day(lo: datetime, hi: datetime) -> float:
        return (hi - lo).total_seconds() / 3600 if is_trading_day(lo.date(), calendar) else 0.0

    first_midnight = datetime.combine(start.date() + timedelta(days=1), time(0), tzinfo=tz)
    if end <= first_midnight:
        return weekday_hours_within_day(start, end)
    last_midnight = datetime.combine(end.date(), time(0), tzinfo=tz)
    whole_days = count_trading_days(first_midnight.date(), last_midnight.date() - timedelta(days=1), calendar)
    return (
        weekday_hours_within_day(start, first_midnight)
        + 24.0 * whole_days
        + weekday_hours_within_day(last_midnight, end)
    )


def is_fresh(last_date: date | None, now: datetime, threshold_hours: float, **kwargs) -> tuple[bool, float]:
    """(fresh, lag_hours) with lag measured by `trading_hours_lag`."""
    lag = trading_hours_lag(last_date, now, **kwargs)
    return lag <= threshold_hours, lag
