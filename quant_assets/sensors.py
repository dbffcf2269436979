"""Sensors: market-data freshness (alerts and requests a catch-up run when prices are stale)."""

from __future__ import annotations

from datetime import datetime, timezone

from dagster import AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SkipReason, sensor

from quant_assets.jobs import daily_job
from quant_lib.data.calendar import latest_trading_day
from quant_lib.data.freshness import trading_hours_lag
from quant_resources.settings import get_settings

_settings = get_settings()


def newest_price_partition(context: SensorEvaluationContext) -> str | None:
    partitions = context.instance.get_materialized_partitions(AssetKey("prices"))
    return max(partitions) if partitions else None


@sensor(
    job=daily_job,
    minimum_interval_seconds=1800,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Every 30 minutes: how old are the newest prices, in trading hours? Beyond "
        "DATA_FRESHNESS_THRESHOLD_HOURS it logs a STALE alert and requests the latest trading day."
    ),
)
def market_data_freshness_sensor(context: SensorEvaluationContext):
    now = datetime.now(timezone.utc)
    newest = newest_price_partition(context)
    last_date = datetime.strptime(newest, "%Y-%m-%d").date() if newest else None
    lag = trading_hours_lag(last_date, now, _settings.market_close_hour, _settings.market_timezone)
    threshold = _settings.data_freshness_threshold_hours
    if lag <= threshold:
        return SkipReason(f"[FRESHNESS] prices are fresh: newest {newest}, lag {lag:.1f} trading hours")
    target = latest_trading_day(now.date()).isoformat()
    context.log.warning(
        f"[FRESHNESS] prices are STALE: newest {newest}, lag {lag:.1f}h exceeds {threshold:.1f}h; requesting {target}"
    )
    return RunRequest(
        run_key=f"freshness-catch-up-{target}",
        partition_key=target,
        tags={"quant/trigger": "freshness", "quant/lag_hours": f"{lag:.1f}"},
    )
