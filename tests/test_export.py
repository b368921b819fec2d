"""Export: a trained ResNet loads into torchvision's own model and computes the same features."""
from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from contrastive import load_encoder
from contrastive.export import export_encoder
from contrastive.train import train
from tests.conftest import make_cfg


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    train(make_cfg(run, ["encoder=resnet18", "encoder.in_channels=1", "encoder.cifar_stem=true", "evaluate=false",
                         "trainer.limit_train_batches=1", "trainer.limit_val_batches=0", "logger=none"]))
    return run


def test_export_loads_into_torchvision_resnet18_and_gives_the_same_features(resnet_run, tmp_path):
    out = tmp_path / "encoder.pt"
    export_encoder(str(resnet_run), str(out))
    state = torch.load(out, weights_only=True)
    net = torchvision.models.resnet18()
    net.conv1 = nn.Conv2d(1, 64, 3, stride=1, padding=1, bias=False)  # the CIFAR stem (1 channel: digits)
    net.maxpool = nn.Identity()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    net.fc = nn.Identity()
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        ours, theirs = load_encoder(str(resnet_run))(x), net.eval()(x)
    assert (ours - theirs).abs().max() <= 1e-5
    meta = json.loads((tmp_path / "encoder.pt.json").read_text())
    assert meta["names"] == "torchvision" and json.loads(meta["encoder"])["arch"] == "resnet18"


def test_safetensors_round_trip_and_projector(resnet_run, tmp_path):
    from safetensors.torch import load_file, safe_open
    out = tmp_path / "encoder.safetensors"
    export_encoder(str(resnet_run), str(out))
    pt = tmp_path / "encoder.pt"
    export_encoder(str(resnet_run), str(pt))
    a, b = load_file(str(out)), torch.load(pt, weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with safe_open(str(out), "pt") as f:
        assert f.metadata()["names"] == "torchvision"
    both = load_encoder(str(resnet_run / "checkpoints" / "last.ckpt"), with_projector=True)
    assert isinstance(both, nn.Sequential) and both(torch.randn(2, 1, 8, 8)).shape == (2, 128)


def test_export_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a run directory nor a checkpoint file"):
        load_encoder(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match=r"config.yaml does not exist"):
        load_encoder(str(tmp_path))
    with pytest.raises(ValueError, match=r"must end in .pt, .pth or .safetensors"):
        export_encoder(str(tmp_path), str(tmp_path / "out.bin"))
