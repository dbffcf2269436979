"""Settings of the live loop (seed 004 §3.3, §7): retrain triggers, risk, sizing and checkpoints."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class LiveConfig:
    """Knobs of ``SelfTrainer``. Retrain triggers all need ``retrain_min_samples`` bars since the
    last retrain: ``interval`` (bars since the last retrain >= ``retrain_interval``), ``sharpe``
    (rolling Sharpe of the book < ``sharpe_threshold`` once ``sharpe_window`` returns exist) and
    ``bocpd`` (the features' ``cp_score``, the max over symbols of a streaming BOCPD per
    symbol, ``quant_lib.live.changepoint``, > ``cp_score_threshold``)."""

    initial_capital: float = 100_000.0
    periods_per_year: int = 252 * 78
    retrain_enabled: bool = True
    retrain_interval: int = 500
    retrain_min_samples: int = 200
    sharpe_threshold: float = 0.0
    sharpe_window: int = 100
    cp_score_threshold: float = 0.8
    retrain_epochs: int = 1
    retrain_lr: float = 1e-3
    retrain_lr_factor: float = 0.1
    retrain_batch_size: int = 64
    retrain_val_fraction: float = 0.2
    weight_update_interval: int = 1
    checkpoint_interval: int = 50
    min_confidence: float = 0.0
    cooldown_bars: int = 0
    allow_short: bool = False
    use_stops: bool = True
    atr_period: int = 14
    close_on_shutdown: bool = True
    history_limit: int = 5_000
    strategy_tag: str = "live"
    jit_inference: bool = True
    """Predict with frozen TorchScript traces of the nets (about 5-10x less per-call overhead on
    CPU; outputs equal the eager nets to float32 rounding); re-traced after a retrain or reload."""
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("initial_capital", "retrain_interval", "retrain_min_samples", "sharpe_window",
                     "retrain_epochs", "retrain_lr", "retrain_lr_factor", "retrain_batch_size",
                     "weight_update_interval", "atr_period", "history_limit"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LiveConfig.{name} must be > 0, got {getattr(self, name)}")
        if not 0 < self.retrain_val_fraction < 1:
            raise ValueError(f"retrain_val_fraction must be in (0, 1), got {self.retrain_val_fraction}")
        if self.checkpoint_interval < 0 or self.cooldown_bars < 0:
            raise ValueError("checkpoint_interval and cooldown_bars must be >= 0")

    @property
    def buffer_size(self) -> int:
        """Bars kept per symbol for retraining: 2 * retrain_interval (seed 004 §3.3)."""
        return 2 * self.retrain_interval

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
