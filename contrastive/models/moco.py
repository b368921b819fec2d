"""MoCo v2: a query encoder trained against a momentum (EMA) key encoder and a queue of past keys."""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from contrastive.batches import ViewBatch
from contrastive.models.base import ContrastiveModule


def ema_momentum(step: int, total_steps: int, base: float, final: float = 1.0) -> float:
    """EMA momentum rising from `base` to `final` on a cosine over training (BYOL's schedule; `final=base`
    keeps it constant, as in MoCo v2)."""
    progress = min(1.0, step / max(1, total_steps))
    return final - (final - base) * 0.5 * (1 + math.cos(math.pi * progress))


class MoCo(ContrastiveModule):
    """Query = projector(encoder(view 1)); key = the momentum copies applied to view 2, without gradient.
    The objective (InfoNCE) scores each query against its key and the queued keys; with `symmetric`, the two
    views swap roles too and the losses are averaged."""

    def __init__(self, encoder: nn.Module, projector: nn.Module, objective: nn.Module,
                 optimizer: Callable[..., torch.optim.Optimizer], negatives: nn.Module | None = None,
                 momentum: float = 0.99, final_momentum: float = 0.99, symmetric: bool = False,
                 warmup_epochs: float = 10, final_lr_ratio: float = 0.0, guard: str = "stop",
                 channels_last: bool = False, compile: bool = False) -> None:
        super().__init__(encoder, objective, optimizer, negatives, warmup_epochs, final_lr_ratio, guard=guard,
                         channels_last=channels_last, compile=compile)
        if not 0 <= momentum <= final_momentum <= 1:
            raise ValueError(f"need 0 <= momentum <= final_momentum <= 1, got {momentum}, {final_momentum}")
        self.projector = projector
        self.key_encoder, self.key_projector = copy.deepcopy(encoder), copy.deepcopy(projector)
        for p in [*self.key_encoder.parameters(), *self.key_projector.parameters()]:
            p.requires_grad_(False)

    @torch.no_grad()
    def _momentum_update(self) -> None:
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        m = ema_momentum(self.global_step, total, self.hparams.momentum, self.hparams.final_momentum)
        pairs = [(self.encoder, self.key_encoder), (self.projector, self.key_projector)]
        for online, target in pairs:
            for p, k in zip(online.parameters(), target.parameters()):
                k.mul_(m).add_(p.detach(), alpha=1 - m)
            for b, kb in zip(online.buffers(), target.buffers()):
                kb.copy_(b)
        self.log("train/momentum", m, on_step=True, on_epoch=False)

    def _keys(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.key_projector(self.key_encoder(self._images(x)))

    def _loss(self, batch: Any, stage: str) -> torch.Tensor:
        v1, v2, _, index = ViewBatch.of(batch)
        if stage == "train":
            self._momentum_update()
        q1 = self.projector(self._encode(v1))
        k2 = self._keys(v2)
        if not self.hparams.symmetric:
            return self._objective(q1, k2, index, store=stage == "train")
        q2, k1 = self.projector(self._encode(v2)), self._keys(v1)
        # both directions score against the same stored negatives; the keys of both views are stored once, below
        loss = 0.5 * (self._objective(q1, k2, index, store=False) + self._objective(q2, k1, index, store=False))
        if self.negatives is not None and stage == "train":
            self._store_keys(torch.cat([k1, k2]), None if index is None else torch.cat([index, index]))
        return loss
