"""model.channels_last, model.compile and trainer.precision: they run, change what they should, and the loss
stays float32."""
from __future__ import annotations

import torch

from contrastive.train import build, make_trainer
from tests.conftest import make_cfg

STEPS = ["trainer.max_steps=2", "trainer.limit_val_batches=0", "evaluate=false", "logger=none"]


def fit(tmp_path, *overrides: str) -> dict:
    cfg = make_cfg(tmp_path, [*STEPS, *overrides])
    objects = build(cfg)
    model, seen = objects["model"], {}
    objective_forward = model.objective.forward

    def spy(q, k, **kw):
        seen.setdefault("objective_inputs", (q.dtype, k.dtype))
        loss = objective_forward(q, k, **kw)
        seen.setdefault("loss", loss.dtype)
        return loss
    model.objective.forward = spy
    def projector_out(module, inputs, out):
        seen.setdefault("projector_out", out.dtype)

    def encoder_in(module, inputs):
        seen.setdefault("encoder_in_channels_last", inputs[0].is_contiguous(memory_format=torch.channels_last))
    model.projector.register_forward_hook(projector_out)
    model.encoder.register_forward_pre_hook(encoder_in)
    make_trainer(cfg).fit(model, datamodule=objects["datamodule"])
    return {**seen, "model": model}


def test_bf16_mixed_runs_the_network_in_bf16_and_the_loss_in_float32(tmp_path):
    seen = fit(tmp_path, "trainer.precision=bf16-mixed")
    assert seen["projector_out"] == torch.bfloat16
    assert seen["objective_inputs"] == (torch.float32, torch.float32) and seen["loss"] == torch.float32


def test_channels_last_converts_weights_and_inputs(tmp_path):
    seen = fit(tmp_path, "model.channels_last=true")
    convs = [m.weight for m in seen["model"].encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last) for w in convs)
    assert seen["encoder_in_channels_last"] is True


def test_compiled_encoder_matches_eager_and_keeps_checkpoint_keys(tmp_path):
    cfg = make_cfg(tmp_path, STEPS)
    eager = build(cfg)["model"]
    x = torch.randn(4, 1, 8, 8)
    compiled = build(make_cfg(tmp_path, [*STEPS, "model.compile=true"]))["model"]
    compiled.load_state_dict(eager.state_dict())
    out_eager, out_compiled = eager(x), compiled(x)
    assert compiled._compiled is not None
    assert torch.allclose(out_eager, out_compiled, rtol=1e-4, atol=1e-5)
    out_compiled.sum().backward()  # gradients flow through the compiled graph into the encoder's parameters
    assert all(p.grad is not None for p in compiled.encoder.parameters() if p.requires_grad)
    assert compiled.state_dict().keys() == eager.state_dict().keys()
