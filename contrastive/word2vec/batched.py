"""Word2vec's per-pair step batched for any device: every pair draws its own negatives (TF's unique sampling with
its tries, or word2vec's draws with repeats), scores them, and takes its own SGD step on its own loss; the steps
of a batch are summed into the tables at once (the compiled CPU step applies them one after another)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contrastive.samplers.candidate import check_in_range
from contrastive.word2vec.hogwild import plan


def _draw(accept: torch.Tensor, alias: torch.Tensor, shape: tuple[int, ...], g: torch.Generator | None) -> torch.Tensor:
    """Walker alias draws of `shape`: one uniform each, its integer part the bin, the rest the acceptance."""
    u = torch.rand(shape, device=accept.device, dtype=torch.float64, generator=g) * accept.numel()
    i = u.long().clamp_(max=accept.numel() - 1)
    return torch.where((u - i) < accept[i], i, alias[i])


def draw_per_pair(accept: torch.Tensor, alias: torch.Tensor, n: int, k: int, unique: bool,
                  g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`(negatives [n, k], tries [n])`: each row its own draws; with `unique`, the first k distinct ones of
    the row's sequence of draws and how many draws that took (TF's unique candidate sampling)."""
    if not unique:
        return _draw(accept, alias, (n, k), g), torch.full((n,), k, device=accept.device)
    neg = torch.empty(n, k, dtype=torch.long, device=accept.device)
    tries = torch.empty(n, dtype=torch.long, device=accept.device)
    rows = torch.arange(n, device=accept.device)
    seq = _draw(accept, alias, (n, 2 * k + 8), g)
    while rows.numel():
        sorted_, order = seq.sort(dim=1, stable=True)
        new = torch.ones_like(sorted_, dtype=torch.bool)
        new[:, 1:] = sorted_[:, 1:] != sorted_[:, :-1]
        first = torch.zeros_like(new).scatter_(1, order, new)  # the draw is its value's first in the row
        count = first.cumsum(1)  # distinct values among the draws so far
        done = count[:, -1] >= k
        take = first & (count <= k) & done[:, None]
        neg[rows[done]] = seq[take].view(-1, k)
        tries[rows[done]] = (count[done] < k).sum(1) + 1
        # the rows short of k distinct draw on: their sequences continue (restarting them would bias the draws)
        rows, seq = rows[~done], seq[~done]
        seq = torch.cat([seq, _draw(accept, alias, (rows.numel(), seq.shape[1]), g)], 1)
    return neg, tries


PAIRS_PER_UPDATE = 8192  # summed steps of more pairs at once diverged (65,536 at word2vec's rate, Wikipedia sample)


@torch.no_grad()
def per_pair_step(embedding: torch.Tensor, objective: nn.Module, centre: torch.Tensor, context: torch.Tensor,
                  lr: float, lr_end: float | None = None, g: torch.Generator | None = None) -> torch.Tensor:
    """Each `(centre [B], context [B, 1])` pair draws its own negatives, and its SGD step on its own loss (the
    rate going linearly from `lr` to `lr_end` across the pairs) is added to the tables in place, at most
    PAIRS_PER_UPDATE pairs at a time; returns the batch's mean loss. The losses are the compiled step's (NCE
    with TF's expected counts, or negative sampling)."""
    p = _device_plan(objective, embedding.device)
    centre, context = centre.reshape(-1), context.reshape(-1)
    if centre.numel() != context.numel():
        raise ValueError(f"need one context per centre, got {centre.numel()} centres and {context.numel()} contexts")
    check_in_range(centre, embedding.shape[0], "centre id")
    check_in_range(context, p["weight"].shape[0], "context id")
    n = centre.numel()
    rates = torch.linspace(lr, lr if lr_end is None else lr_end, n + 1, device=embedding.device)[:n]
    losses = [_update(embedding, p, centre[s:s + PAIRS_PER_UPDATE], context[s:s + PAIRS_PER_UPDATE],
                      rates[s:s + PAIRS_PER_UPDATE], g) for s in range(0, n, PAIRS_PER_UPDATE)]
    return torch.cat(losses).mean()


def _update(embedding: torch.Tensor, p: dict[str, Any], centre: torch.Tensor, context: torch.Tensor,
            rate: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    """One summed update of the pairs `centre [n]`, `context [n]` at rates `[n]`; their losses `[n]`."""
    W, b, k = p["weight"], p["bias"], p["num_sampled"]
    neg, tries = draw_per_pair(p["accept"], p["alias"], centre.numel(), k, p["unique"], g)
    cand = torch.cat([context[:, None], neg], 1)  # [n, 1 + k]
    h, w = embedding[centre], W[cand]  # [n, d], [n, 1 + k, d]
    z = torch.bmm(w, h[:, :, None]).squeeze(2)
    if p["correct"]:  # TF's logits: plus the bias, minus the log expected count
        prob = p["probs"][cand]
        q = torch.where(tries[:, None] == k, prob * k, -torch.expm1(tries[:, None] * torch.log1p(-prob)))
        z = z + b[cand] - torch.log(q).to(z.dtype)
    labels = torch.zeros_like(z)
    labels[:, 0] = 1
    step = rate[:, None] * (labels - torch.sigmoid(z))  # -rate * d loss / d z, [n, 1 + k]
    embedding.index_add_(0, centre, torch.bmm(step[:, None, :], w).squeeze(1))
    W.index_add_(0, cand.reshape(-1), (step[:, :, None] * h[:, None, :]).reshape(-1, h.shape[1]))
    if p["correct"]:
        b.index_add_(0, cand.reshape(-1), step.reshape(-1))
    return (F.softplus(z) - z * labels).sum(1)


def _device_plan(objective: nn.Module, device: torch.device) -> dict[str, Any]:
    """The objective's plan with its sampling tables as tensors on `device` (cached beside the plan)."""
    p = plan(objective)
    cached = p.get("tensors")
    if cached is None or cached["accept"].device != device:
        pp = objective.pair_plan()  # the tables as they are now, on `device`
        cached = p["tensors"] = {
            "weight": pp.weight, "bias": pp.bias, "num_sampled": p["num_sampled"], "unique": p["unique"],
            "correct": p["correct"],
            "accept": torch.as_tensor(p["accept"], device=device, dtype=torch.float64),
            "alias": torch.as_tensor(p["alias"], device=device),
            "probs": torch.as_tensor(p["logp"], device=device).exp()}
    return cached
