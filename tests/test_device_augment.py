"""The batched device augmentation: parameters in range, independent per sample, seeded; CIFAR on device."""
from __future__ import annotations

import pytest
import torch

from contrastive.data import Cifar10DataModule
from contrastive.data.images.device_augment import (
    DeviceSimCLRAugment,
    color_jitter,
    crop_boxes,
    gaussian_blur,
)
from tests.test_data import patch_integrity, write_cifar


def test_crop_boxes_in_range():
    x = torch.zeros(1)
    b = crop_boxes(20000, (0.08, 1.0), (3 / 4, 4 / 3), x, torch.Generator().manual_seed(0))
    cx, cy, w, h = b.unbind(1)
    area = w * h
    assert float(area.min()) >= 0.08 * 0.74 and float(area.max()) <= 1.0 + 1e-6  # clipping can only shrink
    assert bool(((cx - w / 2) >= -1e-6).all() and ((cx + w / 2) <= 1 + 1e-6).all())
    assert bool(((cy - h / 2) >= -1e-6).all() and ((cy + h / 2) <= 1 + 1e-6).all())
    assert 0.45 < float(area.mean()) < 0.6  # uniform area on [0.08, 1] has mean 0.54, clipping lowers it slightly


def test_views_shape_dtype_seed_and_independence():
    aug = DeviceSimCLRAugment(24, blur_p=0.5, solarize_p=0.2)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    v = aug(x, torch.Generator().manual_seed(0))
    assert v.shape == (64, 3, 24, 24) and v.dtype == torch.float32
    assert torch.equal(v, aug(x, torch.Generator().manual_seed(0)))
    assert not torch.equal(v, aug(x, torch.Generator().manual_seed(1)))
    same = aug(x[:1].repeat(16, 1, 1, 1), torch.Generator().manual_seed(2))
    assert (same[1:] - same[:1]).abs().flatten(1).amax(1).min() > 0  # one image, 16 different views


def test_flip_and_jitter_probabilities():
    x = torch.rand(4000, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    changed = (color_jitter(x, 0.5, 0.8, g) != x).flatten(1).any(1).float().mean()
    assert 0.77 < float(changed) < 0.83
    blurred = (gaussian_blur(x, 0.5, (0.1, 2.0), g) != x).flatten(1).any(1).float().mean()
    assert 0.46 < float(blurred) < 0.54
    aug = DeviceSimCLRAugment(8, crop_scale=(1.0, 1.0), jitter_p=0.0, gray_p=0.0, hflip_p=0.5, mean=(0, 0, 0),
                              std=(1, 1, 1))
    img = (torch.arange(8, dtype=torch.uint8) * 30).view(1, 1, 1, 8).expand(4000, 3, 8, 8).contiguous()
    out = aug(img, torch.Generator().manual_seed(3))
    flipped = (out[:, 0, 0, 0] > out[:, 0, 0, -1]).float().mean()
    assert 0.46 < float(flipped) < 0.54


def test_cifar_augment_on_device(tmp_path, monkeypatch):
    write_cifar(tmp_path)
    patch_integrity(monkeypatch)
    dm = Cifar10DataModule(root=str(tmp_path), batch_size=4, num_workers=0, val_size=5, augment_on="device")
    dm.setup("fit")
    x, _y, _i = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 32, 32)  # loaders only collate uint8
    v1, v2 = dm.make_view(x), dm.make_view(x)
    assert v1.shape == (4, 3, 32, 32) and v1.dtype == torch.float32 and not torch.equal(v1, v2)
    with pytest.raises(ValueError, match="'gpu'"):
        Cifar10DataModule(root=str(tmp_path), augment_on="gpu")


def test_image_folder_augment_on_device_trains(tmp_path):
    import numpy as np
    from PIL import Image

    from contrastive.train import train
    from tests.conftest import make_cfg
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for k in range(12):  # odd sizes and a grayscale image: workers resize, crop and convert to RGB
            shape = (20, 30) if k == 0 else (20 + k, 24, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(tmp_path / "img" / c / f"{k}.png")
    from contrastive.data import ImageFolderDataModule
    dm = ImageFolderDataModule(root=str(tmp_path / "img"), size=16, batch_size=4, num_workers=0, augment_on="device")
    dm.setup("fit")
    x, _y, _i = next(iter(dm.train_dataloader()))
    assert x.dtype == torch.uint8 and x.shape == (4, 3, 16, 16)
    v = dm.make_view(x, torch.Generator().manual_seed(0))
    assert v.shape == (4, 3, 16, 16) and v.dtype == torch.float32
    _, objects = train(make_cfg(tmp_path / "run", ["data=image_folder", f"data.root={tmp_path / 'img'}",
                                                    "data.size=16", "data.num_workers=0", "data.augment_on=device",
                                                    "encoder=resnet18", "data.batch_size=4", "evaluate=false"]))
    assert objects["model"].global_step == 2 and (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
