"""contrastive: contrastive self-supervised learning on PyTorch Lightning and Hydra."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__version__ = "0.1.0"


def load_encoder(source: str, checkpoint: str = "last.ckpt", with_projector: bool = False) -> torch.nn.Module:
    """The trained encoder of an image run directory (or checkpoint file), ready for `eval()`; see export.py."""
    from contrastive.cli.export import load_encoder as load

    return load(source, checkpoint, with_projector)
