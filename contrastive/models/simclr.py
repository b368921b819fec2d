"""SimCLR: encoder -> projector -> contrastive objective on two views. Wiring only."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from contrastive.batches import ViewBatch
from contrastive.models.base import ContrastiveModule
from contrastive.models.grad_cache import cached_backward


class SimCLR(ContrastiveModule):
    """Trains `encoder` and `projector` so that the objective pulls the two views of an image together.

    `objective(z1, z2, ...)` -> scalar (e.g. `NTXent`); `negatives` optionally adds a queue or memory bank;
    `optimizer` is a partial optimizer factory; the LR warms up linearly, then follows a cosine.
    `cache_chunk` embeds the batch `cache_chunk` images at a time with gradient caching (same gradients,
    less activation memory; BatchNorm then normalises per chunk). `channels_last` and `compile` speed up
    convolutions on GPUs (`torch.compile` compiles the encoder on the first step); the loss is always float32.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, objective: nn.Module,
                 optimizer: Callable[..., torch.optim.Optimizer], negatives: nn.Module | None = None,
                 warmup_epochs: float = 10, final_lr_ratio: float = 0.0, cache_chunk: int | None = None,
                 guard: str = "stop", channels_last: bool = False, compile: bool = False) -> None:
        super().__init__(encoder, objective, optimizer, negatives, warmup_epochs, final_lr_ratio, cache_chunk, guard,
                         channels_last, compile)
        self.projector = projector

    def _loss(self, batch: Any, stage: str) -> torch.Tensor:
        v1, v2, label, index = ViewBatch.of(batch)
        z1, z2 = self.projector(self._encode(torch.cat([v1, v2]))).chunk(2)
        return self._objective(z1, z2, index, store=stage == "train", labels=label)

    def _cached_loss_backward(self, batch: Any) -> torch.Tensor:
        v1, v2, label, index = ViewBatch.of(batch)
        return cached_backward(lambda x: self.projector(self._encode(x)), [v1, v2],
                               lambda z1, z2: self._objective(z1, z2, index, store=True, labels=label),
                               self.hparams.cache_chunk, self.manual_backward)
