"""Candidate samplers: distributions (goodness of fit), unique-by-rejection rules, seeding, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import chisquare

from contrastive.samplers import (
    all_candidate_sampler,
    expected_count,
    fixed_unigram_candidate_sampler,
    learned_unigram_candidate_sampler,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from contrastive.samplers.candidate import draw_candidates, log_uniform_probs

LABELS = torch.tensor([[0], [3]])


def _gof(samples: torch.Tensor, probs: np.ndarray) -> float:
    counts = np.bincount(samples.numpy(), minlength=len(probs))
    keep = probs > 0
    assert counts[~keep].sum() == 0, "drew an id of probability 0"
    exp = probs[keep] / probs[keep].sum() * counts.sum()
    return chisquare(counts[keep], exp).pvalue


def test_log_uniform_distribution_fits_zipf():
    s, _, _ = log_uniform_candidate_sampler(LABELS, 1, 200_000, False, 20, seed=0)
    p = log_uniform_probs(torch.arange(20), 20).double().numpy()
    assert abs(p.sum() - 1) < 1e-6 and _gof(s, p) > 1e-3


def test_uniform_and_unigram_distributions_fit():
    s, _, _ = uniform_candidate_sampler(LABELS, 1, 100_000, False, 7, seed=1)
    assert _gof(s, np.full(7, 1 / 7)) > 1e-3
    uni = [5.0, 0.0, 3.0, 1.0, 8.0]
    s, _, _ = fixed_unigram_candidate_sampler(torch.tensor([[1]]), 1, 100_000, False, 6, unigrams=uni,
                                              distortion=0.75, num_reserved_ids=1, seed=2)
    assert _gof(s, np.array([0.0] + [u ** 0.75 for u in uni])) > 1e-3


def test_unique_is_first_distinct_values_of_the_stream_and_counts_follow_num_tries():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    draw = lambda n, g: torch.randint(0, 6, (n,), generator=g)
    ids, tries = draw_candidates(draw, 5, True, g1, torch.device("cpu"))
    stream = draw(2 * 5 + 16, g2).tolist()
    seen: list[int] = []
    for k, v in enumerate(stream):
        if v not in seen:
            seen.append(v)
        if len(seen) == 5:
            break
    assert ids.tolist() == seen and tries == k + 1 and len(set(ids.tolist())) == 5
    p = torch.tensor([0.25])
    assert expected_count(p, 5, 5).item() == pytest.approx(1.25)  # no rejection: p * S, may exceed 1
    assert expected_count(p, 5, 9).item() == pytest.approx(1 - 0.75 ** 9, rel=1e-6)


def test_unique_full_range_is_a_permutation_and_seed_repeats():
    s, qt, qs = log_uniform_candidate_sampler(LABELS, 1, 10, True, 10, seed=3)
    assert sorted(s.tolist()) == list(range(10)) and qt.dtype == qs.dtype == torch.float32
    again = log_uniform_candidate_sampler(LABELS, 1, 10, True, 10, seed=3)[0]
    assert torch.equal(s, again)
    assert not torch.equal(log_uniform_candidate_sampler(LABELS, 1, 64, False, 1000, seed=3)[0],
                           log_uniform_candidate_sampler(LABELS, 1, 64, False, 1000, seed=4)[0])


def test_all_candidate_sampler():
    s, qt, qs = all_candidate_sampler(torch.tensor([[1], [4]]), 1, 5, True)
    assert s.tolist() == [0, 1, 2, 3, 4] and bool((qt == 1).all()) and bool((qs == 1).all())


def test_learned_unigram_state_updates_and_round_trips():
    s = learned_unigram_candidate_sampler(8)
    _, qt, _ = s(torch.tensor([[2], [2], [5]]), 1, 3, False, seed=0)
    assert torch.allclose(qt, torch.full((3, 1), 3 / 8))  # the pre-update distribution
    assert s.counts.tolist() == [1, 1, 3, 1, 1, 2, 1, 1]
    t = learned_unigram_candidate_sampler(8)
    t.load_state_dict(s.state_dict())
    assert torch.equal(t.counts, s.counts)


def test_zero_weight_true_class_gets_tf_expected_count_zero_and_the_losses_name_it():
    from contrastive.losses import nce_loss, sampled_softmax_loss
    labels = torch.tensor([[1], [0]])  # 0: a reserved (padding) id, weight 0
    sv = fixed_unigram_candidate_sampler(labels, 1, 2, True, 3, unigrams=[1.0, 1.0], num_reserved_ids=1, seed=0)
    assert sv[1].tolist() == [[pytest.approx(1.0, abs=0.5)], [0.0]] and bool((sv[2] > 0).all())  # TF's numbers
    w, b, x = torch.randn(3, 4), torch.zeros(3), torch.randn(2, 4)
    for fn in (nce_loss, sampled_softmax_loss):
        with pytest.raises(ValueError, match=r"true_expected_count holds 0.0 for class 0: its log is subtracted"):
            fn(w, b, labels, x, 2, 3, sampled_values=sv)


@pytest.mark.parametrize("call,err,match", [
    (lambda: log_uniform_candidate_sampler(LABELS, 1, 11, True, 10), ValueError, "num_sampled=11.*range_max=10"),
    (lambda: log_uniform_candidate_sampler(torch.tensor([[10]]), 1, 2, True, 10), ValueError,
     r"true class 10 is out of range \[0, 10\)"),
    (lambda: uniform_candidate_sampler(torch.tensor([0, 1]), 1, 2, True, 10), ValueError, r"matrix, got \(2,\)"),
    (lambda: uniform_candidate_sampler(torch.tensor([[0, 1]]), 1, 2, True, 10), ValueError,
     "2 columns but num_true=1"),
    (lambda: uniform_candidate_sampler(LABELS, 1, 0, False, 10), ValueError, "num_sampled must be >= 1, got 0"),
    (lambda: fixed_unigram_candidate_sampler(torch.tensor([[1]]), 1, 3, True, 4, unigrams=[1.0, 1.0, 0.0],
                                             num_reserved_ids=1), ValueError, "only 2 have one"),
    (lambda: fixed_unigram_candidate_sampler(LABELS, 1, 1, True, 9, unigrams=[1.0] * 4), ValueError,
     "range_max=9 must equal"),
    (lambda: fixed_unigram_candidate_sampler(LABELS, 1, 1, True, 4), ValueError, "either vocab_file or unigrams"),
    (lambda: learned_unigram_candidate_sampler(2**31), ValueError, "range_max must be in"),
])
def test_bad_input(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_vocab_file(tmp_path):
    f = tmp_path / "vocab.csv"
    f.write_text("the,9\nof,4\ncat,1\n")
    _s, qt, _ = fixed_unigram_candidate_sampler(torch.tensor([[0]]), 1, 2, False, 3, vocab_file=str(f), seed=0)
    assert qt.item() == pytest.approx(9 / 14 * 2, rel=1e-6)
    f.write_text("the,x\n")
    with pytest.raises(ValueError, match="vocab.csv:1"):
        fixed_unigram_candidate_sampler(torch.tensor([[0]]), 1, 1, False, 1, vocab_file=str(f))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_sampling_runs_on_the_labels_device():
    lab = LABELS.cuda()
    for s in (log_uniform_candidate_sampler(lab, 1, 64, True, 10**6), uniform_candidate_sampler(lab, 1, 8, True, 50)):
        assert all(t.is_cuda for t in s)


def test_alias_sampler_fits_its_weights_and_rejects_bad_ones():
    from contrastive.samplers.alias import AliasSampler
    w = np.arange(1, 2001, dtype=np.float64) ** -0.75
    w[7] = 0.0  # a zero-weight id is never drawn
    x = AliasSampler(w)(3_000_000, torch.Generator().manual_seed(0))
    counts = np.bincount(x.numpy(), minlength=len(w)).astype(np.float64)
    assert counts[7] == 0
    keep = w > 0
    assert chisquare(counts[keep], w[keep] / w.sum() * counts.sum()).pvalue > 1e-3
    for bad in ([], [1.0, -1.0], [0.0, 0.0], [1.0, float("nan")]):
        with pytest.raises(ValueError, match="non-negative"):
            AliasSampler(np.array(bad))
