"""Encoders, heads, optimiser, schedule and k-NN evaluation."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from contrastive.encoders import DigitsCNN, MLPHead, ResNet
from contrastive.eval.knn import knn_accuracy, low_label_knn
from contrastive.eval.report import format_table
from contrastive.optim import LARS, warmup_cosine


def test_encoder_shapes():
    assert DigitsCNN(width=8, out_dim=16)(torch.randn(3, 1, 16, 16)).shape == (3, 16)
    r = ResNet("resnet18", cifar_stem=True)
    assert r(torch.randn(2, 3, 32, 32)).shape == (2, 512) and r.out_dim == 512
    assert isinstance(r.net.maxpool, torch.nn.Identity) and r.net.conv1.kernel_size == (3, 3)
    assert ResNet("resnet50").out_dim == 2048
    assert MLPHead(16, 32, 8)(torch.randn(4, 16)).shape == (4, 8)
    with pytest.raises(ValueError, match="resnet101"):
        ResNet("resnet101")


def test_warmup_then_cosine():
    lr = [warmup_cosine(s, 10, 110) for s in range(110)]
    assert lr[0] == pytest.approx(0.1) and lr[9] == pytest.approx(1.0) and lr[10] == pytest.approx(1.0)
    assert lr[60] == pytest.approx(0.5) and lr[-1] < 0.001
    assert all(a >= b for a, b in itertools.pairwise(lr[10:]))


def test_lars_scales_step_by_trust_ratio():
    w = torch.nn.Parameter(torch.full((2, 2), 2.0))
    b = torch.nn.Parameter(torch.ones(2))
    opt = LARS([w, b], lr=1.0, momentum=0.0, weight_decay=0.0, trust_coefficient=0.01)
    w.grad, b.grad = torch.full((2, 2), 0.5), torch.full((2,), 0.5)
    opt.step()
    # ||w|| = 4, ||g|| = 1 -> ratio 0.04 -> step 0.02; 1-D params take a plain SGD step
    assert torch.allclose(w, torch.full((2, 2), 2.0 - 0.02), atol=1e-6)
    assert torch.allclose(b, torch.full((2,), 0.5))


def test_knn_accuracy_on_separable_and_random_features():
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(5, 16, generator=g) * 5
    ytr, yte = torch.arange(200) % 5, torch.arange(50) % 5
    ftr = centers[ytr] + torch.randn(200, 16, generator=g)
    fte = centers[yte] + torch.randn(50, 16, generator=g)
    assert knn_accuracy(ftr, ytr, fte, yte) == 1.0
    assert low_label_knn(ftr, ytr, fte, yte, per_class=3, draws=2) == 1.0
    noise = knn_accuracy(torch.randn(200, 16, generator=g), ytr, torch.randn(50, 16, generator=g), yte)
    assert noise < 0.5


def test_format_table_rows():
    t = format_table({"knn_top1/trained": 0.5, "knn_top1/raw_pixels": 0.25, "knn10_top1/trained": math.nan})
    assert t.splitlines()[1].startswith("trained") and "0.5000" in t and "raw_pixels" in t
