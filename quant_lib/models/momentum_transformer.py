"""MomentumTransformer: a position-sizing net (Wood, Giegerich, Roberts & Zohren 2021).

Variable selection (softmax feature weights per step) -> LSTM encoder -> causal multi-head
self-attention with a gated residual (GLU) -> the last step -> tanh -> position in [-1, 1],
shape [B, 1]. Trained on the differentiable Sharpe ratio of position x next-bar return.
"""

from __future__ import annotations

import torch
from torch import nn

from quant_lib.models._layers import causal_mask, check_input
from quant_lib.models.base import BaseModel


class MomentumTransformer(BaseModel):
    architecture = "momentum"

    def __init__(
        self,
        *,
        n_features: int,
        seq_len: int = 60,
        forecast_horizon: int = 1,
        hidden_size: int = 32,
        n_heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            n_features=n_features, seq_len=seq_len, forecast_horizon=forecast_horizon,
            hidden_size=hidden_size, n_heads=n_heads, dropout=dropout,
        )
        self.selection = nn.Linear(n_features, n_features)
        self.project = nn.Linear(n_features, hidden_size)
        self.lstm = nn.LSTM(hidden_size, hidden_size, batch_first=True)
        self.attention = nn.MultiheadAttention(hidden_size, n_heads, dropout=dropout, batch_first=True)
        self.gate = nn.Linear(hidden_size, 2 * hidden_size)
        self.norm = nn.LayerNorm(hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.n_features)
        weights = torch.softmax(self.selection(x), dim=-1)
        states, _ = self.lstm(self.project(weights * x))
        attended, _ = self.attention(
            states, states, states, attn_mask=causal_mask(x.shape[1], x.device), need_weights=False
        )
        h = self.norm(states + nn.functional.glu(self.gate(self.dropout(attended)), dim=-1))
        return torch.tanh(self.head(h[:, -1]))
