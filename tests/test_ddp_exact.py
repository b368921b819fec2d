"""k processes give the same loss and gradients as one process with the concatenated batch.

Two processes on the CPU (gloo) are spawned by the test; the model is wrapped in DistributedDataParallel
exactly as Lightning does, so its gradient averaging is part of what is checked."""
from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from contrastive.encoders import BagOfTokens
from contrastive.losses import (
    DCL,
    DCLW,
    HCL,
    AlignUniform,
    ClipLoss,
    Debiased,
    InfoNCE,
    NCELoss,
    NTXent,
    SigmoidLoss,
    SupCon,
)
from contrastive.samplers import NegativeQueue, SupportSet

WORLD = 2
CASES = ["ntxent", "ntxent_ids", "infonce", "infonce_queue", "clip", "nce", "ntxent_batch1", "ntxent_tiled",
         "infonce_tiled", "clip_lexical", "supcon", "dcl_ids", "dclw", "debiased", "hcl_ids", "sigmoid", "sigmoid_ids",
         "ntxent_nn_support", "align_uniform_ids"]
WITH_IDS = ("ntxent_ids", "ntxent_tiled", "dcl_ids", "hcl_ids", "sigmoid_ids", "align_uniform_ids")


def _setup(case: str, n_global: int):
    """Model, objective and the global batch, identical in every process."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 5))
    if case == "clip_lexical":  # sparse lexical blocks of different widths on the two ranks, hard negatives
        model = BagOfTokens(vocab_size=30, dim=4, out_dim=4, idf=torch.rand(30) + 0.5, lexical=True,
                            train_weights=True)  # gradients reach the lexical values across processes too
    objective = {"ntxent": NTXent(0.5), "ntxent_ids": NTXent(0.3), "ntxent_batch1": NTXent(0.5),
                 "infonce": InfoNCE(0.2, learnable_temperature=True), "infonce_queue": InfoNCE(0.2),
                 "clip": ClipLoss(0.1), "nce": NCELoss(50, 5, 7, sparse=False, seed=3),
                 "ntxent_tiled": NTXent(0.3, learnable_temperature=True, tile_size=3),
                 "infonce_tiled": InfoNCE(0.2, tile_size=5), "clip_lexical": ClipLoss(0.1),
                 "supcon": SupCon(0.2, learnable_temperature=True), "dcl_ids": DCL(0.2, learnable_temperature=True),
                 "dclw": DCLW(0.2, sigma=0.5), "debiased": Debiased(0.5, tau_plus=0.1), "hcl_ids": HCL(0.5, 0.1, 1.0),
                 "sigmoid": SigmoidLoss(0.2, bias=-2.0), "sigmoid_ids": SigmoidLoss(0.2, bias=-2.0),
                 "ntxent_nn_support": NTXent(0.5), "align_uniform_ids": AlignUniform(alpha=1.5, uniform_weight=0.7)}[case]
    queue = NegativeQueue(6, 5) if case == "infonce_queue" else None
    if case == "ntxent_nn_support":  # a full support set: each anchor's nearest stored key is its positive
        queue = SupportSet(6, 5)
        queue.stored.fill_(6)
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.randn(n_global, 6, generator=g), torch.randn(n_global, 6, generator=g)
    ids = torch.tensor([0, 1, 0, 2, 3, 1, 4, 2])[:n_global]
    labels = torch.randint(0, 50, (n_global,), generator=g)
    if case == "clip_lexical":
        x1, x2 = (torch.randint(0, 30, (n_global, 6), generator=g) * (torch.arange(6) < 2 + torch.arange(
            n_global)[:, None]) for _ in range(2))  # rows 0-3 (rank 0) hold fewer tokens than rows 4-7
    return model, objective, queue, (x1, x2, ids, labels)


class Step(nn.Module):
    """The whole step as one module, so DistributedDataParallel sees it through forward."""

    def __init__(self, model, objective, queue, case):
        super().__init__()
        self.model, self.objective, self.queue, self.case = model, objective, queue, case

    def forward(self, *batch):
        return _step(self.model, self.objective, self.queue, batch, self.case)


def _step(model, objective, queue, batch, case):
    x1, x2, ids, labels = batch
    z1, z2 = model(x1), model(x2)
    if case == "nce":
        return objective(z1, labels)
    if case == "clip_lexical":
        return objective(z1, z2, ids=ids, extra_negatives=model((x1 + 7) % 30))
    if case == "infonce_queue":
        loss = objective(z1, z2, negative_keys=queue.draw().keys)
        queue.update(z2)
        return loss
    if case == "ntxent_nn_support":
        terms = queue.terms(z1, z2, None)
        loss = sum(objective(a, b, **extra) for a, b, extra in terms) / len(terms)
        queue.update(z2)
        return loss
    if case == "supcon":  # labels shared across the two ranks' halves; an unlabelled item (-1) on rank 1
        return objective(z1, z2, labels=torch.where(ids == 4, -1, ids))
    return objective(z1, z2, ids=ids if case in WITH_IDS else None)


def _grads(model, objective):
    return [p.grad.detach().clone() for p in [*model.parameters(), *objective.parameters()] if p.grad is not None]


def _n_global(case: str) -> int:
    return 2 if case == "ntxent_batch1" else 8


def _worker(rank: int, init_file: str, out: str) -> None:
    # a rendezvous file, not a TCP port: nothing to collide with other tests or jobs
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    results = {}
    for case in CASES:
        model, objective, queue, batch = _setup(case, _n_global(case))
        per = _n_global(case) // WORLD
        local = tuple(t[rank * per:(rank + 1) * per] for t in batch)
        ddp = nn.parallel.DistributedDataParallel(Step(model, objective, queue, case), broadcast_buffers=False)
        loss = ddp(*local)
        loss.backward()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        results[case] = {"loss": mean_loss / WORLD, "grads": _grads(model, objective),
                         "queue": None if queue is None else queue.keys.clone()}
    if rank == 0:
        torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


def _spawn(worker, tmp) -> object:
    """Run `worker(rank, rendezvous file, out file)` in 2 processes; what rank 0 saved to the out file."""
    out = tmp / "rank0.pt"
    try:
        mp.spawn(worker, args=(str(tmp / "rendezvous"), str(out)), nprocs=WORLD, join=True)
    except mp.ProcessExitedException:
        # gloo's teardown sometimes aborts a process ("terminate called without an active exception") after
        # every collective has finished; rank 0 writes its results only after the last one, so they are whole
        if not out.exists():
            raise
    return torch.load(out, weights_only=True)


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory):
    """One spawn of 2 gloo processes runs every case (spawning costs seconds)."""
    return _spawn(_worker, tmp_path_factory.mktemp("ddp"))


@pytest.mark.ddp
@pytest.mark.parametrize("case", CASES)
def test_two_processes_equal_one_process(case, two_process_results):
    got = two_process_results[case]
    model, objective, queue, batch = _setup(case, _n_global(case))
    want = _step(model, objective, queue, batch, case)
    want.backward()
    assert got["loss"].item() == pytest.approx(want.item(), abs=1e-5)
    for g, w in zip(got["grads"], _grads(model, objective), strict=True):
        assert torch.allclose(g, w, atol=1e-5), (case, (g - w).abs().max())
    if queue is not None:
        assert torch.allclose(got["queue"], queue.keys, atol=1e-6)  # keys from both ranks, in rank order


def _unequal_worker(rank: int, init_file: str, out: str) -> None:
    from contrastive.distributed import all_gather_sizes, gather_with_grad
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    sizes = all_gather_sizes(3 + rank)
    try:
        gather_with_grad(torch.zeros(3 + rank, 2))
        message = "no error"
    except ValueError as e:
        message = str(e)
    if rank == 0:
        torch.save({"sizes": sizes, "message": message}, out)
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.ddp
def test_gather_refuses_unequal_batch_sizes_on_every_rank(tmp_path):
    got = _spawn(_unequal_worker, tmp_path)
    assert got["sizes"] == [3, 4]
    assert "needs the same batch size on every rank, got [3, 4]" in got["message"]


def _unseeded_sampler_worker(rank: int, init_file: str, out: str) -> None:
    from contrastive.samplers import LogUniformSampler
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.manual_seed(100 + rank)  # the processes' own generators differ, as seeded runs on several ranks may
    sampler = LogUniformSampler(range_max=1000, num_sampled=20, seed=None)
    draws = torch.stack([sampler.sample(torch.tensor([[3], [7]]))[0] for _ in range(3)])
    parts = [torch.empty_like(draws) for _ in range(WORLD)]
    dist.all_gather(parts, draws)
    if rank == 0:
        torch.save(parts, out)
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.ddp
def test_an_unseeded_sampler_draws_the_same_candidates_on_every_rank(tmp_path):
    first, second = _spawn(_unseeded_sampler_worker, tmp_path)
    assert torch.equal(first, second) and not torch.equal(first[0], first[1])  # shared, and still random per step
