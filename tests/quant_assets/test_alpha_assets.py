"""The `alpha` group over a simulated market: one run for a range, checks, lookback wiring."""

from __future__ import annotations

from datetime import date

import polars as pl
from dagster import materialize

from quant_assets import alpha, market
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_resources.warehouse import Warehouse

MARKET = [market.universe, market.prices, market.fundamentals]
ALPHA = [alpha.factor_values, alpha.factor_scores, alpha.regime, alpha.rankings]


def test_alpha_group_over_history_in_one_run(sim_resources, instance, warehouse_path):
    history = materialize(
        MARKET, resources=sim_resources, instance=instance,
        tags={RANGE_START_TAG: "2023-01-02", RANGE_END_TAG: "2024-06-28"},
    )
    assert history.success
    result = materialize(
        MARKET + ALPHA, resources=sim_resources, instance=instance,
        selection=[a.key for a in ALPHA],
        tags={RANGE_START_TAG: "2024-06-03", RANGE_END_TAG: "2024-06-28"}, raise_on_error=False,
    )
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["ranking_coverage"].passed, checks["ranking_coverage"].description
    assert checks["zscores_standardized"].passed, checks["zscores_standardized"].description
    wh = Warehouse(warehouse_path)
    ranked = wh.read("rankings")
    assert ranked["date"].min() == date(2024, 6, 3) and ranked["date"].max() == date(2024, 6, 28)
    per_day = ranked.group_by("date").agg(pl.col("rank").min().alias("lo"), pl.col("rank").max().alias("hi"), pl.len().alias("n"))
    assert (per_day["lo"] == 1).all() and (per_day["hi"] == per_day["n"]).all()
    assert set(ranked.columns) >= {"ticker", "date", "score", "rank", "model_name", "metadata_json", "vsm", "bab", "qmj"}
    regime = wh.read("regime")
    assert set(regime["regime"].unique().to_list()) <= {"Bull", "Bear", "Unknown"}
    assert regime.height == per_day.height
    values = wh.read("factor_values")
    assert values.filter(pl.col("date") == date(2024, 6, 3))["vsm"].null_count() < values.filter(pl.col("date") == date(2024, 6, 3)).height
