"""Gradient caching gives the plain full-batch step's gradients (<= 1e-5)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from contrastive.losses import NTXent
from contrastive.models.grad_cache import cached_backward
from contrastive.train import train
from tests.conftest import make_cfg


@pytest.mark.parametrize("chunk", [1, 5, 16, 64])
def test_cached_gradients_equal_plain(chunk):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 4))
    objective = NTXent(0.5, learnable_temperature=True)
    v1, v2 = torch.randn(16, 6), torch.randn(16, 6)
    params = [*net.parameters(), *objective.parameters()]

    torch.manual_seed(1)
    plain = objective(*(torch.cat([net(c) for c in v.split(chunk)]) for v in (v1, v2)))
    plain.backward()
    want = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None

    torch.manual_seed(1)  # the same dropout masks, chunk by chunk
    loss = cached_backward(net, [v1, v2], objective, chunk)
    assert loss.item() == pytest.approx(plain.item(), abs=1e-6)
    for p, w in zip(params, want):
        assert torch.allclose(p.grad, w, atol=1e-5), (p.shape, (p.grad - w).abs().max())


def test_cache_chunk_override_trains_and_validates(tmp_path):
    _, objects = train(make_cfg(tmp_path, ["model.cache_chunk=8", "evaluate=false"]))
    assert not objects["model"].automatic_optimization and objects["trainer"].global_step == 2
    with pytest.raises(Exception, match="cache_chunk must be a positive number of rows or None, got 0"):
        train(make_cfg(tmp_path, ["model.cache_chunk=0", "evaluate=false"]))
