"""PortfolioEnv: a gymnasium environment for allocating across N assets and cash.

State: the last ``window`` bars of asset log returns (and optional features), flattened, plus the
current weights. Action: N + 1 non-negative weights (assets, then cash), normalized to sum 1.
Step t: drifted weights w~ = w_{t-1} * exp(r_t) / sum; turnover = sum |w_t - w~|; net simple
return R_t = sum_i w_t,i (exp(r_t+1,i) - 1) - cost * turnover. Reward: ln(1 + R_t)
(``"log_return"``) or the differential Sharpe ratio (Moody & Saffell 2001)
D_t = (B_{t-1} dA_t - A_{t-1} dB_t / 2) / (B_{t-1} - A_{t-1}^2)^{3/2}, with A, B exponential
moving averages (rate ``eta``) of R and R^2.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class PortfolioEnv(gym.Env):
    metadata = {"render_modes": []}

    def __init__(
        self,
        returns: np.ndarray,
        features: np.ndarray | None = None,
        window: int = 10,
        transaction_cost: float = 0.001,
        reward: str = "log_return",
        episode_length: int | None = None,
        eta: float = 0.01,
    ) -> None:
        super().__init__()
        self.returns = np.asarray(returns, dtype=np.float64)
        if self.returns.ndim != 2 or not np.isfinite(self.returns).all():
            raise ValueError(f"returns must be a finite [T, N] array, got shape {self.returns.shape}")
        self.features = None if features is None else np.asarray(features, dtype=np.float64).reshape(len(self.returns), -1)
        if reward not in ("log_return", "differential_sharpe"):
            raise ValueError(f"reward must be 'log_return' or 'differential_sharpe', got {reward!r}")
        n_steps, n_assets = self.returns.shape
        self.window, self.cost, self.reward_kind, self.eta = window, transaction_cost, reward, eta
        self.episode_length = episode_length or n_steps - window - 1
        if window < 1 or self.episode_length < 1 or window + self.episode_length >= n_steps:
            raise ValueError(f"{n_steps} bars are too few for window={window} + episode_length={self.episode_length}")
        self.n_assets = n_assets
        n_obs = window * (n_assets + (0 if self.features is None else self.features.shape[1])) + n_assets + 1
        self.observation_space = spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = spaces.Box(0.0, 1.0, (n_assets + 1,), np.float32)

    def _observation(self) -> np.ndarray:
        past = self.returns[self.t - self.window : self.t]
        parts = [past.ravel()]
        if self.features is not None:
            parts.append(self.features[self.t - self.window : self.t].ravel())
        parts.append(self.weights)
        return np.concatenate(parts).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        last_start = len(self.returns) - self.episode_length - 1
        self.t = int(self.np_random.integers(self.window, last_start + 1))
        self.end = self.t + self.episode_length
        self.weights = np.r_[np.zeros(self.n_assets), 1.0]
        self.A, self.B = 0.0, 0.0
        return self._observation(), {}

    def _normalize(self, action: np.ndarray) -> np.ndarray:
        w = np.clip(np.asarray(action, dtype=np.float64).reshape(-1), 0.0, None)
        total = w.sum()
        return w / total if total > 0 and np.isfinite(total) else np.full(self.n_assets + 1, 1.0 / (self.n_assets + 1))

    def step(self, action: np.ndarray):
        target = self._normalize(action)
        turnover = float(np.abs(target - self.weights).sum())
        growth = np.r_[np.exp(self.returns[self.t]), 1.0]
        net = float(target @ growth - 1.0) - self.cost * turnover
        drifted = target * growth
        self.weights = drifted / drifted.sum()
        self.t += 1
        reward = self._reward(net)
        info = {"net_return": net, "turnover": turnover, "cost": self.cost * turnover, "weights": target}
        return self._observation(), reward, False, self.t >= self.end, info

    def _reward(self, net: float) -> float:
        if self.reward_kind == "log_return":
            return float(np.log1p(max(net, -0.999999)))
        dA, dB = net - self.A, net * net - self.B
        variance = self.B - self.A * self.A
        d = (self.B * dA - 0.5 * self.A * dB) / variance ** 1.5 if variance > 1e-12 else 0.0
        self.A += self.eta * dA
        self.B += self.eta * dB
        return float(d)
