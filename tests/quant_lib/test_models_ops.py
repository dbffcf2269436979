"""Promotion gate, ensemble weights, retrain triggers, inference on a stored model."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
import torch

from quant_lib.data.simulate import SimulationConfig, simulate_market
from quant_lib.features import FeaturePipeline
from quant_lib.models.ensemble import ensemble_weights, realized_strategy_returns
from quant_lib.models.inference import evaluate_checkpoint, predict_panel
from quant_lib.models.promotion import promotion_decision
from quant_lib.models.retrain import RetrainConfig, retrain_triggers
from quant_lib.models.walk_forward import WalkForwardConfig, train_task

torch.set_num_threads(1)


def test_promotion_gate() -> None:
    assert promotion_decision(0.9, 1.0).promote
    assert not promotion_decision(1.0, 1.0).promote
    assert not promotion_decision(float("nan"), 1.0).promote
    assert not promotion_decision(0.99, 1.0, naive_margin=0.02).promote
    assert promotion_decision(0.95, 1.0, champion_loss=0.92, champion_margin=0.05).promote
    decision = promotion_decision(0.97, 1.0, champion_loss=0.92, champion_margin=0.05)
    assert not decision.promote and "champion" in decision.reason
    assert promotion_decision(-1.0, -0.5).promote  # Sharpe losses are negative: -1 beats -0.5
    assert not promotion_decision(-0.4, -0.5).promote
    assert promotion_decision(0.9, 1.0, tstat=2.5, min_tstat=1.0).promote
    assert not promotion_decision(0.9, 1.0, tstat=0.4, min_tstat=1.0).promote
    assert not promotion_decision(0.9, 1.0, tstat=float("nan"), min_tstat=1.0).promote


def test_retrain_triggers_respect_min_samples() -> None:
    config = RetrainConfig(interval=20, sharpe_threshold=0.0, cp_score_threshold=0.8, min_samples=10)
    assert retrain_triggers(5, -3.0, 50, 0.99, config) == []
    assert retrain_triggers(25, 1.0, 50, 0.1, config) == ["interval"]
    assert retrain_triggers(12, -0.5, 50, 0.1, config) == ["sharpe"]
    assert retrain_triggers(12, -0.5, 5, 0.1, config) == []
    assert retrain_triggers(12, None, 0, 0.95, config) == ["bocpd"]
    assert retrain_triggers(30, -1.0, 30, 0.9, config) == ["interval", "sharpe", "bocpd"]


def test_ensemble_weights_follow_realized_sharpe_without_look_ahead() -> None:
    days = [date(2024, 1, 1) + timedelta(days=i) for i in range(60)]
    rng = np.random.default_rng(0)
    close = np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    prices = pl.DataFrame({"date": days, "ticker": "X", "close": close})
    nxt = np.r_[np.sign(np.diff(np.log(close))), 0.0]
    predictions = pl.concat([
        pl.DataFrame({"date": days, "ticker": "X", "model": "oracle", "signal": nxt}),
        pl.DataFrame({"date": days, "ticker": "X", "model": "contrarian", "signal": -nxt}),
        pl.DataFrame({"date": days, "ticker": "X", "model": "late", "signal": nxt}).filter(pl.col("date") > days[50]),
    ])
    returns = realized_strategy_returns(predictions, prices)
    assert returns.filter(pl.col("model") == "oracle")["date"].max() == days[-2]  # last bar not realized yet
    weights = ensemble_weights(returns, ["oracle", "contrarian", "late"], days[40:], lookback=30, min_obs=20)
    last = weights.filter(pl.col("date") == days[-1])
    assert last.filter(pl.col("model") == "oracle")["weight"][0] == pytest.approx(1.0)
    assert last.filter(pl.col("model") == "contrarian")["weight"][0] == 0.0
    assert last.filter(pl.col("model") == "late")["n_obs"][0] < 20
    assert weights.group_by("date").agg(pl.col("weight").sum())["weight"].to_list() == pytest.approx([1.0] * 20)
    early = ensemble_weights(returns, ["oracle"], [days[10]], min_obs=20)
    assert early["weight"][0] == 0.0 and early["status"][0].startswith("no model")
    cut = ensemble_weights(realized_strategy_returns(predictions.filter(pl.col("date") < days[45]), prices.filter(pl.col("date") <= days[45])),
                           ["oracle"], [days[45]], lookback=30, min_obs=20)
    full = weights.filter((pl.col("date") == days[45]) & (pl.col("model") == "oracle"))
    assert cut["sharpe"][0] == pytest.approx(full["sharpe"][0])


def test_stored_model_predicts_and_is_scored_on_a_block() -> None:
    market = simulate_market(SimulationConfig(n_tickers=5, seed=2), end=date(2007, 6, 29))
    prices = market.prices.drop("adj_close")
    pipeline = FeaturePipeline(include_bocpd=False, zscore_window=60)
    X, y = pipeline.fit_transform(prices)
    index = pipeline.index_
    config = WalkForwardConfig(seq_len=10, forecast_horizon=3, val_dates=40, test_dates=40, max_epochs=1,
                               model_kwargs=dict(d_model=8, n_heads=2, n_layers=1, d_ff=16))
    out = train_task(dict(architecture="transformer", X=X, y=y, dates=index["date"].to_numpy(),
                          groups=index["ticker"].to_numpy(), config=config, feature_names=pipeline.feature_names))
    first, last = (date.fromisoformat(d) for d in out["test_period"])
    loss, naive, n = evaluate_checkpoint(out["checkpoint"], pipeline.get_state(), prices, first, last)
    assert n == out["metrics"]["n_test"]
    assert loss == pytest.approx(out["metrics"]["oos_loss"], rel=1e-4) and naive == pytest.approx(out["metrics"]["naive_loss"], rel=1e-6)
    day = prices["date"].max()
    panel = predict_panel(out["checkpoint"], pipeline.get_state(), prices, day, day)
    assert panel.height == prices.filter(pl.col("date") == day).height and math.isfinite(panel["prediction"].sum())


def test_promotion_without_a_t_statistic_is_refused_with_a_readable_reason():
    missing = promotion_decision(loss=0.9, naive_loss=1.0, tstat=None, min_tstat=1.0)
    weak = promotion_decision(loss=0.9, naive_loss=1.0, tstat=0.3402517, min_tstat=1.0)
    assert not missing.promote and "t = none < 1" in missing.reason
    assert not weak.promote and weak.reason.endswith("t = 0.34 < 1")
