"""The compiled per-pair word2vec step: one pair's update equals autograd SGD on the objective's loss, the
negatives follow the sampler (distinct with unique draws), one thread repeats exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare

from contrastive.losses import (
    FullSoftmaxLoss,
    NCELoss,
    NegativeSamplingLoss,
    SampledSoftmaxLoss,
    nce_loss,
)
from contrastive.samplers import (
    LearnedUnigramSampler,
    LogUniformSampler,
    UniformSampler,
    UnigramSampler,
)
from contrastive.samplers.candidate import expected_count, log_uniform_probs
from contrastive.word2vec.hogwild import hogwild_step, plan

V, D, LR = 50, 8, 0.1
COUNTS = list(range(V, 0, -1))


def one_pair(obj, seed):
    """Run one pair through hogwild; return the tables before and after, the negatives and tries."""
    torch.manual_seed(seed)
    with torch.no_grad():
        obj.weight.normal_()
    E = torch.randn(V, D)
    before = (E.clone(), obj.weight.detach().clone(), obj.bias.detach().clone().view(-1) if hasattr(obj, "bias") else None)
    c, y = torch.tensor([3]), torch.tensor([[7]])
    loss, neg, tries = hogwild_step(E, obj, c, y, LR, record=True, threads=1)
    return before, (E, obj.weight.detach(), obj.bias.detach().view(-1) if hasattr(obj, "bias") else None), loss, neg[0], int(tries[0])


@pytest.mark.parametrize("sampler", ["log_uniform", "uniform", "unigram"])
def test_nce_pair_update_equals_autograd_sgd_on_tf_nce_loss(sampler):
    make = {"log_uniform": LogUniformSampler, "uniform": UniformSampler,
            "unigram": lambda v, k: UnigramSampler(v, k, COUNTS, distortion=0.75)}[sampler]
    obj = NCELoss(V, D, 5, sampler=make(V, 5), unigrams=COUNTS)
    (E0, W0, b0), (E1, W1, b1), loss, neg, tries = one_pair(obj, 0)
    assert len(set(neg.tolist())) == 5 and tries >= 5  # unique draws
    p = {"log_uniform": log_uniform_probs(torch.arange(V), V), "uniform": torch.full((V,), 1 / V),
         "unigram": torch.tensor(COUNTS, dtype=torch.float64) ** 0.75}[sampler]
    p = (p / p.sum()).float()
    E, W, b = (t.clone().requires_grad_(True) for t in (E0, W0, b0))
    y = torch.tensor([[7]])
    sampled_values = (neg, expected_count(p[y[0]], 5, tries)[None], expected_count(p[neg], 5, tries))
    ref = nce_loss(W, b, y, E[3:4], 5, V, sampled_values=sampled_values).sum()
    ref.backward()
    assert abs(float(loss) - float(ref)) < 1e-5
    for new, old, t in ((E1, E0, E), (W1, W0, W), (b1, b0, b)):
        assert torch.allclose(new, old - LR * t.grad, atol=1e-6)
        assert not torch.equal(new, old)


def test_nce_expected_counts_on_draws_that_needed_retries():
    """Unique sampling that rejected repeats: the kernel's expected counts are TF's 1 - (1 - p)^tries."""
    obj = NCELoss(V, D, 5, unigrams=COUNTS)  # log-uniform over 50 classes: id 0 has p = 0.18, repeats are common
    p = log_uniform_probs(torch.arange(V), V).float()
    retried = 0
    for seed in range(40):
        (E0, W0, b0), _, loss, neg, tries = one_pair(obj, seed)
        if tries == 5 or 7 in neg.tolist():  # an accidental hit updates the row between its two scores
            continue
        retried += 1
        y = torch.tensor([[7]])
        sampled_values = (neg, expected_count(p[y[0]], 5, tries)[None], expected_count(p[neg], 5, tries))
        ref = nce_loss(W0, b0, y, E0[3:4], 5, V, sampled_values=sampled_values).sum()
        assert abs(float(loss) - float(ref)) < 1e-5, (seed, tries)
    assert retried >= 5  # the branch was reached


def test_negative_sampling_pair_update_equals_autograd_sgd():
    obj = NegativeSamplingLoss(V, D, 5, unigrams=COUNTS)
    for seed in range(100):  # a draw without repeats (a repeated row sees its own update, as in word2vec)
        (E0, W0, _), (E1, W1, _), loss, neg, _ = one_pair(obj, seed)
        if len(set(neg.tolist()) | {7}) == 6:
            break
    E, W = E0.clone().requires_grad_(True), W0.clone().requires_grad_(True)
    z = W[torch.cat([torch.tensor([7]), neg])] @ E[3]
    ref = F.softplus(-z[0]) + F.softplus(z[1:]).sum()
    ref.backward()
    assert abs(float(loss) - float(ref)) < 1e-5
    assert torch.allclose(E1, E0 - LR * E.grad, atol=1e-6) and torch.allclose(W1, W0 - LR * W.grad, atol=1e-6)


def test_negatives_follow_the_sampler_and_tf_expected_counts():
    n = 20_000
    centre, context = torch.zeros(n, dtype=torch.long), torch.zeros(n, 1, dtype=torch.long)
    ns = NegativeSamplingLoss(V, D, 5, unigrams=COUNTS)
    _, neg, tries = hogwild_step(torch.zeros(V, D), ns, centre, context, 0.0, record=True, seed=0)  # seeded: the outcome does not depend on test order
    counts = np.bincount(neg.reshape(-1).numpy(), minlength=V)
    w = np.array(COUNTS, dtype=np.float64) ** 0.75
    assert bool((tries == 5).all()) and chisquare(counts, w / w.sum() * counts.sum()).pvalue > 1e-3
    nce = NCELoss(V, D, 5)
    _, neg, tries = hogwild_step(torch.zeros(V, D), nce, centre, context, 0.0, record=True, seed=0)
    assert all(len(set(r)) == 5 for r in neg.tolist())
    # a row's first draw is never rejected, so it follows the sampler's distribution exactly
    p = log_uniform_probs(torch.arange(V), V).double().numpy()
    first = np.bincount(neg[:, 0].numpy(), minlength=V)
    assert bool((tries >= 5).all()) and chisquare(first, p / p.sum() * n).pvalue > 1e-3


def test_one_thread_repeats_and_unsupported_objectives_are_named():
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        obj, E = NCELoss(V, D, 5), torch.randn(V, D)
        centre, context = torch.randint(0, V, (500,)), torch.randint(0, V, (500, 1))
        runs.append((hogwild_step(E, obj, centre, context, 0.05, threads=1), E))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    with pytest.raises(ValueError, match="SampledSoftmaxLoss: the per-pair step runs NCE"):
        plan(SampledSoftmaxLoss(V, D, 5))
    with pytest.raises(ValueError, match="learned unigram distribution changes"):
        plan(NCELoss(V, D, 5, sampler=LearnedUnigramSampler(V, 5)))
    with pytest.raises(ValueError, match="FullSoftmaxLoss has no per-pair plan"):
        plan(FullSoftmaxLoss(V, D))


def test_out_of_range_ids_are_refused_before_the_compiled_loop():
    obj, E = NegativeSamplingLoss(V, D, 5), torch.zeros(V, D)
    with pytest.raises(ValueError, match="context id"):
        hogwild_step(E, obj, torch.tensor([1]), torch.tensor([[V]]), 0.1)
    with pytest.raises(ValueError, match="centre id"):
        hogwild_step(E, obj, torch.tensor([-1]), torch.tensor([[0]]), 0.1)
    with pytest.raises(ValueError, match="one context per centre"):
        hogwild_step(E, obj, torch.tensor([1, 2]), torch.tensor([[0]]), 0.1)


def test_tables_are_within_their_stated_error():
    """sigmoid, log(1 + exp(-|z|)) and TF's log expected count from the kernel's tables vs exact float64."""
    from contrastive.word2vec.kernel import (
        _log_expected,
        _sigmoid,
        _softplus_neg_abs,
        make_tables,
    )
    sig, spl, h = make_tables()
    z = np.linspace(-20, 20, 20_001)
    assert max(abs(_sigmoid(v, sig) - 1 / (1 + np.exp(-v))) for v in z) < 5e-7
    assert max(abs(_softplus_neg_abs(v, spl) - np.log1p(np.exp(-abs(v)))) for v in z) < 5e-7
    p = np.geomspace(1e-7, 0.5, 400)
    l1p = np.log1p(-p)
    counts = {"logp": np.log(p), "l1p": l1p, "lnl": np.log(-l1p)}
    for tries in (6, 9, 80, 10_000):
        got = np.array([_log_expected(j, 5, tries, np.log(5), np.log(tries), counts["logp"], counts["l1p"],
                                      counts["lnl"], h) for j in range(len(p))])
        assert np.abs(got - np.log(-np.expm1(tries * l1p))).max() < 2e-6, tries
    got = _log_expected(3, 5, 5, np.log(5), np.log(5), counts["logp"], counts["l1p"], counts["lnl"], h)
    assert got == pytest.approx(np.log(5 * p[3]), abs=1e-9)  # no repeats: TF's count is k * p


def test_many_negatives_are_distinct_and_count_their_tries():
    """Above 8 negatives the kernel checks distinctness with a stamp per class instead of a scan."""
    n = 5_000
    centre, context = torch.zeros(n, dtype=torch.long), torch.zeros(n, 1, dtype=torch.long)
    _, neg, tries = hogwild_step(torch.zeros(V, D), NCELoss(V, D, 16), centre, context, 0.0, record=True)
    assert all(len(set(r)) == 16 for r in neg.tolist()) and bool((tries >= 16).all())
    assert float(tries.float().mean()) > 17  # log-uniform over 50 classes repeats often: the retries were counted
    p = log_uniform_probs(torch.arange(V), V).double().numpy()
    assert chisquare(np.bincount(neg[:, 0].numpy(), minlength=V), p / p.sum() * n).pvalue > 1e-3


def test_the_rate_goes_from_lr_to_lr_end_across_the_batch():
    torch.manual_seed(0)
    E, obj = torch.randn(V, D), NegativeSamplingLoss(V, D, 5)
    with torch.no_grad():
        obj.weight.normal_()  # word2vec starts it at zero, where the input rows get no gradient
    before = E.clone()
    hogwild_step(E, obj, torch.tensor([1, 2]), torch.tensor([[3], [4]]), 0.0, threads=1, lr_end=1.0)
    assert torch.equal(E[1], before[1]) and not torch.equal(E[2], before[2])  # rates 0 and 0.5


def test_the_stream_kernel_makes_each_centres_pairs_in_its_sentence():
    """Pairs made from the token stream as they train, block by block in the given order (a block's pairs
    shuffled): with window 1 exactly the neighbours in the sentence; with window 5 each centre's window is uniform
    on 1..5."""
    from contrastive.word2vec.hogwild import hogwild_stream
    T = 40
    ids, sent = torch.arange(T), torch.tensor([0] * 15 + [1] * 20 + [2] * 5)  # ids are positions
    starts = torch.tensor([30, 3, 12])  # blocks of 4 centres: 30-33, then 3-6, then 12-15
    _, made = hogwild_stream(torch.zeros(T, D), NCELoss(T, D, 5), ids, sent, starts, 4, 1, 0.0, record=1000)
    want = [[(i, j) for i in range(q, q + 4) for j in (i - 1, i + 1) if 0 <= j < T and sent[j] == sent[i]]
            for q in (30, 3, 12)]
    got, at = [tuple(p) for p in made.tolist()], 0
    for block in want:  # the blocks in the given order, each block's pairs in a random order
        assert sorted(got[at:at + len(block)]) == block
        at += len(block)
    assert at == len(got) and got != [p for block in want for p in block]
    T = 20_000
    ids, sent = torch.arange(T), torch.arange(T) // 50
    _, made = hogwild_stream(torch.zeros(T, D), NegativeSamplingLoss(T, D, 1), ids, sent, torch.arange(0, T, 64),
                             64, 5, 0.0, record=10**6)
    assert sorted(set(made[:, 0].tolist())) == list(range(T))  # every token a centre
    offsets = (made[:, 1] - made[:, 0]).abs()
    assert set(offsets.unique().tolist()) == {1, 2, 3, 4, 5} and bool((sent[made[:, 0]] == sent[made[:, 1]]).all())
    seen = np.bincount(offsets.numpy(), minlength=6)[1:]
    # offset d: P(window >= d) = (6 - d) / 5, times the centres with a token d away in the sentence, both sides
    room = np.array([2 * (50 - d) * T // 50 for d in range(1, 6)]) * np.array([5, 4, 3, 2, 1]) / 5
    assert chisquare(seen, seen.sum() * room / room.sum()).pvalue > 1e-3
    with pytest.raises(ValueError, match=r"blocks of 4 centres at 1 starts \(window 1\) do not fit 5 token ids"):
        hogwild_stream(torch.zeros(T, D), NCELoss(T, D, 5), ids[:5], sent[:5], torch.tensor([9]), 4, 1, 0.1)


def test_the_stream_kernel_trains_the_pairs_it_makes():
    """One centre with one context: its input row and the context's output row move, nothing else's input row."""
    from contrastive.word2vec.hogwild import hogwild_stream
    obj = NegativeSamplingLoss(V, D, 5)
    with torch.no_grad():
        obj.weight.normal_()
    E = torch.randn(V, D)
    before, w_before = E.clone(), obj.weight.detach().clone()
    loss = hogwild_stream(E, obj, torch.tensor([3, 7]), torch.tensor([0, 0]), torch.tensor([0]), 1, 1, LR,
                          threads=1, seed=5)
    assert 0 < float(loss) < 50 and not torch.equal(E[3], before[3]) and torch.equal(E[7], before[7])
    assert not torch.equal(obj.weight[7], w_before[7])  # the context's output row learned
