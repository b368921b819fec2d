"""Candidate samplers as objects, one class per sampler: `sample(true_classes [B, T]) -> (sampled_candidates
[S], true_expected_count [B, T], sampled_expected_count [S])` with TensorFlow's rules (the functional samplers
of `candidate.py` and `unigram.py` do the drawing). `probs()` gives the distribution, for the compiled word2vec
step. Seeded by `seed`, else by the run's global generator; under DDP every process draws the same candidates."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from contrastive import distributed as D
from contrastive.samplers.candidate import (
    Result,
    check_counts,
    log_uniform_candidate_sampler,
    log_uniform_probs,
    uniform_candidate_sampler,
)
from contrastive.samplers.unigram import (
    LearnedUnigramCandidateSampler,
    fixed_unigram_candidate_sampler,
    unigram_table,
)


class CandidateSampler(nn.Module):
    """Draws `num_sampled` ids of `[0, range_max)` per call (distinct with `unique`), for `num_true` labels per
    row."""

    def __init__(self, range_max: int, num_sampled: int, num_true: int = 1, unique: bool = True,
                 seed: int | None = None) -> None:
        super().__init__()
        check_counts(num_sampled, range_max, unique)
        if num_true < 1:
            raise ValueError(f"num_true must be >= 1, got {num_true}")
        self.range_max, self.num_sampled, self.num_true, self.unique, self.seed = (range_max, num_sampled, num_true,
                                                                                   unique, seed)
        self._generator: torch.Generator | None = None

    def extra_repr(self) -> str:
        return f"range_max={self.range_max}, num_sampled={self.num_sampled}, unique={self.unique}"

    def generator(self, device: torch.device) -> torch.Generator | None:
        """None (the global generator, as seeded by the run), or this sampler's own, seeded by `seed` or, under
        DDP, by rank 0's draw, so that every process samples the same candidates."""
        if self.seed is None and not D.is_distributed():
            return None
        if self._generator is None or self._generator.device != device:
            seed = self.seed if self.seed is not None else int(torch.randint(0, 2**62, ()))
            self._generator = torch.Generator(device=device).manual_seed(D.broadcast_seed(seed))
        return self._generator

    def sample(self, true_classes: torch.Tensor) -> Result:
        """`(sampled [S], true_expected [B, T], sampled_expected [S])` for `true_classes [B, T]`."""
        return self._draw(true_classes, self.generator(true_classes.device))

    def _draw(self, true_classes: torch.Tensor, g: torch.Generator | None) -> Result:
        raise NotImplementedError

    def probs(self) -> np.ndarray:
        """The probability of each id, `[range_max]` float64 (unnormalised weights where TF keeps a table)."""
        raise NotImplementedError


class LogUniformSampler(CandidateSampler):
    """Zipfian: P(k) = log((k + 2) / (k + 1)) / log(range_max + 1); ids sorted by decreasing frequency."""

    def _draw(self, true_classes: torch.Tensor, g: torch.Generator | None) -> Result:
        return log_uniform_candidate_sampler(true_classes, self.num_true, self.num_sampled, self.unique,
                                             self.range_max, seed=g)

    def probs(self) -> np.ndarray:
        return log_uniform_probs(torch.arange(self.range_max), self.range_max).double().numpy()


class UniformSampler(CandidateSampler):
    """Every id equally likely."""

    def _draw(self, true_classes: torch.Tensor, g: torch.Generator | None) -> Result:
        return uniform_candidate_sampler(true_classes, self.num_true, self.num_sampled, self.unique, self.range_max,
                                         seed=g)

    def probs(self) -> np.ndarray:
        return np.full(self.range_max, 1.0 / self.range_max)


class UnigramSampler(CandidateSampler):
    """A fixed unigram table: `unigrams` (counts, one per id after `num_reserved_ids` reserved ids of weight 0)
    raised to `distortion` (word2vec's 0.75)."""

    def __init__(self, range_max: int, num_sampled: int, unigrams: Sequence[float], distortion: float = 1.0,
                 num_reserved_ids: int = 0, num_true: int = 1, unique: bool = True, seed: int | None = None) -> None:
        super().__init__(range_max, num_sampled, num_true, unique, seed)
        self.unigrams, self.distortion, self.num_reserved_ids = list(unigrams), distortion, num_reserved_ids
        table = unigram_table(self.unigrams, distortion, num_reserved_ids)
        if len(table) != range_max:
            raise ValueError(f"the unigram table has {len(table)} ids (num_reserved_ids + len(unigrams)), but "
                             f"range_max={range_max}")
        if unique and int((table > 0).sum()) < num_sampled:
            raise ValueError(f"unique sampling of num_sampled={num_sampled} needs as many ids of non-zero weight, "
                             f"got {int((table > 0).sum())}")

    def _draw(self, true_classes: torch.Tensor, g: torch.Generator | None) -> Result:
        return fixed_unigram_candidate_sampler(true_classes, self.num_true, self.num_sampled, self.unique,
                                               self.range_max, distortion=self.distortion,
                                               num_reserved_ids=self.num_reserved_ids, unigrams=self.unigrams, seed=g)

    def probs(self) -> np.ndarray:
        return unigram_table(self.unigrams, self.distortion, self.num_reserved_ids).astype(np.float64)


class LearnedUnigramSampler(CandidateSampler):
    """TF's learned unigram sampler: counts start at 1 per id and grow by the true classes seen (a buffer, so
    checkpoints carry it)."""

    def __init__(self, range_max: int, num_sampled: int, num_true: int = 1, unique: bool = True,
                 seed: int | None = None) -> None:
        super().__init__(range_max, num_sampled, num_true, unique, seed)
        self.learned = LearnedUnigramCandidateSampler(range_max)

    def _draw(self, true_classes: torch.Tensor, g: torch.Generator | None) -> Result:
        return self.learned(true_classes, self.num_true, self.num_sampled, self.unique, seed=g)

    def probs(self) -> np.ndarray:
        raise ValueError("the learned unigram distribution changes with every batch; it has no fixed probs()")
