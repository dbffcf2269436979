"""Shared fixtures: an isolated warehouse + Dagster instance per test, small simulated markets."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
os.environ.setdefault("MLFLOW_TRACKING_URI", "")  # never reach a server from tests

SIM_TODAY = date(2024, 6, 28)
"""The simulated market's 'today' in tests: results never depend on the real clock."""


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temporary DAGSTER_HOME prepared as `make` prepares one (the project's settings plus the
    batched event-log storage), exported as DAGSTER_HOME."""
    from quant_resources.dagster_home import prepare_dagster_home

    home = prepare_dagster_home(tmp_path / "dagster_home", ROOT / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def instance():
    """An in-memory Dagster instance with the platform's batched event-log storage. Tests of
    cross-process behaviour (the CLI, concurrency pools) use a real DAGSTER_HOME instead."""
    from quant_resources.dagster_storage import ephemeral_instance

    with ephemeral_instance() as inst:
        yield inst


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "quant.duckdb"


@pytest.fixture
def sim_resources(warehouse_path: Path) -> dict:
    """Resources for a 20-ticker simulated market writing into a temporary warehouse."""
    from quant_resources.broker import BrokerResource
    from quant_resources.market_data import MarketDataResource
    from quant_resources.warehouse import WarehouseIOManager, WarehouseResource

    database = str(warehouse_path)
    return {
        "warehouse_io_manager": WarehouseIOManager(database=database),
        "io_manager": WarehouseIOManager(database=database),
        "warehouse": WarehouseResource(database=database),
        "market_data": MarketDataResource(
            provider="simulated", sim_n_tickers=20, sim_seed=7, simulated_today=SIM_TODAY.isoformat(),
            cache_dir=str(warehouse_path.parent / "cache"),
        ),
        "broker": BrokerResource(state_dir=str(warehouse_path.parent / "state")),
    }


def cli_env(tmp_path: Path, dagster_home: Path, **extra: str) -> dict[str, str]:
    """Environment for a `dagster` CLI subprocess using a temporary home and warehouse."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "MARKET_DATA", "SIM_", "WAREHOUSE"))}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        WAREHOUSE_DIR=str(tmp_path / "warehouse"),
        SIM_N_TICKERS="20",
        SIM_SEED="7",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env
