"""PPO as a trainable allocator: train on the first part of the symbols' returns, test on the rest.

Data: ``returns`` [T, N] one-bar log returns of N symbols, rows in time order. Split: the first
``1 - test_fraction`` of the rows train the agent on ``PortfolioEnv`` (reward: net log return,
``transaction_cost`` per unit of turnover); the test block is the last ``test_fraction`` of the
rows (its observation window reaches back ``window`` rows, the agent never trained on them).

Evidence for the promotion gate (``promotion_decision``; lower loss is better):
- ``oos_loss`` = -mean net log return per bar of the deterministic policy (the Dirichlet mean)
  over the test block, costs included;
- ``naive_loss`` = the same for equal weight over the N symbols (no cash), rebalanced every bar
  through the same env and costs: the allocator must beat 1/N (DeMiguel et al. 2009);
- ``improvement_tstat``: Newey-West t-statistic of the per-bar log-return difference
  (policy - equal weight).
The checkpoint is ``torch.save`` bytes of a plain dict (``load_agent`` rebuilds the agent with
``weights_only=True``); it names the symbols, so a champion trained on other symbols is not
compared (its loss is None).
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from quant_lib.models.portfolio_env import PortfolioEnv
from quant_lib.models.ppo import PPOAgent, PPOConfig
from quant_lib.models.walk_forward import newey_west_tstat

PPO_FORMAT = 1


@dataclass(frozen=True)
class PPOTrainingConfig:
    window: int = 10
    test_fraction: float = 0.2
    transaction_cost: float = 0.001
    episode_length: int = 60
    total_steps: int = 4_096
    rollout_steps: int = 256
    hidden: int = 32
    lr: float = 3e-3
    gamma: float = 0.5
    """Weights do not move prices, so a short discount horizon keeps the advantages sharp."""
    seed: int = 0


def split_returns(returns: np.ndarray, config: PPOTrainingConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """(train rows, test rows with their ``window`` rows of history, index of the first test row)."""
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim != 2 or returns.shape[1] < 1 or not np.isfinite(returns).all():
        raise ValueError(f"returns must be a finite [T, N] array, got shape {returns.shape}")
    cut = int(len(returns) * (1.0 - config.test_fraction))
    test_rows = len(returns) - cut
    if cut < config.window + 3 or test_rows < 10:
        raise ValueError(f"{len(returns)} bars are too few for PPO: need {config.window + 3} training bars and 10 "
                         f"test bars (window={config.window}, test_fraction={config.test_fraction})")
    return returns[:cut], returns[cut - config.window - 1:], cut


def _test_env(test: np.ndarray, config: PPOTrainingConfig) -> PortfolioEnv:
    return PortfolioEnv(test, window=config.window, transaction_cost=config.transaction_cost,
                        episode_length=len(test) - config.window - 1)


def run_policy(policy, test: np.ndarray, config: PPOTrainingConfig) -> np.ndarray:
    """Per-bar net log returns of ``policy(observation) -> weights`` over the whole test block."""
    env = _test_env(test, config)
    observation, _ = env.reset(seed=0)
    out, done = [], False
    while not done:
        observation, _, terminated, truncated, info = env.step(policy(observation))
        out.append(math.log1p(max(info["net_return"], -0.999999)))
        done = terminated or truncated
    return np.array(out)


def equal_weight(n_assets: int):
    weights = np.r_[np.full(n_assets, 1.0 / n_assets), 0.0]
    return lambda observation: weights


def agent_policy(agent: PPOAgent):
    return lambda observation: agent.select_action(observation, deterministic=True).action.numpy()


def score(agent: PPOAgent, test: np.ndarray, config: PPOTrainingConfig) -> dict[str, float]:
    policy = run_policy(agent_policy(agent), test, config)
    naive = run_policy(equal_weight(test.shape[1]), test, config)
    return {"oos_loss": -float(policy.mean()), "naive_loss": -float(naive.mean()), "n_test": float(policy.size),
            "improvement_tstat": newey_west_tstat(policy - naive, lags=5),
            "policy_log_return": float(policy.sum()), "equal_weight_log_return": float(naive.sum())}


def train_ppo(returns: np.ndarray, symbols: list[str], config: PPOTrainingConfig = PPOTrainingConfig()) -> tuple[PPOAgent, dict[str, float]]:
    """Train on the training rows, score on the test block (see the module docstring)."""
    torch.manual_seed(config.seed)
    train, test, cut = split_returns(returns, config)
    episode = max(1, min(config.episode_length, len(train) - config.window - 2))
    env = PortfolioEnv(train, window=config.window, transaction_cost=config.transaction_cost, episode_length=episode)
    agent = PPOAgent(env.observation_space.shape[0], len(symbols) + 1, hidden=config.hidden, seed=config.seed,
                     config=PPOConfig(lr=config.lr, gamma=config.gamma, rollout_steps=config.rollout_steps, batch_size=64))
    agent.learn(env, config.total_steps, seed=config.seed)
    metrics = score(agent, test, config)
    metrics.update(n_train=float(cut), oos_vs_naive=metrics["oos_loss"] / metrics["naive_loss"] if metrics["naive_loss"] else math.nan)
    return agent, metrics


def save_agent(agent: PPOAgent, symbols: list[str], config: PPOTrainingConfig, extra: dict[str, Any]) -> bytes:
    actor_in = agent.actor[0]
    payload = {"format": PPO_FORMAT, "architecture": "ppo", "obs_dim": actor_in.in_features,
               "n_actions": agent.actor[-1].out_features, "hidden": actor_in.out_features, "symbols": list(symbols),
               "config": asdict(config), "state_dict": agent.state_dict(), "extra": extra}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_agent(data: bytes) -> tuple[PPOAgent, dict[str, Any]]:
    """Rebuild a saved agent; ValueError for a checkpoint that is not a PPO agent's."""
    checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or checkpoint.get("architecture") != "ppo":
        raise ValueError("not a PPO checkpoint (architecture "
                         f"{checkpoint.get('architecture') if isinstance(checkpoint, dict) else type(checkpoint).__name__!r})")
    agent = PPOAgent(checkpoint["obs_dim"], checkpoint["n_actions"], hidden=checkpoint["hidden"])
    agent.load_state_dict(checkpoint["state_dict"])
    return agent.eval(), checkpoint


def evaluate_agent(data: bytes, returns: np.ndarray, symbols: list[str], config: PPOTrainingConfig) -> float | None:
    """A stored agent's ``oos_loss`` on this test block; None when it was trained on other symbols."""
    agent, checkpoint = load_agent(data)
    if checkpoint["symbols"] != list(symbols) or checkpoint["config"].get("window") != config.window:
        return None
    return score(agent, split_returns(returns, config)[1], config)["oos_loss"]


def train_task(payload: dict[str, Any]) -> dict[str, Any]:
    """PPO training as a picklable unit of work for the ``compute`` resource. ``payload``:
    returns [T, N], symbols, times [T] (labels of the rows), config (``PPOTrainingConfig``)."""
    torch.set_num_threads(int(payload.get("threads", 1)))
    config, times = payload["config"], payload["times"]
    agent, metrics = train_ppo(payload["returns"], payload["symbols"], config)
    cut = int(metrics["n_train"])
    period = [str(times[cut])[:19], str(times[-1])[:19]]
    checkpoint = save_agent(agent, payload["symbols"], config, {"metrics": metrics, "test_period": period})
    return {"architecture": "ppo", "model": payload["model"], "checkpoint": checkpoint, "metrics": metrics, "test_period": period}
