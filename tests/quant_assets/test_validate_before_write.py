"""Issue 15 item 3: blocking checks are evaluated before the IO manager writes, so a partition
that fails them is neither written nor marked materialized, and `run_daily` retries it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dagster import AssetKey, materialize

from quant_assets import market
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG, missing_partitions
from quant_resources.warehouse import Warehouse
from tests.quant_assets.files_market import weekdays, write_price_files

DAY = date(2024, 6, 28)


def _files_market(folder: Path, n_tickers: int = 14, inf_close: int = 3) -> None:
    """`n_tickers` tickers plus SPY trading 2024-06-17..28; the last day's close is `inf` for
    `inf_close` tickers (so coverage on that day falls to 11 of 15 < 90%)."""
    tickers = ["SPY", *[f"T{i:02d}" for i in range(n_tickers)]]
    write_price_files(folder, tickers, weekdays(date(2024, 6, 17), DAY),
                      {t: ("close", DAY, "inf") for t in tickers[1:1 + inf_close]})


def test_a_failing_blocking_check_writes_nothing_and_is_not_materialized(tmp_path, instance, warehouse_path, sim_resources):
    from quant_resources.market_data import MarketDataResource

    data_dir = tmp_path / "files"
    data_dir.mkdir()
    _files_market(data_dir)
    resources = dict(sim_resources, market_data=MarketDataResource(provider="files", data_dir=str(data_dir)))
    result = materialize([market.universe, market.prices], resources=resources, instance=instance,
                         partition_key=DAY.isoformat(), raise_on_error=False)
    assert not result.success
    failed = {c.check_name for c in result.get_asset_check_evaluations() if not c.passed}
    assert "universe_coverage" in failed
    failures = [f.event_specific_data.error.message for f in result.get_step_failure_events()]
    assert any("universe_coverage" in m for m in failures), failures
    assert DAY.isoformat() not in instance.get_materialized_partitions(AssetKey("prices"))
    wh = Warehouse(warehouse_path)
    assert not wh.has_table("prices") or wh.read("prices").is_empty()
    assert missing_partitions(instance, [AssetKey("prices")], DAY, DAY, warehouse=wh) == (DAY, DAY)


def test_missing_partitions_trusts_the_warehouse_not_only_dagster(sim_resources, instance, warehouse_path):
    """A partition Dagster recorded but the warehouse no longer holds is missing."""
    tags = {RANGE_START_TAG: "2024-06-24", RANGE_END_TAG: "2024-06-28"}
    assert materialize([market.universe, market.prices], resources=sim_resources, instance=instance, tags=tags).success
    wh = Warehouse(warehouse_path)
    keys = [AssetKey("universe"), AssetKey("prices")]
    assert missing_partitions(instance, keys, date(2024, 6, 24), DAY, warehouse=wh) is None
    wh.path.unlink()
    assert missing_partitions(instance, keys, date(2024, 6, 24), DAY, warehouse=wh) == (date(2024, 6, 24), DAY)
