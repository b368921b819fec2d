"""The batched per-pair word2vec losses (step=per_pair): each pair its own negatives, drawn as TF's
unique sampling draws them, and its loss TF's nce_loss with those negatives and tries."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from contrastive.losses import NCELoss, NegativeSamplingLoss, nce_loss
from contrastive.samplers.candidate import expected_count, log_uniform_probs
from contrastive.word2vec import batched
from contrastive.word2vec.batched import draw_per_pair, per_pair_loss
from contrastive.word2vec.hogwild import hogwild_step, plan

V, D = 50, 8


def sampler_of(obj):
    return batched._device_plan(obj, torch.device("cpu"))["sampler"]


def test_unique_draws_match_the_compiled_step_in_distribution():
    """Rows needing more draws than the first batch of them continue their own sequence: the tries and the
    negatives are distributed as the compiled step's (a restarted sequence would favour short ones)."""
    obj, n, k = NCELoss(V, D, 16), 6000, 16
    neg, tries = draw_per_pair(sampler_of(obj), n, k, True, torch.Generator().manual_seed(0))
    assert all(len(set(r)) == k for r in neg.tolist())
    _, ref_neg, ref_tries = hogwild_step(torch.zeros(V, D), obj, torch.zeros(n, dtype=torch.long),
                                         torch.zeros(n, 1, dtype=torch.long), 0.0, record=True, seed=1)
    assert int(tries.max()) > 2 * k + 8  # some rows went past the first draws
    edges = np.quantile(ref_tries.numpy(), [0.2, 0.4, 0.6, 0.8])
    hist = [np.bincount(np.searchsorted(edges, t.numpy(), side="right"), minlength=5) for t in (tries, ref_tries)]
    assert chi2_contingency(np.array(hist)).pvalue > 1e-3
    counts = [np.bincount(x.reshape(-1).numpy(), minlength=V) for x in (neg, ref_neg)]
    assert chi2_contingency(np.array(counts)[:, :30]).pvalue > 1e-3


def test_each_pairs_loss_is_tf_nce_loss_with_its_own_negatives_and_tries():
    torch.manual_seed(0)
    obj = NCELoss(V, D, 5, unigrams=list(range(V, 0, -1)))
    with torch.no_grad():
        obj.weight.normal_()
    x = torch.randn(3, D, requires_grad=True)
    context = torch.tensor([[7], [9], [1]])
    loss = per_pair_loss(x, obj, context, g=torch.Generator().manual_seed(5))
    neg, tries = draw_per_pair(sampler_of(obj), 3, 5, True, torch.Generator().manual_seed(5))
    assert len({tuple(r) for r in neg.tolist()}) == 3  # each pair drew its own
    p = log_uniform_probs(torch.arange(V), V).double()
    p = (p / p.sum()).float()
    for i in range(3):
        ref = nce_loss(obj.weight, obj.bias.view(-1), context[i:i + 1], x[i:i + 1], 5, V,
                       sampled_values=(neg[i], expected_count(p[context[i]], 5, int(tries[i]))[None],
                                       expected_count(p[neg[i]], 5, int(tries[i]))))
        assert float(loss[i]) == pytest.approx(float(ref), abs=1e-5)
    loss.sum().backward()
    assert obj.weight.grad.is_sparse and x.grad is not None


def test_negative_sampling_pairs_draw_with_repeats_from_unigram_powers():
    obj = NegativeSamplingLoss(V, D, 5, unigrams=list(range(V, 0, -1)))
    neg, tries = draw_per_pair(sampler_of(obj), 20_000, 5, False, torch.Generator().manual_seed(0))
    w = np.arange(V, 0, -1, dtype=np.float64) ** 0.75
    counts = np.bincount(neg.reshape(-1).numpy(), minlength=V)
    assert bool((tries == 5).all()) and chi2_contingency(np.stack([counts, w / w.sum() * counts.sum()])).pvalue > 1e-3
    loss = per_pair_loss(torch.zeros(4, D), obj, torch.tensor([1, 2, 3, 4]))
    assert torch.allclose(loss, torch.full((4,), 6 * np.log(2), dtype=torch.float32))  # every logit 0


def test_bad_ids_are_named():
    obj = NCELoss(V, D, 5)
    with pytest.raises(ValueError, match="context id"):
        per_pair_loss(torch.zeros(1, D), obj, torch.tensor([[V]]))
    with pytest.raises(ValueError, match="one context per centre"):
        per_pair_loss(torch.zeros(2, D), obj, torch.tensor([[0]]))
    assert plan(obj)["unique"]
