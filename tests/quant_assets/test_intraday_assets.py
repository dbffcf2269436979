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
