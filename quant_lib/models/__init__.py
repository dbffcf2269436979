"""Deep models (seed 004 §4.4): forecasting nets, losses, dataset, trainer. Needs torch.

The PPO agent and its portfolio environment (gymnasium) live in ``quant_lib.models.ppo`` and
``quant_lib.models.portfolio_env`` and are not imported here.
"""

from quant_lib.models.base import BaseModel, CheckpointMismatchError
from quant_lib.models.dataset import TimeSeriesDataset, WalkForwardSplitter, make_loader
from quant_lib.models.device import resolve_device
from quant_lib.models.factory import MODEL_NAMES, build_model, default_loss
from quant_lib.models.itransformer import ITransformer
from quant_lib.models.losses import CombinedLoss, DifferentiableSharpeRatio, DirectionalLoss
from quant_lib.models.lstm import AttentionLSTM
from quant_lib.models.momentum_transformer import MomentumTransformer
from quant_lib.models.trainer import Trainer
from quant_lib.models.transformer import DecoderTransformer

__all__ = [
    "MODEL_NAMES",
    "AttentionLSTM",
    "BaseModel",
    "CheckpointMismatchError",
    "CombinedLoss",
    "DecoderTransformer",
    "DifferentiableSharpeRatio",
    "DirectionalLoss",
    "ITransformer",
    "MomentumTransformer",
    "TimeSeriesDataset",
    "Trainer",
    "WalkForwardSplitter",
    "build_model",
    "default_loss",
    "make_loader",
    "resolve_device",
]
