"""PPO on a planted portfolio environment; the environment passes gymnasium's checker."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from quant_lib.models.portfolio_env import PortfolioEnv
from quant_lib.models.ppo import PPOAgent, PPOConfig

torch.set_num_threads(1)


def _returns(n: int = 600, drift: float = 0.004, seed: int = 0) -> np.ndarray:
    """Three assets with the same 1% daily vol; only asset 0 drifts upward."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, 0.01, (n, 3))
    r[:, 0] += drift
    return r


@pytest.mark.parametrize("reward", ["log_return", "differential_sharpe"])
def test_env_passes_gymnasium_checker_and_charges_costs(reward: str) -> None:
    env = PortfolioEnv(_returns(), window=5, reward=reward, episode_length=50, transaction_cost=0.01)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    assert obs.shape == env.observation_space.shape
    _, _, _, _, info = env.step(np.array([1.0, 0.0, 0.0, 0.0]))
    assert info["turnover"] == pytest.approx(2.0) and info["cost"] == pytest.approx(0.02)
    t = env.t - 1
    assert info["net_return"] == pytest.approx(np.exp(env.returns[t, 0]) - 1 - 0.02)
    with pytest.raises(ValueError, match="too few"):
        PortfolioEnv(_returns(20), window=10, episode_length=15)


def test_select_and_evaluate_actions() -> None:
    agent = PPOAgent(obs_dim=8, n_actions=4)
    result = agent.select_action(np.zeros(8, np.float32))
    assert result.action.shape == (4,) and float(result.action.sum()) == pytest.approx(1.0)
    assert (result.action > 0).all() and torch.isfinite(result.log_prob)
    states = torch.randn(5, 8)
    actions = torch.distributions.Dirichlet(torch.ones(4)).sample((5,))
    log_probs, values, entropy = agent.evaluate_actions(states, actions)
    assert log_probs.shape == values.shape == entropy.shape == (5,)


def test_ppo_learns_to_overweight_the_drifting_asset() -> None:
    env = PortfolioEnv(_returns(), window=5, episode_length=64, transaction_cost=0.0005)
    # Weights do not move prices, so a short discount horizon (gamma 0.5) keeps advantages sharp.
    config = PPOConfig(rollout_steps=128, lr=3e-3, epochs=4, gamma=0.5)
    agent = PPOAgent(env.observation_space.shape[0], 4, hidden=32, config=config, seed=0)
    before = _mean_weights(agent, env)
    agent.learn(env, total_steps=128 * 20, seed=0)
    after = _mean_weights(agent, env)
    assert after[0] > 0.5 and after[0] > before[0] + 0.2, (before, after)


def _mean_weights(agent: PPOAgent, env: PortfolioEnv) -> np.ndarray:
    obs, _ = env.reset(seed=123)
    weights = []
    for _ in range(50):
        action = agent.select_action(obs, deterministic=True).action.numpy()
        weights.append(action)
        obs, _, _, truncated, _ = env.step(action)
        if truncated:
            obs, _ = env.reset()
    return np.mean(weights, axis=0)
