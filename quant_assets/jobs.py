"""Jobs: the daily job (everything daily-partitioned) and the weekly research job."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from quant_assets.partitions import trading_day_partitions, weekly_partitions

DAILY_GROUPS = ["market", "alpha", "portfolio"]
DAILY_ML_ASSETS = [
    "barrier_labels", "meta_confidence", "ml_features", "model_predictions", "ensemble_weights",
]
DAILY_LOOKBACK_DAYS = 300
"""Trading days of market history the daily assets read before their partition (factors need
253, the regime 282); `make run` backfills it first."""

daily_job = define_asset_job(
    "daily_job",
    selection=(
        AssetSelection.groups(*DAILY_GROUPS) | AssetSelection.assets(*DAILY_ML_ASSETS, "serving_snapshot")
    ) - AssetSelection.assets("factor_diagnostics_report"),
    partitions_def=trading_day_partitions,
    description="After the close: market data, then every daily asset downstream of it.",
)

WEEKLY_ASSETS = [
    "factor_diagnostics_report", "walk_forward", "ga_search", "backtests", "meta_model", "meta_champion",
    "weekly_serving_snapshot",
]

weekly_research_job = define_asset_job(
    "weekly_research_job",
    selection=AssetSelection.assets(*WEEKLY_ASSETS),
    partitions_def=weekly_partitions,
    description="Saturday morning: research and diagnostics over the week that just closed.",
)
