"""Word vectors for initialising text encoders: word2vec's skip-gram with negative sampling, trained with the
compiled per-pair SGD of `hogwild` on pair batches, without Lightning (seconds on a small corpus)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from contrastive.losses import NegativeSamplingLoss
from contrastive.word2vec import hogwild
from contrastive.word2vec.steps import init_table, linear_rate

PairBatches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


def train_word_vectors(epoch_batches: PairBatches, counts: Sequence[int], batches_per_epoch: int, dim: int = 100,
                       epochs: int = 10, negatives: int = 5, lr: float = 0.025, seed: int = 0) -> torch.Tensor:
    """Vectors `[len(counts), dim]` from skip-gram with `negatives` per pair (drawn from counts^0.75); each call
    of `epoch_batches()` yields one epoch's `(centre [B], context [B, 1])` batches. The learning rate decays
    linearly from `lr` to 0.0001 * lr as word2vec's; one thread (repeatable) under deterministic algorithms."""
    if epochs < 1:
        raise ValueError(f"word vector epochs must be >= 1, got {epochs}")
    vocab = len(counts)
    g = torch.Generator().manual_seed(seed)
    vectors = init_table(torch.empty(vocab, dim), g)
    objective = NegativeSamplingLoss(vocab, dim, negatives, unigrams=list(counts))
    total, step = epochs * max(1, batches_per_epoch), 0
    for _ in range(epochs):
        for centre, context in epoch_batches():
            hogwild.hogwild_step(vectors, objective, centre, context, lr * linear_rate(step, total, 1e-4),
                                 seed=seed * 100_003 + step, lr_end=lr * linear_rate(step + 1, total, 1e-4))
            step += 1
    if not step:
        raise ValueError("the texts made no skip-gram pair; train the word vectors on more text (or turn them "
                         "off: task.word_vectors.epochs=0)")
    return vectors
