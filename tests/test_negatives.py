"""Queue and memory bank negatives, MoCo, and the objective/sampler overrides that use them."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from contrastive.losses import InfoNCE, NTXent, info_nce, nt_xent
from contrastive.models.moco import ema_momentum
from contrastive.samplers import MemoryBank, NegativeQueue
from contrastive.train import train
from tests.conftest import make_cfg


def test_queue_fifo_wraparound_and_size():
    q = NegativeQueue(size=5, dim=2)
    batches = [F.normalize(torch.randn(3, 2), dim=1) for _ in range(3)]
    for i, b in enumerate(batches):
        q.update(b, torch.arange(3) + 3 * i)
    # 9 keys written into 5 slots in turn: key j sits in slot j mod 5, the last write wins, so slots 0..4
    # hold keys 5, 6, 7, 8, 4 (ids likewise) and the next write goes to slot 9 mod 5 = 4
    keys = torch.cat(batches)
    assert q.keys.shape == (5, 2) and int(q.ptr) == 4
    assert torch.allclose(q.keys, keys[[5, 6, 7, 8, 4]], atol=1e-6) and q.ids.tolist() == [5, 6, 7, 8, 4]
    big = F.normalize(torch.randn(7, 2), dim=1)
    q.update(big)  # more keys than slots: the last 5 (big[2:]) fill slots 4, 0, 1, 2, 3
    assert torch.allclose(q.keys, big[[3, 4, 5, 6, 2]], atol=1e-6) and q.ids.tolist() == [-1] * 5
    assert not q.draw().keys.requires_grad


def test_queue_rejects_keys_of_the_wrong_dimension():
    with pytest.raises(ValueError, match=r"queue keys must be \[B, 2\], got \(3, 4\)"):
        NegativeQueue(5, 2).update(torch.randn(3, 4))


def test_queue_state_round_trips_through_state_dict():
    q, r = NegativeQueue(4, 3), NegativeQueue(4, 3)
    q.update(torch.randn(3, 3))
    r.load_state_dict(q.state_dict())
    assert torch.equal(r.keys, q.keys) and int(r.ptr) == 3


def test_loss_with_queue_equals_info_nce_with_explicit_negatives():
    q, k = torch.randn(8, 4), torch.randn(8, 4)
    queue = NegativeQueue(16, 4)
    neg = queue.draw()
    got = InfoNCE(0.2)(q, k, negative_keys=neg.keys)
    assert got.item() == pytest.approx(info_nce(q, k, queue.keys, temperature=0.2).item(), rel=1e-6)


def test_nt_xent_with_extra_negatives_matches_formula():
    g = torch.Generator().manual_seed(0)
    z1, z2, neg = (torch.randn(n, 3, generator=g).double() for n in (4, 4, 6))
    t = 0.5
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    nk = F.normalize(neg, dim=1)
    losses = []
    for i in range(8):
        p = (i + 4) % 8
        others = [j for j in range(8) if j != i]
        denom = torch.exp(z[i] @ z[others].T / t).sum() + torch.exp(z[i] @ nk.T / t).sum()
        losses.append(-(z[i] @ z[p] / t - torch.log(denom)))
    want = torch.stack(losses).mean()
    assert nt_xent(z1, z2, t, negative_keys=neg).item() == pytest.approx(want.item(), rel=1e-10)
    # the log-Q correction of a constant shifts every extra negative by the same amount
    lq = torch.full((6,), -1.0, dtype=torch.float64)
    shifted = nt_xent(z1, z2, t, negative_keys=neg, negative_log_q=lq)
    assert shifted.item() > want.item()


def test_memory_bank_masks_own_entry_and_checks_size():
    bank = MemoryBank(size=10, dim=3, num_items=10)
    idx = torch.tensor([2])
    keys = torch.randn(1, 3)
    bank.update(keys, idx)
    neg = bank.draw(idx)
    assert sorted(neg.ids.tolist()) == list(range(10))  # unique, size == num_items: everything
    assert torch.allclose(bank.bank[2], F.normalize(keys, dim=1)[0])
    # the anchor's own stored copy is masked: same loss as without that negative
    with_mask = NTXent(0.5)(keys, keys, ids=idx, negative_keys=neg.keys, negative_ids=neg.ids)
    rest = neg.ids != 2
    without = NTXent(0.5)(keys, keys, negative_keys=neg.keys[rest])
    assert with_mask.item() == pytest.approx(without.item(), rel=1e-5)
    with pytest.raises(ValueError, match=r"num_negatives=20 must be in \[1, 10\]"):
        MemoryBank(size=20, dim=3, num_items=10)
    with pytest.raises(ValueError, match="out of range"):
        bank.update(torch.randn(2, 3), torch.tensor([0, 10]))


def test_ema_schedule():
    assert ema_momentum(0, 100, 0.99, 1.0) == pytest.approx(0.99)
    assert ema_momentum(100, 100, 0.99, 1.0) == pytest.approx(1.0)
    assert ema_momentum(50, 100, 0.99, 0.99) == pytest.approx(0.99)


@pytest.mark.parametrize("overrides", [
    ["negatives=queue", "num_negatives=1024"],
    ["negatives=queue", "num_negatives=100", "objective=infonce"],
    ["negatives=memory_bank", "num_negatives=64", "negatives.correct_log_q=true"],
    ["experiment=moco_digits"],
    ["negatives=nn_support", "num_negatives=48", "objective=supcon"],
])
def test_negative_source_overrides_train(tmp_path, overrides):
    metrics, objects = train(make_cfg(tmp_path, overrides + ["evaluate=false"]))
    model = objects["model"]
    assert objects["trainer"].global_step == 2 and metrics["train/loss_epoch"] > 0
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    state_keys = [k for k in ckpt["state_dict"] if k.startswith("negatives.")]
    assert state_keys, "the queue / memory bank must be saved with the checkpoint"
    if "experiment=moco_digits" in overrides:
        assert type(model).__name__ == "MoCo" and model.negatives.size == 1024
        # the key encoder moved towards the query encoder but is not equal to it
        p, k = next(model.encoder.parameters()), next(model.key_encoder.parameters())
        assert not k.requires_grad and not torch.equal(p, k)
    if "negatives=nn_support" in overrides:  # 2 steps of 32 keys stored, of 48 slots
        assert int(model.negatives.stored) == 48 and int(ckpt["state_dict"]["negatives.stored"]) == 48


def test_clip_rejects_queue(tmp_path):
    with pytest.raises(ValueError, match="NegativeQueue adds stored negatives, which ClipLoss does not score"):
        train(make_cfg(tmp_path, ["objective=clip", "negatives=queue", "num_negatives=64", "evaluate=false"]))
