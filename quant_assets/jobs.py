"""Jobs: the daily job (everything daily-partitioned) and the weekly research job."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from quant_assets.partitions import trading_day_partitions

DAILY_GROUPS = ["market"]

daily_job = define_asset_job(
    "daily_job",
    selection=AssetSelection.groups(*DAILY_GROUPS),
    partitions_def=trading_day_partitions,
    description="After the close: market data, then every daily asset downstream of it.",
)
