"""Schedules: the daily job on sessions of MARKET_CALENDAR after the close."""

from __future__ import annotations

from datetime import timedelta

from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from quant_assets.jobs import daily_job, weekly_research_job
from quant_assets.partitions import TRADING_DAY_CRON_DAYS
from quant_lib.data.calendar import is_trading_day
from quant_resources.settings import get_settings

_settings = get_settings()


@schedule(
    job=daily_job,
    cron_schedule=f"30 {_settings.market_close_hour + 2} * * {TRADING_DAY_CRON_DAYS}",
    execution_timezone=_settings.market_timezone,
    description="Materialize today's trading-day partition 2.5 hours after the close.",
)
def daily_after_close_schedule(context: ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date()
    if day < _settings.quant_start_date:
        return SkipReason(f"{day} is before QUANT_START_DATE {_settings.quant_start_date}")
    if not is_trading_day(day):
        return SkipReason(f"{day} is not a {_settings.market_calendar} session (exchange holiday)")
    return RunRequest(run_key=f"daily-{day.isoformat()}", partition_key=day.isoformat())


@schedule(
    job=weekly_research_job,
    cron_schedule="0 6 * * 6",
    execution_timezone=_settings.market_timezone,
    description="Saturday 06:00: the weekly research partition of the week that closed on Friday.",
)
def weekly_research_schedule(context: ScheduleEvaluationContext):
    saturday = context.scheduled_execution_time.date()
    week_start = saturday - timedelta(days=7)
    if week_start < _settings.quant_start_date:
        return SkipReason(f"week {week_start} starts before QUANT_START_DATE")
    return RunRequest(run_key=f"weekly-{week_start.isoformat()}", partition_key=week_start.isoformat())
