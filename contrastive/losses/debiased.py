"""Debiased contrastive loss (Chuang et al. 2020) and hard-negative weighted InfoNCE (HCL, Robinson et al. 2021)
in the SimCLR form of the authors' code: every view an anchor, the other 2N-2 views its negatives."""
from __future__ import annotations

import math

import torch

from contrastive.losses.contrastive import _Contrastive
from contrastive.losses.info_nce import _check_temperature
from contrastive.losses.views import Rows, full_precision, masked_logsumexp, two_views


@full_precision
def debiased_nt_xent(z1: Rows, z2: Rows, temperature: float | torch.Tensor = 0.5, tau_plus: float = 0.1,
                     beta: float = 0.0, ids: torch.Tensor | None = None, all_z1: Rows | None = None,
                     all_z2: Rows | None = None, all_ids: torch.Tensor | None = None,
                     offset: int = 0) -> torch.Tensor:
    """Mean over the 2N anchors of -log(pos / (pos + Ng)) (scalar), pos = exp(cos+ / T), with n negatives x_j:
    Ng = max((R - tau_plus * n * pos) / (1 - tau_plus), n * exp(-1 / T)), R = n * sum(x^(1+beta)) / sum(x^beta)
    where x = exp(cos / T); beta = 0 is the debiased loss (R = sum x), beta > 0 HCL. Computed in log space, so
    any temperature the module accepts is finite. `ids`, `all_*` and `offset` as in `nt_xent`."""
    _check_temperature(temperature)
    if not 0 <= tau_plus < 1:
        raise ValueError(f"tau_plus (the class prior) must be in [0, 1), got {tau_plus}")
    if not beta >= 0:
        raise ValueError(f"beta (the hardness) must be >= 0, got {beta}")
    v = two_views(z1, z2, ids, all_z1, all_z2, all_ids, offset)
    logits = v.cos / temperature
    rows = torch.arange(len(logits), device=logits.device)
    pos = logits[rows, v.pos_col].double()
    count = v.negative.sum(1).double()
    if bool((count == 0).any()):
        raise ValueError("an anchor has no negatives (a batch of one pair, or every view shares its id)")
    log_r = (masked_logsumexp((1 + beta) * logits, v.negative) - masked_logsumexp(beta * logits, v.negative)).double() \
        + count.log()
    # log of R - tau_plus * n * pos, relative to log R: float64 holds exp(pos - log R) <= exp(2 / T) for T >= 0.01
    rest = 1 - tau_plus * count * torch.exp(pos - log_r)
    log_ng = log_r + rest.clamp(min=1e-300).log() - math.log1p(-tau_plus)
    floor = count.log() - 1 / (temperature.double() if torch.is_tensor(temperature) else temperature)
    log_ng = torch.where(log_ng > floor, log_ng, floor)
    return (torch.logaddexp(pos, log_ng) - pos).mean().to(v.cos.dtype)


class Debiased(_Contrastive):
    """The debiased contrastive loss with class prior `tau_plus`; `forward(z1, z2, ids=None)` -> scalar; under
    DDP (`gather` true or None) the negatives are every process's views, gradients exact."""

    beta = 0.0

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1, learnable_temperature: bool = False,
                 gather: bool | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather)
        if not 0 <= tau_plus < 1:
            raise ValueError(f"tau_plus (the class prior) must be in [0, 1), got {tau_plus}")
        self.tau_plus = tau_plus

    def forward(self, z1: Rows, z2: Rows, ids: torch.Tensor | None = None) -> torch.Tensor:
        return debiased_nt_xent(z1, z2, self.temperature(), self.tau_plus, self.beta, ids=ids,
                                **self._global_views(z1, z2, ids))


class HCL(Debiased):
    """Hard-negative weighted InfoNCE: the debiased loss with negatives weighted by exp(beta * cos / T)."""

    def __init__(self, temperature: float = 0.5, tau_plus: float = 0.1, beta: float = 1.0,
                 learnable_temperature: bool = False, gather: bool | None = None) -> None:
        super().__init__(temperature, tau_plus, learnable_temperature, gather)
        if not beta >= 0:
            raise ValueError(f"beta (the hardness) must be >= 0, got {beta}")
        self.beta = beta
