"""Gradient caching (Gao et al., 2021, "Scaling Deep Contrastive Learning Batch Size under Memory Limited
Setup"): the contrastive batch can exceed what activation memory allows.

1. embed every chunk of every view without gradient (remembering the RNG state of each chunk);
2. compute the full-batch loss on those embeddings and backpropagate it to the embeddings only;
3. re-embed each chunk with gradient (same RNG state) and backpropagate the cached embedding gradients.
Parameter gradients equal the plain full-batch step. BatchNorm is the exception: it sees chunks, not the batch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch


def cached_backward(embed: Callable[[torch.Tensor], torch.Tensor], views: Sequence[torch.Tensor],
                    loss_fn: Callable[..., torch.Tensor], chunk: int,
                    backward: Callable[[torch.Tensor], None] = torch.Tensor.backward) -> torch.Tensor:
    """Backpropagate `loss_fn(embed(view_1), ..., embed(view_k))` through `embed` one chunk of `chunk`
    rows at a time; returns the (detached) loss. `backward` lets Lightning scale the loss (AMP)."""
    if chunk < 1:
        raise ValueError(f"cache_chunk must be >= 1, got {chunk}")
    cuda = any(v.is_cuda for v in views)
    states, reps = [], []
    for x in views:
        parts = []
        for c in x.split(chunk):
            states.append((torch.get_rng_state(), torch.cuda.get_rng_state() if cuda else None))
            with torch.no_grad():
                parts.append(embed(c))
        reps.append(torch.cat(parts).requires_grad_(True))
    loss = loss_fn(*reps)
    backward(loss)  # gradients reach the cached embeddings and the objective's own parameters
    k = 0
    for x, r in zip(views, reps):
        for c, g in zip(x.split(chunk), r.grad.split(chunk)):
            cpu_state, cuda_state = states[k]
            k += 1
            torch.set_rng_state(cpu_state)
            if cuda_state is not None:
                torch.cuda.set_rng_state(cuda_state)
            backward((embed(c) * g).sum())
    return loss.detach()
