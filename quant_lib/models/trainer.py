"""Trainer: AdamW training with early stopping, clipping, NaN guards and an OOM fallback (seed 004 §8.3).

- Early stopping on the validation loss: a NaN/Inf validation loss is never an improvement;
  the best weights are restored at the end.
- ``clip_grad_norm_(max_norm=1.0)`` every step; a step whose loss is NaN/Inf is skipped (no
  gradient step) and counted in ``nan_steps``.
- Out of memory on an accelerator: move to CPU, re-create the optimizer and scheduler, redo the
  epoch (``oom_fallbacks`` counts it).
- Deterministic on CPU: the seed is applied at construction and at each ``fit``; loaders should
  come from ``dataset.make_loader`` (seeded shuffling).
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from quant_lib.models.base import BaseModel
from quant_lib.models.device import resolve_device

logger = logging.getLogger(__name__)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Trainer:
    def __init__(
        self,
        model: BaseModel,
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 20,
        patience: int = 5,
        grad_clip: float = 1.0,
        device: str | torch.device | None = "cpu",
        seed: int = 0,
    ) -> None:
        self.seed = seed
        torch.manual_seed(seed)
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.loss_fn = loss_fn or nn.MSELoss()
        self.lr, self.weight_decay = lr, weight_decay
        self.max_epochs, self.patience, self.grad_clip = max_epochs, patience, grad_clip
        self.epoch = 0
        self.best_val_loss = math.inf
        self.nan_steps = 0
        self.oom_fallbacks = 0
        self._make_optimizer(lr)

    def _make_optimizer(self, lr: float) -> None:
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=lr, weight_decay=self.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(self.optimizer, factor=0.5, patience=2)

    def _fall_back_to_cpu(self, exc: BaseException) -> None:
        logger.error("out of memory on %s (%s): falling back to CPU", self.device, exc)
        lr = self.optimizer.param_groups[0]["lr"]
        was_cuda = self.device.type == "cuda"
        self.device = torch.device("cpu")
        self.model.to(self.device)
        self._make_optimizer(lr)
        self.oom_fallbacks += 1
        if was_cuda and torch.cuda.is_available():  # pragma: no cover - accelerator only
            torch.cuda.empty_cache()

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> float | None:
        x, y = x.to(self.device), y.to(self.device)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(x), y)
        if not torch.isfinite(loss):
            self.nan_steps += 1
            logger.error("non-finite loss %s at epoch %d: step skipped (%d so far)", loss.item(), self.epoch, self.nan_steps)
            return None
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=self.grad_clip)
        self.optimizer.step()
        return float(loss.item())

    def train_epoch(self, loader: DataLoader) -> float:
        """One pass over ``loader``; the mean of the finite step losses (NaN if none)."""
        while True:
            self.model.train()
            losses: list[float] = []
            try:
                for x, y in loader:
                    loss = self._train_step(x, y)
                    if loss is not None:
                        losses.append(loss)
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if self.device.type == "cpu" or not _is_oom(exc):
                    raise
                self._fall_back_to_cpu(exc)
                continue
            return sum(losses) / len(losses) if losses else math.nan

    @torch.no_grad()
    def evaluate(self, loader: DataLoader) -> float:
        """Mean loss over ``loader`` weighted by batch size (eval mode)."""
        self.model.eval()
        total, count = 0.0, 0
        for x, y in loader:
            x, y = x.to(self.device), y.to(self.device)
            total += float(self.loss_fn(self.model(x), y).item()) * len(x)
            count += len(x)
        return total / count if count else math.nan

    @torch.no_grad()
    def predict(self, loader: DataLoader) -> torch.Tensor:
        self.model.eval()
        return torch.cat([self.model(x.to(self.device)).cpu() for x, _ in loader])

    def fit(self, train_loader: DataLoader, val_loader: DataLoader | None = None, epochs: int | None = None) -> dict[str, Any]:
        """Train up to ``epochs`` (default ``max_epochs``) with early stopping on ``val_loader``.

        Returns ``{"train_loss": [...], "val_loss": [...], "best_val_loss", "best_epoch",
        "epochs_run", "stopped_early", "nan_steps", "oom_fallbacks", "device"}``.
        """
        torch.manual_seed(self.seed + self.epoch)
        if getattr(train_loader, "generator", None) is not None:
            train_loader.generator.manual_seed(self.seed + self.epoch)
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        best_state, best_epoch, waited, stopped = None, None, 0, False
        for _ in range(epochs or self.max_epochs):
            history["train_loss"].append(self.train_epoch(train_loader))
            self.epoch += 1
            if val_loader is None:
                continue
            val = self.evaluate(val_loader)
            history["val_loss"].append(val)
            if math.isfinite(val) and val < self.best_val_loss:
                self.best_val_loss, best_epoch, waited = val, self.epoch, 0
                best_state = copy.deepcopy(self.model.state_dict())
            else:
                waited += 1
            if math.isfinite(val):
                self.scheduler.step(val)
            if waited >= self.patience:
                stopped = True
                break
        if best_state is not None:
            self.model.load_state_dict(best_state)
        return {
            **history,
            "best_val_loss": self.best_val_loss if math.isfinite(self.best_val_loss) else None,
            "best_epoch": best_epoch,
            "epochs_run": len(history["train_loss"]),
            "stopped_early": stopped,
            "nan_steps": self.nan_steps,
            "oom_fallbacks": self.oom_fallbacks,
            "device": str(self.device),
        }

    def continue_training(
        self, loader: DataLoader, epochs: int = 1, lr_factor: float = 0.1, val_loader: DataLoader | None = None
    ) -> dict[str, Any]:
        """Fine-tune at ``lr * lr_factor`` (fresh optimizer); early stopping restarts from the
        current weights' validation loss, so the result is never worse on ``val_loader``."""
        self._make_optimizer(self.lr * lr_factor)
        if val_loader is not None:
            self.best_val_loss = self.evaluate(val_loader)
            if not math.isfinite(self.best_val_loss):
                self.best_val_loss = math.inf
        else:
            self.best_val_loss = math.inf
        before = self.best_val_loss
        result = self.fit(loader, val_loader, epochs=epochs)
        result["val_loss_before"] = before if math.isfinite(before) else None
        return result

    def get_state(self) -> dict[str, Any]:
        """Weights, optimizer and scheduler state, counters (``torch.save``-able)."""
        return {
            "model_state": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer_state": copy.deepcopy(self.optimizer.state_dict()),
            "scheduler_state": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "best_val_loss": self.best_val_loss,
            "nan_steps": self.nan_steps,
            "oom_fallbacks": self.oom_fallbacks,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model_state"])
        self.model.to(self.device)
        self.optimizer.load_state_dict(state["optimizer_state"])
        self.scheduler.load_state_dict(state["scheduler_state"])
        self.epoch = int(state["epoch"])
        self.best_val_loss = float(state["best_val_loss"])
        self.nan_steps = int(state["nan_steps"])
        self.oom_fallbacks = int(state.get("oom_fallbacks", 0))

    def save_checkpoint(
        self, target: Callable[[bytes], Any] | None = None, feature_names: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        """The model checkpoint with optimizer state, epoch and best validation loss (bytes, or
        ``target(bytes)``)."""
        best = self.best_val_loss if math.isfinite(self.best_val_loss) else None
        return self.model.save(target, self.optimizer, self.epoch, best, feature_names, extra)
