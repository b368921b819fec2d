"""Word2Vec (skip-gram): input embeddings `[V, d]` with sparse gradients; the output layer and its loss are
the configured objective (NCE, sampled softmax, negative sampling, full softmax)."""
from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from contrastive import distributed as D
from contrastive.models.base import check_guard, first_non_finite_grad, stop_or_skip
from contrastive.word2vec.steps import Auto, Step, init_table, linear_rate


class Word2Vec(pl.LightningModule):
    """`objective(embeddings [B, d], context [B, 1])` -> scalar (the batch mean); `step` says how the tables
    learn (`contrastive.word2vec.steps`: hogwild, per_pair, sgd, adam; `Auto` picks one when training starts)."""

    def __init__(self, vocab_size: int, dim: int, objective: nn.Module, step: Step | None = None,
                 sparse: bool = True, guard: str = "stop") -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["objective", "step"], logger=False)
        self.embedding = nn.Embedding(vocab_size, dim, sparse=sparse)
        init_table(self.embedding.weight)
        self.objective = objective
        self.automatic_optimization = False  # hogwild and the two-optimizer adam step by hand
        check_guard(guard)
        self.fit_seconds = self.compile_seconds = 0.0
        self.configured = step if step is not None else Auto()
        self.step, self.skipped_steps = self.configured, 0

    @property
    def vectors(self) -> torch.Tensor:
        """The word vectors `[V, d]` (input embeddings)."""
        return self.embedding.weight.detach()

    def setup(self, stage: str) -> None:
        if D.is_distributed():  # DDP all-reduces dense gradients only: the tables switch to dense ones
            for m in self.modules():
                if getattr(m, "sparse", False):
                    m.sparse = False

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        size = batch[0].numel()  # pairs, or the tokens of a window (the weight of this batch in the epoch's mean)
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        # an in-place step's rate decays across the batch's pairs to the next step's, so a large batch decays smoothly
        group = opts[0].optimizer.param_groups[0]
        loss = self.step.loss(self, batch, group, group["initial_lr"] * self._decay(self.global_step + 1))
        bad = None if bool(torch.isfinite(loss)) else f"non-finite loss {loss.item()}"
        for o in opts:
            o.zero_grad(set_to_none=True)
        if not self.step.in_place and bad is None:
            self.manual_backward(loss * self.step.backward_scale(size))
            name = first_non_finite_grad(self)
            bad = None if name is None else f"non-finite gradient in {name}"
        if bad is not None:
            self._skip(bad, opts)
        for o in opts:
            o.step()  # without gradients (hogwild, a skipped step) a no-op that keeps the bookkeeping in order
        scheds = self.lr_schedulers()
        for s in scheds if isinstance(scheds, list) else [scheds]:
            s.step()
        if bad is None:
            self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=size)
        return loss.detach()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.hparams.guard == "skip" and self.step.in_place:
            # the compiled step updates the tables as it scores: a skipped step puts back this copy
            self._saved = [p.detach().clone() for p in self.parameters()]

    def _skip(self, what: str, opts: list[torch.optim.Optimizer]) -> None:
        """Stop (guard=stop) or leave the tables as they were before this step (guard=skip), warning."""
        stop_or_skip(self, self.hparams.guard, f"{what} (step={self.step.name})", "the tables", "step.lr")
        for o in opts:
            o.zero_grad(set_to_none=True)
        if self.step.in_place:
            with torch.no_grad():
                for p, saved in zip(self.parameters(), self._saved):
                    p.copy_(saved)

    def on_train_start(self) -> None:
        self.compile_seconds = self.step.prepare()  # before the clock starts: compilation is not training
        self._t0 = time.perf_counter()

    def on_train_end(self) -> None:
        self.fit_seconds = time.perf_counter() - self._t0

    def configure_optimizers(self) -> Any:
        self.step = self.configured.resolve(self.objective, self.device.type == "cpu" and not D.is_distributed())
        data = getattr(self.trainer, "datamodule", None)
        if getattr(data, "shuffle_block", 0) is None:  # the data module shuffles pairs in the step's blocks
            data.shuffle_block = self.step.shuffle_block
        if hasattr(data, "token_windows"):  # token windows for a step that makes its pairs, else pairs
            data.token_windows = self.step.makes_pairs
        if getattr(data, "batch_size", 0) is None:  # pairs per step: the step's own
            data.batch_size = self.step.batch_size
            print(f"word2vec: data.batch_size={data.batch_size:,} (step {self.step.name}'s)")
        chosen = f" (step={self.configured.name})" if self.configured is not self.step else ""
        print(f"word2vec: step {self.step.name}{chosen}")
        self.step.warn_if_unsuited(self.objective)
        sparse = [p for m in self.modules() for p in m.parameters(recurse=False) if getattr(m, "sparse", False)]
        ids = {id(p) for p in sparse}
        dense = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        opts = self.step.optimizers(sparse, dense)
        total, final = max(1, int(self.trainer.estimated_stepping_batches)), self.step.final_lr_ratio
        self._decay = lambda s: linear_rate(s, total, final)
        return opts, [torch.optim.lr_scheduler.LambdaLR(o, self._decay) for o in opts]
