"""Output layers for word vectors beside NCE and sampled softmax: word2vec's negative sampling and the full
softmax baseline. Each owns its `[num_classes, dim]` table; `forward(inputs [B, dim], labels [B] or [B, 1])`."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from contrastive.losses.pair_plan import PairPlan
from contrastive.losses.sampled import log_unigram_probs, sigmoid_cross_entropy
from contrastive.samplers.alias import AliasSampler
from contrastive.samplers.candidate import check_in_range


def _labels(labels: torch.Tensor, inputs: torch.Tensor, num_classes: int) -> torch.Tensor:
    y = labels.reshape(-1).long()
    if y.numel() != inputs.shape[0]:
        raise ValueError(f"need one label per input row: {inputs.shape[0]} rows, labels of shape {tuple(labels.shape)}")
    check_in_range(y, num_classes, "label")
    return y


class NegativeSamplingLoss(nn.Module):
    """word2vec's negative sampling (Mikolov et al., 2013): `-log s(u_o . v) - sum_k log s(-u_k . v)` with
    `num_sampled` negatives per example drawn from unigram^distortion; no bias, no log-Q correction."""

    def __init__(self, num_classes: int, dim: int, num_sampled: int, unigrams: Sequence[float] | None = None,
                 distortion: float = 0.75, sparse: bool = True) -> None:
        super().__init__()
        if num_sampled < 1:
            raise ValueError(f"num_sampled must be >= 1, got {num_sampled}")
        weights = torch.ones(num_classes) if unigrams is None else torch.as_tensor(list(unigrams), dtype=torch.float64)
        if weights.numel() != num_classes or bool((weights < 0).any()):
            raise ValueError(f"unigrams must be {num_classes} non-negative counts, got {weights.numel()}")
        self.num_classes, self.dim, self.num_sampled, self.sparse = num_classes, dim, num_sampled, sparse
        self._weights = (weights.double() ** distortion).numpy()
        self.sampler = AliasSampler(self._weights)
        # word2vec starts the output vectors at zero
        self.weight = nn.Parameter(torch.zeros(num_classes, dim))

    def pair_plan(self) -> PairPlan:
        """For the compiled per-pair step: draws with repeats from unigram^distortion, no bias, no correction."""
        return PairPlan(weight=self.weight.detach(), num_sampled=self.num_sampled, weights=self._weights, unique=False,
                        bias=None, correct=False)

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        y = _labels(labels, inputs, self.num_classes)
        neg = self.sampler(y.numel() * self.num_sampled).view(-1, self.num_sampled)
        w = F.embedding(torch.cat([y[:, None], neg], 1), self.weight, sparse=self.sparse)  # [B, 1+k, d]
        logits = (w * inputs[:, None, :]).sum(-1)  # faster than a bmm of [1+k, d] x [d, 1] blocks
        targets = torch.zeros(1, 1 + self.num_sampled, dtype=logits.dtype, device=logits.device)
        targets[0, 0] = 1
        return sigmoid_cross_entropy(logits, targets).sum(1).mean()


class FullSoftmaxLoss(nn.Module):
    """Cross-entropy over every class (dense; the baseline for small vocabularies)."""

    def __init__(self, num_classes: int, dim: int, unigrams: Sequence[float] | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.out = nn.Linear(dim, num_classes)
        if unigrams is not None:  # start from the unigram model, log p(w), as NCELoss does
            self.out.bias.data.copy_(log_unigram_probs(unigrams, num_classes))

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(self.out(inputs), _labels(labels, inputs, self.num_classes))
