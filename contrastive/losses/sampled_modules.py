"""`NCELoss` and `SampledSoftmaxLoss`: own the `[num_classes, dim]` output table and biases, draw their own
negatives each call, and touch only the rows used (sparse gradients), so a step's cost does not depend on
the vocabulary size."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contrastive import distributed as D
from contrastive.losses.sampled import (
    _check_inputs,
    nce_from_logits,
    sampled_logits,
    softmax_from_logits,
)
from contrastive.samplers import (
    LearnedUnigramCandidateSampler,
    fixed_unigram_candidate_sampler,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from contrastive.samplers.candidate import check_counts

SAMPLERS = ("log_uniform", "uniform", "unigram", "learned_unigram")
REDUCTIONS = ("mean", "sum", "none")


class _SampledLoss(nn.Module):
    sampled_softmax: bool = False

    def __init__(self, num_classes: int, dim: int, num_sampled: int, num_true: int = 1,
                 sampler: str = "log_uniform", remove_accidental_hits: bool = False, sparse: bool = True,
                 reduction: str = "mean", unique: bool = True, unigrams: Sequence[float] | None = None,
                 distortion: float = 1.0, full_loss_in_eval: bool = False, seed: int | None = None) -> None:
        super().__init__()
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if dim < 1 or num_true < 1:
            raise ValueError(f"dim and num_true must be >= 1, got dim={dim}, num_true={num_true}")
        check_counts(num_sampled, num_classes, unique)
        if sampler == "unigram":
            if unigrams is None or len(unigrams) != num_classes:
                got = None if unigrams is None else len(unigrams)
                raise ValueError(f"sampler='unigram' needs unigrams with num_classes={num_classes} counts, got {got}")
            if unique and sum(1 for u in unigrams if u > 0 or distortion == 0) < num_sampled:
                raise ValueError(f"unique sampling of num_sampled={num_sampled} needs as many non-zero unigrams")
        self.num_classes, self.dim, self.num_sampled, self.num_true = num_classes, dim, num_sampled, num_true
        self.sampler, self.unique, self.reduction = sampler, unique, reduction
        self.remove_accidental_hits, self.sparse, self.full_loss_in_eval = remove_accidental_hits, sparse, full_loss_in_eval
        self.unigrams, self.distortion, self.seed = (list(unigrams) if unigrams is not None else None), distortion, seed
        self.weight = nn.Parameter(torch.randn(num_classes, dim) / dim ** 0.5)
        self.bias = nn.Parameter(torch.zeros(num_classes, 1))
        if unigrams is not None and len(unigrams) == num_classes:
            # start from the unigram model, log p(w): the true words' logits then start near -log(k), so they get
            # a gradient from the first step instead of only pushing away sampled noise words
            u = torch.as_tensor(list(unigrams), dtype=torch.float64).clamp_min(1e-12)
            self.bias.data.copy_((u / u.sum()).log().float()[:, None])
        self.learned = LearnedUnigramCandidateSampler(num_classes) if sampler == "learned_unigram" else None
        self._generator: torch.Generator | None = None

    def extra_repr(self) -> str:
        return (f"num_classes={self.num_classes}, dim={self.dim}, num_sampled={self.num_sampled}, "
                f"sampler={self.sampler}, unique={self.unique}, sparse={self.sparse}")

    def _gen(self, device: torch.device) -> torch.Generator | None:
        if self.seed is None and not D.is_distributed():
            return None  # the global RNG, as seeded by the run
        if self._generator is None or self._generator.device != device:
            # rank 0's seed on every process, so every rank draws the same negatives
            seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, ()))
            self._generator = torch.Generator(device=device).manual_seed(D.broadcast_seed(seed))
        return self._generator

    def sample(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw `(sampled [S], true_expected [B, T], sampled_expected [S])` for `labels [B, T]`."""
        args: tuple[Any, ...] = (labels, self.num_true, self.num_sampled, self.unique)
        g = self._gen(labels.device)
        if self.sampler == "log_uniform":
            return log_uniform_candidate_sampler(*args, self.num_classes, seed=g)
        if self.sampler == "uniform":
            return uniform_candidate_sampler(*args, self.num_classes, seed=g)
        if self.sampler == "unigram":
            return fixed_unigram_candidate_sampler(*args, self.num_classes, unigrams=self.unigrams,
                                                   distortion=self.distortion, seed=g)
        assert self.learned is not None
        return self.learned(*args, seed=g)

    def _rows(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (F.embedding(ids, self.weight, sparse=self.sparse),
                F.embedding(ids, self.bias, sparse=self.sparse).squeeze(1))

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss for `inputs [B, dim]` and `labels [B, num_true]` (or `[B]`): scalar, or `[B]` with
        `reduction="none"`. In eval mode with `full_loss_in_eval`, every class is a negative (exact loss)."""
        if inputs.dim() != 2 or inputs.shape[1] != self.dim:
            raise ValueError(f"inputs must be [batch, {self.dim}], got {tuple(inputs.shape)}")
        labels = _check_inputs(labels, inputs, self.num_true, self.num_classes)
        if self.full_loss_in_eval and not self.training:
            sampled = torch.arange(self.num_classes, device=inputs.device)
            qt, qs = torch.ones(labels.shape, device=inputs.device), torch.ones(self.num_classes, device=inputs.device)
            remove = True
        else:
            sampled, qt, qs = self.sample(labels)
            remove = self.remove_accidental_hits
        w, b = self._rows(torch.cat([labels.reshape(-1), sampled]))
        k = labels.numel()
        logits, targets = sampled_logits(w[:k], b[:k], w[k:], b[k:], inputs, labels, sampled, qt, qs, remove)
        loss = (softmax_from_logits if self.sampled_softmax else nce_from_logits)(logits, targets)
        return loss.mean() if self.reduction == "mean" else loss.sum() if self.reduction == "sum" else loss


class NCELoss(_SampledLoss):
    """TF-exact NCE over `num_classes` outputs with `num_sampled` negatives per step (shared by the batch);
    accidental hits kept by default, as in `tf.nn.nce_loss`."""


class SampledSoftmaxLoss(_SampledLoss):
    """TF-exact sampled softmax over `num_classes` outputs; accidental hits removed by default, as in TF."""

    sampled_softmax = True

    def __init__(self, num_classes: int, dim: int, num_sampled: int, num_true: int = 1,
                 sampler: str = "log_uniform", remove_accidental_hits: bool = True, **kwargs: Any) -> None:
        super().__init__(num_classes, dim, num_sampled, num_true, sampler, remove_accidental_hits, **kwargs)
