"""The `portfolio` group over a simulated market: one run for a range after alpha, blocking checks,
tables consistent with each other."""

from __future__ import annotations

from datetime import date

import polars as pl
from dagster import materialize

from quant_assets import alpha, market, portfolio, trading
from quant_assets.reporting import RANGE_END_TAG, RANGE_START_TAG
from quant_resources.warehouse import Warehouse

MARKET = [market.universe, market.prices, market.fundamentals]
ALPHA = [alpha.factor_values, alpha.factor_scores, alpha.regime, alpha.rankings]
PORTFOLIO = [
    portfolio.covariance, portfolio.portfolio_targets, portfolio.risk_report,
    portfolio.holdings, portfolio.trade_list, portfolio.execution_schedule, trading.orders, trading.fills,
]
FIRST, LAST = date(2024, 6, 24), date(2024, 6, 28)
HISTORY_START = "2023-05-22"
"""Covers the longest lookback read before FIRST: the regime's 282 partitions (prices: 267)."""


def test_portfolio_group_after_alpha_in_one_run(sim_resources, instance, warehouse_path):
    history = materialize(
        MARKET, resources=sim_resources, instance=instance,
        tags={RANGE_START_TAG: HISTORY_START, RANGE_END_TAG: LAST.isoformat()},
    )
    assert history.success
    result = materialize(
        MARKET + ALPHA + PORTFOLIO, resources=sim_resources, instance=instance,
        selection=[a.key for a in ALPHA + PORTFOLIO],
        tags={RANGE_START_TAG: FIRST.isoformat(), RANGE_END_TAG: LAST.isoformat()}, raise_on_error=False,
        run_config=portfolio.portfolio_run_config(optimizer="min_variance", max_position=0.12),
    )
    assert result.success
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    for name in ("weights_sum", "long_only", "max_position", "sector_caps", "ranking_coverage"):
        assert checks[name].passed, (name, checks[name].description)
    assert {"var_limit", "turnover"} <= set(checks)

    wh = Warehouse(warehouse_path)
    targets = wh.read("portfolio_targets")
    days = targets["date"].unique().sort().to_list()
    assert days[0] == FIRST and days[-1] == LAST and len(days) == 5
    per_day = targets.group_by("date").agg(
        pl.col("raw_weight").sum().alias("raw"), pl.col("weight").sum().alias("invested"),
        pl.col("weight").max().alias("largest"), pl.len().alias("names"),
    )
    assert ((per_day["raw"] - 1).abs() < 1e-6).all()
    assert (per_day["invested"] <= 1 + 1e-9).all() and (per_day["invested"] >= 0.5 - 1e-9).all()
    assert (per_day["largest"] <= 0.12 + 1e-9).all()
    assert (targets["model_name"] == "min_variance_top20").all()
    assert (targets["method_used"] == "min_variance").all()

    cov = wh.read("covariance")
    assert cov["date"].n_unique() == 5
    diagonal = cov.filter(pl.col("ticker") == pl.col("other_ticker"))
    assert (diagonal["covariance"] > 0).all()
    assert set(targets["ticker"].unique().to_list()) <= set(cov["ticker"].unique().to_list())

    report = wh.read("risk_report")
    assert report.select("date", "ticker").sort("date", "ticker").equals(targets.filter(pl.col("weight") > 0).select("date", "ticker").sort("date", "ticker"))
    totals = report.group_by("date").agg(pl.col("component_var").sum().alias("sum"), pl.col("portfolio_var").first().alias("total"))
    assert ((totals["sum"] - totals["total"]).abs() < 1e-6 * totals["total"]).all()
    assert report["hedge_cost_bps"].is_not_null().all() and report["turnover_21d"].is_not_null().all()

    holdings = wh.read("holdings")
    first_day = holdings.filter(pl.col("date") == FIRST)
    assert first_day.height == 1 and first_day["ticker"][0] == "CASH" and first_day["shares"][0] == 1_000_000.0
    assert holdings.filter(pl.col("date") == LAST).height > 1, "fills feed the later days' holdings"

    trades = wh.read("trade_list")
    assert FIRST in set(trades["date"].unique().to_list()) <= set(days)
    first_trades = trades.filter(pl.col("date") == FIRST)
    assert (first_trades["side"] == "BUY").all() and (trades["shares"] > 0).all()
    assert first_trades["value"].sum() <= 1_000_000.0 + 1e-6
    joined = first_trades.join(targets, on=["date", "ticker"])
    assert joined.height == first_trades.height
    rate = portfolio.PortfolioConfig().rebalance_rate  # the default partial adjustment: ceil(rate x target shares)
    gap = (joined["value"] - rate * joined["weight"] * 1_000_000.0).abs()
    assert (gap <= 2 * joined["price"] + 1e-6).all()
    later = trades.filter(pl.col("date") > FIRST)["value"].sum()
    assert later < first_trades["value"].sum() / rate, "later days trade the remaining gap, not a fresh buy-in each day"
    placed = wh.read("orders")
    assert placed.height == trades.height and placed["client_order_id"].n_unique() == placed.height
    assert (placed["status"] == "filled").all() and wh.read("fills").height == trades.height

    schedule = wh.read("execution_schedule")
    per_order = schedule.group_by("date", "ticker").agg(pl.col("shares").sum())
    matched = per_order.join(trades.select("date", "ticker", pl.col("shares").alias("order")), on=["date", "ticker"])
    assert matched.height == trades.height and (matched["shares"] == matched["order"]).all()
    assert schedule["expected_impact_bps"].is_not_null().all()

    summary = portfolio._portfolio_summary(wh, LAST)
    print(summary)
    assert "Portfolio on 2024-06-28" in summary and "Trade list" in summary and "limit_status" in summary
