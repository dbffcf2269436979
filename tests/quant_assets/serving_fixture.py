"""Builds the serving test snapshot: a weekly backtest stored as the research assets store it
(experiment run folders, a `backtests` table, a tear sheet), then `serving_snapshot` materialized
over the daily graph's warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl
from dagster import materialize

from quant_resources.experiments import ExperimentStore, ExperimentStoreResource
from quant_resources.snapshot_publisher import SnapshotPublisherResource
from quant_resources.snapshots import SnapshotManifest, read_pointer
from quant_resources.warehouse import Warehouse

WEEK = date(2024, 6, 22)
LAST_DAY = "2024-06-28"


@dataclass
class ServedSnapshot:
    serving_dir: Path
    warehouse_path: Path
    manifest: SnapshotManifest
    result: object


def _curves(prices: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Benchmark buy & hold, equal weight and a top-5-by-return basket as equity curves."""
    growth = prices.sort("date").with_columns((pl.col("adj_close") / pl.col("adj_close").first().over("ticker")).alias("g"))
    benchmark = growth.filter(pl.col("ticker") == "SPY").select("date", (pl.col("g") * 1e6).alias("equity"))
    equal = growth.group_by("date").agg((pl.col("g").mean() * 1e6).alias("equity")).sort("date")
    winners = growth.filter(pl.col("date") == pl.col("date").max()).sort("g", descending=True)["ticker"].head(5)
    top = growth.filter(pl.col("ticker").is_in(winners)).group_by("date").agg((pl.col("g").mean() * 1e6).alias("equity")).sort("date")
    return {"ranking_top_n": top, "benchmark": benchmark, "equal_weight": equal}


def store_backtest(warehouse: Warehouse, store: ExperimentStore, report: Path) -> None:
    prices = warehouse.read("prices", start=date(2024, 1, 2), end=date(2024, 6, 29))
    rows = []
    for name, daily in _curves(prices).items():
        daily = daily.with_columns(pl.col("equity").pct_change().fill_null(0.0).alias("returns"))
        config = {"strategy": name, "params": {"top_n": 5}} if name == "ranking_top_n" else {"strategy": name}
        record = store.save_experiment("serving_test", config, daily, pl.DataFrame({"date": [date(2024, 1, 2)]}), {}, {"t": name})
        rows.append({
            "strategy": name, "week": WEEK, "start_date": daily["date"].min(), "end_date": daily["date"].max(),
            "sharpe": 1.0, "annualized_return": 0.1, "max_drawdown": -0.1, "deflated_sharpe": 0.5,
            "probabilistic_sharpe": 0.6, "n_trials": 3, "total_return": 0.05, "volatility": 0.2, "sortino": 1.2,
            "annual_turnover": 1.0, "cost_drag": 0.001, "run_id": record.run_id, "mlflow_run_id": None,
            "report_path": str(report),
        })
    report.write_text("<html><body><h1>tear sheet week 2024-06-22</h1></body></html>", encoding="utf-8")
    warehouse.write("backtests", pl.DataFrame(rows))


def publish_served_snapshot(graph, base: Path) -> ServedSnapshot:
    from quant_assets.serving import serving_snapshot

    warehouse = Warehouse(graph.warehouse_path)
    experiments = ExperimentStoreResource(root_dir=str(base / "mlruns"), enable_mlflow=False)
    store_backtest(warehouse, experiments.get(), base / "tearsheet.html")
    serving_dir = base / "published"
    resources = {
        **graph.resources,
        "experiments": experiments,
        "snapshots": SnapshotPublisherResource(serving_dir=str(serving_dir), grace_seconds=3600),
    }
    result = materialize([serving_snapshot], resources=resources, partition_key=LAST_DAY, instance=graph.instance)
    return ServedSnapshot(serving_dir, graph.warehouse_path, read_pointer(serving_dir), result)
