"""ITransformer: the inverted Transformer (Liu et al., ICLR 2024, "iTransformer").

Each variate (feature) is one token: its whole lookback series x[:, :, f] (length T) is embedded
by a linear map T -> d_model; self-attention then runs across variates (multivariate
correlations) and the feed-forward layers over each variate's series representation. The
variate tokens are mean-pooled and projected to [B, forecast_horizon].
"""

from __future__ import annotations

import torch
from torch import nn

from quant_lib.models._layers import check_input, zero_init_
from quant_lib.models.base import BaseModel


class ITransformer(BaseModel):
    architecture = "itransformer"

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
        self.embed = nn.Linear(seq_len, d_model)
        self.variate_id = nn.Parameter(torch.zeros(n_features, d_model))
        layer = nn.TransformerEncoderLayer(d_model, n_heads, d_ff, dropout, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, forecast_horizon)
        zero_init_(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.n_features)
        if x.shape[1] != self.config["seq_len"]:
            raise ValueError(f"ITransformer embeds whole series: seq_len must be {self.config['seq_len']}, got {x.shape[1]}")
        tokens = self.embed(x.transpose(1, 2)) + self.variate_id  # [B, F, d_model]
        return self.head(self.norm(self.encoder(tokens)).mean(dim=1))
