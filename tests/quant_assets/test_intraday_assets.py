"""`intraday_bars`: materialized beside prices for a partition range, with passing blocking checks."""

from __future__ import annotations

from dagster import materialize

from quant_assets import intraday, market
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_resources.warehouse import Warehouse


def test_intraday_bars_materialize_and_aggregate_to_prices(sim_resources, instance, warehouse_path):
    result = materialize(
        [market.universe, market.prices, intraday.intraday_bars],
        resources=sim_resources,
        instance=instance,
        tags={RANGE_START_TAG: "2024-05-23", RANGE_END_TAG: "2024-05-29"},
        raise_on_error=False,
    )
    assert result.success
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations() if c.asset_key.to_user_string() == "intraday_bars"}
    assert checks == {"schema": True, "ohlc_logic": True, "matches_daily": True}
    bars = Warehouse(warehouse_path).read("intraday_bars")
    per_day = bars.group_by("date", "ticker").len()
    days = sorted(d.isoformat() for d in per_day["date"].unique())
    assert days == ["2024-05-23", "2024-05-24", "2024-05-28", "2024-05-29"]  # 05-27: Memorial Day
    assert per_day["ticker"].n_unique() == 5 and "SPY" in per_day["ticker"].to_list()
    assert set(per_day["len"]) == {78}


def test_failing_intraday_check_writes_nothing(sim_resources, instance, warehouse_path, monkeypatch):
    """Issue 15 item 3 for `intraday_bars`: blocking checks run before the write."""
    from dagster import AssetKey

    from quant_lib.data.quality import CheckOutcome

    monkeypatch.setattr(intraday, "intraday_checks", lambda *a, **k: [CheckOutcome("matches_daily", False, "bars disagree")])
    result = materialize(
        [market.universe, market.prices, intraday.intraday_bars], resources=sim_resources, instance=instance,
        partition_key="2024-05-23", raise_on_error=False,
    )
    assert not result.success
    assert [c.passed for c in result.get_asset_check_evaluations() if c.check_name == "matches_daily"] == [False]
    assert not Warehouse(warehouse_path).has_table("intraday_bars")
    assert "2024-05-23" not in instance.get_materialized_partitions(AssetKey("intraday_bars"))


def test_crypto_intraday_bars_of_the_weekend_belong_to_the_friday_partition(instance, warehouse_path):
    from quant_resources.market_data import MarketDataResource
    from quant_resources.warehouse import WarehouseIOManager

    resources = {
        "warehouse_io_manager": WarehouseIOManager(database=str(warehouse_path)),
        "market_data": MarketDataResource(
            provider="simulated", sim_n_tickers=10, sim_seed=7, sim_crypto=1, simulated_today="2024-06-28",
            intraday_symbols=["SPY", "BTC-USD"], intraday_intervals=["1h"],
        ),
    }
    result = materialize(
        [market.universe, market.prices, intraday.intraday_bars], resources=resources, instance=instance,
        partition_key="2024-05-24", raise_on_error=False,
    )
    assert result.success and all(c.passed for c in result.get_asset_check_evaluations())
    wh = Warehouse(warehouse_path)
    assert wh.read("prices").filter(wh.read("prices")["date"].dt.weekday() > 5).is_empty()
    bars = wh.read("intraday_bars").group_by("ticker", "date").len().sort("ticker", "date")
    btc = bars.filter(bars["ticker"] == "BTC-USD")
    # Friday's window ends at the next weekday tick (Monday 00:00), so Saturday and Sunday are in it;
    # Memorial Day (a weekday holiday) belongs to no XNYS partition
    assert [d.isoformat() for d in btc["date"]] == ["2024-05-24", "2024-05-25", "2024-05-26"]
    assert set(btc["len"]) == {24} and bars.filter(bars["ticker"] == "SPY")["len"].to_list() == [7]
