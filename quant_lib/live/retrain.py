"""Online fine-tuning with accept/reject (seed 004 §3.3 step 9, §8.8).

For one model: keep a copy of its weights (the safety net), fine-tune with
``Trainer.continue_training`` at ``lr * retrain_lr_factor`` on the first (1 - val_fraction) of
each symbol's buffered rows, measure the validation loss on the rest before and after, and
ACCEPT only when it went down; otherwise restore the copy (REJECT).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetrainOutcome:
    model: str
    accepted: bool
    val_loss_before: float
    val_loss_after: float
    n_train: int
    n_val: int


def split_datasets(parts: Sequence[tuple[np.ndarray, np.ndarray]], seq_len: int, horizon: int, val_fraction: float):
    """Chronological train/validation datasets: per symbol, windows ending in the last
    ``val_fraction`` of rows validate (their inputs may reach back into the training rows); the
    training rows stop one bar before the cut so no training target uses a validation close.
    Symbols are kept apart (windows never cross them)."""
    from quant_lib.models import TimeSeriesDataset

    train_parts, val_parts = [], []
    for features, targets in parts:
        cut = int(len(features) * (1.0 - val_fraction))
        train_parts.append((features[: cut - 1], targets[: cut - 1]))
        val_parts.append((features[max(cut - seq_len + 1, 0):], targets[max(cut - seq_len + 1, 0):]))
    datasets = []
    for chunks in (train_parts, val_parts):
        usable = [c for c in chunks if len(c[0]) >= seq_len + horizon]
        if not usable:
            raise ValueError(f"too few buffered rows for seq_len={seq_len} + horizon={horizon}")
        groups = np.concatenate([np.full(len(x), i) for i, (x, _) in enumerate(usable)])
        x = np.concatenate([x for x, _ in usable])
        y = np.concatenate([y for _, y in usable])
        datasets.append(TimeSeriesDataset(x, y, seq_len, horizon, groups))
    return datasets


def make_trainer(model: Any, lr: float, seed: int) -> Any:
    from quant_lib.models import Trainer, default_loss

    return Trainer(model, default_loss(model), lr=lr, max_epochs=1, patience=1, device="cpu", seed=seed)


def retrain_model(
    name: str,
    trainer: Any,
    parts: Sequence[tuple[np.ndarray, np.ndarray]],
    epochs: int,
    lr_factor: float,
    batch_size: int,
    val_fraction: float,
    seed: int,
) -> RetrainOutcome:
    """Fine-tune ``trainer.model`` on ``parts`` (per symbol: features [T, F], targets [T]) and
    accept or reject (see module doc). Raises ValueError when the buffer is too short."""
    from quant_lib.models import make_loader

    model = trainer.model
    config = getattr(model, "config", {})
    seq_len = int(config.get("seq_len", 1))
    horizon = int(config.get("forecast_horizon", 1))
    try:
        train, val = split_datasets(parts, seq_len, horizon, val_fraction)
    except ValueError as error:
        logger.warning("Retrain '%s' skipped: %s", name, error)
        return RetrainOutcome(name, False, math.nan, math.nan, 0, 0)
    train_loader = make_loader(train, batch_size=batch_size, shuffle=True, seed=seed)
    val_loader = make_loader(val, batch_size=batch_size)
    safety_net = copy.deepcopy(model.state_dict())
    before = trainer.evaluate(val_loader)
    trainer.continue_training(train_loader, epochs=epochs, lr_factor=lr_factor, val_loader=val_loader)
    after = trainer.evaluate(val_loader)
    accepted = math.isfinite(after) and (not math.isfinite(before) or after < before)
    if accepted:
        logger.info("Retrain '%s' ACCEPTED (val loss %.6g -> %.6g)", name, before, after)
    else:
        model.load_state_dict(safety_net)
        logger.info("Retrain '%s' REJECTED (val loss %.6g -> %.6g); weights restored", name, before, after)
    model.eval()
    return RetrainOutcome(name, accepted, before, after, len(train), len(val))
