"""Portfolio construction, risk report, trade lists and schedules on a small simulated market."""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest
from scipy.stats import norm

from quant_lib.data.calendar import trading_days
from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.data.universe import universe_membership
from quant_lib.portfolio import METHODS, covariance_matrix
from quant_lib.portfolio import checks as portfolio_checks
from quant_lib.portfolio.construction import (
    CASH_TICKER,
    PortfolioConfig,
    apply_caps,
    build_targets,
    build_trade_lists,
    candidate_covariance,
    cash_holdings,
    execution_schedules,
    monthly_turnover,
    return_panel,
)
from quant_lib.risk import historical_var
from quant_lib.risk.report import risk_report

DAYS = trading_days(date(2021, 6, 14), date(2021, 6, 25))


@pytest.fixture(scope="module")
def market():
    sim = simulate_market(SimulationConfig(n_tickers=40, seed=3), end=DAYS[-1])
    prices = sim.prices.filter(pl.col("date") >= date(2020, 1, 1))
    momentum = (
        prices.sort("ticker", "date")
        .with_columns((pl.col("adj_close").shift(21) / pl.col("adj_close").shift(252) - 1).over("ticker").alias("mom"))
        .filter(pl.col("date").is_in(DAYS) & pl.col("mom").is_not_null() & (pl.col("ticker") != "SPY"))
    )
    rankings = momentum.with_columns(
        ((pl.col("mom") - pl.col("mom").mean().over("date")) / pl.col("mom").std().over("date")).alias("score")
    ).with_columns(pl.col("score").rank("ordinal", descending=True).over("date").cast(pl.Int32).alias("rank"))
    return {
        "prices": prices,
        "rankings": rankings.select("date", "ticker", "score", "rank"),
        "universe": universe_membership(sim.universe, DAYS),
    }


@pytest.fixture(scope="module")
def hrp_targets(market):
    config = PortfolioConfig()
    covariance = candidate_covariance(market["rankings"], market["prices"], config)
    return covariance, build_targets(market["rankings"], market["prices"], market["universe"], config, covariance)


def _assert_valid_targets(targets: pl.DataFrame, config: PortfolioConfig) -> None:
    assert targets["date"].n_unique() == len(DAYS)
    assert not targets.select(pl.col("weight", "raw_weight", "leverage").is_nan().any()).row(0)[0]
    assert targets.select(pl.col("weight", "raw_weight").null_count()).sum_horizontal().item() == 0
    per_day = targets.group_by("date").agg(pl.col("raw_weight").sum(), pl.col("weight").sum().alias("invested"))
    np.testing.assert_allclose(per_day["raw_weight"].to_numpy(), 1.0, atol=1e-6)
    assert (targets["weight"] >= 0).all()
    assert targets["weight"].max() <= config.max_position + 1e-9
    sectors = targets.group_by("date", "sector").agg(pl.col("weight").sum())
    assert sectors["weight"].max() <= config.sector_cap + 1e-9
    np.testing.assert_allclose(targets["weight"], targets["raw_weight"] * targets["leverage"], rtol=1e-12)
    assert targets["leverage"].is_between(config.min_leverage, config.max_leverage).all()


def test_hrp_targets_respect_every_constraint(market, hrp_targets):
    covariance, result = hrp_targets
    config = PortfolioConfig()
    _assert_valid_targets(result.targets, config)
    assert (result.targets.group_by("date").len()["len"] == 20).all()
    assert (result.diagnostics["covariance_source"] == "stored").all()
    assert result.fallbacks.is_empty()
    assert (result.targets["model_name"] == "hrp_top20").all()
    # candidates are the 20 best-ranked names (all 39 have a year of history)
    first = market["rankings"].filter(pl.col("date") == DAYS[0]).sort("rank").head(20)
    assert set(result.targets.filter(pl.col("date") == DAYS[0])["ticker"]) == set(first["ticker"])


@pytest.mark.parametrize("method", METHODS)
def test_every_optimizer_is_selectable(market, hrp_targets, method):
    covariance, _ = hrp_targets
    config = PortfolioConfig(optimizer=method)
    result = build_targets(market["rankings"], market["prices"], market["universe"], config, covariance)
    _assert_valid_targets(result.targets, config)
    assert (result.targets["model_name"] == f"{method}_top20").all()
    used = result.diagnostics["method_used"]
    assert (used == method).sum() >= len(DAYS) // 2, used.to_list()


def test_candidate_covariance_is_the_trailing_window_estimate_and_point_in_time(market, hrp_targets):
    covariance, _ = hrp_targets
    day = DAYS[3]
    stored = covariance.filter(pl.col("date") == day)
    tickers = sorted(stored["ticker"].unique().to_list())
    assert len(tickers) == 20 and stored.height == 400
    panel = return_panel(market["prices"])
    end = panel.end_row(day)
    window = panel.returns[end - 252:end][:, panel.columns(tickers)]
    expected = covariance_matrix(window, "ledoit_wolf")
    np.testing.assert_allclose(stored.sort("ticker", "other_ticker")["covariance"].to_numpy().reshape(20, 20), expected)
    cut = candidate_covariance(
        market["rankings"].filter(pl.col("date") == day), market["prices"].filter(pl.col("date") <= day), PortfolioConfig()
    )
    assert cut.sort("ticker", "other_ticker").equals(stored.sort("ticker", "other_ticker"))


def test_singular_covariance_falls_back_with_reason(market, hrp_targets):
    covariance, _ = hrp_targets
    day = DAYS[0]
    victim = covariance.filter(pl.col("date") == day)["ticker"][0]
    broken = covariance.with_columns(
        pl.when((pl.col("date") == day) & ((pl.col("ticker") == victim) | (pl.col("other_ticker") == victim)))
        .then(0.0)
        .otherwise(pl.col("covariance"))
        .alias("covariance")
    )
    result = build_targets(market["rankings"], market["prices"], market["universe"], PortfolioConfig(), broken)
    row = result.diagnostics.filter(pl.col("date") == day).row(0, named=True)
    assert row["method_used"] != "hrp"
    assert "hrp failed" in row["fallback_reason"] and "variance" in row["fallback_reason"]
    day_targets = result.targets.filter(pl.col("date") == day)
    assert (day_targets["fallback_reason"] == row["fallback_reason"]).all()
    _assert_valid_targets(result.targets, PortfolioConfig())
    assert result.diagnostics.filter(pl.col("date") != day)["fallback_reason"].is_null().all()


def test_caps_that_cannot_hold_the_portfolio_leave_cash_and_fail_the_sum_check(market):
    config = PortfolioConfig(top_n=6, target_vol=None)
    result = build_targets(market["rankings"], market["prices"], market["universe"], config)
    targets = result.targets
    assert (targets["weight"] <= 0.10 + 1e-12).all()
    assert targets.group_by("date").agg(pl.col("weight").sum())["weight"].max() <= 0.6 + 1e-12
    assert targets["fallback_reason"].str.contains("caps hold only").all()
    outcome = portfolio_checks.weights_sum(targets)
    assert not outcome.passed and outcome.blocking
    assert str(DAYS[0]) in outcome.message


def test_apply_caps_water_fills_position_and_sector_caps():
    weights = np.array([0.40, 0.20, 0.15, 0.10, 0.05, 0.05, 0.05])
    sectors = np.array(["A", "A", "B", "B", "C", "C", "D"])
    capped, note = apply_caps(weights, sectors, max_position=0.25, sector_cap=0.40)
    assert note is None
    assert capped.sum() == pytest.approx(1.0)
    assert capped.max() <= 0.25 + 1e-10
    totals = {s: capped[sectors == s].sum() for s in "ABCD"}
    assert max(totals.values()) <= 0.40 + 1e-10
    assert totals["A"] == pytest.approx(0.40)


def test_risk_report_components_sum_to_total_and_match_formulas(market, hrp_targets):
    covariance, result = hrp_targets
    report = risk_report(result.targets, covariance, market["prices"], "SPY", 2_000_000.0)
    assert report.height == result.targets.height
    totals = report.group_by("date").agg(
        pl.col("component_var").sum().alias("sum"), pl.col("portfolio_var").first(), pl.col("portfolio_var_pct").first()
    )
    np.testing.assert_allclose(totals["sum"], totals["portfolio_var"], rtol=1e-10)
    np.testing.assert_allclose(report.group_by("date").agg(pl.col("pct_contribution").sum())["pct_contribution"], 1.0)
    day = DAYS[2]
    held = result.targets.filter(pl.col("date") == day).sort("ticker")
    block = covariance.filter(
        (pl.col("date") == day) & pl.col("ticker").is_in(held["ticker"].to_list())
        & pl.col("other_ticker").is_in(held["ticker"].to_list())
    ).sort("ticker", "other_ticker")["covariance"].to_numpy().reshape(held.height, held.height)
    w = held["weight"].to_numpy()
    row = report.filter(pl.col("date") == day).row(0, named=True)
    assert row["portfolio_var_pct"] == pytest.approx(norm.ppf(0.95) * np.sqrt(w @ block @ w))
    assert row["portfolio_var"] == pytest.approx(row["portfolio_var_pct"] * 2_000_000.0)
    panel = return_panel(market["prices"])
    end = panel.end_row(day)
    returns = panel.returns[end - 252:end][:, panel.columns(held["ticker"].to_numpy())]
    assert row["historical_var_pct"] == pytest.approx(historical_var(returns @ w, 0.95))
    assert row["historical_cvar_pct"] >= row["historical_var_pct"] > 0
    assert row["hedge_put_price"] > 0 and row["hedge_cost_bps"] > 0
    assert row["hedge_annualized_cost_bps"] == pytest.approx(4 * row["hedge_cost_bps"])
    assert row["limit_status"] == "OK" and not row["var_limit_breached"]
    tight = risk_report(result.targets, covariance, market["prices"], "SPY", 2_000_000.0, var_limit=0.001)
    assert tight["var_limit_breached"].all() and tight["limit_status"].str.starts_with("BREACH").all()
    assert not portfolio_checks.var_limit(tight, 0.001).passed
    assert not portfolio_checks.var_limit(tight, 0.001).blocking


def test_trade_lists_buy_whole_shares_within_cash(market, hrp_targets):
    _, result = hrp_targets
    holdings = cash_holdings(DAYS, 1_000_000.0)
    trades = build_trade_lists(result.targets, holdings, market["prices"], market["rankings"], market["universe"], PortfolioConfig(rebalance_rate=1.0))
    assert set(trades["date"].unique().to_list()) == set(DAYS)
    assert (trades["side"] == "BUY").all() and (trades["shares"] > 0).all()
    assert trades["shares"].dtype == pl.Int64
    assert trades.group_by("date").agg(pl.col("value").sum())["value"].max() <= 1_000_000.0
    joined = trades.join(result.targets, on=["date", "ticker"])
    assert joined.height == trades.height
    assert ((joined["weight"] * 1_000_000.0 - joined["value"]).is_between(0, joined["price"])).all()
    assert set(trades.columns) >= {"ticker", "name", "sector", "alpha_score", "conviction", "raw_weight",
                                   "final_weight", "shares", "value", "reason", "date", "side", "current_shares",
                                   "target_shares", "price"}
    assert trades["conviction"].is_in(["High", "Medium", "Low"]).all()


def test_trade_lists_from_positions_sell_exits_and_stay_within_cash(market, hrp_targets):
    _, result = hrp_targets
    day = DAYS[-1]
    targets = result.targets.filter(pl.col("date") == day)
    outsider = market["rankings"].filter((pl.col("date") == day) & ~pl.col("ticker").is_in(targets["ticker"].to_list()))["ticker"][0]
    insider = targets["ticker"][0]
    holdings = pl.DataFrame({
        "date": [day] * 3, "ticker": [CASH_TICKER, outsider, insider],
        "shares": [50_000.0, 1_000.0, 500.0], "price": [1.0, None, None], "value": [50_000.0, None, None],
    })
    close = market["prices"].filter(pl.col("date") == day).select("ticker", "close")
    price = dict(close.iter_rows())
    value = 50_000.0 + 1_000 * price[outsider] + 500 * price[insider]
    trades = build_trade_lists(targets, holdings, market["prices"], market["rankings"], market["universe"], PortfolioConfig(hold_rank=None, rebalance_rate=1.0))
    exit_row = trades.filter(pl.col("ticker") == outsider).row(0, named=True)
    assert exit_row["side"] == "SELL" and exit_row["shares"] == 1_000 and exit_row["reason"] == "Exit"
    buys = trades.filter(pl.col("side") == "BUY")["value"].sum()
    sells = trades.filter(pl.col("side") == "SELL")["value"].sum()
    assert buys <= 50_000.0 + sells + 1e-6
    after = trades.with_columns((pl.col("target_shares") * pl.col("price")).alias("position"))
    assert after["position"].sum() <= value + 1e-6


def test_vwap_schedules_sum_to_each_order(market, hrp_targets):
    _, result = hrp_targets
    trades = build_trade_lists(
        result.targets, cash_holdings(DAYS, 1_000_000.0), market["prices"], market["rankings"], market["universe"],
        PortfolioConfig(),
    )
    schedule = execution_schedules(trades, market["prices"])
    per_order = schedule.group_by("date", "ticker").agg(pl.col("shares").sum(), pl.len().alias("slices"), pl.col("pct").sum())
    matched = per_order.join(trades.select("date", "ticker", pl.col("shares").alias("order")), on=["date", "ticker"])
    assert matched.height == trades.height
    assert (matched["shares"] == matched["order"]).all() and (matched["slices"] == 13).all()
    np.testing.assert_allclose(matched["pct"], 1.0)
    one = trades.row(0, named=True)
    history = market["prices"].filter((pl.col("ticker") == one["ticker"]) & (pl.col("date") <= one["date"])).sort("date")
    adv = history["volume"].tail(20).cast(pl.Float64).mean()
    vol = history["adj_close"].pct_change().tail(20).std()
    impact = schedule.filter((pl.col("date") == one["date"]) & (pl.col("ticker") == one["ticker"]))["expected_impact_bps"]
    assert impact[0] == pytest.approx(vol * np.sqrt(one["shares"] / adv) * 1e4)


def test_monthly_turnover_known_answer():
    days = trading_days(date(2024, 1, 1), date(2024, 2, 15))
    n = len(days)
    frame = pl.DataFrame({
        "date": days * 2,
        "ticker": ["A"] * n + ["B"] * n,
        "weight": [0.5 + 0.1 * (i % 2) for i in range(n)] + [0.5] * n,
    })
    turnover = monthly_turnover(frame)
    assert turnover["turnover_21d"][0] == 0.0
    assert turnover["turnover_21d"][1] == pytest.approx(0.05)
    assert turnover["turnover_21d"][-1] == pytest.approx(21 * 0.05)
    assert not portfolio_checks.turnover(turnover, 0.5).passed
    assert portfolio_checks.turnover(turnover, 1.1).passed


def test_checks_name_offending_rows():
    day = date(2024, 6, 28)
    targets = pl.DataFrame({
        "date": [day] * 4, "ticker": ["AAA", "AAB", "AAC", "AAD"], "sector": ["Tech", "Tech", "Tech", "Energy"],
        "weight": [0.15, 0.30, 0.05, -0.01], "raw_weight": [0.15, 0.30, 0.05, 0.5],
    })
    position = portfolio_checks.max_position(targets, 0.10)
    assert not position.passed and "AAB" in position.details["rows"] and "AAA" in position.details["rows"]
    sector = portfolio_checks.sector_caps(targets, 0.35)
    assert not sector.passed and "Tech" in sector.details["rows"]
    assert portfolio_checks.sector_caps(targets, None).passed
    negative = portfolio_checks.long_only(targets)
    assert not negative.passed and "AAD" in negative.details["rows"]
    assert portfolio_checks.weights_sum(targets).passed
    assert not portfolio_checks.weights_sum(targets.with_columns(pl.col("raw_weight") * 2)).passed


def test_config_rejects_unknown_optimizer_and_names_the_model():
    with pytest.raises(ValueError, match="optimizer"):
        PortfolioConfig(optimizer="magic")
    with pytest.raises(ValueError, match="min_leverage"):
        PortfolioConfig(min_leverage=2.0)
    assert PortfolioConfig(optimizer="kelly", top_n=30).model_name == "kelly_top30"
