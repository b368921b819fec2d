"""The lexical baselines beside the text-pair encoder: BM25 scores against the textbook formula, and the ranks."""
from __future__ import annotations

import math

import pytest
import torch

from contrastive.eval.retrieval import (
    bm25_scores,
    ranking_metrics,
    reciprocal_ranks,
    text_verdict,
)


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


def test_per_query_reciprocal_ranks_are_what_the_metrics_average():
    sims = torch.randn(50, 60, generator=torch.Generator().manual_seed(0))
    per_query: dict[str, torch.Tensor] = {}
    m = ranking_metrics(sims, prefix="bm25_", per_query=per_query)
    rank = torch.tensor([1 + int((sims[i] > sims[i, i]).sum()) for i in range(50)])
    assert torch.equal(per_query["bm25_mrr"], 1.0 / rank.double()) and torch.equal(reciprocal_ranks(sims), 1.0 / rank.double())
    assert m["bm25_mrr"] == pytest.approx(float((1.0 / rank.double()).mean()))
    assert m["bm25_recall_at_5"] == pytest.approx(float((rank <= 5).double().mean()))


def _verdict(trained: list[float], bm25: list[float], stage: list[float] | None = None, tfidf: float = 0.0) -> str:
    """The verdict from per-query reciprocal ranks (the metrics are their means, as the task computes them)."""
    per_query = {"mrr": torch.tensor(trained, dtype=torch.float64), "bm25_mrr": torch.tensor(bm25, dtype=torch.float64)}
    metrics = {"mrr": sum(trained) / len(trained), "bm25_mrr": sum(bm25) / len(bm25), "tfidf_mrr": tfidf}
    if stage is not None:
        per_query["mrr_word2vec_init"] = torch.tensor(stage, dtype=torch.float64)
        metrics["mrr_word2vec_init"] = sum(stage) / len(stage)
    return text_verdict(metrics, per_query)


def test_the_text_verdict_names_the_better_baseline_and_says_when_the_held_out_pairs_cannot_tell():
    spread = [0.1 + 0.9 * (i % 10) / 9 for i in range(400)]  # BM25's reciprocal ranks vary widely over the queries
    # better on every query by 0.02: a clear win, though unpaired standard errors (about +-0.03) would call it noise
    line = _verdict([r + 0.02 for r in spread], spread, stage=[r + 0.01 for r in spread])
    assert line.startswith("the trained encoder beats BM25 (the better lexical baseline)") and "within" not in line
    assert "(1.04x)" in line and "the word2vec stage's" in line
    # the same means from queries that disagree: within the noise of 400 pairs, and it says which gap
    line = _verdict([r + (0.52 if i % 2 else -0.48) for i, r in enumerate(spread)], spread)
    assert "beats BM25" in line and "on 400 held-out pairs that is within two standard errors (BM25 ±" in line
    # TF-IDF is the baseline to beat when it scores higher
    assert "beats TF-IDF" in _verdict([0.9] * 10, [0.5] * 10, tfidf=0.8)
    lost = _verdict([0.5] * 10, [0.6] * 10, stage=[0.4] * 10)
    assert lost.startswith("WARNING: the trained encoder loses to BM25 (0.5000 < 0.6000) on held-out MRR")
    assert "data/miner=bm25" in lost and "word2vec" not in lost
    below_stage = _verdict([0.7] * 10, [0.6] * 10, stage=[0.8] * 10)
    assert below_stage.startswith("WARNING: training on the pairs lowered held-out MRR below the word2vec stage")
    assert "memorises" in below_stage
