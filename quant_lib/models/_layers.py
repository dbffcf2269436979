"""Building blocks shared by the nets: sinusoidal positions and a causal mask."""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalPositionalEncoding(nn.Module):
    """PE[t, 2i] = sin(t / 10000^(2i/d)), PE[t, 2i+1] = cos(t / 10000^(2i/d)) (Vaswani et al. 2017)."""

    def __init__(self, d_model: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * div)
        pe[:, 1::2] = torch.cos(position * div[: d_model // 2])
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} steps is longer than max_len={self.pe.shape[0]}")
        return x + self.pe[: x.shape[1]]


def causal_mask(length: int, device: torch.device | None = None) -> torch.Tensor:
    """Boolean [T, T] mask, True above the diagonal: step t attends to steps <= t only."""
    return torch.triu(torch.ones(length, length, dtype=torch.bool, device=device), diagonal=1)


def check_input(x: torch.Tensor, n_features: int) -> None:
    if x.dim() != 3 or x.shape[-1] != n_features:
        raise ValueError(f"expected input [batch, seq_len, {n_features}], got {list(x.shape)}")


def zero_init_(layer: nn.Linear) -> None:
    """Zero the output layer: an untrained forecaster predicts 0 (the naive forecast), so training
    starts from the baseline and early stopping keeps only improvements over it."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
