"""contrastive-eval: the end-of-training evaluation again, on any checkpoint of a run."""
from __future__ import annotations

import json

import pytest

from contrastive.evaluate import evaluate_run
from contrastive.train import train
from tests.conftest import make_cfg


def test_evaluating_a_run_again_gives_the_same_numbers_and_merges_eval_json(tmp_path):
    train(make_cfg(tmp_path, ["logger=none"]))
    first = json.loads((tmp_path / "eval.json").read_text())
    (tmp_path / "eval.json").write_text(json.dumps({"note": "kept"}))
    again = evaluate_run(str(tmp_path))
    merged = json.loads((tmp_path / "eval.json").read_text())
    for key, value in first.items():  # same checkpoint, same random initialisation: the same numbers
        assert again[key] == pytest.approx(value, abs=1e-6), key
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
