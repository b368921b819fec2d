"""Supervised contrastive loss (Khosla et al. 2020), the L_out form: every view with the anchor's label is a
positive; a view without a label (label < 0) has only its own other view as positive."""
from __future__ import annotations

import torch

from contrastive import distributed as D
from contrastive.losses.contrastive import _Contrastive
from contrastive.losses.info_nce import _check_temperature
from contrastive.losses.views import Rows, full_precision, masked_logsumexp, two_views


@full_precision
def supcon(z1: Rows, z2: Rows, labels: torch.Tensor, temperature: float | torch.Tensor = 0.1,
           ids: torch.Tensor | None = None, all_z1: Rows | None = None, all_z2: Rows | None = None,
           all_labels: torch.Tensor | None = None, all_ids: torch.Tensor | None = None,
           offset: int = 0) -> torch.Tensor:
    """SupCon over the 2N views of N pairs `z1, z2: [N, d]` with `labels` `[N]` (scalar, mean over the 2N anchors):
    anchor i's loss is -mean over its positives p of log(exp(c_ip / T) / sum over a != i of exp(c_ia / T)).
    `ids` `[N]` drops the views sharing an anchor's id (other than its own pair) from both sums; `all_*` and
    `offset` as in `nt_xent`, with `all_labels` `[K]` the global batch's labels. With distinct labels it is
    NT-Xent."""
    _check_temperature(temperature)
    if labels is None or labels.dim() != 1 or labels.shape[0] != len(z1):
        got = None if labels is None else tuple(labels.shape)
        raise ValueError(f"objective=supcon needs labels [N] with N={len(z1)} (the data module's labels; -1 for an "
                         f"unlabelled item), got {got}")
    v = two_views(z1, z2, ids, all_z1, all_z2, all_ids, offset)
    k = len(v.cos[0]) // 2
    every = labels if all_labels is None else all_labels
    # an unlabelled item is a class of its own: label -(1 + its global row)
    own = -1 - torch.arange(k, device=every.device)
    every = torch.where(every >= 0, every.long(), own)
    key_labels = torch.cat([every, every]).to(v.cos.device)
    anchor_labels = key_labels[v.self_col]
    rows = torch.arange(len(v.cos), device=v.cos.device)
    others = torch.ones_like(v.negative)
    others[rows, v.self_col] = False
    if v.anchor_ids is not None:  # a view sharing the anchor's id is neither positive nor negative
        others &= (v.anchor_ids[:, None] != v.key_ids[None, :])
        others[rows, v.pos_col] = True
    positive = others & (anchor_labels[:, None] == key_labels[None, :])
    logits = v.cos / temperature
    log_prob = logits - masked_logsumexp(logits, others)[:, None]
    mean_pos = (log_prob * positive).sum(1) / positive.sum(1)
    return -mean_pos.mean()


class SupCon(_Contrastive):
    """Supervised contrastive loss; `forward(z1, z2, labels, ids=None)` -> scalar, `labels` `[N]` (-1: unlabelled).
    Under DDP (`gather` true or None) every process's views and labels take part, gradients exact."""

    def __init__(self, temperature: float = 0.1, learnable_temperature: bool = False,
                 gather: bool | None = None) -> None:
        super().__init__(temperature, learnable_temperature, gather)

    def forward(self, z1: Rows, z2: Rows, labels: torch.Tensor | None = None,
                ids: torch.Tensor | None = None) -> torch.Tensor:
        views = self._global_views(z1, z2, ids)
        if views and labels is not None:
            views["all_labels"] = D.gather_no_grad(labels)
        return supcon(z1, z2, labels, self.temperature(), ids=ids, **views)
