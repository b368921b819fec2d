"""nce_loss, sampled_softmax_loss and the candidate samplers against TensorFlow 2.21 fixtures
(tests/fixtures/tf_sampled.npz, written by scripts/make_tf_fixtures.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from contrastive.losses import nce_loss, sampled_softmax_loss
from contrastive.samplers import expected_count
from contrastive.samplers.candidate import log_uniform_probs
from contrastive.samplers.unigram import unigram_table

FIX = np.load(Path(__file__).parent / "fixtures" / "tf_sampled.npz")
META = json.loads(str(FIX["meta"]))
LOSS_CASES = [k for k, v in META.items() if v["kind"] == "loss"]
COUNT_CASES = [k for k, v in META.items() if v["kind"] == "counts"]


def rel_err(got: torch.Tensor, want: np.ndarray) -> float:
    want_t = torch.as_tensor(want, dtype=torch.float64)
    return float((got.detach().double() - want_t).abs().max() / want_t.abs().max().clamp_min(1e-12))


@pytest.mark.parametrize("kind", ["nce", "ssm"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_loss_and_gradients_match_tensorflow(case, kind):
    m = META[case]
    f = lambda k: FIX[f"{case}/{k}"]
    x = torch.tensor(f("x"), requires_grad=True)
    ws = [torch.tensor(f(f"w{i}"), requires_grad=True) for i in range(m["shards"])]
    bs = [torch.tensor(f(f"b{i}"), requires_grad=True) for i in range(m["bias_shards"])]
    sv = (torch.tensor(f("sampled")), torch.tensor(f("true_expected")), torch.tensor(f("sampled_expected")))
    labels = torch.tensor(f("labels")).int()  # int32 labels are accepted, as in TF
    fn = nce_loss if kind == "nce" else sampled_softmax_loss
    loss = fn(ws if len(ws) > 1 else ws[0], bs if len(bs) > 1 else bs[0], labels, x, len(sv[0]), m["num_classes"],
              num_true=m["num_true"], sampled_values=sv, remove_accidental_hits=m["remove"],
              partition_strategy=m["strategy"])
    assert loss.shape == (x.shape[0],) and loss.dtype == x.dtype
    assert rel_err(loss, f(f"{kind}_loss")) <= 1e-5
    loss.mean().backward()
    assert rel_err(x.grad, f(f"{kind}_dx")) <= 1e-5
    for i, w in enumerate(ws):
        assert rel_err(w.grad, f(f"{kind}_dw{i}")) <= 1e-5
    for i, b in enumerate(bs):
        assert rel_err(b.grad, f(f"{kind}_db{i}")) <= 1e-5


def _probs(m: dict, ids: torch.Tensor) -> torch.Tensor:
    r = m["range_max"]
    if m["sampler"] == "log_uniform":
        return log_uniform_probs(ids, r)
    if m["sampler"] == "uniform":
        return torch.full(ids.shape, 1.0 / r, dtype=torch.float32)
    if m["sampler"] == "all":
        return torch.full(ids.shape, 1.0 / m["num_sampled"], dtype=torch.float32)
    table = unigram_table(m["unigrams"], m.get("distortion", 1.0), m.get("num_reserved_ids", 0),
                          m.get("num_shards", 1), m.get("shard", 0))
    total = np.cumsum(table, dtype=np.float32)[-1]
    return torch.from_numpy(table / total)[ids]


@pytest.mark.parametrize("case", COUNT_CASES)
def test_expected_counts_match_tensorflow(case):
    m = META[case]
    f = lambda k: torch.tensor(FIX[f"{case}/{k}"])
    if m["sampler"] == "all":
        assert torch.equal(f("sampled"), torch.arange(m["num_sampled"]))
        assert bool((f("sampled_expected") == 1).all()) and bool((f("true_expected") == 1).all())
        return
    tries = m["num_tries"]
    assert tries >= m["num_sampled"]
    for ids, key in ((f("labels"), "true_expected"), (f("sampled"), "sampled_expected")):
        got = expected_count(_probs(m, ids), m["num_sampled"], tries)
        assert (got - f(key)).abs().max() <= 1e-6, (key, got, f(key))


def test_learned_unigram_matches_tensorflow_over_three_calls():
    from contrastive.samplers import learned_unigram_candidate_sampler
    sampler = learned_unigram_candidate_sampler(8)
    for k in range(3):
        labels = torch.tensor(FIX[f"cnt_learned_{k}/labels"])
        _, qt, _ = sampler(labels, 1, 3, False, seed=k)
        assert torch.allclose(qt, torch.tensor(FIX[f"cnt_learned_{k}/true_expected"]), atol=1e-6)
        tf_sampled = torch.tensor(FIX[f"cnt_learned_{k}/sampled"])
        tf_qs = torch.tensor(FIX[f"cnt_learned_{k}/sampled_expected"])
        counts_before = sampler.counts.clone()
        counts_before.index_add_(0, labels.reshape(-1), -torch.ones(3, dtype=torch.long))
        want = counts_before[tf_sampled].float() / counts_before.sum().float() * 3
        assert torch.allclose(want, tf_qs, atol=1e-6)
