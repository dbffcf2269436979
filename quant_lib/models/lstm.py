"""AttentionLSTM: a stacked LSTM whose last hidden state attends over all its hidden states.

h_1..h_T = LSTM(x); context = MultiHeadAttention(query=h_T, keys=values=h_1..h_T);
forecast = Linear([h_T, context]) -> [B, forecast_horizon].
"""

from __future__ import annotations

import torch
from torch import nn

from quant_lib.models._layers import check_input, zero_init_
from quant_lib.models.base import BaseModel


class AttentionLSTM(BaseModel):
    architecture = "lstm"

    def __init__(
        self,
        *,
        n_features: int,
        seq_len: int = 60,
        forecast_horizon: int = 5,
        hidden_size: int = 32,
        n_layers: int = 2,
        n_heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            n_features=n_features, seq_len=seq_len, forecast_horizon=forecast_horizon,
            hidden_size=hidden_size, n_layers=n_layers, n_heads=n_heads, dropout=dropout,
        )
        self.lstm = nn.LSTM(
            n_features, hidden_size, n_layers, batch_first=True, dropout=dropout if n_layers > 1 else 0.0
        )
        self.attention = nn.MultiheadAttention(hidden_size, n_heads, dropout=dropout, batch_first=True)
        self.head = nn.Sequential(nn.LayerNorm(2 * hidden_size), nn.Linear(2 * hidden_size, forecast_horizon))
        zero_init_(self.head[-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.n_features)
        states, _ = self.lstm(x)
        last = states[:, -1:]
        context, _ = self.attention(last, states, states, need_weights=False)
        return self.head(torch.cat([last, context], dim=-1).squeeze(1))
