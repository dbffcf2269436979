"""A market-data backfill of the 20-ticker simulated market into a warehouse, then a serving
snapshot publish: run as a subprocess by the API-during-backfill test
(`python -m tests.quant_assets.serving_backfill_job WAREHOUSE SERVING_DIR CACHE START END`)."""

from __future__ import annotations

import sys
import warnings


def main(warehouse: str, serving_dir: str, cache_dir: str, start: str, end: str) -> int:
    warnings.filterwarnings("ignore")
    from dagster import materialize

    from quant_assets import market
    from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
    from quant_assets.serving import serving_snapshot
    from quant_resources.dagster_storage import ephemeral_instance
    from quant_resources.experiments import ExperimentStoreResource
    from quant_resources.market_data import MarketDataResource
    from quant_resources.snapshot_publisher import SnapshotPublisherResource
    from quant_resources.warehouse import WarehouseIOManager, WarehouseResource
    from tests.conftest import SIM_TODAY

    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=warehouse),
        "io_manager": WarehouseIOManager(database=warehouse),
        "warehouse": WarehouseResource(database=warehouse),
        "market_data": MarketDataResource(
            provider="simulated", sim_n_tickers=20, sim_seed=7, simulated_today=SIM_TODAY.isoformat(), cache_dir=cache_dir,
        ),
        "experiments": ExperimentStoreResource(root_dir=cache_dir + "/mlruns", enable_mlflow=False),
        "snapshots": SnapshotPublisherResource(serving_dir=serving_dir),
    }
    assets = [market.universe, market.prices, market.fundamentals]
    with ephemeral_instance() as instance:
        backfill = materialize(assets, resources=resources, instance=instance, tags={RANGE_START_TAG: start, RANGE_END_TAG: end})
        publish = materialize([serving_snapshot], resources=resources, instance=instance, partition_key=end)
    print(f"backfill={backfill.success} publish={publish.success}")
    return 0 if backfill.success and publish.success else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
