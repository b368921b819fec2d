"""InfoNCE / NT-Xent / CLIP against textbook formulas written here in NumPy."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from contrastive.losses import ClipLoss, InfoNCE, NTXent, clip_loss, info_nce, nt_xent


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def ntxent_numpy(z1: np.ndarray, z2: np.ndarray, t: float, ids: np.ndarray | None = None) -> float:
    """SimCLR eq. (1) averaged over all 2N anchors, written as loops."""
    z = _unit(np.concatenate([z1, z2]).astype(np.float64))
    n = len(z1)
    idv = None if ids is None else np.concatenate([ids, ids])
    total = 0.0
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        denom = 0.0
        for k in range(2 * n):
            if k == i or (idv is not None and k != p and idv[k] == idv[i]):
                continue
            denom += math.exp(z[i] @ z[k] / t)
        total += -(z[i] @ z[p] / t - math.log(denom))
    return total / (2 * n)


def infonce_numpy(q, k, neg, t, mode, ids=None):
    q, k = _unit(q.astype(np.float64)), _unit(k.astype(np.float64))
    out = []
    for i in range(len(q)):
        if neg is None:
            keys = [j for j in range(len(k)) if j == i or ids is None or ids[j] != ids[i]]
            logits = np.array([q[i] @ k[j] for j in keys]) / t
            pos = keys.index(i)
        else:
            negs = _unit(neg[i] if mode == "paired" else neg)
            logits = np.concatenate([[q[i] @ k[i]], negs @ q[i]]) / t
            pos = 0
        out.append(-(logits[pos] - np.log(np.exp(logits).sum())))
    return float(np.mean(out))


@pytest.mark.parametrize("n,d,t", [(4, 8, 0.5), (16, 32, 0.1), (7, 3, 1.0)])
def test_nt_xent_matches_formula(n, d, t):
    g = torch.Generator().manual_seed(n * d)
    z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
    got = nt_xent(z1.double(), z2.double(), t).item()
    assert got == pytest.approx(ntxent_numpy(z1.numpy(), z2.numpy(), t), rel=1e-10)


def test_nt_xent_identical_embeddings_is_log_2n_minus_1():
    z = torch.ones(8, 5)
    assert nt_xent(z, z, 0.5).item() == pytest.approx(math.log(2 * 8 - 1), rel=1e-6)


def test_nt_xent_symmetric_and_ids_mask():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 4, generator=g).double(), torch.randn(6, 4, generator=g).double()
    assert nt_xent(z1, z2).item() == pytest.approx(nt_xent(z2, z1).item(), rel=1e-12)
    ids = torch.tensor([0, 1, 0, 2, 3, 1])
    want = ntxent_numpy(z1.numpy(), z2.numpy(), 0.5, ids.numpy())
    assert nt_xent(z1, z2, 0.5, ids=ids).item() == pytest.approx(want, rel=1e-10)
    assert nt_xent(z1, z2, 0.5, ids=ids).item() != pytest.approx(nt_xent(z1, z2, 0.5).item(), rel=1e-6)


def test_nt_xent_gradcheck():
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    z2 = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: nt_xent(a, b, 0.3), (z1, z2))


@pytest.mark.parametrize("mode", ["in_batch", "unpaired", "paired"])
def test_info_nce_matches_formula(mode):
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(6, 5, generator=g).double(), torch.randn(6, 5, generator=g).double()
    neg = {"in_batch": None, "unpaired": torch.randn(9, 5, generator=g).double(),
           "paired": torch.randn(6, 9, 5, generator=g).double()}[mode]
    nm = "paired" if mode == "paired" else "unpaired"
    got = info_nce(q, k, neg, temperature=0.2, negative_mode=nm).item()
    want = infonce_numpy(q.numpy(), k.numpy(), None if neg is None else neg.numpy(), 0.2, nm)
    assert got == pytest.approx(want, rel=1e-10)


def test_info_nce_ids_mask_in_batch():
    g = torch.Generator().manual_seed(3)
    q, k = torch.randn(6, 5, generator=g).double(), torch.randn(6, 5, generator=g).double()
    ids = torch.tensor([4, 4, 1, 2, 1, 9])
    want = infonce_numpy(q.numpy(), k.numpy(), None, 0.1, "unpaired", ids.numpy())
    assert info_nce(q, k, ids=ids).item() == pytest.approx(want, rel=1e-10)


def test_clip_loss_is_mean_of_both_directions():
    g = torch.Generator().manual_seed(4)
    a, b = torch.randn(5, 4, generator=g).double(), torch.randn(5, 4, generator=g).double()
    want = 0.5 * (infonce_numpy(a.numpy(), b.numpy(), None, 0.1, "unpaired")
                  + infonce_numpy(b.numpy(), a.numpy(), None, 0.1, "unpaired"))
    assert clip_loss(a, b, 10.0).item() == pytest.approx(want, rel=1e-10)
    assert ClipLoss(0.1, learnable_temperature=False).double()(a, b).item() == pytest.approx(want, rel=1e-6)


def test_modules_match_functions_and_learn_temperature():
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    assert NTXent(0.5)(z1, z2).item() == pytest.approx(nt_xent(z1, z2, 0.5).item(), rel=1e-6)
    assert InfoNCE(0.2)(z1, z2).item() == pytest.approx(info_nce(z1, z2, temperature=0.2).item(), rel=1e-6)
    m = NTXent(0.5, learnable_temperature=True)
    m(z1, z2).backward()
    assert m.temperature.log_scale.grad is not None and m.temperature.log_scale.grad.abs() > 0
    with torch.no_grad():
        m.temperature.log_scale.fill_(10.0)  # scale e^10 > 100 is clamped
    assert m.temperature().item() == pytest.approx(0.01, rel=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: nt_xent(torch.randn(4, 3), torch.randn(5, 3)), r"\(4, 3\) and \(5, 3\)"),
    (lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3), temperature=0.0), "temperature must be > 0, got 0"),
    (lambda: info_nce(torch.randn(4, 3), torch.randn(4, 3), negative_mode="both"), "'both'"),
    (lambda: info_nce(torch.randn(4, 3), torch.randn(4, 3), torch.randn(7, 2)), r"\[M, 3\], got \(7, 2\)"),
    (lambda: info_nce(torch.randn(4, 3), torch.randn(4, 3), torch.randn(3, 7, 3), negative_mode="paired"),
     r"\[4, M, 3\]"),
    (lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3), ids=torch.arange(3)), "N=4"),
    (lambda: NTXent(temperature=-1.0), "got -1.0"),
    (lambda: nt_xent(torch.randn(4, 3), torch.randn(4, 3, device="meta")), "z1 is on cpu but z2 is on meta"),
    (lambda: InfoNCE(negative_mode="x"), "'x'"),
])
def test_bad_input_names_the_values(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_clip_module_calls_the_functional_clip_loss_with_the_same_numbers(monkeypatch):
    g = torch.Generator().manual_seed(6)
    a, b, ids = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g), torch.tensor([0, 1, 1, 2, 3, 4, 5, 6])
    m = ClipLoss(0.07)
    # the two directions through InfoNCE, as the module computed them before it called clip_loss
    both = 0.5 * (InfoNCE.forward(m, a, b, ids=ids) + InfoNCE.forward(m, b, a, ids=ids))
    assert torch.equal(m(a, b, ids=ids), both)
    import contrastive.losses.contrastive as module
    calls = []
    monkeypatch.setattr(module, "clip_loss", lambda *args, **kw: calls.append(1) or clip_loss(*args, **kw))
    m(a, b, ids=ids)
    assert calls == [1]
