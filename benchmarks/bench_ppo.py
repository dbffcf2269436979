"""Benchmark: our Dirichlet PPOAgent against stable-baselines3's PPO on the same planted portfolio env.

Three assets with 1% daily vol, only asset 0 drifts (+0.4%/day); cash is the fourth weight. Both
agents train for the same number of environment steps (same rollout length, epochs, minibatch,
learning rate and gamma); we report wall time, steps/s and the mean weight the trained policy puts
on the drifting asset (deterministic actions, 200 evaluation steps; equal weight is 0.25).
SB3 uses a Gaussian policy over the Box; the env normalizes its clipped action to weights.
Run: `python benchmarks/bench_ppo.py [--steps 4096]`.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from quant_lib.models.portfolio_env import PortfolioEnv
from quant_lib.models.ppo import PPOAgent, PPOConfig


def make_env(seed: int = 0) -> PortfolioEnv:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.01, (600, 3))
    returns[:, 0] += 0.004
    return PortfolioEnv(returns, window=5, episode_length=64, transaction_cost=0.0005)


def mean_weights(act, env: PortfolioEnv) -> np.ndarray:
    obs, _ = env.reset(seed=123)
    weights = []
    for _ in range(200):
        action = env._normalize(act(obs))
        weights.append(action)
        obs, _, _, truncated, _ = env.step(action)
        if truncated:
            obs, _ = env.reset()
    return np.mean(weights, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4096)
    args = parser.parse_args()
    torch.set_num_threads(1)
    env = make_env()
    agent = PPOAgent(env.observation_space.shape[0], 4, hidden=64, config=PPOConfig(rollout_steps=128, lr=3e-3, epochs=4, gamma=0.5))
    t = time.perf_counter()
    agent.learn(env, args.steps, seed=0)
    ours = time.perf_counter() - t
    w_ours = mean_weights(lambda o: agent.select_action(o, deterministic=True).action.numpy(), make_env())
    from stable_baselines3 import PPO

    model = PPO("MlpPolicy", make_env(), n_steps=128, batch_size=64, n_epochs=4, learning_rate=3e-3, gamma=0.5, seed=0, verbose=0, device="cpu")
    t = time.perf_counter()
    model.learn(args.steps)
    theirs = time.perf_counter() - t
    w_sb3 = mean_weights(lambda o: model.predict(o, deterministic=True)[0], make_env())
    print(f"{args.steps} env steps each; weight on the drifting asset (equal weight = 0.25)")
    print(f"ours (Dirichlet)     : {ours:6.1f} s ({args.steps / ours:6.0f} steps/s), weight {w_ours[0]:.2f}")
    print(f"stable-baselines3 PPO: {theirs:6.1f} s ({args.steps / theirs:6.0f} steps/s), weight {w_sb3[0]:.2f}")
    print(f"time ratio ours / SB3: {ours / theirs:.2f}x")


if __name__ == "__main__":
    main()
