"""Word vectors for initialising text encoders: word2vec's skip-gram with negative sampling, trained with the
compiled per-pair SGD of `hogwild` on a list of sentences, without Lightning (seconds on a small corpus)."""
from __future__ import annotations

import torch

from contrastive.data.skipgram import SkipGramDataModule
from contrastive.losses import NegativeSamplingLoss
from contrastive.models import hogwild


def train_word_vectors(sentences: list[list[str]], dim: int = 100, epochs: int = 10, window: int = 5,
                       negatives: int = 5, min_count: int = 2, lr: float = 0.025, seed: int = 0
                       ) -> tuple[list[str], torch.Tensor]:
    """`(words, vectors [len(words), dim])` from skip-gram with `negatives` per pair, the learning rate decaying
    linearly from `lr` to 0.0001 * lr as word2vec's; one thread (repeatable) under deterministic algorithms."""
    if epochs < 1:
        raise ValueError(f"word vector epochs must be >= 1, got {epochs}")
    # hogwild updates pair by pair: the batch is only the work per call
    dm = SkipGramDataModule(sentences, min_count=min_count, window=window, batch_size=1024, shuffle_seed=seed)
    dm.setup()
    g = torch.Generator().manual_seed(seed)
    vectors = (torch.rand(dm.vocab_size, dim, generator=g) - 0.5) / dim  # word2vec's initialisation
    objective = NegativeSamplingLoss(dm.vocab_size, dim, negatives, unigrams=dm.counts.tolist())
    total, step = epochs * dm.batches_per_epoch, 0
    for _ in range(epochs):
        for centre, context in dm.epoch_batches():
            rate = lr * max(1e-4, 1 - step / total)
            hogwild.hogwild_step(vectors, objective, centre, context, rate, seed=seed * 100_003 + step)
            step += 1
    if not step:
        raise ValueError(f"{sum(map(len, sentences))} words made no skip-gram pair; train the word vectors on "
                         "more text (or turn them off: word_vectors.epochs=0)")
    return dm.words, vectors
