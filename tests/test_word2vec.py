"""Skip-gram data, word2vec objectives, word evaluation and export."""
from __future__ import annotations

import json

import pytest
import torch

from contrastive.data.text.corpus import read_text_file, tokenize
from contrastive.data.text.skipgram import (
    SkipGramDataModule,
    block_shuffle,
    build_vocab,
    skipgram_pairs,
)
from contrastive.eval.words import analogy_accuracy, similarity_spearman
from contrastive.train import train
from tests.conftest import make_cfg

W2V = ["experiment=word2vec_wiki", "data=lee", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
       "model.dim=16"]


def test_tokenize_and_vocab_order():
    assert tokenize("The cat's 3 DOGS, the end.") == ["the", "cat's", "3", "dogs", "the", "end"]
    words, counts = build_vocab([["b", "a", "b"], ["c", "b", "a"]], min_count=2)
    assert words == ["b", "a"] and counts.tolist() == [3, 2]


def test_text_file_errors_and_bad_bytes(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_text_file(str(tmp_path / "none.txt"))
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(ValueError, match="has no words"):
        read_text_file(str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_bytes(b"caf\xe9 ok\nmore \xff\xfe words\n")
    with pytest.warns(UserWarning, match="3 byte sequence"):
        assert read_text_file(str(tmp_path / "bad.txt")) == [["caf", "ok"], ["more", "words"]]


def test_skipgram_pairs_window_one_and_sentence_boundaries():
    ids = torch.tensor([0, 1, 2, 3, 4])
    sent = torch.tensor([0, 0, 0, 1, 1])
    pairs = skipgram_pairs(ids, sent, torch.ones(5, dtype=torch.bool), 1, torch.Generator().manual_seed(0))
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (1, 0), (1, 2), (2, 1), (3, 4), (4, 3)]
    big = skipgram_pairs(torch.arange(50), torch.arange(50) // 10, torch.ones(50, dtype=torch.bool), 4,
                         torch.Generator().manual_seed(1))
    assert bool(((big[:, 0] - big[:, 1]).abs() <= 4).all()) and bool((big[:, 0] // 10 == big[:, 1] // 10).all())


def test_compiled_and_torch_pairs_are_the_same(monkeypatch):
    from contrastive.data.text import skipgram
    g = torch.Generator().manual_seed(0)
    ids, sent = torch.randint(0, 30, (500,), generator=g), torch.arange(500) // 37
    keep = torch.rand(500, generator=g) < 0.8
    compiled = skipgram_pairs(ids, sent, keep, 5, torch.Generator().manual_seed(1))
    monkeypatch.setattr(skipgram, "_compiled_pairs_loop", lambda: None)  # as without numba
    assert torch.equal(compiled, skipgram_pairs(ids, sent, keep, 5, torch.Generator().manual_seed(1)))
    assert len(compiled) > 1000


def test_pairs_come_in_corpus_order_and_blocks_shuffle_as_units():
    ids = torch.arange(6)
    pairs = skipgram_pairs(ids, torch.zeros(6, dtype=torch.long), torch.ones(6, dtype=torch.bool), 1,
                           torch.Generator().manual_seed(0))
    assert pairs.tolist() == [[0, 1], [1, 0], [1, 2], [2, 1], [2, 3], [3, 2], [3, 4], [4, 3], [4, 5], [5, 4]]
    perm = block_shuffle(1000, 64, torch.Generator().manual_seed(0))
    assert sorted(perm.tolist()) == list(range(1000)) and perm[-(1000 % 64):].tolist() == list(range(960, 1000))
    blocks = perm[:960].view(15, 64) // 64
    assert bool((blocks == blocks[:, :1]).all()) and blocks[:, 0].tolist() != list(range(15))
    assert perm[:64].tolist() != sorted(perm[:64].tolist())  # shuffled inside the block too


def test_epochs_reshuffle_and_subsampling(tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("\n".join("the cat sat on the mat with the dog" for _ in range(50)))
    dm = SkipGramDataModule(str(f), min_count=1, batch_size=16, subsample=1e-2, shuffle_seed=3)
    dm.setup()
    e0, e1 = list(dm.epoch_batches()), list(dm.epoch_batches())
    assert not torch.equal(e0[0][0], e1[0][0])
    dm.epoch = 0
    assert torch.equal(next(iter(dm.epoch_batches()))[0], e0[0][0])  # same seed and epoch, same batches
    freq = 150 / 450  # "the": word2vec keeps it with (sqrt(f / t) + 1) * t / f
    assert dm.keep_prob[0].item() == pytest.approx(((freq / 1e-2) ** 0.5 + 1) * 1e-2 / freq)


def test_an_epoch_keeps_its_last_partial_batch():
    sentences = [["a", "b", "c", "d"], ["b", "c", "a"]]  # a corpus smaller than one batch still trains
    dm = SkipGramDataModule(sentences, min_count=1, window=1, subsample=0, batch_size=1024)
    dm.setup()
    batches = list(dm.epoch_batches())
    assert len(batches) == 1 and len(batches[0][0]) == 10  # every pair of window 1: 2 * (3 + 2)
    full = SkipGramDataModule(sentences * 10, min_count=1, window=1, subsample=0, batch_size=16)
    full.setup()
    sizes = [len(c) for c, _ in full.epoch_batches()]
    assert sum(sizes) == 100 and sizes[:-1] == [16] * 6 and sizes[-1] == 4


def test_word_metrics_on_constructed_vectors(tmp_path):
    index = {"a": 0, "b": 1, "c": 2, "d": 3}
    v = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1], [0.2, 0.9]])
    (tmp_path / "sim.tsv").write_text("# h\na\tb\t9\nc\td\t8\na\tc\t1\nb\tc\t2\nz\ta\t5\n")
    rho, cov = similarity_spearman(v, index, str(tmp_path / "sim.tsv"))
    assert rho == pytest.approx(1.0) and cov == pytest.approx(0.8)
    (tmp_path / "q.txt").write_text(": x\na b c d\na b c zz\n")
    assert analogy_accuracy(v, index, str(tmp_path / "q.txt")) == (1.0, 0.5)


@pytest.mark.parametrize("overrides, method", [
    ([], "hogwild"),
    (["objective=nce", "candidates=unigram"], "hogwild"),
    (["objective=nce", "candidates=uniform", "num_negatives=32"], "hogwild"),
    (["objective=nce", "step=adam"], "adam"),
    (["objective=nce", "step=per_pair"], "per_pair"),
    (["objective=neg_sampling", "candidates=none", "step=per_pair"], "per_pair"),
    (["objective=sampled_softmax"], "adam"),
    (["objective=neg_sampling", "candidates=none", "num_negatives=5"], "hogwild"),
    (["objective=neg_sampling", "candidates=none", "num_negatives=5", "step=sgd"], "sgd"),
    (["objective=full_softmax", "candidates=none"], "adam"),
])
def test_word2vec_objectives_train_and_export(tmp_path, overrides, method):
    _metrics, objects = train(make_cfg(tmp_path, W2V + overrides, fast=False))
    assert objects["model"].step.name == method  # step=auto: hogwild where it applies, else adam
    # the compiled step trains on blocks of neighbouring pairs; batched steps on pairs one by one
    assert objects["datamodule"].shuffle_block == (256 if method == "hogwild" else 1)
    ev = json.loads((tmp_path / "eval.json").read_text())
    assert ev["step"] == method and (ev["compile_seconds"] > 0) == (method == "hogwild")
    ev = json.loads((tmp_path / "eval.json").read_text())
    for k in ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy", "analogy_coverage", "words_per_second"):
        assert k in ev
    assert 0 < ev["analogy_coverage"] <= 1 and ev["words_per_second"] > 0
    from gensim.models import KeyedVectors
    kv = KeyedVectors.load_word2vec_format(str(tmp_path / "vectors.txt"))
    dm = objects["datamodule"]
    assert kv.vector_size == 16 and len(kv) == dm.vocab_size and kv.index_to_key[0] == dm.words[0]
    assert torch.allclose(torch.from_numpy(kv["the"]), objects["model"].vectors[dm.words.index("the")], atol=1e-5)


def test_vocabulary_smaller_than_num_negatives_fails_clearly(tmp_path):
    f = tmp_path / "tiny.txt"
    f.write_text("a b c d e f\n" * 3)
    with pytest.raises(Exception, match="num_sampled=64.*range_max=6"):
        train(make_cfg(tmp_path, W2V + ["data=text_file", f"data.corpus={f}", "data.min_count=1", "num_negatives=64"],
                       fast=False))


def test_sparse_sgd_equals_dense_sgd_with_repeated_rows():
    from torch import nn

    from contrastive.optim import SparseSGD
    torch.manual_seed(0)
    for dim in (7, 1):
        a, b = nn.Embedding(50, dim, sparse=True), nn.Embedding(50, dim)
        b.weight.data.copy_(a.weight.data)
        ids = torch.randint(0, 50, (300,))  # many repeats
        for m, opt in ((a, SparseSGD(a.parameters(), lr=0.1)), (b, torch.optim.SGD(b.parameters(), lr=0.1))):
            (m(ids) ** 2).sum().backward()
            (3 * m(ids[:40])).sum().backward()  # a second sparse gradient accumulates uncoalesced
            opt.step()
        assert torch.allclose(a.weight, b.weight, atol=1e-6)
        assert not torch.equal(a.weight, nn.Embedding(50, dim).weight)


def test_word2vec_rejects_an_unknown_step_and_one_that_cannot_train_the_objective(tmp_path):
    with pytest.raises(Exception, match=r"(?s)Could not find 'step/rmsprop'.*hogwild"):
        train(make_cfg(tmp_path, W2V + ["step=rmsprop"], fast=False))
    with pytest.raises(Exception, match="step=hogwild and step=per_pair support .* FullSoftmaxLoss has no per-pair plan"):
        train(make_cfg(tmp_path, W2V + ["objective=full_softmax", "candidates=none", "step=hogwild"], fast=False))


def test_batched_nce_with_few_shared_negatives_warns(tmp_path):
    with pytest.warns(UserWarning, match="shares its num_negatives=5 sampled classes.*num_negatives=64"):
        train(make_cfg(tmp_path, W2V + ["objective=nce", "num_negatives=5", "step=adam", "evaluate=false"],
                       fast=False))


def test_hogwild_training_lowers_the_loss(tmp_path):
    cfg = make_cfg(tmp_path, W2V + ["trainer.limit_train_batches=1.0", "trainer.max_epochs=3", "evaluate=false",
                                    "objective=neg_sampling", "candidates=none", "num_negatives=5", "logger=default"], fast=False)
    train(cfg)
    import csv
    rows = list(csv.DictReader((tmp_path / "logs" / "metrics.csv").read_text().splitlines()))
    epoch_loss = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert len(epoch_loss) == 3 and epoch_loss[-1] < 0.8 * epoch_loss[0]


@pytest.mark.slow
@pytest.mark.ddp
def test_word2vec_under_ddp_cpu_uses_dense_gradients(tmp_path):
    from tests.conftest import run_cli
    r = run_cli(["experiment=word2vec_wiki", "data=lee", "trainer=ddp_cpu", "trainer.devices=2", "trainer.max_epochs=1",
                 "trainer.limit_train_batches=3", "model.dim=16", "logger=none", "hydra.run.dir=run"], tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    # auto resolves in the spawned processes: per_pair there, since hogwild runs in one process only
    assert "word2vec: step per_pair (step=auto)" in r.stdout and ev["words_per_second"] is None
    assert (tmp_path / "run" / "vectors.txt").exists()


@pytest.mark.parametrize("method", ["hogwild", "per_pair", "adam"])
def test_guard_skip_leaves_the_tables_as_they_were(tmp_path, monkeypatch, method):
    from contrastive.word2vec import batched, hogwild
    original = hogwild.hogwild_stream
    calls = []

    def poisoned(embedding, objective, *args, **kwargs):  # the compiled step writes NaN, then reports it
        loss = original(embedding, objective, *args, **kwargs)
        if embedding.shape[0] <= 2:  # the kernel's warm-up compilation on a tiny table
            return loss
        calls.append(1)
        if len(calls) == 1:
            with torch.no_grad():
                embedding[0] = float("nan")
            return torch.tensor(float("nan"))
        return loss
    monkeypatch.setattr(hogwild, "hogwild_stream", poisoned)
    if method == "per_pair":  # NaN inputs to the per-pair losses on the first step
        per_pair_loss = batched.per_pair_loss

        def nan_inputs(x, *args, **kwargs):
            calls.append(1)
            return per_pair_loss(x * float("nan") if len(calls) == 1 else x, *args, **kwargs)
        monkeypatch.setattr(batched, "per_pair_loss", nan_inputs)
    if method == "adam":  # NaN inputs to the output layer on the first batched step
        from contrastive.losses import NCELoss
        forward = NCELoss.forward

        def nan_first(self, x, y):
            calls.append(1)
            return forward(self, x * float("nan") if len(calls) == 1 else x, y)
        monkeypatch.setattr(NCELoss, "forward", nan_first)
    over = W2V + [f"step={method}", "trainer.deterministic=true"]
    with pytest.raises(FloatingPointError, match="at step 0 .* set guard=skip"):
        train(make_cfg(tmp_path / "stop", over, fast=False))
    calls.clear()
    with pytest.warns(UserWarning, match="step skipped .* tables left as they were"):
        _, objects = train(make_cfg(tmp_path / "skip", over + ["guard=skip"], fast=False))
    model = objects["model"]
    assert model.skipped_steps == 1 and objects["trainer"].global_step == 3
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_a_non_finite_word2vec_step_stops_naming_the_rate_and_whether_a_checkpoint_exists(tmp_path, monkeypatch):
    from contrastive.word2vec.steps import Adam
    monkeypatch.setattr(Adam, "loss", lambda self, *args: torch.tensor(float("nan")))
    with pytest.raises(FloatingPointError, match=r"non-finite loss nan \(step=adam\) at step 0 .*no checkpoint was "
                                                 r"written yet\. Lower step.lr or set guard=skip"):
        train(make_cfg(tmp_path, W2V + ["objective=nce", "num_negatives=64", "step=adam", "evaluate=false"],
                       fast=False))
