"""Online monitors: how good the features are while training, at each validation, from the frozen encoder."""
from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import Subset

from contrastive.eval.knn import embed, knn_accuracy
from contrastive.eval.linear import linear_probe_accuracy


class OnlineMonitors(pl.Callback):
    """At each validation (not the sanity check): `val/knn_top1`, k-NN top-1 of the un-augmented validation split
    against the un-augmented training split (at most `max_train` images of it, a fixed sample), and
    `val/linear_top1`, a linear probe fitted to the same training features (L-BFGS, `probe_iters` iterations);
    features from the encoder in eval mode, on the training device. Logged to the progress bar, CSV and
    TensorBoard; `monitor_seconds` says what they cost."""

    def __init__(self, max_train: int = 10_000, probe_iters: int = 100) -> None:
        self.max_train, self.probe_iters = max_train, probe_iters
        self.seconds = 0.0

    def on_validation_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        dm = trainer.datamodule
        val_loader = dm.eval_val_loader() if dm is not None else None
        if trainer.sanity_checking or val_loader is None or getattr(dm, "num_classes", 0) < 2:
            return
        start = time.perf_counter()
        train_set = dm.eval_train_set
        if len(train_set) > self.max_train:
            pick = torch.randperm(len(train_set), generator=torch.Generator().manual_seed(0))[:self.max_train]
            train_set = Subset(train_set, pick.tolist())
        # the data module's loader has its own generator: one without would draw from the global RNG and change
        # the training run's augmentations and negatives (monitors on and off must train the same weights)
        train_f, train_y = embed(module.encoder, dm.eval_loader(train_set), module.device)
        val_f, val_y = embed(module.encoder, val_loader, module.device)
        metrics: dict[str, Any] = {
            "val/knn_top1": knn_accuracy(train_f, train_y, val_f, val_y),
            "val/linear_top1": linear_probe_accuracy(train_f, train_y, val_f, val_y, max_iter=self.probe_iters)}
        self.seconds += time.perf_counter() - start
        for name, value in metrics.items():
            module.log(name, value, prog_bar=True, on_epoch=True)
        module.log("val/monitor_seconds", self.seconds, on_epoch=True)
