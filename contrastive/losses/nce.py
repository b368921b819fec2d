"""`NCELoss` and `SampledSoftmaxLoss`: own the `[num_classes, dim]` output table and biases, draw their own
negatives each call, and touch only the rows used (sparse gradients), so a step's cost does not depend on
the vocabulary size."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastive.losses.pair_plan import PairPlan
from contrastive.losses.sampled import (
    _check_inputs,
    log_unigram_probs,
    nce_from_logits,
    sampled_logits,
    softmax_from_logits,
)
from contrastive.samplers.objects import CandidateSampler, LogUniformSampler

REDUCTIONS = ("mean", "sum", "none")


class _SampledLoss(nn.Module):
    """The output table `[num_classes, dim]`, its biases, and the candidate `sampler` (default: log-uniform,
    unique, as TF's) that draws `num_sampled` negatives per call, shared by the batch."""

    sampled_softmax: bool = False
    shares_negatives = True  # one draw of num_sampled classes serves the whole batch

    def __init__(self, num_classes: int, dim: int, num_sampled: int, num_true: int = 1,
                 sampler: CandidateSampler | None = None, remove_accidental_hits: bool = False, sparse: bool = True,
                 reduction: str = "mean", unigrams: Sequence[float] | None = None, full_loss_in_eval: bool = False,
                 seed: int | None = None) -> None:
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        if dim < 1 or num_true < 1:
            raise ValueError(f"dim and num_true must be >= 1, got dim={dim}, num_true={num_true}")
        if sampler is None:
            sampler = LogUniformSampler(num_classes, num_sampled, num_true, unique=True, seed=seed)
        elif seed is not None:
            raise ValueError("seed seeds the default sampler; give a sampler its own seed instead")
        got = (sampler.range_max, sampler.num_sampled, sampler.num_true)
        if got != (num_classes, num_sampled, num_true):
            raise ValueError(f"the sampler draws {got[1]} of {got[0]} ids for num_true={got[2]}, but the loss has "
                             f"num_classes={num_classes}, num_sampled={num_sampled}, num_true={num_true}")
        self.num_classes, self.dim, self.num_sampled, self.num_true = num_classes, dim, num_sampled, num_true
        self.sampler, self.reduction = sampler, reduction
        self.remove_accidental_hits, self.sparse, self.full_loss_in_eval = remove_accidental_hits, sparse, full_loss_in_eval
        self.weight = nn.Parameter(torch.randn(num_classes, dim) / dim ** 0.5)
        self.bias = nn.Parameter(torch.zeros(num_classes, 1))
        if unigrams is not None:  # the true words' logits then start near -log(k), not only pushing noise away
            self.bias.data.copy_(log_unigram_probs(unigrams, num_classes)[:, None])

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, dim={self.dim}, num_sampled={self.num_sampled}, sparse={self.sparse}"

    def sample(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw `(sampled [S], true_expected [B, T], sampled_expected [S])` for `labels [B, T]`."""
        return self.sampler.sample(labels)

    def pair_plan(self) -> PairPlan:
        """What the compiled per-pair step needs: NCE (not sampled softmax) with one label, hits kept."""
        if self.sampled_softmax or self.num_true != 1 or self.remove_accidental_hits:
            raise ValueError(f"the per-pair step runs NCE with num_true 1 and accidental hits kept, not "
                             f"{type(self).__name__} with num_true={self.num_true}, "
                             f"remove_accidental_hits={self.remove_accidental_hits}")
        return PairPlan(weight=self.weight.detach(), num_sampled=self.num_sampled, weights=self.sampler.probs(),
                        unique=self.sampler.unique, bias=self.bias.detach().view(-1), correct=True)

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
                 sampler: CandidateSampler | None = None, remove_accidental_hits: bool = True, sparse: bool = True,
                 reduction: str = "mean", unigrams: Sequence[float] | None = None, full_loss_in_eval: bool = False,
                 seed: int | None = None) -> None:
        super().__init__(num_classes, dim, num_sampled, num_true, sampler, remove_accidental_hits, sparse, reduction,
                         unigrams, full_loss_in_eval, seed)
