"""Partitions: trading days (sessions of MARKET_CALENDAR) for the daily graph, weeks for research.

The daily partitions are a `TimeWindowPartitionsDefinition` on a weekday cron with the
calendar's weekday holidays as `exclusions` (dagster >= 1.10): holidays are not partition keys
(2024-07-04, 2024-12-25), half days are. A time-window definition (rather than static or dynamic
partitions) keeps what the graph relies on: single-run backfills over a key range
(`BackfillPolicy.single_run`, one run reads and writes a date range), `TimeWindowPartitionMapping`
lookbacks counted in partitions (= sessions) and `context.partition_time_window`. With
`MARKET_CALENDAR=24/7` the cron is every day and nothing is excluded; `24/5` is every weekday.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    TimeWindowPartitionMapping,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from quant_lib.data.calendar import ALWAYS_OPEN, SESSION_RANGE, holidays
from quant_resources.settings import get_settings

_settings = get_settings()

TRADING_DAY_CRON_DAYS = "*" if _settings.market_calendar == ALWAYS_OPEN else "1-5"
"""Cron day-of-week field of the trading days: every day for 24/7, else Monday to Friday."""


def _holiday_exclusions() -> list[datetime]:
    if _settings.market_calendar == ALWAYS_OPEN:
        return []
    days = holidays(max(_settings.quant_start_date, SESSION_RANGE[0]), SESSION_RANGE[1], _settings.market_calendar)
    return [datetime.fromisoformat(str(d)) for d in days]


trading_day_partitions = TimeWindowPartitionsDefinition(
    start=_settings.quant_start_date.isoformat(),
    cron_schedule=f"0 0 * * {TRADING_DAY_CRON_DAYS}",
    fmt="%Y-%m-%d",
    timezone=_settings.market_timezone,
    end_offset=1,
    exclusions=_holiday_exclusions() or None,
)
"""One partition per session of MARKET_CALENDAR from QUANT_START_DATE; today's partition exists
from midnight (end_offset=1) so the daily run after the close can materialize it."""

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


def history_input(asset_key: str, days: int) -> AssetIn:
    """An input reading `days` trading-day partitions of `asset_key` before the run's range as well."""
    return AssetIn(
        asset_key,
        partition_mapping=TimeWindowPartitionMapping(start_offset=-days, allow_nonexistent_upstream_partitions=True),
    )


def in_partition(frame: pl.DataFrame, context: AssetExecutionContext) -> pl.DataFrame:
    """The rows of `frame` dated inside the run's partition range."""
    first, last = partition_dates(context)
    return frame.filter(pl.col("date").is_between(first, last))


def daily_asset(group_name: str, **extra) -> dict:
    """Common `@asset` arguments of a daily warehouse asset: trading-day partitions, single-run
    backfills, the `duckdb_warehouse` pool and the warehouse I/O manager."""
    from quant_resources.warehouse import WAREHOUSE_POOL

    return dict(
        partitions_def=trading_day_partitions,
        backfill_policy=single_run,
        pool=WAREHOUSE_POOL,
        io_manager_key="warehouse_io_manager",
        group_name=group_name,
        kinds={"duckdb", "polars"},
        **extra,
    )
