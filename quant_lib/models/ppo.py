"""PPOAgent: actor-critic with a Dirichlet policy over portfolio weights (Schulman et al. 2017).

The actor outputs Dirichlet concentrations alpha = softplus(f(s)) + 0.1, so sampled weights are
on the simplex by construction (a softmax over Gaussian actions pulls towards equal weights). The
critic estimates V(s). Updates: GAE(lambda) advantages A_t = sum_k (gamma lambda)^k delta_t+k,
delta_t = r_t + gamma V(s_t+1) - V(s_t); loss = -E[min(rho A, clip(rho, 1 - eps, 1 + eps) A)] +
c_v (V - R)^2 - c_e H[pi], rho = pi(a|s) / pi_old(a|s).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import Dirichlet


class ActionResult(NamedTuple):
    action: torch.Tensor
    log_prob: torch.Tensor
    value: torch.Tensor


class EvalResult(NamedTuple):
    log_probs: torch.Tensor
    values: torch.Tensor
    entropy: torch.Tensor


@dataclass(frozen=True)
class PPOConfig:
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    lr: float = 3e-4
    epochs: int = 4
    batch_size: int = 64
    rollout_steps: int = 256
    max_grad_norm: float = 0.5


class PPOAgent(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, config: PPOConfig = PPOConfig(), seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.config = config
        self.actor = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_actions))
        self.critic = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(seed)

    def _distribution(self, states: torch.Tensor) -> Dirichlet:
        return Dirichlet(nn.functional.softplus(self.actor(states)) + 0.1)

    @torch.no_grad()
    def select_action(self, state: np.ndarray | torch.Tensor, deterministic: bool = False) -> ActionResult:
        """Sample weights (sum 1) for one state; ``deterministic`` returns the Dirichlet mean."""
        s = torch.as_tensor(state, dtype=torch.float32).unsqueeze(0)
        dist = self._distribution(s)
        if deterministic:
            action = dist.mean
        else:
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=self.generator)))
            action = dist.sample()
        action = action.clamp_min(1e-6)
        action = action / action.sum(-1, keepdim=True)
        return ActionResult(action[0], dist.log_prob(action)[0], self.critic(s)[0, 0])

    def evaluate_actions(self, states: torch.Tensor, actions: torch.Tensor) -> EvalResult:
        dist = self._distribution(states)
        return EvalResult(dist.log_prob(actions), self.critic(states).squeeze(-1), dist.entropy())

    def _advantages(self, rewards: np.ndarray, values: np.ndarray, dones: np.ndarray, last_value: float) -> np.ndarray:
        c = self.config
        advantages = np.zeros_like(rewards)
        running = 0.0
        for t in range(len(rewards) - 1, -1, -1):
            next_value = last_value if t == len(rewards) - 1 else values[t + 1]
            mask = 1.0 - dones[t]
            delta = rewards[t] + c.gamma * next_value * mask - values[t]
            running = delta + c.gamma * c.gae_lambda * mask * running
            advantages[t] = running
        return advantages

    def update(self, rollout: dict[str, Any]) -> dict[str, float]:
        """PPO epochs over one rollout (``states, actions, log_probs, rewards, values, dones, last_value``)."""
        c = self.config
        advantages = self._advantages(rollout["rewards"], rollout["values"], rollout["dones"], rollout["last_value"])
        returns = torch.as_tensor(advantages + rollout["values"], dtype=torch.float32)
        adv = torch.as_tensor(advantages, dtype=torch.float32)
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        states, actions = rollout["states"], rollout["actions"]
        old_log_probs = rollout["log_probs"]
        n = len(adv)
        stats = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0}
        for _ in range(c.epochs):
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, c.batch_size):
                idx = order[start : start + c.batch_size]
                log_probs, values, entropy = self.evaluate_actions(states[idx], actions[idx])
                ratio = torch.exp(log_probs - old_log_probs[idx])
                clipped = torch.clamp(ratio, 1 - c.clip, 1 + c.clip)
                policy_loss = -torch.min(ratio * adv[idx], clipped * adv[idx]).mean()
                value_loss = (values - returns[idx]).pow(2).mean()
                loss = policy_loss + c.value_coef * value_loss - c.entropy_coef * entropy.mean()
                self.optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(self.parameters(), c.max_grad_norm)
                self.optimizer.step()
                stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.mean().item()}
        return stats

    def collect(self, env, state: np.ndarray, steps: int) -> tuple[dict[str, Any], np.ndarray, list[float]]:
        """Run the current policy for ``steps`` steps; returns the rollout, the next state and the
        total rewards of the episodes that finished."""
        buf: dict[str, list] = {k: [] for k in ("states", "actions", "log_probs", "rewards", "values", "dones")}
        finished, episode = [], 0.0
        for _ in range(steps):
            result = self.select_action(state)
            next_state, reward, terminated, truncated, _ = env.step(result.action.numpy())
            for key, value in zip(buf, (state, result.action, result.log_prob, reward, float(result.value), float(terminated or truncated))):
                buf[key].append(value)
            episode += reward
            state = next_state
            if terminated or truncated:
                finished.append(episode)
                episode = 0.0
                state, _ = env.reset()
        rollout = {
            "states": torch.as_tensor(np.array(buf["states"]), dtype=torch.float32),
            "actions": torch.stack(buf["actions"]),
            "log_probs": torch.stack(buf["log_probs"]),
            "rewards": np.array(buf["rewards"], dtype=np.float32),
            "values": np.array(buf["values"], dtype=np.float32),
            "dones": np.array(buf["dones"], dtype=np.float32),
            "last_value": float(self.select_action(state).value),
        }
        return rollout, state, finished

    def learn(self, env, total_steps: int, seed: int = 0) -> list[float]:
        """Train on ``env`` for ``total_steps`` environment steps; returns episode rewards."""
        state, _ = env.reset(seed=seed)
        rewards: list[float] = []
        for _ in range(max(1, total_steps // self.config.rollout_steps)):
            rollout, state, finished = self.collect(env, state, self.config.rollout_steps)
            rewards += finished
            self.update(rollout)
        return rewards
