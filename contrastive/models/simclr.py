"""SimCLR: encoder -> projector -> contrastive objective on two views. Wiring only."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from contrastive.models.base import ContrastiveModule


class SimCLR(ContrastiveModule):
    """Trains `encoder` and `projector` so that the objective pulls the two views of an image together.

    `objective(z1, z2, ...)` -> scalar (e.g. `NTXent`); `negatives` optionally adds a queue or memory bank;
    `optimizer` is a partial optimizer factory; the LR warms up linearly, then follows a cosine.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, objective: nn.Module,
                 optimizer: Callable[..., torch.optim.Optimizer], negatives: nn.Module | None = None,
                 warmup_epochs: float = 10, final_lr_ratio: float = 0.0) -> None:
        super().__init__(encoder, objective, optimizer, negatives, warmup_epochs, final_lr_ratio)
        self.projector = projector

    def _loss(self, batch: Any, stage: str) -> torch.Tensor:
        v1, v2, index = batch[0], batch[1], (batch[3] if len(batch) > 3 else None)
        z1, z2 = self.projector(self.encoder(torch.cat([v1, v2]))).chunk(2)
        return self._objective(z1, z2, index, stage)
