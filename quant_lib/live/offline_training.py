"""Offline training of the live loop's nets on bars, with an out-of-sample test block.

The live loop (``SelfTrainer``) feeds its nets ``IncrementalBarFeatures``; the nets it loads are
trained here on the same features. Per symbol (rows in time order, features [T, F], targets
[T] = the next bar's log return): the last ``test_fraction`` of the rows are the test block
(windows ending there; their inputs may reach back ``seq_len - 1`` rows), the rows before it
split chronologically into train and validation (``split_datasets``: early stopping on the
validation windows). Targets are not rescaled: the live strategies read raw return forecasts.

Losses on the test block (``walk_forward.evaluate_losses``): forecasters MSE against the zero
forecast; the momentum net -Sharpe against always long; ``improvement_tstat`` is the same
Diebold-Mariano statistic as the weekly walk-forward training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from quant_lib.live.features import IncrementalBarFeatures
from quant_lib.live.retrain import split_datasets

Parts = Sequence[tuple[np.ndarray, np.ndarray]]


def bar_training_parts(bars: pl.DataFrame) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[Any], list[str]]:
    """Per symbol (sorted): the live features and next-bar log-return targets of its bars, the
    timestamps of those rows (past warm-up) and the symbols, from a frame of timestamp, symbol, OHLCV."""
    features = IncrementalBarFeatures()
    parts, times, symbols = [], [], []
    for (symbol,), frame in sorted(bars.sort("timestamp").partition_by("symbol", as_dict=True).items()):
        x, y = features.training_set(frame)
        parts.append((x, y))
        times.append(frame["timestamp"].to_list()[len(frame) - len(x):])
        symbols.append(str(symbol))
    return parts, times, symbols


def check_enough_bars(parts: Parts, symbols: Sequence[str], seq_len: int, horizon: int, test_fraction: float) -> None:
    """ValueError naming the symbol whose bars (after the features' warm-up) cannot give at least
    10 windows to the validation and test blocks: n >= seq_len + (horizon + 10) / (f (1 - f))."""
    need = seq_len + math.ceil((horizon + 10) / (test_fraction * (1.0 - test_fraction)))
    for symbol, (x, _) in zip(symbols, parts):
        if len(x) < need:
            raise ValueError(f"{symbol}: {len(x)} bars after the features' warm-up are too few for seq_len={seq_len}: "
                             f"need at least {need} (10 windows in the validation and the {test_fraction:.0%} test "
                             "block); give more bars or a shorter seq_len")


def split_test(parts: Parts, seq_len: int, test_fraction: float) -> tuple[list, list, int]:
    """(rows before the test block, test rows with ``seq_len - 1`` rows of history, index of the
    first test row) per symbol; the last row (no target yet) is dropped."""
    head, tail, cuts = [], [], []
    for x, y in parts:
        x, y = x[:-1], y[:-1]
        cut = int(len(x) * (1.0 - test_fraction))
        head.append((x[:cut], y[:cut]))
        tail.append((x[max(cut - seq_len + 1, 0):], y[max(cut - seq_len + 1, 0):]))
        cuts.append(cut)
    return head, tail, cuts


def _test_dataset(tail: list, seq_len: int, horizon: int):
    from quant_lib.models import TimeSeriesDataset

    usable = [(x, y) for x, y in tail if len(x) >= seq_len + horizon]
    if not usable:
        raise ValueError(f"too few bars for a test block: each symbol needs seq_len={seq_len} + horizon={horizon} "
                         "test rows; give more bars or a larger test fraction")
    groups = np.concatenate([np.full(len(x), i) for i, (x, _) in enumerate(usable)])
    return TimeSeriesDataset(np.concatenate([x for x, _ in usable]), np.concatenate([y for _, y in usable]),
                             seq_len, horizon, groups)


def score_on_test(model: Any, tail: list) -> dict[str, float]:
    """oos_loss, naive_loss, improvement_tstat and n_test of ``model`` on the test windows."""
    import torch

    from quant_lib.models import make_loader
    from quant_lib.models.walk_forward import evaluate_losses, improvement_tstat

    horizon = int(model.config.get("forecast_horizon", 1))
    data = _test_dataset(tail, int(model.config["seq_len"]), horizon)
    model.eval()
    with torch.no_grad():
        predictions = torch.cat([model(x) for x, _ in make_loader(data, 256)]).numpy().astype(np.float64)
    targets = data.targets().numpy().astype(np.float64)
    oos, naive = evaluate_losses(model.architecture, predictions, targets)
    return {"oos_loss": oos, "naive_loss": naive, "n_test": float(len(targets)),
            "improvement_tstat": improvement_tstat(model.architecture, predictions, targets, horizon)}


def evaluate_bar_checkpoint(checkpoint: bytes, tail: list, seq_len: int) -> float | None:
    """A stored live net's ``oos_loss`` on this test block (the champion's score); None when it
    reads windows of another length (another test block)."""
    from quant_lib.models import BaseModel

    model, _ = BaseModel.load(checkpoint, feature_names=IncrementalBarFeatures.feature_names)
    if int(model.config["seq_len"]) != seq_len:
        return None
    return score_on_test(model, tail)["oos_loss"]


def train_task(payload: dict[str, Any]) -> dict[str, Any]:
    """One live net's training as a picklable unit of work for the ``compute`` resource.

    ``payload``: architecture, model (the partition name), parts, times (per symbol), seq_len,
    epochs, lr, seed, model_kwargs, val_fraction, test_fraction."""
    import torch

    from quant_lib.models import Trainer, build_model, default_loss, make_loader

    torch.set_num_threads(int(payload.get("threads", 1)))
    torch.manual_seed(payload["seed"])
    name, seq_len = payload["architecture"], payload["seq_len"]
    horizon = 1 if name == "momentum" else 5
    model = build_model(name, n_features=IncrementalBarFeatures.n_features, seq_len=seq_len, forecast_horizon=horizon,
                        **payload["model_kwargs"])
    head, tail, cuts = split_test(payload["parts"], seq_len, payload["test_fraction"])
    train, val = split_datasets(head, seq_len, horizon, payload["val_fraction"])
    trainer = Trainer(model, default_loss(model), lr=payload["lr"], max_epochs=payload["epochs"], patience=3,
                      device="cpu", seed=payload["seed"])
    history = trainer.fit(make_loader(train, batch_size=64, shuffle=True, seed=payload["seed"]),
                          make_loader(val, batch_size=256))
    metrics = {**score_on_test(model.cpu(), tail), "n_train": float(len(train)), "n_val": float(len(val)),
               "best_val_loss": float(history["best_val_loss"] if history["best_val_loss"] is not None else np.nan),
               "epochs_run": float(history["epochs_run"])}
    test_starts = [t[c] for t, c in zip(payload["times"], cuts) if c < len(t)]
    period = [str(min(test_starts))[:19], str(max(t[-2] for t in payload["times"]))[:19]]
    checkpoint = model.save(None, trainer.optimizer, int(history["epochs_run"]), history["best_val_loss"],
                            list(IncrementalBarFeatures.feature_names), {"metrics": metrics, "test_period": period})
    return {"architecture": name, "model": payload["model"], "checkpoint": checkpoint, "metrics": metrics,
            "test_period": period}
