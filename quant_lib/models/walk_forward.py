"""Walk-forward training of one net on a feature panel, with its out-of-sample test against the
naive forecast (the promotion gate's evidence).

Samples are windows of ``seq_len`` rows of one ticker ending at row e (``TimeSeriesDataset``);
a window belongs to the date of its last row. Dates are split in time order:

    train: dates[: n - test - val - 2 gap]   val: next ``val`` dates   test: last ``test`` dates

with ``gap = forecast_horizon`` dates between blocks, so no training target overlaps a
validation or test window (purging). Early stopping uses the validation block; the test block
is never seen in training. Targets are divided by their training standard deviation
(``target_scale``, saved in the checkpoint) so every net trains on unit-scale targets.

Losses reported in return units on the test block:
- forecasters (``forward -> [B, H]``): MSE of the H forecasts; naive = the zero forecast
  (random walk for log prices);
- the position net (momentum): -Sharpe(position x next return) annualized; naive = always long.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from quant_lib.models.base import BaseModel
from quant_lib.models.dataset import TimeSeriesDataset, make_loader
from quant_lib.models.factory import build_model, default_loss
from quant_lib.models.losses import DifferentiableSharpeRatio
from quant_lib.models.trainer import Trainer


@dataclass(frozen=True)
class WalkForwardConfig:
    seq_len: int = 30
    forecast_horizon: int = 5
    val_dates: int = 60
    test_dates: int = 60
    batch_size: int = 128
    max_epochs: int = 10
    patience: int = 3
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    model_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class WalkForwardResult:
    model: BaseModel
    target_scale: float
    oos_loss: float
    naive_loss: float
    n_train: int
    n_val: int
    n_test: int
    history: dict[str, Any]
    test_predictions: np.ndarray  # [n_test, H] in return units
    test_targets: np.ndarray
    test_period: tuple[Any, Any]  # first and last window-end date of the test block
    improvement_tstat: float = math.nan

    @property
    def beats_naive(self) -> bool:
        return math.isfinite(self.oos_loss) and self.oos_loss < self.naive_loss

    def metrics(self) -> dict[str, float]:
        return {
            "oos_loss": self.oos_loss, "naive_loss": self.naive_loss,
            "oos_vs_naive": self.oos_loss / self.naive_loss if self.naive_loss else math.nan,
            "n_train": self.n_train, "n_val": self.n_val, "n_test": self.n_test,
            "best_val_loss": self.history.get("best_val_loss") or math.nan, "target_scale": self.target_scale,
            "improvement_tstat": self.improvement_tstat,
        }


def _blocks(end_dates: np.ndarray, cfg: WalkForwardConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    dates = np.unique(end_dates)
    gap = cfg.forecast_horizon
    n_train_dates = dates.size - cfg.test_dates - cfg.val_dates - 2 * gap
    if n_train_dates < cfg.seq_len:
        raise ValueError(
            f"too few dates ({dates.size}) for {cfg.val_dates} validation + {cfg.test_dates} test dates, "
            f"gaps of {gap} and at least {cfg.seq_len} training dates"
        )
    val_start = n_train_dates + gap
    test_start = val_start + cfg.val_dates + gap
    rank = np.searchsorted(dates, end_dates)
    train = np.flatnonzero(rank < n_train_dates)
    val = np.flatnonzero((rank >= val_start) & (rank < val_start + cfg.val_dates))
    test = np.flatnonzero(rank >= test_start)
    return train, val, test


def evaluate_losses(architecture: str, predictions: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
    """(model loss, naive loss) on a test block, in return units (see the module docstring)."""
    if architecture == "momentum":
        sharpe = DifferentiableSharpeRatio()
        p, y = torch.as_tensor(predictions), torch.as_tensor(targets)
        return float(sharpe(p, y)), float(sharpe(torch.ones_like(p), y))
    return float(np.mean((predictions - targets) ** 2)), float(np.mean(targets ** 2))


def improvement_tstat(architecture: str, predictions: np.ndarray, targets: np.ndarray, lags: int) -> float:
    """t-statistic of the per-window improvement over the naive forecast (Diebold & Mariano 1995,
    Newey-West variance with ``lags`` lags since H-step windows overlap): d_i = mean_h y^2 -
    mean_h (y_hat - y)^2 for forecasters, d_i = (position - 1) x next return for the position net.
    NaN with fewer than 10 windows or no variation."""
    if architecture == "momentum":
        d = (predictions[:, 0] - 1.0) * targets[:, 0]
    else:
        d = np.mean(targets ** 2, axis=1) - np.mean((predictions - targets) ** 2, axis=1)
    return newey_west_tstat(d, lags)


def newey_west_tstat(d: np.ndarray, lags: int) -> float:
    """mean(d) / sqrt(Newey-West variance / n) with Bartlett weights over ``lags`` lags; NaN with
    fewer than 10 observations or no variation."""
    n = d.size
    if n < 10:
        return math.nan
    e = d - d.mean()
    variance = float(e @ e) / n
    for k in range(1, min(lags, n - 1) + 1):
        variance += 2.0 * (1.0 - k / (lags + 1)) * float(e[k:] @ e[:-k]) / n
    return float(d.mean() / math.sqrt(variance / n)) if variance > 0 else math.nan


def train_walk_forward(
    architecture: str,
    X: np.ndarray,
    y: np.ndarray,
    dates: np.ndarray,
    groups: np.ndarray | None = None,
    config: WalkForwardConfig = WalkForwardConfig(),
) -> WalkForwardResult:
    """Train ``architecture`` on the train block (early stopping on val), test on the last block.

    ``X`` [T, F], ``y`` [T] one-bar forward returns, ``dates`` [T] (sortable), ``groups`` [T]
    ticker ids with rows of a ticker contiguous and in time order."""
    torch.manual_seed(config.seed)
    horizon = 1 if architecture == "momentum" else config.forecast_horizon
    data = TimeSeriesDataset(X, y, config.seq_len, horizon, groups=groups)
    train, val, test = _blocks(np.asarray(dates)[data.ends], config)
    if train.size == 0 or val.size == 0 or test.size == 0:
        raise ValueError(f"empty walk-forward block: train {train.size}, val {val.size}, test {test.size} windows")
    scale = float(data.targets()[train].std()) or 1.0
    data._y = data._y / scale
    model = build_model(architecture, n_features=X.shape[1], seq_len=config.seq_len, forecast_horizon=horizon, **config.model_kwargs)
    trainer = Trainer(model, default_loss(model), lr=config.lr, max_epochs=config.max_epochs, patience=config.patience,
                      device=config.device, seed=config.seed)
    history = trainer.fit(
        make_loader(data, config.batch_size, shuffle=True, seed=config.seed, indices=train),
        make_loader(data, 4 * config.batch_size, indices=val),
    )
    test_loader = make_loader(data, 4 * config.batch_size, indices=test)
    predictions = trainer.predict(test_loader).numpy().astype(np.float64)
    targets = data.targets()[test].numpy().astype(np.float64) * scale
    if architecture != "momentum":
        predictions = predictions * scale
    oos, naive = evaluate_losses(architecture, predictions, targets)
    model.cpu().eval()
    test_end_dates = np.asarray(dates)[data.ends[test]]
    period = (test_end_dates.min(), test_end_dates.max())
    tstat = improvement_tstat(architecture, predictions, targets, horizon)
    return WalkForwardResult(model, scale, oos, naive, train.size, val.size, test.size, history, predictions, targets, period, tstat)


def train_task(payload: dict[str, Any]) -> dict[str, Any]:
    """One model's training as a picklable unit of work for the ``compute`` resource.

    ``payload``: architecture, X, y, dates, groups, config (``WalkForwardConfig``), feature_names.
    Returns architecture, checkpoint (bytes; ``extra`` holds target_scale, metrics, the config and
    the test period) and metrics."""
    torch.set_num_threads(int(payload.get("threads", 1)))
    result = train_walk_forward(
        payload["architecture"], payload["X"], payload["y"], payload["dates"], payload.get("groups"), payload["config"]
    )
    period = [str(d)[:10] for d in result.test_period]
    extra = {"target_scale": result.target_scale, "metrics": result.metrics(), "config": config_dict(payload["config"]),
             "test_period": period}
    checkpoint = result.model.save(
        epoch=len(result.history["train_loss"]), best_val_loss=result.history.get("best_val_loss"),
        feature_names=payload["feature_names"], extra=extra,
    )
    return {"architecture": payload["architecture"], "checkpoint": checkpoint, "metrics": result.metrics(), "test_period": period}


def config_dict(config: WalkForwardConfig) -> dict[str, Any]:
    return asdict(config)
