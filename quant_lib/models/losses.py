"""Training losses for return forecasters and position nets.

Conventions: ``predictions`` are [B, H] forecasts of the next H one-bar log returns (or [B, 1]
positions in [-1, 1] from the MomentumTransformer); ``targets`` are the realized [B, H] returns.
A position is held for the next bar, so it earns ``targets[:, 0]``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _positions(predictions: torch.Tensor, already_positions: bool) -> torch.Tensor:
    first = predictions.reshape(predictions.shape[0], -1)[:, 0]
    if already_positions:
        return first
    return torch.tanh(first / (first.detach().std(unbiased=False) + 1e-8))


class DifferentiableSharpeRatio(nn.Module):
    """loss = -sqrt(A) * mean(p * r) / (std(p * r) + eps)  (Moody & Saffell 2001; Lim et al. 2019).

    ``p`` are positions (the Momentum net's output, or tanh of standardized forecasts when
    ``positions=False``), ``r = targets[:, 0]`` the next-bar return, ``A`` the annualization
    factor (252 for daily bars). The gradient flows through the positions.
    """

    def __init__(self, annualization: float = 252.0, eps: float = 1e-8, positions: bool = True) -> None:
        super().__init__()
        self.scale = math.sqrt(annualization)
        self.eps = eps
        self.positions = positions

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        strategy = _positions(predictions, self.positions) * targets.reshape(targets.shape[0], -1)[:, 0]
        return -self.scale * strategy.mean() / (strategy.std(unbiased=False) + self.eps)


class DirectionalLoss(nn.Module):
    """loss = mean(relu(-sign(y) * y_hat)) / (mean|y| + eps): a hinge on forecasts of the wrong sign.

    Zero when every forecast has the sign of its target; grows linearly with the size of a wrong
    call, scaled by the typical target size so it is comparable across return scales.
    """

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        wrong = torch.relu(-torch.sign(targets) * predictions)
        return wrong.mean() / (targets.abs().mean() + self.eps)


class CombinedLoss(nn.Module):
    """loss = w_mse * MSE / var(y) + w_dir * DirectionalLoss + w_sharpe * DifferentiableSharpeRatio.

    The MSE is divided by the targets' variance (so 1.0 is the zero forecast's loss on centred
    targets) to keep the terms on comparable scales whatever the return units.
    """

    def __init__(
        self, mse_weight: float = 1.0, directional_weight: float = 0.1, sharpe_weight: float = 0.0,
        annualization: float = 252.0,
    ) -> None:
        super().__init__()
        self.mse_weight = mse_weight
        self.directional_weight = directional_weight
        self.sharpe_weight = sharpe_weight
        self.directional = DirectionalLoss()
        self.sharpe = DifferentiableSharpeRatio(annualization, positions=False)

    def forward(self, predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        mse = nn.functional.mse_loss(predictions, targets) / (targets.detach().var(unbiased=False) + 1e-12)
        loss = self.mse_weight * mse
        if self.directional_weight:
            loss = loss + self.directional_weight * self.directional(predictions, targets)
        if self.sharpe_weight:
            loss = loss + self.sharpe_weight * self.sharpe(predictions, targets)
        return loss
