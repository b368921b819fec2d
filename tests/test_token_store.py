"""Streamed pair files: token ids stored once in memory-mapped files, held-out rows kept as text."""
from __future__ import annotations

import json

import numpy as np
import pytest

from contrastive.data.text.pair_files import read_pairs
from contrastive.data.text.text_pairs import TextPairDataModule
from contrastive.data.text.tokenizers import HashingTokenizer
from contrastive.train import train
from tests.conftest import make_cfg


def _file(tmp_path, n=60):
    rows = [{"anchor": f"question {i} about topic {i % 7}", "positive": f"answer {i % 25} text",
             "negative": [f"wrong {i}"] * (i % 3)} for i in range(n)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_streamed_rows_hold_the_token_ids_of_the_file_in_order(tmp_path):
    path = _file(tmp_path)
    dm = TextPairDataModule(path, batch_size=4, tokenizer=HashingTokenizer(1000, ()), stream=True, heldout_fraction=0.2, heldout_max=5,
                            cache_dir=str(tmp_path / "cache"))
    dm.setup()
    assert len(dm.heldout) == 5 and (tmp_path / "cache" / "rank0" / "ids.int32").exists()
    held = {r["line"] for r in dm.heldout}
    rows = [r for line, r in enumerate(read_pairs(path), 1) if line not in held]
    assert len(dm.train_pairs) == len(rows) == 55
    tok = dm.tokenizer
    for got, want in zip(dm.train_pairs, rows, strict=True):
        assert got["anchor"].tolist() == tok(want["anchor"]) and got["positive"].tolist() == tok(want["positive"])
        assert [n.tolist() for n in got["negatives"]] == [tok(t) for t in want["negatives"]]
    same = [(a["id"] == b["id"]) == (r["positive"] == s["positive"]) for a, r in zip(dm.train_pairs, rows)
            for b, s in zip(dm.train_pairs, rows)]
    assert all(same)  # one id per distinct positive text
    ref = TextPairDataModule(tokenizer=HashingTokenizer(1000, ()))
    want_idf = ref.token_idf([t for r in rows for t in (r["anchor"], r["positive"])])
    assert np.allclose(dm.idf.numpy(), want_idf.numpy())
    batch = dm.collate([dm.train_pairs[i] for i in range(4)])
    assert batch["negatives"].shape[:2] == (4, 2) and batch["anchor"][0, 0] == tok(rows[0]["anchor"])[0]


def test_a_streamed_file_trains_and_refuses_what_needs_the_texts(tmp_path):
    path = _file(tmp_path)
    _metrics, objects = train(make_cfg(tmp_path / "run", [
        "experiment=text_pairs_wiki", f"data.path={path}", "data.stream=true", "data.batch_size=8",
        "data.tokenizer.vocab_size=4096", "encoder.dim=16", "encoder.out_dim=16", "trainer.max_epochs=1",
        "task.word_vectors.epochs=0", "data.extra_texts=[]", "data/tokenizer=subword", "data.tokenizer.size=100", "data.tokenizer.vocab_size=4096"],
        fast=False))
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert ev["heldout_pairs"] == len(objects["datamodule"].heldout) > 0 and "tfidf_mrr" in ev
    with pytest.raises(ValueError, match="crops_per_text=1 need"):
        TextPairDataModule(path, stream=True, crops_per_text=1).setup()
    with pytest.raises(ValueError, match="word_vectors.epochs=1 trains on the texts"):
        train(make_cfg(tmp_path / "run2", ["experiment=text_pairs_wiki", f"data.path={path}", "data.stream=true",
                                           "data.batch_size=8", "data.extra_texts=[]", "task.word_vectors.epochs=1"]))
