"""SupCon, DCL / DCLW, debiased, HCL and the sigmoid loss against independent references: lightly's DCL losses,
pytorch-metric-learning's SupConLoss, and loops over anchors and pairs written from the papers' formulas."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastive.losses import (
    DCL,
    DCLW,
    HCL,
    Debiased,
    SigmoidLoss,
    SupCon,
    dcl,
    debiased_nt_xent,
    nt_xent,
    sigmoid_pairs,
    supcon,
)

N, DIM = 6, 5
IDS = torch.tensor([0, 1, 0, 2, 3, 1])  # rows 0 and 2, 1 and 5 are the same items


def _views(seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(N, DIM, generator=g, dtype=dtype).requires_grad_(),
            torch.randn(N, DIM, generator=g, dtype=dtype).requires_grad_())


def _grads(loss: torch.Tensor, *xs: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.autograd.grad(loss, xs))


def _close(got: torch.Tensor, want: torch.Tensor | float, rel: float = 1e-5) -> None:
    want = torch.as_tensor(want, dtype=got.dtype)
    assert torch.allclose(got, want, rtol=rel, atol=rel * 1e-2), (got, want, (got - want).abs().max())


def _anchor_sets(ids: torch.Tensor | None) -> list[tuple[int, int, list[int]]]:
    """For each of the 2N anchors: (anchor row, positive row, negative rows) in the stacked [z1; z2]."""
    out = []
    for i in range(2 * N):
        pos = (i + N) % (2 * N)
        negs = [j for j in range(2 * N) if j not in (i, pos)
                and (ids is None or int(ids[j % N]) != int(ids[i % N]))]
        out.append((i, pos, negs))
    return out


def _unit(z1: torch.Tensor, z2: torch.Tensor) -> np.ndarray:
    z = torch.cat([z1, z2]).detach().double().numpy()
    return z / np.linalg.norm(z, axis=1, keepdims=True)


# ---- DCL / DCLW --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_dcl_and_dclw_equal_lightly(temperature):
    lightly_loss = pytest.importorskip("lightly.loss")
    for ours, theirs in [(DCL(temperature), lightly_loss.DCLLoss(temperature)),
                         (DCLW(temperature, sigma=0.3), lightly_loss.DCLWLoss(temperature, sigma=0.3))]:
        z1, z2 = _views()
        got = ours(z1, z2)
        with pytest.warns(UserWarning) if isinstance(ours, DCLW) else _nothing():  # lightly's torch.tensor copy
            want = theirs(z1, z2)
        _close(got, want.item())
        for g, w in zip(_grads(got, z1, z2), _grads(want, z1, z2), strict=True):
            _close(g, w)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _dcl_loop(z1, z2, t, ids=None, sigma=None):
    """Yeh et al.'s Eq. 6, anchor by anchor: -w * s_pos / t + log sum_neg exp(s / t), mean over the 2N anchors."""
    z = _unit(z1, z2)
    w = np.ones(N)
    if sigma is not None:
        s = (z[:N] * z[N:]).sum(1) / sigma
        w = 2 - N * np.exp(s) / np.exp(s).sum()
    total = 0.0
    for i, pos, negs in _anchor_sets(ids):
        total += -w[i % N] * z[i] @ z[pos] / t + np.log(sum(np.exp(z[i] @ z[j] / t) for j in negs))
    return total / (2 * N)


def test_dcl_masks_negatives_that_share_the_anchors_id():
    z1, z2 = _views(1)
    _close(dcl(z1, z2, 0.2, ids=IDS), _dcl_loop(z1, z2, 0.2, IDS))
    _close(dcl(z1, z2, 0.2, sigma=0.5, ids=IDS), _dcl_loop(z1, z2, 0.2, IDS, sigma=0.5))
    assert not torch.allclose(dcl(z1, z2, 0.2, ids=IDS), dcl(z1, z2, 0.2))


# ---- SupCon ------------------------------------------------------------------------------------------------

def test_supcon_equals_pytorch_metric_learning():
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    labels = torch.tensor([0, 1, 0, 2, 1, 1])
    z1, z2 = _views(2)
    got = supcon(z1, z2, labels, 0.1)
    want = pml.SupConLoss(temperature=0.1)(torch.cat([z1, z2]), torch.cat([labels, labels]))
    _close(got, want.item())
    for g, w in zip(_grads(got, z1, z2), _grads(want, z1, z2), strict=True):
        _close(g, w)


@pytest.mark.parametrize("labels", [torch.arange(N), torch.full((N,), -1)], ids=["distinct", "unlabelled"])
def test_supcon_is_nt_xent_when_no_two_items_share_a_label(labels):
    z1, z2 = _views(3)
    got, want = supcon(z1, z2, labels, 0.3), nt_xent(z1, z2, 0.3)
    _close(got, want.item())
    for g, w in zip(_grads(got, z1, z2), _grads(want, z1, z2), strict=True):
        _close(g, w)


def _supcon_loop(z1, z2, labels, t, ids=None):
    z = _unit(z1, z2)
    lab = [int(v) if v >= 0 else -1 - k for k, v in enumerate(labels)] * 2
    total = 0.0
    for i, pos, negs in _anchor_sets(ids):
        others = [pos, *negs]
        positives = [j for j in others if lab[j] == lab[i]]
        log_den = np.log(sum(np.exp(z[i] @ z[j] / t) for j in others))
        total += -np.mean([z[i] @ z[p] / t - log_den for p in positives])
    return total / (2 * N)


def test_supcon_with_unlabelled_items_and_ids_matches_the_formula():
    labels = torch.tensor([0, -1, 0, 1, -1, 1])
    z1, z2 = _views(4)
    _close(supcon(z1, z2, labels, 0.2), _supcon_loop(z1, z2, labels, 0.2))
    _close(supcon(z1, z2, labels, 0.2, ids=IDS), _supcon_loop(z1, z2, labels, 0.2, IDS))


def test_supcon_names_missing_labels():
    z1, z2 = _views()
    with pytest.raises(ValueError, match=r"objective=supcon needs labels \[N\] with N=6 .* got None"):
        SupCon()(z1, z2)


# ---- debiased / HCL ----------------------------------------------------------------------------------------

def _debiased_numpy(z1, z2, t, tau_plus, beta, ids=None):
    """Chuang et al. (beta = 0) and Robinson et al.'s estimator, anchor by anchor as in the authors' code."""
    z = _unit(z1, z2)
    losses = []
    for i, pos_row, negs in _anchor_sets(ids):
        neg = np.array([np.exp(z[i] @ z[j] / t) for j in negs])
        pos = np.exp(z[i] @ z[pos_row] / t)
        n = len(negs)
        imp = np.exp(beta * np.log(neg))
        reweight = (imp * neg).sum() / imp.mean()
        ng = max((-tau_plus * n * pos + reweight) / (1 - tau_plus), n * math.e ** (-1 / t))
        losses.append(-np.log(pos / (pos + ng)))
    return float(np.mean(losses))


def _debiased_torch(z1, z2, t, tau_plus, beta):
    """The authors' SimCLR-form code in float64 autograd (exp, masked negatives, clamp), for the gradients."""
    out = F.normalize(torch.cat([z1, z2]), dim=1)
    neg = torch.exp(out @ out.T / t)
    mask = torch.ones(2 * N, 2 * N, dtype=torch.bool)
    for i in range(2 * N):
        mask[i, i] = mask[i, (i + N) % (2 * N)] = False
    neg = neg.masked_select(mask).view(2 * N, -1)
    pos = torch.exp((F.normalize(z1, dim=1) * F.normalize(z2, dim=1)).sum(1) / t)
    pos = torch.cat([pos, pos])
    n = 2 * N - 2
    imp = (beta * neg.log()).exp()
    reweight = (imp * neg).sum(-1) / imp.mean(-1)
    ng = torch.clamp((-tau_plus * n * pos + reweight) / (1 - tau_plus), min=n * math.e ** (-1 / t))
    return (-torch.log(pos / (pos + ng))).mean()


@pytest.mark.parametrize("t, tau_plus, beta", [(0.5, 0.1, 0.0), (0.5, 0.1, 1.0), (0.2, 0.3, 0.5), (0.1, 0.5, 2.0),
                                               (0.05, 0.9, 0.0)])
def test_debiased_and_hcl_equal_the_authors_formula(t, tau_plus, beta):
    z1, z2 = _views(5)
    got = debiased_nt_xent(z1, z2, t, tau_plus, beta)
    _close(got, _debiased_numpy(z1, z2, t, tau_plus, beta))
    want = _debiased_torch(z1, z2, t, tau_plus, beta)
    for g, w in zip(_grads(got, z1, z2), _grads(want, z1, z2), strict=True):
        _close(g, w)


def test_the_debiased_loss_with_no_prior_is_nt_xent_and_masks_ids():
    z1, z2 = _views(6)
    _close(Debiased(0.5, tau_plus=0.0)(z1, z2), nt_xent(z1, z2, 0.5).item())
    _close(HCL(0.4, 0.2, beta=0.7)(z1, z2, ids=IDS), _debiased_numpy(z1, z2, 0.4, 0.2, 0.7, IDS))


def test_the_debiased_loss_stays_finite_at_the_smallest_temperature():
    z1, z2 = _views(7)
    z2 = (z1.detach() + 1e-3 * z2.detach()).requires_grad_()  # positives near 1: exp(cos / 0.01) overflows float32
    loss = debiased_nt_xent(z1.float(), z2.float(), 0.01, 0.1, 1.0)
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    _close(loss.double(), _debiased_numpy(z1, z2, 0.01, 0.1, 1.0), rel=1e-4)


# ---- sigmoid ------------------------------------------------------------------------------------------------

def _sigmoid_loop(a, b, scale, bias, ids=None):
    """Zhai et al.: -(1/N) sum over every (i, j) pair of log sigmoid(z_ij (scale cos + bias)), z_ii = 1, else -1."""
    an = F.normalize(a, dim=1).detach().double().numpy()
    bn = F.normalize(b, dim=1).detach().double().numpy()
    total = 0.0
    for i in range(N):
        for j in range(N):
            if ids is not None and i != j and ids[i] == ids[j]:
                continue
            z = 1.0 if i == j else -1.0
            total += -math.log(1 / (1 + math.exp(-z * (scale * an[i] @ bn[j] + bias))))
    return total / N


def test_sigmoid_loss_equals_a_loop_over_pairs():
    a, b = _views(8)
    _close(sigmoid_pairs(a, b, 10.0, -10.0), _sigmoid_loop(a, b, 10.0, -10.0))
    _close(sigmoid_pairs(a, b, 3.0, 0.5, ids=IDS), _sigmoid_loop(a, b, 3.0, 0.5, IDS))


def test_sigmoid_module_learns_its_scale_and_bias():
    a, b = _views(9)
    loss_fn = SigmoidLoss(temperature=0.2, bias=-2.0).double()
    loss = loss_fn(a, b)
    _close(loss, _sigmoid_loop(a, b, 5.0, -2.0))
    loss.backward()
    # d/d bias of -(1/N) sum log sigmoid(z l) = -(1/N) sum z sigmoid(-z l)
    an, bn = F.normalize(a, dim=1).detach(), F.normalize(b, dim=1).detach()
    logits = 5.0 * an @ bn.T - 2.0
    z = 2 * torch.eye(N, dtype=logits.dtype) - 1
    _close(loss_fn.bias.grad, (-(z * torch.sigmoid(-z * logits)).sum() / N).item())
    assert loss_fn.temperature.log_scale.grad is not None and loss_fn.temperature.log_scale.grad != 0


# ---- shared: precision, argument checks -------------------------------------------------------------------

@pytest.mark.parametrize("make", [lambda: DCLW(), lambda: HCL(), lambda: SigmoidLoss(), lambda: SupCon()],
                         ids=["dclw", "hcl", "sigmoid", "supcon"])
def test_losses_stay_float32_under_bf16_autocast(make):
    loss_fn = make()
    z1, z2 = (z.detach().bfloat16() for z in _views(10))
    extra = {"labels": torch.tensor([0, 1, 0, 1, 2, 2])} if isinstance(loss_fn, SupCon) else {}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = loss_fn(z1, z2, **extra)
    want = loss_fn(z1.float(), z2.float(), **extra)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)


@pytest.mark.parametrize("call, match", [
    (lambda z1, z2: dcl(z1, z2[:4]), (r"the two views must both be \[N, d\] with the same shape, got \(6, 5\) and "
                                     r"\(4, 5\)")),
    (lambda z1, z2: dcl(z1, z2, ids=IDS[:3]), r"ids must be a \[N\] tensor with N=6, got shape \(3,\)"),
    (lambda z1, z2: DCLW(sigma=0.0), r"sigma must be > 0, got 0.0"),
    (lambda z1, z2: Debiased(tau_plus=1.0), r"tau_plus \(the class prior\) must be in \[0, 1\), got 1.0"),
    (lambda z1, z2: HCL(beta=-1.0), r"beta \(the hardness\) must be >= 0, got -1.0"),
    (lambda z1, z2: debiased_nt_xent(z1, z2, ids=torch.zeros(N, dtype=torch.long)), r"an anchor has no negatives"),
    (lambda z1, z2: supcon(z1, z2, torch.zeros(3, dtype=torch.long)), r"needs labels \[N\] with N=6"),
    (lambda z1, z2: sigmoid_pairs(z1, z2, 10.0, float("nan"), all_b=z2[:4]), r"4 keys cannot hold the positives"),
    (lambda z1, z2: SigmoidLoss(bias=float("inf")), r"bias must be a finite number, got inf"),
    (lambda z1, z2: dcl(z1, z2, temperature=0.0), r"temperature must be > 0, got 0.0"),
])
def test_bad_arguments_are_named(call, match):
    z1, z2 = _views()
    with pytest.raises(ValueError, match=match):
        call(z1, z2)


# ---- wiring: labels from the batch, the support set --------------------------------------------------------

def _simclr(objective, negatives=None):
    from functools import partial

    from torch import nn

    from contrastive.models import SimCLR
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(4, 5))
    return SimCLR(encoder, nn.Identity(), objective, partial(torch.optim.SGD, lr=0.1), negatives=negatives)


def test_simclr_passes_the_batchs_labels_to_an_objective_that_takes_them():
    g = torch.Generator().manual_seed(11)
    v1, v2 = torch.randn(N, 1, 2, 2, generator=g), torch.randn(N, 1, 2, 2, generator=g)
    labels = torch.tensor([0, 1, 0, -1, 1, 2])
    model = _simclr(SupCon(0.2))
    got = model._loss((v1, v2, labels, torch.arange(N)), "train")
    want = supcon(model.encoder(v1), model.encoder(v2), labels, 0.2)
    _close(got, want.item())
    assert not torch.allclose(got, nt_xent(model.encoder(v1), model.encoder(v2), 0.2))


def test_support_set_gives_each_anchor_its_nearest_stored_key_as_positive():
    from contrastive.samplers import SupportSet
    support = SupportSet(size=4, dim=3)
    q = torch.tensor([[1.0, 0.1, 0.0], [0.0, 0.0, 2.0]])
    assert torch.equal(support.nearest(q), q)  # nothing stored yet: the anchors themselves
    stored = torch.tensor([[0.0, 1.0, 0.0], [0.9, 0.0, 0.1], [0.0, 0.2, 1.0]])
    support.update(stored)
    assert int(support.stored) == 3
    want = F.normalize(stored, dim=1)[[1, 2]]
    assert torch.allclose(support.nearest(q), want)
    (a1, b1, kw1), (a2, b2, kw2) = support.terms(q, q.flip(0), None)
    assert torch.allclose(a1, want) and torch.equal(b1, q.flip(0)) and kw1 == kw2 == {}
    assert torch.allclose(a2, F.normalize(stored, dim=1)[[2, 1]]) and torch.equal(b2, q)
    support.update(torch.randn(5, 3))
    assert int(support.stored) == 4  # at most its size
    model = _simclr(DCL(0.5), support)
    assert model.negatives is support and not a1.requires_grad


def test_text_pairs_with_hard_negatives_refuse_an_objective_that_cannot_score_them():
    from functools import partial

    from contrastive.encoders import BagOfTokens
    from contrastive.models import DualEncoder
    model = DualEncoder(BagOfTokens(vocab_size=20, dim=4, out_dim=4), SigmoidLoss(), partial(torch.optim.SGD, lr=0.1))
    batch = {"anchor": torch.randint(1, 20, (3, 4)), "positive": torch.randint(1, 20, (3, 4)),
             "negatives": torch.randint(1, 20, (3, 1, 4)), "ids": torch.arange(3)}
    with pytest.raises(ValueError, match=r"negative column \(hard negatives\), which SigmoidLoss does not score"):
        model._loss(batch, "train")
    del batch["negatives"]
    assert torch.isfinite(model._loss(batch, "train"))
