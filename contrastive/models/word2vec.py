"""Word2Vec (skip-gram): input embeddings `[V, d]` with sparse gradients; the output layer and its loss are
the configured objective (NCE, sampled softmax, negative sampling, full softmax)."""
from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn


class Word2Vec(pl.LightningModule):
    """`objective(embeddings [B, d], context [B, 1])` -> scalar. Sparse parameters train with SparseAdam,
    dense ones with Adam, both with a learning rate decaying linearly to `final_lr_ratio` (as word2vec)."""

    def __init__(self, vocab_size: int, dim: int, objective: nn.Module, lr: float = 0.01,
                 final_lr_ratio: float = 0.05, sparse: bool = True, guard: str = "stop") -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["objective"], logger=False)
        self.embedding = nn.Embedding(vocab_size, dim, sparse=sparse)
        nn.init.uniform_(self.embedding.weight, -0.5 / dim, 0.5 / dim)  # word2vec's initialisation
        self.objective = objective
        self.automatic_optimization = False  # two optimizers: SparseAdam and Adam
        self.fit_seconds = 0.0

    @property
    def vectors(self) -> torch.Tensor:
        """The word vectors `[V, d]` (input embeddings)."""
        return self.embedding.weight.detach()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        centre, context = batch
        loss = self.objective(self.embedding(centre), context)
        if not bool(torch.isfinite(loss)):
            raise FloatingPointError(f"non-finite loss {loss.item()} at step {self.global_step} "
                                     f"(loss term: {type(self.objective).__name__})")
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        for o in opts:
            o.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        for o in opts:
            o.step()
        scheds = self.lr_schedulers()
        for s in scheds if isinstance(scheds, list) else [scheds]:
            s.step()
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=centre.numel())
        return loss.detach()

    def on_train_start(self) -> None:
        self._t0 = time.perf_counter()

    def on_train_end(self) -> None:
        self.fit_seconds = time.perf_counter() - self._t0

    def configure_optimizers(self) -> Any:
        sparse = [p for m in self.modules() for p in m.parameters(recurse=False) if getattr(m, "sparse", False)]
        ids = {id(p) for p in sparse}
        dense = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        opts: list[torch.optim.Optimizer] = []
        if sparse:
            opts.append(torch.optim.SparseAdam(sparse, lr=self.hparams.lr))
        if dense:
            opts.append(torch.optim.Adam(dense, lr=self.hparams.lr))
        total = max(1, int(self.trainer.estimated_stepping_batches))
        final = self.hparams.final_lr_ratio
        decay = lambda s: max(final, 1 - (1 - final) * s / total)  # noqa: E731
        return opts, [torch.optim.lr_scheduler.LambdaLR(o, decay) for o in opts]
