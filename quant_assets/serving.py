"""The `serving` group: publish what the API reads, as the last step of the daily and weekly jobs.

`serving_snapshot` (daily) and `weekly_serving_snapshot` (weekly) both export the same set of
tables (`quant_resources.snapshots.SERVING_TABLES`, those present) plus the latest backtest's
equity curves and tear sheet into a new read-only snapshot and swap the pointer atomically; the
API never opens the warehouse. They run in the `duckdb_warehouse` pool, so no run writes the
warehouse while they read it.
"""


from pathlib import Path

import polars as pl
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from quant_assets.partitions import single_run, trading_day_partitions, weekly_partitions
from quant_assets.reporting import summary_section
from quant_lib.backtest.curves import strategy_equity_curves
from quant_resources.experiments import ExperimentStore, ExperimentStoreResource
from quant_resources.snapshot_publisher import SnapshotPublisherResource
from quant_resources.settings import get_settings
from quant_resources.snapshots import SERVING_TABLES, SnapshotError, SnapshotManifest, read_pointer
from quant_resources.warehouse import WAREHOUSE_POOL, Warehouse, WarehouseResource

DAILY_INPUTS = [
    "universe", "fundamentals", "factor_values", "factor_scores", "regime", "rankings",
    "portfolio_targets", "risk_report", "holdings", "trade_list", "execution_schedule", "meta_confidence",
    "orders", "fills",
    "model_predictions", "ensemble_weights",
]
WEEKLY_INPUTS = ["backtests", "walk_forward", "ga_search", "meta_model", "meta_champion"]
SERVING = dict(pool=WAREHOUSE_POOL, group_name="serving", kinds={"duckdb"})


def latest_backtest_frames(warehouse: Warehouse, store: ExperimentStore) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """`backtest_equity` (every strategy of the latest week), `backtest_config` (its top_n) and
    `tearsheets` (its HTML) when the
    warehouse has backtests; plus the problems met (missing run folders, missing tear sheet)."""
    if not warehouse.has_table("backtests"):
        return {}, []
    backtests = warehouse.read("backtests", date_column="week")
    if backtests.is_empty():
        return {}, []
    latest = backtests.filter(pl.col("week") == pl.col("week").max())
    curves, top_n, problems = {}, {}, []
    for row in latest.select("strategy", "run_id").iter_rows(named=True):
        try:
            experiment = store.load_experiment(row["run_id"])
        except FileNotFoundError as exc:
            problems.append(str(exc))
            continue
        curves[row["strategy"]] = experiment.daily
        top_n[row["strategy"]] = (experiment.config.get("params") or {}).get("top_n")
    frames = {
        "backtest_equity": strategy_equity_curves(curves),
        "backtest_config": pl.DataFrame(
            {"week": [latest["week"][0]] * len(top_n), "strategy": list(top_n), "top_n": list(top_n.values())},
            schema={"week": pl.Date, "strategy": pl.String, "top_n": pl.Int64},
        ),
    }
    report = Path(latest["report_path"][0]) if "report_path" in latest.columns else None
    if report is not None and report.is_file():
        frames["tearsheets"] = pl.DataFrame({"week": [latest["week"][0]], "html": [report.read_text(encoding="utf-8")]})
    elif report is not None:
        problems.append(f"tear sheet {report} is missing")
    return frames, problems


def snapshot_asset(name: str, description: str, deps: list[str], **partitioning):
    """A `serving`-group asset that publishes the snapshot after the assets in `deps`."""

    @asset(name=name, deps=deps, description=description, **SERVING, **partitioning)
    def publish(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        experiments: ExperimentStoreResource,
        snapshots: SnapshotPublisherResource,
    ) -> MaterializeResult:
        wh = warehouse.get()
        frames, problems = latest_backtest_frames(wh, experiments.get())
        for problem in problems:
            context.log.warning(f"serving snapshot: {problem}")
        manifest: SnapshotManifest = snapshots.get().publish(context.run_id, wh.path, SERVING_TABLES, frames)
        context.log.info(f"published snapshot {manifest.snapshot_id} (as of {manifest.as_of}): {manifest.tables}")
        return MaterializeResult(
            metadata={
                "snapshot_id": manifest.snapshot_id,
                "as_of": str(manifest.as_of),
                "published_at": manifest.published_at.isoformat(),
                "path": MetadataValue.path(str(Path(snapshots.serving_dir) / manifest.file)),
                "tables": MetadataValue.json(manifest.tables),
                "problems": len(problems),
            }
        )

    return publish


serving_snapshot = snapshot_asset(
    "serving_snapshot",
    "Read-only snapshot of the tables the API serves, published atomically after the daily job.",
    DAILY_INPUTS,
    partitions_def=trading_day_partitions,
    backfill_policy=single_run,
)

weekly_serving_snapshot = snapshot_asset(
    "weekly_serving_snapshot",
    "The serving snapshot republished after the weekly research job (new backtests, tear sheet).",
    WEEKLY_INPUTS,
    partitions_def=weekly_partitions,
)


@summary_section
def serving_summary(warehouse: Warehouse, latest) -> str:
    """`make run`'s last words on the API: the published snapshot and how to serve it."""
    settings = get_settings()
    try:
        manifest = read_pointer(settings.serving_path)
    except SnapshotError as err:
        return f"API snapshot: {err}"
    if manifest is None:
        return f"API snapshot: none published in {settings.serving_path} yet."
    return (
        f"API snapshot {manifest.snapshot_id} (as of {manifest.as_of}, {len(manifest.tables)} tables) in "
        f"{settings.serving_path}.\nServe it with `make serve`: http://{settings.api_host}:{settings.api_port}/dashboard, "
        f"API under /api/v1 (docs /docs)."
    )
