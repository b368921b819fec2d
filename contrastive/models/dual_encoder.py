"""Dual encoder for text pairs: anchor and positive towers (shared or separate) trained with the configured
objective (CLIP's symmetric loss, or InfoNCE with in-batch plus hard negatives)."""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from contrastive.models.base import ContrastiveModule


class DualEncoder(ContrastiveModule):
    """`encoder` embeds anchors; the positive tower is the same module (`shared=True`) or a copy."""

    def __init__(self, encoder: nn.Module, objective: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 shared: bool | None = True, warmup_epochs: float = 1, final_lr_ratio: float = 0.0,
                 guard: str = "stop") -> None:
        if shared is None:
            raise ValueError("model.shared=null is chosen by the text-pairs task from the number of pairs; "
                             "building DualEncoder yourself, pass shared=True or False")
        super().__init__(encoder, objective, optimizer, None, warmup_epochs, final_lr_ratio, guard=guard)
        self.positive_encoder = encoder if shared else copy.deepcopy(encoder)

    def embed(self, ids: torch.Tensor, side: str = "anchor") -> torch.Tensor:
        """Embeddings `[B, out_dim]` of padded token ids `[B, L]` from the anchor or positive tower."""
        return (self.encoder if side == "anchor" else self.positive_encoder)(ids)

    def _loss(self, batch: Any, stage: str) -> torch.Tensor:
        a, p = self.embed(batch["anchor"]), self.embed(batch["positive"], "positive")
        negs = batch.get("negatives")
        ids = {"ids": batch["ids"]} if "ids" in self.objective_keywords else {}  # a user's loss may not take them
        if negs is None:
            return self._scalar(self.objective(a, p, **ids))
        if "extra_negatives" not in self.objective_keywords:
            raise ValueError(f"the pairs file has a negative column (hard negatives), which "
                             f"{type(self.objective).__name__} does not score; use objective=clip|infonce, or a "
                             "file without negatives")
        hard = self.embed(negs.flatten(0, 1), "positive")  # [B*K, d]
        # every anchor against every positive and every hard negative of the batch
        return self._scalar(self.objective(a, p, **ids, extra_negatives=hard))

    def _batch_size(self, batch: Any) -> int:
        return int(batch["anchor"].shape[0])
