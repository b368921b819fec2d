"""Hard negatives mined for text pairs: for each anchor, the best-scoring distinct positive texts of the
training pairs other than its own positive (and other than a copy of the anchor). One miner class per way of
scoring (`data/miner=bm25|tfidf|model`); each finds `k` negatives per pair."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import ClassVar

import numpy as np
import torch

from contrastive.sparse import Hybrid, cosine_matrix

BLOCK = 256  # anchors scored at a time: the block's scores are [BLOCK, len(docs)]
Embed = Callable[[list[str], str], "torch.Tensor | Hybrid"]


def _best(scores: np.ndarray, k: int, exclude: list[set[int]]) -> list[list[int]]:
    """Per row of `scores [b, n]`, the k best columns in order, skipping that row's `exclude` set."""
    out = []
    for row, skip in zip(scores, exclude):
        m = min(k + len(skip), len(row))
        top = np.argpartition(-row, m - 1)[:m]
        top = top[np.argsort(-row[top], kind="stable")]
        out.append([int(j) for j in top if j not in skip][:k])
    return out


class Miner:
    """Mines `k` negatives per pair. A subclass scores anchors against documents (`blocks`) or overrides
    `ranked`; `needs_encoder`: it mines with the encoder, so the task calls it once the encoder is built."""

    needs_encoder: ClassVar[bool] = False

    def __init__(self, k: int = 1) -> None:
        if k < 1:
            raise ValueError(f"data.miner.k={k}: mining needs at least 1 negative per pair")
        self.k = k

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("Miner").lower()

    def mine(self, anchors: list[str], positive_ids: list[int], docs: list[str],
             embed: Embed | None = None) -> list[list[int]]:
        """For anchor i, the indices into `docs` (distinct texts) of its k best-scoring documents other than
        `positive_ids[i]` and other than a document equal to the anchor; `embed(texts, side)` for the encoder."""
        k = self.k
        if len(docs) - 1 < k:
            raise ValueError(f"data/miner={self.name} with data.miner.k={k} needs at least {k + 1} distinct "
                             f"positive texts to choose from, but the training pairs hold {len(docs)}; lower k")
        where = {d: j for j, d in enumerate(docs)}
        exclude = [{p} | ({where[a]} if a in where else set()) for a, p in zip(anchors, positive_ids)]
        short = [i for i, skip in enumerate(exclude) if len(docs) - len(skip) < k]
        if short:
            raise ValueError(f"data/miner={self.name} with data.miner.k={k}: training pair {short[0]}'s anchor is "
                             f"also a positive text, leaving {len(docs) - 2} candidates; lower k")
        return self.ranked(anchors, docs, exclude, embed)

    def ranked(self, anchors: list[str], docs: list[str], exclude: list[set[int]],
               embed: Embed | None) -> list[list[int]]:
        """Per anchor, its k best documents outside its `exclude` set, best first."""
        out: list[list[int]] = []
        for i, block in enumerate(self.blocks(anchors, docs, embed)):
            out += _best(block, self.k, exclude[i * BLOCK:(i + 1) * BLOCK])
        return out

    def blocks(self, anchors: list[str], docs: list[str], embed: Embed | None) -> Iterator[np.ndarray]:
        """Scores `[<= BLOCK, len(docs)]` of successive blocks of anchors."""
        raise NotImplementedError


class BM25Miner(Miner):
    """BM25 scores (the `bm25s` library)."""

    def ranked(self, anchors: list[str], docs: list[str], exclude: list[set[int]],
               embed: Embed | None) -> list[list[int]]:
        import bm25s
        index = bm25s.BM25()
        index.index(bm25s.tokenize(docs, show_progress=False), show_progress=False)
        want = min(len(docs), self.k + 2)  # the own positive and a copy of the anchor may rank first
        found, _ = index.retrieve(bm25s.tokenize(anchors, return_ids=False, show_progress=False), k=want,
                                  show_progress=False)
        return [[int(j) for j in row if j not in skip][:self.k] for row, skip in zip(found, exclude)]


class TfidfMiner(Miner):
    """TF-IDF cosine (scikit-learn, sublinear term frequency)."""

    def blocks(self, anchors: list[str], docs: list[str], embed: Embed | None) -> Iterator[np.ndarray]:
        from sklearn.feature_extraction.text import TfidfVectorizer
        vec = TfidfVectorizer(sublinear_tf=True).fit(docs)
        d = vec.transform(docs).T.tocsc()
        return ((vec.transform(anchors[i:i + BLOCK]) @ d).toarray() for i in range(0, len(anchors), BLOCK))


class ModelMiner(Miner):
    """Cosine of the encoder's embeddings as training starts (after the word vectors)."""

    needs_encoder = True

    def blocks(self, anchors: list[str], docs: list[str], embed: Embed | None) -> Iterator[np.ndarray]:
        if embed is None:
            raise ValueError("data/miner=model needs the encoder: the task mines after building it")
        doc_vecs = embed(docs, "positive")
        return (cosine_matrix(embed(anchors[i:i + BLOCK], "anchor"), doc_vecs).numpy()
                for i in range(0, len(anchors), BLOCK))
