"""Export: a trained ResNet loads into torchvision's own model and computes the same features."""
from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn

from contrastive import load_encoder
from contrastive.cli.export import export_encoder
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


def encoder_dim(run) -> int:
    return load_encoder(str(run)).out_dim


def test_embed_a_folder_of_images_with_an_image_run(tmp_path, monkeypatch, capsys):
    import numpy as np

    from contrastive.cli.embed import main
    from tests.test_image_folder import write_images
    write_images(tmp_path / "train" / "a", 12), write_images(tmp_path / "train" / "b", 12, seed=1)
    run = tmp_path / "run"
    train(make_cfg(run, ["data=image_folder", f"data.root={tmp_path / 'train'}", "augment=imagenet",
                         "data.size=8", "data.batch_size=8", "data.test_fraction=0.1", "data.num_workers=0",
                         "evaluate=false", "logger=none"]))
    write_images(tmp_path / "new", 5, seed=2)
    (tmp_path / "new" / "9.png").write_bytes(b"junk")
    out = tmp_path / "feats.npy"
    monkeypatch.setattr("sys.argv", ["contrastive-embed", str(run), str(tmp_path / "new"), str(out)])
    main()
    feats, paths = np.load(out), (tmp_path / "feats.npy.paths.txt").read_text().splitlines()
    assert feats.shape == (5, encoder_dim(run)) and [p.rsplit("/", 1)[1] for p in paths] == [f"{k}.png" for k in range(5)]
    assert "1 unreadable file(s) left out" in capsys.readouterr().out
    encoder = load_encoder(str(run))
    from contrastive.data.images.image_folder import PlainView
    view = PlainView(8, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    with torch.no_grad():
        want = encoder(view(paths[3])[0][None])[0].numpy()
    assert np.abs(feats[3] - want).max() <= 1e-5  # the same features as the encoder on that file


def test_embed_checks_the_run_and_the_output_before_any_work(tmp_path, monkeypatch, capsys):
    import numpy as np

    from contrastive.cli.embed import main
    from tests.test_image_folder import write_images
    write_images(tmp_path / "train" / "a", 8), write_images(tmp_path / "train" / "b", 8, seed=1)
    run = tmp_path / "run"
    train(make_cfg(run, ["data=image_folder", f"data.root={tmp_path / 'train'}", "augment=imagenet",
                         "data.size=8", "data.batch_size=8", "data.test_fraction=0.1", "data.num_workers=0",
                         "evaluate=false", "logger=none"]))
    texts = tmp_path / "texts.txt"
    texts.write_text("a\nb\n")

    def embed(*args: str) -> None:
        monkeypatch.setattr("sys.argv", ["contrastive-embed", *args])
        main()

    with pytest.raises(FileNotFoundError, match=r"output folder .*nowhere does not exist"):
        embed(str(run), str(tmp_path / "train" / "a"), str(tmp_path / "nowhere" / "feats.npy"))
    with pytest.raises(ValueError, match=r"OUT .*texts.txt would overwrite the input .*texts.txt"):
        embed(str(run), str(texts), str(texts))
    with pytest.raises(FileNotFoundError, match="neither a run directory nor a checkpoint file"):
        embed(str(tmp_path / "missing"), str(texts), str(tmp_path / "e.npy"))
    with pytest.raises(FileNotFoundError, match=r"best.ckpt does not exist"):
        embed(str(run), str(texts), str(tmp_path / "e.npy"), "--checkpoint", "best.ckpt")
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"checkpoint .*last.ckpt is damaged and cannot be loaded"):
        embed(str(run), str(tmp_path / "train" / "a"), str(tmp_path / "e.npy"))
    assert not list(tmp_path.glob("*.npy"))
    # a name without .npy is completed as numpy.save completes it, and the message names that file
    ckpts = sorted((run / "checkpoints").glob("*.ckpt"))
    good = next(c for c in ckpts if c.name != "last.ckpt")
    embed(str(run), str(tmp_path / "train" / "a"), str(tmp_path / "feats"), "--checkpoint", good.name)
    assert np.load(tmp_path / "feats.npy").shape[0] == 8
    assert f"features to {tmp_path / 'feats.npy'} and their paths to {tmp_path / 'feats.npy'}.paths.txt" in \
        capsys.readouterr().out
