"""DecoderTransformer: a decoder-only (GPT-style) forecaster over the feature sequence.

x [B, T, F] -> linear embedding + sinusoidal positions -> n_layers of causal self-attention
(pre-norm) -> the last step's hidden state -> linear head -> [B, forecast_horizon] log returns.
The causal mask lets step t attend to steps <= t only, so no hidden state sees the future.
"""

from __future__ import annotations

import torch
from torch import nn

from quant_lib.models._layers import SinusoidalPositionalEncoding, causal_mask, check_input, zero_init_
from quant_lib.models.base import BaseModel


class DecoderTransformer(BaseModel):
    architecture = "transformer"

    def __init__(
        self,
        *,
        n_features: int,
        seq_len: int = 60,
        forecast_horizon: int = 5,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        d_ff: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__(
            n_features=n_features, seq_len=seq_len, forecast_horizon=forecast_horizon, d_model=d_model,
            n_heads=n_heads, n_layers=n_layers, d_ff=d_ff, dropout=dropout,
        )
        self.embed = nn.Linear(n_features, d_model)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len=max(seq_len, 512))
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True, norm_first=True)
            for _ in range(n_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, forecast_horizon)
        zero_init_(self.head)

    def hidden_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output [B, T, d_model] (input embedding first)."""
        check_input(x, self.n_features)
        mask = causal_mask(x.shape[1], x.device)
        h = self.positions(self.embed(x))
        states = [h]
        for layer in self.layers:
            h = layer(h, src_mask=mask, is_causal=True)
            states.append(h)
        return states

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.hidden_states(x)[-1][:, -1]))
