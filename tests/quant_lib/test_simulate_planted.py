"""Planted structures of the simulated market: each is found where it was planted and not elsewhere.

Stable universe, meta-label structure, predictable tickers, drift / market change points and the
opt-in crypto and FX symbols (`quant_lib.data.simulate`, "Planted structures").
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from quant_lib.data import schemas
from quant_lib.data.simulate import SimulatedMarket, SimulationConfig, simulate_market

CONFIG = SimulationConfig(n_tickers=60, seed=7)  # shared (cached) with test_simulate.py
HORIZON, WIDTH = 10, 2.0


@pytest.fixture(scope="module")
def market() -> SimulatedMarket:
    return simulate_market(CONFIG)


@pytest.fixture(scope="module")
def residuals(market: SimulatedMarket) -> pl.DataFrame:
    """Constituent daily log returns minus beta times the benchmark's, with the day's news_sentiment."""
    panel = market.prices.sort("ticker", "date").with_columns(ret=pl.col("adj_close").log().diff().over("ticker"))
    bench = panel.filter(pl.col("ticker") == CONFIG.benchmark_ticker).select("date", bench="ret")
    news = market.fundamentals.filter(pl.col("metric") == "news_sentiment").select("ticker", date="available_at", news="value")
    return (
        panel.filter(pl.col("ticker") != CONFIG.benchmark_ticker)
        .join(bench, on="date")
        .join(market.truth.betas, on="ticker")
        .join(news, on=["ticker", "date"], how="left")
        .with_columns(resid=pl.col("ret") - pl.col("beta") * pl.col("bench"))
        .drop_nulls("resid")
        .sort("ticker", "date")
    )


def test_listed_count_stays_at_n_tickers_and_the_delisted_keep_their_history(market: SimulatedMarket) -> None:
    equities = market.universe.filter(~pl.col("is_benchmark"))
    per_day = market.prices.join(equities, on="ticker", how="semi").group_by("date").len()["len"]
    assert 0.9 * CONFIG.n_tickers <= per_day.min() and per_day.max() <= 1.1 * CONFIG.n_tickers
    delisted = equities.filter(pl.col("delisted_date").is_not_null())
    assert delisted.height == round(CONFIG.delisting_fraction * CONFIG.n_tickers)
    history = market.prices.join(delisted, on="ticker").group_by("ticker").agg(days=pl.len())
    assert history.height == delisted.height and history["days"].min() >= 504
    late = equities.filter(pl.col("listed_date") > CONFIG.start)
    assert sorted(late["listed_date"]) > sorted(delisted["delisted_date"])  # each replacement lists after a delisting


def momentum_bets(residuals: pl.DataFrame) -> pl.DataFrame:
    """Every 5th day: side = sign of the trailing 20-day return; did the bet touch +WIDTH sigma
    sqrt(HORIZON) before -WIDTH sigma sqrt(HORIZON) within HORIZON days (sigma: 20-day vol)?"""
    cum = pl.col("ret").cum_sum().over("ticker")
    frame = residuals.with_columns(
        cum=cum, side=pl.col("ret").rolling_sum(20).over("ticker").sign(),
        barrier=WIDTH * pl.col("ret").rolling_std(20).over("ticker") * np.sqrt(HORIZON),
        day=pl.int_range(pl.len()).over("ticker"),
    )
    moves = [((pl.col("cum").shift(-k).over("ticker") - pl.col("cum")) * pl.col("side")).alias(f"m{k}")
             for k in range(1, HORIZON + 1)]
    frame = frame.with_columns(moves).filter(pl.col("day") % 5 == 0).drop_nulls(["barrier", f"m{HORIZON}"])
    path = frame.select(f"m{k}" for k in range(1, HORIZON + 1)).to_numpy()
    barrier = frame["barrier"].to_numpy()[:, None]
    first_up = np.where((path >= barrier).any(1), (path >= barrier).argmax(1), HORIZON + 1)
    first_down = np.where((path <= -barrier).any(1), (path <= -barrier).argmax(1), HORIZON + 1)
    return frame.select("ticker", "date", agree=pl.col("side") * pl.col("news")).with_columns(
        hit=pl.Series(first_up < first_down), touched=pl.Series(np.minimum(first_up, first_down) <= HORIZON)
    ).filter("touched")


def test_meta_label_sentiment_agreement_predicts_the_momentum_bets_outcome(
    market: SimulatedMarket, residuals: pl.DataFrame
) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    meta = market.truth.meta_label
    assert meta["feature"] == "news_sentiment" and meta["sign"] == 1 and meta["strength"] > 0
    bets = momentum_bets(residuals).sort("date", "ticker")
    rates = dict(bets.group_by(pl.col("agree") > 0).agg(pl.col("hit").mean()).iter_rows())
    assert rates[True] > rates[False] + 0.05
    train, test = bets.filter(pl.col("date") < date(2020, 1, 1)), bets.filter(pl.col("date") >= date(2020, 1, 1))
    noise = np.random.default_rng(0).standard_normal((bets.height, 1))
    n_train = train.height
    for features, lo, hi in ((bets.select("agree").to_numpy(), 0.55, 1.0), (noise, 0.0, 0.53)):
        model = LogisticRegression().fit(features[:n_train], train["hit"].to_numpy())
        auc = roc_auc_score(test["hit"].to_numpy(), model.predict_proba(features[n_train:])[:, 1])
        assert lo < auc < hi, auc


def test_predictable_tickers_beat_the_naive_forecast_out_of_sample_and_the_others_do_not(
    market: SimulatedMarket, residuals: pl.DataFrame
) -> None:
    planted = market.truth.predictable
    assert planted.schema == pl.Schema({"ticker": pl.String, "kind": pl.String, "strength": pl.Float64})
    assert planted.height == round(CONFIG.predictable_fraction * (market.universe.height - 1))
    assert (planted["kind"] == "ar1_idio").all() and (planted["strength"] == CONFIG.predictable_phi).all()
    frame = residuals.with_columns(lag=pl.col("resid").shift(1).over("ticker")).drop_nulls("lag").with_columns(
        train=pl.col("date") < date(2020, 1, 1), planted=pl.col("ticker").is_in(planted["ticker"].to_list())
    )
    slope = frame.filter("train").group_by("ticker").agg(phi=(pl.col("resid") * pl.col("lag")).sum() / (pl.col("lag") ** 2).sum())
    scored = frame.filter(~pl.col("train")).join(slope, on="ticker").group_by("ticker", "planted").agg(
        gain=1 - ((pl.col("resid") - pl.col("phi") * pl.col("lag")) ** 2).sum() / (pl.col("resid") ** 2).sum()
    )
    gain = dict(scored.group_by("planted").agg(pl.col("gain").mean()).iter_rows())
    assert gain[True] > 0.02 and gain[False] < 0.002, gain
    assert scored.filter(pl.col("planted"))["gain"].min() > 0


def test_drift_change_points_show_in_the_realized_drift(market: SimulatedMarket, residuals: pl.DataFrame) -> None:
    points = market.truth.drift_change_points
    assert points.height >= 3 and (points["drift_before"] * points["drift_after"] < 0).all()
    realized = residuals.join(points.select("ticker", cp="date"), on="ticker").filter(
        (pl.col("date") - pl.col("cp")).dt.total_days().abs() <= 365
    ).group_by("ticker").agg(
        before=pl.col("resid").filter(pl.col("date") < pl.col("cp")).mean(),
        after=pl.col("resid").filter(pl.col("date") >= pl.col("cp")).mean(),
    ).join(points, on="ticker")
    same = ((realized["after"] - realized["before"]) * (realized["drift_after"] - realized["drift_before"]) > 0).mean()
    assert same >= 0.8


def test_market_change_points_show_in_the_benchmark(market: SimulatedMarket) -> None:
    points = market.truth.market_change_points
    assert points["kind"].to_list() == ["drift", "drift", "vol", "vol"]
    bench = market.prices.filter(pl.col("ticker") == CONFIG.benchmark_ticker).with_columns(
        ret=pl.col("close").log().diff()
    ).join(market.truth.regime, on="date").filter(pl.col("state") == 0)

    inside = pl.col("date").is_between(date(2020, 1, 2), date(2022, 1, 3), closed="left")
    vol_inside, vol_outside = bench.filter(inside)["ret"].std(), bench.filter(~inside)["ret"].std()
    assert vol_inside > 1.25 * vol_outside
    drift = pl.col("date").is_between(date(2016, 1, 4), date(2018, 1, 2), closed="left")
    assert bench.filter(drift)["ret"].mean() > bench.filter(~drift & ~inside)["ret"].mean()


def test_crypto_and_fx_are_opt_in_with_their_own_calendars_and_vol() -> None:
    config = SimulationConfig(n_tickers=10, seed=4, n_crypto=2, n_fx=2)
    market = simulate_market(config, end=date(2012, 12, 31))
    schemas.PricesSchema.validate(market.prices)
    classes = dict(market.universe.group_by("asset_class").len().iter_rows())
    assert classes["crypto"] == 2 and classes["fx"] == 2
    assert simulate_market(CONFIG).universe.filter(pl.col("asset_class").is_in(["crypto", "fx"])).height == 0
    by_class = market.prices.join(market.universe.select("ticker", "asset_class"), on="ticker").sort("ticker", "date")
    weekday = by_class.group_by("asset_class").agg(weekend=(pl.col("date").dt.weekday() >= 6).sum(),
                                                   vol=pl.col("close").log().diff().over("ticker").std())
    stats = {row["asset_class"]: row for row in weekday.iter_rows(named=True)}
    assert stats["crypto"]["weekend"] > 0 and stats["fx"]["weekend"] == 0 and stats["equity"]["weekend"] == 0
    assert stats["crypto"]["vol"] > 1.5 * stats["equity"]["vol"] > 3 * stats["fx"]["vol"]
