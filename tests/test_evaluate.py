"""contrastive-eval: the end-of-training evaluation again, on any checkpoint of a run."""
from __future__ import annotations

import json
import math

import pytest
import torch

from contrastive.cli.evaluate import evaluate_run
from contrastive.train import train
from tests.conftest import make_cfg


def test_evaluating_a_run_again_gives_the_same_numbers_and_merges_eval_json(tmp_path):
    train(make_cfg(tmp_path, ["logger=none"]))
    first = json.loads((tmp_path / "eval.json").read_text())
    (tmp_path / "eval.json").write_text(json.dumps({"note": "kept"}))
    again = evaluate_run(str(tmp_path))
    merged = json.loads((tmp_path / "eval.json").read_text())
    for key, value in first.items():  # same checkpoint, same random initialisation: the same numbers
        assert merged[key] == pytest.approx(value, abs=1e-6), key
    assert again and all(merged[k] == v for k, v in again.items() if isinstance(v, float))
    assert merged["note"] == "kept" and merged["evaluated_checkpoint"].endswith("checkpoints/last.ckpt")
    assert {"linear_top1/trained", "linear_top1/random_init", "linear_top1/raw_pixels"} <= set(merged)


def test_evaluate_refuses_runs_it_cannot_evaluate(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a run directory nor a checkpoint file"):
        evaluate_run(str(tmp_path / "missing"))


def test_the_sweep_metric_is_the_tasks_own_or_the_one_asked_for(tmp_path):
    from contrastive.tasks import ImageTask, TextPairsTask, Word2VecTask
    from contrastive.train import sweep_value
    cfg = make_cfg(tmp_path)
    metrics = {"knn_top1/trained": 0.9, "linear_top1/trained": 0.8, "val/loss": 3.0}
    assert sweep_value(cfg, metrics, ImageTask()) == 0.9
    assert (TextPairsTask.metric, Word2VecTask.metric) == ("mrr", "wordsim353_spearman")
    cfg.optimized_metric = "linear_top1/trained"
    assert sweep_value(cfg, metrics, ImageTask()) == 0.8
    cfg.optimized_metric = "knn_top5"
    with pytest.raises(KeyError, match=r"optimized_metric=knn_top5 is not among this run's metrics: \['knn_top1"):
        sweep_value(cfg, metrics, ImageTask())
    # a single-class folder: k-NN skipped, the rest written; the run succeeded, so a sweep gets NaN, not a crash
    cfg.optimized_metric = None
    assert math.isnan(sweep_value(cfg, {"linear_top1/trained": 1.0}, ImageTask()))
    assert math.isnan(sweep_value(cfg, {}, ImageTask()))  # no labels: nothing evaluated


def test_online_monitors_log_each_validation_and_match_the_final_encoder(tmp_path):
    import csv

    from contrastive.eval.knn import embed, knn_accuracy
    cfg = make_cfg(tmp_path, ["trainer.max_epochs=2", "evaluate=false", "logger=default"])
    metrics, objects = train(cfg)
    with open(tmp_path / "logs" / "metrics.csv", newline="") as f:
        logged = [(int(r["epoch"]), float(r["val/knn_top1"])) for r in csv.DictReader(f) if r.get("val/knn_top1")]
    assert [e for e, _ in logged] == [0, 1]  # every validation, not the sanity check
    dm, encoder = objects["datamodule"], objects["model"].encoder
    train_f, train_y = embed(encoder, dm.eval_loaders()[0])
    val_f, val_y = embed(encoder, dm.eval_val_loader())
    assert logged[-1][1] == pytest.approx(knn_accuracy(train_f, train_y, val_f, val_y), abs=1e-6)
    assert 0.0 <= metrics["val/linear_top1"] <= 1.0 and metrics["val/monitor_seconds"] > 0
    _, off = train(make_cfg(tmp_path / "off", ["evaluate=false", "monitors=false", "logger=none"]))
    assert "val/knn_top1" not in off["trainer"].callback_metrics


@pytest.mark.slow
def test_a_sweep_ends_with_a_table_of_its_jobs(tmp_path):
    from tests.conftest import FAST, run_console
    sweep = tmp_path / "sweep"
    r = run_console(["-m", "objective.temperature=0.2,0.5", *FAST, "logger=none", f"hydra.sweep.dir={sweep}"],
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    table = (sweep / "sweep.md").read_text().splitlines()
    assert table[0].startswith("| job | overrides | `knn_top1/trained` |") and len(table) == 4
    assert {line.split("|")[1].strip() for line in table[2:]} == {"0", "1"}
    values = [float(line.split("|")[3]) for line in table[2:]]
    assert values == sorted(values, reverse=True)  # best first
    assert "sweep of 2 job(s), best knn_top1/trained first" in r.stdout


def test_monitors_do_not_change_what_is_trained(tmp_path):
    import torch
    runs = [train(make_cfg(tmp_path / str(on), ["trainer.max_epochs=2", "evaluate=false", "logger=none",
                                                f"monitors={on}"]))[1]["model"] for on in ("true", "false")]
    a, b = (m.state_dict() for m in runs)
    assert all(torch.equal(a[k], b[k]) for k in a), "the monitors drew from the training run's RNG"


@pytest.mark.slow
def test_optuna_searches_on_the_optimized_metric(tmp_path):
    from tests.conftest import FAST, run_console
    sweep = tmp_path / "optuna"
    r = run_console(["-m", "hydra/sweeper=optuna", "hydra.sweeper.n_trials=2", "hydra.sweeper.direction=maximize",
                     "objective.temperature=interval(0.1,0.5)", *FAST, "logger=none", f"hydra.sweep.dir={sweep}"],
                    cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    values = [float(line.split("|")[3]) for line in (sweep / "sweep.md").read_text().splitlines()[2:]]
    best = float(next(line for line in (r.stdout + r.stderr).splitlines() if "Best value:" in line).split()[-1])
    assert len(values) == 2 and round(best, 4) == max(values)  # Optuna saw the k-NN top-1 each job returned


def test_the_monitors_sample_of_the_training_split_leaves_the_global_rng_alone():
    from types import SimpleNamespace

    from torch import nn

    from contrastive.data.images.digits import DigitsDataModule
    from contrastive.eval.monitors import OnlineMonitors
    dm = DigitsDataModule(batch_size=64)
    dm.setup()
    logged = {}
    module = SimpleNamespace(encoder=nn.Sequential(nn.Flatten(), nn.Linear(256, 8)), device=torch.device("cpu"),
                             log=lambda name, value, **kw: logged.setdefault(name, value))
    monitors = OnlineMonitors(max_train=100, probe_iters=5)  # a sample smaller than the training split
    assert len(dm.eval_train_set) > 100
    torch.manual_seed(123)
    monitors.on_validation_epoch_end(SimpleNamespace(datamodule=dm, sanity_checking=False), module)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3)), "the monitors drew from the global RNG"
    assert 0 <= logged["val/knn_top1"] <= 1


def test_evaluating_a_word_vector_run_again_keeps_its_speed_and_writes_the_vectors_again(tmp_path):
    from tests.test_word2vec import W2V
    train(make_cfg(tmp_path, [*W2V, "objective=neg_sampling", "candidates=none", "step=per_pair",
                              "task.compare_gensim=true"], fast=False))
    first = json.loads((tmp_path / "eval.json").read_text())
    vectors = (tmp_path / "vectors.txt").read_text()
    (tmp_path / "vectors.txt").unlink()
    again = evaluate_run(str(tmp_path))
    merged = json.loads((tmp_path / "eval.json").read_text())
    for key in ("wordsim353_spearman", "simlex999_spearman", "analogy_accuracy", "vocab_size"):
        assert merged[key] == pytest.approx(first[key], abs=1e-6), key
    # gensim trains again on 2 threads (not bit-exact): its rows are there; the training's speed is not re-measured
    assert "gensim_wordsim353_spearman" in again and "words_per_second" not in again
    assert merged["words_per_second"] == first["words_per_second"] and merged["step"] == "per_pair"
    assert (tmp_path / "vectors.txt").read_text() == vectors
