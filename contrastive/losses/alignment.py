"""Alignment and uniformity on the hypersphere (Wang & Isola 2020, "Understanding Contrastive Representation
Learning through Alignment and Uniformity on the Hypersphere", Eq. 4-5): pull each pair's unit vectors together,
spread all vectors out under a Gaussian potential; no temperature, no explicit negatives."""
from __future__ import annotations

import math

import torch

from contrastive.losses.contrastive import Gathered
from contrastive.losses.views import Rows, check_views, cosines, full_precision


def log_mean_gaussian(z: Rows, t: float, ids: torch.Tensor | None = None) -> torch.Tensor:
    """Uniformity of the rows `z: [K, d]` after L2 normalisation: log of the mean over pairs i != j (pairs sharing
    an id left out) of exp(-t * |z_i - z_j|^2); scalar."""
    sq = (2 - 2 * cosines(z, z)).clamp_min(0)  # |a - b|^2 of unit vectors
    keep = ~torch.eye(len(sq), dtype=torch.bool, device=sq.device)
    if ids is not None:
        keep &= ids[:, None] != ids[None, :]
    pairs = int(keep.sum())
    if pairs == 0:
        raise ValueError(f"uniformity needs two views with different ids; the batch holds {len(sq)} view(s) of one")
    return torch.logsumexp((-t * sq).masked_fill(~keep, float("-inf")).flatten(), 0) - math.log(pairs)


def check_weights(alpha: float, t: float, uniform_weight: float) -> None:
    """A clear error unless alpha > 0, t > 0 and uniform_weight >= 0."""
    if not (alpha > 0 and t > 0 and uniform_weight >= 0):
        raise ValueError(f"alpha and t must be > 0 and uniform_weight >= 0, got {alpha}, {t}, {uniform_weight}")


@full_precision
def align_uniform(z1: Rows, z2: Rows, alpha: float = 2.0, t: float = 2.0, uniform_weight: float = 1.0,
                  ids: torch.Tensor | None = None, all_z1: Rows | None = None, all_z2: Rows | None = None,
                  all_ids: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
    """Mean over the N pairs `z1, z2: [N, d]` of |z1_i - z2_i|^alpha (unit vectors), plus `uniform_weight` times
    the mean of `log_mean_gaussian` over each view's rows of the global batch (`all_z1`, `all_z2`: [K, d], every
    process's views under DDP; `offset` is not needed: uniformity is one term of the whole batch); scalar."""
    check_views(z1, z2, ids)
    check_weights(alpha, t, uniform_weight)
    sq = (2 - 2 * cosines(z1, z2).diagonal()).clamp_min(1e-12)
    align = sq.pow(alpha / 2).mean()
    every_id = ids if all_ids is None else all_ids
    uniform = sum(log_mean_gaussian(z, t, every_id) for z in (z1 if all_z1 is None else all_z1,
                                                              z2 if all_z2 is None else all_z2)) / 2
    return align + uniform_weight * uniform


class AlignUniform(Gathered):
    """`align_uniform` with its weights; `forward(z1, z2, ids=None)` -> scalar. Under DDP every process computes
    the uniformity of the whole batch, so the averaged gradients are those of one process with all of it."""

    def __init__(self, alpha: float = 2.0, t: float = 2.0, uniform_weight: float = 1.0,
                 gather: bool | None = None) -> None:
        super().__init__(gather)
        check_weights(alpha, t, uniform_weight)
        self.alpha, self.t, self.uniform_weight = alpha, t, uniform_weight

    def forward(self, z1: Rows, z2: Rows, ids: torch.Tensor | None = None) -> torch.Tensor:
        return align_uniform(z1, z2, self.alpha, self.t, self.uniform_weight, ids=ids,
                             **self._global_views(z1, z2, ids))
