"""Bad input and faults, round two: hostile run directories, a skipped step that leaves the model untouched,
pair files that lose no rows, symbolic-link loops, 16-bit images."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException, InstantiationException
from omegaconf import OmegaConf
from PIL import Image

from contrastive.data.images.fast_decode import load_rgb
from contrastive.data.images.image_folder import ImageFolderDataModule
from contrastive.data.text.pair_files import read_pairs
from contrastive.data.text.text_pairs import TextPairDataModule
from contrastive.eval.knn import embed
from contrastive.models import SimCLR
from contrastive.runtime.safe_config import load_run_config
from contrastive.train import train
from tests.conftest import make_cfg, run_console
from tests.test_data import write_image_folder


def _saved_run(tmp_path: Path, **changes: object) -> Path:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    OmegaConf.save(make_cfg(tmp_path, ["experiment=text_pairs_wiki"]), run / "config.yaml", resolve=True)
    cfg = OmegaConf.load(run / "config.yaml")
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    OmegaConf.save(cfg, run / "config.yaml")  # unresolved: an interpolated target stays one
    return run


def test_a_foreign_class_reached_through_a_project_module_is_refused():
    from omegaconf import OmegaConf

    from contrastive.runtime.safe_config import unsafe_targets
    # subprocess.Popen is an attribute of contrastive.reliability (it imports subprocess) but not a project class
    cfg = OmegaConf.create({"model": {"_target_": "contrastive.runtime.preemption.subprocess.Popen", "args": ["sh"]},
                            "data": {"_target_": "contrastive.data.ImageFolderDataModule"}})
    assert unsafe_targets(cfg) == [("model._target_", "contrastive.runtime.preemption.subprocess.Popen")]


def test_project_configs_load(tmp_path):
    assert load_run_config(str(_saved_run(tmp_path) / "config.yaml")).task._target_ == "contrastive.tasks.text_pairs.TextPairsTask"


def test_a_run_saved_before_the_loggers_moved_still_loads(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("logger:\n  csv:\n    _target_: contrastive.loggers.ResumableCSVLogger\n    save_dir: logs\n")
    cfg = load_run_config(str(path))
    assert cfg.logger.csv._target_ == "contrastive.runtime.loggers.ResumableCSVLogger"


OLD_TEXT_DATA = """data:
  _target_: contrastive.data.text.text_pairs.TextPairDataModule
  path: null
  builtin: python_docstrings
  vocab_size: 500
  ngrams: []
  max_len: 64
  extra_texts: [lee]
  mine_negatives: tfidf
  mine_k: 2
  tokenizer: subword
  subword_size: 80
"""


def test_a_text_run_saved_with_the_old_option_values_still_builds(tmp_path):
    from hydra.utils import instantiate

    from contrastive.data.text.code_pairs import PythonDocstrings
    from contrastive.data.text.mining import TfidfMiner
    from contrastive.data.text.subword import SubwordTokenizer
    path = tmp_path / "config.yaml"
    path.write_text(OLD_TEXT_DATA)
    dm = instantiate(load_run_config(str(path)).data)
    assert isinstance(dm.tokenizer, SubwordTokenizer) and (dm.tokenizer.size, dm.tokenizer.vocab_size) == (80, 500)
    assert dm.tokenizer.max_len == 64 and isinstance(dm.source, PythonDocstrings)
    assert isinstance(dm.miner, TfidfMiner) and dm.miner.k == 2
    assert dm.extra_texts[0].lines()[:1] and type(dm.extra_texts[0]).__name__ == "GensimFile"
    hashing = OLD_TEXT_DATA.replace("tokenizer: subword", "tokenizer: hashing").replace("builtin: python_docstrings", "builtin: null")
    path.write_text(hashing.replace("ngrams: []", "ngrams: [3]"))
    dm = instantiate(load_run_config(str(path)).data)
    assert dm.tokenizer.ngrams == (3,) and dm.tokenizer.vocab_size == 500 and dm.source.__class__.__name__ == \
        "WikiParagraphs"
    path.write_text("data:\n  _target_: contrastive.data.text.skipgram.SkipGramDataModule\n  corpus: lee\n")
    assert type(instantiate(load_run_config(str(path)).data).corpus).__name__ == "GensimFile"


@pytest.mark.parametrize("target", ["builtins.open", "torch.load", "contrastive.cli.embed.os.system",
                                    "contrastive.cli.embed.main", "${oc.env:EVIL}", "os.system"])
def test_run_config_naming_foreign_code_is_refused_before_anything_runs(tmp_path, target):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    run = _saved_run(tmp_path, **{"data.extra": {"_target_": target, "_args_": [str(victim), "w"]}})
    from contrastive.cli.embed import load_dual_encoder
    with pytest.raises(ValueError, match=r"refusing to load .*data\.extra\._target_"):
        load_dual_encoder(str(run))
    assert victim.read_text() == "keep me"


def _poison_first_batch(monkeypatch):
    original = SimCLR._loss

    def poisoned(self, batch, stage):
        if stage == "train" and self.global_step == 0:
            batch = [batch[0].clone(), *batch[1:]]
            batch[0][0, 0, 0, 0] = float("nan")  # one NaN pixel
        return original(self, batch, stage)
    monkeypatch.setattr(SimCLR, "_loss", poisoned)


def test_skipped_step_leaves_batchnorm_statistics_untouched(tmp_path, monkeypatch):
    _poison_first_batch(monkeypatch)
    with pytest.warns(UserWarning, match="step skipped"):
        metrics, objects = train(make_cfg(tmp_path, ["guard=skip", "trainer.limit_val_batches=0"]))
    model = objects["model"]
    assert model.skipped_steps == 1
    buffers = dict(model.named_buffers())
    assert any("running_mean" in k for k in buffers)
    assert all(bool(torch.isfinite(b).all()) for b in buffers.values())
    assert metrics["knn_top1/trained"] > 0.3  # evaluation ran on finite features


def test_evaluation_refuses_non_finite_features():
    net = torch.nn.Linear(4, 2)
    net.weight.data[0, 0] = float("nan")
    loader = [(torch.ones(3, 4), torch.zeros(3, dtype=torch.long))]
    with pytest.raises(ValueError, match="3 of 3 feature vectors are not finite"):
        embed(net, loader)


def test_step_skipped_for_its_gradient_does_not_touch_the_queue(tmp_path, monkeypatch):
    from contrastive.encoders import DigitsCNN
    original = DigitsCNN.__init__

    def poisoned(self, *a, **k):  # a finite loss whose gradient is NaN: the check comes after the forward pass
        original(self, *a, **k)
        next(self.parameters()).register_hook(lambda g: g * float("nan"))
    monkeypatch.setattr(DigitsCNN, "__init__", poisoned)
    cfg = make_cfg(tmp_path, ["experiment=moco_digits", "guard=skip", "evaluate=false", "trainer.limit_val_batches=0"])
    with pytest.warns(UserWarning, match="non-finite gradient .* step skipped"):
        _, objects = train(cfg)
    model = objects["model"]
    assert model.skipped_steps == 2
    assert int(model.negatives.ptr) == 0 and bool((model.negatives.ids == -1).all())
    for k, v in model.key_encoder.state_dict().items():  # BatchNorm statistics of the momentum copy too
        assert torch.equal(v, objects["random_init"].state_dict()[k])


def test_stray_quote_in_tsv_keeps_every_row(tmp_path):
    rows = [f"anchor {i}\tpositive {i}" for i in range(300)]
    rows[10] = 'a "quoted anchor\tpositive 10'
    f = tmp_path / "pairs.tsv"
    f.write_text("anchor\tpositive\n" + "\n".join(rows) + "\n")
    got = read_pairs(str(f))
    assert len(got) == 300 and got[10]["anchor"] == 'a "quoted anchor' and got[299]["anchor"] == "anchor 299"


def test_unclosed_quote_in_csv_names_its_line(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text('anchor,positive\na,b\n"c,d\ne,f\ng,h\n')
    with pytest.raises(ValueError, match=r"pairs\.csv:3: 1 field\(s\), but the header names 2.*quote left open"):
        read_pairs(str(f))


def test_excel_bom_long_fields_and_jsonl_types(tmp_path):
    f = tmp_path / "excel.csv"
    long = "word " * 40_000  # 200 KB, over the csv module's default field limit
    f.write_bytes(("\ufeffanchor,positive\n" + f"hello,{long}\n").encode("utf-8"))
    rows = read_pairs(str(f))
    assert rows[0]["anchor"] == "hello" and len(rows[0]["positive"]) == len(long.strip())
    j = tmp_path / "pairs.jsonl"
    j.write_text('{"anchor": "a", "positive": "b"}\n[1, 2]\n')
    with pytest.raises(ValueError, match=r"pairs\.jsonl:2: expected a JSON object .*got list"):
        read_pairs(str(j))
    j.write_text('{"anchor": "a", "positive": {"x": 1}}\n')
    with pytest.raises(ValueError, match=r"pairs\.jsonl:1: positive must be a string, got dict"):
        read_pairs(str(j))
    j.write_text('{"anchor": "a", "positive": "b", "negative": ["c"]}\n'
                 '{"anchor": "a", "positive": "b", "negative": {"text": "c", "score": 0.5}}\n')
    with pytest.raises(ValueError, match=r"pairs\.jsonl:2: negative must be a string or a list of strings, got dict"):
        read_pairs(str(j))
    j.write_text('{"anchor": "a", "positive": "b", "negative": ["c", 3]}\n')
    with pytest.raises(ValueError, match=r"pairs\.jsonl:1: negative must be .* got a list holding int"):
        read_pairs(str(j))


def test_symlink_loop_indexes_each_file_once(tmp_path):
    write_image_folder(tmp_path, 12, 8, 8)
    os.symlink("../cat", tmp_path / "cat" / "loop")
    os.symlink("../cat/3.png", tmp_path / "dog" / "also-cat-3.png")  # a file linked into another class
    os.link(tmp_path / "cat" / "4.png", tmp_path / "dog" / "hard-4.png")
    dm = ImageFolderDataModule(str(tmp_path), size=8, batch_size=2, num_workers=0)
    with pytest.warns(UserWarning, match=r"3 path\(s\) under .* reach a file or folder already indexed"):
        dm.setup()
    assert dm.num_items() == 24


def test_16_bit_grayscale_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(32 * 32).reshape(32, 32) * 64).astype(np.uint16)  # 0 .. 65472
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    got = np.asarray(load_rgb(str(tmp_path / "g16.png")))
    assert got.shape == (32, 32, 3) and (got == 255).mean() < 0.01
    assert np.abs(got[..., 0].astype(float) - ramp / 257).max() <= 0.5 + 1e-9
    floats = (np.arange(32 * 32).reshape(32, 32) / (32 * 32 - 1)).astype(np.float32)  # mode F, 0 .. 1
    Image.fromarray(floats, mode="F").save(tmp_path / "f.tif")
    got = np.asarray(load_rgb(str(tmp_path / "f.tif")))
    assert Image.open(tmp_path / "f.tif").mode == "F" and got.max() == 255
    assert np.abs(got[..., 0].astype(float) - floats * 255).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("overrides, err, match", [
    (["seed=abc"], TypeError, r"seed must be an integer, got 'abc'"),
    (["optimizer.lr=nan"], ValueError, r"optimizer.lr must be a positive finite number, got nan"),
    (["optimizer=lars", "optimizer.lr=inf"], ValueError, r"optimizer.lr must be a positive finite number, got inf"),
    (["experiment=word2vec_wiki", "step.lr=-1"], InstantiationException, r"step.lr must be a positive finite number"),
    (["experiment=word2vec_wiki", "step.lr=inf"], InstantiationException, r"step.lr must be a positive finite number"),
    # raised while Hydra builds the data module, which names the target and the key (full_key: data)
    (["data.size=0"], InstantiationException, r"data.size must be a positive number of pixels .* got 0"),
    (["data=image_folder", "data.root=missing", "encoder.in_channels=3", "data.size=0"], InstantiationException,
     r"data.size must be a positive number"),
    (["data.batch_size=1"], ValueError, r"data.batch_size=1 with one process leaves every anchor without a negative"),
    (["objective.temperature=abc"], InstantiationException, r"objective.temperature must be a number, got 'abc'"),
    (["negatives=queue", "num_negatives=100000"], ValueError, (r"num_negatives=100000 is longer than the 1,258 training "
                                                               r"images: the NegativeQueue would hold random keys")),
    # options that would be ignored are refused, named with what they need
    (["experiment=word2vec_wiki", "data=lee", "monitors=false"], ValueError,
     r"monitors=False has no effect: task=word2vec has no online monitors"),
    (["experiment=word2vec_wiki", "objective.num_classes=5"], ConfigCompositionException, r"num_classes"),
    (["experiment=word2vec_wiki", "objective.seed=1"], ConfigCompositionException, r"seed"),
    (["experiment=word2vec_wiki", "data=lee", "candidates.seed=1", "step=hogwild"], ValueError,
     r"candidates.seed=1 has no effect with step=hogwild: each pair draws its negatives from the run's generator"),
    (["experiment=word2vec_wiki", "data=lee", "candidates.seed=1", "step=per_pair"], ValueError,
     r"candidates.seed=1 has no effect with step=per_pair"),
    # a tokenizer's or miner's options belong to the one chosen: another's, or k without a miner, cannot be set
    (["experiment=text_pairs_wiki", "data/tokenizer=hashing", "data.tokenizer.size=100"], ConfigCompositionException,
     r"data.tokenizer.size"),
    (["experiment=text_pairs_wiki", "data.tokenizer.ngrams=[3]"], ConfigCompositionException, r"ngrams"),
    (["experiment=text_pairs_wiki", "data.miner.k=3"], ConfigCompositionException, r"data.miner.k"),
    (["experiment=text_pairs_wiki", "data.tokenizer=subword"], InstantiationException,
     r"data.tokenizer='subword' lacks .*; choose one with data/tokenizer=hashing\|subword"),
    (["experiment=text_pairs_code", "data.path=pairs.tsv"], InstantiationException,
     r"data.builtin=PythonDocstrings \(the embedded set used only while data.path is null\)"),
    (["experiment=text_pairs_wiki", "data.heldout_max=5"], InstantiationException,
     r"data.heldout_max=5 \(for a streamed pairs file"),
])
def test_values_hydra_accepts_but_training_cannot_use_are_named(tmp_path, overrides, err, match):
    with pytest.raises(err, match=match):
        train(make_cfg(tmp_path, overrides))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_gpu_trainer_without_a_gpu_points_to_the_cpu_ones(tmp_path):
    with pytest.raises(ValueError, match=r"needs a CUDA GPU and none is visible; use trainer=cpu, or trainer=ddp_cpu"):
        train(make_cfg(tmp_path, ["trainer=ddp"]))


def test_non_finite_metrics_are_written_as_null(tmp_path):
    import json

    from contrastive.eval.report import write_json
    with pytest.warns(UserWarning, match=r"metric lee_pearson is nan; written as null"):
        write_json(str(tmp_path / "eval.json"), {"lee_pearson": float("nan"), "mrr": 0.5, "rows": [float("inf")]})
    assert json.loads((tmp_path / "eval.json").read_text()) == {"lee_pearson": None, "mrr": 0.5, "rows": [None]}


def test_guard_stop_says_when_no_checkpoint_exists_yet(tmp_path, monkeypatch):
    from contrastive.losses import NTXent
    monkeypatch.setattr(NTXent, "forward", lambda self, *a, **k: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(FloatingPointError, match="no checkpoint was written yet"):
        train(make_cfg(tmp_path, ["evaluate=false"]))


def test_resume_with_another_lr_says_it_is_not_applied(tmp_path):
    train(make_cfg(tmp_path, ["evaluate=false", "logger=none"]))
    with pytest.warns(UserWarning, match=r"optimizer.lr=0.5 is not applied on resume: the restored optimizer and "
                                         r"schedule continue from the checkpoint's lr 0.00"):
        train(make_cfg(tmp_path, ["evaluate=false", "logger=none", "resume=true", "optimizer.lr=0.5",
                                  "trainer.max_epochs=2"]))


def test_knn_that_cannot_be_measured_is_skipped_with_the_reason():
    from contrastive.eval.report import knn_metrics
    f, y = torch.randn(20, 4), torch.arange(20) % 2
    with pytest.warns(UserWarning, match="k-NN of trained skipped: the test split is empty"):
        assert knn_metrics({"trained": (f, y, f[:0], y[:0])}) == {}
    with pytest.warns(UserWarning, match="single class, so any classifier scores 1.0"):
        assert knn_metrics({"trained": (f, y * 0, f, y * 0)}) == {}
    assert set(knn_metrics({"trained": (f, y, f, y)})) == {"knn_top1/trained", "knn10_top1/trained", "linear_top1/trained"}


def test_embedding_plot_uses_a_bounded_sample():
    from contrastive.eval.report import plot_sample
    f, y = torch.randn(12_000, 3), torch.arange(12_000)
    a, ya = plot_sample(f, y)
    b, _ = plot_sample(f, y)
    assert a.shape == (5000, 3) and torch.equal(a, b) and len(set(ya.tolist())) == 5000  # fixed seed, no repeats
    assert plot_sample(f[:10], y[:10])[0].shape == (10, 3)


def test_encoder_channels_must_match_the_data(tmp_path):
    with pytest.raises(ValueError, match=r"encoder.in_channels=3, but the data gives 1-channel images: add "
                                         r"encoder.in_channels=1"):
        train(make_cfg(tmp_path, ["encoder=resnet18", "encoder.in_channels=3"]))
    _, objects = train(make_cfg(tmp_path, ["encoder=resnet18", "evaluate=false",  # null: the data's
                                           "trainer.limit_train_batches=1", "trainer.limit_val_batches=0"]))
    assert objects["trainer"].global_step == 1


def test_pairs_that_are_all_duplicates_are_warned_about(tmp_path):
    from contrastive.data import TextPairDataModule
    f = tmp_path / "dup.tsv"
    f.write_text("anchor\tpositive\n" + "same question\tsame answer\n" * 40)
    dm = TextPairDataModule(path=str(f), batch_size=8)
    with pytest.warns(UserWarning, match=r"32 training pairs hold only 1 distinct positive text\(s\).*none: the loss "
                                         r"is 0"):
        dm.setup("fit")


def test_stream_options_for_a_file_read_into_memory_are_refused(tmp_path):
    f = tmp_path / "pairs.tsv"
    f.write_text("anchor\tpositive\n" + "".join(f"question {i}\tanswer {i}\n" for i in range(20)))
    with pytest.raises(ValueError, match=r"data.heldout_max=5 would be ignored: .*pairs.tsv is read into memory"):
        TextPairDataModule(path=str(f), heldout_max=5).setup("fit")


def test_binary_garbage_corpus_is_warned_about_and_eval_json_stays_valid(tmp_path):
    import json
    corpus = tmp_path / "garbage.bin"
    corpus.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    run = tmp_path / "run"
    r = run_console(["experiment=word2vec_wiki", "data=text_file", f"data.corpus={corpus}", f"hydra.run.dir={run}",
                     "trainer.max_epochs=1", "logger=none", "trainer.enable_progress_bar=false"], tmp_path,
                    show_warnings=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "does not look like UTF-8 text" in r.stderr and "re-save it as UTF-8" in r.stderr
    assert "word pairs of wordsim353.tsv are in the vocabulary" in r.stderr
    assert "[gensim" not in r.stdout + r.stderr  # gensim's INFO chatter is off
    saved = json.loads((run / "eval.json").read_text(), parse_constant=lambda c: pytest.fail(f"bare {c} in eval.json"))
    assert saved["wordsim353_spearman"] is None and saved["analogy_accuracy"] is None


def test_a_run_directory_where_the_log_cannot_be_written_is_named(tmp_path):
    run = tmp_path / "run"
    (run / "train.log").mkdir(parents=True)  # unwritable even for root, unlike a chmod
    r = run_console([f"hydra.run.dir={run}"], cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1] == (
        f"cannot write the run's log file {run}/train.log (Is a directory) in the run directory {run}; pick a "
        "writable one with run_name=NAME or hydra.run.dir=DIR")


def test_fused_guard_check_names_the_culprit_and_ignores_an_overflowing_sum():
    from torch import nn

    from contrastive.models.base import first_non_finite_grad
    m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    assert first_non_finite_grad(m) is None
    m[1].weight.grad[0, :2] = 3e38  # every value finite, their float32 sum is not
    assert first_non_finite_grad(m) is None
    assert first_non_finite_grad(m, [torch.tensor(float("inf"))]) == "loss"
    m[1].bias.grad[0] = float("nan")
    assert first_non_finite_grad(m) == "1.bias"


def test_value_checks_read_cpu_tensors_always_and_accelerator_tensors_sampled():
    from contrastive.checks import EVERY, FIRST, value_check_due
    cpu = torch.zeros(3)
    assert all(value_check_due("test-cpu-site", cpu) for _ in range(300))
    off_host = torch.empty(3, device="meta")  # stands in for a GPU tensor: not on the host
    due = [value_check_due("test-device-site", off_host) for _ in range(3 * EVERY)]
    assert all(due[:FIRST]) and sum(due) == FIRST + 2 and due[EVERY] and due[2 * EVERY]


def test_text_pairs_with_nothing_held_out_are_refused_before_training(tmp_path):
    rows = "".join(f"topic {i} question\ttopic {i} answer\n" for i in range(12))
    (tmp_path / "p.tsv").write_text("anchor\tpositive\n" + rows)
    args = ["experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}", "data.batch_size=4",
            "data.heldout_fraction=0", "task.word_vectors.epochs=0", "data/tokenizer=hashing"]
    with pytest.raises(ValueError, match=r"no held-out pairs to measure retrieval on: data.heldout_fraction=0 holds "
                                         r"none out \(beside 12 training pairs\).* or set evaluate=false"):
        train(make_cfg(tmp_path / "a", args))
    _, objects = train(make_cfg(tmp_path / "b", [*args, "evaluate=false"]))
    assert objects["trainer"].global_step == 2


def test_a_second_run_of_the_same_directory_is_refused_while_the_first_holds_it(tmp_path):
    import fcntl
    run = tmp_path / "run"
    run.mkdir()
    # another run's lock, as run_dir_lock takes it (a separate open file: flock refuses it within one process too)
    holder = open(run / ".lock", "a+")  # noqa: SIM115
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    holder.write("pid 4242 on elsewhere\n")
    holder.flush()
    with pytest.raises(RuntimeError, match=rf"{run} is in use by another run \(pid 4242 on elsewhere\); wait"):
        train(make_cfg(run, ["evaluate=false", "logger=none"]))
    assert not (run / "config.yaml").exists()  # refused before anything was written
    holder.close()  # what the system does when the holder dies: the file left behind blocks nothing
    _, objects = train(make_cfg(run, ["evaluate=false", "logger=none"]))
    assert objects["trainer"].global_step == 2


def test_a_folder_changed_between_a_run_and_its_continuation_is_refused(tmp_path):
    from tests.test_image_folder import write_images
    write_images(tmp_path / "img" / "a", 10), write_images(tmp_path / "img" / "b", 10, seed=1)
    args = ["data=image_folder", f"data.root={tmp_path / 'img'}", "encoder.in_channels=3", "data.size=8",
            "data.batch_size=4", "data.num_workers=0", "evaluate=false", "logger=none"]
    train(make_cfg(tmp_path / "run", args))
    more = ["resume=auto", "trainer.max_epochs=2"]
    train(make_cfg(tmp_path / "run", args + more))  # the same folder: continues
    write_images(tmp_path / "img" / "a", 13, seed=2)  # 3 new files beside the 10 (rewritten) ones
    with pytest.raises(ValueError, match=r"img changed since this run's checkpoint: it held 20 image\(s\) when this "
                                         r"run started and holds 23 now\. The split would be drawn again"):
        train(make_cfg(tmp_path / "run", args + ["resume=auto", "trainer.max_epochs=3"]))


def test_pair_files_that_hold_no_usable_text_say_why(tmp_path):
    from contrastive.data import TextPairDataModule
    header = tmp_path / "header.tsv"
    header.write_text("anchor\tpositive\n")
    with pytest.raises(ValueError, match=r"header.tsv holds no pairs: no data row with both an anchor and a positive"):
        TextPairDataModule(str(header), batch_size=2).setup()
    utf16 = tmp_path / "excel.csv"
    utf16.write_bytes("anchor,positive\na,b\n".encode("utf-16"))
    with pytest.raises(ValueError, match=r"excel.csv is UTF-16 text .* re-save it as UTF-8"):
        read_pairs(str(utf16))


def test_padding_memory_mapped_ids_copies_them_without_a_warning(tmp_path):
    import warnings

    import numpy as np

    from contrastive.data import TextPairDataModule
    (tmp_path / "p.tsv").write_text("anchor\tpositive\na b\tc d\n")
    ids = np.memmap(tmp_path / "ids", dtype=np.int32, mode="w+", shape=(3,))
    ids[:] = [4, 5, 6]
    ids.flush()
    read_only = np.memmap(tmp_path / "ids", dtype=np.int32, mode="r")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PyTorch's "NumPy array is not writable" would fail here
        padded = TextPairDataModule(str(tmp_path / "p.tsv")).pad([read_only, read_only[:1]])
    assert padded.tolist() == [[4, 5, 6], [4, 0, 0]]
