"""Retrieval metrics for text pairs and correlation with the Lee human similarity judgements."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from contrastive.eval.report import noise
from contrastive.gensim_files import LEE_DOCS, LEE_SCORES, gensim_path
from contrastive.sparse import Hybrid, cat_rows, cosine_matrix


def retrieval_metrics(queries: torch.Tensor | Hybrid, docs: torch.Tensor | Hybrid, prefix: str = "",
                      suffix: str = "", per_query: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """Query i's relevant document is document i: recall@1/5/10 and MRR over all documents (cosine; plain or
    hybrid embeddings)."""
    return ranking_metrics(cosine_matrix(queries, docs), prefix, suffix, per_query)


def reciprocal_ranks(sims: torch.Tensor) -> torch.Tensor:
    """Each query's 1 / rank `[Q]` (float64) of its relevant document, document i for query i, under scores
    `[Q, D]` (Q <= D); ties count in the query's favour."""
    return 1.0 / ((sims > sims.diagonal()[:, None]).sum(1) + 1).double()


def ranking_metrics(sims: torch.Tensor, prefix: str = "", suffix: str = "",
                    per_query: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """recall@1/5/10 and MRR from scores `[Q, D]` (Q <= D) where query i's relevant document is document i;
    `per_query` receives each query's reciprocal rank `[Q]` under the MRR's key."""
    rr = reciprocal_ranks(sims)
    out = {f"{prefix}recall_at_{k}{suffix}": float((rr >= 1.0 / k).float().mean()) for k in (1, 5, 10)}
    out[f"{prefix}mrr{suffix}"] = float(rr.mean())
    if per_query is not None:
        per_query[f"{prefix}mrr{suffix}"] = rr
    return out


# eval.json's rows for a text-pairs run: (label, key prefix, key suffix)
TEXT_ROWS = (("trained", "", ""), ("after the word2vec stage", "", "_word2vec_init"),
             ("same encoder, randomly initialised", "", "_random_init"), ("TF-IDF", "tfidf_", ""),
             ("BM25", "bm25_", ""))
TEXT_COLUMNS = ("recall_at_1", "recall_at_5", "recall_at_10", "mrr", "lee_pearson")
LEXICAL = {"tfidf_": "TF-IDF", "bm25_": "BM25"}


def text_table(metrics: dict[str, Any]) -> str:
    """A Markdown table of the rows of `TEXT_ROWS` that `metrics` (eval.json's keys) has, one column per
    `TEXT_COLUMNS` entry (blank where a row lacks it)."""
    lines = ["| encoder | " + " | ".join(TEXT_COLUMNS) + " |", "|---" * (len(TEXT_COLUMNS) + 1) + "|"]
    for label, prefix, suffix in TEXT_ROWS:
        if f"{prefix}mrr{suffix}" in metrics:
            cells = [f"{metrics[k]:.4f}" if (k := prefix + c + suffix) in metrics else "" for c in TEXT_COLUMNS]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_verdict(metrics: dict[str, Any], per_query: dict[str, torch.Tensor] | None = None) -> str:
    """One line: does the trained encoder beat the better lexical baseline (TF-IDF or BM25) on held-out MRR, and
    the word2vec stage, by more than the held-out pairs can tell (two standard errors of the paired per-query
    differences of reciprocal rank, from `per_query`); if not, what to try."""
    found = [p for p in LEXICAL if f"{p}mrr" in metrics]
    if "mrr" not in metrics or not found:
        return "no lexical baseline to compare with (see above)"
    best = max(found, key=lambda p: metrics[f"{p}mrr"])
    t, b, name = metrics["mrr"], metrics[f"{best}mrr"], LEXICAL[best]
    rivals = {name: (f"{best}mrr", b)}
    if "mrr_word2vec_init" in metrics:
        rivals["the word2vec stage"] = ("mrr_word2vec_init", metrics["mrr_word2vec_init"])
    spread = {r: noise(per_query["mrr"], per_query[k]) for r, (k, _) in rivals.items()
              if per_query and "mrr" in per_query and k in per_query}
    unsure = [r for r in spread if abs(t - rivals[r][1]) < spread[r]]
    caveat = ""
    if unsure:
        n = len(per_query["mrr"])
        caveat = (f"; on {n:,} held-out pairs " + ("that is" if len(unsure) == 1 else "both are")
                  + " within two standard errors (" + ", ".join(f"{r} ±{spread[r]:.4f}" for r in unsure)
                  + "): more held-out pairs (data.heldout_fraction) would tell")
    lost = [r for r, (_, v) in rivals.items() if t < v]
    if not lost:
        stage = (f", and the word2vec stage's {rivals['the word2vec stage'][1]:.4f}"
                 if "the word2vec stage" in rivals else "")
        return (f"the trained encoder beats {name} (the better lexical baseline) on held-out MRR: {t:.4f} against "
                f"{b:.4f} ({t / b:.2f}x){stage}{caveat}")
    gaps = " and ".join(f"{r} ({t:.4f} < {rivals[r][1]:.4f})" for r in lost)
    if name not in lost:  # only the pair stage went backwards: with few pairs it memorises them
        return (f"WARNING: training on the pairs lowered held-out MRR below {gaps}{caveat}; with few "
                "pairs the pair stage memorises them: fewer epochs (trainer.max_epochs), or fixed towers "
                "(model.shared=true encoder.train_proj=false)")
    return (f"WARNING: the trained encoder loses to {gaps} on held-out MRR{caveat}; options: more pairs, "
            "a pretrained text model (encoder=hf_text encoder.path=DIR), mined hard negatives (data/miner=bm25); "
            "where queries share their documents' words, BM25 itself may serve")


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
