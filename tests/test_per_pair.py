"""The batched per-pair word2vec step (model.optimizer=per_pair): each pair its own negatives, drawn as TF's
unique sampling draws them; the summed update equals autograd SGD on the pairs' own losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chi2_contingency

from contrastive.losses import NCELoss, NegativeSamplingLoss, nce_loss
from contrastive.samplers.candidate import expected_count, log_uniform_probs
from contrastive.word2vec import batched
from contrastive.word2vec.batched import draw_per_pair, per_pair_step
from contrastive.word2vec.hogwild import hogwild_step, plan

V, D = 50, 8


def tables(obj):
    p = batched._device_plan(obj, torch.device("cpu"))
    return p["accept"], p["alias"]


def test_unique_draws_match_the_compiled_step_in_distribution():
    """Rows needing more draws than the first batch of them continue their own sequence: the tries and the
    negatives are distributed as the compiled step's (a restarted sequence would favour short ones)."""
    obj, n, k = NCELoss(V, D, 16), 6000, 16
    neg, tries = draw_per_pair(*tables(obj), n, k, True, torch.Generator().manual_seed(0))
    assert all(len(set(r)) == k for r in neg.tolist())
    _, ref_neg, ref_tries = hogwild_step(torch.zeros(V, D), obj, torch.zeros(n, dtype=torch.long),
                                         torch.zeros(n, 1, dtype=torch.long), 0.0, record=True, seed=1)
    assert int(tries.max()) > 2 * k + 8  # some rows went past the first draws
    edges = np.quantile(ref_tries.numpy(), [0.2, 0.4, 0.6, 0.8])
    hist = [np.bincount(np.searchsorted(edges, t.numpy(), side="right"), minlength=5) for t in (tries, ref_tries)]
    assert chi2_contingency(np.array(hist)).pvalue > 1e-3
    counts = [np.bincount(x.reshape(-1).numpy(), minlength=V) for x in (neg, ref_neg)]
    assert chi2_contingency(np.array(counts)[:, :30]).pvalue > 1e-3


def test_summed_update_equals_autograd_sgd_on_each_pairs_own_tf_nce_loss():
    torch.manual_seed(0)
    obj = NCELoss(V, D, 5, unigrams=list(range(V, 0, -1)))
    with torch.no_grad():
        obj.weight.normal_()
    E = torch.randn(V, D)
    centre, context = torch.tensor([3, 4, 3]), torch.tensor([[7], [9], [1]])
    E0, W0, b0 = E.clone(), obj.weight.detach().clone(), obj.bias.detach().clone().view(-1)
    loss = per_pair_step(E, obj, centre, context, 0.1, lr_end=0.1, g=torch.Generator().manual_seed(5))
    neg, tries = draw_per_pair(*tables(obj), 3, 5, True, torch.Generator().manual_seed(5))
    p = log_uniform_probs(torch.arange(V), V).double()
    p = (p / p.sum()).float()
    Er, Wr, br = (t.clone().requires_grad_(True) for t in (E0, W0, b0))
    ref = sum(nce_loss(Wr, br, context[i:i + 1], Er[centre[i]][None], 5, V,
                       sampled_values=(neg[i], expected_count(p[context[i]], 5, int(tries[i]))[None],
                                       expected_count(p[neg[i]], 5, int(tries[i])))).sum() for i in range(3))
    ref.backward()
    assert float(loss) == pytest.approx(float(ref) / 3, abs=1e-5)
    for new, old, t in ((E, E0, Er), (obj.weight.detach(), W0, Wr), (obj.bias.detach().view(-1), b0, br)):
        assert torch.allclose(new, old - 0.1 * t.grad, atol=1e-5)


def test_rates_run_across_the_updates_of_a_long_batch(monkeypatch):
    monkeypatch.setattr(batched, "PAIRS_PER_UPDATE", 2)
    torch.manual_seed(0)
    obj, E = NegativeSamplingLoss(V, D, 5), torch.randn(V, D)
    with torch.no_grad():
        obj.weight.normal_()
    before = E.clone()
    per_pair_step(E, obj, torch.tensor([1, 2, 3, 4]), torch.tensor([[5], [6], [7], [8]]), 0.0, lr_end=1.0)
    moved = [not torch.equal(E[i], before[i]) for i in (1, 2, 3, 4)]
    assert moved == [False, True, True, True]  # rates 0, 0.25, 0.5, 0.75


def test_bad_ids_and_unsupported_objectives_are_named():
    obj, E = NCELoss(V, D, 5), torch.zeros(V, D)
    with pytest.raises(ValueError, match="context id"):
        per_pair_step(E, obj, torch.tensor([1]), torch.tensor([[V]]), 0.1)
    with pytest.raises(ValueError, match="one context per centre"):
        per_pair_step(E, obj, torch.tensor([1, 2]), torch.tensor([[0]]), 0.1)
    assert plan(obj)["unique"]
