"""One entry point for every training task the ``compute`` resource fans out (picklable by
reference): ``payload["kind"]`` picks the trainer.

- ``walk_forward``: a forecasting net on the ``FeaturePipeline`` panel (``walk_forward.train_task``);
- ``bars``: a live-loop net on ``IncrementalBarFeatures`` (``quant_lib.live.offline_training``);
- ``ppo``: the PPO allocator on the symbols' returns (``ppo_training.train_task``).
Each returns architecture, model (the partition name), checkpoint bytes, metrics and test period.
"""

from __future__ import annotations

from typing import Any


def run_training_task(payload: dict[str, Any]) -> dict[str, Any]:
    kind = payload.get("kind")
    if kind == "walk_forward":
        from quant_lib.models.walk_forward import train_task

        return {**train_task(payload), "model": payload["model"]}
    if kind == "bars":
        from quant_lib.live.offline_training import train_task as train_bars

        return train_bars(payload)
    if kind == "ppo":
        from quant_lib.models.ppo_training import train_task as train_ppo

        return train_ppo(payload)
    raise ValueError(f"unknown training task kind {kind!r}: walk_forward, bars or ppo")
