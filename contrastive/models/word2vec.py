"""Word2Vec (skip-gram): input embeddings `[V, d]` with sparse gradients; the output layer and its loss are
the configured objective (NCE, sampled softmax, negative sampling, full softmax)."""
from __future__ import annotations

import time
import warnings
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from contrastive import distributed as D
from contrastive.losses import NCELoss, SampledSoftmaxLoss
from contrastive.models.base import check_guard, first_non_finite_grad
from contrastive.optim import SparseSGD
from contrastive.word2vec import batched, hogwild

OPTIMIZERS = ("auto", "hogwild", "per_pair", "sgd", "adam")
# (lr, final ratio); per_pair's 0.04 on the Wikipedia sample, 5 epochs: wordsim353 / simlex999 0.455 / 0.223,
# against 0.432 / 0.236 at 0.03 and 0.469 / 0.212 at 0.05
DEFAULT_LR = {"hogwild": (0.025, 0.0001), "per_pair": (0.04, 0.05), "sgd": (0.025, 0.0001), "adam": (0.01, 0.05)}


class Word2Vec(pl.LightningModule):
    """`objective(embeddings [B, d], context [B, 1])` -> scalar (the batch mean). `optimizer`:

    - `hogwild`: word2vec's per-pair SGD, compiled: each pair draws its own negatives and is updated before
      the next is scored, threads sharing the tables (CPU, one process, numba; NCE and negative sampling).
    - `per_pair`: the same per-pair losses and negatives, batched for any device: each pair draws its own
      negatives; SparseAdam on the batch's mean loss (NCE with a fixed sampler and negative sampling).
    - `sgd`: plain SGD on the loss summed over pairs, sparse rows applied without coalescing (any objective
      and device; NCE's negatives, shared by the batch, take summed steps that can diverge at large batches).
    - `adam`: SparseAdam for sparse parameters and Adam for dense ones on the mean loss (robust, slowest).
    - `auto` (default): hogwild on CPU in one process, else per_pair, where they apply (NCE with a fixed
      sampler or negative sampling), else adam.

    `lr` is per pair for hogwild and sgd (word2vec's alpha); `None` takes the optimizer's default (0.025, 0.04
    for per_pair, 0.01 for adam). The learning rate decays linearly to `final_lr_ratio` of itself (as word2vec)."""

    def __init__(self, vocab_size: int, dim: int, objective: nn.Module, lr: float | None = None,
                 final_lr_ratio: float | None = None, sparse: bool = True, optimizer: str = "auto",
                 guard: str = "stop") -> None:
        super().__init__()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"model.optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        self.save_hyperparameters(ignore=["objective"], logger=False)
        self.embedding = nn.Embedding(vocab_size, dim, sparse=sparse)
        nn.init.uniform_(self.embedding.weight, -0.5 / dim, 0.5 / dim)  # word2vec's initialisation
        self.objective = objective
        self.automatic_optimization = False  # hogwild and the two-optimizer adam step by hand
        check_guard(guard)
        self.fit_seconds = self.compile_seconds = 0.0
        self.method, self.skipped_steps = optimizer, 0

    @property
    def vectors(self) -> torch.Tensor:
        """The word vectors `[V, d]` (input embeddings)."""
        return self.embedding.weight.detach()

    def setup(self, stage: str) -> None:
        if D.is_distributed():  # DDP all-reduces dense gradients only: the tables switch to dense ones
            for m in self.modules():
                if getattr(m, "sparse", False):
                    m.sparse = False

    def _resolve(self) -> str:
        """The optimizer `auto` stands for here, or the configured one after checking that it can run."""
        name = self.hparams.optimizer
        fits = self.device.type == "cpu" and not D.is_distributed()
        if name == "auto":
            if not hogwild.supports(self.objective):
                return "adam"
            return "hogwild" if fits and hogwild.numba is not None else "per_pair"
        if name == "hogwild" and not fits:
            raise ValueError("model.optimizer=hogwild updates the tables in place in one CPU process; use "
                             "model.optimizer=per_pair (each pair its own negatives), sgd or adam on GPUs and "
                             "under DDP")
        if name in ("hogwild", "per_pair"):
            hogwild.plan(self.objective)  # raises, naming what is unsupported
        return name

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        centre, context = batch
        opts = self.optimizers()
        opts = opts if isinstance(opts, list) else [opts]
        if self.method == "hogwild":  # draws, scores and updates in one pass; the optimizer only holds the lr
            # trainer.deterministic=true runs one thread, so the updates land in the same order every run
            # the rate decays across the batch's pairs to the next step's, so a large batch decays smoothly
            group = opts[0].optimizer.param_groups[0]
            loss = hogwild.hogwild_step(self.embedding.weight, self.objective, centre, context, group["lr"],
                                        lr_end=group["initial_lr"] * self._decay(self.global_step + 1))
        elif self.method == "per_pair":
            loss = batched.per_pair_loss(self.embedding(centre), self.objective, context).mean()
        else:
            loss = self.objective(self.embedding(centre), context)
        bad = None if bool(torch.isfinite(loss)) else f"non-finite loss {loss.item()}"
        for o in opts:
            o.zero_grad(set_to_none=True)
        if self.method != "hogwild" and bad is None:
            self.manual_backward(loss * centre.numel() if self.method == "sgd" else loss)
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
            self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=centre.numel())
        return loss.detach()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.hparams.guard == "skip" and self.method == "hogwild":
            # the compiled step updates the tables as it scores: a skipped step puts back this copy
            self._saved = [p.detach().clone() for p in self.parameters()]

    def _skip(self, what: str, opts: list[torch.optim.Optimizer]) -> None:
        """Stop (guard=stop) or leave the tables as they were before this step (guard=skip), warning."""
        msg = f"{what} at step {self.global_step} (loss term: {type(self.objective).__name__}, optimizer {self.method})"
        if self.hparams.guard == "stop":
            raise FloatingPointError(f"{msg}; training stopped. Lower model.lr or set guard=skip to skip such steps")
        for o in opts:
            o.zero_grad(set_to_none=True)
        if self.method == "hogwild":
            with torch.no_grad():
                for p, saved in zip(self.parameters(), self._saved):
                    p.copy_(saved)
        self.skipped_steps += 1
        warnings.warn(f"{msg}; step skipped ({self.skipped_steps} so far), the tables left as they were")

    def on_train_start(self) -> None:
        if self.method == "hogwild":  # compile before the clock starts: compilation is not training
            t = time.perf_counter()
            hogwild.compile_kernel()
            self.compile_seconds = time.perf_counter() - t
        self._t0 = time.perf_counter()

    def on_train_end(self) -> None:
        self.fit_seconds = time.perf_counter() - self._t0

    def configure_optimizers(self) -> Any:
        self.method = self._resolve()
        data = getattr(self.trainer, "datamodule", None)
        if getattr(data, "shuffle_block", 0) is None:
            # the compiled step trains faster on blocks of neighbouring pairs; batched steps diverge on them
            # (a batch of a few neighbourhoods pushes the same rows many times): they get pairs one by one
            data.shuffle_block = hogwild.PAIR_BLOCK if self.method == "hogwild" else 1
        print(f"word2vec: optimizer {self.method}" + (" (model.optimizer=auto)" if self.hparams.optimizer == "auto" else ""))
        shared = getattr(self.objective, "num_sampled", 64)
        if self.method in ("sgd", "adam") and isinstance(self.objective, (NCELoss, SampledSoftmaxLoss)) and shared < 32:
            warnings.warn(f"with model.optimizer={self.method} the whole batch shares its num_negatives={shared} "
                          "sampled classes (TensorFlow's semantics), too few for good vectors; use num_negatives=64 "
                          "(or model.optimizer=hogwild on CPU or per_pair, which draw them per pair)")
        lr, final = DEFAULT_LR[self.method]
        lr = self.hparams.lr if self.hparams.lr is not None else lr
        final = self.hparams.final_lr_ratio if self.hparams.final_lr_ratio is not None else final
        sparse = [p for m in self.modules() for p in m.parameters(recurse=False) if getattr(m, "sparse", False)]
        ids = {id(p) for p in sparse}
        dense = [p for p in self.parameters() if id(p) not in ids and p.requires_grad]
        opts: list[torch.optim.Optimizer] = []
        if self.method in ("sgd", "hogwild"):
            opts.append(SparseSGD(sparse + dense, lr=lr))
        else:
            if sparse:
                opts.append(torch.optim.SparseAdam(sparse, lr=lr))
            if dense:
                opts.append(torch.optim.Adam(dense, lr=lr))
        total = max(1, int(self.trainer.estimated_stepping_batches))
        self._decay = lambda s: max(final, 1 - (1 - final) * s / total)
        return opts, [torch.optim.lr_scheduler.LambdaLR(o, self._decay) for o in opts]
