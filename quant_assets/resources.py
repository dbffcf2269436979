"""Resources built from the platform settings (env vars / .env)."""

from __future__ import annotations

import os

from quant_assets.research import ReportsResource
from quant_resources.broker import broker_from_settings
from quant_resources.compute import ComputeBackend
from quant_resources.experiments import ExperimentStoreResource
from quant_resources.market_data import MarketDataResource
from quant_resources.model_registry import ModelRegistryResource
from quant_resources.model_store import ModelStoreResource
from quant_resources.settings import PlatformSettings, get_settings
from quant_resources.snapshot_publisher import SnapshotPublisherResource
from quant_resources.warehouse import WarehouseIOManager, WarehouseResource


def build_resources(settings: PlatformSettings | None = None) -> dict:
    settings = settings or get_settings()
    database = str(settings.duckdb_path)
    return {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "market_data": MarketDataResource.from_settings(settings),
        "compute": ComputeBackend(
            backend=os.environ.get("COMPUTE_BACKEND", "local"),
            max_workers=int(os.environ.get("COMPUTE_MAX_WORKERS", "2")),
            ray_address=os.environ.get("RAY_ADDRESS") or None,
        ),
        "experiments": ExperimentStoreResource(
            root_dir=str(settings.mlflow_dir), mlflow_tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None
        ),
        "reports": ReportsResource(directory=str(settings.reports_dir)),
        "model_registry": ModelRegistryResource(
            root_dir=str(settings.mlflow_dir), tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None
        ),
        "snapshots": SnapshotPublisherResource(
            serving_dir=str(settings.serving_path), grace_seconds=settings.snapshot_grace_seconds
        ),
        "model_store": ModelStoreResource(root_dir=str(settings.models_dir)),
        "broker": broker_from_settings(settings),
    }
