"""Held-out MRR of lexical baselines on the wiki pairs by where their IDF comes from, and, with --run, a trained
wiki dual encoder (one shared tower, the default split) alone and fused with BM25: how far the pair stage is from
1.10x BM25.

    python scripts/wiki_lexical_ceiling.py
    python scripts/wiki_lexical_ceiling.py --run outputs/<date>/<time>    # a run of experiment=text_pairs_wiki

BM25 indexes the documents it searches (its IDF comes from the 474 held-out successors); the TF-IDF row of eval.json
is fitted on the training paragraphs, as the encoder's IDF is. The second table splits each ranking into finding the
article (every held-out paragraph's successor is in its own article) and ranking the paragraphs of that article: what
any scorer could reach if it never ranked another article's paragraph first. Its last columns count the query's
predecessor: held-out pairs are paragraphs 1 -> 2, 3 -> 4, ..., so paragraph 2 is also a document when 3 is a query,
and a score that does not know which way the text runs ranks the paragraph before the query like the one after it."""
from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import scipy.sparse as sp
import torch

from contrastive.cli.embed import embed_text_file
from contrastive.data.text.builtin_pairs import paragraph_pairs, wiki_articles
from contrastive.data.text.text_pairs import TextPairDataModule
from contrastive.eval.retrieval import (
    bm25_scores,
    ranking_metrics,
    reciprocal_ranks,
    retrieval_metrics,
    tfidf_embed,
)


def mrr(scores: np.ndarray | torch.Tensor) -> float:
    """MRR of scores `[Q, D]` where query i's document is document i."""
    return ranking_metrics(torch.as_tensor(np.asarray(scores), dtype=torch.float32))["mrr"]


def within_article(scores: np.ndarray | torch.Tensor, article: np.ndarray) -> tuple[float, float]:
    """`(share of queries whose best document is in their own article, MRR counting only the documents of the
    query's article)` of scores `[Q, D]`; `article [Q]` numbers each pair's article."""
    s = torch.as_tensor(np.asarray(scores), dtype=torch.float64)
    same = torch.from_numpy(article[:, None] == article[None, :])
    found = float(np.mean(article[s.argmax(1).numpy()] == article))
    return found, float(reciprocal_ranks(s.masked_fill(~same, -torch.inf)).mean())


def predecessors(article: np.ndarray) -> np.ndarray:
    """For each held-out pair, the index of the pair before it in its article (whose document is the paragraph just
    before the query), or -1 for an article's first pair."""
    i = np.arange(len(article))
    return np.where((i > 0) & (article == np.roll(article, 1)), i - 1, -1)


def predecessor_effect(scores: np.ndarray | torch.Tensor, prev: np.ndarray) -> tuple[float, float]:
    """`(share of queries whose predecessor outscores their successor, MRR with predecessors taken out of the
    ranking)` of scores `[Q, D]`; `prev [Q]` from `predecessors` (-1: none)."""
    s = torch.as_tensor(np.asarray(scores), dtype=torch.float64).clone()
    q = torch.from_numpy(np.flatnonzero(prev >= 0))
    p = torch.from_numpy(prev[prev >= 0])
    ahead = float((s[q, p] > s[q, q]).double().mean())
    s[q, p] = -torch.inf
    return ahead, float(reciprocal_ranks(s).mean())


def heldout_articles(dm: TextPairDataModule) -> np.ndarray:
    """The article number of each held-out pair, in `dm.heldout`'s order (the split WikiParagraphs makes)."""
    articles = [a for a in wiki_articles() if len(a) >= 2]
    held, _ = dm._split(len(articles))
    article = np.concatenate([np.full(len(paragraph_pairs(articles[i])), i) for i in held])
    if len(article) != len(dm.heldout):
        raise RuntimeError("the held-out pairs are not the default split's; run with the default data options")
    return article


def tfidf_mrr(fit: list[str], queries: list[str], docs: list[str]) -> float:
    """MRR of TF-IDF cosine as eval.json's tfidf_mrr computes it, the IDF fitted on `fit`."""
    return retrieval_metrics(tfidf_embed(fit, queries), tfidf_embed(fit, docs))["mrr"]


def encoder_scores(run: str, queries: list[str], docs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """`(lexical, dense)` dot products `[Q, D]` of a trained run's two blocks; their sum ranks as the encoder's cosine
    does (every text's vector has the same length: a unit lexical block beside a dense block of the learned scale)."""
    with tempfile.TemporaryDirectory() as tmp:
        blocks = []
        for name, texts in (("q", queries), ("d", docs)):
            path = os.path.join(tmp, f"{name}.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("\n".join(texts) + "\n")
            out = os.path.join(tmp, f"{name}.npy")
            _, lexical = embed_text_file(run, path, out, progress=False)
            blocks.append((np.load(out), sp.load_npz(lexical)))
    (dq, lq), (dd, ld) = blocks
    return (lq @ ld.T).toarray(), dq @ dd.T


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a run directory of experiment=text_pairs_wiki (default split, shared tower)")
    a = ap.parse_args()
    dm = TextPairDataModule()  # the wiki paragraphs, split as experiment=text_pairs_wiki splits them
    dm.setup()
    queries, docs = [p["anchor"] for p in dm.heldout], [p["positive"] for p in dm.heldout]
    article = heldout_articles(dm)
    bm25 = bm25_scores(queries, docs)
    ranked = {"BM25": bm25.numpy()}
    rows = [("BM25 (bm25s, indexed on the held-out documents)", mrr(bm25)),
            ("TF-IDF, IDF from the training paragraphs (eval.json's tfidf_mrr)", tfidf_mrr(dm.fit_texts, queries, docs)),
            ("TF-IDF, IDF from the held-out documents", tfidf_mrr(docs, queries, docs)),
            ("TF-IDF, IDF from the training paragraphs and the held-out documents",
             tfidf_mrr(dm.fit_texts + docs, queries, docs))]
    if a.run:
        lexical, dense = encoder_scores(a.run, queries, docs)
        ranked["trained encoder"] = lexical + dense
        rows += [("trained encoder", mrr(lexical + dense)), ("its lexical block alone", mrr(lexical)),
                 ("its dense block alone", mrr(dense))]
        z = (lambda s: (s - s.mean(1, keepdims=True)) / s.std(1, keepdims=True))
        for w in (0.25, 0.5, 1.0):
            rows.append((f"trained encoder + {w} x BM25 (scores standardised per query)",
                         mrr(z(lexical + dense) + w * z(bm25.numpy()))))
    print(f"{len(queries)} held-out pairs; 1.10x BM25 is {1.1 * rows[0][1]:.3f}\n\n| scores | MRR |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value:.3f} |")
    sizes = np.bincount(article)[article]  # each query's article's number of held-out pairs
    chance = float(np.mean([np.mean(1 / np.arange(1, n + 1)) for n in sizes]))
    print(f"\n{len(set(article.tolist()))} held-out articles of 1 to {sizes.max()} pairs\n\n| scores | best document in the "
          "query's article | MRR | MRR within the article | predecessor above successor | MRR without predecessors "
          "|\n|---|---|---|---|---|---|")
    prev = predecessors(article)
    for name, s in ranked.items():
        found, within = within_article(s, article)
        ahead, without = predecessor_effect(s, prev)
        print(f"| {name} | {found:.3f} | {mrr(s):.3f} | {within:.3f} | {ahead:.3f} | {without:.3f} |")
    print(f"| the article's paragraphs in random order | | | {chance:.3f} | | |")
    print(f"\n{int((prev >= 0).sum())} of {len(prev)} queries have their predecessor among the documents")


if __name__ == "__main__":
    main()
