"""Word2vec's per-pair losses batched for any device: every pair draws its own negatives (TF's unique sampling
with its tries, or word2vec's draws with repeats) and scores them, as the compiled CPU step does; the model
trains them with SparseAdam, one step per batch. Summed SGD steps, the compiled step's rule
applied to a batch at once, diverged: a frequent word's many pairs all push along the same few negative rows."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from contrastive.losses.sampled import nce_from_logits
from contrastive.samplers.alias import AliasSampler
from contrastive.samplers.candidate import check_in_range
from contrastive.word2vec.hogwild import plan


def draw_per_pair(sampler: AliasSampler, n: int, k: int, unique: bool,
                  g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`(negatives [n, k], tries [n])` from `sampler`: each row its own draws; with `unique`, the first k
    distinct ones of the row's sequence of draws and how many draws that took (TF's unique candidate sampling)."""
    dev = sampler.accept.device
    if not unique:
        return sampler(n * k, g).view(n, k), torch.full((n,), k, device=dev)
    neg = torch.empty(n, k, dtype=torch.long, device=dev)
    tries = torch.empty(n, dtype=torch.long, device=dev)
    rows = torch.arange(n, device=dev)
    seq = sampler(n * (2 * k + 8), g).view(n, -1)
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
        seq = torch.cat([seq, sampler(seq.numel(), g).view(seq.shape)], 1)
    return neg, tries


def per_pair_loss(inputs: torch.Tensor, objective: nn.Module, context: torch.Tensor,
                  g: torch.Generator | None = None) -> torch.Tensor:
    """Per-pair losses `[B]` of `inputs [B, d]` (the centres' vectors) against `context [B, 1]`, each pair with
    its own negatives: the compiled step's losses (NCE with TF's expected counts from the pair's own draws, or
    negative sampling), differentiable, with sparse gradients for the output rows."""
    p = _device_plan(objective, inputs.device)
    context = context.reshape(-1)
    if context.numel() != inputs.shape[0]:
        raise ValueError(f"need one context per centre, got {inputs.shape[0]} centres and {context.numel()} contexts")
    check_in_range(context, p["rows"], "context id")
    k = p["num_sampled"]
    neg, tries = draw_per_pair(p["sampler"], context.numel(), k, p["unique"], g)
    cand = torch.cat([context[:, None], neg], 1)  # [B, 1 + k]
    sparse = getattr(objective, "sparse", True)
    z = torch.bmm(F.embedding(cand, objective.weight, sparse=sparse), inputs[:, :, None]).squeeze(2)
    if p["correct"]:  # TF's logits: plus the bias, minus the log expected count
        prob = p["probs"][cand]
        q = torch.where(tries[:, None] == k, prob * k, -torch.expm1(tries[:, None] * torch.log1p(-prob)))
        z = z + F.embedding(cand, objective.bias, sparse=sparse).squeeze(2) - torch.log(q).to(z.dtype)
    labels = torch.zeros_like(z)
    labels[:, 0] = 1
    return nce_from_logits(z, labels)  # the functional nce_loss's own formula: one definition


def _device_plan(objective: nn.Module, device: torch.device) -> dict[str, Any]:
    """The objective's plan with its sampling tables as tensors on `device` (cached beside the plan)."""
    p = plan(objective)
    cached = p.get("tensors")
    if cached is None or cached["sampler"].accept.device != device:
        cached = p["tensors"] = {
            "rows": p["weight"].shape[0], "num_sampled": p["num_sampled"], "unique": p["unique"],
            "correct": p["correct"],
            "sampler": AliasSampler(None, table=(p["accept"], p["alias"])).to(device),
            "probs": torch.as_tensor(p["logp"], device=device).exp()}
    return cached
