"""Sources of stored embeddings for InfoNCE-style objectives: a MoCo FIFO queue and a sampled memory bank (extra
negatives), and NNCLR's support set (nearest-neighbour positives).

Each is a module whose state is registered buffers (saved with checkpoints) and whose keys are detached.
`terms(query, key, index)` says how the objective is called for a step: a list of `(query, key, keyword
arguments)` whose losses are averaged; `uses` names the keyword arguments it passes (the objective must take
them); `update(keys, index)` stores the step's keys (gathered from every process first, so each rank holds the
same state).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from contrastive import distributed as D
from contrastive.samplers.candidate import check_in_range
from contrastive.samplers.objects import CandidateSampler, UniformSampler


class Negatives(NamedTuple):
    keys: torch.Tensor  # [M, d]
    ids: torch.Tensor | None  # [M] dataset indices, to mask an anchor's own entry
    log_q: torch.Tensor | None  # [M] log expected counts, for the log-Q correction


Term = tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor | None]]


class _ExtraNegatives(nn.Module):
    """A source whose drawn keys join the objective's negatives."""

    uses: tuple[str, ...] = ("negative_keys", "negative_ids", "negative_log_q")

    def draw(self, index: torch.Tensor | None = None) -> Negatives:
        raise NotImplementedError

    def terms(self, query: torch.Tensor, key: torch.Tensor, index: torch.Tensor | None) -> list[Term]:
        """One call: `(query, key)` plus the drawn negatives; an anchor's own stored copy is not a negative."""
        neg = self.draw(index)
        extra = {"negative_keys": neg.keys, "negative_ids": neg.ids, "negative_log_q": neg.log_q}
        if index is not None and neg.ids is not None:
            extra["ids"] = index
        return [(query, key, extra)]


class NegativeQueue(_ExtraNegatives):
    """FIFO of the last `size` keys `[size, dim]` (MoCo). Starts with random unit vectors, like MoCo, so the
    number of negatives is fixed from the first step; new keys overwrite the oldest, wrapping around, so
    `size` need not be a multiple of the batch."""

    def check_fits(self, items: int) -> None:
        """A ValueError when the queue is longer than the `items` training items: it would hold random keys for
        epochs, then several copies of each item."""
        if self.size > items:
            raise ValueError(f"num_negatives={self.size} is longer than the {items:,} training images: the "
                             f"{type(self).__name__} would hold random keys for {self.size / items:.1f} epochs and "
                             f"then several copies of each image; use num_negatives <= {items}")

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        if size < 1 or dim < 1:
            raise ValueError(f"queue size and dim must be >= 1, got size={size}, dim={dim}")
        self.size, self.dim = size, dim
        self.register_buffer("keys", F.normalize(torch.randn(size, dim), dim=1))
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def draw(self, index: torch.Tensor | None = None) -> Negatives:
        """All queued keys (detached copies) and their dataset indices."""
        return Negatives(self.keys.clone(), self.ids.clone(), None)

    @torch.no_grad()
    def update(self, keys: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """Enqueue `keys` `[B, dim]` (from every process), dropping the oldest."""
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f"queue keys must be [B, {self.dim}], got {tuple(keys.shape)}")
        keys = D.gather_no_grad(F.normalize(keys.detach(), dim=1).to(self.keys.dtype))
        ids = D.gather_no_grad(index.long()) if index is not None else torch.full((keys.shape[0],), -1,
                                                                                 device=keys.device)
        keys, ids = keys[-self.size:], ids[-self.size:]
        # the pointer stays on the device: no host sync per step
        slots = (self.ptr + torch.arange(keys.shape[0], device=self.ptr.device)) % self.size
        self.keys[slots] = keys.to(self.keys.device)
        self.ids[slots] = ids.to(self.ids.device)
        self.ptr.copy_((self.ptr + keys.shape[0]) % self.size)


class MemoryBank(_ExtraNegatives):
    """One stored embedding per dataset item `[num_items, dim]`; each step draws `size` of them, distinct, with a
    candidate sampler (`sampler(range_max=num_items, num_sampled=size)` builds it; uniform by default) and can
    subtract their log expected counts."""

    def __init__(self, size: int, dim: int, num_items: int,
                 sampler: Callable[..., CandidateSampler] = UniformSampler, correct_log_q: bool = False) -> None:
        super().__init__()
        if not 1 <= size <= num_items:
            raise ValueError(f"num_negatives={size} must be in [1, {num_items}] (the data set's size) for a "
                             "memory bank drawn without repeats")
        self.size, self.dim, self.num_items, self.correct_log_q = size, dim, num_items, correct_log_q
        self.sampler = sampler(range_max=num_items, num_sampled=size)
        if not self.sampler.unique:
            raise ValueError("a memory bank draws distinct items: its sampler needs unique=True")
        self.register_buffer("bank", F.normalize(torch.randn(num_items, dim), dim=1))

    def draw(self, index: torch.Tensor) -> Negatives:
        """`size` stored embeddings, their indices, and (with `correct_log_q`) their log expected counts."""
        ids, _, q = self.sampler.sample(index.long().view(-1, 1))
        ids = ids.to(self.bank.device)
        return Negatives(self.bank[ids].clone(), ids, torch.log(q).to(self.bank.device) if self.correct_log_q else None)

    @torch.no_grad()
    def update(self, keys: torch.Tensor, index: torch.Tensor | None = None) -> None:
        """Store `keys` `[B, dim]` at their dataset indices `[B]` (from every process)."""
        if index is None:
            raise ValueError("a memory bank needs the dataset index of every item in the batch")
        keys = D.gather_no_grad(F.normalize(keys.detach(), dim=1).to(self.bank.dtype))
        index = D.gather_no_grad(index.long())
        check_in_range(index, self.num_items, "dataset index")
        self.bank[index.to(self.bank.device)] = keys


class SupportSet(NegativeQueue):
    """NNCLR's support set (Dwibedi et al. 2021): a FIFO of the last `size` keys; each anchor's positive is the
    stored key nearest to it (cosine), without gradient. `terms` gives both directions, objective(NN(query), key)
    and objective(NN(key), query), averaged; until a key is stored the anchors themselves are used."""

    uses: tuple[str, ...] = ()

    def __init__(self, size: int, dim: int) -> None:
        super().__init__(size, dim)
        self.register_buffer("stored", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """The stored key `[B, dim]` nearest to each row of `x` `[B, dim]`, or `x` itself while nothing is stored."""
        if int(self.stored) == 0:
            return x.detach()
        keys = self.keys[: int(self.stored)]
        best = (F.normalize(x.detach(), dim=1).to(keys.dtype) @ keys.T).argmax(dim=1)
        return keys[best].to(x.dtype)

    def terms(self, query: torch.Tensor, key: torch.Tensor, index: torch.Tensor | None) -> list[Term]:
        return [(self.nearest(query), key, {}), (self.nearest(key), query, {})]

    @torch.no_grad()
    def update(self, keys: torch.Tensor, index: torch.Tensor | None = None) -> None:
        super().update(keys, index)
        self.stored.copy_(torch.clamp(self.stored + keys.shape[0] * D.world_size(), max=self.size))
