"""SimCLR: encoder -> projector -> contrastive objective on two views. Wiring only."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import pytorch_lightning as pl
import torch
from torch import nn

from contrastive.models.optim import warmup_cosine


class SimCLR(pl.LightningModule):
    """Trains `encoder` and `projector` so that the objective pulls the two views of an image together.

    `objective(z1, z2)` -> scalar (e.g. `NTXent`); `optimizer` is a partial optimizer factory
    (`params -> Optimizer`); the LR warms up linearly for `warmup_epochs`, then follows a cosine.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, objective: nn.Module,
                 optimizer: Callable[..., torch.optim.Optimizer], warmup_epochs: float = 10,
                 final_lr_ratio: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["encoder", "projector", "objective", "optimizer"], logger=False)
        self.encoder, self.projector, self.objective = encoder, projector, objective
        self.optimizer_factory = optimizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features `[B, out_dim]` (what downstream tasks use)."""
        return self.encoder(x)

    def _loss(self, batch: Any, stage: str) -> torch.Tensor:
        v1, v2 = batch[0], batch[1]
        z = self.projector(self.encoder(torch.cat([v1, v2])))
        z1, z2 = z.chunk(2)
        loss = self.objective(z1, z2)
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=stage == "train", on_epoch=True,
                 sync_dist=stage == "val", batch_size=v1.shape[0])
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch, "train")
        temperature = getattr(self.objective, "temperature", None)
        if temperature is not None:
            self.log("train/temperature", temperature().detach(), on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._loss(batch, "val")

    def configure_optimizers(self) -> Any:
        opt = self.optimizer_factory(self.parameters())
        total = int(self.trainer.estimated_stepping_batches)
        per_epoch = max(1, total // max(1, self.trainer.max_epochs or 1))
        warmup = min(total - 1, int(self.hparams.warmup_epochs * per_epoch)) if total > 1 else 0
        schedule = partial(warmup_cosine, warmup_steps=max(1, warmup), total_steps=total,
                           final_ratio=self.hparams.final_lr_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
