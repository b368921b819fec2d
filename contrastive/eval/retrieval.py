"""Retrieval metrics for text pairs and correlation with the Lee human similarity judgements."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from contrastive.gensim_files import LEE_DOCS, LEE_SCORES, gensim_path
from contrastive.sparse import Hybrid, cat_rows, cosine_matrix


def retrieval_metrics(queries: torch.Tensor | Hybrid, docs: torch.Tensor | Hybrid, prefix: str = "",
                      suffix: str = "") -> dict[str, float]:
    """Query i's relevant document is document i: recall@1/5/10 and MRR over all documents (cosine; plain or
    hybrid embeddings)."""
    return ranking_metrics(cosine_matrix(queries, docs), prefix, suffix)


def ranking_metrics(sims: torch.Tensor, prefix: str = "", suffix: str = "") -> dict[str, float]:
    """recall@1/5/10 and MRR from scores `[Q, D]` (Q <= D) where query i's relevant document is document i."""
    rank = (sims > sims.diagonal()[:, None]).sum(1) + 1  # 1 = best; ties count in the query's favour
    out = {f"{prefix}recall_at_{k}{suffix}": float((rank <= k).float().mean()) for k in (1, 5, 10)}
    out[f"{prefix}mrr{suffix}"] = float((1.0 / rank.float()).mean())
    return out


@torch.no_grad()
def embed_texts(encode: Callable[[torch.Tensor], torch.Tensor], dm: Any, texts: list[str],
                batch_size: int = 256) -> torch.Tensor | Hybrid:
    """`[len(texts), out_dim]` float32 CPU embeddings (a `Hybrid` from a lexical encoder): `encode` applied to
    padded token ids, batch by batch."""
    parts = [encode(dm.pad(texts[i:i + batch_size])).float().cpu() for i in range(0, len(texts), batch_size)]
    return cat_rows(parts)


def tfidf_embed(fit_texts: list[str], texts: list[str]) -> torch.Tensor:
    """TF-IDF vectors (scikit-learn, fitted on `fit_texts`) of `texts`, dense."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    vec = TfidfVectorizer(sublinear_tf=True).fit(fit_texts)
    return torch.from_numpy(vec.transform(texts).toarray()).float()


def bm25_scores(queries: list[str], docs: list[str]) -> torch.Tensor:
    """BM25 scores `[len(queries), len(docs)]` (the `bm25s` library, its defaults: k1 1.5, b 0.75, English stop
    words), the index built on `docs`."""
    import bm25s
    index = bm25s.BM25()
    index.index(bm25s.tokenize(docs, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, return_ids=False, show_progress=False)
    # a query of stop words only has no tokens left: it scores 0 against every document
    rows = [index.get_scores(t) if t else np.zeros(len(docs)) for t in tokens]
    return torch.from_numpy(np.stack(rows)).float()


def lee_pearson(embed: Callable[[list[str]], torch.Tensor | Hybrid]) -> float:
    """Pearson correlation of cosine similarity with the mean human scores of the 50 Lee documents (upper
    triangle of gensim's `similarities0-1.txt`)."""
    with open(gensim_path(LEE_DOCS), encoding="utf-8", errors="replace") as f:
        docs = [line.strip() for line in f if line.strip()]
    human = np.loadtxt(gensim_path(LEE_SCORES))
    v = embed(docs)
    cos = cosine_matrix(v, v).numpy()
    iu = np.triu_indices(len(docs), 1)
    return float(np.corrcoef(cos[iu], human[iu])[0, 1])
