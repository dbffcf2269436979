"""Retrain triggers (seed 004 §3.3), each guarded by ``min_samples``.

- ``interval``: bars since the last retrain >= ``interval``;
- ``sharpe``: the rolling Sharpe of the model's predictions < ``sharpe_threshold`` (needs at
  least ``min_samples`` realized predictions);
- ``bocpd``: the latest change-point score > ``cp_score_threshold``.
No trigger fires before ``min_samples`` bars have arrived since the last retrain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RetrainConfig:
    interval: int = 20
    sharpe_threshold: float = 0.0
    cp_score_threshold: float = 0.8
    min_samples: int = 10


def retrain_triggers(
    bars_since_retrain: int, rolling_sharpe: float | None, sharpe_obs: int, cp_score: float | None, config: RetrainConfig
) -> list[str]:
    """The names of the triggers that fire, in the order interval, sharpe, bocpd."""
    if bars_since_retrain < config.min_samples:
        return []
    fired = []
    if bars_since_retrain >= config.interval:
        fired.append("interval")
    if rolling_sharpe is not None and math.isfinite(rolling_sharpe) and sharpe_obs >= config.min_samples:
        if rolling_sharpe < config.sharpe_threshold:
            fired.append("sharpe")
    if cp_score is not None and math.isfinite(cp_score) and cp_score > config.cp_score_threshold:
        fired.append("bocpd")
    return fired
