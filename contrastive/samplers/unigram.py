"""Unigram candidate samplers: fixed (a given table, with distortion, reserved ids and sharding) and learned
(counts updated from the true classes after each call; its state is a buffer saved with checkpoints)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from contrastive.samplers.candidate import (
    Result,
    check_counts,
    check_true_classes,
    sample_with_probs,
)

INT32_MAX = 2**31 - 1


def read_vocab_file(path: str) -> list[float]:
    """Weights from a CSV vocabulary file: the last field of each non-empty line."""
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    out.append(float(line.rstrip("\n").split(",")[-1]))
                except ValueError:
                    raise ValueError(f"{path}:{n}: the last field must be a number, got {line.strip()!r}") from None
    return out


def unigram_table(unigrams: Sequence[float], distortion: float = 1.0, num_reserved_ids: int = 0,
                  num_shards: int = 1, shard: int = 0) -> np.ndarray:
    """This shard's float32 weight table, built as TF does (reserved ids get 0, then `u ** distortion`)."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, num_shards={num_shards}), got {shard}")
    u = np.asarray(unigrams, dtype=np.float32)
    if u.ndim != 1 or (u < 0).any():
        raise ValueError("unigrams must be a flat list of non-negative weights")
    reserved = np.zeros(sum(1 for i in range(num_reserved_ids) if i % num_shards == shard), np.float32)
    # TF numbers the unigrams from the count of reserved ids *this shard kept*, not from num_reserved_ids
    # (range_sampler.cc, LoadFromUnigrams: word_id = weights_.size()); checked against TF 2.21
    ids = np.arange(len(u)) + len(reserved)
    kept = np.power(u[ids % num_shards == shard], np.float32(distortion))
    return np.concatenate([reserved, kept]).astype(np.float32)


def _table_sampler(true_classes: torch.Tensor, num_sampled: int, unique: bool, weights: torch.Tensor,
                   total: torch.Tensor, seed: int | torch.Generator | None) -> Result:
    cdf = torch.cumsum(weights.double(), 0)
    last = len(weights) - 1

    def draw(n: int, g: torch.Generator | None) -> torch.Tensor:
        u = torch.rand(n, generator=g, device=weights.device, dtype=torch.float64) * cdf[-1]
        return torch.searchsorted(cdf, u, right=True).clamp_(max=last)

    probs = (weights.float() / total.float())
    return sample_with_probs(true_classes, num_sampled, unique, draw, lambda v: probs[v], seed,
                             nonzero=int((weights > 0).sum()))


def fixed_unigram_candidate_sampler(true_classes: torch.Tensor, num_true: int, num_sampled: int, unique: bool,
                                    range_max: int, vocab_file: str = "", distortion: float = 1.0,
                                    num_reserved_ids: int = 0, num_shards: int = 1, shard: int = 0,
                                    unigrams: Sequence[float] = (),
                                    seed: int | torch.Generator | None = None) -> Result:
    """Sampling from a fixed unigram table (`unigrams` or `vocab_file`); with shards, ids are shard-local."""
    if bool(vocab_file) == bool(len(unigrams)):
        raise ValueError("give exactly one of vocab_file and unigrams" if vocab_file else
                         "give either vocab_file or unigrams")
    table = unigram_table(read_vocab_file(vocab_file) if vocab_file else unigrams, distortion,
                          num_reserved_ids, num_shards, shard)
    if range_max != len(table):
        raise ValueError(f"range_max={range_max} must equal the size of this shard's unigram table, {len(table)}")
    check_counts(num_sampled, range_max, unique)
    tc = check_true_classes(true_classes, num_true, range_max)
    w = torch.from_numpy(table).to(tc.device)
    total = torch.tensor(np.cumsum(table, dtype=np.float32)[-1], device=tc.device)  # sequential float32 sum
    # a true class of weight 0 (a reserved or padding id) gets expected count 0, as in TF; the sampled losses
    # refuse it where they would take its log
    return _table_sampler(tc, num_sampled, unique, w, total, seed)


class LearnedUnigramCandidateSampler(nn.Module):
    """TF's learned unigram sampler: weights start at 1 per id; each call samples from the current weights,
    then adds 1 for every true class of the batch (total capped at INT32_MAX). Call it like the functional
    samplers: `sampler(true_classes, num_true, num_sampled, unique, seed=None)`."""

    def __init__(self, range_max: int) -> None:
        super().__init__()
        if not 1 <= range_max <= INT32_MAX:
            raise ValueError(f"range_max must be in [1, {INT32_MAX}], got {range_max}")
        self.range_max = range_max
        self.register_buffer("counts", torch.ones(range_max, dtype=torch.long))

    def forward(self, true_classes: torch.Tensor, num_true: int, num_sampled: int, unique: bool,
                seed: int | torch.Generator | None = None) -> Result:
        check_counts(num_sampled, self.range_max, unique)
        tc = check_true_classes(true_classes, num_true, self.range_max)
        counts = self.counts.to(tc.device)
        out = _table_sampler(tc, num_sampled, unique, counts.float(), counts.sum().float(), seed)
        self.update(tc)
        return out

    @torch.no_grad()
    def update(self, true_classes: torch.Tensor) -> None:
        """Add 1 to the weight of each true class, keeping the total <= INT32_MAX."""
        room = INT32_MAX - int(self.counts.sum())
        flat = true_classes.reshape(-1).to(self.counts.device)[:max(0, room)]
        self.counts.index_add_(0, flat, torch.ones_like(flat))


learned_unigram_candidate_sampler = LearnedUnigramCandidateSampler
