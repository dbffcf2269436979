"""build_model(name, **kwargs): the four forecasting nets by registry name."""

from __future__ import annotations

from typing import Any

from torch import nn

from quant_lib.models.base import BaseModel
from quant_lib.models.itransformer import ITransformer
from quant_lib.models.losses import CombinedLoss, DifferentiableSharpeRatio
from quant_lib.models.lstm import AttentionLSTM
from quant_lib.models.momentum_transformer import MomentumTransformer
from quant_lib.models.transformer import DecoderTransformer

MODEL_CLASSES: dict[str, type[BaseModel]] = {
    "transformer": DecoderTransformer,
    "itransformer": ITransformer,
    "lstm": AttentionLSTM,
    "momentum": MomentumTransformer,
}
MODEL_NAMES: tuple[str, ...] = tuple(MODEL_CLASSES)


def build_model(name: str, **kwargs: Any) -> BaseModel:
    """Construct the net registered as ``name`` (transformer, itransformer, lstm, momentum)."""
    try:
        cls = MODEL_CLASSES[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of {list(MODEL_NAMES)}") from None
    return cls(**kwargs)


def default_loss(model: BaseModel) -> nn.Module:
    """The training loss a net is built for: the Sharpe ratio for the position net, MSE plus a
    directional term (variance-normalized, ``CombinedLoss``) for the forecasters."""
    if model.architecture == "momentum":
        return DifferentiableSharpeRatio()
    return CombinedLoss(mse_weight=1.0, directional_weight=0.0)
