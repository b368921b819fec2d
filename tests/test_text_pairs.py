"""Text pairs: file formats, tokenizer, a few dual-encoder steps, retrieval metrics."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

from contrastive.data.text.pair_files import read_pairs
from contrastive.data.text.text_pairs import TextPairDataModule
from contrastive.data.text.tokenizers import HashingTokenizer
from contrastive.eval.retrieval import retrieval_metrics
from contrastive.train import train
from tests.conftest import make_cfg


def test_hashing_tokenizer_is_stable_and_bounded():
    tok = HashingTokenizer(vocab_size=1000, ngrams=(3,), max_len=50)
    a, b = tok("Hello world"), tok("hello WORLD")
    assert a == b and all(1 <= i < 1000 for i in a) and len(a) == 2 + 5 + 5  # 2 words + trigrams of <hello>, <world>
    assert len(tok("word " * 100)) == 50
    # each distinct word is hashed once and remembered: the ids equal hashing every occurrence afresh
    text = "the cat and the hat, the end"
    fresh = [i for w in ["the", "cat", "and", "the", "hat", "the", "end"] for i in
             [tok.token_id(w)] + [tok.token_id("#" + f"<{w}>"[j:j + 3]) for j in range(len(w))]]
    assert tok(text) == tok(text) == fresh[:50]


def test_read_tsv_csv_jsonl_and_errors(tmp_path):
    (tmp_path / "p.tsv").write_text("anchor\tpositive\tnegative\nq1\td1\tn1\n\t\t\nq2\td2\t\n")
    with pytest.warns(UserWarning, match="skipped 1 row"):
        rows = read_pairs(str(tmp_path / "p.tsv"))
    assert rows == [{"anchor": "q1", "positive": "d1", "negatives": ["n1"]},
                    {"anchor": "q2", "positive": "d2", "negatives": []}]
    (tmp_path / "p.csv").write_text("anchor,positive\nq,d\n")
    assert read_pairs(str(tmp_path / "p.csv"))[0]["positive"] == "d"
    (tmp_path / "p.jsonl").write_text(json.dumps({"anchor": "q", "positive": "d", "negative": ["a", "b"]}) + "\n")
    assert read_pairs(str(tmp_path / "p.jsonl"))[0]["negatives"] == ["a", "b"]
    (tmp_path / "bad.tsv").write_text("query\tpositive\nq\td\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['anchor'\]; found \['positive', 'query'\]"):
        read_pairs(str(tmp_path / "bad.tsv"))
    (tmp_path / "latin.tsv").write_bytes(b"anchor\tpositive\ncaf\xe9\td\n")
    with pytest.warns(UserWarning, match="1 byte sequence"):
        read_pairs(str(tmp_path / "latin.tsv"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_pairs(str(tmp_path / "none.tsv"))


def test_fewer_pairs_than_batch_is_an_error(tmp_path):
    (tmp_path / "p.tsv").write_text("anchor\tpositive\n" + "q\td\n" * 5)
    with pytest.raises(ValueError, match="fewer than data.batch_size=64"):
        TextPairDataModule(str(tmp_path / "p.tsv"), batch_size=64).setup()


def test_a_pairs_texts_are_tokenized_once_not_every_epoch(tmp_path, monkeypatch):
    rows = "".join(f"q{i} x y\td{i} u v\tn{i} w\n" for i in range(40))
    (tmp_path / "p.tsv").write_text("anchor\tpositive\tnegative\n" + rows)
    dm = TextPairDataModule(str(tmp_path / "p.tsv"), batch_size=8, heldout_fraction=0.2)
    dm.setup()
    calls = []
    original = HashingTokenizer.__call__
    monkeypatch.setattr(HashingTokenizer, "__call__", lambda self, t: calls.append(t) or original(self, t))
    epochs = [[b for b in dm.train_dataloader()] for _ in range(2)]
    assert calls == [] and len(epochs[1]) == 4  # 32 training pairs, batches of 8: no text tokenized again
    batch = epochs[0][0]
    fresh = dm.pad([dm.heldout[0]["anchor"]])  # a text outside the cache is tokenized as it comes
    assert calls == [dm.heldout[0]["anchor"]] and fresh.shape[0] == 1
    tok = HashingTokenizer()  # the data module's default: words alone
    i = int(batch["ids"][0])
    pair = next(p for p in dm.train_pairs if p["id"] == i)
    assert batch["positive"][0, :len(tok(pair["positive"]))].tolist() == original(tok, pair["positive"])
    assert batch["negatives"].shape[:2] == (8, 1)


def test_retrieval_metrics():
    q = torch.eye(4)
    m = retrieval_metrics(q, q)
    assert m["recall_at_1"] == 1.0 and m["mrr"] == 1.0
    m = retrieval_metrics(q, q.flip(0))
    assert m["recall_at_1"] == 0.0 and m["recall_at_5"] == 1.0


def test_dual_encoder_trains_on_a_users_file_with_hard_negatives(tmp_path, capsys):
    lines = ["anchor\tpositive\tnegative"] + [f"topic {i} question\ttopic {i} answer\ttopic {i + 1} answer"
                                             for i in range(40)]
    (tmp_path / "p.tsv").write_text("\n".join(lines) + "\n")
    for objective in ("clip", "infonce"):
        _metrics, objects = train(make_cfg(tmp_path, [
            "experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}", "data.batch_size=8",
            "data.tokenizer.vocab_size=4096", "encoder.dim=16", "encoder.out_dim=16", f"objective={objective}",
            "trainer.max_epochs=1", "trainer.limit_train_batches=2", "task.word_vectors.epochs=2"], fast=False))
        ev = json.loads((tmp_path / "eval.json").read_text())
        for k in ("recall_at_1", "recall_at_1_random_init", "recall_at_1_word2vec_init", "tfidf_recall_at_1", "mrr",
                  "lee_pearson", "lee_pearson_word2vec_init", "tfidf_lee_pearson"):
            assert k in ev
        assert ev["heldout_pairs"] == 8 and objects["trainer"].global_step == 2
        out = capsys.readouterr().out  # the table of every row, then one line against the better lexical baseline
        assert "| BM25 |" in out and "| after the word2vec stage |" in out
        better = "BM25" if ev["bm25_mrr"] > ev["tfidf_mrr"] else "TF-IDF"  # a tie names the first: TF-IDF
        assert f"the trained encoder beats {better}" in out or f"loses to {better}" in out
    # contrastive-eval evaluates the last run again: the same numbers, the word2vec stage trained again from its seed
    from contrastive.cli.evaluate import evaluate_run
    (tmp_path / "eval.json").write_text(json.dumps({"note": "kept"}))
    evaluate_run(str(tmp_path))
    merged = json.loads((tmp_path / "eval.json").read_text())
    for key, value in ev.items():  # the word2vec stage trained again agrees to float rounding, not bit for bit
        tol = 1e-4 if key.endswith("_word2vec_init") else 1e-6
        assert merged[key] == (pytest.approx(value, abs=tol) if isinstance(value, float) else value), key
    assert merged["note"] == "kept" and merged["evaluated_checkpoint"].endswith("last.ckpt")
    assert "| after the word2vec stage |" in capsys.readouterr().out


@pytest.mark.parametrize("tokenizer", ["hashing", "subword"])
def test_embed_a_text_file_with_a_trained_run(tmp_path, tokenizer):
    import numpy as np
    import scipy.sparse

    from contrastive.cli.embed import embed_text_file, load_dual_encoder
    from contrastive.eval.retrieval import embed_texts
    lines = ["anchor\tpositive"] + [f"topic {i} question\ttopic {i} answer" for i in range(40)]
    (tmp_path / "p.tsv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    _, objects = train(make_cfg(run, ["experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}",
                                      "data.batch_size=8", "data.tokenizer.vocab_size=4096", "encoder.dim=16",
                                      "encoder.out_dim=16", "trainer.max_epochs=1", "evaluate=false",
                                      "task.word_vectors.epochs=1", "data.extra_texts=[]",
                                      f"data/tokenizer={tokenizer}",
                                      *(["data.tokenizer.size=60"] if tokenizer == "subword" else [])], fast=False))
    model, dm = load_dual_encoder(str(run))
    got = embed_texts(model.embed, dm, ["topic 3 question", "something else"]).to_dense().numpy()
    want = objects["model"].eval().embed(dm.pad(["topic 3 question", "something else"])).to_dense().detach()
    assert got.shape == (2, 16 + 4096) and np.allclose(got, want.numpy(), atol=1e-5)  # lexical part, then dense
    # the command streams a file: the dense block written batch by batch, the sparse block into scipy's format;
    # a Windows line end, a lone carriage return inside a text, no newline after the last line
    texts = [f"topic {i} question" for i in range(7)] + ["", "some\rthing else"]
    (tmp_path / "in.txt").write_bytes("\n".join(texts).replace("question\n", "question\r\n", 1).encode())
    n, lexical = embed_text_file(str(run), str(tmp_path / "in.txt"), str(tmp_path / "out.npy"), batch_size=4,
                                 progress=False)
    whole = embed_texts(model.embed, dm, texts).to_dense().numpy()
    lex = scipy.sparse.load_npz(lexical)
    assert n == 9 and lex.shape == (9, 4096) and lexical == str(tmp_path / "out.lexical.npz")
    assert np.allclose(np.load(tmp_path / "out.npy"), whole[:, 4096:], atol=1e-6)
    assert np.allclose(lex.toarray(), whole[:, :4096], atol=1e-6)
    # contrastive-export writes the tokenizer beside the weights: the same ids as the run's own
    from contrastive.cli.export import export_encoder, load_tokenizer
    meta = export_encoder(str(run), str(tmp_path / "enc.pt"))
    assert load_tokenizer(meta["tokenizer"]).batch(texts) == dm.tokenizer.batch(texts)


def test_crop_pairs_are_fresh_spans_of_their_source(tmp_path):
    from contrastive.data.text.builtin_pairs import CropPairs
    from contrastive.data.text.corpus import GensimFile, TextFile, WikiDump
    text = " ".join(f"w{i}" for i in range(100))
    crops = CropPairs([text, "a b c d e f g h i j"], per_text=2, first_id=10, seed=0)
    assert len(crops) == 4
    seen = set()
    for _ in range(20):
        row = crops[1]
        assert row["id"] == 10
        for side in (row["anchor"], row["positive"]):
            words = side.split()
            assert 10 <= len(words) <= 50 and side in text  # a contiguous 10-50% span
            seen.add(side)
    assert len(seen) > 10  # new crops at every access
    assert crops[3]["id"] == 11 and len(crops[3]["anchor"].split()) == 5  # never under 5 words
    (tmp_path / "docs.txt").write_text("too short\n" + "a long enough line with more than ten words in it ok\n")
    assert TextFile(str(tmp_path / "docs.txt")).lines() == ["a long enough line with more than ten words in it ok"]
    assert len(GensimFile("lee_background.cor").lines()) == 300
    with pytest.raises(ValueError, match=r"data.extra_texts\[1\]=a WikiDump lacks lines .* held-out set"):
        TextPairDataModule(extra_texts=[str(tmp_path / "docs.txt"), WikiDump()])
    with pytest.raises(FileNotFoundError, match="text corpus .* does not exist"):
        TextFile(str(tmp_path / "none.txt")).lines()


def test_crops_join_a_users_pairs(tmp_path):
    (tmp_path / "p.tsv").write_text("anchor\tpositive\n" + "".join(f"q{i} x y z\td{i} u v w\n" for i in range(20)))
    dm = TextPairDataModule(str(tmp_path / "p.tsv"), batch_size=8, heldout_fraction=0.2, crops_per_text=1)
    dm.setup()
    assert len(dm.train_dataloader().dataset) == 16 + 32  # 16 training pairs plus one crop pair per text
    batch = next(iter(dm.train_dataloader()))
    assert batch["anchor"].shape[0] == 8
    with pytest.raises(ValueError, match="crops_per_text must be >= 0"):
        TextPairDataModule(str(tmp_path / "p.tsv"), crops_per_text=-1)


def test_bag_of_tokens_identity_projection_and_frozen_tokens():
    from contrastive.encoders import BagOfTokens
    torch.manual_seed(0)
    idf = torch.rand(100) + 0.5
    enc = BagOfTokens(vocab_size=100, dim=8, out_dim=8, idf=idf, train_tokens=False, identity_proj=True)
    ids = torch.tensor([[3, 5, 5, 0], [7, 0, 0, 0]])  # 0 pads
    w = idf[ids] * (ids > 0)
    bag = (enc.bag.weight[ids] * (w / w.sum(1, keepdim=True))[..., None]).sum(1)
    assert torch.allclose(enc(ids), bag, atol=1e-6)  # untrained: exactly the IDF-weighted bag
    assert not enc.bag.weight.requires_grad and enc.proj.weight.requires_grad
    enc(ids).sum().backward()
    assert enc.bag.weight.grad is None and enc.proj.weight.grad is not None
    with pytest.raises(ValueError, match="identity_proj needs out_dim == dim, got 4 and 8"):
        BagOfTokens(vocab_size=100, dim=8, out_dim=4, identity_proj=True)


def test_bag_of_tokens_sublinear_lexical_output_is_tf_idf():
    from collections import Counter

    from contrastive.encoders import BagOfTokens
    torch.manual_seed(0)
    idf = torch.rand(50) + 0.5
    enc = BagOfTokens(vocab_size=50, dim=4, out_dim=4, idf=idf, identity_proj=True, sublinear_tf=True,
                      lexical=True, dense_weight=0.5)
    ids = torch.tensor([[3, 5, 5, 5, 9, 0], [7, 7, 0, 0, 0, 0]])
    out = enc(ids).to_dense()
    assert out.shape == (2, 4 + 50) == (2, enc.out_dim)
    for row, o in zip(ids.tolist(), out):
        tfidf = torch.zeros(50)
        for t, n in Counter(t for t in row if t).items():
            tfidf[t] = idf[t] * (1 + torch.log(torch.tensor(float(n))))  # scikit-learn's sublinear TF-IDF
        assert torch.allclose(o[:50], tfidf / tfidf.norm(), atol=1e-6)  # the lexical block, exact
        w = tfidf[row] / torch.tensor([row.count(t) for t in row]).clamp_min(1)  # per occurrence
        dense = (enc.bag.weight[row] * (w / w.sum())[:, None]).sum(0)
        assert torch.allclose(o[50:], 0.5 * dense / dense.norm(), atol=1e-5)
    out.sum().backward()
    assert enc.dense_weight.grad is not None and enc.bag.weight.grad is not None
    frozen = BagOfTokens(vocab_size=50, dim=4, out_dim=4, identity_proj=True, train_proj=False)
    assert not any(p.requires_grad for p in frozen.proj.parameters())


def test_bag_of_tokens_bm25_lexical_output_follows_the_formula_and_the_data_gives_the_mean_length(tmp_path):
    from collections import Counter

    from contrastive.encoders import BagOfTokens
    torch.manual_seed(0)
    idf = torch.rand(50) + 0.5
    enc = BagOfTokens(vocab_size=50, dim=4, out_dim=4, idf=idf, identity_proj=True, lexical=True, bm25_k1=1.2,
                      bm25_b=0.75, avg_len=3.0)
    ids = torch.tensor([[3, 5, 5, 5, 9, 0], [7, 7, 0, 0, 0, 0], [4, 4, 4, 4, 4, 8]])
    out = enc(ids).to_dense()
    for row, o in zip(ids.tolist(), out):
        length, want = sum(t != 0 for t in row), torch.zeros(50)
        for t, n in Counter(t for t in row if t).items():  # Robertson's term weight, the IDF for the idf
            want[t] = idf[t] * n * 2.2 / (n + 1.2 * (1 - 0.75 + 0.75 * length / 3.0))
        assert torch.allclose(o[:50], want / want.norm(), atol=1e-6)
    with pytest.raises(ValueError, match="sublinear_tf=false or bm25_k1=null"):
        BagOfTokens(vocab_size=50, sublinear_tf=True, bm25_k1=1.2)
    with pytest.raises(ValueError, match="0 <= bm25_b <= 1, got 1.2 and 1.5"):
        BagOfTokens(vocab_size=50, bm25_k1=1.2, bm25_b=1.5)
    # by default the text-pairs task hands the encoder the training texts' mean length, and the checkpoint keeps it
    lines = ["anchor\tpositive"] + [f"topic {i} question{' word' * (i % 3)}\ttopic {i} answer" for i in range(40)]
    (tmp_path / "p.tsv").write_text("\n".join(lines) + "\n")
    _metrics, objects = train(make_cfg(tmp_path, [
        "experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}", "data.batch_size=8", "data/tokenizer=hashing",
        "data.tokenizer.vocab_size=4096", "encoder.dim=16", "encoder.out_dim=16", "trainer.max_epochs=1", "trainer.limit_train_batches=1", "task.word_vectors.epochs=0"],
        fast=False))
    dm, encoder = objects["datamodule"], objects["model"].encoder
    texts = dm.train_texts
    assert float(encoder.avg_len) == pytest.approx(sum(len(dm.tokenizer(t)) for t in texts) / len(texts))
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    assert float(saved["encoder.avg_len"]) == pytest.approx(float(encoder.avg_len))


def test_init_tokens_sets_rows_and_zeroes_the_rest():
    from contrastive.encoders import BagOfTokens, TransformerText
    from contrastive.encoders.text import init_tokens
    vecs = torch.arange(6.0).view(2, 3)
    for enc in (BagOfTokens(vocab_size=20, dim=3, out_dim=3), TransformerText(vocab_size=20, dim=3, heads=1)):
        init_tokens(enc, torch.tensor([4, 11]), vecs)
        assert torch.equal(enc.token_table[[4, 11]], vecs)
        assert enc.token_table.abs().sum() == vecs.sum()
        with pytest.raises(ValueError, match="need 2 vectors of dim 3"):
            init_tokens(enc, torch.tensor([4, 11]), torch.zeros(2, 5))


def test_word_vectors_put_co_occurring_words_together():
    import numpy as np

    from contrastive.tasks.text_pairs import word_vectors
    rng = np.random.default_rng(0)
    groups = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]]
    sentences = [list(rng.choice(groups[k % 2], 8)) for k in range(2000)]  # words meet only their group
    words, vectors = word_vectors(sentences, dim=16, epochs=5, seed=0)
    assert sorted(words) == sorted(groups[0] + groups[1]) and vectors.shape == (20, 16)
    v = torch.nn.functional.normalize(vectors, dim=1)
    group = torch.tensor([w[0] == "a" for w in words])
    cos = v @ v.T
    same = cos[(group[:, None] == group[None, :]) & ~torch.eye(20, dtype=torch.bool)].mean()
    other = cos[group[:, None] != group[None, :]].mean()
    assert same - other > 0.5, (same, other)
    with pytest.raises(ValueError, match="word vector epochs must be >= 1"):
        word_vectors(sentences, dim=16, epochs=0)


def test_word_vectors_start_a_transformer_and_need_a_token_table(tmp_path):
    lines = ["anchor\tpositive"] + [f"topic {i} question\ttopic {i} answer" for i in range(20)]
    (tmp_path / "p.tsv").write_text("\n".join(lines) + "\n")
    args = ["experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}", "data.batch_size=8",
            "data.tokenizer.vocab_size=4096", "trainer.max_epochs=1", "task.word_vectors.epochs=1", "evaluate=false"]
    transformer = ["encoder=transformer_text", "encoder.dim=16", "encoder.heads=2"]
    _, objects = train(make_cfg(tmp_path / "t", args + transformer, fast=False))
    table = objects["word2vec_init"].token_table
    assert table[objects["datamodule"].tokenizer.token_id("topic")].abs().sum() > 0 and table[0].abs().sum() == 0
    with pytest.raises(ValueError, match=r"encoder: DigitsCNN does not fit task=text_pairs; choose one of "
                                         r"\['bag_of_tokens', 'hf_text', 'transformer_text'\], or your own: "
                                         r"encoder=custom encoder._target_=\.\.\."):
        train(make_cfg(tmp_path / "c", args + ["encoder=digits_cnn"], fast=False))


def test_subword_pieces_are_learned_shared_and_carried_in_the_state(tmp_path):
    from contrastive.data.text.subword import SubwordTokenizer
    rows = "".join(f"tokenization {i}\ttokenizer number {i}\n" for i in range(30))
    (tmp_path / "p.tsv").write_text("anchor\tpositive\n" + rows)
    dm = TextPairDataModule(str(tmp_path / "p.tsv"), batch_size=4, tokenizer=SubwordTokenizer(80, vocab_size=500))
    dm.setup()
    tok = dm.tokenizer
    assert 0 not in tok("tokenization") and max(max(tok(t)) for t in dm.train_texts) < 80
    again = TextPairDataModule(str(tmp_path / "p.tsv"), tokenizer=SubwordTokenizer(80, vocab_size=500))
    again.load_state_dict(dm.state_dict())
    assert again.pad(["tokenizer 7"]).tolist() == dm.pad(["tokenizer 7"]).tolist()
    # words seen twice stay whole; the others lend their common leading and trailing pieces to unseen words
    words = SubwordTokenizer(2 + 2 * 12 + 20)  # [PAD], [UNK], 12 letters alone and as ##, 20 more
    words.train(["The the tokenization tokenizer tokenized organization organizer"])
    pieces = [words._tokenizer().id_to_token(i) for i in words("the tokenizand reorganization")]
    assert pieces[:2] == ["the", "tokeniz"] and "[UNK]" not in pieces and pieces[-1] == "##nization"
    # ties are broken alphabetically, not by hash order: processes with other string hashes learn the same
    import contrastive.data.text.subword as module
    code = ("import importlib.util as u; s = u.spec_from_file_location('s', r'PATH'); m = u.module_from_spec(s); "
            "s.loader.exec_module(m); t = m.SubwordTokenizer(46); "
            "t.train(['The the tokenization tokenizer tokenized organization organizer']); print(t.to_str())"
            ).replace("PATH", module.__file__)  # the module alone: no torch to import
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        assert out == words.to_str()
    with pytest.raises(RuntimeError, match="has not been trained"):
        SubwordTokenizer(50)("text")
    with pytest.raises(ValueError, match="tokenizer.size=900 pieces do not fit the encoder's vocab_size=500"):
        SubwordTokenizer(900, vocab_size=500)
    assert SubwordTokenizer(vocab_size=500).size == 500 and SubwordTokenizer().size == 30000
    with pytest.raises(ValueError, match=r"data.tokenizer='bpe' lacks .*batch.*; choose one with "
                                         r"data/tokenizer=hashing\|subword"):
        TextPairDataModule(tokenizer="bpe")


def test_docstring_code_pairs_drop_the_docstring_and_repeated_summaries(tmp_path):
    from contrastive.data.text.code_pairs import docstring_pairs, module_pairs
    src = ('def add(a, b):\n    """Add two numbers and return their sum."""\n    return a + b\n\n'
           'def short():\n    """Too short."""\n    return 1\n\n'
           'class K:\n    def m(self):\n        """Return the answer to the question."""\n        return 42\n')
    pairs = module_pairs(src)
    assert [p["anchor"] for p in pairs] == ["Add two numbers and return their sum.", "Return the answer to the question."]
    assert pairs[0]["positive"] == "def add(a, b):\n    return a + b" and "answer" not in pairs[1]["positive"]
    (tmp_path / "a.py").write_text(src)
    (tmp_path / "b.py").write_text(src.replace("a + b", "b + a"))  # the same summaries again: dropped
    (tmp_path / "test_c.py").write_text(src.replace("numbers", "values"))  # test modules are left out
    (tmp_path / "d.py").write_text("def broken(:\n")
    assert [len(g) for g in docstring_pairs(str(tmp_path))] == [2]
    with pytest.raises(ValueError, match=r"data.builtin='code' lacks read .*; use data=wiki_pairs or data=code_pairs"):
        TextPairDataModule(builtin="code")


def test_the_statement_walk_finds_the_functions_ast_walk_finds_in_its_order():
    import ast

    from contrastive.data.text.code_pairs import statements
    src = ("def a():\n    def inner(): pass\n    f = lambda: 0\n"
           "try:\n    def t(): pass\nexcept E:\n    def h(): pass\nelse:\n    def e(): pass\nfinally:\n    def z(): pass\n"
           "match x:\n    case 1:\n        def m(): pass\n"
           "class K:\n    if c:\n        async def k(): pass\n    def j(self): pass\n"
           "for i in y:\n    def f(): pass\nelse:\n    def g(): pass\n")
    tree = ast.parse(src)

    def names(nodes):
        return [n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    assert names(statements(tree)) == names(ast.walk(tree))
    assert sorted(names(statements(tree))) == sorted(["a", "inner", "t", "h", "e", "z", "m", "k", "j", "f", "g"])


def test_the_idf_counts_training_texts_only(tmp_path):
    import numpy as np
    rows = "".join(f"question about topic{i}\tanswer on topic{i} here\n" for i in range(30))
    (tmp_path / "p.tsv").write_text("anchor\tpositive\n" + rows)
    dm = TextPairDataModule(str(tmp_path / "p.tsv"), batch_size=4, heldout_fraction=0.2)
    dm.setup()
    assert len(dm.train_pairs) == 24 and len(dm.heldout) == 6

    def idf(pairs):  # scikit-learn's smoothed IDF over the pairs' texts, counted here
        docs = [set(dm.tokenizer(t)) for p in pairs for t in (p["anchor"], p["positive"])]
        df = np.zeros(dm.tokenizer.vocab_size)
        for d in docs:
            df[list(d)] += 1
        return np.log((1 + len(docs)) / (1 + df)) + 1

    assert np.allclose(dm.idf.numpy(), idf(dm.train_pairs), atol=1e-5)
    assert not np.allclose(dm.idf.numpy(), idf(dm.train_pairs + dm.heldout), atol=1e-3)


def test_the_towers_are_chosen_from_the_number_of_training_pairs(tmp_path, capsys):
    from contrastive.tasks.text_pairs import TWO_TOWERS_FROM, choose_towers
    small = make_cfg(tmp_path, ["experiment=text_pairs_code"], fast=False)
    assert choose_towers(small, TWO_TOWERS_FROM - 1) == ["model.shared=True", "encoder.train_proj=False"]
    assert small.model.shared is True and small.encoder.train_proj is False
    assert "2,999 training pairs" in capsys.readouterr().out
    large = make_cfg(tmp_path, ["experiment=text_pairs_code"], fast=False)
    assert choose_towers(large, TWO_TOWERS_FROM) == ["model.shared=False", "encoder.train_proj=True"]
    mine = make_cfg(tmp_path, ["experiment=text_pairs_code", "model.shared=true", "encoder.train_proj=false"], fast=False)
    assert choose_towers(mine, 10**6) == [] and mine.model.shared is True and mine.encoder.train_proj is False


def test_docstring_pairs_of_an_installed_package(tmp_path, monkeypatch):
    from contrastive.data.text.code_pairs import PythonDocstrings
    pkg = tmp_path / "tinypkg"
    (pkg / "tests").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    for name, verb in (("a", "Add"), ("b", "Multiply"), ("tests/c", "Check")):
        (pkg / f"{name}.py").write_text(f'def f(x, y):\n    """{verb} the two numbers given here."""\n    return x\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    held, train_pairs, texts = PythonDocstrings(package="tinypkg").read(lambda n: ([0], list(range(1, n))))
    assert [p["anchor"] for p in held + train_pairs] == ["Add the two numbers given here.",
                                                         "Multiply the two numbers given here."]
    assert texts == [train_pairs[0]["anchor"], "def f(x, y):\n    return x"]
    with pytest.raises(ValueError, match=r"data.builtin.package='no_such_pkg' is not an installed package"):
        PythonDocstrings(package="no_such_pkg").read(lambda n: ([0], []))
