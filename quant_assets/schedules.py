"""Schedules: the daily job on weekdays after the close."""

from __future__ import annotations

from dagster import RunRequest, ScheduleEvaluationContext, SkipReason, schedule

from quant_assets.jobs import daily_job
from quant_resources.settings import get_settings

_settings = get_settings()


@schedule(
    job=daily_job,
    cron_schedule=f"30 {_settings.market_close_hour + 2} * * 1-5",
    execution_timezone=_settings.market_timezone,
    description="Materialize today's trading-day partition 2.5 hours after the close.",
)
def daily_after_close_schedule(context: ScheduleEvaluationContext):
    day = context.scheduled_execution_time.date()
    if day < _settings.quant_start_date:
        return SkipReason(f"{day} is before QUANT_START_DATE {_settings.quant_start_date}")
    return RunRequest(run_key=f"daily-{day.isoformat()}", partition_key=day.isoformat())
