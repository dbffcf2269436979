"""Resources built from the platform settings (env vars / .env)."""

from __future__ import annotations

from quant_resources.market_data import MarketDataResource
from quant_resources.settings import PlatformSettings, get_settings
from quant_resources.warehouse import WarehouseIOManager, WarehouseResource


def build_resources(settings: PlatformSettings | None = None) -> dict:
    settings = settings or get_settings()
    database = str(settings.duckdb_path)
    return {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "market_data": MarketDataResource.from_settings(settings),
    }
