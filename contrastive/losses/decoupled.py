"""Decoupled contrastive learning (Yeh et al. 2022, "Decoupled Contrastive Learning", Eq. 6): NT-Xent with the
positive removed from the denominator; DCLW weighs each positive term by a von Mises-Fisher weight."""
from __future__ import annotations

import torch

from contrastive.losses.contrastive import _Contrastive
from contrastive.losses.info_nce import _check_temperature
from contrastive.losses.views import (
    Rows,
    cosines,
    full_precision,
    masked_logsumexp,
    two_views,
)


def von_mises_weights(z1: Rows, z2: Rows, sigma: float) -> torch.Tensor:
    """DCLW's positive weights `[K]` of the K pairs `z1, z2: [K, d]`: 2 - K * softmax_i(cos(z1_i, z2_i) / sigma),
    without gradient (a weight, not a term to train)."""
    with torch.no_grad():
        cos = cosines(z1, z2).diagonal()
        return 2 - len(cos) * torch.softmax(cos / sigma, dim=0)


@full_precision
def dcl(z1: Rows, z2: Rows, temperature: float | torch.Tensor = 0.1, sigma: float | None = None,
        ids: torch.Tensor | None = None, all_z1: Rows | None = None, all_z2: Rows | None = None,
        all_ids: torch.Tensor | None = None, offset: int = 0) -> torch.Tensor:
    """DCL over the 2N views of N pairs `z1, z2: [N, d]` (scalar, mean over the 2N anchors): each anchor's loss
    is -w * cos(anchor, positive) / T + log sum over its 2K-2 negatives of exp(cos / T); w = 1, or DCLW's
    `von_mises_weights` of the global batch with `sigma`. `ids`, `all_*` and `offset` as in `nt_xent`."""
    _check_temperature(temperature)
    if sigma is not None and not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    v = two_views(z1, z2, ids, all_z1, all_z2, all_ids, offset)
    logits = v.cos / temperature
    rows = torch.arange(len(logits), device=logits.device)
    positive = logits[rows, v.pos_col]
    if sigma is not None:
        w = von_mises_weights(z1 if all_z1 is None else all_z1, z2 if all_z2 is None else all_z2, sigma)
        positive = positive * w[v.self_col % len(w)]
    return (masked_logsumexp(logits, v.negative) - positive).mean()


class DCL(_Contrastive):
    """Decoupled contrastive loss; `forward(z1, z2, ids=None)` -> scalar; under DDP (`gather` true or None) the
    negatives are every process's views, gradients exact."""

    sigma: float | None = None  # DCLW's weighting; none for DCL

    def __init__(self, temperature: float = 0.1, learnable_temperature: bool = False,
                 gather: bool | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather)

    def forward(self, z1: Rows, z2: Rows, ids: torch.Tensor | None = None) -> torch.Tensor:
        return dcl(z1, z2, self.temperature(), self.sigma, ids=ids, **self._global_views(z1, z2, ids))


class DCLW(DCL):
    """DCL with von Mises-Fisher weights on the positives (`sigma`, 0.5 in the paper)."""

    def __init__(self, temperature: float = 0.1, sigma: float = 0.5, learnable_temperature: bool = False,
                 gather: bool | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather)
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        self.sigma = sigma
