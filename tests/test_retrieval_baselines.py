"""The lexical baselines beside the text-pair encoder: BM25 scores against the textbook formula, and the ranks."""
from __future__ import annotations

import math

import pytest
import torch

from contrastive.eval.retrieval import bm25_scores, ranking_metrics


def textbook_bm25(query: list[str], docs: list[list[str]], k1: float = 1.5, b: float = 0.75) -> list[float]:
    """BM25 as Lucene scores it: idf log(1 + (N - n + 0.5) / (n + 0.5)), term weight f / (f + k1 (1 - b + b |d| /
    avgdl)) (Robertson's constant factor k1 + 1 dropped: the same ranking)."""
    n_docs, avg = len(docs), sum(map(len, docs)) / len(docs)
    out = []
    for d in docs:
        s = 0.0
        for t in set(query):
            n = sum(t in x for x in docs)
            f = d.count(t)
            if n and f:
                s += math.log(1 + (n_docs - n + 0.5) / (n + 0.5)) * f / (f + k1 * (1 - b + b * len(d) / avg))
        out.append(s)
    return out


def test_bm25_scores_follow_the_formula_and_rank_the_matching_document_first():
    docs = ["red apples grow on trees", "apples apples pears", "trains run on rails", "rails and trains signals lamps red"]
    queries = ["apples on trees", "pears apples", "trains rails", "red"]
    got = bm25_scores(queries, docs)
    words = [d.split() for d in docs]  # none of these are stop words but "on" and "and"
    kept = [[w for w in d if w not in ("on", "and")] for d in words]
    for i, q in enumerate(queries):
        want = textbook_bm25([w for w in q.split() if w != "on"], kept)
        assert got[i].tolist() == pytest.approx(want, rel=1e-5)
    m = ranking_metrics(got, prefix="bm25_")
    rank = [1 + int((got[i] > got[i, i]).sum()) for i in range(4)]
    assert rank == [1, 1, 1, 2]  # "red": the shorter 1st document outscores the 4th
    assert m["bm25_recall_at_1"] == 0.75 and m["bm25_mrr"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)


def test_ranking_metrics_count_ties_in_the_querys_favour():
    sims = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.5, 0.7, 0.6]])
    m = ranking_metrics(sims)
    assert m["mrr"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3) and m["recall_at_1"] == pytest.approx(1 / 3)


def test_a_query_of_stop_words_only_scores_zero_instead_of_crashing():
    got = bm25_scores(["it is of the", "the cat"], ["the cat sat", "a dog ran"])
    assert got.shape == (2, 2) and (got[0] == 0).all() and got[1, 0] > 0 == got[1, 1]
