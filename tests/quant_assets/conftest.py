"""A daily graph materialized once per test session: market history, then the downstream
groups over the last two weeks, on a 20-ticker simulated market."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize

from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_resources.dagster_storage import ephemeral_instance
from tests.conftest import SIM_TODAY

MARKET_HISTORY = ("2023-03-01", "2024-06-28")
OUTPUT_RANGE = ("2024-06-17", "2024-06-28")


@dataclass
class DailyGraph:
    warehouse_path: Path
    instance: DagsterInstance
    resources: dict
    market: ExecuteInProcessResult
    outputs: ExecuteInProcessResult


def daily_assets() -> tuple[list[AssetsDefinition], list[AssetsDefinition]]:
    from quant_assets import alpha, market

    market_assets = [market.universe, market.prices, market.fundamentals]
    outputs = [alpha.factor_values, alpha.factor_scores, alpha.regime, alpha.rankings]
    try:
        from quant_assets import portfolio

        outputs += [
            a for a in vars(portfolio).values()
            if isinstance(a, AssetsDefinition) and a.group_names_by_key and "portfolio" in a.group_names_by_key.values()
        ]
    except ImportError:
        pass
    return market_assets, outputs


@pytest.fixture(scope="session")
def daily_graph(tmp_path_factory) -> DailyGraph:
    from quant_resources.broker import BrokerResource
    from quant_resources.market_data import MarketDataResource
    from quant_resources.warehouse import WarehouseIOManager, WarehouseResource

    base = tmp_path_factory.mktemp("daily_graph")
    warehouse_path = base / "warehouse" / "quant.duckdb"
    database = str(warehouse_path)
    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "market_data": MarketDataResource(
            provider="simulated", sim_n_tickers=20, sim_seed=7, simulated_today=SIM_TODAY.isoformat(),
            cache_dir=str(base / "cache"),
        ),
        "broker": BrokerResource(state_dir=str(base / "warehouse" / "state")),
    }
    market_assets, outputs = daily_assets()
    with ephemeral_instance() as instance:
        history = materialize(
            market_assets, resources=resources, instance=instance,
            tags={RANGE_START_TAG: MARKET_HISTORY[0], RANGE_END_TAG: MARKET_HISTORY[1]},
        )
        result = materialize(
            market_assets + outputs, resources=resources, instance=instance,
            selection=[k for a in outputs for k in a.keys],
            tags={RANGE_START_TAG: OUTPUT_RANGE[0], RANGE_END_TAG: OUTPUT_RANGE[1]},
            raise_on_error=False,
        )
        yield DailyGraph(warehouse_path, instance, resources, history, result)


@pytest.fixture(scope="session")
def served_snapshot(daily_graph: DailyGraph, tmp_path_factory):
    """The daily graph's warehouse published by the `serving_snapshot` asset, with a stored weekly
    backtest (run folders + `backtests` table + tear sheet) so every endpoint has data."""
    from tests.quant_assets.serving_fixture import publish_served_snapshot

    return publish_served_snapshot(daily_graph, tmp_path_factory.mktemp("serving"))
