"""The daily schedule and the freshness sensor."""

from __future__ import annotations

from datetime import date, datetime, timezone
from unittest import mock
from zoneinfo import ZoneInfo

from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from quant_assets import sensors
from quant_assets.definitions import defs
from quant_assets.schedules import daily_after_close_schedule
from quant_lib.data.freshness import trading_hours_lag

NY = ZoneInfo("America/New_York")


def test_definitions_load_with_jobs_schedules_and_sensors():
    assert defs.resolve_job_def("daily_job") is not None
    assert {s.name for s in defs.schedules} == {"daily_after_close_schedule", "weekly_research_schedule"}
    assert "market_data_freshness_sensor" in {s.name for s in defs.sensors}
    graph = defs.resolve_asset_graph()
    assert {"universe", "prices", "fundamentals"} <= {k.to_user_string() for k in graph.get_all_asset_keys()}


def test_schedule_requests_the_days_partition_after_the_close():
    context = build_schedule_context(scheduled_execution_time=datetime(2024, 6, 3, 18, 30, tzinfo=NY))
    request = daily_after_close_schedule(context)
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2024-06-03"
    assert daily_after_close_schedule.cron_schedule == "30 18 * * 1-5"


def test_trading_hours_lag_ignores_weekends():
    friday = date(2024, 6, 7)
    assert trading_hours_lag(friday, datetime(2024, 6, 9, 20, tzinfo=NY)) == 8.0
    assert trading_hours_lag(friday, datetime(2024, 6, 10, 18, tzinfo=NY)) == 26.0
    assert trading_hours_lag(friday, datetime(2024, 6, 7, 12, tzinfo=NY)) == 0.0
    assert trading_hours_lag(None, datetime(2024, 6, 7, 12, tzinfo=NY)) == float("inf")


def _record_prices(instance: DagsterInstance, partition: str) -> None:
    instance.report_runless_asset_event(AssetMaterialization(asset_key=AssetKey("prices"), partition=partition))


def _evaluate_at(instance: DagsterInstance, now: datetime):
    context = build_sensor_context(instance=instance)
    with mock.patch.object(sensors, "datetime", wraps=datetime) as clock:
        clock.now.return_value = now.astimezone(timezone.utc)
        return sensors.market_data_freshness_sensor(context)


def test_freshness_sensor_skips_when_fresh_and_requests_catch_up_when_stale(instance):
    _record_prices(instance, "2024-06-06")
    fresh = _evaluate_at(instance, datetime(2024, 6, 7, 9, tzinfo=NY))
    assert isinstance(fresh, SkipReason) and "fresh" in fresh.skip_message
    stale = _evaluate_at(instance, datetime(2024, 6, 10, 18, tzinfo=NY))
    assert isinstance(stale, RunRequest)
    assert stale.partition_key == "2024-06-10"
    assert float(stale.tags["quant/lag_hours"]) > 24


def test_freshness_sensor_with_no_prices_at_all_requests_a_run(instance):
    result = _evaluate_at(instance, datetime(2024, 6, 10, 18, tzinfo=NY))
    assert isinstance(result, RunRequest)
