"""Walker's alias method: draws from a fixed discrete distribution in O(1) per sample (two gathers and a
compare), for samplers called on every step with many draws (word2vec's negatives)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's construction: `(accept [V] float64, alias [V] int64)` for non-negative `weights [V]`."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or len(w) == 0 or (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("weights must be a non-empty flat array of finite non-negative numbers with a positive sum")
    n = len(w)
    scaled = w * (n / w.sum())
    accept, alias = np.ones(n), np.arange(n)
    small = [i for i in range(n) if scaled[i] < 1]
    large = [i for i in range(n) if scaled[i] >= 1]
    while small and large:
        s, big = small.pop(), large.pop()
        accept[s], alias[s] = scaled[s], big
        scaled[big] -= 1 - scaled[s]
        (small if scaled[big] < 1 else large).append(big)
    return accept, alias  # leftovers keep accept 1 (rounding)


class AliasSampler(nn.Module):
    """`forward(n)` -> `[n]` ids drawn with probability proportional to `weights`, with replacement; `table`,
    an `alias_table` already built for them, instead of `weights`."""

    def __init__(self, weights: np.ndarray | torch.Tensor | None,
                 table: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().__init__()
        accept, alias = alias_table(np.asarray(weights)) if table is None else table
        self.register_buffer("accept", torch.from_numpy(accept).float(), persistent=False)
        self.register_buffer("alias", torch.from_numpy(alias), persistent=False)

    def forward(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        dev = self.accept.device
        i = torch.randint(len(self.accept), (n,), device=dev, generator=generator)
        return torch.where(torch.rand(n, device=dev, generator=generator) < self.accept[i], i, self.alias[i])
