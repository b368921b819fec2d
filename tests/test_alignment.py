"""Alignment and uniformity (Wang & Isola 2020) against the authors' published two-line definitions and a loop
over pairs; its wiring in the image and text tasks."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from contrastive.losses import AlignUniform, align_uniform

N, DIM = 6, 5
IDS = torch.tensor([0, 1, 0, 2, 3, 1])


def _views(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(N, DIM, generator=g, dtype=torch.float64).requires_grad_(),
            torch.randn(N, DIM, generator=g, dtype=torch.float64).requires_grad_())


def _reference(z1: torch.Tensor, z2: torch.Tensor, alpha: float, t: float, weight: float) -> torch.Tensor:
    """The paper's code: align = |x - y|^alpha, uniform = log mean over pairs of exp(-t |x_i - x_j|^2)."""
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    align = (x - y).norm(p=2, dim=1).pow(alpha).mean()
    uniform = [torch.pdist(v, p=2).pow(2).mul(-t).exp().mean().log() for v in (x, y)]
    return align + weight * (uniform[0] + uniform[1]) / 2


@pytest.mark.parametrize("alpha, t, weight", [(2.0, 2.0, 1.0), (1.0, 3.0, 0.5), (3.0, 0.5, 0.0)])
def test_align_uniform_equals_the_papers_definition(alpha, t, weight):
    z1, z2 = _views()
    got, want = align_uniform(z1, z2, alpha, t, weight), _reference(z1, z2, alpha, t, weight)
    assert torch.allclose(got, want, rtol=1e-10)
    for g, w in zip(torch.autograd.grad(got, (z1, z2)), torch.autograd.grad(want, (z1, z2))):
        assert torch.allclose(g, w, rtol=1e-8, atol=1e-10)


def test_pairs_sharing_an_id_are_left_out_of_the_uniformity():
    z1, z2 = _views(1)
    got = align_uniform(z1, z2, ids=IDS)
    x, y = F.normalize(z1, dim=1), F.normalize(z2, dim=1)

    def uniform(v):
        terms = [math.exp(-2 * float((v[i] - v[j]).pow(2).sum())) for i, j in itertools.combinations(range(N), 2)
                 if IDS[i] != IDS[j]]
        return math.log(sum(terms) / len(terms))
    want = float((x - y).pow(2).sum(1).mean()) + (uniform(x) + uniform(y)) / 2
    assert abs(float(got) - want) < 1e-10
    assert float(got) != pytest.approx(float(align_uniform(z1, z2)))  # the ids changed it


def test_bad_settings_and_a_batch_of_one_item_are_named():
    z1, z2 = _views()
    with pytest.raises(ValueError, match=r"alpha and t must be > 0 and uniform_weight >= 0, got 2.0, 0.0, 1.0"):
        AlignUniform(t=0.0)
    with pytest.raises(ValueError, match=r"uniformity needs two views with different ids; the batch holds 6"):
        align_uniform(z1, z2, ids=torch.zeros(N, dtype=torch.long))
    with pytest.raises(ValueError, match=r"the two views must both be \[N, d\]"):
        align_uniform(z1, z2[:3])


def test_the_image_and_text_tasks_train_with_it(tmp_path):
    from contrastive.train import train
    from tests.conftest import make_cfg
    metrics, _ = train(make_cfg(tmp_path / "image", ["objective=align_uniform"]))
    assert math.isfinite(metrics["train/loss_epoch"]) and 0 < metrics["knn_top1/trained"] <= 1
    rows = "".join(f"topic {i} question\ttopic {i} answer\n" for i in range(40))
    (tmp_path / "p.tsv").write_text("anchor\tpositive\n" + rows)
    metrics, objects = train(make_cfg(tmp_path / "text", [
        "experiment=text_pairs_wiki", f"data.path={tmp_path / 'p.tsv'}", "data.batch_size=8", "data.extra_texts=[]",
        "task.word_vectors.epochs=0", "objective=align_uniform", "data/tokenizer=hashing", "trainer.max_epochs=1"]))
    assert type(objects["model"].objective).__name__ == "AlignUniform" and 0 < metrics["mrr"] <= 1
