"""Tiled InfoNCE / NT-Xent: the same loss and gradients as the plain computation (<= 1e-5 in float32)."""
from __future__ import annotations

import pytest
import torch

from contrastive.losses import InfoNCE, NTXent, info_nce, nt_xent
from contrastive.losses.tiled import tiled_logsumexp
from contrastive.train import train
from tests.conftest import make_cfg

CASES = {
    "nt_xent": lambda z1, z2, neg, ids, nids, lq, t, tile: nt_xent(z1, z2, t, tile_size=tile),
    "nt_xent_ids_extra": lambda z1, z2, neg, ids, nids, lq, t, tile: nt_xent(
        z1, z2, t, ids=ids, negative_keys=neg, negative_ids=nids, negative_log_q=lq, tile_size=tile),
    "info_nce_in_batch_ids": lambda z1, z2, neg, ids, nids, lq, t, tile: info_nce(
        z1, z2, temperature=t, ids=ids, tile_size=tile),
    "info_nce_unpaired": lambda z1, z2, neg, ids, nids, lq, t, tile: info_nce(
        z1, z2, neg, temperature=t, ids=ids, key_ids=nids, negative_log_q=lq, tile_size=tile),
}


@pytest.mark.parametrize("tile", [1, 7, 64])
@pytest.mark.parametrize("case", list(CASES))
def test_tiled_equals_plain(case, tile):
    g = torch.Generator().manual_seed(tile)
    z1, z2 = (torch.randn(33, 16, generator=g, requires_grad=True) for _ in range(2))
    neg = torch.randn(20, 16, generator=g)
    ids, nids = torch.randint(0, 12, (33,), generator=g), torch.randint(0, 12, (20,), generator=g)
    lq = torch.randn(20, generator=g)
    t = torch.tensor(0.2, requires_grad=True)
    fn = CASES[case]
    plain = fn(z1, z2, neg, ids, nids, lq, t, None)
    tiled = fn(z1, z2, neg, ids, nids, lq, t, tile)
    g_plain = torch.autograd.grad(plain, (z1, z2, t))
    g_tiled = torch.autograd.grad(tiled, (z1, z2, t))
    assert abs(plain.item() - tiled.item()) <= 1e-5
    for a, b in zip(g_plain, g_tiled):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


def test_tiled_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    q, k = (torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    t = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    self_col = torch.tensor([0, -1, 2, -1, 4, -1])
    pos = torch.tensor([1, 2, 3, 4, 5, 0])
    assert torch.autograd.gradcheck(lambda a, b, c: tiled_logsumexp(a, b, c, 4, self_col, pos), (q, k, t))


def test_modules_take_tile_size_and_reject_bad_values():
    z1, z2 = torch.randn(10, 4), torch.randn(10, 4)
    assert NTXent(0.5, tile_size=3)(z1, z2).item() == pytest.approx(NTXent(0.5)(z1, z2).item(), abs=1e-5)
    assert InfoNCE(0.1, tile_size=4)(z1, z2).item() == pytest.approx(InfoNCE(0.1)(z1, z2).item(), abs=1e-5)
    for bad in (0, -2):
        with pytest.raises(ValueError, match=f"got {bad}"):
            NTXent(tile_size=bad)
    with pytest.raises(ValueError, match="paired"):
        info_nce(z1, z2, torch.randn(10, 3, 4), negative_mode="paired", tile_size=2)


def test_tile_size_override_trains(tmp_path):
    _, objects = train(make_cfg(tmp_path, ["objective.tile_size=16", "evaluate=false"]))
    assert objects["model"].objective.tile_size == 16 and objects["trainer"].global_step == 2
