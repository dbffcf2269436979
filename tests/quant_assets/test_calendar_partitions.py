"""Daily partitions, schedules, freshness and warehouse reads follow the exchange calendar (XNYS)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import polars as pl
from dagster import (
    AssetKey,
    PartitionKeyRange,
    SkipReason,
    TimeWindowPartitionMapping,
    build_input_context,
    build_schedule_context,
)

from quant_assets.partitions import trading_day_partitions
from quant_assets.schedules import daily_after_close_schedule
from quant_lib.data.freshness import trading_hours_lag
from quant_resources.warehouse import _without_holiday_rows

NY = ZoneInfo("America/New_York")


def test_holidays_are_not_partition_keys_and_half_days_are():
    keys = trading_day_partitions.get_partition_keys_in_range(PartitionKeyRange("2024-07-01", "2024-12-31"))
    assert "2024-07-04" not in keys and "2024-12-25" not in keys and "2024-11-28" not in keys
    assert {"2024-07-03", "2024-07-05", "2024-11-29", "2024-12-24"} <= set(keys)
    assert len(keys) == 128  # XNYS sessions in 2024H2


def test_lookbacks_count_sessions_across_a_holiday():
    mapping = TimeWindowPartitionMapping(start_offset=-3)
    subset = trading_day_partitions.empty_subset().with_partition_keys(["2024-07-08"])
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, trading_day_partitions, trading_day_partitions, current_time=datetime(2024, 8, 1)
    ).partitions_subset
    assert sorted(upstream.get_partition_keys()) == ["2024-07-02", "2024-07-03", "2024-07-05", "2024-07-08"]


def test_schedule_skips_exchange_holidays():
    holiday = daily_after_close_schedule(build_schedule_context(scheduled_execution_time=datetime(2024, 7, 4, 18, 30, tzinfo=NY)))
    assert isinstance(holiday, SkipReason) and "not a XNYS session" in holiday.skip_message
    half_day = daily_after_close_schedule(build_schedule_context(scheduled_execution_time=datetime(2024, 11, 29, 18, 30, tzinfo=NY)))
    assert half_day.partition_key == "2024-11-29"


def test_freshness_does_not_count_holiday_hours():
    assert trading_hours_lag(date(2024, 7, 3), datetime(2024, 7, 5, 18, tzinfo=NY)) == 26.0
    assert trading_hours_lag(date(2024, 7, 3), datetime(2024, 7, 4, 23, tzinfo=NY)) == 8.0


def test_rows_dated_on_holidays_in_an_old_warehouse_are_ignored_on_read():
    frame = pl.DataFrame({"date": [date(2024, 7, 3), date(2024, 7, 4), date(2024, 7, 5)], "ticker": ["A", "A", "A"]})
    context = build_input_context(
        asset_key=AssetKey("prices"), asset_partitions_def=trading_day_partitions, partition_key="2024-07-05"
    )
    assert _without_holiday_rows(frame, context, "date")["date"].to_list() == [date(2024, 7, 3), date(2024, 7, 5)]
    unpartitioned = build_input_context(asset_key=AssetKey("prices"))
    assert _without_holiday_rows(frame, unpartitioned, "date").height == 3
