"""Hard negatives mined for text pairs: for each anchor, the best-scoring distinct positive texts of the
training pairs other than its own positive (and other than a copy of the anchor), by BM25 (the `bm25s`
library), TF-IDF cosine (scikit-learn) or a model's embeddings."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from contrastive.sparse import Hybrid, cosine_matrix

METHODS = ("bm25", "tfidf", "model")
BLOCK = 256  # anchors scored at a time: the block's scores are [BLOCK, len(docs)]


def check_mining(method: str | None, k: int) -> None:
    """A clear error for an unknown method or a k below 1."""
    if method is not None and method not in METHODS:
        raise ValueError(f"data.mine_negatives={method!r} is not a mining method; valid: {', '.join(METHODS)} "
                         "or null (no mining)")
    if method is not None and k < 1:
        raise ValueError(f"data.mine_k={k}: mining needs at least 1 negative per pair")


def _best(scores: np.ndarray, k: int, exclude: list[set[int]]) -> list[list[int]]:
    """Per row of `scores [b, n]`, the k best columns in order, skipping that row's `exclude` set."""
    out = []
    for row, skip in zip(scores, exclude):
        m = min(k + len(skip), len(row))
        top = np.argpartition(-row, m - 1)[:m]
        top = top[np.argsort(-row[top], kind="stable")]
        out.append([int(j) for j in top if j not in skip][:k])
    return out


def mine(anchors: list[str], positive_ids: list[int], docs: list[str], k: int, method: str,
         embed: Callable[[list[str], str], torch.Tensor | Hybrid] | None = None) -> list[list[int]]:
    """For anchor i, the indices into `docs` (distinct texts) of its k best-scoring documents other than
    `positive_ids[i]` and other than a document equal to the anchor; `embed(texts, side)` for `method="model"`."""
    check_mining(method, k)
    if len(docs) - 1 < k:
        raise ValueError(f"data.mine_negatives={method} with data.mine_k={k} needs at least {k + 1} distinct "
                         f"positive texts to choose from, but the training pairs hold {len(docs)}; lower mine_k")
    where = {d: j for j, d in enumerate(docs)}
    exclude = [{p} | ({where[a]} if a in where else set()) for a, p in zip(anchors, positive_ids)]
    short = [i for i, skip in enumerate(exclude) if len(docs) - len(skip) < k]
    if short:
        raise ValueError(f"data.mine_negatives={method} with data.mine_k={k}: training pair {short[0]}'s anchor is "
                         f"also a positive text, leaving {len(docs) - 2} candidates; lower mine_k")
    if method == "bm25":
        import bm25s
        index = bm25s.BM25()
        index.index(bm25s.tokenize(docs, show_progress=False), show_progress=False)
        want = min(len(docs), k + 2)  # the own positive and a copy of the anchor may rank first
        found, _ = index.retrieve(bm25s.tokenize(anchors, return_ids=False, show_progress=False), k=want,
                                       show_progress=False)
        return [[int(j) for j in row if j not in skip][:k] for row, skip in zip(found, exclude)]
    if method == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer
        vec = TfidfVectorizer(sublinear_tf=True).fit(docs)
        d = vec.transform(docs).T.tocsc()
        blocks = ((vec.transform(anchors[i:i + BLOCK]) @ d).toarray() for i in range(0, len(anchors), BLOCK))
    else:
        if embed is None:
            raise ValueError("data.mine_negatives=model needs the encoder: the task mines after building it")
        doc_vecs = embed(docs, "positive")
        blocks = (cosine_matrix(embed(anchors[i:i + BLOCK], "anchor"), doc_vecs).numpy()
                  for i in range(0, len(anchors), BLOCK))
    out: list[list[int]] = []
    for i, block in enumerate(blocks):
        out += _best(block, k, exclude[i * BLOCK:(i + 1) * BLOCK])
    return out
