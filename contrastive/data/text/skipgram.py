"""Skip-gram (centre, context) pairs from a corpus: a vocabulary sorted by decreasing frequency (so ids suit
the log-uniform sampler), word2vec's frequent-word subsampling and dynamic window, made chunk by chunk and
reshuffled every epoch, pair by pair for the batched steps; for the compiled per-pair step, the kept tokens
themselves in blocks of neighbouring centres, in a random order, and the step makes the pairs as it trains
(rows stay in cache; as good vectors as a full shuffle)."""
from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from contrastive.checks import keeps_contract
from contrastive.data.resumable import ResumablePosition
from contrastive.data.text.corpus import WikiDump, as_corpus


def build_vocab(sentences: list[list[str]], min_count: int, max_vocab: int | None = None) -> tuple[list[str], np.ndarray]:
    """Words with count >= `min_count`, most frequent first (ties alphabetical), and their counts."""
    counts = Counter(w for s in sentences for w in s)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))[:max_vocab]
    return words, np.array([counts[w] for w in words], dtype=np.int64)


def skipgram_pairs(ids: torch.Tensor, sent: torch.Tensor, keep: torch.Tensor, window: int,
                   g: torch.Generator) -> torch.Tensor:
    """`[P, 2]` (centre, context) pairs from token ids `[n]` in sentences `sent [n]`, keeping the tokens where
    `keep`, each centre with its own window size drawn from 1..`window` (word2vec's dynamic window), in corpus
    order (each centre's contexts left to right)."""
    ids, sent = ids[keep], sent[keep]
    n = ids.numel()
    reach = torch.randint(1, window + 1, (n,), generator=g, dtype=torch.int8)
    loop = _compiled_pairs_loop()
    if loop is not None:
        args = (ids.numpy(), sent.numpy(), reach.numpy())
        out = np.empty((loop(*args, np.empty((0, 2), np.int64)), 2), np.int64)  # count, then fill
        loop(*args, out)
        return torch.from_numpy(out)
    offsets = [o for o in range(-window, window + 1) if o]
    mask = torch.zeros(n, len(offsets), dtype=torch.bool)  # [centre, offset]: that context makes a pair
    for col, o in enumerate(offsets):
        a = abs(o)
        same = sent[a:] == sent[:-a]
        if o > 0:
            mask[:-a, col] = same & (reach[:-a] >= a)
        else:
            mask[a:, col] = same & (reach[a:] >= a)
    rows, col = mask.nonzero(as_tuple=True)
    return torch.stack([ids[rows], ids[rows + torch.tensor(offsets)[col]]], 1)


def _pairs_loop(ids: np.ndarray, sent: np.ndarray, reach: np.ndarray, out: np.ndarray) -> int:
    """skipgram_pairs' loop over the kept tokens: the number of pairs, written into `out` when it has rows."""
    n, p, fill = ids.shape[0], 0, out.shape[0] > 0
    for i in range(n):
        r = reach[i]
        for j in range(max(0, i - r), min(n, i + r + 1)):
            if j != i and sent[j] == sent[i]:
                if fill:
                    out[p, 0] = ids[i]
                    out[p, 1] = ids[j]
                p += 1
    return p


@functools.cache
def _compiled_pairs_loop() -> Any:
    """`_pairs_loop` compiled by numba (the text extra; ~20x the torch code), or None without numba. Loaded on
    first use: importing numba takes a second that image runs should not pay."""
    try:
        import numba
    except ImportError:
        return None
    return numba.njit(nogil=True, cache=True)(_pairs_loop)


def block_shuffle(n: int, block: int, g: torch.Generator) -> torch.Tensor:
    """A permutation of `n` positions that shuffles whole blocks of `block` and the positions inside each block
    (one pattern for all blocks, the tail of fewer than `block` kept at the end): the pairs of a block come
    from a few hundred neighbouring tokens, whose table rows then stay in cache while the block trains."""
    full = n // block
    inner = torch.randperm(block, generator=g)
    order = (torch.randperm(full, generator=g)[:, None] * block + inner).reshape(-1)
    return torch.cat([order, torch.arange(full * block, n)])


class _PairStream(IterableDataset):
    def __init__(self, dm: SkipGramDataModule) -> None:
        self.dm = dm

    def __len__(self) -> int:
        return self.dm.batches_per_epoch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from self.dm.epoch_batches()


class SkipGramDataModule(ResumablePosition, pl.LightningDataModule):
    """Batches of `(centre [B], context [B, 1])` word ids for word2vec-style training; `corpus` is a corpus object
    (`sentences()`: WikiDump, GensimFile, TextFile; null: the Wikipedia sample), a text file's path, or sentences
    as token lists."""

    def __init__(self, corpus: Any = None, min_count: int = 5, window: int = 5,
                 subsample: float = 1e-3, batch_size: int | None = None, max_vocab: int | None = None,
                 chunk_tokens: int = 1_000_000, shuffle_seed: int = 0, shuffle_block: int | None = None) -> None:
        super().__init__()
        if window < 1 or min_count < 1 or (batch_size is not None and batch_size < 1):
            raise ValueError(f"window, min_count and batch_size must be >= 1, got {window}, {min_count}, {batch_size}")
        self.corpus = corpus if isinstance(corpus, list) else keeps_contract(
            as_corpus(corpus or WikiDump()), "data.corpus", ("sentences",), "give a text file's path or use "
            "data=enwiki_sample|lee")
        self.min_count, self.window, self.subsample = min_count, window, subsample
        self.batch_size, self.max_vocab, self.chunk_tokens, self.seed = batch_size, max_vocab, chunk_tokens, shuffle_seed
        self.epoch = 0
        if shuffle_block is not None and shuffle_block < 1:
            raise ValueError(f"shuffle_block must be >= 1 pairs (or null: chosen by the model), got {shuffle_block}")
        # pairs shuffled in blocks of this many neighbours; None: the model picks (256 for the compiled step,
        # whose rows then stay in cache; 1, pair by pair, for batched steps, whose batches should span the corpus)
        self.shuffle_block = shuffle_block
        # set by the model when its step makes the pairs from the token stream itself (hogwild): batches are then
        # token windows, not pairs
        self.token_windows = False

    def sentences(self) -> list[list[str]]:
        """The corpus as token lists (read again from its file on each call)."""
        return self.corpus if isinstance(self.corpus, list) else self.corpus.sentences()

    def setup(self, stage: str | None = None) -> None:
        if hasattr(self, "ids"):
            return
        sentences = self.sentences()
        self.raw_tokens = sum(map(len, sentences))
        self.words, self.counts = build_vocab(sentences, self.min_count, self.max_vocab)
        if len(self.words) < 2:
            name = "the given sentences" if isinstance(self.corpus, list) else repr(self.corpus)
            raise ValueError(f"the vocabulary of {name} has {len(self.words)} word(s) with count >= "
                             f"min_count={self.min_count}; lower data.min_count or use a larger corpus")
        index = {w: i for i, w in enumerate(self.words)}
        ids, sent = [], []
        for k, s in enumerate(sentences):
            kept = [index[w] for w in s if w in index]
            ids += kept
            sent += [k] * len(kept)
        self.ids, self.sent = torch.tensor(ids, dtype=torch.long), torch.tensor(sent, dtype=torch.long)
        self.num_tokens = int(self.ids.numel())
        freq = torch.from_numpy(self.counts).double() / self.counts.sum()
        t = self.subsample
        # word2vec's keep probability: (sqrt(f / t) + 1) * t / f, capped at 1; t <= 0 keeps every word
        self.keep_prob = ((freq / t).sqrt() + 1) * t / freq if t > 0 else torch.ones_like(freq)
        kept = self.keep_prob.clamp(max=1)[self.ids]
        self.expected_pairs = int(kept.sum()) * (self.window + 1)  # ~2 * mean reach = window + 1 per kept token
        self.chunk_pairs = torch.stack([k.sum() for k in kept.split(self.chunk_tokens)]) * (self.window + 1)
        # the compiled pair loop compiles here, not in the first training step
        skipgram_pairs(self.ids[:2], self.sent[:2], torch.ones(2, dtype=torch.bool), 1, torch.Generator())

    @property
    def chunk_batches(self) -> torch.Tensor:
        """Token batches per chunk `[chunks]`: a fixed number from its expected pairs, so an epoch's is known."""
        return (self.chunk_pairs / self.pairs_per_batch()).round().clamp(min=1).long()

    def pairs_per_batch(self) -> int:
        """`batch_size`, once given or chosen by the model's step."""
        if self.batch_size is None:
            raise ValueError("data.batch_size is null and no step has chosen it; set data.batch_size")
        return self.batch_size

    @property
    def batches_per_epoch(self) -> int:
        """Batches in an epoch: of pairs (an upper bound: sentence ends cut windows), or of token blocks (exact)."""
        if self.token_windows:
            return int(self.chunk_batches.sum())
        return max(1, self.expected_pairs // self.pairs_per_batch())

    @property
    def vocab_size(self) -> int:
        return len(self.words)

    def epoch_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's shuffled pairs, one chunk of the corpus at a time, as `(centre, context)` batches."""
        trainer = getattr(self, "trainer", None)
        epoch = trainer.current_epoch if trainer is not None else self.epoch
        self.epoch = epoch + 1
        skip = 0
        if self._resume and self._resume["epoch"] == epoch:  # resuming mid-epoch: replay, then skip
            skip, self._resume = self._resume["consumed_batches"], None
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        for b in self._token_batches(g) if self.token_windows else self._batches(g):
            if skip:
                skip -= 1
                continue
            yield b if self.token_windows else (b[:, 0], b[:, 1:])

    def _kept_chunks(self, g: torch.Generator) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The corpus in chunks of `chunk_tokens`, in a random order, each as its index, its word ids and
        sentence ids, and which of its tokens subsampling keeps."""
        starts = torch.randperm((self.num_tokens + self.chunk_tokens - 1) // self.chunk_tokens, generator=g)
        for c in starts.tolist():
            sl = slice(c * self.chunk_tokens, (c + 1) * self.chunk_tokens)
            ids, sent = self.ids[sl], self.sent[sl]
            keep = torch.rand(ids.numel(), generator=g, dtype=torch.float64) < self.keep_prob[ids]
            yield c, ids, sent, keep

    def _token_batches(self, g: torch.Generator) -> Iterator[tuple[torch.Tensor, ...]]:
        """`(ids [T], sent [T], starts [M], (block, window))` batches for a step that makes the pairs itself: a
        chunk's kept tokens and the starts of M of its blocks of `block` neighbouring centres (`shuffle_block`
        pairs' worth), the chunk's blocks in a random order cut into the chunk's number of batches (about
        batch_size pairs each); every kept token is a centre once."""
        block = max(1, (self.shuffle_block or 1) // (self.window + 1))
        meta, per_chunk = torch.tensor([block, self.window]), self.chunk_batches.tolist()
        for c, ids, sent, keep in self._kept_chunks(g):
            ids, sent = ids[keep], sent[keep]
            starts = torch.randperm(-(-len(ids) // block), generator=g) * block
            for part in starts.tensor_split(per_chunk[c]):
                yield ids, sent, part, meta

    def _batches(self, g: torch.Generator) -> Iterator[torch.Tensor]:
        """This epoch's `[batch_size, 2]` pair batches, the last one possibly shorter (never empty)."""
        carry = torch.empty(0, 2, dtype=torch.long)
        for _, ids, sent, keep in self._kept_chunks(g):
            # pairs that straddle two chunks are dropped: at most window * (window + 1) per chunk
            pairs = skipgram_pairs(ids, sent, keep, self.window, g)
            # index_select: 2.4x faster than pairs[perm] on [P, 2] rows
            pairs = torch.cat([carry, pairs.index_select(0, block_shuffle(len(pairs), self.shuffle_block or 1, g))])
            size = self.pairs_per_batch()
            n = len(pairs) // size * size
            if n:  # split of nothing gives one empty batch
                yield from pairs[:n].split(size)
            carry = pairs[n:]
        if len(carry):  # the epoch's last pairs, fewer than a batch (all of a small corpus's)
            yield carry

    def train_dataloader(self) -> DataLoader:
        # its own generator: starting an epoch's iterator must not draw from the global RNG (the hogwild step seeds
        # its negatives from it, and a resume at an epoch boundary restores it before the next epoch's iterator)
        return DataLoader(_PairStream(self), batch_size=None, generator=torch.Generator().manual_seed(self.seed))
