"""The `market` group end to end: in-process materialization, idempotence, point in time,
bad input, concurrency and the `dagster asset materialize` CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from dagster import materialize

from quant_assets import market
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_lib.data.calendar import trading_days_series
from quant_resources.warehouse import Warehouse
from tests.conftest import cli_env

MARKET_ASSETS = [market.universe, market.prices, market.fundamentals]


def _materialize_range(resources, instance, first: str, last: str, assets=MARKET_ASSETS):
    tags = {RANGE_START_TAG: first, RANGE_END_TAG: last} if first != last else {}
    return materialize(
        assets,
        resources=resources,
        instance=instance,
        partition_key=first if first == last else None,
        tags=tags,
        raise_on_error=False,
    )


def test_market_group_materializes_a_range_in_one_run(sim_resources, instance, warehouse_path):
    result = _materialize_range(sim_resources, instance, "2024-05-01", "2024-05-31")
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks if c.check_name != "coverage"), [
        (c.asset_key, c.check_name, c.description) for c in checks if not c.passed
    ]
    assert len(instance.get_runs()) == 1
    wh = Warehouse(warehouse_path)
    prices = wh.read("prices")
    trading_days = trading_days_series(date(2024, 5, 1), date(2024, 5, 31))  # XNYS: no Memorial Day (05-27)
    assert date(2024, 5, 27) not in trading_days.to_list() and len(trading_days) == 22
    assert set(prices["date"].unique().to_list()) == set(trading_days.to_list())
    assert "SPY" in prices["ticker"].unique().to_list()
    assert prices.select(pl.struct("date", "ticker").is_duplicated().sum()).item() == 0
    universe = wh.read("universe")
    members = universe.select("date", "ticker").sort("date", "ticker")
    assert members.equals(prices.select("date", "ticker").sort("date", "ticker"))
    assert universe.filter(pl.col("is_benchmark"))["date"].n_unique() == len(trading_days)
    fundamentals = wh.read("fundamentals")
    assert fundamentals.height > 0
    assert fundamentals.filter(pl.col("report_date") > pl.col("date")).is_empty()
    assert fundamentals.filter(pl.col("period_end") > pl.col("date")).is_empty()


def test_rematerializing_a_partition_replaces_exactly_that_partition(sim_resources, instance, warehouse_path):
    assert _materialize_range(sim_resources, instance, "2024-06-03", "2024-06-07").success
    wh = Warehouse(warehouse_path)
    before = wh.read("prices")
    assert _materialize_range(sim_resources, instance, "2024-06-05", "2024-06-05").success
    after = wh.read("prices")
    assert after.equals(before)
    untouched = after.filter(pl.col("date") != date(2024, 6, 5))
    assert untouched.height == before.filter(pl.col("date") != date(2024, 6, 5)).height
    assert after.filter(pl.col("date") == date(2024, 6, 5)).height == before.filter(
        pl.col("date") == date(2024, 6, 5)
    ).height


def test_fundamentals_are_point_in_time_by_truncation(sim_resources, instance, warehouse_path):
    """The snapshot for D computed in a run ending at D equals the one from a longer run."""
    assert _materialize_range(sim_resources, instance, "2024-04-01", "2024-04-30").success
    wh = Warehouse(warehouse_path)
    full = wh.read("fundamentals", date(2024, 4, 15), date(2024, 4, 16))
    assert _materialize_range(sim_resources, instance, "2024-04-15", "2024-04-15").success
    single = wh.read("fundamentals", date(2024, 4, 15), date(2024, 4, 16))
    assert single.equals(full)


def _write_bad_files(folder: Path) -> None:
    """A files-provider dataset whose XYZ prices are mostly broken (NaN closes, duplicates)."""
    days = pl.date_range(date(2024, 6, 3), date(2024, 6, 7), eager=True)
    good = pl.DataFrame({
        "date": days, "open": [10.0, 10.2, 10.1, 10.3, 10.4], "high": [10.5, 10.6, 10.4, 10.7, 10.8],
        "low": [9.9, 10.0, 9.8, 10.1, 10.2], "close": [10.2, 10.1, 10.3, 10.4, 10.6],
        "volume": [1e6, 1.1e6, 0.9e6, 1.2e6, 1.0e6],
    })
    good.write_csv(folder / "SPY.csv")
    good.write_csv(folder / "ABC.csv")
    broken = good.with_columns(
        pl.when(pl.col("date") >= date(2024, 6, 4)).then(None).otherwise(pl.col("close")).alias("close")
    )
    broken.write_csv(folder / "XYZ.csv")


def test_bad_input_fails_blocking_checks_and_names_the_problem(tmp_path, instance, warehouse_path, sim_resources):
    from quant_resources.market_data import MarketDataResource

    data_dir = tmp_path / "files"
    data_dir.mkdir()
    _write_bad_files(data_dir)
    resources = dict(sim_resources, market_data=MarketDataResource(provider="files", data_dir=str(data_dir)))
    result = _materialize_range(resources, instance, "2024-06-03", "2024-06-07", [market.universe, market.prices])
    failed = {c.check_name: c for c in result.get_asset_check_evaluations() if not c.passed}
    assert "drop_rate" in failed, failed
    assert "universe_coverage" in failed
    coverage_md = failed["universe_coverage"].metadata["missing_examples"].value
    assert "XYZ" in coverage_md
    assert not Warehouse(warehouse_path).has_table("prices")  # blocking checks run before the write


def _cli(args: list[str], env: dict[str, str], timeout: int = 240) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", *args], env=env, cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


@pytest.mark.slow
def test_cli_materializes_one_partition(tmp_path, dagster_home):
    env = cli_env(tmp_path, dagster_home)
    proc = _cli(["asset", "materialize", "-m", "quant_assets.definitions", "--select", "prices", "--partition", "2024-06-03"], env)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    prices = Warehouse(tmp_path / "warehouse" / "quant.duckdb").read("prices")
    assert prices["date"].unique().to_list() == [date(2024, 6, 3)]
    from quant_lib.data.universe import universe_membership
    from quant_resources.providers.simulated import SimulatedProvider

    expected = universe_membership(SimulatedProvider(n_tickers=20, seed=7).universe(), [date(2024, 6, 3)])
    assert sorted(prices["ticker"].to_list()) == expected["ticker"].sort().to_list()
    assert "SPY" in prices["ticker"].to_list()


@pytest.mark.slow
def test_concurrent_backfill_and_daily_run_both_succeed(tmp_path, dagster_home):
    """A single-run backfill and a daily run launched at the same moment against one
    warehouse: the `duckdb_warehouse` pool (limit 1) serializes their steps, so neither hits
    DuckDB's single-writer lock."""
    env = cli_env(tmp_path, dagster_home)
    base = ["asset", "materialize", "-m", "quant_assets.definitions", "--select", "universe,prices,fundamentals"]
    backfill = _cli(base + ["--partition-range", "2024-04-01...2024-05-31"], env)
    daily = _cli(base + ["--partition", "2024-06-03"], env)
    out_backfill, _ = backfill.communicate(timeout=300)
    out_daily, _ = daily.communicate(timeout=300)
    assert backfill.returncode == 0, out_backfill[-3000:]
    assert daily.returncode == 0, out_daily[-3000:]
    prices = Warehouse(tmp_path / "warehouse" / "quant.duckdb").read("prices")
    assert prices["date"].min() == date(2024, 4, 1)
    assert prices["date"].max() == date(2024, 6, 3)
    assert prices.select(pl.struct("date", "ticker").is_duplicated().sum()).item() == 0
