"""nce_loss / sampled_softmax_loss: textbook identities, TF corner cases, errors; NCELoss modules; configs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from contrastive.losses import (
    NCELoss,
    SampledSoftmaxLoss,
    compute_accidental_hits,
    nce_loss,
    sampled_softmax_loss,
)
from contrastive.losses.sampled import FLT_MAX, sampled_logits
from contrastive.samplers import LogUniformSampler
from tests.conftest import make_cfg


def _setup(b=4, d=3, c=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(c, d, generator=g), torch.randn(c, generator=g), torch.randint(0, c, (b, 1), generator=g),
            torch.randn(b, d, generator=g))


def test_accidental_hits_last_occurrence():
    idx, ids, w = compute_accidental_hits(torch.tensor([[3, 5], [5, 5], [7, 1]]), torch.tensor([5, 3, 5, 9, 5]), 2)
    assert idx.tolist() == [0, 0, 1, 1] and ids.tolist() == [1, 4, 4, 4]
    assert idx.dtype == torch.int32 and bool((w == -FLT_MAX).all())


def test_masked_logit_is_exactly_minus_flt_max_and_contributes_nothing():
    w, b, _, x = _setup()
    labels = torch.tensor([[2], [2], [4], [6]])
    s = torch.tensor([2, 7, 2])
    q = torch.full((4, 1), 0.5), torch.full((3,), 0.5)
    logits, _ = sampled_logits(w[labels.view(-1)], b[labels.view(-1)], w[s], b[s], x, labels, s, *q, True)
    assert logits[0, 3].item() == -FLT_MAX and logits[0, 1].item() != -FLT_MAX  # last copy only
    full = nce_loss(w, b, labels, x, 3, 10, sampled_values=(s, *q), remove_accidental_hits=True)
    dropped = nce_loss(w, b, labels, x, 3, 10, sampled_values=(s[:2], *[q[0], q[1][:2]]))
    assert torch.allclose(full[:2], dropped[:2])  # rows 0, 1: the masked column adds exactly 0


def test_all_candidates_with_removal_is_full_softmax():
    w, b, y, x = _setup(c=7)
    sv = (torch.arange(7), torch.ones(4, 1), torch.ones(7))
    got = sampled_softmax_loss(w, b, y, x, 7, 7, sampled_values=sv)
    assert torch.allclose(got, F.cross_entropy(x @ w.T + b, y[:, 0], reduction="none"), atol=1e-6)


def test_nce_targets_are_one_over_num_true():
    w, b, _, x = _setup()
    y = torch.tensor([[1, 2, 3]] * 4)
    sv = (torch.tensor([0, 9]), torch.full((4, 3), 0.3), torch.full((2,), 0.3))
    tl = (x[:, None] * w[y]).sum(-1) + b[y] - torch.log(torch.tensor(0.3))
    sl = x @ w[[0, 9]].T + b[[0, 9]] - torch.log(torch.tensor(0.3))
    want = (F.binary_cross_entropy_with_logits(tl, torch.full_like(tl, 1 / 3), reduction="none").sum(1)
            + F.softplus(sl).sum(1))
    assert torch.allclose(nce_loss(w, b, y, x, 2, 10, num_true=3, sampled_values=sv), want, atol=1e-5)


def test_default_sampler_and_float64():
    w, b, y, x = _setup()
    torch.manual_seed(0)
    loss = nce_loss(w.double(), b.double(), y, x.double(), 4, 10)
    assert loss.dtype == torch.float64 and torch.isfinite(loss).all()


@pytest.mark.parametrize("kwargs,match", [
    ({"labels": torch.tensor([[10]] * 4)}, r"label 10 is out of range \[0, 10\)"),
    ({"labels": torch.zeros(4, 2, dtype=torch.long)}, r"labels must be \[batch=4, num_true=1\]"),
    ({"num_sampled": 11, "sampled_values": None}, "num_sampled=11.*range_max=10"),
    ({"partition_strategy": "foo"}, "unknown partition_strategy 'foo'"),
    ({"sampled_values": (torch.tensor([1]), torch.zeros(4, 1), torch.ones(1))}, "its log is subtracted"),
    ({"sampled_values": (torch.tensor([1]), torch.ones(4), torch.ones(1))}, r"must be \[4, 1\], got \(4,\)"),
    ({"sampled_values": (torch.tensor([12]), torch.ones(4, 1), torch.ones(1))}, "sampled id 12 is out of range"),
    ({"inputs": torch.randn(4, 5)}, "weights have dim 3 but inputs have dim 5"),
])
def test_bad_input_names_the_values(kwargs, match):
    w, b, y, x = _setup()
    args = {"weights": w, "biases": b, "labels": y, "inputs": x, "num_sampled": 1, "num_classes": 10,
                "sampled_values": (torch.tensor([1]), torch.ones(4, 1), torch.ones(1)), "remove_accidental_hits": True}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        nce_loss(**args)


def test_sharded_weights_equal_logical_matrix():
    w, b, y, x = _setup(c=11)
    sv = (torch.tensor([0, 5, 10]), torch.full((4, 1), 0.2), torch.full((3,), 0.2))
    want = nce_loss(w, b, y, x, 3, 11, sampled_values=sv)
    mod = [w[p::3] for p in range(3)]
    div = list(torch.tensor_split(w, 3))
    assert torch.allclose(nce_loss(mod, b, y, x, 3, 11, sampled_values=sv, partition_strategy="mod"), want)
    assert torch.allclose(nce_loss(div, b, y, x, 3, 11, sampled_values=sv, partition_strategy="div"), want)


@pytest.mark.parametrize("cls", [NCELoss, SampledSoftmaxLoss])
def test_module_sparse_gradient_touches_only_used_rows(cls):
    m = cls(10_000, 8, num_sampled=16, seed=0)
    x, y = torch.randn(32, 8, requires_grad=True), torch.randint(0, 10_000, (32,))
    m(x, y).backward()
    g = m.weight.grad
    assert g.is_sparse and g.coalesce().indices().shape[1] <= 32 + 16
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    before = m.weight.detach().clone()
    opt.step()
    changed = (m.weight.detach() != before).any(1).sum().item()
    assert 0 < changed <= 48


def test_module_seed_repeats_and_full_eval_loss():
    a, b = SampledSoftmaxLoss(50, 4, 5, seed=3), SampledSoftmaxLoss(50, 4, 5, seed=3)
    b.load_state_dict(a.state_dict())
    x, y = torch.randn(6, 4), torch.randint(0, 50, (6,))
    assert a(x, y).item() == b(x, y).item()
    a.full_loss_in_eval = True
    full = F.cross_entropy(x @ a.weight.T + a.bias.T, y)
    assert a.eval()(x, y).item() == pytest.approx(full.item(), rel=1e-5)


@pytest.mark.parametrize("kwargs,match", [
    ({"num_sampled": 200}, "num_sampled=200.*range_max=100"),
    ({"sampler": LogUniformSampler(100, 5)}, ("the sampler draws 5 of 100 ids for num_true=1, but the loss has "
                                             "num_classes=100, num_sampled=8")),
    ({"sampler": LogUniformSampler(100, 8), "seed": 1}, "give a sampler its own seed"),
    ({"unigrams": [1.0] * 5}, "unigrams must hold num_classes=100 counts, got 5"),
    ({"reduction": "avg"}, "'avg'"),
])
def test_module_validates_in_init(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NCELoss(**{"num_classes": 100, "dim": 4, "num_sampled": 8, **kwargs})


@pytest.mark.parametrize("objective", ["nce", "sampled_softmax"])
@pytest.mark.parametrize("sampler", ["log_uniform", "uniform", "unigram", "learned_unigram"])
def test_objective_and_sampler_configs(tmp_path, objective, sampler):
    cfg = make_cfg(tmp_path, ["experiment=word2vec_wiki", f"objective={objective}", f"candidates={sampler}",
                              "num_negatives=16"])
    extra = {"unigrams": list(range(100, 0, -1))} if sampler == "unigram" else {}
    candidates = instantiate(cfg.candidates)(range_max=100, num_sampled=16, **extra)
    m = instantiate(cfg.objective, num_classes=100, dim=8, sampler=candidates)
    assert m.num_sampled == 16 and m.sampler is candidates and candidates.unique
    assert type(candidates).__name__ == {"log_uniform": "LogUniformSampler", "uniform": "UniformSampler",
                                         "unigram": "UnigramSampler", "learned_unigram": "LearnedUnigramSampler"}[sampler]
    if sampler == "unigram":
        assert candidates.distortion == 0.75
    loss = m(torch.randn(8, 8), torch.randint(0, 100, (8,)))
    loss.backward()
    assert torch.isfinite(loss)


def test_num_negatives_larger_than_vocabulary_fails_fast(tmp_path):
    cfg = make_cfg(tmp_path, ["experiment=word2vec_wiki", "candidates=log_uniform", "num_negatives=4096"])
    with pytest.raises(ValueError, match="num_sampled=4096"):
        instantiate(cfg.candidates)(range_max=100, num_sampled=cfg.num_negatives)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fast_log1p_is_within_a_few_ulps(dtype):
    from contrastive.losses.sampled import log1p_small
    e = torch.cat([torch.logspace(-30, 0, 100_001, dtype=torch.float64), torch.rand(10_000, dtype=torch.float64)])
    ref = torch.log1p(e)
    rel = ((log1p_small(e.to(dtype)).double() - ref).abs() / ref).max()
    assert rel < 4 * torch.finfo(dtype).eps


def test_sigmoid_cross_entropy_gradient_and_masked_logit():
    from contrastive.losses.sampled import sigmoid_cross_entropy
    x = torch.randn(40, 9, dtype=torch.float64, requires_grad=True)
    z = torch.rand(40, 9, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: sigmoid_cross_entropy(x, z), (x,))
    textbook = -(z * F.logsigmoid(x) + (1 - z) * F.logsigmoid(-x))
    assert torch.allclose(sigmoid_cross_entropy(x, z), textbook, rtol=1e-12, atol=0)
    masked = torch.tensor([-FLT_MAX, 0.0], requires_grad=True)
    out = sigmoid_cross_entropy(masked, torch.zeros(2))
    out.sum().backward()
    assert out[0].item() == 0.0 and masked.grad[0].item() == 0.0 and masked.grad[1].item() == 0.5
