"""A small CNN for small grayscale images (the digits set)."""
from __future__ import annotations

import torch
from torch import nn


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class DigitsCNN(nn.Module):
    """Conv-BN-ReLU stages with pooling, then global average pooling: `[B, C, H, W]` -> `[B, out_dim]`."""

    def __init__(self, in_channels: int = 1, width: int = 32, out_dim: int = 128) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _block(in_channels, w), _block(w, w), nn.MaxPool2d(2),
            _block(w, 2 * w), _block(2 * w, 2 * w), nn.MaxPool2d(2),
            _block(2 * w, out_dim), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
