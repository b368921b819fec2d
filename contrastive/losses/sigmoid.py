"""The sigmoid pairwise loss (Zhai et al. 2023, SigLIP): every (anchor, key) pair an independent binary term,
logit = scale * cos + bias, no softmax over the batch."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from contrastive import distributed as D
from contrastive.losses.contrastive import _Contrastive
from contrastive.losses.views import Rows, check_views, cosines, full_precision
from contrastive.sparse import gather_rows


@full_precision
def sigmoid_pairs(a: Rows, b: Rows, logit_scale: float | torch.Tensor, bias: float | torch.Tensor,
                  ids: torch.Tensor | None = None, all_b: Rows | None = None, all_ids: torch.Tensor | None = None,
                  offset: int = 0) -> torch.Tensor:
    """-(1/N) sum over anchors a_i `[N, d]` and keys b_j of log sigmoid(z_ij * (scale * cos(a_i, b_j) + bias)),
    z_ij = 1 for j = i (row `offset + i` of `all_b` `[K, d]`, the global batch's keys under DDP), else -1 (scalar).
    A key sharing the anchor's id (`ids` `[N]`, `all_ids` `[K]`), other than its own, is left out."""
    check_views(a, b, ids)
    keys = b if all_b is None else all_b
    n, k = len(a), len(keys)
    if not 0 <= offset <= k - n:
        raise ValueError(f"{k} keys cannot hold the positives of {n} anchors from row {offset}")
    logits = logit_scale * cosines(a, keys) + bias  # [N, K]
    rows = torch.arange(n, device=logits.device)
    sign = -torch.ones_like(logits)
    sign[rows, rows + offset] = 1
    terms = F.logsigmoid(sign * logits)
    if ids is not None:
        kid = ids if all_ids is None else all_ids
        same = ids[:, None].to(logits.device) == kid[None, :].to(logits.device)
        same[rows, rows + offset] = False
        terms = terms.masked_fill(same, 0.0)
    return -terms.sum() / n


class SigmoidLoss(_Contrastive):
    """SigLIP's loss with a learnable temperature (scale = 1 / T, 10 at the start) and bias (-10); `forward(a, b,
    ids=None)` -> scalar. Under DDP (`gather` true or None) each process scores its anchors against every
    process's keys: a sum of independent terms, so no global softmax is needed and the gradients are exact."""

    def __init__(self, temperature: float = 0.1, bias: float = -10.0, learnable_temperature: bool = True,
                 learnable_bias: bool = True, gather: bool | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather)
        if not math.isfinite(bias):
            raise ValueError(f"bias must be a finite number, got {bias}")
        b = torch.tensor(float(bias))
        if learnable_bias:
            self.bias = nn.Parameter(b)
        else:
            self.register_buffer("bias", b)

    def forward(self, a: Rows, b: Rows, ids: torch.Tensor | None = None) -> torch.Tensor:
        if not self._gathering():
            return sigmoid_pairs(a, b, self.temperature.scale(), self.bias, ids=ids)
        return sigmoid_pairs(a, b, self.temperature.scale(), self.bias, ids=ids, all_b=gather_rows(b),
                             all_ids=None if ids is None else D.gather_no_grad(ids), offset=D.rank() * len(a))
