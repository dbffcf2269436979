"""PPO as a trainable allocator: out-of-sample test against equal weight, checkpoint round trip,
clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quant_lib.models.ppo_training import (
    PPOTrainingConfig,
    equal_weight,
    evaluate_agent,
    load_agent,
    run_policy,
    save_agent,
    split_returns,
    train_task,
)
from quant_lib.models.promotion import promotion_decision

SYMBOLS = ["DRIFT", "FLAT1", "FLAT2"]
CONFIG = PPOTrainingConfig(window=5, episode_length=64, rollout_steps=128, total_steps=128 * 20, transaction_cost=0.0005)


def _returns(n: int = 750, drift: float = 0.004, seed: int = 0) -> np.ndarray:
    """Three assets with the same 1% vol per bar; only the first drifts upward (planted)."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, (n, 3))
    r[:, 0] += drift
    return r


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    returns = _returns()
    result = train_task({"model": "ppo", "returns": returns, "symbols": SYMBOLS, "times": np.arange(len(returns)),
                         "config": CONFIG})
    return returns, result


def test_planted_drift_beats_equal_weight_out_of_sample_and_passes_the_gate(trained) -> None:
    returns, result = trained
    m = result["metrics"]
    assert m["n_train"] == 600 and m["n_test"] == 150  # last 20% of the bars, never trained on
    assert m["oos_loss"] < m["naive_loss"] and m["improvement_tstat"] >= 1.0, m
    assert promotion_decision(m["oos_loss"], m["naive_loss"], None, 0.0, 0.05, m["improvement_tstat"], 1.0).promote
    agent, _ = load_agent(result["checkpoint"])
    test = split_returns(returns, CONFIG)[1]
    weights = [agent.select_action(obs, deterministic=True).action.numpy() for obs in _observations(test)]
    assert np.mean(weights, axis=0)[0] > 0.5  # overweights the drifting asset


def _observations(test: np.ndarray) -> list[np.ndarray]:
    seen = []
    run_policy(lambda obs: seen.append(obs) or equal_weight(3)(obs), test, CONFIG)
    return seen


def test_naive_loss_is_equal_weights_mean_net_log_return(trained) -> None:
    returns, result = trained
    test = split_returns(returns, CONFIG)[1][CONFIG.window:]
    # the first bar buys in from cash (turnover 1), then drift back to 1/3 each is traded away
    weights = np.full(3, 1.0 / 3)
    growth, previous, net = np.exp(test[:-1]), np.r_[np.zeros(3), 1.0], []
    for g in growth:
        turnover = np.abs(np.r_[weights, 0.0] - previous).sum()
        net.append(np.log1p(weights @ g - 1.0 - CONFIG.transaction_cost * turnover))
        drifted = weights * g
        previous = np.r_[drifted / drifted.sum(), 0.0]
    assert result["metrics"]["naive_loss"] == pytest.approx(-np.mean(net), rel=1e-9)


def test_checkpoint_round_trip_and_champion_scoring(trained) -> None:
    returns, result = trained
    assert evaluate_agent(result["checkpoint"], returns, SYMBOLS, CONFIG) == pytest.approx(result["metrics"]["oos_loss"])
    assert evaluate_agent(result["checkpoint"], returns, ["A", "B", "C"], CONFIG) is None  # other symbols: not comparable
    with pytest.raises(ValueError, match="not a PPO checkpoint"):
        buffer = __import__("io").BytesIO()
        torch.save({"architecture": "lstm"}, buffer)
        load_agent(buffer.getvalue())
    agent, checkpoint = load_agent(save_agent(load_agent(result["checkpoint"])[0], SYMBOLS, CONFIG, {}))
    assert checkpoint["symbols"] == SYMBOLS


def test_too_few_bars_and_bad_returns_are_named() -> None:
    with pytest.raises(ValueError, match="too few for PPO"):
        split_returns(_returns(30), CONFIG)
    bad = _returns(200)
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="finite"):
        split_returns(bad, CONFIG)
