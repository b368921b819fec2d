"""torchvision ResNet-18/50 as a feature extractor, with an optional CIFAR stem."""
from __future__ import annotations

import torch
import torchvision
from torch import nn

_ARCHS = ("resnet18", "resnet34", "resnet50")


class ResNet(nn.Module):
    """ResNet without its classifier: `[B, C, H, W]` -> `[B, 512 or 2048]`.

    `cifar_stem=True` replaces the 7x7 stride-2 stem and max-pool with a 3x3 stride-1 conv (for 32x32).
    """

    def __init__(self, arch: str = "resnet18", cifar_stem: bool = False, in_channels: int = 3) -> None:
        super().__init__()
        if arch not in _ARCHS:
            raise ValueError(f"arch must be one of {_ARCHS}, got {arch!r}")
        net = getattr(torchvision.models, arch)(weights=None)
        if cifar_stem:
            net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            net.maxpool = nn.Identity()
        elif in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.out_dim = net.fc.in_features
        net.fc = nn.Identity()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
