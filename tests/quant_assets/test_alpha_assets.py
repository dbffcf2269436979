"""The `alpha` group over a simulated market, materialized once per session (conftest)."""

from __future__ import annotations

from datetime import date

import polars as pl

from quant_resources.warehouse import Warehouse


def test_alpha_group_over_history_in_one_run(daily_graph):
    assert daily_graph.market.success
    result = daily_graph.outputs
    assert result.success, [e.event_specific_data.error.message for e in result.get_step_failure_events()]
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["ranking_coverage"].passed, checks["ranking_coverage"].description
    assert checks["zscores_standardized"].passed, checks["zscores_standardized"].description
    wh = Warehouse(daily_graph.warehouse_path)
    ranked = wh.read("rankings")
    assert ranked["date"].min() == date(2024, 6, 17) and ranked["date"].max() == date(2024, 6, 28)
    per_day = ranked.group_by("date").agg(pl.col("rank").min().alias("lo"), pl.col("rank").max().alias("hi"), pl.len().alias("n"))
    assert (per_day["lo"] == 1).all() and (per_day["hi"] == per_day["n"]).all()
    assert set(ranked.columns) >= {"ticker", "date", "score", "rank", "model_name", "metadata_json", "vsm", "bab", "qmj"}
    regime = wh.read("regime")
    assert set(regime["regime"].unique().to_list()) <= {"Bull", "Bear", "Unknown"}
    assert regime.height == per_day.height
    first_day = wh.read("factor_values").filter(pl.col("date") == date(2024, 6, 17))
    assert first_day["vsm"].null_count() < first_day.height
