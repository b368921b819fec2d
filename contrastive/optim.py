"""LARS and the linear-warmup-then-cosine learning-rate schedule."""
from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


def _run(closure: Any) -> Any:
    """The optimizer-step convention: re-evaluate the loss with gradients enabled when given a closure."""
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class LARS(torch.optim.Optimizer):
    """SGD with momentum and layer-wise trust ratio (You et al., 2017). Biases and norm parameters (1-D)
    skip both weight decay and adaptation, as in SimCLR."""

    def __init__(self, params: Iterable[Any], lr: float = 0.3, momentum: float = 0.9,
                 weight_decay: float = 1e-6, trust_coefficient: float = 0.001, eps: float = 1e-8) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                                      "trust_coefficient": trust_coefficient, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = _run(closure)
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if p.ndim > 1:
                    d = d.add(p, alpha=g["weight_decay"])
                    pn, dn = torch.linalg.vector_norm(p), torch.linalg.vector_norm(d)
                    ratio = torch.where((pn > 0) & (dn > 0), g["trust_coefficient"] * pn / (dn + g["eps"]), 1.0)
                    d = d * ratio
                buf = self.state[p].get("momentum_buffer")
                if buf is None:
                    buf = self.state[p]["momentum_buffer"] = d.clone()
                else:
                    buf.mul_(g["momentum"]).add_(d)
                p.add_(buf, alpha=-g["lr"])
        return loss


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, final_ratio: float = 0.0) -> float:
    """LR multiplier: linear from ~0 to 1 over `warmup_steps`, then cosine down to `final_ratio`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class SparseSGD(torch.optim.Optimizer):
    """Plain SGD that applies sparse gradients (from `nn.Embedding(sparse=True)`) row by row without
    coalescing them: repeated rows add up, as in a coalesced update, at a fraction of the cost."""

    def __init__(self, params: Iterable[Any], lr: float = 0.025) -> None:
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:  # type: ignore[override]
        loss = _run(closure)
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if not g.is_sparse:
                    p.add_(g, alpha=-group["lr"])
                    continue
                rows, values = g._indices()[0], g._values().reshape(g._nnz(), *p.shape[1:]) * -group["lr"]
                # scatter_add_ with an expanded (stride-0) index takes PyTorch's sorted fast path (~4x index_add_)
                p.scatter_add_(0, rows.view(-1, *[1] * (p.dim() - 1)).expand_as(values), values)
        return loss
