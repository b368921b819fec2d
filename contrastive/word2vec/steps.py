"""How word-vector tables learn (the `step` group): each class owns its optimizers, its default rate and decay,
its per-batch loss and how the pairs are shuffled for it. `Auto` picks one for the device and the objective."""
from __future__ import annotations

import math
import time
import warnings
from typing import Any

import torch
from torch import nn

from contrastive.optim import SparseSGD
from contrastive.word2vec import batched, hogwild


def init_table(table: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """word2vec's initialisation of an input table `[V, d]`, in place: uniform in [-0.5 / d, 0.5 / d)."""
    with torch.no_grad():
        return table.uniform_(-0.5 / table.shape[1], 0.5 / table.shape[1], generator=generator)


def linear_rate(step: float, total: int, final: float) -> float:
    """The fraction of the start rate at `step` of `total`: linear from 1 down to `final`, then `final`."""
    return max(final, 1 - (1 - final) * step / total)


class Step:
    """A way to train `Word2Vec`'s tables. `lr` / `final_lr_ratio`: the start rate and where it decays to
    linearly (None: the class's default)."""

    name = "step"
    default_lr, default_final = 0.01, 0.05
    in_place = False  # updates the tables itself while scoring (no backward; a skipped step restores a copy)
    per_pair = False  # each pair draws its own negatives (the objective's pair_plan), from the run's generator
    shuffle_block = 1  # pairs shuffled as a unit: batched steps diverge on blocks of neighbouring pairs
    makes_pairs = False  # reads token blocks `(ids, sent, starts, (block, window))` and makes the pairs itself
    batch_size = 2048  # pairs per step when data.batch_size is null

    def __init__(self, lr: float | None = None, final_lr_ratio: float | None = None) -> None:
        if lr is not None and not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"step.lr must be a positive finite number, got {lr!r}")
        if final_lr_ratio is not None and not 0 < final_lr_ratio <= 1:
            raise ValueError(f"step.final_lr_ratio must be in (0, 1], got {final_lr_ratio!r}")
        self.lr = self.default_lr if lr is None else float(lr)
        self.final_lr_ratio = self.default_final if final_lr_ratio is None else float(final_lr_ratio)

    def resolve(self, objective: nn.Module, one_cpu_process: bool) -> Step:
        """The step that trains here: itself, after checking that it can (raises naming what cannot)."""
        if self.per_pair:
            hogwild.plan(objective)  # raises, naming what is unsupported
            check_no_sampler_seed(objective, self.name)
        return self

    def prepare(self) -> float:
        """Work done once before training (compiling a kernel); returns its seconds."""
        return 0.0

    def optimizers(self, sparse: list[nn.Parameter], dense: list[nn.Parameter]) -> list[torch.optim.Optimizer]:
        """SparseAdam for the sparse tables, Adam for the rest."""
        made: list[torch.optim.Optimizer] = [torch.optim.SparseAdam(sparse, lr=self.lr)] if sparse else []
        return made + ([torch.optim.Adam(dense, lr=self.lr)] if dense else [])

    def loss(self, model: nn.Module, batch: Any, group: dict[str, Any], lr_end: float) -> torch.Tensor:
        """The batch's mean loss (`(centre [B], context [B, 1])`, or a token window where `makes_pairs`), to
        back-propagate unless `in_place`."""
        centre, context = batch
        return model.objective(model.embedding(centre), context)

    def backward_scale(self, pairs: int) -> float:
        """What the mean loss is multiplied by before the backward pass."""
        return 1.0

    def warn_if_unsuited(self, objective: nn.Module) -> None:
        """Batched steps share an objective's sampled classes across the batch (TensorFlow's semantics)."""
        shared = not self.per_pair and getattr(objective, "shares_negatives", False) and objective.num_sampled
        if shared and shared < 32:
            warnings.warn(f"with step={self.name} the whole batch shares its num_negatives={shared} sampled classes "
                          "(TensorFlow's semantics), too few for good vectors; use num_negatives=64 (or step=hogwild "
                          "on CPU or per_pair, which draw them per pair)")


class Adam(Step):
    """SparseAdam for the sparse tables and Adam for dense parameters on the batch's mean loss (any objective and
    device; robust, slowest)."""

    name = "adam"


class SGD(Step):
    """Plain SGD on the loss summed over pairs (word2vec's per-pair rate), sparse rows applied without coalescing;
    NCE's negatives, shared by the batch, take summed steps that can diverge at large batches."""

    name = "sgd"
    default_lr, default_final = 0.025, 0.0001

    def optimizers(self, sparse: list[nn.Parameter], dense: list[nn.Parameter]) -> list[torch.optim.Optimizer]:
        return [SparseSGD(sparse + dense, lr=self.lr)]

    def backward_scale(self, pairs: int) -> float:
        return float(pairs)


def check_no_sampler_seed(objective: nn.Module, step: str) -> None:
    """Per-pair steps draw every pair's negatives from the run's generator (`seed`), not the sampler's own."""
    seed = getattr(getattr(objective, "sampler", None), "seed", None)
    if seed is not None:
        raise ValueError(f"candidates.seed={seed} has no effect with step={step}: each pair draws its negatives from "
                         "the run's generator (set seed=...); remove candidates.seed, or use step=sgd|adam, whose "
                         "sampler draws for the whole batch")


class PerPair(Step):
    """Each pair its own negatives, batched for any device (NCE with a fixed sampler, negative sampling):
    SparseAdam on the batch's mean loss. 0.04 on the Wikipedia sample, 5 epochs: wordsim353 / simlex999
    0.455 / 0.223, against 0.432 / 0.236 at 0.03 and 0.469 / 0.212 at 0.05."""

    name = "per_pair"
    default_lr, default_final = 0.04, 0.05
    batch_size = 65536
    per_pair = True

    def loss(self, model: nn.Module, batch: Any, group: dict[str, Any], lr_end: float) -> torch.Tensor:
        centre, context = batch
        return batched.per_pair_loss(model.embedding(centre), model.objective, context).mean()


class Hogwild(SGD):
    """word2vec's per-pair SGD, compiled (numba): each pair draws its own negatives and is updated before the next
    is scored, threads sharing the tables as gensim's workers do (CPU, one process; NCE with a fixed sampler and
    negative sampling). The pairs are made from the token stream as they train (no pair tensors); the rate decays
    across each batch's centres; `trainer.deterministic=true` runs one thread."""

    name = "hogwild"
    in_place = per_pair = makes_pairs = True
    batch_size = 2**18  # the rate decays across a call's pairs: this only sets the work per call (fewer, less loop)
    shuffle_block = hogwild.PAIR_BLOCK

    def resolve(self, objective: nn.Module, one_cpu_process: bool) -> Step:
        if not one_cpu_process:
            raise ValueError("step=hogwild updates the tables in place in one CPU process; use step=per_pair (each "
                             "pair its own negatives), sgd or adam on GPUs and under DDP")
        return super().resolve(objective, one_cpu_process)

    def prepare(self) -> float:
        t = time.perf_counter()
        hogwild.compile_kernel()  # a few seconds, once per process
        return time.perf_counter() - t

    def loss(self, model: nn.Module, batch: Any, group: dict[str, Any], lr_end: float) -> torch.Tensor:
        ids, sent, starts, (block, window) = batch
        return hogwild.hogwild_stream(model.embedding.weight, model.objective, ids, sent, starts, int(block),
                                      int(window), group["lr"], lr_end=lr_end)


class Auto(Step):
    """hogwild on CPU in one process (with numba), else per_pair, where they apply (NCE with a fixed sampler,
    negative sampling), else adam; `lr` / `final_lr_ratio` pass to the chosen step."""

    name = "auto"

    def __init__(self, lr: float | None = None, final_lr_ratio: float | None = None) -> None:
        super().__init__(lr, final_lr_ratio)
        self.given = (lr, final_lr_ratio)

    def resolve(self, objective: nn.Module, one_cpu_process: bool) -> Step:
        if not hogwild.supports(objective):
            return Adam(*self.given)
        chosen = (Hogwild if one_cpu_process and hogwild.numba is not None else PerPair)(*self.given)
        return chosen.resolve(objective, one_cpu_process)
