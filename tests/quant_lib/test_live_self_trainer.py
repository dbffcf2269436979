"""SelfTrainer: lifecycle, deterministic resume, retrain accept/reject, risk breach, feature failure."""

import logging
import re

import numpy as np
import pytest
import torch

from quant_lib.execution import duplicate_client_order_ids
from quant_lib.live import LiveConfig, synthetic_bars
from quant_lib.live.retrain import make_trainer as make_model_trainer
from quant_lib.live.retrain import retrain_model
from quant_lib.risk.limits import RiskLimits, RiskManager
from tests.quant_lib.live_helpers import MemorySink, MemoryStore, bar_dicts, make_trainer, tiny_models


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


BARS = bar_dicts(synthetic_bars(["AAA", "BBB"], n_bars=160, seed=3))


def test_process_bar_before_start_raises():
    with pytest.raises(RuntimeError, match="before start"):
        make_trainer().process_bar(BARS[0])


def test_resume_from_checkpoint_continues_exactly(caplog):
    config = LiveConfig(retrain_enabled=False, checkpoint_interval=0, close_on_shutdown=False)
    straight = make_trainer(config=config)
    straight.start()
    results = [straight.process_bar(b) for b in BARS]
    assert sum(len(r["fills"]) for r in results) > 0
    store, sink = MemoryStore(), MemorySink()
    first = make_trainer(store, sink, config)
    first.start()
    for bar in BARS[:90]:
        first.process_bar(bar)
    first.shutdown()
    weights = dict(first.strategy.weights)
    second = make_trainer(store, sink, config)
    with caplog.at_level(logging.INFO):
        second.start()
    assert "Resumed from checkpoint at bar_counter=90" in caplog.text
    assert second.strategy.weights == pytest.approx(weights)
    assert second.process_bar(BARS[89])["skipped"]
    resumed = [second.process_bar(b) for b in BARS[90:]]
    assert resumed[-1]["bar_counter"] == len(BARS)
    assert resumed[-1]["equity"] == pytest.approx(results[-1]["equity"], rel=1e-12)
    assert second.strategy.weights == pytest.approx(straight.strategy.weights)
    second.shutdown()
    assert duplicate_client_order_ids(sink.events()) == []


def test_aggressive_retrain_logs_trigger_and_verdicts(caplog):
    config = LiveConfig(retrain_interval=100, retrain_min_samples=90, sharpe_threshold=1e6, sharpe_window=20,
                        checkpoint_interval=0)
    trainer = make_trainer(config=config)
    trainer.start()
    weights_before_retrain = None
    with caplog.at_level(logging.INFO):
        for bar in BARS[:100]:
            result = trainer.process_bar(bar)
            if result["retrained"]:
                weights_before_retrain = dict(trainer.strategy.weights)
    assert re.search(r"Retrain triggered at bar 90 \| reasons: sharpe \(-?\d+\.\d\d < 1000000\.00\)", caplog.text)
    verdicts = [m for m in caplog.messages if m.startswith("Retrain '")]
    assert len(verdicts) == 4 and all(("ACCEPTED" in m) or ("REJECTED" in m) for m in verdicts)
    assert trainer.retrain_count == 1
    assert trainer.strategy.weights != pytest.approx(weights_before_retrain)


def test_rejected_retrain_restores_weights(caplog):
    model = tiny_models(names=("lstm",))["lstm"]
    trainer = make_model_trainer(model, 1e-3, 0)
    original = {k: v.clone() for k, v in model.state_dict().items()}

    def ruin(*args, **kwargs):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.add_(5.0)
        return {}

    trainer.continue_training = ruin
    rng = np.random.default_rng(0)
    parts = [(rng.standard_normal((80, 7)), rng.standard_normal(80) * 0.01)]
    with caplog.at_level(logging.INFO):
        outcome = retrain_model("lstm", trainer, parts, 1, 0.1, 16, 0.25, 0)
    assert not outcome.accepted and outcome.val_loss_after > outcome.val_loss_before
    assert "Retrain 'lstm' REJECTED" in caplog.text
    for key, value in model.state_dict().items():
        assert torch.equal(value, original[key])


def test_feature_failure_during_retrain_skips_cycle(caplog):
    config = LiveConfig(retrain_interval=40, retrain_min_samples=40, checkpoint_interval=0)
    trainer = make_trainer(config=config)

    def broken(frame):
        raise ValueError("feature pipeline exploded")

    trainer.features.training_set = broken
    trainer.start()
    before = {k: v.clone() for k, v in trainer.models["lstm"].state_dict().items()}
    with caplog.at_level(logging.INFO):
        for bar in BARS[:45]:
            trainer.process_bar(bar)
    assert "Feature pipeline failed during retrain at bar 40; retrain skipped this cycle" in caplog.text
    assert trainer.retrain_count == 0
    assert all(torch.equal(v, before[k]) for k, v in trainer.models["lstm"].state_dict().items())


def test_tight_risk_limits_stop_new_trades(caplog):
    from quant_lib.strategies import MovingAverageCrossStrategy

    trainer = make_trainer(
        risk_manager=RiskManager(RiskLimits(max_drawdown=1e-5, daily_loss_limit=1e-5)),
        config=LiveConfig(retrain_enabled=False, checkpoint_interval=0, use_stops=False, cooldown_bars=0),
    )
    trainer.strategy = MovingAverageCrossStrategy(fast=3, slow=8)
    trainer.sizer = type(trainer.sizer)(method="fixed_fraction", fixed_fraction=0.1, max_position_pct=0.5)
    trainer.start()
    with caplog.at_level(logging.INFO):
        results = [trainer.process_bar(b) for b in BARS]
    assert "Max drawdown breached" in caplog.text or "Daily loss limit breached" in caplog.text
    assert "Risk breached; skipping signal" in caplog.text
    first_breach = next(i for i, r in enumerate(results) if not r["risk_ok"])
    breached = [r for r in results[first_breach:] if not r["risk_ok"]]
    assert len(breached) > 50
    assert all(f["side"] == "sell" for r in breached for f in r["fills"])
    assert results[-1]["equity"] < 100_000.0 * 1.05
