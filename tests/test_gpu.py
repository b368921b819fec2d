"""CUDA versions of the device-sensitive parts: samplers on the labels' device, device augmentation, bf16 with the
loss in float32, compile, and NCE / sampled softmax / NT-Xent on the GPU equal to the CPU (and to TensorFlow's
fixtures) within float32 tolerance. Marked `gpu`; they run where CUDA is available, or on the CPU when
`GPU_SUITE_DEVICE=cpu` (the dry run of `scripts/gpu_suite.sh`, which checks the tests themselves)."""
from __future__ import annotations

import os

import pytest
import torch

from contrastive.data.images.device_augment import DeviceSimCLRAugment
from contrastive.losses import (
    NCELoss,
    SampledSoftmaxLoss,
    info_nce,
    nce_loss,
    nt_xent,
    sampled_softmax_loss,
)
from contrastive.samplers import (
    all_candidate_sampler,
    fixed_unigram_candidate_sampler,
    learned_unigram_candidate_sampler,
    log_uniform_candidate_sampler,
    uniform_candidate_sampler,
)
from tests.test_speed_options import fit
from tests.test_tf_parity import FIX, LOSS_CASES, META, rel_err

DEVICE = os.environ.get("GPU_SUITE_DEVICE") or ("cuda" if torch.cuda.is_available() else "")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not DEVICE, reason="needs CUDA (or GPU_SUITE_DEVICE=cpu)")]


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-5) -> bool:
    """Equal within float32 tolerance, relative to the larger magnitude."""
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return float((a - b).abs().max()) <= tol * max(1.0, float(b.abs().max()))


def test_every_sampler_runs_on_the_labels_device():
    dev = torch.device(DEVICE)
    lab = torch.tensor([[0], [3], [7], [3]], device=dev)
    outs = [log_uniform_candidate_sampler(lab, 1, 64, True, 10**6, seed=0),
            uniform_candidate_sampler(lab, 1, 8, True, 50, seed=0),
            fixed_unigram_candidate_sampler(lab, 1, 4, True, 10, unigrams=[float(i + 1) for i in range(10)], seed=0),
            learned_unigram_candidate_sampler(10)(lab, 1, 4, False, seed=0),
            all_candidate_sampler(lab, 1, 10, True)]
    for s, qt, qs in outs:
        assert s.device.type == qt.device.type == qs.device.type == dev.type
        assert qt.shape == (4, 1) and qs.shape == s.shape and bool((qt > 0).all())
    s, _, _ = outs[0]
    assert len(set(s.tolist())) == 64  # unique draws stay unique on the device


@pytest.mark.parametrize("kind", ["nce", "ssm"])
@pytest.mark.parametrize("case", LOSS_CASES)
def test_tf_fixtures_hold_on_the_device(case, kind):
    m, dev = META[case], torch.device(DEVICE)
    f = lambda k: torch.tensor(FIX[f"{case}/{k}"], device=dev)
    x = f("x").requires_grad_()
    ws = [f(f"w{i}").requires_grad_() for i in range(m["shards"])]
    bs = [f(f"b{i}").requires_grad_() for i in range(m["bias_shards"])]
    sv = (f("sampled"), f("true_expected"), f("sampled_expected"))
    fn = nce_loss if kind == "nce" else sampled_softmax_loss
    loss = fn(ws if len(ws) > 1 else ws[0], bs if len(bs) > 1 else bs[0], f("labels"), x, len(sv[0]),
              m["num_classes"], num_true=m["num_true"], sampled_values=sv, remove_accidental_hits=m["remove"],
              partition_strategy=m["strategy"])
    assert loss.device.type == dev.type and rel_err(loss.cpu(), FIX[f"{case}/{kind}_loss"]) <= 1e-5
    loss.mean().backward()
    assert rel_err(x.grad.cpu(), FIX[f"{case}/{kind}_dx"]) <= 1e-5
    for i, w in enumerate(ws):
        assert rel_err(w.grad.cpu(), FIX[f"{case}/{kind}_dw{i}"]) <= 1e-5


@pytest.mark.parametrize("cls", [NCELoss, SampledSoftmaxLoss])
def test_sampled_modules_on_device_equal_cpu(cls):
    torch.manual_seed(0)
    cpu = cls(100_000, 32, 64, sparse=True)
    dev = cls(100_000, 32, 64, sparse=True).to(DEVICE)
    dev.load_state_dict(cpu.state_dict())
    x, y = torch.randn(256, 32), torch.randint(0, 100_000, (256, 1))
    s, qt, qs = log_uniform_candidate_sampler(y, 1, 64, True, 100_000, seed=0)
    cpu.sample = lambda labels: (s, qt, qs)
    dev.sample = lambda labels: (s.to(DEVICE), qt.to(DEVICE), qs.to(DEVICE))
    lc, ld = cpu(x, y), dev(x.to(DEVICE), y.to(DEVICE))
    assert ld.device.type == torch.device(DEVICE).type and close(ld, lc)
    lc.backward()
    ld.backward()
    assert dev.weight.grad.is_sparse  # sparse row gradients on the device too
    assert close(dev.weight.grad.to_dense(), cpu.weight.grad.to_dense())


@pytest.mark.parametrize("tile", [None, 64])
def test_nt_xent_and_info_nce_on_device_equal_cpu(tile):
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(256, 128, generator=g), torch.randn(256, 128, generator=g)
    results = []
    for dev in ("cpu", DEVICE):
        a, b = z1.to(dev).detach().requires_grad_(), z2.to(dev).detach().requires_grad_()
        loss = nt_xent(a, b, 0.5, tile_size=tile) + info_nce(a, b, temperature=0.1, tile_size=tile)
        loss.backward()
        results.append((loss, a.grad, b.grad))
    for c, d in zip(*results):
        assert close(d, c)


def test_device_augment_on_device_keeps_dtype_range_and_independence():
    aug = DeviceSimCLRAugment(32, blur_p=0.5, solarize_p=0.2)
    x = torch.randint(0, 256, (512, 3, 32, 32), dtype=torch.uint8, device=DEVICE)
    g = torch.Generator(device=DEVICE).manual_seed(0)
    v = aug(x, g)
    assert v.device.type == torch.device(DEVICE).type and v.shape == (512, 3, 32, 32) and v.dtype == torch.float32
    assert torch.equal(v, aug(x, torch.Generator(device=DEVICE).manual_seed(0)))  # seeded on the device
    same = aug(x[:1].repeat(16, 1, 1, 1), g)
    assert (same[1:] - same[:1]).abs().flatten(1).amax(1).min() > 0
    # the same image statistics as the CPU pipeline: normalised views have mean near 0 and similar spread
    vc = aug(x.cpu(), torch.Generator().manual_seed(0))
    assert abs(float(v.mean()) - float(vc.mean())) < 0.05 and abs(float(v.std()) / float(vc.std()) - 1) < 0.05


def test_bf16_on_device_runs_the_network_in_bf16_and_the_loss_in_float32(tmp_path):
    trainer = ["trainer=gpu"] if torch.device(DEVICE).type == "cuda" else []
    seen = fit(tmp_path, *trainer, "trainer.precision=bf16-mixed", "model.channels_last=true")
    assert seen["projector_out"] == torch.bfloat16 and seen["encoder_in_channels_last"] is True
    assert seen["objective_inputs"] == (torch.float32, torch.float32) and seen["loss"] == torch.float32
    assert all(torch.isfinite(p).all() for p in seen["model"].parameters())


def test_compiled_resnet_on_device_matches_eager(monkeypatch):
    from contrastive.encoders import ResNet
    # TF32 convolutions (cuDNN's default) differ by ~1e-3 between algorithms; compare in full float32
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    precision = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    torch.manual_seed(0)
    enc = ResNet("resnet18", cifar_stem=True).to(DEVICE).eval()
    x = torch.randn(8, 3, 32, 32, device=DEVICE)
    with torch.no_grad():
        eager, compiled = enc(x), torch.compile(enc)(x)
    torch.set_float32_matmul_precision(precision)
    assert close(compiled, eager, tol=1e-4)


def test_per_pair_word2vec_losses_on_device_are_tf_nce_with_each_pairs_draws():
    from contrastive.samplers.candidate import expected_count, log_uniform_probs
    from contrastive.word2vec.batched import _device_plan, draw_per_pair, per_pair_loss
    torch.manual_seed(0)
    V, D = 1000, 16
    obj = NCELoss(V, D, 8).to(DEVICE)
    x, context = torch.randn(64, D, device=DEVICE), torch.randint(0, V, (64, 1), device=DEVICE)
    loss = per_pair_loss(x, obj, context, g=torch.Generator(DEVICE).manual_seed(3))
    p = _device_plan(obj, torch.device(DEVICE))
    neg, tries = draw_per_pair(p["sampler"], 64, 8, True, torch.Generator(DEVICE).manual_seed(3))
    assert neg.device.type == torch.device(DEVICE).type and all(len(set(r)) == 8 for r in neg.tolist())
    q = log_uniform_probs(torch.arange(V), V).double()
    q = (q / q.sum()).float()
    w, b = obj.weight.detach().cpu(), obj.bias.detach().cpu().view(-1)
    for i in (0, 17, 63):
        t, n, y = int(tries[i]), neg[i].cpu(), context[i:i + 1].cpu()
        ref = nce_loss(w, b, y, x[i:i + 1].cpu(), 8, V,
                       sampled_values=(n, expected_count(q[y[0]], 8, t)[None], expected_count(q[n], 8, t)))
        assert close(loss[i], ref[0])


def test_word2vec_on_the_device_picks_per_pair_and_trains(tmp_path):
    from contrastive.train import train
    from tests.conftest import make_cfg
    corpus = tmp_path / "corpus.txt"
    words = [f"w{i}" for i in range(50)]
    g = torch.Generator().manual_seed(0)
    corpus.write_text("\n".join(" ".join(words[j] for j in torch.randint(0, 50, (20,), generator=g).tolist())
                                for _ in range(300)))
    trainer = ["trainer=gpu"] if torch.device(DEVICE).type == "cuda" else []
    _, objects = train(make_cfg(tmp_path, ["experiment=word2vec_wiki", "data=text_file", f"data.corpus={corpus}",
                                           "data.batch_size=512", "trainer.max_epochs=2", "evaluate=false",
                                           "model.dim=16", *trainer], fast=False))
    model = objects["model"]
    assert model.step.name == ("per_pair" if trainer else "hogwild")
    assert bool(torch.isfinite(model.vectors).all()) and objects["trainer"].global_step > 0


def test_hybrid_text_embeddings_on_device_equal_cpu():
    from contrastive.encoders import BagOfTokens
    from contrastive.losses import ClipLoss
    torch.manual_seed(0)
    enc = BagOfTokens(vocab_size=500, dim=8, out_dim=8, idf=torch.rand(500) + 0.5, lexical=True)
    ids = torch.randint(0, 500, (6, 12)) * (torch.rand(6, 12) > 0.3)
    losses, grads = [], []
    for dev in ("cpu", DEVICE):
        enc.zero_grad()
        m = enc.to(dev)
        a, b = m(ids.to(dev)), m(ids.flip(0).to(dev))
        loss = ClipLoss(0.1).to(dev)(a, b, extra_negatives=m((ids.to(dev) + 3) % 500))
        loss.backward()
        losses.append(loss)
        grads.append(m.bag.weight.grad.clone())
    assert close(losses[1], losses[0]) and close(grads[1], grads[0])
