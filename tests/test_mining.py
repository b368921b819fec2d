"""Mined hard negatives: the best-scoring other positives, never the pair's own, with clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from contrastive.data.text.mining import BM25Miner, ModelMiner, TfidfMiner
from contrastive.data.text.text_pairs import TextPairDataModule

TOPICS = ["red apple fruit", "green apple tree", "fast red car", "slow green bus", "blue ocean water",
          "deep blue sea", "tall oak tree", "small oak leaf"]


def _pairs_file(path, n=8):
    rows = [f"about {t} {i}\t{t} text {i}" for i, t in enumerate(TOPICS[:n])]
    path.write_text("anchor\tpositive\n" + "\n".join(rows) + "\n")
    return str(path)


MINERS = {"bm25": BM25Miner, "tfidf": TfidfMiner}


@pytest.mark.parametrize("method", ["bm25", "tfidf"])
def test_mined_negatives_are_the_best_other_positives(tmp_path, method):
    dm = TextPairDataModule(_pairs_file(tmp_path / "p.tsv"), heldout_fraction=0.0, batch_size=4,
                            miner=MINERS[method](k=2))
    dm.setup()
    from sklearn.feature_extraction.text import TfidfVectorizer
    vec = TfidfVectorizer(sublinear_tf=True).fit(dm.positives)
    scores = (vec.transform([p["anchor"] for p in dm.train_pairs]) @ vec.transform(dm.positives).T).toarray()
    for p, row in zip(dm.train_pairs, scores):
        assert len(p["negatives"]) == 2 and p["positive"] not in p["negatives"]
        assert len(set(p["negatives"])) == 2 and set(p["negatives"]) <= set(dm.positives)
        best = next(dm.positives[j] for j in np.argsort(-row) if dm.positives[j] != p["positive"])
        if method == "tfidf":
            assert p["negatives"][0] == best  # the top-scoring other positive comes first
        else:  # BM25 weighs words its own way, but shares at least one word with the anchor first
            assert set(p["negatives"][0].split()[:-2]) & set(p["anchor"].split()), p
    batch = next(iter(dm.train_dataloader()))
    assert batch["negatives"].shape[:2] == (4, 2)  # the mined texts reach the batches


def test_model_mining_and_the_excluded_copies():
    docs = ["a b", "a c", "b c", "a c c"]
    embed = lambda texts, side: torch.tensor([[t.count(c) for c in "abc"] for t in texts], dtype=torch.float)
    # anchor "a c" is itself document 1: neither it nor the positive (0) may be mined
    got = ModelMiner(k=1).mine(["a c", "b"], [0, 2], docs, embed)
    assert got[0] == [3] and got[1] == [0]


def test_mining_errors_name_the_bad_setting(tmp_path):
    with pytest.raises(ValueError, match=r"data.miner='bm26' lacks mine, k, needs_encoder .*; choose one with "
                                         r"data/miner=bm25\|tfidf\|model"):
        TextPairDataModule(miner="bm26")
    with pytest.raises(ValueError, match="data.miner.k=0: mining needs at least 1"):
        BM25Miner(k=0)
    with pytest.raises(ValueError, match="needs the encoder"):
        ModelMiner(k=1).mine(["a"], [0], ["a b", "c d"])
    dm = TextPairDataModule(_pairs_file(tmp_path / "p.tsv", 4), heldout_fraction=0.0, batch_size=2,
                            miner=TfidfMiner(k=4))
    with pytest.raises(ValueError, match="data/miner=tfidf with data.miner.k=4 needs at least 5 distinct positive "
                                         "texts .* hold 4"):
        dm.setup()


@pytest.mark.parametrize("method", ["bm25", "tfidf"])
def test_k_negatives_when_an_anchor_is_also_a_positive_text(method):
    # anchor 0 is doc 1 word for word and ranks it first, beside its own positive (doc 0): both are skipped
    docs = ["red apple pie", "green apple tart", "apple cake recipe", "apple crumble", "banana bread"]
    anchors = ["green apple tart", "banana bread loaf"]
    found = MINERS[method](k=3).mine(anchors, [0, 4], docs)
    assert [len(f) for f in found] == [3, 3]
    assert 0 not in found[0] and 1 not in found[0] and 4 not in found[1]
