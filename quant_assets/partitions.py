"""Partitions: trading days (weekdays) for the daily graph, weeks for research and training."""

from __future__ import annotations

from datetime import date, timedelta

from dagster import (
    AssetExecutionContext,
    BackfillPolicy,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from quant_resources.settings import get_settings

_settings = get_settings()

trading_day_partitions = TimeWindowPartitionsDefinition(
    start=_settings.quant_start_date.isoformat(),
    cron_schedule="0 0 * * 1-5",
    fmt="%Y-%m-%d",
    timezone=_settings.market_timezone,
    end_offset=1,
)
"""One partition per weekday from QUANT_START_DATE; today's partition exists from midnight
(end_offset=1) so the daily run after the close can materialize it."""

weekly_partitions = WeeklyPartitionsDefinition(
    start_date=_settings.quant_start_date.isoformat(),
    day_offset=6,
    timezone=_settings.market_timezone,
    end_offset=1,
)
"""Weeks starting Saturday, so the week's partition is complete after Friday's close."""

single_run = BackfillPolicy.single_run()
"""A backfill of any number of partitions runs as one run over the whole range."""


def partition_dates(context: AssetExecutionContext) -> tuple[date, date]:
    """First and last calendar day covered by the run's partition range (inclusive)."""
    window = context.partition_time_window
    return window.start.date(), window.end.date() - timedelta(days=1)
