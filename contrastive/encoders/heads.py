"""Projection heads."""
from __future__ import annotations

import torch
from torch import nn


class MLPHead(nn.Module):
    """SimCLR's projection MLP: `[B, in_dim]` -> `[B, out_dim]` through `num_layers` linear layers with
    BatchNorm and ReLU between them."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, num_layers: int = 2) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        layers: list[nn.Module] = []
        d = in_dim
        for _ in range(num_layers - 1):
            layers += [nn.Linear(d, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)]
            d = hidden_dim
        layers.append(nn.Linear(d, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
