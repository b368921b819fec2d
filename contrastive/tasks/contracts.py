"""The contracts of the open slots, checked by one call before training: an encoder maps a batch of its data
to `[B, D]`, an objective maps two `[B, d]` embeddings to a scalar. Errors name the slot, what it got and what
it needs."""
from __future__ import annotations

import torch

from contrastive.models.base import accepted_keywords, scalar_loss


def probe_encoder(encoder: torch.nn.Module, batch: torch.Tensor, what: str) -> int:
    """The encoder's output width D, from one call on `batch` (2 items of the data; `what` describes it) in eval
    mode without gradients."""
    if not isinstance(encoder, torch.nn.Module):
        raise TypeError(f"encoder: its _target_ built a {type(encoder).__name__}, not a torch.nn.Module")
    name, was = type(encoder).__qualname__, encoder.training
    encoder.eval()
    try:
        with torch.no_grad():
            out = encoder(batch)
    except Exception as e:
        raise ValueError(f"encoder: {name} failed on {what} ({type(e).__name__}: {e}); an encoder maps a batch of "
                         "its data to [B, D]") from e
    finally:
        encoder.train(was)
    got = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
        raise ValueError(f"encoder: {name} returned {got} for {what}; an encoder must return [B, D] = [2, D] here "
                         "(pool and flatten what it computes)")
    declared = getattr(encoder, "out_dim", None)
    if declared is not None and declared != out.shape[1]:
        raise ValueError(f"encoder: {name}.out_dim={declared}, but it returned {got} for {what}")
    return int(out.shape[1])


def probe_objective(objective: torch.nn.Module, dim: int) -> None:
    """Call a user's objective once on two random `[4, dim]` embeddings (with `labels` or `ids` if its forward
    names them), leaving the global RNG as it was; it must return a scalar."""
    name = type(objective).__qualname__
    if not isinstance(objective, torch.nn.Module):
        raise TypeError(f"objective: its _target_ built a {type(objective).__name__}, not a torch.nn.Module")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, dim, generator=g), torch.randn(4, dim, generator=g)
    takes = accepted_keywords(type(objective))
    extra = {k: v for k, v in (("labels", torch.tensor([0, 1, 0, 1])), ("ids", torch.arange(4))) if k in takes}
    with torch.random.fork_rng(devices=[]):
        try:
            loss = objective(a, b, **extra)
        except Exception as e:
            raise ValueError(f"objective: {name} failed on two [4, {dim}] embeddings ({type(e).__name__}: {e}); an "
                             "objective is called as loss(a, b) (plus labels= or ids= if its forward names them) "
                             "and returns a scalar") from e
    scalar_loss(loss, name, f" for two [4, {dim}] embeddings")
